//! The listener bounded in time: a worker that stops reading is dropped within the write
//! timeout without holding up the allow-list re-check or shutdown, and a flood of idle
//! unauthenticated connections does not keep an enrolled forwarder out.
//!
//! A "stuck" peer is a real mTLS client with an allowed worker certificate and a tiny
//! receive buffer that sends HELLO and then `S` frames (each answered with an ACK) but
//! never reads. Whether the listener's writes really block is read from the kernel:
//! `/proc/net/tcp` shows bytes queued on the listener's side of the connection.
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpStream as StdTcpStream;
use std::path::Path;
use std::time::Duration;

use decnet::logship::{self, Hello, Upstream};
use decnet::pki::Bundle;
use decnet::syslog::OctetCodec;
use decnet::tls::{self, ClientOptions};
use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::client::TlsStream;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Encoder;

use super::{LIMIT, Site, event_line, nap, wait_until};

fn write_lines(path: &Path, range: std::ops::Range<u64>) {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log");
    for n in range {
        writeln!(out, "{}", event_line(n)).expect("write");
    }
}

/// `(state, tx_queue)` of the listener's end of the connection from `client_port`.
fn listener_side(listener_port: u16, client_port: u16) -> Option<(u8, u64)> {
    let table = fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port_of = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5
            || port_of(cols[1]) != Some(listener_port)
            || port_of(cols[2]) != Some(client_port)
        {
            return None;
        }
        let state = u8::from_str_radix(cols[3], 16).ok()?;
        let tx = u64::from_str_radix(cols[4].split(':').next()?, 16).ok()?;
        Some((state, tx))
    })
}

const ESTABLISHED: u8 = 1;

/// A worker that completed mTLS and never reads what the listener sends.
struct Stuck {
    rt: Runtime,
    tls: TlsStream<TcpStream>,
    port: u16,
    listener_port: u16,
}

impl Stuck {
    fn connect(site: &Site, agent: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let bundle = Bundle::load(agent, "worker").expect("worker bundle");
        let config = tls::client_config(&bundle, &ClientOptions::default()).expect("tls");
        let listener_port = site.port;
        let (tls, port) = rt.block_on(async {
            let socket = TcpSocket::new_v4().expect("socket");
            // As small as the kernel allows: the listener's replies fill it at once.
            socket.set_recv_buffer_size(1024).expect("SO_RCVBUF");
            let tcp = socket
                .connect(([127, 0, 0, 1], listener_port).into())
                .await
                .expect("connect");
            let port = tcp.local_addr().expect("local addr").port();
            let tls = tls::connect(config, "127.0.0.1", tcp)
                .await
                .expect("mTLS handshake");
            (tls, port)
        });
        let mut stuck = Self {
            rt,
            tls,
            port,
            listener_port,
        };
        let hello = Upstream::Hello(Hello {
            version: logship::VERSION,
            sources: vec!["stuck".into()],
            agent: "test".into(),
        });
        stuck.send(&[hello]).expect("HELLO");
        stuck
    }

    fn send(&mut self, frames: &[Upstream]) -> std::io::Result<()> {
        let mut codec = OctetCodec::default();
        let mut wire = BytesMut::new();
        let mut payload = BytesMut::new();
        for frame in frames {
            payload.clear();
            frame.encode(&mut payload);
            codec
                .encode(&payload[..], &mut wire)
                .map_err(std::io::Error::other)?;
        }
        let tls = &mut self.tls;
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                tls.write_all(&wire).await?;
                tls.flush().await
            })
            .await
            .map_err(|_| std::io::Error::other("the listener stopped reading"))?
        })
    }

    /// Sends `S` frames (one ACK back each) until the listener's replies pile up: its
    /// kernel send queue stays full (the same non-zero size) while more ACKs are due,
    /// so they wait in the listener itself, unwritable because this peer does not read.
    /// Panics with the listener's diagnostics if that does not happen in time.
    fn stall(&mut self, listener: &super::Proc) {
        let declare = Upstream::Source {
            idx: 0,
            name: "stuck".into(),
        };
        let batch = vec![declare; 500];
        let (mut last, mut same) = (0, 0);
        for _ in 0..LIMIT.as_millis() / 50 {
            if self.send(&batch).is_err() {
                // Already dropped for not reading: blocked long enough.
                return;
            }
            nap(50);
            match listener_side(self.listener_port, self.port) {
                Some((ESTABLISHED, tx)) if tx > 0 && tx == last => same += 1,
                Some((_, tx)) => (last, same) = (tx, 0),
                None => same = 0,
            }
            if same >= 5 {
                return;
            }
        }
        panic!(
            "the listener's writes to port {} never blocked (send queue {last}):\n{}",
            self.port,
            listener.output()
        );
    }

    fn established(&self) -> bool {
        matches!(
            listener_side(self.listener_port, self.port),
            Some((ESTABLISHED, _))
        )
    }
}

