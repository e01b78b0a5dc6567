//! The service bus end to end: a real broker on a real UNIX socket in a temp directory,
//! real clients, raw sockets for misbehaving peers, and the `decnet` binary itself.
//!
//! Synchronisation is by protocol, never by sleeping: `UnixBus::sync` (PING/PONG) returns
//! once the broker has processed everything sent before it, so after the publisher's and
//! then the subscriber's `sync`, every routed event is already in the subscriber's inbox.
//! Every wait is bounded, so a bug fails the test instead of hanging it. The tests that
//! drive the `decnet` binary are in [`binary`].
mod binary;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use decnet::bus::wire::{self, Frame, FrameReader, MAX_BODY, MAX_HEADER, Verb};
use decnet::bus::{Broker, BrokerSettings, Bus, Message, Subscription, UnixBus};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use tokio::task::JoinHandle;
use tokio_util::bytes::BytesMut;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(30);

/// Fails the test if `fut` does not finish within [`LIMIT`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

struct TestBroker {
    _dir: tempfile::TempDir,
    path: PathBuf,
    broker: Broker,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl TestBroker {
    async fn start() -> TestBroker {
        TestBroker::with(BrokerSettings::default()).await
    }

    async fn with(settings: BrokerSettings) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bus.sock");
        let (broker, stop, task) = serve_on(&path, settings).await;
        TestBroker {
            _dir: dir,
            path,
            broker,
            stop,
            task,
        }
    }

    async fn client(&self, name: &str) -> UnixBus {
        UnixBus::connect(&self.path, name).await.expect("connect")
    }

    async fn raw(&self) -> Raw {
        Raw::connect(&self.path).await
    }
}

async fn serve_on(
    path: &Path,
    settings: BrokerSettings,
) -> (Broker, CancellationToken, JoinHandle<()>) {
    let listener = decnet::roles::bus::bind(path, "decnet")
        .await
        .expect("bind");
    let broker = Broker::new(settings);
    let stop = CancellationToken::new();
    let task = {
        let (broker, stop) = (broker.clone(), stop.clone());
        tokio::spawn(async move { broker.serve(listener, stop).await })
    };
    (broker, stop, task)
}

/// A hand-driven connection for peers the client library would never imitate.
struct Raw {
    rd: FrameReader<OwnedReadHalf>,
    wr: tokio::net::unix::OwnedWriteHalf,
}

impl Raw {
    async fn connect(path: &Path) -> Raw {
        let (rd, wr) = UnixStream::connect(path)
            .await
            .expect("raw connect")
            .into_split();
        Raw {
            rd: FrameReader::new(rd),
            wr,
        }
    }

    async fn send(&mut self, verb: Verb, arg: &str, body: &[u8]) {
        let mut buf = BytesMut::new();
        wire::encode(verb, arg, body, &mut buf).expect("encode");
        self.send_bytes(&buf).await;
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.expect("raw write");
    }

    async fn next(&mut self) -> Option<Frame> {
        within("raw read", self.rd.next()).await.expect("raw frame")
    }

    /// Expects an `ERR` frame and returns its reason.
    async fn expect_err(&mut self) -> String {
        let frame = self.next().await.expect("an ERR frame, not the end");
        assert_eq!(frame.verb, Verb::Err, "{frame:?}");
        let body: Value = serde_json::from_slice(&frame.body).expect("ERR body is JSON");
        body["error"].as_str().expect("error text").to_owned()
    }

    /// Proves the connection is still served.
    async fn ping(&mut self, token: &str) {
        self.send(Verb::Ping, token, b"").await;
        assert_eq!(self.next().await, Some(Frame::bare(Verb::Pong, token)));
    }

    /// Expects the broker to close the connection (a reset counts: the broker may close
    /// before reading everything a garbage-spewing peer sent).
    async fn expect_closed(&mut self) {
        match within("raw close", self.rd.next()).await {
            Ok(None) | Err(wire::WireError::Io(_)) => {}
            other => panic!("connection should be closed, got {other:?}"),
        }
    }
}

/// Everything already delivered to `sub` (call after the syncs).
fn drain(sub: &mut Subscription) -> Vec<Message> {
    std::iter::from_fn(|| sub.try_recv()).collect()
}

fn topics(msgs: &[Message]) -> Vec<String> {
    msgs.iter().map(|m| m.topic.clone()).collect()
}

