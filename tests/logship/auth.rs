//! The forwarder authenticates the master and checks what it claims: a listener serving
//! a worker's certificate, another CA's master or a certificate other than the pinned one
//! is refused in the handshake (each with its own reason, retried, nothing shipped); a
//! listener holding the real master identity that acknowledges lines it was never sent,
//! or welcomes with a watermark beyond the file, is dropped, and the real listener
//! afterwards still receives every line exactly once.
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use decnet::logship::{self, Downstream, Upstream, Welcome};
use decnet::pki::Bundle;
use decnet::syslog::OctetCodec;
use decnet::tls;
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Encoder, FramedRead};

use super::{LIMIT, Proc, Site, event_line, nap, wait_until};

const LINES: u64 = 300;

fn write_lines(path: &Path, range: std::ops::Range<u64>) {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log");
    for n in range {
        writeln!(out, "{}", event_line(n)).expect("write");
    }
}

/// Every stored line is one of `0..total`, each exactly once, byte for byte.
fn assert_stored_exactly_once(site: &Site, total: u64) {
    let logs = site.all_logs();
    let mut seen: Vec<u64> = logs
        .iter()
        .map(|l| {
            let n: u64 = l
                .fields
                .get("n")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("stored line without n: {}", l.raw_line));
            assert_eq!(l.raw_line, event_line(n), "line {n} changed on the way");
            n
        })
        .collect();
    seen.sort_unstable();
    let want: Vec<u64> = (0..total).collect();
    assert_eq!(seen, want, "every line exactly once");
}

/// A forwarder with extra arguments and environment, logging to `<home>/<tag>.log`.
fn forwarder(
    site: &Site,
    tag: &str,
    agent: &Path,
    file: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Proc {
    let port = site.port.to_string();
    let mut cmd = site.decnet();
    cmd.args([
        "forwarder",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        &port,
        "--poll-interval",
        "0.1",
    ])
    .arg("--agent-dir")
    .arg(agent)
    .arg("--log-file")
    .arg(file)
    .args(extra)
    .envs(env.iter().copied());
    Proc::spawn(&mut cmd, &site.home().join(format!("{tag}.log")))
}

/// Waits until `proc` has logged `needle` at least twice (a refusal and its retry).
fn refused_twice(proc: &Proc, needle: &str) {
    wait_until(LIMIT, &format!("{needle:?} twice"), || {
        proc.output().matches(needle).count() >= 2
    });
    assert!(
        !proc.output().contains("connected; shipping"),
        "{}",
        proc.output()
    );
}

/// A PKI directory whose "master identity" is `bundle_dir`'s worker certificate.
fn impostor_pki(site: &Site, bundle_dir: &Path) -> PathBuf {
    let pki = site.home().join("impostor-pki");
    let master = pki.join("master");
    fs::create_dir_all(&master).expect("mkdir");
    for (from, to) in [
        ("ca.crt", "ca.crt"),
        ("worker.crt", "master.crt"),
        ("worker.key", "master.key"),
    ] {
        fs::copy(bundle_dir.join(from), master.join(to)).expect("copy");
    }
    pki
}

#[test]
fn only_the_pinned_master_identity_is_accepted_in_pin_order() {
    let site = Site::new();
    let agent = site.home().join("agent");
    let cert = site.issue_worker("w1", &agent);
    site.allow("w1", &cert);
    fs::create_dir_all(site.log_dir()).expect("log dir");
    let log = site.log_dir().join("decnet.log");
    write_lines(&log, 0..LINES);
    let master = Bundle::load(&site.home().join("pki/master"), "master").expect("master");
    let pinned = fs::read_to_string(agent.join("master.fingerprint")).expect("bundle pin");
    assert_eq!(pinned.trim(), master.fingerprint().to_string());

    // A worker's own bundle serving as the listener: wrong identity, whatever the pin.
    let w2 = site.home().join("w2");
    site.issue_worker("w2", &w2);
    let w2_fp = Bundle::load(&w2, "worker")
        .expect("w2")
        .fingerprint()
        .to_string();
    let pki = impostor_pki(&site, &w2);
    let mut listener = site.listener("impostor", &["--pki-dir", &pki.to_string_lossy()]);
    let mut fwd = forwarder(&site, "fwd-impostor", &agent, &log, &[], &[]);
    refused_twice(&fwd, "wrong server identity");
    assert!(fwd.output().contains(r#"got CN "w2""#), "{}", fwd.output());
    assert!(!fwd.output().contains("fingerprint mismatch"));
    fwd.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);

    // Another CA's master identity: the chain check refuses it before anything else.
    let other = tempfile::tempdir().expect("tempdir");
    for args in [&["pki", "init"][..], &["pki", "issue", "master"]] {
        let out = site
            .decnet()
            .env("DECNET_HOME", other.path())
            .args(args)
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", super::text(&out.stderr));
    }
    let other_pki = other.path().join("pki");
    let mut listener = site.listener("foreign", &["--pki-dir", &other_pki.to_string_lossy()]);
    let mut fwd = forwarder(&site, "fwd-foreign", &agent, &log, &[], &[]);
    refused_twice(&fwd, "TLS handshake failed");
    fwd.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);

    // The real master identity, but another fingerprint pinned by the flag: pin mismatch.
    let mut listener = site.listener("listener", &[]);
    let mut fwd = forwarder(
        &site,
        "fwd-flag",
        &agent,
        &log,
        &["--master-fingerprint", &w2_fp],
        &[],
    );
    refused_twice(&fwd, "certificate fingerprint mismatch");
    assert!(!fwd.output().contains("wrong server identity"));
    fwd.stop(Signal::SIGTERM);

    // The environment beats the (right) pin in the bundle.
    let env = [("DECNET_MASTER_FINGERPRINT", w2_fp.as_str())];
    let mut fwd = forwarder(&site, "fwd-env", &agent, &log, &[], &env);
    refused_twice(&fwd, "certificate fingerprint mismatch");
    assert!(
        fwd.output().contains("DECNET_MASTER_FINGERPRINT"),
        "{}",
        fwd.output()
    );
    fwd.stop(Signal::SIGTERM);
    assert_eq!(site.count(), 0, "a refused link shipped lines");

    // And the flag beats the environment: the right pin on the command line ships.
    let right = master.fingerprint().to_string();
    let mut fwd = forwarder(
        &site,
        "fwd-ok",
        &agent,
        &log,
        &["--master-fingerprint", &right],
        &env,
    );
    wait_until(LIMIT, "every line", || site.count() == LINES);
    assert!(
        fwd.output().contains("--master-fingerprint"),
        "{}",
        fwd.output()
    );
    nap(300);
    assert_stored_exactly_once(&site, LINES);
    fwd.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);
}

