//! A whole fleet against the real Docker engine, seen from an attacker on the LAN.
//!
//! The lab (DESIGN.md "Attacker's view"): a Linux bridge `dnt<tag>` is the MACVLAN
//! parent; an "attacker" network namespace sits on it through a veth pair with an
//! address in 198.51.100.0/24; the host holds an address on the bridge too, so the
//! hairpin link has something to route from. Every name carries a per-run tag (network,
//! deckies, image, links), so the test never touches anything it did not create, and
//! the [`Lab`] guard removes all of it, even when an assertion fails.
//!
//! One test function walks the whole life of a fleet, because each step needs the
//! previous one's fleet and Docker work is slow on small hosts.
mod util;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use decnet::engine::containers::{self, Found};
use decnet::engine::deploy::{self, Request};
use decnet::engine::image::ImageSpec;
use decnet::engine::plan::{Driver, Names};
use decnet::engine::teardown::{self, Target};
use decnet::engine::{Engine, state};
use decnet::ini;
use decnet::model::build::{self, IniOptions};
use decnet::model::detect::{HostNetwork, NetworkHints};
use decnet::model::{DecnetConfig, Mode};
use decnet::roles::collector;
use decnet::syslog;
use tokio_util::sync::CancellationToken;
use util::swarmlab::sh;

const SUBNET: &str = "198.51.100.0/24";
const ATTACKER: &str = "198.51.100.250";
const HOST: &str = "198.51.100.254";
/// Not `.1`, and no decky below `.10`: a Docker 20.10 engine that lost count of a
/// network's endpoints (moby/moby#42119) keeps that network, its pool and its gateway
/// address until the daemon restarts, and a new network on the same subnet shares the
/// pool.
const GATEWAY: &str = "198.51.100.126";

/// Runs a host command, ignoring the outcome (clean-up).
fn quiet(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).output();
}

/// The bridge, the attacker namespace and everything the fleet leaves on the host.
struct Lab {
    tag: String,
    bridge: String,
    netns: String,
    names: Names,
    image: String,
}

impl Lab {
    fn new() -> Self {
        let tag = format!("{:06x}", decnet::model::rng::fresh_seed() & 0xff_ffff);
        let lab = Lab {
            bridge: format!("dnt{tag}"),
            netns: format!("dnta{tag}"),
            names: Names::for_network(&format!("decnet_t{tag}")),
            image: format!("decnet-test/decky:{tag}"),
            tag,
        };
        let (host_end, ns_end) = (format!("dva{}", lab.tag), format!("dvb{}", lab.tag));
        sh(&["ip", "link", "add", &lab.bridge, "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{HOST}/24"),
            "dev",
            &lab.bridge,
        ]);
        sh(&["ip", "link", "set", &lab.bridge, "up"]);
        sh(&["ip", "netns", "add", &lab.netns]);
        sh(&[
            "ip", "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
        ]);
        sh(&["ip", "link", "set", &host_end, "master", &lab.bridge, "up"]);
        sh(&["ip", "link", "set", &ns_end, "netns", &lab.netns]);
        let ns = |args: &[&str]| {
            let mut full = vec!["ip", "-n", lab.netns.as_str()];
            full.extend_from_slice(args);
            sh(&full)
        };
        ns(&["addr", "add", &format!("{ATTACKER}/24"), "dev", &ns_end]);
        ns(&["link", "set", &ns_end, "up"]);
        ns(&["link", "set", "lo", "up"]);
        lab
    }

    /// A decky name unique to this run.
    fn decky(&self, short: &str) -> String {
        format!("t{}{short}", self.tag)
    }

    /// Every container of the lab's fleet.
    async fn fleet(&self, engine: &Engine) -> Vec<Found> {
        let mut found = containers::of_fleet(engine, &self.names.network, None)
            .await
            .expect("list containers");
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found
    }

    /// Whether a TCP connection from the attacker namespace to `ip:port` succeeds
    /// (retried while the service starts).
    async fn attacker_connects(&self, ip: Ipv4Addr, port: u16) -> bool {
        let probe = format!("exec 3<>/dev/tcp/{ip}/{port}");
        for _ in 0..20 {
            let ok = tokio::process::Command::new("ip")
                .args(["netns", "exec", &self.netns, "timeout", "2", "bash", "-c"])
                .arg(&probe)
                .output()
                .await
                .is_ok_and(|o| o.status.success());
            if ok {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    }

    /// The MAC the attacker learnt for `ip`.
    fn attacker_sees_mac(&self, ip: Ipv4Addr) -> String {
        let out = sh(&["ip", "-n", &self.netns, "neigh", "show", &ip.to_string()]);
        out.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let filter = format!("label=decnet.fleet.network={}", self.names.network);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            // Stopped first: force-removing running containers is what makes Docker 20.10
            // lose count of a network's endpoints.
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                quiet(&["docker", "stop", "-t", "2", id]);
                quiet(&["docker", "rm", "-f", id]);
            }
        }
        // Docker frees endpoints asynchronously: removing the parent bridge before the
        // network is gone can leave Docker with an endpoint count that never drops.
        for _ in 0..40 {
            let gone = Command::new("docker")
                .args(["network", "inspect", &self.names.network])
                .output()
                .is_ok_and(|o| !o.status.success());
            if gone {
                break;
            }
            quiet(&["docker", "network", "rm", &self.names.network]);
            #[allow(clippy::disallowed_methods)] // Drop cannot await
            std::thread::sleep(Duration::from_millis(250));
        }
        quiet(&["ip", "link", "del", &self.names.macvlan_link]);
        quiet(&["ip", "link", "del", &self.names.ipvlan_link]);
        quiet(&["ip", "link", "del", &format!("dva{}", self.tag)]);
        quiet(&["ip", "link", "del", &self.bridge]);
        quiet(&["ip", "netns", "del", &self.netns]);
        quiet(&["docker", "rmi", "-f", &self.image]);
    }
}

