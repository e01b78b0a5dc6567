//! A lab of network namespaces for the attacker's view (DESIGN.md "Testing") without
//! Docker: an "attacker" namespace holds a Linux bridge with 198.51.100.250/24, and each
//! decky is a namespace of its own joined to that bridge through a veth pair, with an
//! address in 198.51.100.0/24 on its `eth0`. Decky service processes run in their
//! namespace (`ip netns exec`) on their real ports; the attacker's tools (nmap) run in
//! the attacker's and reach them at their own addresses over the bridge.
//!
//! The bridge lives in the attacker namespace, not the host's, so nothing touches the
//! host's interfaces, routes or firewall (a Docker engine's FORWARD policy never sees
//! these frames). Every name carries a per-run tag, and [`Lab`]'s `Drop` deletes the
//! namespaces, which takes their veths and the bridge with them, even when a test fails.
use std::net::Ipv4Addr;
use std::process::Command;

use super::swarmlab::sh;

/// The attacker's address on the lab bridge.
pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 250);

/// Network namespaces: one attacker with the bridge, one per decky.
pub struct Lab {
    tag: String,
    attacker: String,
    deckies: Vec<String>,
}

impl Lab {
    /// A new lab with its attacker namespace and bridge; `None` after a
    /// [`super::skip`] notice where namespaces cannot be made (not root, no iproute2).
    pub fn new() -> Option<Self> {
        let tag = format!("{:06x}", decnet::model::rng::fresh_seed() & 0xff_ffff);
        let attacker = format!("dnla{tag}");
        let made = Command::new("ip")
            .args(["netns", "add", &attacker])
            .output()
            .is_ok_and(|o| o.status.success());
        if !made {
            super::skip("network namespaces (root and iproute2)");
            return None;
        }
        let lab = Lab {
            tag,
            attacker,
            deckies: Vec::new(),
        };
        let ns = lab.attacker.as_str();
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", ns, "link", "add", "br0", "type", "bridge"]);
        sh(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ATTACKER}/24"),
            "dev",
            "br0",
        ]);
        sh(&["ip", "-n", ns, "link", "set", "br0", "up"]);
        Some(lab)
    }

    /// Adds a decky namespace on the bridge; returns its name and address
    /// (198.51.100.10, .11, …).
    pub fn add_decky(&mut self) -> (String, Ipv4Addr) {
        let index = u8::try_from(self.deckies.len()).expect("fewer than 200 deckies");
        let ip = Ipv4Addr::new(198, 51, 100, 10 + index);
        let ns = format!("dnld{}{index}", self.tag);
        sh(&["ip", "netns", "add", &ns]);
        self.deckies.push(ns.clone());
        let port = format!("v{index}");
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
            &self.attacker,
        ]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        let att = self.attacker.as_str();
        sh(&["ip", "-n", att, "link", "set", &port, "master", "br0", "up"]);
        (ns, ip)
    }

    /// A command that runs `program` in the attacker namespace.
    pub fn attacker(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.attacker, program]);
        cmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.deckies.iter().chain([&self.attacker]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
