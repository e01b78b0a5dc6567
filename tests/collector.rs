//! The collector against the real Docker engine: decky service containers on a throwaway
//! bridge network, connections from this host, and the log files the collector writes,
//! including a decky that writes another decky's HOSTNAME.
mod util;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use decnet::bus::{Bus, LocalBus, Subscription, topics};
use decnet::config::CollectorConfig;
use decnet::engine::Engine;
use decnet::engine::image::{self, ImageSpec};
use decnet::roles::collector::provenance::{CLAIMED_HOSTNAME, HOSTNAME_MISMATCH};
use decnet::roles::collector::{self, Settings, sink::Stats};
use decnet::store::LogRecord;
use decnet::syslog::{self, Event};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long to wait for a line to show up before failing.
const PATIENCE: Duration = Duration::from_secs(60);

/// Containers and a network, removed when dropped (also when the test fails).
#[derive(Default)]
struct Objects {
    containers: Vec<String>,
    network: Option<String>,
}

impl Drop for Objects {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
        if let Some(net) = &self.network {
            let _ = Command::new("docker").args(["network", "rm", net]).output();
        }
    }
}

/// A bridge network on a /28 of a documentation range.
struct Network {
    name: String,
    gateway: Ipv4Addr,
}

impl Objects {
    /// Creates bridge network `name` on the first free /28 among the documentation ranges
    /// (other tests may hold some of them), starting at a pid-dependent slice.
    fn network(&mut self, name: &str) -> Network {
        let start = std::process::id() as usize;
        // Not 192.0.2.0/24: CI machines may hold it on their real NIC.
        for base in [[198, 51, 100], [203, 0, 113]] {
            for k in 0..16 {
                let slice = 16 * ((start + k) % 16) as u8;
                let subnet = format!("{}.{}.{}.{slice}/28", base[0], base[1], base[2]);
                let gateway = Ipv4Addr::new(base[0], base[1], base[2], slice + 1);
                let out = Command::new("docker")
                    .args(["network", "create", "--driver", "bridge"])
                    .args(["--subnet", &subnet, "--gateway", &gateway.to_string(), name])
                    .output()
                    .expect("docker CLI");
                if out.status.success() {
                    self.network = Some(name.to_owned());
                    return Network {
                        name: name.to_owned(),
                        gateway,
                    };
                }
            }
        }
        panic!("no free /28 in the documentation ranges for a test network");
    }

    /// Runs `decky --service <service>` as decky `decky`, labelled like a fleet service
    /// container, and returns its address on `net`.
    fn decky(&mut self, image: &str, net: &Network, decky: &str, service: &str) -> Ipv4Addr {
        self.decky_claiming(image, net, decky, decky, service)
    }

    /// Like [`Objects::decky`], but the process writes `claim` as its HOSTNAME (what a
    /// compromised decky can do): the label still says `decky`.
    fn decky_claiming(
        &mut self,
        image: &str,
        net: &Network,
        decky: &str,
        claim: &str,
        service: &str,
    ) -> Ipv4Addr {
        let name = format!("{decky}-{service}");
        self.containers.push(name.clone());
        util::docker_cli(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &net.name,
            "--label",
            &format!("{}=true", collector::LABEL_FLEET_SERVICE),
            "--label",
            &format!("{}={decky}", collector::LABEL_DECKY),
            "--label",
            &format!("{}={service}", collector::LABEL_SERVICE_NAME),
            "-e",
            &format!("NODE_NAME={claim}"),
            image,
            "decky",
            "--service",
            service,
        ]);
        let ip = util::docker_cli(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &name,
        ]);
        ip.trim().parse().expect("container address")
    }
}

/// A collector running in the background.
struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<Result<Stats, collector::Error>>,
}

impl Running {
    fn start(engine: &Engine, log_file: &Path, bus: &LocalBus) -> Self {
        let settings = Settings {
            log_file: log_file.to_owned(),
            collector: CollectorConfig {
                drop_apps: vec!["sshd".into()],
                rl_event_types: vec!["connect".into()],
                // Long enough that two connections in a row always fall in one window.
                rl_window: Some(Duration::from_secs(60)),
                // Long enough that only the events stream can find a new container.
                reconcile: Duration::from_secs(600),
                session_ttl: None,
            },
            max_streams: collector::MAX_STREAMS,
        };
        let shutdown = CancellationToken::new();
        let bus: Arc<dyn Bus> = Arc::new(bus.clone());
        let task = tokio::spawn(collector::serve(
            engine.clone(),
            settings,
            Some(bus),
            shutdown.clone(),
        ));
        Self { shutdown, task }
    }

    async fn stop(self) -> Stats {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the collector stops promptly")
            .expect("collector task")
            .expect("collector ran")
    }
}

/// The events of decky `decky` in the raw log.
fn raw_events(log: &Path, decky: &str) -> Vec<Event> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| syslog::parse(l).ok())
        .filter(|e| e.decky == decky)
        .collect()
}