/// A deploy request for INI `text` on the lab, additive to what `state_path` holds
/// unless `replace`.
fn request<'a>(
    lab: &Lab,
    text: &str,
    state_path: &Path,
    custom: &'a [ini::CustomService],
    replace: bool,
) -> Request<'a> {
    let mut existing_ips: Vec<Ipv4Addr> = state::load(state_path)
        .expect("state")
        .filter(|_| !replace)
        .map(|s| s.config.deckies.iter().map(|d| d.ip).collect())
        .unwrap_or_default();
    existing_ips.extend((1..10).map(|i| Ipv4Addr::new(198, 51, 100, i)));
    let opts = IniOptions {
        existing_ips,
        seed: 7,
        ..IniOptions::default()
    };
    let ini = ini::parse(text).expect("valid INI");
    let plan = build::plan_from_ini(ini, &NetworkHints::default(), &HostNetwork::read(), &opts)
        .expect("plans");
    assert_eq!(
        plan.network.host_ip,
        HOST.parse().ok(),
        "host address on the bridge"
    );
    Request {
        fleet: DecnetConfig::new(Mode::Unihost, &plan.network, plan.deckies).expect("fleet"),
        driver: Driver::Macvlan,
        names: lab.names.clone(),
        host_ip: plan.network.host_ip,
        image: ImageSpec {
            tag: lab.image.clone(),
            binary: util::static_binary(),
        },
        custom,
        replace,
        state_path: state_path.to_path_buf(),
        parallel: 4,
        cancel: Default::default(),
        artifacts_root: state_path.with_file_name("artifacts"),
    }
}

fn general(lab: &Lab) -> String {
    format!(
        "[general]\nnet = {SUBNET}\ngw = {GATEWAY}\ninterface = {}\n\n",
        lab.bridge
    )
}

/// `sysctl` as the process in container `name`'s network namespace sees it.
fn container_sysctl(name: &str, key: &str) -> String {
    let pid = util::docker_cli(&["inspect", "-f", "{{.State.Pid}}", name]);
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    sh(&["nsenter", "-t", pid.trim(), "-n", "cat", &path])
        .trim()
        .to_owned()
}

/// State file bytes and containers (name, id, state): what a failed deploy must not change.
async fn snapshot(lab: &Lab, engine: &Engine, state_path: &Path) -> (String, Vec<String>) {
    let bytes = std::fs::read_to_string(state_path).expect("state file");
    let found = lab.fleet(engine).await;
    let rows = found
        .iter()
        .map(|f| format!("{} {} {}", f.name, f.id, f.state))
        .collect();
    (bytes, rows)
}

