//! The dashboard in a real browser: headless Chromium driven by Selenium
//! (tests/browser/dashboard.py) against a real master on a port-0 listener over a real
//! SQLite file. The script logs in, is forced to change the password, watches the
//! overview's counters and feed rise while this side stores events, searches and tails
//! the live logs, opens every page in both themes (screenshots under
//! `target/screenshots/`) and fails on any console error or rendered attacker markup.
mod api_common;
mod util;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use api_common::{ADMIN_PASSWORD, Master, Setup};
use decnet::store::LogRecord;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const PYTHON: &str = "/usr/bin/python3";
const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// Whether Debian's chromium, chromium-driver and python3-selenium are here.
fn have_browser() -> bool {
    let selenium = std::process::Command::new(PYTHON)
        .args(["-c", "import selenium.webdriver"])
        .output()
        .is_ok_and(|o| o.status.success());
    let ok = selenium && Path::new(CHROMIUM).exists() && Path::new(DRIVER).exists();
    if !ok {
        util::skip("chromium, chromium-driver and python3-selenium");
    }
    ok
}

/// An RFC 5424 line stamped now, from `ip`, carrying `marker` in its message.
fn event(n: usize, marker: &str) -> String {
    let now = decnet::syslog::format_rfc5424(time::OffsetDateTime::now_utc());
    let (service, event, ip) = [
        ("ssh", "login_attempt", "203.0.113.7"),
        ("http", "request", "203.0.113.9"),
        ("ssh", "command", "203.0.113.7"),
    ][n % 3];
    format!(
        "<134>1 {now} decky-web-01 {service} - {event} \
         [relay@55555 src_ip=\"{ip}\" username=\"root\"] {marker} #{n}"
    )
}

/// Stores events `from..to` through the real store writer, each under its own delivery
/// sequence number (the store drops a repeated one as a duplicate delivery).
async fn store_events(m: &Master, from: usize, to: usize, marker: &str) {
    let (writer, task) = m.store.spawn_writer().expect("writer");
    let records = (from..to)
        .map(|i| {
            LogRecord::from_line(
                "local",
                "browser",
                i as u64 + 1,
                event(i, marker).as_bytes(),
            )
        })
        .collect();
    let done = writer.write(records).await.expect("commit");
    assert_eq!(done.inserted, to - from);
    drop(writer);
    task.await.expect("writer task");
}

/// The browser script; asked to stop (SIGTERM) when the test ends early, so it can quit
/// Chromium and chromedriver instead of leaving them behind as a SIGKILL would.
struct Script(tokio::process::Child);

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    if !have_browser() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    store_events(&m, 0, 9, "seed").await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let child = tokio::process::Command::new(PYTHON)
        .arg(&script)
        .args(["--url", &m.url("")])
        .args(["--password", ADMIN_PASSWORD])
        .args(["--new-password", "browser-chosen-password"])
        .arg("--shots")
        .arg(screenshots())
        .args(["--chromium", CHROMIUM, "--driver", DRIVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the browser script");
    let mut child = Script(child);
    let mut to_script = child.0.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let mut passed = false;
    let mut shots = Vec::new();
    let mut sent = 9;
    let talk = async {
        while let Some(line) = lines.next_line().await.expect("read script output") {
            println!("browser: {line}");
            if let Some(rest) = line.strip_prefix("EVENTS ") {
                let (n, marker) = rest.split_once(' ').expect("EVENTS <n> <marker>");
                let n: usize = n.parse().expect("event count");
                store_events(&m, sent, sent + n, marker).await;
                sent += n;
                to_script
                    .write_all(b"OK\n")
                    .await
                    .expect("answer the script");
            } else if let Some(path) = line.strip_prefix("SHOT ") {
                shots.push(PathBuf::from(path));
            } else if line == "PASS" {
                passed = true;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(300), talk)
        .await
        .expect("the browser run finished within 5 minutes");
    let status = child.0.wait().await.expect("script exit");
    assert!(
        status.success() && passed,
        "browser checks failed ({status})"
    );
    for name in [
        "01-login",
        "03-overview",
        "04-live-logs",
        "09-fleet",
        "10-users-config",
    ] {
        for theme in ["dark", "light"] {
            let p = screenshots().join(format!("{name}-{theme}.png"));
            assert!(shots.contains(&p), "no screenshot {}", p.display());
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(size > 10_000, "{} is {size} bytes", p.display());
        }
    }
    println!("screenshots: {}", shots.len());
}
