//! rsyslog (the Debian package) as a real peer, both ways, proving the octet-counted
//! framing interoperates: `decnet forwarder --plain` → rsyslog `imtcp` → file, and rsyslog
//! `omfwd` (`TCP_Framing="octet-counted"`) → `decnet listener` (plain-TCP test mode).
//!
//! rsyslogd runs as our own child with a temp configuration. Without it the tests print
//! `SKIP: <test>: rsyslog …`, except under CI (`CI=true`), where they fail.
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::Signal;

use super::{LIMIT, Proc, Site, event_line, free_port, wait_until};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// The rsyslogd binary, or `None` after a skip notice (a failure under CI).
fn rsyslogd() -> Option<PathBuf> {
    let path = PathBuf::from(RSYSLOGD);
    if path.exists() {
        return Some(path);
    }
    super::util::skip(&format!("rsyslog ({RSYSLOGD} not installed)"));
    None
}

/// Starts rsyslogd in the foreground on `conf`, waiting until `port` accepts.
fn start_rsyslog(bin: &Path, dir: &Path, conf: &str, port: u16) -> Proc {
    let conf_path = dir.join("rsyslog.conf");
    fs::write(&conf_path, conf).expect("write rsyslog.conf");
    let proc = Proc::spawn(
        Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid")),
        &dir.join("rsyslogd.log"),
    );
    wait_until(LIMIT, "rsyslogd to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    proc
}

fn rsyslog_dir(site: &Site) -> PathBuf {
    let dir = site.home().join("rsyslog");
    fs::create_dir_all(&dir).expect("rsyslog dir");
    dir
}

#[test]
fn plain_forwarder_feeds_rsyslog_imtcp() {
    let Some(bin) = rsyslogd() else { return };
    let site = Site::new();
    let dir = rsyslog_dir(&site);
    let received = dir.join("received.log");
    let conf = format!(
        r#"global(workDirectory="{dir}")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="fromdecnet") {{
  action(type="omfile" file="{out}" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="fromdecnet")
"#,
        dir = dir.display(),
        out = received.display(),
        port = site.port,
    );
    let mut rsyslog = start_rsyslog(&bin, &dir, &conf, site.port);

    fs::create_dir_all(site.log_dir()).expect("log dir");
    let log = site.log_dir().join("decnet.log");
    let lines: Vec<String> = (0..500).map(event_line).collect();
    fs::write(&log, lines.join("\n") + "\n").expect("write the log");
    let mut forwarder = site.forwarder(
        "forwarder",
        &site.home().join("agent"),
        &log,
        &["--plain", "--insecure-tcp"],
    );
    wait_until(LIMIT, "rsyslog to write every line", || {
        fs::read_to_string(&received).is_ok_and(|t| t.lines().count() >= lines.len())
    });
    let text = fs::read_to_string(&received).expect("received");
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got, lines, "rsyslog wrote other lines than were shipped");
    forwarder.stop(Signal::SIGTERM);
    rsyslog.stop(Signal::SIGTERM);
}

#[test]
fn rsyslog_omfwd_octet_counted_feeds_the_listener() {
    let Some(bin) = rsyslogd() else { return };
    let site = Site::new();
    let dir = rsyslog_dir(&site);
    let input_port = free_port();
    let conf = format!(
        r#"global(workDirectory="{dir}")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%")
ruleset(name="todecnet") {{
  action(type="omfwd" target="127.0.0.1" port="{listener}" protocol="tcp"
         TCP_Framing="octet-counted" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{input}" ruleset="todecnet")
"#,
        dir = dir.display(),
        listener = site.port,
        input = input_port,
    );
    let mut listener = site.listener(
        "listener",
        &["--insecure-tcp", "--plain-worker", "rsyslog-peer"],
    );
    let mut rsyslog = start_rsyslog(&bin, &dir, &conf, input_port);

    let lines: Vec<String> = (0..300).map(event_line).collect();
    let mut feed = TcpStream::connect(("127.0.0.1", input_port)).expect("connect to rsyslog");
    feed.write_all((lines.join("\n") + "\n").as_bytes())
        .expect("feed rsyslog");
    drop(feed);
    wait_until(LIMIT, "the listener to store rsyslog's lines", || {
        site.count() >= lines.len() as u64
    });
    let stored: Vec<String> = site.all_logs().into_iter().map(|l| l.raw_line).collect();
    assert_eq!(
        stored, lines,
        "listener stored other lines than rsyslog forwarded"
    );
    assert!(
        site.all_logs().iter().all(|l| l.worker == "rsyslog-peer"),
        "plain peers are recorded under --plain-worker"
    );
    rsyslog.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);
}
