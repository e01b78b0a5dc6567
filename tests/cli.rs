//! The binary as an operator meets it: dispatch by name, exit codes, `pki`, `config`.
mod util;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use util::{Dir, assert_code, bin, run, stderr, stdout};

#[test]
fn version_names_the_release_and_commit() {
    let dir = Dir::new();
    let out = run(dir.decnet().arg("--version"));
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("decnet {} (", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}

#[test]
fn roles_not_built_yet_exit_two_with_a_clear_message() {
    let dir = Dir::new();
    let out = run(dir.decnet().args(["reconciler", "--whatever"]));
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("`decnet reconciler` is not implemented yet"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn unknown_commands_are_usage_errors() {
    let dir = Dir::new();
    let out = run(dir.decnet().arg("frobnicate"));
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("unrecognized subcommand"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn symlinks_named_after_a_role_run_that_role() {
    let dir = Dir::new();
    let links = dir.path().join("bin");
    fs::create_dir(&links).expect("mkdir");
    let out = run(dir.decnet().arg("links").arg(&links));
    assert_code(&out, 0);
    for (role, _) in decnet::cli::ROLES {
        let link = links.join(format!("decnet-{role}"));
        assert_eq!(fs::read_link(&link).expect("is a symlink"), bin());
    }
    // Running it again is a no-op, not an error.
    assert_code(&run(dir.decnet().arg("links").arg(&links)), 0);

    // decnet-reconciler behaves exactly like `decnet reconciler`.
    let out = run(&mut dir.command(links.join("decnet-reconciler")));
    assert_code(&out, 2);
    assert!(stderr(&out).contains("`decnet reconciler` is not implemented yet"));

    // A bare role name works too, and flags after it reach the role.
    let bare = links.join("reconciler");
    std::os::unix::fs::symlink(bin(), &bare).expect("symlink");
    let out = run(dir.command(&bare).arg("--help"));
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("Usage: decnet reconciler"),
        "{}",
        stdout(&out)
    );

    // A foreign file under a link name is not clobbered without --force.
    let taken = links.join("decnet-agent");
    fs::remove_file(&taken).expect("rm");
    fs::write(&taken, "not ours").expect("write");
    let out = run(dir.decnet().arg("links").arg(&links));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_code(
        &run(dir.decnet().arg("links").arg(&links).arg("--force")),
        0,
    );
    assert_eq!(fs::read_link(&taken).expect("replaced"), bin());
}

#[test]
fn pki_init_is_idempotent_and_keys_are_private() {
    let dir = Dir::new();
    let first = run(dir.decnet().args(["pki", "init"]));
    assert_code(&first, 0);
    assert!(stdout(&first).contains("CA created"));
    let ca_dir = dir.path().join("pki/ca");
    let key_before = fs::read(ca_dir.join("ca.key")).expect("ca.key");
    let crt_before = fs::read(ca_dir.join("ca.crt")).expect("ca.crt");
    let mode = |p: &str| {
        fs::metadata(ca_dir.join(p))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ca.key"), 0o600);
    assert_eq!(mode("ca.crt"), 0o644);
    assert_eq!(
        fs::metadata(&ca_dir).expect("stat").permissions().mode() & 0o777,
        0o700
    );

    let second = run(dir.decnet().args(["pki", "init"]));
    assert_code(&second, 0);
    assert!(stdout(&second).contains("already present, kept"));
    let fp = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("fingerprint:"))
            .map(str::to_owned)
    };
    assert_eq!(fp(&stdout(&first)), fp(&stdout(&second)));
    assert_eq!(fs::read(ca_dir.join("ca.key")).expect("ca.key"), key_before);
    assert_eq!(fs::read(ca_dir.join("ca.crt")).expect("ca.crt"), crt_before);
}

#[test]
fn pki_issue_writes_a_bundle_and_refuses_to_clobber_it() {
    let dir = Dir::new();
    let out = run(dir.decnet().args(["pki", "issue", "worker", "w1"]));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("decnet pki init"), "{}", stderr(&out));

    assert_code(&run(dir.decnet().args(["pki", "init"])), 0);
    let out =
        run(dir
            .decnet()
            .args(["pki", "issue", "worker", "w1", "--san", "192.0.2.10,w1.lan"]));
    assert_code(&out, 0);
    let bundle = dir.path().join("pki/workers/w1");
    let key_mode = fs::metadata(bundle.join("worker.key"))
        .expect("key")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);

    let shown = stdout(&run(dir
        .decnet()
        .args(["pki", "show"])
        .arg(bundle.join("worker.crt"))));
    assert!(shown.contains("subject CN:  w1"), "{shown}");
    assert!(
        shown.contains("IP:192.0.2.10") && shown.contains("DNS:w1.lan") && shown.contains("DNS:w1")
    );

    let again = run(dir.decnet().args(["pki", "issue", "worker", "w1"]));
    assert_code(&again, 1);
    assert!(stderr(&again).contains("--force"));
    assert_code(
        &run(dir
            .decnet()
            .args(["pki", "issue", "worker", "w1", "--force"])),
        0,
    );

    let bad = run(dir.decnet().args(["pki", "issue", "worker", "../escape"]));
    assert_code(&bad, 1);
    assert!(stderr(&bad).contains("invalid name"), "{}", stderr(&bad));
    let no_name = run(dir.decnet().args(["pki", "issue", "updater"]));
    assert_code(&no_name, 2);
}

#[test]
fn issuing_a_reserved_name_is_a_usage_error_with_the_reason() {
    let dir = Dir::new();
    assert_code(&run(dir.decnet().args(["pki", "init"])), 0);
    for (kind, name) in [
        ("worker", "decnet-master"),
        ("worker", "swarmctl"),
        ("worker", "updater@w1"),
        ("updater", "decnet-master"),
        ("worker", "DECNET-MASTER"),
    ] {
        let out = run(dir.decnet().args(["pki", "issue", kind, name]));
        assert_code(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains("reserved") && err.contains(name),
            "{kind} {name}: {err}"
        );
    }
    assert!(!dir.path().join("pki/workers/decnet-master").exists());
    // A worker bundle names the master it will ship to.
    let out = run(dir.decnet().args(["pki", "issue", "worker", "w1"]));
    assert_code(&out, 0);
    let pin = fs::read_to_string(dir.path().join("pki/workers/w1/master.fingerprint"))
        .expect("master.fingerprint");
    assert!(stdout(&out).contains(pin.trim()), "{}", stdout(&out));
    let master = stdout(&run(dir
        .decnet()
        .args(["pki", "show"])
        .arg(dir.path().join("pki/master/master.crt"))));
    assert!(master.contains(pin.trim()), "{master}");
}

#[test]
fn config_shows_resolved_values_and_masks_secrets() {
    let dir = Dir::new();
    let out = run(dir
        .decnet()
        .arg("config")
        .env("DECNET_API_TOKEN", "s3cr3t-token"));
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains("s3cr3t-token"), "{text}");
    assert!(text.contains("DECNET_API_TOKEN") && text.contains("********"));
    // The key column is as wide as the longest name, so compare words, not spacing.
    let pki = format!("{}/pki", dir.path().display());
    assert!(
        text.lines().any(|l| l.split_whitespace().eq([
            "DECNET_PKI_DIR",
            pki.as_str(),
            "(default)"
        ])),
        "{text}"
    );

    let out = run(dir.decnet().arg("config").env("DECNET_AGENT_PORT", "http"));
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("DECNET_AGENT_PORT"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_log_filter_is_reported_not_panicked() {
    let dir = Dir::new();
    let out = run(dir.decnet().args(["--log-level", "=[", "config"]));
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("invalid log level"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_shipped_unit_starts_a_role_that_is_built() {
    let dir = Dir::new();
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
    let mut roles = Vec::new();
    for entry in fs::read_dir(&units).expect("units/") {
        let path = entry.expect("entry").path();
        let text = fs::read_to_string(&path).expect("read unit");
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("{} has no ExecStart", path.display()));
        let role = exec.split_whitespace().nth(1).expect("role argument");
        assert!(
            decnet::cli::ROLES.iter().any(|(r, _)| *r == role),
            "{} starts unknown role {role}",
            path.display()
        );
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
        assert_eq!(name, format!("decnet-{role}"));
        // A role that is not built answers "not implemented yet" to anything; a built one
        // parses its arguments and refuses this flag as a usage error.
        let out = run(dir.decnet().args([role, "--no-such-flag-for-units"]));
        assert_code(&out, 2);
        assert!(
            !stderr(&out).contains("not implemented yet"),
            "{} ships a unit for `decnet {role}`, which is not built",
            path.display()
        );
        roles.push(role.to_owned());
    }
    for daemon in ["bus", "forwarder"] {
        assert!(roles.iter().any(|r| r == daemon), "no unit for {daemon}");
    }
}

#[test]
fn a_group_flag_works_before_and_after_the_subcommand() {
    let dir = Dir::new();
    let p = |path: &std::path::Path| path.to_str().expect("utf-8").to_owned();
    let home = dir.path();
    let pki = p(&home.join("other-pki"));

    // pki: --pki-dir on either side of the subcommand names the same directory.
    assert_code(
        &run(dir.decnet().args(["pki", "--pki-dir", &pki, "init"])),
        0,
    );
    let again = run(dir.decnet().args(["pki", "init", "--pki-dir", &pki]));
    assert_code(&again, 0);
    assert!(
        stdout(&again).contains("already present, kept"),
        "{}",
        stdout(&again)
    );
    let out = run(dir
        .decnet()
        .args(["pki", "issue", "worker", "w1", "--pki-dir", &pki]));
    assert_code(&out, 0);
    let cert = format!("{pki}/workers/w1/worker.crt");

    // listener: --db before the subcommand (once refused) and after it.
    let (db_a, db_b) = (p(&home.join("a.db")), p(&home.join("b.db")));
    let before = run(dir
        .decnet()
        .args(["listener", "--db", &db_a, "allow", "w1", "--cert", &cert]));
    assert_code(&before, 0);
    let after = run(dir
        .decnet()
        .args(["listener", "allow", "w1", "--cert", &cert, "--db", &db_b]));
    assert_code(&after, 0);
    for args in [
        ["listener", "list", "--db", &db_a],
        ["listener", "--db", &db_b, "list"],
    ] {
        let out = run(dir.decnet().args(args));
        assert_code(&out, 0);
        assert!(
            stdout(&out).starts_with("w1  "),
            "{args:?}: {}",
            stdout(&out)
        );
    }
    // The default database was never touched.
    assert!(!home.join("decnet.db").exists());
    // A serving flag before a subcommand is refused, not silently dropped.
    let out = run(dir.decnet().args(["listener", "--port", "7000", "list"]));
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("--port is for serving"),
        "{}",
        stderr(&out)
    );

    // logs: --db on either side.
    for args in [
        ["logs", "--db", &db_a, "count"],
        ["logs", "count", "--db", &db_a],
    ] {
        let out = run(dir.decnet().args(args));
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "0\n", "{args:?}");
    }

    // bus: --socket on either side reaches the client (a runtime failure here, no broker).
    let socket = p(&home.join("nobody.sock"));
    for args in [
        ["bus", "--socket", &socket, "pub", "t.x", "{}"],
        ["bus", "pub", "t.x", "{}", "--socket", &socket],
    ] {
        let out = run(dir.decnet().args(args));
        assert_code(&out, 1);
        assert!(stderr(&out).contains("nobody.sock"), "{}", stderr(&out));
    }

    // The global diagnostic flags too.
    for args in [
        ["--log-level", "warn", "config"],
        ["config", "--log-level", "warn"],
    ] {
        assert_code(&run(dir.decnet().args(args)), 0);
    }
}

#[test]
fn a_closed_stdout_pipe_is_success() {
    let dir = Dir::new();
    for args in [
        &["services"][..],
        &["config"],
        &["--help"],
        &["distros", "--json"],
    ] {
        // The reader is gone before decnet writes a byte: every write is EPIPE.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = dir
            .decnet()
            .args(args)
            .stdout(writer)
            .output()
            .expect("spawn decnet");
        assert_code(&out, 0);
        assert_eq!(
            stderr(&out),
            "",
            "{args:?} complains about its closed stdout"
        );
    }
}
