//! Several decnet hosts on one machine (DESIGN.md "Testing"): a master namespace holding
//! the bridge the hosts meet on, and per worker a namespace with its own Docker engine,
//! its own LAN bridge (the deckies' MACVLAN parent) and an attacker namespace on it.
//!
//! ```text
//!  master ns: sw0 203.0.113.1/24 ── veth ── worker ns: eth0 203.0.113.1N/24
//!                                          lan0 (bridge) 198.51.100.X/25, default via the
//!                                          attacker ── veth ── attacker ns: eth0
//! ```
//! The meeting bridge lives in the master's namespace, so nothing touches the host's
//! interfaces, routes or firewall. Cutting a worker off is taking its port on `sw0` down.
//! Every name carries a per-run tag; [`SwarmLab`]'s `Drop` stops the processes and the
//! engines (removing their containers) and deletes the namespaces, even when a test fails.
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The master's address on the meeting bridge.
pub const MASTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// Runs a host command, panicking with its stderr when it fails; its stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One worker host of the lab.
pub struct Worker {
    /// Its name (`w1`, `w2`).
    pub name: String,
    /// Its namespace.
    pub ns: String,
    /// Its attacker's namespace.
    pub attacker_ns: String,
    /// Its address on the meeting bridge.
    pub addr: Ipv4Addr,
    /// Its LAN, as `a.b.c.d/25`.
    pub lan: String,
    /// Its port on the master's bridge (down = cut off).
    pub port: String,
    /// Its Docker engine's socket.
    pub docker_sock: PathBuf,
    /// The directory the bootstrap installs it under (`DECNET_ROOT`).
    pub root: PathBuf,
}

impl Worker {
    /// A command running `program` with `args` in this worker's namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, program]).args(args);
        cmd
    }

    /// A command running `program` in this worker's attacker namespace.
    pub fn attacker(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.attacker_ns, program])
            .args(args);
        cmd
    }

    /// `docker args…` against this worker's engine; its stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.docker_sock.display()),
            )
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The master namespace, the workers, and the processes started in them.
pub struct SwarmLab {
    /// The per-run tag of every name.
    pub tag: String,
    /// The master's namespace.
    pub master_ns: String,
    /// The workers.
    pub workers: Vec<Worker>,
    dir: PathBuf,
    engines: Vec<Child>,
    procs: Vec<Child>,
}

impl SwarmLab {
    /// A lab of `n` workers under `dir`; `None` after a [`super::skip`] notice where
    /// namespaces or a second Docker engine cannot be made.
    pub fn new(dir: &Path, n: u8) -> Option<Self> {
        let tag = format!("{:05x}", decnet::model::rng::fresh_seed() & 0xf_ffff);
        let master_ns = format!("dnsm{tag}");
        let made = Command::new("ip")
            .args(["netns", "add", &master_ns])
            .output()
            .is_ok_and(|o| o.status.success());
        if !made {
            super::skip("network namespaces (root and iproute2)");
            return None;
        }
        let dockerd = Command::new("dockerd").arg("--version").output();
        let mut lab = SwarmLab {
            tag: tag.clone(),
            master_ns: master_ns.clone(),
            workers: Vec::new(),
            dir: dir.to_path_buf(),
            engines: Vec::new(),
            procs: Vec::new(),
        };
        if !dockerd.is_ok_and(|o| o.status.success()) {
            super::skip("dockerd (a second Docker engine per worker)");
            return None;
        }
        let m = master_ns.as_str();
        sh(&["ip", "-n", m, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", m, "link", "add", "sw0", "type", "bridge"]);
        sh(&[
            "ip",
            "-n",
            m,
            "addr",
            "add",
            &format!("{MASTER}/24"),
            "dev",
            "sw0",
        ]);
        sh(&["ip", "-n", m, "link", "set", "sw0", "up"]);
        for i in 1..=n {
            let w = lab.add_worker(i);
            lab.workers.push(w);
        }
        for i in 0..lab.workers.len() {
            let engine = lab.start_engine(i);
            lab.engines.push(engine);
        }
        for w in &lab.workers {
            wait_for_engine(w);
        }
        Some(lab)
    }

    fn add_worker(&self, i: u8) -> Worker {
        let name = format!("w{i}");
        let ns = format!("dnsw{i}{}", self.tag);
        let attacker_ns = format!("dnsa{i}{}", self.tag);
        let addr = Ipv4Addr::new(203, 0, 113, 10 + i);
        let base = 128 * (i - 1);
        let gw = Ipv4Addr::new(198, 51, 100, base + 1);
        let host = Ipv4Addr::new(198, 51, 100, base + 2);
        let port = format!("p{i}");
        sh(&["ip", "netns", "add", &ns]);
        sh(&["ip", "netns", "add", &attacker_ns]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &attacker_ns, "link", "set", "lo", "up"]);
        // The worker's uplink to the master's bridge.
        sh(&[
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            &ns,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.master_ns,
        ]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            &self.master_ns,
            "link",
            "set",
            &port,
            "master",
            "sw0",
            "up",
        ]);
        // Its LAN: a bridge the deckies hang off, the attacker on it as the gateway.
        sh(&["ip", "-n", &ns, "link", "add", "lan0", "type", "bridge"]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{host}/25"),
            "dev",
            "lan0",
        ]);
        sh(&["ip", "-n", &ns, "link", "set", "lan0", "up"]);
        sh(&[
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            &attacker_ns,
            "type",
            "veth",
            "peer",
            "name",
            "att0",
            "netns",
            &ns,
        ]);
        sh(&[
            "ip", "-n", &ns, "link", "set", "att0", "master", "lan0", "up",
        ]);
        sh(&[
            "ip",
            "-n",
            &attacker_ns,
            "addr",
            "add",
            &format!("{gw}/25"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &attacker_ns, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &gw.to_string(),
        ]);
        let dir = self.dir.join(&name);
        std::fs::create_dir_all(dir.join("docker")).unwrap_or_else(|e| panic!("{e}"));
        Worker {
            name,
            ns,
            attacker_ns,
            addr,
            lan: format!("198.51.100.{base}/25"),
            port,
            docker_sock: dir.join("docker/docker.sock"),
            root: dir.join("root"),
        }
    }

