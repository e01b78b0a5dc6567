//! `/stream` and `/auth/sse-ticket` (engine.md §7.1, §7.4) against a real master on a
//! port-0 listener over a real SQLite file: events go in through the store writer and
//! come out of the stream, read with a raw HTTP/1.1 client that de-chunks the body.
mod api_common;
mod util;

use std::time::Duration;

use api_common::{Master, Setup, have_curl};
use decnet::roles::master::Extras;
use decnet::store::LogRecord;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// A syslog line of service `service` on decky `decky`.
fn line(decky: &str, service: &str, msg: &str) -> String {
    format!(
        "<134>1 2026-03-04T10:00:00Z {decky} {service} - connect \
         [relay@55555 src_ip=\"203.0.113.9\"] {msg}"
    )
}

/// Stores `lines` through the real writer, as source `source` (unique per call).
async fn store(m: &Master, source: &str, lines: &[String]) {
    let (writer, task) = m.store.spawn_writer().expect("writer");
    let records = lines
        .iter()
        .enumerate()
        .map(|(i, l)| LogRecord::from_line("local", source, i as u64 + 1, l.as_bytes()))
        .collect();
    let done = writer.write(records).await.expect("commit");
    assert_eq!(done.inserted, lines.len());
    drop(writer);
    task.await.expect("writer task");
}

/// An open event stream, read frame by frame.
struct Sse {
    conn: TcpStream,
    /// Undecoded bytes of the chunked body.
    raw: Vec<u8>,
    /// Decoded body not yet split into frames.
    text: String,
    /// The body ended (terminating chunk or connection closed).
    ended: bool,
}

/// The answer to a stream request: a status and headers, and the stream when it is 200.
struct Opened {
    status: u16,
    head: String,
    body: Option<Sse>,
    /// The body of a non-200 answer.
    error: String,
}

impl Opened {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    fn stream(self) -> Sse {
        assert_eq!(self.status, 200, "{}\n{}", self.head, self.error);
        self.body.expect("a stream")
    }

    fn detail(&self) -> String {
        let v: Value = serde_json::from_str(&self.error).unwrap_or(Value::Null);
        v["detail"].as_str().unwrap_or_default().to_owned()
    }
}

/// Opens `GET path` with `auth` as its `Authorization` header, if any.
async fn open(m: &Master, path: &str, auth: Option<&str>) -> Opened {
    let mut conn = TcpStream::connect(m.addr).await.expect("connect");
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
        m.addr
    );
    if let Some(token) = auth {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut buf = [0u8; 4096];
        let n = timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("headers in time")
            .expect("read");
        assert!(n > 0, "closed before the headers");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let rest = raw[head_end + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut sse = Sse {
        conn,
        raw: rest,
        text: String::new(),
        ended: false,
    };
    if status == 200 {
        return Opened {
            status,
            head,
            body: Some(sse),
            error: String::new(),
        };
    }
    // Error answers are small JSON bodies with a Content-Length.
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while sse.raw.len() < len {
        let mut buf = [0u8; 4096];
        let n = sse.conn.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        sse.raw.extend_from_slice(&buf[..n]);
    }
    Opened {
        status,
        head,
        body: None,
        error: String::from_utf8_lossy(&sse.raw).into_owned(),
    }
}

impl Sse {
    /// Moves complete chunks from `raw` to `text`.
    fn dechunk(&mut self) {
        loop {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..eol]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            if size == 0 {
                self.ended = true;
                return;
            }
            if self.raw.len() < eol + 2 + size + 2 {
                return;
            }
            let data = self.raw[eol + 2..eol + 2 + size].to_vec();
            self.text.push_str(&String::from_utf8_lossy(&data));
            self.raw.drain(..eol + 2 + size + 2);
        }
    }

    /// The next frame (text before a blank line), or `None` when the stream ended or
    /// nothing came within `wait`.
    async fn frame(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            self.dechunk();
            if let Some(i) = self.text.find("\n\n") {
                let frame = self.text[..i].to_owned();
                self.text.drain(..i + 2);
                return Some(frame);
            }
            if self.ended {
                return None;
            }
            let mut buf = [0u8; 8192];
            let left = deadline.checked_duration_since(Instant::now())?;
            match timeout(left, self.conn.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.ended = true;
                    return None;
                }
                Ok(Ok(n)) => self.raw.extend_from_slice(&buf[..n]),
                Err(_) => return None,
            }
        }
    }

    /// The next `event: message` frame's data, skipping comments.
    async fn message(&mut self, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let frame = self.frame(left).await?;
            if frame.starts_with(':') {
                continue;
            }
            assert!(frame.starts_with("event: message\ndata: "), "{frame:?}");
            assert!(!frame.contains("\nid:"), "no id lines: {frame:?}");
            let data = frame.trim_start_matches("event: message\ndata: ");
            return Some(serde_json::from_str(data).expect("JSON data"));
        }
    }

    /// The next message of type `kind` within `wait`, skipping others.
    async fn next_of(&mut self, kind: &str, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let m = self.message(left).await?;
            if m["type"] == kind {
                return Some(m);
            }
        }
    }
}

