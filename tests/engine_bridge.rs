//! `decnet deploy --bridge`: a fleet for hosts without a spare NIC, driven through the CLI.
mod util;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Tears the fleet down through the CLI even when an assertion fails.
struct Fleet<'a>(&'a util::Dir);

impl Drop for Fleet<'_> {
    fn drop(&mut self) {
        let _ = self.0.decnet().args(["teardown", "--all"]).output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bridge_fleet_deploys_serves_the_host_and_tears_down_clean() {
    if util::docker().await.is_none() {
        return;
    }
    let home = util::Dir::new();
    let network = format!("decnet_br{}", std::process::id());
    let decnet = || {
        let mut cmd = home.decnet();
        cmd.env("DECNET_DECKY_BINARY", util::static_binary());
        cmd
    };
    let _fleet = Fleet(&home);
    let out = util::run(decnet().args([
        "deploy",
        "-n",
        "2",
        "--services",
        "redis",
        "--bridge",
        "--subnet",
        "203.0.113.64/26",
        "--gateway",
        "203.0.113.65",
        "--ip-start",
        "203.0.113.70",
        "--seed",
        "1",
        "--network-name",
        &network,
    ]));
    util::assert_code(&out, 0);
    let shown = util::stdout(&out);
    let progress = util::stderr(&out);
    assert!(
        progress.contains("[  2/2]"),
        "progress is shown: {progress}"
    );
    assert!(
        shown.contains("203.0.113.70") && shown.contains("203.0.113.71"),
        "{shown}"
    );

    let status = util::run(decnet().args(["status", "--json"]));
    util::assert_code(&status, 0);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert!(json.to_string().contains("203.0.113.71"), "{json}");

    // A bridge fleet is reachable from this host at the deckies' own addresses.
    for ip in ["203.0.113.70", "203.0.113.71"] {
        let addr: SocketAddr = format!("{ip}:6379").parse().expect("addr");
        let mut reached = false;
        for _ in 0..20 {
            if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok() {
                reached = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(reached, "redis stand-in at {addr} unreachable");
    }

    let out = util::run(decnet().args(["teardown", "--all"]));
    util::assert_code(&out, 0);
    let networks = util::docker_cli(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !networks.lines().any(|n| n == network),
        "{network} left behind"
    );
    assert!(
        !home.path().join("decnet-state.json").exists(),
        "state file left behind"
    );
}
