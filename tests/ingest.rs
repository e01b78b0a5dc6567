//! The ingester over a real SQLite file: exactly-once derivation across a crash and a
//! restart (cursors in `state`, the profiles' replayed), and its bus notifications through a real broker, or
//! none at all when no broker answers (engine.md §3.3, §3.5).
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use decnet::bus::{Broker, BrokerSettings, Bus, UnixBus};
use decnet::roles::master::ingest::worker::{self, Pipeline, Tuning};
use decnet::store::{AttackerQuery, AttackerSort, LogRecord, Options, Store};
use tokio_util::sync::CancellationToken;

const IP: &str = "203.0.113.9";

/// Event `i` of a stream: every third a repeated credential, the rest commands.
fn event(i: u64) -> String {
    let decky = format!("d{}", i % 3);
    if i.is_multiple_of(3) {
        format!(
            "<134>1 2026-03-04T10:00:00Z {decky} ssh - auth_attempt \
             [relay@55555 src_ip=\"{IP}\" username=\"root\" secret_b64=\"aHVudGVyMg==\"] -"
        )
    } else {
        format!(
            "<134>1 2026-03-04T10:00:00Z {decky} ssh - command \
             [relay@55555 src_ip=\"{IP}\" command=\"echo {i}\"] -"
        )
    }
}

/// Commits events `from..to` through the store's writer.
async fn write(store: &Store, from: u64, to: u64) {
    let (writer, task) = store.spawn_writer().expect("writer");
    let records = (from..to)
        .map(|i| LogRecord::from_line("local", "s", i + 1, event(i).as_bytes()))
        .collect();
    writer.write(records).await.expect("commit");
    drop(writer);
    task.await.expect("writer task");
}

