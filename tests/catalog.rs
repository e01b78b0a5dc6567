//! Binary-level tests of the catalogue listings: `decnet services`, `archetypes`,
//! `distros`, run as an operator would, with a scrubbed environment.
use std::path::Path;
use std::process::{Command, Output};

fn decnet(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_decnet"))
        .args(args)
        .env_clear()
        .env("DECNET_HOME", home)
        .output()
        .expect("decnet runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn services_lists_every_service_and_marks_stubs() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = decnet(home.path(), &["services"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let header = text.lines().next().expect("header");
    assert!(
        header.starts_with("SERVICE") && header.contains("IMPLEMENTATION"),
        "{header}"
    );
    let rows: Vec<&str> = text.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(
        rows.len(),
        29,
        "28 per-decky services and the sniffer:\n{text}"
    );
    for name in ["ssh", "http", "smtp_relay", "docker_api", "tftp", "sniffer"] {
        assert!(
            rows.iter()
                .any(|r| r.split_whitespace().next() == Some(name)),
            "{name} missing:\n{text}"
        );
    }
    let ssh = rows
        .iter()
        .find(|r| r.starts_with("ssh "))
        .expect("ssh row");
    assert!(ssh.contains(" 22 ") && ssh.contains(" emulated"), "{ssh}");
    let vnc = rows
        .iter()
        .find(|r| r.starts_with("vnc "))
        .expect("vnc row");
    assert!(vnc.contains("stub (logs connects)"), "{vnc}");
    let redis = rows
        .iter()
        .find(|r| r.starts_with("redis "))
        .expect("redis row");
    assert!(redis.contains(" emulated "), "{redis}");
    assert!(text.contains("are stubs"), "{text}");
}

#[test]
fn services_json_and_unknown_name() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = decnet(home.path(), &["services", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let all = v.as_array().expect("array");
    assert_eq!(all.len(), 29);
    let emulated: Vec<&str> = all
        .iter()
        .filter(|s| s["stub"] == false)
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        emulated,
        [
            "ftp",
            "http",
            "https",
            "mysql",
            "postgres",
            "redis",
            "smtp",
            "smtp_relay",
            "ssh",
            "telnet"
        ]
    );

    let out = decnet(home.path(), &["services", "gopher"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unknown service 'gopher'. Available: conpot,"),
        "{err}"
    );
}

#[test]
fn archetypes_and_distros() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = decnet(home.path(), &["archetypes"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 1 + 15);
    assert!(stdout(&out).contains("deaddeck"));
    let out = decnet(home.path(), &["distros"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1 + 9);
    assert!(
        text.lines()
            .any(|l| l.starts_with("rocky9") && l.contains("rhel")),
        "{text}"
    );
}
