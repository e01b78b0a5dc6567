//! `/logs`, `/logs/histogram` and `/stats` over rows written through the real store
//! writer: the search grammar of engine.md §3.4 and the pagination bounds of §7.2.
mod api_common;
mod util;

use api_common::{Master, Setup, have_curl};
use decnet::store::LogRecord;
use serde_json::Value;

fn line(
    time: &str,
    decky: &str,
    service: &str,
    event: &str,
    ip: &str,
    sd: &str,
    msg: &str,
) -> String {
    format!("<134>1 {time} {decky} {service} - {event} [relay@55555 src_ip=\"{ip}\"{sd}] {msg}")
}

/// Six events over two deckies, three services and two attackers.
fn lines() -> Vec<String> {
    vec![
        line(
            "2026-03-04T10:00:00Z",
            "web-1",
            "http",
            "request",
            "203.0.113.5",
            r#" path="/admin""#,
            "GET /admin",
        ),
        line(
            "2026-03-04T10:05:00Z",
            "web-1",
            "ssh",
            "login_attempt",
            "203.0.113.5",
            r#" username="root" password="toor""#,
            "Failed login",
        ),
        line(
            "2026-03-04T10:20:00Z",
            "db-2",
            "ssh",
            "login_attempt",
            "198.51.100.7",
            r#" username="oracle" password="x y""#,
            "Failed login",
        ),
        line(
            "2026-03-04T10:21:00Z",
            "db-2",
            "mysql",
            "connect",
            "198.51.100.7",
            "",
            "hello 100% sure",
        ),
        line(
            "2026-03-04T11:40:00Z",
            "db-2",
            "ssh",
            "command",
            "198.51.100.7",
            r#" command="uname -a""#,
            "uname -a",
        ),
        line(
            "2026-03-04T11:50:00Z",
            "web-1",
            "http",
            "request",
            "203.0.113.5",
            r#" path="/x_y""#,
            "GET /x_y",
        ),
    ]
}

async fn search(m: &Master, token: &str, query: &str) -> (u16, Value) {
    let r = m
        .req("GET", &format!("/api/v1/logs?{query}"))
        .bearer(token)
        .send()
        .await;
    let body = if r.status == 200 {
        r.json()
    } else {
        Value::String(r.text.clone())
    };
    (r.status, body)
}

