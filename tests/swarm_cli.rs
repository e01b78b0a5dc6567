//! `decnet swarm …` through the real binary against a real controller: tables and
//! `--json`, enrolment writing its bundle, decommission, and the operator's errors (an
//! unreachable controller is exit 2 naming it, a refused token exit 1 with a hint).
mod swarm_common;
mod util;

use std::os::unix::fs::PermissionsExt;

use swarm_common::rig;

fn swarm(dir: &util::Dir, url: &str, token: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = dir.decnet();
    cmd.arg("swarm").args(args).args(["--url", url]);
    if let Some(t) = token {
        cmd.env("DECNET_API_TOKEN", t);
    }
    util::run(&mut cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_enrols_lists_and_decommissions_and_is_told_what_went_wrong() {
    let r = rig(false).await;
    let dir = util::Dir::new();
    let url = format!("http://{}", r.plain);
    let token = Some(r.token.as_str());
    let bundle = dir.path().join("w1-bundle");
    // A worker that is not there: loopback, a port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port().to_string()
    };
    let out = tokio::task::block_in_place(|| {
        swarm(
            &dir,
            &url,
            token,
            &[
                "enroll",
                "--name",
                "w1",
                "--address",
                "127.0.0.1",
                "--agent-port",
                &dead,
                "--updater",
                "--out-dir",
                bundle.to_str().unwrap_or_default(),
            ],
        )
    });
    util::assert_code(&out, 0);
    let text = util::stdout(&out);
    assert!(
        text.contains("enrolled w1 (") && text.contains("updater fingerprint"),
        "{text}"
    );
    assert!(
        !text.contains("PRIVATE KEY"),
        "keys are written, not printed: {text}"
    );
    let mode = |p: std::path::PathBuf| {
        std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(bundle.join("worker.key")), 0o600);
    assert_eq!(
        mode(dir.path().join("w1-bundle-updater/updater.key")),
        0o600
    );
    let pin = std::fs::read_to_string(bundle.join("master.fingerprint")).unwrap_or_default();
    assert_eq!(pin.trim(), r.master.fingerprint().to_string());
    assert!(bundle.join("swarmctl.fingerprint").exists());

    let out = tokio::task::block_in_place(|| swarm(&dir, &url, token, &["list"]));
    util::assert_code(&out, 0);
    let table = util::stdout(&out);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("STATUS"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("w1") && l.contains("127.0.0.1") && l.contains("enrolled")),
        "{table}"
    );
    let out = tokio::task::block_in_place(|| swarm(&dir, &url, token, &["--json", "list"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v[0]["name"], "w1");
    let out =
        tokio::task::block_in_place(|| swarm(&dir, &url, token, &["deckies", "--host", "nope"]));
    util::assert_code(&out, 1);
    assert!(
        util::stderr(&out).contains("\"nope\""),
        "{}",
        util::stderr(&out)
    );

    // Decommission by name (the dead worker's self-destruct fails; it goes anyway).
    let out = tokio::task::block_in_place(|| swarm(&dir, &url, token, &["decommission"]));
    util::assert_code(&out, 2);
    let out = tokio::task::block_in_place(|| {
        swarm(&dir, &url, token, &["decommission", "--name", "w1", "-y"])
    });
    util::assert_code(&out, 0);
    let out = tokio::task::block_in_place(|| swarm(&dir, &url, token, &["list"]));
    assert!(
        util::stdout(&out).contains("(none)"),
        "{}",
        util::stdout(&out)
    );

    // Errors: a bad token is exit 1 with the hint; no controller is exit 2 naming it.
    let out = tokio::task::block_in_place(|| swarm(&dir, &url, Some("not-a-token"), &["list"]));
    util::assert_code(&out, 1);
    assert!(
        util::stderr(&out).contains("DECNET_API_TOKEN"),
        "{}",
        util::stderr(&out)
    );
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let url = format!("http://{gone}");
    let out = tokio::task::block_in_place(|| swarm(&dir, &url, token, &["check"]));
    util::assert_code(&out, 2);
    let err = util::stderr(&out);
    assert!(
        err.contains(&gone.to_string()) && err.contains("decnet master"),
        "{err}"
    );
    let out = tokio::task::block_in_place(|| swarm(&dir, "ftp://x", token, &["list"]));
    util::assert_code(&out, 2);
}
