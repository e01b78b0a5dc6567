//! Bad peers against the listener in-process (port 0): each is told why where the
//! protocol allows, disconnected, and leaves nothing in the store but what it sent
//! correctly; the listener keeps serving others. Also: nothing is acknowledged that the
//! store did not commit when the database is full.
use std::sync::Arc;
use std::time::Duration;

use decnet::bus::NullBus;
use decnet::logship::{self, Downstream, Hello, Upstream};
use decnet::pki::{Bundle, Ca, IssueRequest, Layout};
use decnet::roles::listener::{self, ListenerConfig, Settings};
use decnet::store::{Options, Store};
use decnet::syslog::OctetCodec;
use decnet::tls::{self, ClientOptions};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Encoder, FramedRead};
use tokio_util::sync::CancellationToken;

use super::event_line;

const WAIT: Duration = Duration::from_secs(10);

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    ca: Ca,
    port: u16,
    stop: CancellationToken,
}

async fn start(options: Options) -> Bench {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::new(dir.path().join("pki"));
    let (ca, _) = layout.ensure_ca().expect("CA");
    let master = layout.ensure_master().expect("master identity");
    let store = Store::open(dir.path().join("decnet.db"), options).expect("store");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = CancellationToken::new();
    let config = ListenerConfig {
        store: store.clone(),
        tls: Some(tls::server_config(&master).expect("server config")),
        plain_worker: "plain".into(),
        raw_log: None,
        bus: Arc::new(NullBus),
        settings: Settings {
            frame_timeout: Duration::from_millis(300),
            ..Settings::default()
        },
    };
    tokio::spawn(listener::serve(listener, config, stop.clone()));
    Bench {
        _dir: dir,
        store,
        ca,
        port,
        stop,
    }
}

impl Bench {
    fn worker(&self, name: &str, allow: bool) -> Bundle {
        let bundle = self
            .ca
            .issue(&IssueRequest::new(name, ["127.0.0.1"]))
            .expect("issue");
        if allow {
            self.store
                .allow_worker(name, bundle.fingerprint())
                .expect("allow");
        }
        bundle
    }

    async fn connect(&self, bundle: &Bundle) -> tokio_rustls::client::TlsStream<TcpStream> {
        let config = tls::client_config(bundle, &ClientOptions::default()).expect("client config");
        let tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        tls::connect(config, "127.0.0.1", tcp)
            .await
            .expect("handshake")
    }

    fn count(&self) -> u64 {
        self.store
            .reader()
            .and_then(|r| r.count_logs())
            .expect("count")
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    OctetCodec::default()
        .encode(payload, &mut buf)
        .expect("encode");
    buf.to_vec()
}

fn upstream(frame_: &Upstream) -> Vec<u8> {
    let mut payload = BytesMut::new();
    frame_.encode(&mut payload);
    frame(&payload)
}

fn hello(sources: &[&str]) -> Vec<u8> {
    upstream(&Upstream::Hello(Hello {
        version: logship::VERSION,
        sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        agent: "test".into(),
    }))
}

/// Every frame the listener sends until it closes (bounded by [`WAIT`]).
async fn replies<S: AsyncRead + AsyncWrite>(stream: S) -> Vec<Downstream> {
    let (rd, _wr) = tokio::io::split(stream);
    let mut frames = FramedRead::new(rd, OctetCodec::default());
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, frames.next()).await {
            Err(_) => panic!("the listener neither answered nor closed within {WAIT:?}"),
            Ok(Some(Ok(payload))) => out.push(Downstream::decode(&payload).expect("valid reply")),
            Ok(_) => return out,
        }
    }
}