/// The `msg` of each returned row, in order.
fn msgs(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r["msg"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_grammar_filters_on_columns_fields_and_text() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    m.write_lines(&lines()).await;
    let t = m.admin().await;

    let (status, all) = search(&m, &t, "").await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], 6);
    assert_eq!(
        (all["limit"].as_i64(), all["offset"].as_i64()),
        (Some(50), Some(0))
    );
    assert_eq!(msgs(&all)[0], "GET /x_y", "newest first");
    let row = &all["data"][0];
    assert_eq!(row["timestamp"], "2026-03-04 11:50:00");
    assert_eq!(
        (row["decky"].as_str(), row["service"].as_str()),
        (Some("web-1"), Some("http"))
    );
    assert_eq!(row["attacker_ip"], "203.0.113.5");
    let fields: Value =
        serde_json::from_str(row["fields"].as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(fields["path"], "/x_y", "fields come back as JSON text");

    let cases: &[(&str, &[&str])] = &[
        (
            "decky:db-2",
            &["uname -a", "hello 100% sure", "Failed login"],
        ),
        ("service:ssh", &["uname -a", "Failed login", "Failed login"]),
        ("event:connect", &["hello 100% sure"]),
        (
            "attacker:203.0.113.5 service:http",
            &["GET /x_y", "GET /admin"],
        ),
        ("attacker-ip:198.51.100.7 event:command", &["uname -a"]),
        ("attacker_ip:198.51.100.7 decky:web-1", &[]),
        ("username:root", &["Failed login"]),
        ("password:\"x y\"", &["Failed login"]),
        ("'uname -a'", &["uname -a"]),
        ("admin", &["GET /admin"]),
        ("ADMIN", &["GET /admin"]),
        ("100%", &["hello 100% sure"]),
        ("x_y", &["GET /x_y"]),
        ("web db", &[]),
        ("x') OR 1=1 --", &[]),
        ("decky:web-1' OR '1'='1", &[]),
        ("pa\"th:/admin", &["GET /admin"]),
    ];
    for (q, want) in cases {
        let (status, page) = search(&m, &t, &format!("search={}", enc(q))).await;
        assert_eq!(status, 200, "{q}: {page}");
        assert_eq!(msgs(&page), *want, "{q}");
        assert_eq!(page["total"].as_u64(), Some(want.len() as u64), "{q}");
    }

    // Time bounds, inclusive, in any offset.
    let (_, page) = search(
        &m,
        &t,
        "start_time=2026-03-04T10:20:00Z&end_time=2026-03-04T12:45:00%2B01:00",
    )
    .await;
    assert_eq!(msgs(&page), ["uname -a", "hello 100% sure", "Failed login"]);
    let (_, page) = search(&m, &t, "start_time=null&end_time=undefined&search=").await;
    assert_eq!(page["total"], 6);
    let (status, _) = search(&m, &t, "start_time=yesterday").await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_within_their_bounds() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    m.write_lines(&lines()).await;
    let t = m.admin().await;

    let (_, page) = search(&m, &t, "limit=2&offset=1").await;
    assert_eq!(msgs(&page), ["uname -a", "hello 100% sure"]);
    assert_eq!(page["total"], 6);
    let (_, page) = search(&m, &t, "limit=50&offset=6").await;
    assert_eq!(msgs(&page), Vec::<String>::new());
    let (_, page) = search(&m, &t, "limit=1000&offset=2147483647").await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(0));
    let (_, page) = search(&m, &t, "limit=NULL").await;
    assert_eq!(page["limit"], 50);

    for (q, code) in [
        ("limit=0", 422),
        ("limit=1001", 422),
        ("limit=-5", 422),
        ("offset=-1", 422),
        ("offset=2147483648", 422),
        ("limit=99999999999999999999999", 400),
        ("limit=ten", 400),
        ("offset=1.5", 400),
    ] {
        let r = m
            .req("GET", &format!("/api/v1/logs?{q}"))
            .bearer(&t)
            .send()
            .await;
        assert_eq!(r.status, code, "{q}: {}", r.text);
        assert!(!r.detail().is_empty(), "{q}: {}", r.text);
    }
    let long = "a".repeat(513);
    let (status, _) = search(&m, &t, &format!("search={long}")).await;
    assert_eq!(status, 422);
    let (status, _) = search(&m, &t, &format!("search={}", &long[..512])).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_and_stats_count_what_is_stored() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    m.write_lines(&lines()).await;
    let t = m.admin().await;

    let r = m
        .req("GET", "/api/v1/logs/histogram")
        .bearer(&t)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let want = serde_json::json!([
        {"time": "2026-03-04 10:00:00", "count": 2},
        {"time": "2026-03-04 10:15:00", "count": 2},
        {"time": "2026-03-04 11:30:00", "count": 1},
        {"time": "2026-03-04 11:45:00", "count": 1},
    ]);
    assert_eq!(r.json(), want);
    let r = m
        .req(
            "GET",
            "/api/v1/logs/histogram?interval_minutes=60&search=service:ssh",
        )
        .bearer(&t)
        .send()
        .await;
    assert_eq!(
        r.json(),
        serde_json::json!([
            {"time": "2026-03-04 10:00:00", "count": 2},
            {"time": "2026-03-04 11:00:00", "count": 1},
        ])
    );
    for q in [
        "interval_minutes=0",
        "interval_minutes=-1",
        "interval_minutes=999999999",
    ] {
        let r = m
            .req("GET", &format!("/api/v1/logs/histogram?{q}"))
            .bearer(&t)
            .send()
            .await;
        assert_eq!(r.status, 422, "{q}");
    }
    assert_eq!(
        m.req("GET", "/api/v1/logs/histogram?interval_minutes=x")
            .bearer(&t)
            .send()
            .await
            .status,
        400
    );

    let r = m.req("GET", "/api/v1/stats").bearer(&t).send().await;
    assert_eq!(
        r.json(),
        serde_json::json!({
            "total_logs": 6, "unique_attackers": 2, "active_deckies": 0, "deployed_deckies": 0
        })
    );
}

/// The unfiltered first page is served from a 1 s cache: it catches up with new events
/// by itself, while every other page sees them at once, and once fresh it is the very
/// page the uncached path builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_polled_first_page_catches_up_and_matches_the_uncached_one() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let all = lines();
    m.write_lines(&all[..3]).await;
    let t = m.admin().await;
    let (_, first) = search(&m, &t, "").await;
    assert_eq!(msgs(&first), ["Failed login", "Failed login", "GET /admin"]);

    let (writer, task) = m.store.spawn_writer().expect("writer");
    let later = all[3..]
        .iter()
        .enumerate()
        .map(|(i, l)| LogRecord::from_line("local", "later", i as u64 + 1, l.as_bytes()))
        .collect();
    assert_eq!(writer.write(later).await.expect("commit").inserted, 3);
    drop(writer);
    task.await.expect("writer task");

    let (_, second) = search(&m, &t, "limit=50&offset=1").await;
    assert_eq!(
        msgs(&second).len(),
        5,
        "an uncached page sees new rows at once"
    );
    let mut cached = Value::Null;
    for _ in 0..100 {
        (_, cached) = search(&m, &t, "limit=50&offset=0").await;
        if cached["total"] == 6 && msgs(&cached).len() == 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        msgs(&cached)[0],
        "GET /x_y",
        "the cached page caught up: {cached}"
    );
    assert_eq!(cached["total"], 6);
    // A time bound that excludes nothing takes the uncached path.
    let (_, uncached) = search(&m, &t, "start_time=2000-01-01").await;
    assert_eq!(cached, uncached);
    let (_, absent) = search(&m, &t, "").await;
    assert_eq!(absent, cached, "no limit and limit=50 are one page");
}