/// What the fake listener lies about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    /// WELCOME with zeros, then `A 0 <beyond the file>` once lines arrive.
    AckNeverSent,
    /// WELCOME claiming a watermark beyond the file.
    WelcomeBeyond,
}

/// Connections the forwarder dropped after each lie.
#[derive(Default)]
struct Dropped {
    ack: AtomicUsize,
    welcome: AtomicUsize,
}

/// Serves one forwarder connection with the real master identity, lying as `lie` says.
async fn lie_once<S>(stream: S, lie: Lie, dropped: &Dropped)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut frames = FramedRead::new(rd, OctetCodec::default());
    let Some(Ok(first)) = frames.next().await else {
        return;
    };
    let Ok(Upstream::Hello(hello)) = Upstream::decode(first) else {
        return;
    };
    let beyond = LINES + 1000;
    let mark = if lie == Lie::WelcomeBeyond { beyond } else { 0 };
    let send = |frame: Downstream| {
        let mut payload = BytesMut::new();
        frame.encode(&mut payload);
        let mut wire = BytesMut::new();
        OctetCodec::default()
            .encode(&payload[..], &mut wire)
            .expect("encode");
        wire
    };
    let welcome = send(Downstream::Welcome(Welcome {
        version: logship::VERSION,
        watermarks: vec![mark; hello.sources.len()],
    }));
    if wr.write_all(&welcome).await.is_err() {
        return;
    }
    let mut lied = lie == Lie::WelcomeBeyond;
    loop {
        match tokio::time::timeout(LIMIT, frames.next()).await {
            Err(_) => return, // the forwarder kept the link: not counted, the test fails
            Ok(Some(Ok(payload))) => {
                let line = matches!(Upstream::decode(payload), Ok(Upstream::Line { .. }));
                if line && !lied {
                    let ack = send(Downstream::Ack {
                        idx: 0,
                        seq: beyond,
                    });
                    lied = wr.write_all(&ack).await.is_ok();
                }
            }
            Ok(_) => break,
        }
    }
    if lied {
        let counter = match lie {
            Lie::AckNeverSent => &dropped.ack,
            Lie::WelcomeBeyond => &dropped.welcome,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn forged_acknowledgements_and_watermarks_skip_nothing() {
    let site = Site::new();
    let agent = site.home().join("agent");
    let cert = site.issue_worker("w1", &agent);
    site.allow("w1", &cert);
    fs::create_dir_all(site.log_dir()).expect("log dir");
    let log = site.log_dir().join("decnet.log");
    write_lines(&log, 0..LINES);
    let master = Bundle::load(&site.home().join("pki/master"), "master").expect("master");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dropped = Arc::new(Dropped::default());
    let welcome_lies = Arc::new(AtomicBool::new(false));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&master).expect("tls"));
    let fake = {
        let (dropped, welcome_lies) = (dropped.clone(), welcome_lies.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", site.port)))
            .expect("bind the fake listener");
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, dropped) = (acceptor.clone(), dropped.clone());
                let lie = if welcome_lies.load(Ordering::SeqCst) {
                    Lie::WelcomeBeyond
                } else {
                    Lie::AckNeverSent
                };
                tokio::spawn(async move {
                    if let Ok((stream, _)) = tls::accept(&acceptor, tcp).await {
                        lie_once(stream, lie, &dropped).await;
                    }
                });
            }
        })
    };

    let mut fwd = forwarder(&site, "forwarder", &agent, &log, &[], &[]);
    wait_until(LIMIT, "two connections dropped over forged ACKs", || {
        dropped.ack.load(Ordering::SeqCst) >= 2
    });
    let violation = format!(
        "protocol violation by the master (CN decnet-master, fingerprint {})",
        master.fingerprint()
    );
    assert!(fwd.output().contains(&violation), "{}", fwd.output());
    assert!(
        fwd.output()
            .contains("this connection sent it only lines up to"),
        "{}",
        fwd.output()
    );

    welcome_lies.store(true, Ordering::SeqCst);
    wait_until(
        LIMIT,
        "two connections dropped over forged WELCOMEs",
        || dropped.welcome.load(Ordering::SeqCst) >= 2,
    );
    assert!(
        fwd.output().contains("WELCOME claims line 1300"),
        "{}",
        fwd.output()
    );

    // The real listener on the same port: nothing was marked shipped, so all of it comes.
    fake.abort();
    let _ = runtime.block_on(fake);
    let mut listener = site.listener("listener", &[]);
    wait_until(LIMIT, "every line at the real master", || {
        site.count() >= LINES
    });
    nap(500);
    assert_stored_exactly_once(&site, LINES);
    fwd.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);
}