/// Whether the collector's log gains an RFC 5424 `connect` line of `decky` from `attacker`
/// (polled: the collector writes asynchronously).
async fn logged_connect_from(log_file: &Path, decky: &str, attacker: &str) -> bool {
    for _ in 0..60 {
        let text = std::fs::read_to_string(log_file).unwrap_or_default();
        let found = text.lines().filter_map(|l| syslog::parse(l).ok()).any(|e| {
            e.decky == decky
                && e.event_type == "connect"
                && e.attacker_ip.as_deref() == Some(attacker)
        });
        if found {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_from_deploy_to_teardown_seen_by_an_attacker() {
    let Some(engine) = util::docker().await else {
        return;
    };
    let lab = Lab::new();
    let home = util::Dir::new();
    let state_path: PathBuf = state::path_in(home.path());
    let (win, lin, emb) = (lab.decky("win"), lab.decky("lin"), lab.decky("emb"));

    // Three deckies, different services and OS profiles.
    let first = format!(
        "{}[{win}]\nip = 198.51.100.10\nservices = smb, rdp\nnmap_os = windows\n\n\
         [{lin}]\nip = 198.51.100.11\nservices = ssh, http\n\n\
         [{emb}]\nip = 198.51.100.12\nservices = ftp, mqtt\nnmap_os = embedded\n",
        general(&lab)
    );
    let req = request(&lab, &first, &state_path, &[], false);
    let mut steps = Vec::new();
    let deployed = deploy::deploy(&engine, &req, &mut |p| steps.push(format!("{p:?}")))
        .await
        .expect("deploy three deckies");
    assert_eq!(deployed.created.len(), 3);
    assert!(
        steps.iter().any(|s| s.contains("done: 3, total: 3")),
        "{steps:?}"
    );

    // The collector follows the fleet's services into the log the forwarder ships.
    let log_file = home.path().join("decnet.log");
    let collecting = CancellationToken::new();
    let collector = {
        let defaults = decnet::config::parse(&std::collections::HashMap::<&str, &str>::new())
            .expect("default config");
        let settings = collector::Settings::from_config(&defaults, Some(log_file.clone()));
        tokio::spawn(collector::serve(
            engine.clone(),
            settings,
            None,
            collecting.clone(),
        ))
    };

    let expected: [(&str, &[u16], &str); 3] = [
        (&win, &[445, 3389], "128"),
        (&lin, &[22, 80], "64"),
        (&emb, &[21, 1883], "255"),
    ];
    for (name, ports, ttl) in expected {
        let decky = deployed
            .state
            .config
            .deckies
            .iter()
            .find(|d| d.name == name)
            .expect("decky in state");
        for port in ports {
            assert!(
                lab.attacker_connects(decky.ip, *port).await,
                "attacker cannot reach {name} {}:{port}",
                decky.ip
            );
        }
        assert_eq!(
            container_sysctl(name, "net.ipv4.ip_default_ttl"),
            ttl,
            "{name}"
        );
        let mac = decnet::engine::plan::mac_for(decky);
        assert_eq!(
            lab.attacker_sees_mac(decky.ip),
            mac,
            "{name} has its own MAC"
        );
    }
    assert_eq!(container_sysctl(&emb, "net.ipv4.tcp_timestamps"), "0");
    for (name, _, _) in expected {
        assert!(
            logged_connect_from(&log_file, name, ATTACKER).await,
            "no connect line from {ATTACKER} for {name} in {}",
            log_file.display()
        );
    }
    collecting.cancel();
    collector
        .await
        .expect("collector task")
        .expect("collector ran cleanly");

    // The hairpin link lets the host itself reach its deckies.
    assert!(
        Path::new("/sys/class/net")
            .join(&lab.names.macvlan_link)
            .exists()
    );
    let ssh: SocketAddr = "198.51.100.11:22".parse().expect("addr");
    assert!(TcpStream::connect_timeout(&ssh, Duration::from_secs(3)).is_ok());

    let rows = teardown::status(&engine, &deployed.state)
        .await
        .expect("status");
    assert!(rows.iter().all(|r| r.state == "up"), "{rows:?}");
    let before = lab.fleet(&engine).await;
    assert_eq!(before.len(), 3 + 6, "3 bases and 6 services");

    // Additive: two more, the first three untouched.
    let (web, db) = (lab.decky("web"), lab.decky("db"));
    let more = format!(
        "{}[{web}]\nservices = http\n\n[{db}]\nservices = mysql, redis\nnmap_os = bsd\n",
        general(&lab)
    );
    let req = request(&lab, &more, &state_path, &[], false);
    let deployed = deploy::deploy(&engine, &req, &mut |_| {})
        .await
        .expect("additive deploy");
    assert_eq!(deployed.state.config.deckies.len(), 5);
    let after = lab.fleet(&engine).await;
    for old in &before {
        assert!(after.contains(old), "{} was recreated or stopped", old.name);
    }
    let db_ip = deployed.state.config.deckies[4].ip;
    let db_from_host = SocketAddr::from((db_ip, 3306));
    assert!(TcpStream::connect_timeout(&db_from_host, Duration::from_secs(3)).is_ok());
    assert!(lab.attacker_connects(db_ip, 3306).await);
    assert!(lab.attacker_connects(db_ip, 6379).await);

    // Deploys that fail change nothing: bad INI and unknown service (CLI), and a
    // failure inside Docker halfway (a custom service whose image does not exist).
    let snap = snapshot(&lab, &engine, &state_path).await;
    let cli = |ini_text: &str| {
        let path = home.path().join("bad.ini");
        std::fs::write(&path, ini_text).expect("write INI");
        let out = util::run(home.decnet().args([
            "deploy",
            "-c",
            path.to_str().expect("utf-8 path"),
            "--network-name",
            &lab.names.network,
        ]));
        util::assert_code(&out, 1);
        util::stderr(&out)
    };
    let err = cli(&format!(
        "{}[{}]\nservices = ssh\namount = x\n",
        general(&lab),
        lab.decky("x")
    ));
    assert!(
        err.contains("amount= must be a positive integer, got 'x'"),
        "{err}"
    );
    let err = cli(&format!(
        "{}[{}]\nservices = ssh, gopher\n",
        general(&lab),
        lab.decky("x")
    ));
    assert!(
        err.contains("Unknown service(s)") && err.contains("'gopher'"),
        "{err}"
    );
    assert_eq!(snapshot(&lab, &engine, &state_path).await, snap);

    let broken = format!(
        "{}[custom-nope]\nbinary = decnet-test/does-not-exist:{}\nports = 9\n\n\
         [{}]\nservices = ssh\n\n[{}]\nservices = nope\n",
        general(&lab),
        lab.tag,
        lab.decky("ok"),
        lab.decky("bad")
    );
    let parsed = ini::parse(&broken).expect("valid INI");
    let req = request(&lab, &broken, &state_path, &parsed.custom_services, false);
    let err = deploy::deploy(&engine, &req, &mut |_| {})
        .await
        .expect_err("a missing image fails the deploy");
    assert!(err.to_string().contains("-nope"), "{err}");
    assert_eq!(
        snapshot(&lab, &engine, &state_path).await,
        snap,
        "rolled back"
    );

    // Teardown of one decky: base and services gone, state pruned.
    let done = teardown::teardown(&engine, &state_path, &Target::Decky(lin.clone()))
        .await
        .expect("teardown one");
    assert_eq!((done.containers, done.fleet_removed), (3, false));
    let left = lab.fleet(&engine).await;
    assert!(left.iter().all(|f| f.decky != lin), "{left:?}");
    assert_eq!(left.len(), 9 - 3 + 2 + 3);
    let st = state::load(&state_path).expect("load").expect("state");
    assert!(st.config.deckies.iter().all(|d| d.name != lin));

    let out = util::run(home.decnet().args(["status", "--json"]));
    util::assert_code(&out, 0);
    let rows: serde_json::Value = serde_json::from_str(&util::stdout(&out)).expect("JSON");
    let rows = rows.as_array().expect("a list");
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["state"] == "up"), "{rows:?}");

    // --replace that fails halfway: the old fleet runs again as it was.
    let snap = snapshot(&lab, &engine, &state_path).await;
    let (new, bad) = (lab.decky("new"), lab.decky("bad"));
    let failing = format!(
        "{}[custom-nope]\nbinary = decnet-test/does-not-exist:{}\n\n\
         [{win}]\nip = 198.51.100.10\nservices = vnc\n\n[{bad}]\nservices = nope\n",
        general(&lab),
        lab.tag
    );
    let parsed = ini::parse(&failing).expect("valid INI");
    let req = request(&lab, &failing, &state_path, &parsed.custom_services, true);
    deploy::deploy(&engine, &req, &mut |_| {})
        .await
        .expect_err("a missing image fails the replace");
    assert_eq!(
        snapshot(&lab, &engine, &state_path).await,
        snap,
        "old fleet restored"
    );
    assert!(
        lab.attacker_connects("198.51.100.10".parse().expect("ip"), 445)
            .await
    );

    // --replace: the fleet becomes exactly the new one; a kept name gets new containers.
    let before = lab.fleet(&engine).await;
    let replacing = format!(
        "{}[{win}]\nip = 198.51.100.10\nservices = vnc\nnmap_os = windows\n\n\
         [{new}]\nservices = telnet\n",
        general(&lab)
    );
    let req = request(&lab, &replacing, &state_path, &[], true);
    let deployed = deploy::deploy(&engine, &req, &mut |_| {})
        .await
        .expect("replace the fleet");
    let names: Vec<&str> = deployed
        .state
        .config
        .deckies
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, [win.as_str(), new.as_str()]);
    let after = lab.fleet(&engine).await;
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(after.iter().all(|f| !before.iter().any(|b| b.id == f.id)));
    assert!(
        lab.attacker_connects("198.51.100.10".parse().expect("ip"), 5900)
            .await
    );
    let new_ip = deployed.state.config.deckies[1].ip;
    assert!(lab.attacker_connects(new_ip, 23).await);

    // teardown --all (CLI): no container, network, hairpin link or state file left.
    let out = util::run(home.decnet().args(["teardown", "--all"]));
    util::assert_code(&out, 0);
    assert!(lab.fleet(&engine).await.is_empty());
    assert!(
        !decnet::engine::network::exists(&engine, &lab.names.network)
            .await
            .expect("inspect network")
    );
    assert!(
        !Path::new("/sys/class/net")
            .join(&lab.names.macvlan_link)
            .exists()
    );
    assert!(!state_path.exists());
}