async fn recv(sub: &mut Subscription) -> Message {
    within("an event", sub.recv())
        .await
        .expect("subscription still open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_route_token_by_token() {
    let b = TestBroker::start().await;
    let publisher = b.client("pub").await;
    let subscriber = b.client("sub").await;
    let mut star = subscriber.subscribe("a.*.c").expect("sub");
    let mut tail = subscriber.subscribe("a.>").expect("sub");
    let mut exact = subscriber.subscribe("a.b.c").expect("sub");
    // The publisher's own subscriptions never receive its own events.
    let mut own = publisher.subscribe(">").expect("sub");
    within("sub sync", subscriber.sync()).await.expect("sync");
    within("pub sync", publisher.sync()).await.expect("sync");

    for topic in ["a.b.c", "a.x.c", "a.b", "a.b.c.d", "a", "b.b.c", "a.b.x"] {
        publisher
            .publish(topic, "test", &json!({ "topic": topic }))
            .expect("publish");
    }
    within("pub sync", publisher.sync()).await.expect("sync");
    within("sub sync", subscriber.sync()).await.expect("sync");

    assert_eq!(topics(&drain(&mut star)), ["a.b.c", "a.x.c"]);
    assert_eq!(
        topics(&drain(&mut tail)),
        ["a.b.c", "a.x.c", "a.b", "a.b.c.d", "a.b.x"]
    );
    assert_eq!(topics(&drain(&mut exact)), ["a.b.c"]);
    assert!(drain(&mut own).is_empty(), "no echo to the publisher");

    // The broker sends one EVT per event however many local patterns match it.
    assert_eq!(subscriber.stats().received, 5);
    let env = {
        let mut sub = subscriber.subscribe("z").expect("sub");
        within("sub sync", subscriber.sync()).await.expect("sync");
        publisher
            .publish("z", "kind", &json!({"k": [1, 2]}))
            .expect("publish");
        recv(&mut sub).await.envelope().expect("envelope")
    };
    assert_eq!(
        (env.v, env.topic.as_str(), env.event_type.as_str()),
        (1, "z", "kind")
    );
    assert_eq!(env.payload, json!({"k": [1, 2]}));
    assert_eq!(env.id.len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery_once_the_last_handle_goes() {
    let b = TestBroker::start().await;
    let publisher = b.client("pub").await;
    let subscriber = b.client("sub").await;
    let mut first = subscriber.subscribe("a.>").expect("sub");
    let second = subscriber.subscribe("a.>").expect("sub");
    within("sub sync", subscriber.sync()).await.expect("sync");

    publisher.publish("a.1", "t", &json!({})).expect("publish");
    assert_eq!(recv(&mut first).await.topic, "a.1");

    // One handle left: the pattern stays subscribed at the broker.
    drop(second);
    within("sub sync", subscriber.sync()).await.expect("sync");
    publisher.publish("a.2", "t", &json!({})).expect("publish");
    assert_eq!(recv(&mut first).await.topic, "a.2");

    // Last handle gone: UNSUB reaches the broker, which stops sending.
    drop(first);
    within("sub sync", subscriber.sync()).await.expect("sync");
    publisher.publish("a.3", "t", &json!({})).expect("publish");
    within("pub sync", publisher.sync()).await.expect("sync");
    within("sub sync", subscriber.sync()).await.expect("sync");
    assert_eq!(subscriber.stats().received, 2, "a.3 was not sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_subscribers_each_get_every_event_in_order() {
    let b = TestBroker::start().await;
    let publisher = b.client("pub").await;
    let mut subscribers = Vec::new();
    for i in 0..20 {
        let bus = b.client(&format!("sub{i}")).await;
        let sub = bus.subscribe("load.>").expect("sub");
        within("sub sync", bus.sync()).await.expect("sync");
        subscribers.push((bus, sub));
    }
    within("pub sync", publisher.sync()).await.expect("sync");
    assert_eq!(b.broker.stats().connections, 21);
    for n in 0..300 {
        publisher
            .publish(&format!("load.{}", n % 7), "t", &json!({ "n": n }))
            .expect("publish");
    }
    within("pub sync", publisher.sync()).await.expect("sync");
    for (bus, sub) in &mut subscribers {
        within("sub sync", bus.sync()).await.expect("sync");
        let got: Vec<i64> = drain(sub)
            .iter()
            .map(|m| {
                m.envelope().expect("envelope").payload["n"]
                    .as_i64()
                    .expect("n")
            })
            .collect();
        assert_eq!(got, (0..300).collect::<Vec<_>>());
    }
    let stats = b.broker.stats();
    assert_eq!(
        (stats.published, stats.delivered, stats.dropped),
        (300, 6000, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnect_and_resubscribe_after_a_broker_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bus.sock");
    let (_, stop, task) = serve_on(&path, BrokerSettings::default()).await;
    let subscriber = UnixBus::connect(&path, "sub").await.expect("connect");
    let mut sub = subscriber.subscribe("restart.>").expect("sub");
    within("sub sync", subscriber.sync()).await.expect("sync");
    let mut link = subscriber.link();
    assert_eq!(link.borrow().established, 1);

    stop.cancel();
    within("old broker stops", task).await.expect("joined");
    // Any connection counted so far was to the old broker.
    let before = link.borrow().established;

    // The new broker goes through the role's own entry point, on the same path.
    let config = decnet::config::parse(&HashMap::from([(
        "DECNET_HOME",
        dir.path().to_str().expect("utf-8 path"),
    )]))
    .expect("config");
    let listener = decnet::roles::bus::bind(&path, "decnet")
        .await
        .expect("stale socket replaced");
    let stop = CancellationToken::new();
    let task = {
        let stop = stop.clone();
        tokio::spawn(async move { decnet::roles::bus::serve(listener, &config, stop).await })
    };

    within(
        "reconnect",
        link.wait_for(|l| l.up && l.established > before),
    )
    .await
    .expect("client alive");
    within("sub sync", subscriber.sync()).await.expect("sync");
    let publisher = UnixBus::connect(&path, "pub").await.expect("connect");
    publisher
        .publish("restart.done", "t", &json!({"ok": true}))
        .expect("publish");
    let msg = recv(&mut sub).await;
    assert_eq!(msg.topic, "restart.done");
    assert!(subscriber.stats().connections >= 2);

    stop.cancel();
    within("new broker stops", task).await.expect("joined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_costs_only_itself() {
    let b = TestBroker::start().await;
    // Subscribes, confirms, then never reads again.
    let mut stalled = b.raw().await;
    stalled.send(Verb::Sub, "flood.>", b"").await;
    stalled.ping("ready").await;

    let healthy_bus = b.client("healthy").await;
    let mut healthy = healthy_bus.subscribe("flood.>").expect("sub");
    within("sub sync", healthy_bus.sync()).await.expect("sync");
    let publisher = b.client("pub").await;

    let body = json!({ "pad": "x".repeat(200) });
    let (chunks, per_chunk) = (16, 500);
    let mut seen = 0;
    for chunk in 0..chunks {
        for i in 0..per_chunk {
            let n = chunk * per_chunk + i;
            publisher
                .publish(&format!("flood.{n}"), "t", &body)
                .expect("publish never waits");
        }
        // The healthy subscriber keeps up while the stalled one's socket is full.
        while seen < (chunk + 1) * per_chunk {
            let msg = recv(&mut healthy).await;
            assert_eq!(msg.topic, format!("flood.{seen}"));
            seen += 1;
        }
    }
    within("pub sync", publisher.sync()).await.expect("sync");
    let stats = b.broker.stats();
    assert_eq!(stats.published, (chunks * per_chunk) as u64);
    assert!(
        stats.dropped > 0,
        "frames for the stalled subscriber were dropped and counted: {stats:?}"
    );
    assert_eq!(publisher.stats().dropped, 0);
    assert_eq!(healthy_bus.stats().inbound_dropped, 0);
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_an_error_and_the_broker_keeps_serving() {
    let b = TestBroker::start().await;

    // Intact frames with bad content: ERR, and the connection stays usable.
    let mut raw = b.raw().await;
    raw.send(Verb::Pub, "a..b", b"{}").await;
    assert!(raw.expect_err().await.contains("empty token"));
    raw.send(Verb::Pub, "a.*", b"{}").await;
    assert!(raw.expect_err().await.contains("wildcard"));
    raw.send(Verb::Sub, "a.>.c", b"").await;
    assert!(raw.expect_err().await.contains("wildcard"));
    raw.send(Verb::Pub, "a.b", b"[1,2]").await;
    assert!(raw.expect_err().await.contains("JSON"));
    raw.ping("still-here").await;

    // Subscriptions per connection are bounded.
    let mut subs = BytesMut::new();
    for i in 0..=decnet::bus::broker::MAX_PATTERNS {
        wire::encode(Verb::Sub, &format!("many.{i}"), b"", &mut subs).expect("encode");
    }
    raw.send_bytes(&subs).await;
    assert!(raw.expect_err().await.contains("patterns"));
    raw.ping("still-here").await;

    // Broken framing: ERR, then the broker closes that connection only.
    let mut raw = b.raw().await;
    let too_big = u32::try_from(MAX_BODY + 1).expect("fits");
    raw.send_bytes(&[b"PUB a.b\n".as_slice(), &too_big.to_be_bytes()].concat())
        .await;
    assert!(raw.expect_err().await.contains("exceeds"));
    raw.expect_closed().await;

    let mut raw = b.raw().await;
    raw.send_bytes(b"\x00\xff\xfe garbage \x01\n\x00\x00\x00\x00")
        .await;
    assert!(raw.expect_err().await.contains("ASCII"));
    raw.expect_closed().await;

    let mut raw = b.raw().await;
    raw.send_bytes(b"FETCH everything\n\x00\x00\x00\x00").await;
    assert!(raw.expect_err().await.contains("unknown verb"));
    raw.expect_closed().await;

    let mut raw = b.raw().await;
    raw.send_bytes(&vec![b'A'; MAX_HEADER + 10]).await;
    assert!(raw.expect_err().await.contains("header longer"));
    raw.expect_closed().await;

    let mut raw = b.raw().await;
    raw.send(Verb::Evt, "a.b", b"{}").await;
    assert!(raw.expect_err().await.contains("sent by the broker"));
    raw.expect_closed().await;

    // A client that gives up mid-frame is just a closed connection.
    let mut raw = b.raw().await;
    raw.send_bytes(b"PUB a.b\n\x00\x00\x01\x00{").await;
    drop(raw);

    assert_eq!(b.broker.stats().errors, 10);

    // Everyone else is unaffected.
    let publisher = b.client("pub").await;
    let subscriber = b.client("sub").await;
    let mut sub = subscriber.subscribe("ok.*").expect("sub");
    within("sub sync", subscriber.sync()).await.expect("sync");
    publisher.publish("ok.1", "t", &json!({})).expect("publish");
    assert_eq!(recv(&mut sub).await.topic, "ok.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_without_a_broker_fails_softly() {
    let mut b = TestBroker::start().await;
    let bus = b.client("pub").await;
    let mut link = bus.link();
    b.stop.cancel();
    within("broker stops", &mut b.task).await.expect("joined");
    within("broker gone", link.wait_for(|l| !l.up))
        .await
        .expect("client alive");
    assert!(!bus.is_connected());
    assert!(matches!(
        bus.publish("a.b", "t", &json!({})),
        Err(decnet::bus::Error::NotConnected)
    ));
    // Not connected: refused and counted, and publish_safely swallows it.
    let before = decnet::bus::publish_failures();
    decnet::bus::publish_safely(Some(&bus), "a.b", &json!({}), "t");
    assert!(decnet::bus::publish_failures() > before);
    assert!(bus.stats().dropped >= 1);
    bus.close();
    assert!(matches!(
        bus.publish("a.b", "t", &json!({})),
        Err(decnet::bus::Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_publishes_its_heartbeat() {
    let b = TestBroker::with(BrokerSettings {
        health_interval: Duration::from_millis(50),
        ..BrokerSettings::default()
    })
    .await;
    let bus = b.client("watcher").await;
    let mut health = bus.subscribe("system.*.health").expect("sub");
    let env = recv(&mut health).await.envelope().expect("envelope");
    assert_eq!(env.topic, decnet::bus::topics::SYSTEM_BUS_HEALTH);
    assert_eq!(env.payload["pid"], json!(std::process::id()));
    assert!(env.payload["uptime_sec"].is_u64());
    assert!(env.payload["ts"].as_f64().is_some_and(|ts| ts > 1.6e9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_threads_publish_without_a_runtime() {
    let b = TestBroker::start().await;
    let subscriber = b.client("sub").await;
    let mut sub = subscriber.subscribe("thread.*").expect("sub");
    within("sub sync", subscriber.sync()).await.expect("sync");
    let publisher = b.client("pub").await;
    let from_thread = publisher.clone();
    std::thread::spawn(move || {
        decnet::bus::publish_safely(Some(&from_thread), "thread.1", &json!({}), "t");
    })
    .join()
    .expect("thread");
    assert_eq!(recv(&mut sub).await.topic, "thread.1");
    assert_eq!(publisher.stats().published, 1);
}