    fn start_engine(&self, i: usize) -> Child {
        let w = &self.workers[i];
        let d = self.dir.join(&w.name).join("docker");
        let config = serde_json::json!({
            "data-root": d.join("data"), "exec-root": d.join("exec"),
            "pidfile": d.join("docker.pid"),
            "hosts": [format!("unix://{}", w.docker_sock.display())],
            "storage-driver": "vfs", "bridge": "none", "iptables": false,
            "ip6tables": false, "ip-forward": false, "ip-masq": false,
        });
        let file = d.join("daemon.json");
        std::fs::write(&file, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap_or_else(|e| panic!("{e}"));
        // nsenter, not `ip netns exec`: the latter remounts /sys and hides the cgroups.
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", w.ns))
            .args(["dockerd", "--config-file"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("dockerd: {e}"))
    }

    /// A command running `program` with `args` in the master's namespace.
    pub fn master(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.master_ns, program])
            .args(args);
        cmd
    }

    /// Keeps `child` to be stopped when the lab goes.
    pub fn keep(&mut self, child: Child) {
        self.procs.push(child);
    }

    /// Cuts worker `i` off the master (`up = false`) or reconnects it.
    pub fn link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        sh(&[
            "ip",
            "-n",
            &self.master_ns,
            "link",
            "set",
            &self.workers[i].port,
            state,
        ]);
    }
}

/// Blocks for `ms` milliseconds (set-up and clean-up run outside the runtime).
fn nap(ms: u64) {
    #[allow(clippy::disallowed_methods)] // blocking set-up and `Drop`, not async code
    std::thread::sleep(Duration::from_millis(ms));
}

fn wait_for_engine(w: &Worker) {
    for _ in 0..120 {
        let ok = Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", w.docker_sock.display()))
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
        nap(250);
    }
    panic!("the Docker engine of {} did not start", w.name);
}

/// Sends SIGTERM, then SIGKILL after `grace`.
pub fn stop(child: &mut Child, grace: Duration) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = std::time::SystemTime::now() + grace;
    while std::time::SystemTime::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        nap(100);
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for SwarmLab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            stop(p, Duration::from_secs(10));
        }
        for w in &self.workers {
            let ids = w.docker(&["ps", "-aq"]);
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                w.docker(&args);
            }
        }
        for e in &mut self.engines {
            stop(e, Duration::from_secs(20));
        }
        let mut all = vec![self.master_ns.clone()];
        for w in &self.workers {
            all.push(w.ns.clone());
            all.push(w.attacker_ns.clone());
        }
        for ns in all {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
    }
}
