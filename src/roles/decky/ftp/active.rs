//! Active mode: `PORT` and `EPRT`, parsed and checked as vsftpd does with its default
//! `port_promiscuous=NO`, and the connection back to the client.
//!
//! A honeypot must never become a relay (the FTP bounce attack, or simply a tool to
//! reach third parties from the decky's address), so a target is accepted only when it
//! is the control connection's own peer address and a port of 1024 or above; anything
//! else gets vsftpd's `500 Illegal PORT command.` and no packet leaves the decky. The one
//! connection that is made is bound to the address the client talked to (from port 20
//! when the process may, as Debian's and RHEL's `connect_from_port_20=YES` do) and cut
//! after [`CONNECT_TIMEOUT`].
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// How long a connection back to the client may take. vsftpd waits 60 s; a shorter wait
/// keeps what a client pointing PORT at a silent port can hold down small.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The lowest port a data connection may go to (vsftpd refuses the reserved ones).
pub const MIN_PORT: u16 = 1024;
/// The port vsftpd connects from with `connect_from_port_20=YES`.
const FTP_DATA_PORT: u16 = 20;

/// `PORT h1,h2,h3,h4,p1,p2`: six decimal bytes, or `None` (vsftpd: "Illegal PORT command.").
pub fn parse_port(arg: &str) -> Option<SocketAddr> {
    let fields: Vec<&str> = arg.trim().split(',').collect();
    if fields.len() != 6 {
        return None;
    }
    let mut bytes = [0u8; 6];
    for (slot, field) in bytes.iter_mut().zip(&fields) {
        let field = field.trim();
        if field.is_empty() || field.len() > 3 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = field.parse().ok()?;
    }
    let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
    let port = u16::from_be_bytes([bytes[4], bytes[5]]);
    Some(SocketAddr::new(IpAddr::V4(ip), port))
}

/// `EPRT |proto|address|port|` (RFC 2428), or vsftpd's reply text for a malformed one.
/// Protocol 2 (IPv6) is only valid on an IPv6 control connection, as in vsftpd.
pub fn parse_eprt(arg: &str, ipv6_control: bool) -> Result<SocketAddr, &'static str> {
    const BAD: &str = "500 Bad EPRT command.";
    let arg = arg.trim();
    let mut parts = arg.split('|');
    if parts.next() != Some("") {
        return Err(BAD);
    }
    let proto = parts.next().unwrap_or_default();
    let proto: u8 = match proto.trim().parse() {
        Ok(p @ 1) => p,
        Ok(p @ 2) if ipv6_control => p,
        _ => return Err("500 Bad EPRT protocol."),
    };
    let addr = parts.next().ok_or(BAD)?;
    let ip = if proto == 2 {
        let bare = addr.split('%').next().unwrap_or(addr);
        IpAddr::V6(bare.parse::<Ipv6Addr>().map_err(|_| BAD)?)
    } else {
        IpAddr::V4(addr.parse::<Ipv4Addr>().map_err(|_| BAD)?)
    };
    let port = parts.next().ok_or(BAD)?;
    if port.is_empty() || parts.next() != Some("") || parts.next().is_some() {
        return Err(BAD);
    }
    let port: u16 = port.parse().map_err(|_| BAD)?;
    Ok(SocketAddr::new(ip, port))
}

/// Why `target` may not be connected to from a session whose client is `peer`, if so.
pub fn refusal(target: SocketAddr, peer: SocketAddr) -> Option<&'static str> {
    if target.ip().to_canonical() != peer.ip().to_canonical() {
        Some("foreign_address")
    } else if target.port() < MIN_PORT {
        Some("privileged_port")
    } else {
        None
    }
}

/// Connects from `local` (the decky's address the client reached) to `target`, which
/// [`refusal`] has cleared, within [`CONNECT_TIMEOUT`].
pub async fn connect(target: SocketAddr, local: IpAddr) -> io::Result<TcpStream> {
    let target = SocketAddr::new(target.ip().to_canonical(), target.port());
    let local = local.to_canonical();
    if local.is_ipv4() != target.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "address family differs from the control connection",
        ));
    }
    let socket = bound(local)?;
    tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(target))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "data connection timed out"))?
}

/// A socket bound to `local`, port 20 when allowed (as vsftpd), else any port.
fn bound(local: IpAddr) -> io::Result<TcpSocket> {
    let fresh = || match local {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    };
    let socket = fresh()?;
    // vsftpd sets SO_REUSEADDR so that many sessions can connect from port 20 at once.
    socket.set_reuseaddr(true)?;
    if socket.bind(SocketAddr::new(local, FTP_DATA_PORT)).is_ok() {
        return Ok(socket);
    }
    let socket = fresh()?;
    socket.bind(SocketAddr::new(local, 0))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn port_arguments_parse_like_vsftpd() {
        assert_eq!(parse_port("127,0,0,1,4,1"), Some(addr("127.0.0.1:1025")));
        assert_eq!(
            parse_port(" 10,1,2,3,255,255"),
            Some(addr("10.1.2.3:65535"))
        );
        for bad in [
            "",
            "1,2,3,4,5",
            "1,2,3,4,5,6,7",
            "1,2,3,4,5,256",
            "a,2,3,4,5,6",
            "1,,3,4,5,6",
        ] {
            assert_eq!(parse_port(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn eprt_arguments_parse_like_vsftpd() {
        assert_eq!(
            parse_eprt("|1|127.0.0.1|2000|", false),
            Ok(addr("127.0.0.1:2000"))
        );
        assert_eq!(parse_eprt("|2|::1|2000|", true), Ok(addr("[::1]:2000")));
        assert_eq!(
            parse_eprt("|2|fe80::1%eth0|2000|", true),
            Ok(addr("[fe80::1]:2000"))
        );
        assert_eq!(
            parse_eprt("|2|::1|2000|", false),
            Err("500 Bad EPRT protocol.")
        );
        assert_eq!(
            parse_eprt("|3|::1|2000|", true),
            Err("500 Bad EPRT protocol.")
        );
        for bad in [
            "1|127.0.0.1|2000|",
            "|1|127.0.0.1|2000",
            "|1|127.0.0.1||",
            "|1|::1|2000|",
            "|1|127.0.0.1|70000|",
            "|1|127.0.0.1|2000|x",
        ] {
            assert_eq!(
                parse_eprt(bad, true),
                Err("500 Bad EPRT command."),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_the_clients_own_unprivileged_ports_are_allowed() {
        let peer = addr("198.51.100.7:40000");
        assert_eq!(refusal(addr("198.51.100.7:1024"), peer), None);
        assert_eq!(refusal(addr("[::ffff:198.51.100.7]:5000"), peer), None);
        assert_eq!(
            refusal(addr("198.51.100.8:5000"), peer),
            Some("foreign_address")
        );
        assert_eq!(
            refusal(addr("203.0.113.1:5000"), peer),
            Some("foreign_address")
        );
        assert_eq!(
            refusal(addr("198.51.100.7:1023"), peer),
            Some("privileged_port")
        );
        assert_eq!(
            refusal(addr("198.51.100.7:0"), peer),
            Some("privileged_port")
        );
    }
}