/// A master with `max` streams per user and tickets living `ttl`.
async fn master(max: u32, ttl: Duration) -> Master {
    Master::start_with(Setup::default(), |home| Extras {
        sse_max_per_user: max,
        ticket_ttl: ttl,
        ..Extras::for_home(home)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_keepalive_stats_histogram_then_new_rows_within_two_seconds() {
    if !have_curl() {
        return;
    }
    let m = master(5, Duration::from_secs(60)).await;
    let token = m.admin().await;
    store(
        &m,
        "before",
        &[
            line("web-1", "http", "old one"),
            line("web-1", "ssh", "old two"),
        ],
    )
    .await;

    let opened = open(&m, "/api/v1/stream", Some(&token)).await;
    assert_eq!(
        opened.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(opened.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(opened.header("x-accel-buffering").as_deref(), Some("no"));
    let mut sse = opened.stream();
    assert_eq!(
        sse.frame(Duration::from_secs(5)).await.as_deref(),
        Some(": keepalive")
    );
    let stats = sse.message(Duration::from_secs(5)).await.expect("stats");
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["data"]["total_logs"], 2);
    let histogram = sse
        .message(Duration::from_secs(5))
        .await
        .expect("histogram");
    assert_eq!(histogram["type"], "histogram");
    assert_eq!(histogram["data"][0]["count"], 2);
    assert_eq!(histogram["data"][0]["time"], "2026-03-04 10:00:00");

    // Rows stored before the stream opened are not replayed (lastEventId absent).
    let committed = Instant::now();
    store(&m, "after", &[line("db-2", "mysql", "fresh")]).await;
    let logs = sse
        .next_of("logs", Duration::from_secs(2))
        .await
        .expect("the new row within 2 s of its commit");
    let took = committed.elapsed();
    let rows = logs["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(rows[0]["decky"], "db-2");
    assert!(rows[0]["fields"].is_string(), "fields as JSON text");
    eprintln!(
        "new row reached the stream {} ms after its commit",
        took.as_millis()
    );
    // Fresh stats follow the rows.
    let after = sse
        .message(Duration::from_secs(2))
        .await
        .expect("stats after logs");
    assert_eq!(after["type"], "stats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_and_search_filters_pick_the_rows() {
    if !have_curl() {
        return;
    }
    let m = master(5, Duration::from_secs(60)).await;
    let token = m.admin().await;
    store(
        &m,
        "first",
        &[
            line("web-1", "http", "a"),
            line("web-1", "ssh", "b"),
            line("db-2", "ssh", "c"),
        ],
    )
    .await;
    // lastEventId=1: rows 2 and 3, filtered to ssh on db-2.
    let mut sse = open(
        &m,
        "/api/v1/stream?lastEventId=1&search=service:ssh%20decky:db-2",
        Some(&token),
    )
    .await
    .stream();
    let logs = sse
        .next_of("logs", Duration::from_secs(3))
        .await
        .expect("resumed rows");
    let rows = logs["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(
        (rows[0]["id"].as_i64(), rows[0]["decky"].as_str()),
        (Some(3), Some("db-2"))
    );
    // The histogram is filtered too.
    let h = sse
        .next_of("histogram", Duration::from_secs(2))
        .await
        .expect("histogram");
    assert_eq!(h["data"][0]["count"], 1, "{h}");

    store(
        &m,
        "second",
        &[line("web-1", "ssh", "d"), line("db-2", "ssh", "e")],
    )
    .await;
    let logs = sse
        .next_of("logs", Duration::from_secs(3))
        .await
        .expect("new rows");
    let rows = logs["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{logs}");
    assert!(
        rows[0]["raw_line"]
            .as_str()
            .unwrap_or_default()
            .ends_with(" e"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_open_one_stream_once_and_expire_and_token_in_the_url_is_refused() {
    if !have_curl() {
        return;
    }
    let m = master(5, Duration::from_secs(2)).await;
    let token = m.admin().await;
    let ticket = || async {
        let r = m
            .req("POST", "/api/v1/auth/sse-ticket")
            .bearer(&token)
            .send()
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        assert_eq!(v["expires_in"], 2);
        v["ticket"].as_str().expect("ticket").to_owned()
    };
    let t = ticket().await;
    assert_eq!(t.len(), 64);
    let mut sse = open(&m, &format!("/api/v1/stream?ticket={t}"), None)
        .await
        .stream();
    assert_eq!(
        sse.frame(Duration::from_secs(5)).await.as_deref(),
        Some(": keepalive")
    );
    let again = open(&m, &format!("/api/v1/stream?ticket={t}"), None).await;
    assert_eq!(
        (again.status, again.detail().as_str()),
        (401, "Could not validate credentials")
    );

    let late = ticket().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = open(&m, &format!("/api/v1/stream?ticket={late}"), None).await;
    assert_eq!(r.status, 401, "an expired ticket");

    for path in [
        format!("/api/v1/stream?token={token}"),
        "/api/v1/stream".to_owned(),
        "/api/v1/stream?ticket=deadbeef".to_owned(),
    ] {
        let r = open(&m, &path, None).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    }
    let anon = m.req("POST", "/api/v1/auth/sse-ticket").send().await;
    assert_eq!(anon.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_user_are_capped_and_slots_come_back() {
    if !have_curl() {
        return;
    }
    let m = master(2, Duration::from_secs(60)).await;
    let token = m.admin().await;
    let mut a = open(&m, "/api/v1/stream", Some(&token)).await.stream();
    let mut b = open(&m, "/api/v1/stream", Some(&token)).await.stream();
    assert!(a.frame(Duration::from_secs(5)).await.is_some());
    assert!(b.frame(Duration::from_secs(5)).await.is_some());
    let third = open(&m, "/api/v1/stream", Some(&token)).await;
    assert_eq!(
        (third.status, third.detail().as_str()),
        (429, "SSE connection limit (2) reached")
    );
    drop(a);
    // The server notices the closed connection and gives the slot back.
    let mut reopened = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if open(&m, "/api/v1/stream", Some(&token)).await.status == 200 {
            reopened = true;
            break;
        }
    }
    assert!(reopened, "a closed stream's slot is given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_stream_and_bad_parameters_are_refused() {
    if !have_curl() {
        return;
    }
    let m = master(5, Duration::from_secs(60)).await;
    // An account that must change its password gets neither tickets nor streams.
    let first = m.token("admin", api_common::ADMIN_PASSWORD).await;
    let r = m
        .req("POST", "/api/v1/auth/sse-ticket")
        .bearer(&first)
        .send()
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(open(&m, "/api/v1/stream", Some(&first)).await.status, 403);
    let token = m.admin().await;
    for (path, status) in [
        ("/api/v1/stream?lastEventId=abc", 400),
        ("/api/v1/stream?lastEventId=-1", 422),
        ("/api/v1/stream?start_time=yesterday", 422),
    ] {
        let r = open(&m, path, Some(&token)).await;
        assert_eq!(r.status, status, "{path}: {}", r.error);
    }
    let long = format!("/api/v1/stream?search={}", "a".repeat(513));
    assert_eq!(open(&m, &long, Some(&token)).await.status, 422);

    let mut sse = open(&m, "/api/v1/stream", Some(&token)).await.stream();
    assert!(sse.message(Duration::from_secs(5)).await.is_some());
    let r = m
        .req("POST", "/api/v1/auth/logout")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let started = Instant::now();
    while sse.frame(Duration::from_secs(5)).await.is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the stream keeps going"
        );
    }
    assert!(sse.ended, "the stream ends after logout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "ended at the next poll"
    );
}
