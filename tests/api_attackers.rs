//! `/credentials`, `/attackers` (+ detail, commands, artifacts), `/bounty` and the
//! artifact download over a real master whose ingester derives them from rows written
//! through the real store writer (engine.md §3.5, §7.2).
mod api_common;
mod util;

use std::time::Duration;

use tokio::time::Instant;

use api_common::{Master, Setup, have_curl};
use decnet::store::LogRecord;
use serde_json::{Value, json};

/// The RFC 5424 line of an event with SD parameters `sd` (escaped here).
fn line(time: &str, decky: &str, service: &str, event: &str, sd: &[(&str, &str)]) -> String {
    let params: String = sd
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace(']', "\\]");
            format!(" {k}=\"{v}\"")
        })
        .collect();
    format!("<134>1 {time} {decky} {service} - {event} [relay@55555{params}] -")
}

/// Commits `lines` as source `source` through the store's writer.
async fn write(m: &Master, source: &str, lines: &[String]) {
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

/// GETs `path` with `token` until `done` holds for the JSON body or 2 s pass; the body
/// and how long it took.
async fn until(m: &Master, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = m.req("GET", path).bearer(token).send().await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let body = r.json();
        if done(&body) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{path} not updated within 2 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const A: &str = "203.0.113.5";
const B: &str = "198.51.100.7";

fn auth(time: &str, decky: &str, ip: &str, user: &str, b64: &str) -> String {
    line(
        time,
        decky,
        "ssh",
        "auth_attempt",
        &[
            ("src_ip", ip),
            ("username", user),
            ("secret_printable", "not trusted"),
            ("secret_b64", b64),
        ],
    )
}

fn request(time: &str, decky: &str, ip: &str, ua: &str) -> String {
    let headers = json!({ "Host": "x", "User-Agent": ua }).to_string();
    line(
        time,
        decky,
        "http",
        "request",
        &[
            ("src_ip", ip),
            ("method", "GET"),
            ("path", "/"),
            ("headers", &headers),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_byte_exact_and_repeats_are_counted() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let admin = m.admin().await;
    // 0xff 0x00 "toor": not UTF-8, so only secret_b64 carries it faithfully.
    let secret = "/wB0b29y";
    let started = Instant::now();
    write(
        &m,
        "one",
        &[
            auth("2026-03-04T10:00:00Z", "d1", A, "root", secret),
            auth("2026-03-04T10:00:05Z", "d1", A, "root", "c2VjcmV0"),
            auth("2026-03-04T10:00:01Z", "d1", A, "root", "not base64!"),
        ],
    )
    .await;
    let page = until(&m, &admin, "/api/v1/credentials", |b| {
        b["data"].as_array().is_some_and(|d| d.len() == 2)
    })
    .await;
    eprintln!("credentials visible after {:?}", started.elapsed());
    let data = page["data"].as_array().cloned().unwrap_or_default();
    let c = data
        .iter()
        .find(|c| c["secret_b64"] == secret)
        .unwrap_or_else(|| panic!("no byte-exact credential: {page}"));
    assert_eq!(c["secret_printable"], "??toor");
    assert_eq!(c["principal"], "root");
    assert_eq!(c["secret_kind"], "plaintext");
    assert_eq!(c["decky_name"], "d1");
    assert_eq!(c["attempt_count"], 1);
    assert!(c["attacker_uuid"].is_string(), "{c}");
    let fields = c["fields"].as_str().unwrap_or_default();
    assert!(fields.is_ascii(), "{fields}");

    // The same secret again, later: one row, two attempts, last_seen advanced.
    write(
        &m,
        "two",
        &[auth("2026-03-04T11:00:00Z", "d1", A, "root", secret)],
    )
    .await;
    let page = until(&m, &admin, "/api/v1/credentials?search=toor", |b| {
        b["data"][0]["attempt_count"] == 2
    })
    .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["data"][0]["first_seen"], "2026-03-04 10:00:00");
    assert_eq!(page["data"][0]["last_seen"], "2026-03-04 11:00:00");

    let r = m
        .req("GET", "/api/v1/credentials?limit=0")
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(r.status, 422);
    let r = m
        .req(
            "GET",
            &format!("/api/v1/credentials?search={}", "x".repeat(513)),
        )
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_traverse_deckies_run_commands_and_show_their_tools() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let admin = m.admin().await;
    write(
        &m,
        "one",
        &[
            auth("2026-03-04T10:00:00Z", "d1", A, "root", "dG9vcg=="),
            request("2026-03-04T10:01:00Z", "d2", A, "curl/8.5.0"),
            line(
                "2026-03-04T10:02:00Z",
                "d3",
                "ssh",
                "command",
                &[("src_ip", A), ("command", "uname -a")],
            ),
            line(
                "2026-03-04T10:03:00Z",
                "d3",
                "ssh",
                "command",
                &[("src_ip", A), ("command", "cat /etc/shadow")],
            ),
            request("2026-03-04T10:04:00Z", "d1", A, "curl/8.5.0"),
            request("2026-03-04T09:00:00Z", "d2", B, "python-requests/2.31.0"),
            request(
                "2026-03-04T09:01:00Z",
                "d2",
                B,
                "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
            ),
            request("2026-03-04T09:02:00Z", "d2", B, ""),
            request(
                "2026-03-04T09:03:00Z",
                "d2",
                B,
                "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            ),
            request(
                "2026-03-04T09:04:00Z",
                "d2",
                B,
                "Googlebot/2.1 (+http://www.google.com/bot.html)",
            ),
            request("2026-03-04T09:05:00Z", "d2", B, "Wget/1.21"),
            request("2026-03-04T09:06:00Z", "d2", B, "\u{1}weird"),
        ],
    )
    .await;
    let page = until(&m, &admin, "/api/v1/attackers", |b| {
        b["data"].as_array().is_some_and(|d| d.len() == 2)
    })
    .await;
    let data = page["data"].as_array().cloned().unwrap_or_default();
    // Most recently seen first.
    assert_eq!(data[0]["ip"], A, "{page}");
    let a = &data[0];
    assert_eq!(a["deckies"], json!(["d1", "d2", "d3"]));
    assert_eq!(a["traversal_path"], "d1 → d2 → d3");
    assert_eq!(a["is_traversal"], true);
    assert_eq!(a["services"], json!(["http", "ssh"]));
    assert_eq!(a["event_count"], 5);
    assert_eq!(a["credential_count"], 1);
    // One user agent, seen twice: one bounty.
    assert_eq!(a["bounty_count"], 1);
    assert_eq!(a["first_seen"], "2026-03-04 10:00:00");
    assert_eq!(a["last_seen"], "2026-03-04 10:04:00");
    assert_eq!(a["commands"][0]["command"], "cat /etc/shadow");
    assert_eq!(data[1]["is_traversal"], false);
    assert!(data[1]["traversal_path"].is_null());

    let uuid = a["uuid"].as_str().unwrap_or_default().to_owned();
    let get = |path: String| {
        let token = admin.clone();
        let m = &m;
        async move { m.req("GET", &path).bearer(&token).send().await }
    };
    let r = get(format!("/api/v1/attackers/{uuid}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let detail = r.json();
    assert_eq!(
        detail["fingerprints"][0]["fingerprint_type"],
        "http_useragent"
    );
    let r = get(format!("/api/v1/attackers/{uuid}/commands?limit=1")).await;
    let cmds = r.json();
    assert_eq!(cmds["total"], 2);
    assert_eq!(cmds["data"][0]["command"], "cat /etc/shadow");
    assert_eq!(cmds["data"][0]["decky"], "d3");
    let r = get(format!("/api/v1/attackers/{uuid}/commands?service=http")).await;
    assert_eq!(r.json()["total"], 0);
    let r = get("/api/v1/attackers/not-a-uuid".into()).await;
    assert_eq!((r.status, r.detail().as_str()), (404, "Attacker not found"));

    // Filters and orders.
    let r = get("/api/v1/attackers?sort_by=traversals".into()).await;
    assert_eq!(r.json()["total"], 1);
    let r = get("/api/v1/attackers?sort_by=active".into()).await;
    assert_eq!(r.json()["data"][0]["ip"], B);
    let r = get("/api/v1/attackers?search=198.51".into()).await;
    assert_eq!(r.json()["data"][0]["ip"], B);
    let r = get("/api/v1/attackers?service=ssh".into()).await;
    assert_eq!(r.json()["total"], 1);
    let r = get("/api/v1/attackers?search=%25".into()).await;
    assert_eq!(r.json()["total"], 0, "LIKE wildcards are literal");
    let r = get("/api/v1/attackers?sort_by=loudest".into()).await;
    assert_eq!(r.status, 422);
    let r = get("/api/v1/attackers?limit=x".into()).await;
    assert_eq!(r.status, 400);

    // User-agent categories, one bounty each.
    let r = get(format!(
        "/api/v1/bounty?bounty_type=fingerprint&search={B}&limit=100"
    ))
    .await;
    let bounty = r.json();
    let mut categories: Vec<String> = bounty["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|b| {
            b["payload"]["category"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    categories.sort();
    assert_eq!(
        categories,
        [
            "bot",
            "browser",
            "cli",
            "empty",
            "library",
            "nonstandard",
            "scanner"
        ],
        "{bounty}"
    );
    let r = get("/api/v1/bounty".into()).await;
    assert_eq!(r.json()["total"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_served_only_from_inside_the_root() {
    if !have_curl() {
        return;
    }
    let outside = tempfile::tempdir().expect("outside dir");
    let root = tempfile::tempdir().expect("artifacts root");
    let m = Master::start(Setup {
        artifacts_root: Some(root.path().to_path_buf()),
        ..Setup::default()
    })
    .await;
    let admin = m.admin().await;
    let good = "2026-03-04T10:00:00Z_0123456789ab_dropper.sh";
    let ssh = root.path().join("d1/ssh");
    std::fs::create_dir_all(&ssh).expect("mkdir");
    std::fs::write(ssh.join(good), b"#!/bin/sh\necho pwned\n").expect("write");
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"outside").expect("write");
    let escape = "2026-03-04T10:00:00Z_0123456789ab_escape";
    std::os::unix::fs::symlink(&secret, ssh.join(escape)).expect("symlink");
    std::fs::create_dir_all(outside.path().join("ssh")).expect("mkdir");
    std::fs::write(outside.path().join("ssh").join(good), b"x").expect("write");
    std::os::unix::fs::symlink(outside.path(), root.path().join("d2")).expect("symlink");

    let get = |path: String, token: String| {
        let m = &m;
        async move { m.req("GET", &path).bearer(&token).send().await }
    };
    let r = get(
        format!("/api/v1/artifacts/d1/{good}?service=ssh"),
        admin.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "#!/bin/sh\necho pwned\n");
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/octet-stream");
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"{good}\"")
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("content-length"), "21");

    let cases = [
        (
            format!("/api/v1/artifacts/d1/{good}?service=telnet"),
            400,
            "invalid service",
        ),
        (
            format!("/api/v1/artifacts/D1/{good}"),
            400,
            "invalid decky name",
        ),
        (
            format!("/api/v1/artifacts/..%2F..%2Ftmp/{good}"),
            400,
            "invalid decky name",
        ),
        (
            "/api/v1/artifacts/d1/..%2F..%2F..%2Fetc%2Fpasswd".into(),
            400,
            "invalid stored_as",
        ),
        (
            "/api/v1/artifacts/d1/passwd".into(),
            400,
            "invalid stored_as",
        ),
        (
            format!("/api/v1/artifacts/d1/{escape}"),
            400,
            "path escapes artifacts root",
        ),
        (
            format!("/api/v1/artifacts/d2/{good}"),
            400,
            "path escapes artifacts root",
        ),
        (
            format!("/api/v1/artifacts/d1/{good}?service=ftp"),
            404,
            "artifact not found",
        ),
        (
            "/api/v1/artifacts/d1/2026-03-04T10:00:00Z_0123456789ab_gone".into(),
            404,
            "artifact not found",
        ),
    ];
    for (path, status, detail) in cases {
        let r = get(path.clone(), admin.clone()).await;
        assert_eq!((r.status, r.detail().as_str()), (status, detail), "{path}");
    }

    // The ingestion task runs under both of its health names.
    let r = get("/api/v1/health".into(), admin.clone()).await;
    let health = r.json();
    for name in ["ingestion_worker", "attacker_worker"] {
        assert_eq!(
            health["components"][name],
            json!({"status": "ok"}),
            "{health}"
        );
    }

    // Admin only.
    let r = m
        .req("POST", "/api/v1/config/users")
        .bearer(&admin)
        .json(&json!({"username": "vera", "password": "viewer-password-1", "role": "viewer"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first = m.token("vera", "viewer-password-1").await;
    let r = m
        .req("POST", "/api/v1/auth/change-password")
        .bearer(&first)
        .json(&json!({"old_password": "viewer-password-1", "new_password": "vera-own-password"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let viewer = m.token("vera", "vera-own-password").await;
    let r = get(format!("/api/v1/artifacts/d1/{good}"), viewer.clone()).await;
    assert_eq!(r.status, 403);
    for path in ["/api/v1/attackers", "/api/v1/credentials", "/api/v1/bounty"] {
        assert_eq!(get(path.into(), viewer.clone()).await.status, 200, "{path}");
        let r = m.req("GET", path).send().await;
        assert_eq!(r.status, 401, "{path}");
    }
    let r = m
        .req("GET", &format!("/api/v1/artifacts/d1/{good}"))
        .send()
        .await;
    assert_eq!(r.status, 401);

    // The capture event lists under the attacker, and as an artifact bounty.
    write(
        &m,
        "one",
        &[line(
            "2026-03-04T10:00:00Z",
            "d1",
            "ssh",
            "file_captured",
            &[
                ("src_ip", A),
                ("stored_as", good),
                ("sha256", "0123456789abcdef"),
                ("size", "21"),
                ("orig_path", "/tmp/dropper.sh"),
            ],
        )],
    )
    .await;
    let page = until(&m, &viewer, "/api/v1/attackers", |b| {
        b["data"].as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    let uuid = page["data"][0]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = get(
        format!("/api/v1/attackers/{uuid}/artifacts"),
        viewer.clone(),
    )
    .await;
    let list = r.json();
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["data"][0]["event_type"], "file_captured");
    let r = get("/api/v1/bounty?bounty_type=artifact".into(), viewer).await;
    assert_eq!(r.json()["data"][0]["payload"]["stored_as"], good);
}