/// The `.json` objects of decky `decky`.
fn json_events(json: &Path, decky: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(json)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object a line"))
        .filter(|v| v["decky"] == decky)
        .collect()
}

/// The `system.log` payloads of decky `decky` received so far on `sub`.
fn published(sub: &mut Subscription, decky: &str) -> Vec<serde_json::Value> {
    std::iter::from_fn(|| sub.try_recv())
        .filter_map(|m| m.envelope().ok())
        .map(|e| e.payload)
        .filter(|p| p["decky"] == decky)
        .collect()
}

fn count(events: &[Event], event_type: &str) -> usize {
    events.iter().filter(|e| e.event_type == event_type).count()
}

/// Waits until the raw log holds `n` events of `event_type` from `decky`.
async fn wait_for(log: &Path, decky: &str, event_type: &str, n: usize) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = raw_events(log, decky);
        if count(&events, event_type) >= n {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {PATIENCE:?} for {n} {event_type} from {decky}; the log holds:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connects to `ip:port` from this host and returns the local address used.
fn connect(ip: Ipv4Addr, port: u16) -> SocketAddr {
    let stream = TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(5))
        .expect("connect to the decky");
    stream.local_addr().expect("local address")
}

#[tokio::test(flavor = "multi_thread")]
async fn collector_follows_decky_services_into_the_log_without_duplicates() {
    let Some(engine) = util::docker().await else {
        return;
    };
    let pid = std::process::id();
    let tag = format!("decnet-test/collector:{pid}");
    let _image = util::RemoveImageOnDrop(tag.clone());
    let spec = ImageSpec {
        tag: tag.clone(),
        binary: util::static_binary(),
    };
    image::ensure(&engine, &spec, &mut |_| {})
        .await
        .expect("build the decky image");
    let mut objects = Objects::default();
    let net = objects.network(&format!("decnet-test-collector-{pid}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let log: PathBuf = dir.path().join("decnet.log");
    let json = dir.path().join("decnet.json");
    let bus = LocalBus::new();
    let mut system_log = bus.subscribe(topics::SYSTEM_LOG).expect("subscribe");

    // A decky that runs before the collector starts: its startup line is not lost.
    let decky_a = format!("decky-test-{pid}");
    let ip_a = objects.decky(&tag, &net, &decky_a, "mongodb");
    let collector = Running::start(&engine, &log, &bus);
    wait_for(&log, &decky_a, "startup", 1).await;

    // Two connections inside one rate-limit window: both raw, one parsed.
    let first = connect(ip_a, 27017);
    connect(ip_a, 27017);
    let events = wait_for(&log, &decky_a, "connect", 2).await;
    let connects: Vec<&Event> = events
        .iter()
        .filter(|e| e.event_type == "connect")
        .collect();
    let gateway = net.gateway.to_string();
    assert!(
        connects
            .iter()
            .all(|e| e.attacker_ip.as_deref() == Some(gateway.as_str())),
        "the connecting address is this host's on the bridge ({gateway}): {connects:?}"
    );
    assert_eq!(
        connects[0].fields.get("src_port"),
        Some(first.port().to_string().as_str())
    );
    assert!(
        connects[0].raw.starts_with("<134>1 "),
        "{}",
        connects[0].raw
    );

    let parsed = json_events(&json, &decky_a);
    let of_type = |t: &str| parsed.iter().filter(|v| v["event_type"] == t).count();
    assert_eq!(
        (of_type("startup"), of_type("connect")),
        (1, 1),
        "{parsed:?}"
    );
    let connect_json = parsed
        .iter()
        .find(|v| v["event_type"] == "connect")
        .expect("connect object");
    assert_eq!(connect_json["attacker_ip"], gateway.as_str());
    assert_eq!(connect_json["service"], "mongodb");
    assert_eq!(connect_json["fields"]["dst_port"], "27017");
    assert_eq!(connect_json["raw_line"], connects[0].raw.as_str());
    let published = published(&mut system_log, &decky_a);
    assert_eq!(published.len(), 2, "startup and one connect: {published:?}");
    assert_eq!(published[1]["event_type"], "connect");
    assert_eq!(published[1]["attacker_ip"], gateway.as_str());

    // A decky started after the collector is found through the events stream (the rescan
    // interval is far longer than this test).
    let decky_b = format!("decky-test-{pid}-b");
    let ip_b = objects.decky(&tag, &net, &decky_b, "mssql");
    wait_for(&log, &decky_b, "startup", 1).await;

    // A restarted collector goes on where it stopped: no line is written twice.
    let stats = collector.stop().await;
    assert!(stats.rate_limited >= 1, "{stats:?}");
    let collector = Running::start(&engine, &log, &bus);
    connect(ip_a, 27017);
    connect(ip_b, 1433);
    let events_a = wait_for(&log, &decky_a, "connect", 3).await;
    let events_b = wait_for(&log, &decky_b, "connect", 1).await;
    collector.stop().await;
    let events_a_after = raw_events(&log, &decky_a);
    assert_eq!(events_a_after.len(), events_a.len(), "nothing late");
    assert_eq!(
        (count(&events_a, "startup"), count(&events_a, "connect")),
        (1, 3)
    );
    assert_eq!(
        (count(&events_b, "startup"), count(&events_b, "connect")),
        (1, 1)
    );
    let parsed = json_events(&json, &decky_a);
    assert_eq!(parsed.len(), 3, "startup and a connect per collector run");
    let cursors: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("decnet.cursors")).expect("saved"))
            .expect("positions JSON");
    assert!(cursors.len() >= 2, "{cursors:?}");

    // `decnet collect` runs the same collector and stops cleanly on SIGTERM.
    let home = util::Dir::new();
    let cli_log = dir.path().join("cli.log");
    let mut child = home
        .decnet()
        .args(["collect", "--log-file"])
        .arg(&cli_log)
        .env("DECNET_BUS_ENABLED", "false")
        .spawn()
        .expect("spawn decnet collect");
    wait_for(&cli_log, &decky_a, "connect", 3).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    assert_eq!(raw_events(&cli_log, &decky_a).len(), 4);
    assert!(dir.path().join("cli.cursors").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decky_writing_another_deckys_hostname_is_stored_under_its_own() {
    let Some(engine) = util::docker().await else {
        return;
    };
    let pid = std::process::id();
    let tag = format!("decnet-test/collector-forge:{pid}");
    let _image = util::RemoveImageOnDrop(tag.clone());
    let spec = ImageSpec {
        tag: tag.clone(),
        binary: util::static_binary(),
    };
    image::ensure(&engine, &spec, &mut |_| {})
        .await
        .expect("build the decky image");
    let mut objects = Objects::default();
    let net = objects.network(&format!("decnet-test-collector-forge-{pid}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    let bus = LocalBus::new();
    let mut system_log = bus.subscribe(topics::SYSTEM_LOG).expect("subscribe");

    // The victim is an honest decky; the forger's process writes the victim's name.
    let victim = format!("decky-forge-{pid}-victim");
    let forger = format!("decky-forge-{pid}-forger");
    let ip_victim = objects.decky(&tag, &net, &victim, "mongodb");
    let ip_forger = objects.decky_claiming(&tag, &net, &forger, &victim, "mssql");
    let collector = Running::start(&engine, &log, &bus);
    connect(ip_forger, 1433);
    connect(ip_victim, 27017);
    let forged = wait_for(&log, &forger, "connect", 1).await;
    let honest = wait_for(&log, &victim, "connect", 1).await;
    let stats = collector.stop().await;

    assert_eq!(
        (count(&forged, "startup"), count(&forged, "connect")),
        (1, 1),
        "{forged:?}"
    );
    for e in &forged {
        assert_eq!(
            e.service, "mssql",
            "the victim's name carries none of the forger's lines"
        );
        assert_eq!(
            e.fields.get(CLAIMED_HOSTNAME),
            Some(victim.as_str()),
            "{}",
            e.raw
        );
        assert_eq!(e.fields.get(HOSTNAME_MISMATCH), Some("true"), "{}", e.raw);
        let master = LogRecord::from_line("worker", "decnet.log", 1, e.raw.as_bytes());
        assert_eq!(
            master.event.map(|e| e.decky),
            Some(forger.clone()),
            "the master stores the true decky"
        );
    }
    assert_eq!(
        (count(&honest, "startup"), count(&honest, "connect")),
        (1, 1),
        "only the victim's own lines are the victim's: {honest:?}"
    );
    assert!(
        honest
            .iter()
            .all(|e| e.service == "mongodb" && e.fields.get(CLAIMED_HOSTNAME).is_none()),
        "{honest:?}"
    );
    assert_eq!(stats.mismatched, 2, "{stats:?}");

    let json: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("decnet.json"))
        .expect("json log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    let of = |decky: &str| json.iter().filter(|v| v["decky"] == decky).count();
    assert_eq!((of(&forger), of(&victim)), (2, 2), "{json:?}");
    assert!(
        json.iter()
            .filter(|v| v["decky"] == forger.as_str())
            .all(|v| v["fields"][CLAIMED_HOSTNAME] == victim.as_str()),
        "{json:?}"
    );
    let bus_forger = published(&mut system_log, &forger);
    assert_eq!(bus_forger.len(), 2, "{bus_forger:?}");
}

#[test]
fn collect_without_docker_says_how_to_start_it() {
    let home = util::Dir::new();
    let out = util::run(
        home.decnet()
            .args(["collect", "--log-file"])
            .arg(home.path().join("decnet.log"))
            .env(
                "DOCKER_HOST",
                format!("unix://{}/none.sock", home.path().display()),
            ),
    );
    util::assert_code(&out, 1);
    assert!(
        util::stderr(&out).contains("systemctl start docker"),
        "{}",
        util::stderr(&out)
    );
}