/// (sum of credential attempts, events of the one attacker, its credential count).
fn counts(store: &Store) -> (i64, i64, i64) {
    let r = store.reader().expect("reader");
    let attempts = r
        .credentials(None, 1000, 0)
        .expect("credentials")
        .iter()
        .map(|c| c.attempt_count)
        .sum();
    let q = AttackerQuery {
        search: None,
        service: None,
        sort: AttackerSort::Recent,
        limit: 10,
        offset: 0,
    };
    let a = r.attackers(&q).expect("attackers");
    assert!(a.len() <= 1, "one address, one profile: {a:?}");
    a.first().map_or((attempts, 0, 0), |a| {
        (attempts, a.event_count, a.credential_count)
    })
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_a_restart_repeat_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("decnet.db"), Options::default()).expect("store");
    write(&store, 0, 3000).await;

    // One batch, then the process "dies" (the pipeline is dropped mid-stream).
    let s = store.clone();
    let cursor = tokio::task::spawn_blocking(move || {
        let mut p = Pipeline::open(&s).expect("pipeline");
        let step = p.step(1000).expect("step");
        assert_eq!(step.rows, 1000);
        step.cursor
    })
    .await
    .expect("task");
    // The batch's credentials are stored; its profile changes were still held (a full
    // batch means a backlog) and died with the process: the profile exists, uncounted.
    assert_eq!(counts(&store), (334, 0, 0));

    // A restarted ingester derives the profile again from the profiles' cursor, resumes
    // at the stored cursor and finishes the rest.
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut p = Pipeline::open(&s).expect("pipeline");
        assert_eq!(p.cursor(), cursor);
        while p.step(700).expect("step").rows > 0 {}
    })
    .await
    .expect("task");
    assert_eq!(counts(&store), (1000, 3000, 1000));

    // The real task, cancelled and started again around more events.
    let run = |store: Store| {
        let stop = CancellationToken::new();
        let bus: Arc<dyn Bus> = Arc::new(decnet::bus::NullBus);
        let task = tokio::spawn(worker::run(store, bus, Tuning::default(), stop.clone()));
        (stop, task)
    };
    let (stop, task) = run(store.clone());
    write(&store, 3000, 3300).await;
    let s = store.clone();
    until("300 more events", move || counts(&s).1 == 3300).await;
    stop.cancel();
    assert_eq!(task.await.expect("join"), Ok(()));
    write(&store, 3300, 3303).await;
    let (stop, task) = run(store.clone());
    let s = store.clone();
    until("3 more events", move || counts(&s).1 == 3303).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.cancel();
    assert_eq!(task.await.expect("join"), Ok(()));
    assert_eq!(counts(&store), (1101, 3303, 1101));
    let r = store.reader().expect("reader");
    assert_eq!(
        r.credentials(None, 10, 0).expect("rows").len(),
        1,
        "one identity"
    );
    let a = &r
        .attackers(&AttackerQuery {
            search: None,
            service: None,
            sort: AttackerSort::Recent,
            limit: 1,
            offset: 0,
        })
        .expect("attackers")[0];
    assert_eq!(
        a.commands.len(),
        decnet::roles::master::ingest::MAX_COMMANDS
    );
    assert_eq!(
        a.commands.last().map(|c| c.command.as_str()),
        Some("echo 3302")
    );
    assert_eq!(a.traversal_path.as_deref(), Some("d0 → d1 → d2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_the_bus_and_a_missing_bus_stops_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("decnet.db"), Options::default()).expect("store");

    // No broker at all: ingestion goes on.
    let stop = CancellationToken::new();
    let absent: Arc<dyn Bus> = Arc::new(UnixBus::background(dir.path().join("none.sock"), "t"));
    let task = tokio::spawn(worker::run(
        store.clone(),
        absent,
        Tuning::default(),
        stop.clone(),
    ));
    write(&store, 0, 3).await;
    let s = store.clone();
    until("ingested without a bus", move || counts(&s).1 == 3).await;
    stop.cancel();
    assert_eq!(task.await.expect("join"), Ok(()));

    // A real broker: the three topics arrive.
    let sock = dir.path().join("bus.sock");
    let listener = decnet::roles::bus::bind(&sock, "decnet")
        .await
        .expect("bind");
    let broker = Broker::new(BrokerSettings::default());
    let broker_stop = CancellationToken::new();
    {
        let (b, s) = (broker.clone(), broker_stop.clone());
        tokio::spawn(async move { b.serve(listener, s).await });
    }
    let sub_bus = UnixBus::connect(&sock, "sub").await.expect("connect");
    let mut creds = sub_bus.subscribe("credential.>").expect("sub");
    let mut attackers = sub_bus.subscribe("attacker.>").expect("sub");
    sub_bus.sync().await.expect("sync");
    let bus: Arc<dyn Bus> = Arc::new(UnixBus::connect(&sock, "ingester").await.expect("connect"));
    let stop = CancellationToken::new();
    let task = tokio::spawn(worker::run(
        store.clone(),
        bus,
        Tuning::default(),
        stop.clone(),
    ));
    let other = "<134>1 2026-03-04T10:00:00Z d7 ssh - auth_attempt \
                 [relay@55555 src_ip=\"198.51.100.20\" username=\"a\" secret_b64=\"eA==\"] -";
    let (writer, wtask) = store.spawn_writer().expect("writer");
    writer
        .write(vec![LogRecord::from_line(
            "local",
            "t",
            1,
            other.as_bytes(),
        )])
        .await
        .expect("commit");
    drop(writer);
    wtask.await.expect("writer");
    let within = Duration::from_secs(2);
    let m = tokio::time::timeout(within, creds.recv())
        .await
        .expect("credential.captured");
    let m = m.expect("message");
    assert_eq!(m.topic, "credential.captured");
    let env: serde_json::Value = serde_json::from_slice(&m.body).expect("json");
    assert!(env.to_string().contains("198.51.100.20"), "{env}");
    let mut topics = Vec::new();
    for _ in 0..2 {
        let m = tokio::time::timeout(within, attackers.recv())
            .await
            .expect("attacker.*");
        topics.push(m.expect("message").topic);
    }
    topics.sort();
    assert_eq!(topics, ["attacker.observed", "attacker.scored"]);
    stop.cancel();
    assert_eq!(task.await.expect("join"), Ok(()));
    broker_stop.cancel();
}
