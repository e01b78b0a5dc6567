//! Attacker profiles built in place over many batches (engine.md §3.5): a stream derived
//! in small batches, across restarts and failed commits, with the profiler flushing
//! after every few batches or holding its changes to the end, gives exactly the
//! profiles, commands, fingerprints, credentials and bounties of the same stream derived
//! in one batch.
use std::time::Duration;

use decnet::roles::master::ingest::profiler::Flush;
use decnet::roles::master::ingest::worker::Pipeline;
use decnet::roles::master::ingest::{MAX_COMMANDS, MAX_FINGERPRINTS};
use decnet::store::{AttackerQuery, AttackerRecord, AttackerSort, LogRecord, Options, Store};

/// Event `i`: five addresses over four deckies, one of them running more commands than
/// a profile keeps and showing more distinct user agents than it lists.
fn event(i: u64) -> String {
    let ip = match i % 7 {
        0..=2 => "203.0.113.9".to_owned(),
        3 => "2001:db8::5".to_owned(),
        4 => "Unknown".to_owned(),
        n => format!("198.51.100.{n}"),
    };
    let decky = format!("d{}", (i / 5) % 4);
    // Timestamps out of order, so first/last seen are not just the first/last row.
    let t = format!("2026-03-04T10:{:02}:{:02}Z", (i * 37) % 60, i % 60);
    let sd = match i % 4 {
        0 => format!(
            r#"src_ip="{ip}" username="root" secret_b64="{}""#,
            ["aHVudGVyMg==", "dG9vcg==", "/wB0b29y"][(i % 3) as usize]
        ),
        1 => format!(r#"src_ip="{ip}" command="echo {i}""#),
        2 => {
            // 85 values, prime to the 7 of the addresses: each address sees them all.
            let ua = format!("agent/{}", (i / 4) % (MAX_FINGERPRINTS as u64 + 21));
            let headers = format!(r#"{{"User-Agent":"{ua}"}}"#).replace('"', "\\\"");
            format!(r#"src_ip="{ip}" method="GET" path="/" headers="{headers}""#)
        }
        _ => format!(
            r#"src_ip="{ip}" stored_as="2026-03-04T10:00:00Z_{:012x}_x.sh" sha256="ab" size="3""#,
            i % 9
        ),
    };
    let (service, kind) = match i % 4 {
        0 => ("ssh", "auth_attempt"),
        1 => ("ssh", "command"),
        2 => ("http", "request"),
        _ => ("ssh", "file_captured"),
    };
    format!("<134>1 {t} {decky} {service} - {kind} [relay@55555 {sd}] -")
}

const EVENTS: u64 = 2000;

async fn store_with_events(dir: &std::path::Path, options: Options) -> Store {
    let store = Store::open(dir.join("decnet.db"), options).expect("store");
    let (writer, task) = store.spawn_writer().expect("writer");
    let records = (0..EVENTS)
        .map(|i| LogRecord::from_line("local", "s", i + 1, event(i).as_bytes()))
        .collect();
    writer.write(records).await.expect("commit");
    drop(writer);
    task.await.expect("writer task");
    store
}

/// Everything derived, with the per-run parts (ids, write times) left out.
fn derived(store: &Store) -> (Vec<AttackerRecord>, Vec<String>, Vec<String>) {
    let r = store.reader().expect("reader");
    let q = AttackerQuery {
        search: None,
        service: None,
        sort: AttackerSort::Active,
        limit: 100,
        offset: 0,
    };
    let mut attackers = r.attackers(&q).expect("attackers");
    for a in &mut attackers {
        // The detail read gives the same record as the list.
        let detail = r.attacker(&a.uuid).expect("detail").expect("present");
        assert_eq!(&detail, a);
        a.uuid.clear();
        a.updated_at.clear();
    }
    // Ties in the order are broken by the (random) uuid.
    attackers.sort_by(|a, b| b.event_count.cmp(&a.event_count).then(a.ip.cmp(&b.ip)));
    let credentials = r
        .credentials(None, 1000, 0)
        .expect("credentials")
        .into_iter()
        .map(|c| {
            let c2 = &c.credential;
            format!(
                "{} {} {} {} {} {} {}",
                c2.attacker_ip,
                c2.attacker_uuid.is_some(),
                c2.decky_name,
                c2.secret_sha256,
                c.first_seen,
                c.last_seen,
                c.attempt_count
            )
        })
        .collect();
    let mut bounties: Vec<String> = r
        .bounties(None, None, 1000, 0)
        .expect("bounties")
        .into_iter()
        .map(|b| {
            format!(
                "{} {} {}",
                b.bounty.attacker_ip, b.bounty.bounty_type, b.bounty.payload
            )
        })
        .collect();
    bounties.sort();
    let mut credentials: Vec<String> = credentials;
    credentials.sort();
    (attackers, credentials, bounties)
}

/// Derives `store` in batches of 23 rows with profile flushes at `flush`. Counting only
/// the batches that move the cursor (not those that replay profiles), the 4th of every 9
/// meets another writer's lock and every 5th is followed by a restart.
fn derive_in_pieces(store: &Store, path: &std::path::Path, flush: &Flush) {
    let mut p = Pipeline::open_with(store, flush.clone()).expect("pipeline");
    let mut round = 0;
    let mut locked = None;
    loop {
        // The commit fails, nothing of the batch counts, and the same batch is derived
        // again (with the profile changes held before it). Steps that only replay
        // profiles without flushing write nothing, so they pass the lock.
        if round % 9 == 4 && locked != Some(round) {
            locked = Some(round);
            let blocker = rusqlite::Connection::open(path).expect("blocker");
            blocker.execute_batch("BEGIN IMMEDIATE").expect("lock");
            let cursor = p.cursor();
            let failed = (0..1000).any(|_| match p.step(23) {
                Err(_) => true,
                Ok(step) => {
                    assert_eq!(p.cursor(), cursor, "nothing commits under the lock");
                    assert!(step.rows > 0, "the stream is not over");
                    false
                }
            });
            assert!(failed, "a commit met the lock");
            blocker.execute_batch("ROLLBACK").expect("unlock");
        }
        let before = p.cursor();
        if p.step(23).expect("step").rows == 0 {
            break;
        }
        if p.cursor() == before {
            continue;
        }
        round += 1;
        // A restart: a new pipeline with nothing in memory.
        if round % 5 == 2 {
            p = Pipeline::open_with(store, flush.clone()).expect("reopen");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_batches_restarts_and_failed_commits_equal_one_batch() {
    let one = tempfile::tempdir().expect("temp dir");
    let whole = store_with_events(one.path(), Options::default()).await;
    let s = whole.clone();
    tokio::task::spawn_blocking(move || {
        let mut p = Pipeline::open(&s).expect("pipeline");
        assert_eq!(p.step(EVENTS as u32).expect("step").rows, EVENTS as usize);
        assert_eq!(p.step(EVENTS as u32).expect("step").rows, 0);
    })
    .await
    .expect("task");
    let (a1, c1, b1) = derived(&whole);
    assert_eq!(a1.len(), 4, "four addresses, Unknown has no profile");
    let busiest = &a1[0];
    assert_eq!(busiest.ip, "203.0.113.9");
    assert_eq!(busiest.commands.len(), MAX_COMMANDS);
    assert_eq!(busiest.command_count, MAX_COMMANDS as i64);
    assert_eq!(busiest.fingerprints.len(), MAX_FINGERPRINTS);
    assert_eq!(busiest.deckies, ["d0", "d1", "d2", "d3"]);
    assert!(busiest.bounty_count > 0 && busiest.credential_count > 0);

    let options = Options {
        busy_timeout: Duration::from_millis(50),
        ..Options::default()
    };
    let every_few = Flush {
        rows: 60,
        ..Flush::default()
    };
    let at_the_end = Flush {
        age: Duration::from_secs(3600),
        ..Flush::default()
    };
    for (name, flush) in [("every few batches", every_few), ("at the end", at_the_end)] {
        let many = tempfile::tempdir().expect("temp dir");
        let pieces = store_with_events(many.path(), options.clone()).await;
        let s = pieces.clone();
        let path = many.path().join("decnet.db");
        tokio::task::spawn_blocking(move || derive_in_pieces(&s, &path, &flush))
            .await
            .expect("task");
        let (a2, c2, b2) = derived(&pieces);
        assert_eq!(a1, a2, "profiles, flushing {name}");
        assert_eq!(c1, c2, "credentials, flushing {name}");
        assert_eq!(b1, b2, "bounties, flushing {name}");
    }
}
