//! Shared harness of the service tests: run `decnet decky --service S --port tcp/0` as a
//! real process, learn its port from the `startup` line, read its events, and find the
//! real client tools (curl, redis-cli) the tests drive it with.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use decnet::syslog::{self, Event};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A seed of 32 copies of `byte`, as 64 hex digits.
pub fn seed(byte: u8) -> String {
    format!("{byte:02x}").repeat(32)
}

/// How to start a service process: [`Service::start`]'s arguments and the rest.
#[derive(Debug, Default, Clone, Copy)]
pub struct Launch<'a> {
    /// Service slug.
    pub service: &'a str,
    /// The decky seed, 64 hex digits.
    pub seed: &'a str,
    /// The decky name.
    pub node: &'a str,
    /// The distro the persona claims.
    pub distro: &'a str,
    /// The OS family the persona claims (`linux` when `None`).
    pub os: Option<&'a str>,
    /// The TCP port to serve (0: any free one).
    pub port: u16,
    /// The network namespace to run in (`ip netns exec`), the host's when `None`.
    pub netns: Option<&'a str>,
    /// Service settings as environment variables.
    pub env: &'a [(&'a str, &'a str)],
}

/// A running decky service process.
pub struct Service {
    child: Child,
    /// The TCP port it bound.
    pub port: u16,
    lines: mpsc::Receiver<String>,
}

impl Service {
    /// Starts `service` of decky `node` with `seed`, claiming `distro`, plus `env`.
    pub fn start(
        service: &str,
        seed: &str,
        node: &str,
        distro: &str,
        env: &[(&str, &str)],
    ) -> Self {
        Self::launch(Launch {
            service,
            seed,
            node,
            distro,
            env,
            ..Launch::default()
        })
    }

    /// Starts a service as `how` says (a port, an OS family, inside a network namespace).
    pub fn launch(how: Launch<'_>) -> Self {
        let bin = env!("CARGO_BIN_EXE_decnet");
        let mut cmd = match how.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["decky", "--service", how.service, "--port"])
            .arg(format!("tcp/{}", how.port))
            .args([
                "--seed", how.seed, "--node", how.node, "--distro", how.distro,
            ])
            .args(how.os.iter().flat_map(|os| ["--os", *os]))
            .envs(how.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn decnet decky");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut svc = Service {
            child,
            port: 0,
            lines,
        };
        let startup = svc.next("startup");
        let ports = startup
            .fields
            .get("ports")
            .expect("ports in startup")
            .to_owned();
        svc.port = ports
            .strip_prefix("tcp/")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("startup names its port: {ports}"));
        svc
    }

    /// The next event of type `msg_id`, skipping others (30 s at most).
    pub fn next(&mut self, msg_id: &str) -> Event {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no `{msg_id}` event within 30 s"));
            let event = syslog::parse(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
            if event.event_type == msg_id {
                return event;
            }
        }
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Sends raw bytes on a fresh connection, reads what comes back until close or 3 s.
    pub fn raw(&self, data: &[u8]) -> Vec<u8> {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return Vec::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        let _ = s.write_all(data);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut out);
        out
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Whether client `tool` is installed; a missing one fails under `CI=true` and is a
/// loud skip elsewhere.
pub fn tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        #[allow(clippy::disallowed_methods)] // test harness policy, not decnet config
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!in_ci, "CI must have {tool} (scripts/setup.sh installs it)");
        eprintln!("SKIP: {tool} missing");
    }
    found
}

/// Runs a client command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run client")
}

/// The bytes `secret_b64` of `event` decodes to.
pub fn secret(event: &Event) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = event.fields.get("secret_b64").expect("secret_b64");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("valid base64")
}

/// A small xorshift generator for fuzz inputs (deterministic per seed).
pub struct Fuzz(u64);

impl Fuzz {
    /// A generator from `seed` (non-zero).
    pub fn new(seed: u64) -> Self {
        Fuzz(seed | 1)
    }

    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() & 0xff) as u8).collect()
    }
}

/// Connects to `port` on loopback, sends `data`, and returns what arrives within `wait`
/// or until the server closes; the write side stays open, so a server that waits for
/// more input is not cut short by an early end of file.
pub fn exchange(port: u16, data: &[u8], wait: Duration) -> Vec<u8> {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = s.write_all(data);
    let mut out = Vec::new();
    let mut buf = [0u8; 16_384];
    let deadline = std::time::SystemTime::now() + wait;
    while std::time::SystemTime::now() < deadline {
        match std::io::Read::read(&mut s, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    out
}
