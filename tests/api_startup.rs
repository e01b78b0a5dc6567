//! `decnet master` startup checks (engine.md §7.5, §7.6) through the real binary:
//! refusals that say what to do, and the generated token key file (0600).
mod util;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use util::{Dir, assert_code, run, stderr};

#[test]
fn refuses_to_start_without_what_it_needs() {
    let dir = Dir::new();
    let out = run(dir.decnet().args(["master", "--port", "0"]));
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("set DECNET_ADMIN_PASSWORD"),
        "{}",
        stderr(&out)
    );

    for (key, value, said) in [
        (
            "DECNET_ADMIN_PASSWORD",
            "changeme",
            "DECNET_ADMIN_PASSWORD is too weak",
        ),
        (
            "DECNET_ADMIN_PASSWORD",
            "short-pw",
            "at least 12 characters",
        ),
        (
            "DECNET_JWT_SECRET",
            "too-short-key",
            "DECNET_JWT_SECRET is too weak",
        ),
        ("DECNET_CORS_ORIGINS", "*", "`*` is refused"),
        ("DECNET_MODE", "agent", "DECNET_DISALLOW_MASTER=false"),
    ] {
        let mut cmd = dir.decnet();
        cmd.args(["master", "--port", "0"])
            .env("DECNET_ADMIN_PASSWORD", "a-strong-admin-password")
            .env(key, value);
        let out = run(&mut cmd);
        assert_code(&out, 1);
        assert!(
            stderr(&out).contains(said),
            "{key}={value}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains(value) || value == "*" || value == "agent",
            "secrets are never echoed: {}",
            stderr(&out)
        );
    }

    let mut cmd = dir.decnet();
    cmd.args(["master", "--host", "0.0.0.0", "--port", "0"])
        .env("DECNET_ADMIN_PASSWORD", "a-strong-admin-password")
        .env("DECNET_CORS_ORIGINS", "http://127.0.0.1:8080");
    let out = run(&mut cmd);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("loopback address"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn first_start_generates_a_private_token_key() {
    let dir = Dir::new();
    let mut child = dir
        .decnet()
        .args(["master", "--port", "0"])
        .env("DECNET_ADMIN_PASSWORD", "a-strong-admin-password")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn decnet master");
    let key = dir.path().join("jwt.secret");
    let mut waited = Duration::ZERO;
    while !key.exists() && waited < Duration::from_secs(30) {
        #[allow(clippy::disallowed_methods)] // a blocking test waiting for a child process
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    let _ = child.kill();
    let _ = child.wait();
    let meta = std::fs::metadata(&key).expect("jwt.secret written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&key).unwrap_or_default();
    assert_eq!(text.trim().len(), 64, "32 random bytes as hex");

    // Looser permissions are refused rather than used.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(dir.decnet().args(["master", "--port", "0"]));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}