fn enrolled(site: &Site, name: &str) -> std::path::PathBuf {
    let agent = site.home().join(format!("agent-{name}"));
    let cert = site.issue_worker(name, &agent);
    site.allow(name, &cert);
    agent
}

#[test]
fn a_peer_that_stops_reading_is_dropped_within_the_write_timeout() {
    let site = Site::new();
    let stuck_agent = enrolled(&site, "w-stuck");
    let agent = enrolled(&site, "w-ok");
    fs::create_dir_all(site.log_dir()).expect("log dir");
    let log = site.log_dir().join("decnet.log");
    let mut listener = site.listener(
        "listener",
        &["--write-timeout", "2", "--recheck-interval", "2"],
    );
    let mut forwarder = site.forwarder("forwarder", &agent, &log, &[]);
    write_lines(&log, 0..100);
    wait_until(LIMIT, "the first lines", || site.count() == 100);

    let mut stuck = Stuck::connect(&site, &stuck_agent);
    stuck.stall(&listener);
    wait_until(LIMIT, "the stuck peer to be dropped", || {
        listener.output().contains("peer stopped reading")
    });
    wait_until(LIMIT, "its connection to close", || !stuck.established());
    assert!(
        listener.output().contains("replies not written within 2s"),
        "{}",
        listener.output()
    );

    // The other worker was never held up, and a revoke still cuts it at the re-check.
    write_lines(&log, 100..200);
    wait_until(LIMIT, "lines after the stuck peer", || site.count() == 200);
    let out = site.run(&["listener", "revoke", "w-ok"]);
    assert!(out.status.success(), "{}", super::text(&out.stderr));
    wait_until(
        Duration::from_secs(30),
        "the revoked worker to be cut",
        || listener.output().contains("no longer enrolled"),
    );
    forwarder.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);
}

#[test]
fn a_stuck_write_blocks_neither_the_recheck_nor_shutdown() {
    let site = Site::new();
    let revoked_agent = enrolled(&site, "w-revoked");
    let kept_agent = enrolled(&site, "w-kept");
    // Writes may hang for a minute: longer than every wait below, so only the
    // re-check and the shutdown grace can end these connections in time.
    let mut listener = site.listener(
        "listener",
        &["--write-timeout", "60", "--recheck-interval", "2"],
    );
    let mut revoked = Stuck::connect(&site, &revoked_agent);
    revoked.stall(&listener);
    let mut kept = Stuck::connect(&site, &kept_agent);
    kept.stall(&listener);

    let out = site.run(&["listener", "revoke", "w-revoked"]);
    assert!(out.status.success(), "{}", super::text(&out.stderr));
    wait_until(
        Duration::from_secs(30),
        "the stuck revoked worker to be cut",
        || !revoked.established(),
    );
    assert!(
        listener.output().contains("no longer enrolled"),
        "{}",
        listener.output()
    );
    assert!(
        !listener.output().contains("peer stopped reading"),
        "cut by the write timeout, not the re-check"
    );
    assert!(kept.established(), "the other stuck peer is still attached");

    // Shutdown with a stuck peer attached: Proc::stop fails the test if the listener
    // is still there 10 s after SIGTERM.
    listener.stop(Signal::SIGTERM);
    assert!(
        !kept.established(),
        "the stuck connection died with the listener"
    );
}

#[test]
fn a_thousand_idle_connections_do_not_keep_a_worker_out() {
    let site = Site::new();
    let agent = enrolled(&site, "w1");
    fs::create_dir_all(site.log_dir()).expect("log dir");
    let log = site.log_dir().join("decnet.log");
    // Unauthenticated connections may wait five minutes: as if an attacker re-opened
    // each one the moment it timed out, for the whole test.
    let mut listener = site.listener("listener", &["--auth-timeout", "300"]);
    let idle: Vec<StdTcpStream> = (0..1000)
        .map(|_| StdTcpStream::connect(("127.0.0.1", site.port)).expect("idle connection"))
        .collect();
    wait_until(LIMIT, "the flood to reach the cap", || {
        listener
            .output()
            .contains("unauthenticated connections at their cap")
    });

    let mut forwarder = site.forwarder("forwarder", &agent, &log, &[]);
    write_lines(&log, 0..100);
    wait_until(LIMIT, "lines from the enrolled worker", || {
        site.count() == 100
    });
    assert!(
        listener.output().contains("worker connected"),
        "{}",
        listener.output()
    );
    drop(idle);
    forwarder.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);
}