fn refusal(replies: &[Downstream]) -> String {
    match replies.last() {
        Some(Downstream::Refused(reason)) => reason.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn peers_without_an_enrolled_certificate_are_refused() {
    let bench = start(Options::default()).await;
    // A certificate from another CA fails the handshake.
    let foreign = Ca::generate()
        .expect("CA")
        .issue(&IssueRequest::new("w1", ["127.0.0.1"]))
        .expect("issue");
    bench
        .store
        .allow_worker("w1", foreign.fingerprint())
        .expect("allow");
    let config = tls::client_config(&foreign, &ClientOptions::default()).expect("config");
    let tcp = TcpStream::connect(("127.0.0.1", bench.port))
        .await
        .expect("tcp");
    if let Ok(mut stream) = tls::connect(config, "127.0.0.1", tcp).await {
        // TLS 1.3: the server judges the client certificate after the client finished.
        let _ = stream.write_all(&hello(&["s"])).await;
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "foreign CA was served: {read:?}"
        );
    }
    // A decnet certificate whose CN is not enrolled is told so and dropped.
    let stranger = bench.worker("stranger", false);
    let mut stream = bench.connect(&stranger).await;
    let _ = stream.write_all(&hello(&["s"])).await;
    assert!(refusal(&replies(stream).await).contains("not an enrolled worker"));
    assert_eq!(bench.count(), 0);
    bench.stop.cancel();
}

#[tokio::test]
async fn malformed_oversized_and_stalled_frames_close_the_connection() {
    let bench = start(Options::default()).await;
    let worker = bench.worker("w1", true);
    for (bad, expect) in [
        (&b"70000 "[..], "exceed"),
        (b"12a hello", "not a digit"),
        (b"100 only part of the frame", "stalled"),
        (b"9 not-hello", "unexpected frame"),
    ] {
        let mut stream = bench.connect(&worker).await;
        let mut wire = hello(&["src"]);
        wire.extend_from_slice(&upstream(&Upstream::Line {
            idx: 0,
            seq: 1,
            line: event_line(1).into(),
        }));
        wire.extend_from_slice(bad);
        stream.write_all(&wire).await.expect("send");
        let got = replies(stream).await;
        assert!(
            matches!(got.first(), Some(Downstream::Welcome(_))),
            "{got:?}"
        );
        let reason = refusal(&got);
        assert!(reason.contains(expect), "{expect:?} not in {reason:?}");
    }
    // The valid line before each bad frame was kept, once.
    assert_eq!(bench.count(), 1);
    bench.stop.cancel();
}

#[tokio::test]
async fn non_utf8_and_unparsable_lines_are_kept() {
    let bench = start(Options::default()).await;
    let worker = bench.worker("w1", true);
    let mut stream = bench.connect(&worker).await;
    let mut wire = hello(&["src"]);
    for (seq, line) in [
        (1, &b"<13>1 - host app - - - caf\xe9 \xff"[..]),
        (2, b"no header \xc3"),
    ] {
        wire.extend_from_slice(&upstream(&Upstream::Line {
            idx: 0,
            seq,
            line: line.to_vec().into(),
        }));
    }
    stream.write_all(&wire).await.expect("send");
    stream.shutdown().await.expect("close");
    let got = replies(stream).await;
    assert!(got.contains(&Downstream::Ack { idx: 0, seq: 2 }), "{got:?}");
    let logs = bench
        .store
        .reader()
        .expect("reader")
        .logs_after(0, 10)
        .expect("logs");
    let raw: Vec<&str> = logs.iter().map(|l| l.raw_line.as_str()).collect();
    assert_eq!(
        raw,
        [
            "<13>1 - host app - - - caf\u{fffd} \u{fffd}",
            "no header \u{fffd}"
        ]
    );
    assert_eq!(logs[1].event_type, listener::UNPARSED_EVENT);
    bench.stop.cancel();
}

#[tokio::test]
async fn a_full_database_gets_no_acknowledgement() {
    let bench = start(Options {
        max_db_bytes: Some(256 * 1024),
        ..Options::default()
    })
    .await;
    let worker = bench.worker("w1", true);
    let stream = bench.connect(&worker).await;
    let mut wire = hello(&["src"]);
    for seq in 1..=5000 {
        wire.extend_from_slice(&upstream(&Upstream::Line {
            idx: 0,
            seq,
            line: event_line(seq).into(),
        }));
    }
    let (rd, mut wr) = tokio::io::split(stream);
    // The listener may stop reading once the store fails; don't block on that.
    tokio::spawn(async move {
        let _ = wr.write_all(&wire).await;
        let _ = wr.shutdown().await;
    });
    let mut frames = FramedRead::new(rd, OctetCodec::default());
    let mut acked = 0;
    while let Ok(Some(Ok(payload))) = tokio::time::timeout(WAIT, frames.next()).await {
        if let Ok(Downstream::Ack { seq, .. }) = Downstream::decode(&payload) {
            acked = seq;
        }
    }
    let stored = bench.count();
    assert!(stored < 5000, "the database was meant to fill up");
    assert!(
        acked <= stored,
        "acknowledged {acked} lines, stored only {stored}"
    );
    bench.stop.cancel();
}
