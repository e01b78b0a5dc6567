//! The decky entry point: stand-in services log each connection as an RFC 5424 line.
mod util;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use decnet::catalog::Proto;
use decnet::model::DeckySeed;
use decnet::roles::decky::{self, Persona, ServiceSpec, Sockets};
use decnet::syslog;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn every_tcp_connection_and_datagram_becomes_a_connect_event() {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind tcp");
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind udp");
    let (tcp_port, udp_port) = (
        tcp.local_addr().expect("addr").port(),
        udp.local_addr().expect("addr").port(),
    );
    let (tx, mut rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(decky::serve(
        Sockets {
            tcp: vec![tcp],
            udp: vec![udp],
        },
        ServiceSpec {
            name: "mqtt".into(),
            ports: vec![(Proto::Tcp, 0)],
            persona: Arc::new(
                Persona::new(
                    "decky-01",
                    None,
                    Some("debian"),
                    None,
                    &DeckySeed::generate(),
                )
                .expect("persona"),
            ),
            settings: Default::default(),
        },
        tx,
        shutdown.clone(),
    ));
    let startup = recv(&mut rx).await;
    assert_eq!(
        (
            startup.decky.as_str(),
            startup.service.as_str(),
            startup.event_type.as_str()
        ),
        ("decky-01", "mqtt", "startup")
    );

    let client = tokio::net::TcpStream::connect(("127.0.0.1", tcp_port))
        .await
        .expect("connect");
    let client_port = client.local_addr().expect("addr").port().to_string();
    let event = recv(&mut rx).await;
    assert_eq!(event.event_type, "connect");
    assert_eq!(event.attacker_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(event.fields.get("src_port"), Some(client_port.as_str()));
    assert_eq!(
        event.fields.get("dst_port"),
        Some(tcp_port.to_string().as_str())
    );
    assert_eq!(event.fields.get("proto"), Some("tcp"));

    let probe = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind probe");
    probe
        .send_to(b"\x30\x26", ("127.0.0.1", udp_port))
        .await
        .expect("send");
    let event = recv(&mut rx).await;
    assert_eq!(event.fields.get("proto"), Some("udp"));
    assert_eq!(
        event.fields.get("dst_port"),
        Some(udp_port.to_string().as_str())
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve stops on shutdown")
        .expect("join")
        .expect("serve succeeds");
}

async fn recv(rx: &mut mpsc::Receiver<String>) -> syslog::Event {
    let line = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("event within 10 s")
        .expect("channel open");
    syslog::parse(line.trim_end()).expect("a valid RFC 5424 line")
}

#[test]
fn the_binary_serves_a_service_and_stops_cleanly_on_sigterm() {
    let dir = util::Dir::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut child = dir
        .decnet()
        .args(["decky", "--service", "vnc", "--port"])
        .arg(format!("tcp/{port}"))
        .env("NODE_NAME", "decky-07")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn decky");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let startup = lines.next().expect("a startup line").expect("utf-8");
    let startup = syslog::parse(&startup).expect("valid line");
    assert_eq!(
        (startup.decky.as_str(), startup.event_type.as_str()),
        ("decky-07", "startup")
    );

    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the stand-in");
    let src_port = stream.local_addr().expect("addr").port().to_string();
    let line = lines.next().expect("a connect line").expect("utf-8");
    let event = syslog::parse(&line).expect("valid line");
    assert_eq!(
        (event.service.as_str(), event.event_type.as_str()),
        ("vnc", "connect")
    );
    assert_eq!(event.fields.get("src_port"), Some(src_port.as_str()));
    assert!(line.starts_with("<134>1 "), "{line}");

    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    kill(pid, Signal::SIGTERM).expect("signal");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

#[test]
fn idle_holds_until_sigterm_and_bad_modes_are_usage_errors() {
    let dir = util::Dir::new();
    let mut child = dir
        .decnet()
        .args(["decky", "--idle"])
        .spawn()
        .expect("spawn");
    std::thread::park_timeout(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("poll").is_none(),
        "idle must keep running"
    );
    kill(
        Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        Signal::SIGTERM,
    )
    .expect("signal");
    assert!(child.wait().expect("wait").success());

    let out = util::run(dir.decnet().arg("decky"));
    util::assert_code(&out, 2);
    let out = util::run(dir.decnet().args(["decky", "--service", "nonsense"]));
    util::assert_code(&out, 1);
    assert!(
        util::stderr(&out).contains("nonsense"),
        "{}",
        util::stderr(&out)
    );
}
