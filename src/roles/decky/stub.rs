//! The connect-logging stand-in of services without an emulation yet: accept, log
//! `connect` with the attacker's address, close. Datagrams are logged the same way.
use std::net::SocketAddr;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

use super::{Emitter, Sockets};
use crate::catalog::Proto;

/// Largest datagram a UDP stand-in reads; the rest is truncated by the kernel.
const MAX_DATAGRAM: usize = 2048;

/// Starts one task per socket in `tasks`.
pub(super) fn spawn(tasks: &mut JoinSet<()>, sockets: Sockets, emitter: &Emitter) {
    for listener in sockets.tcp {
        tasks.spawn(accept_loop(listener, emitter.clone()));
    }
    for socket in sockets.udp {
        tasks.spawn(datagram_loop(socket, emitter.clone()));
    }
}

async fn connect(emitter: &Emitter, peer: SocketAddr, local_port: u16, proto: Proto) {
    let m = emitter
        .peer_event("connect", peer)
        .param("dst_port", local_port.to_string())
        .param("proto", proto.to_string());
    emitter.emit(m).await;
}

async fn accept_loop(listener: TcpListener, emitter: Emitter) {
    let port = listener.local_addr().map_or(0, |a| a.port());
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // The stand-in has nothing to say: closing is its whole protocol.
                drop(stream);
                connect(&emitter, peer, port, Proto::Tcp).await;
            }
            // Out of descriptors or a reset before accept: keep serving.
            Err(e) => {
                tracing::warn!(error = %e, port, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn datagram_loop(socket: UdpSocket, emitter: Emitter) {
    let port = socket.local_addr().map_or(0, |a| a.port());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        if let Ok((_, peer)) = socket.recv_from(&mut buf).await {
            connect(&emitter, peer, port, Proto::Udp).await;
        }
    }
}
