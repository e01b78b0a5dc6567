//! Network views: `ifconfig` (net-tools), `ip addr|route|link` (iproute2), `netstat` and
//! `ss`, showing the seeded interface, the listening daemons and the attacker's own
//! connection.
use std::net::Ipv4Addr;

use super::Shell;
use super::commands::Io;
use super::sysinfo::peer_ip;
use super::tree::Machine;

fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0))
}

fn broadcast(m: &Machine) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(m.addr) | !u32::from(netmask(m.prefix)))
}

fn link_local(m: &Machine) -> String {
    let b: Vec<u8> = m
        .mac
        .split(':')
        .filter_map(|x| u8::from_str_radix(x, 16).ok())
        .collect();
    if b.len() != 6 {
        return "fe80::1".to_owned();
    }
    format!(
        "fe80::{:x}:{:x}:{:x}:{:x}",
        u16::from_be_bytes([b[0] ^ 2, b[1]]),
        u16::from_be_bytes([b[2], 0xff]),
        u16::from_be_bytes([0xfe, b[3]]),
        u16::from_be_bytes([b[4], b[5]])
    )
}

/// `ifconfig`: the seeded interface and `lo`.
pub fn ifconfig(sh: &Shell, io: &mut Io) -> i32 {
    let m = &sh.machine;
    let p = &sh.ctx.persona;
    let rx = 100_000 + p.number("rx-packets", 9_000_000);
    let tx = rx / 2 + p.number("tx-packets", 100_000);
    let rxb = rx * 700;
    let txb = tx * 400;
    let mb = |b: u64| {
        if b > 1_000_000_000 {
            format!("{:.1} GB", b as f64 / 1e9)
        } else {
            format!("{:.1} MB", b as f64 / 1e6)
        }
    };
    io.out(&format!("{}: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n        inet {}  netmask {}  broadcast {}\n        inet6 {}  prefixlen 64  scopeid 0x20<link>\n        ether {}  txqueuelen 1000  (Ethernet)\n        RX packets {rx}  bytes {rxb} ({})\n        RX errors 0  dropped 0  overruns 0  frame 0\n        TX packets {tx}  bytes {txb} ({})\n        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0\n\n", m.iface, m.addr, netmask(m.prefix), broadcast(m), link_local(m), m.mac, mb(rxb), mb(txb)));
    let lo = 2_000 + p.number("lo-packets", 90_000);
    io.out(&format!("lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536\n        inet 127.0.0.1  netmask 255.0.0.0\n        inet6 ::1  prefixlen 128  scopeid 0x10<host>\n        loop  txqueuelen 1000  (Local Loopback)\n        RX packets {lo}  bytes {} ({})\n        RX errors 0  dropped 0  overruns 0  frame 0\n        TX packets {lo}  bytes {} ({})\n        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0\n\n", lo * 90, mb(lo * 90), lo * 90, mb(lo * 90)));
    0
}

/// `ip addr`, `ip route`, `ip link`.
pub fn ip(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let m = &sh.machine;
    let sub = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map_or("", String::as_str);
    let gateway = Ipv4Addr::from((u32::from(m.addr) & u32::from(netmask(m.prefix))) | 1);
    let network = Ipv4Addr::from(u32::from(m.addr) & u32::from(netmask(m.prefix)));
    match sub {
        "a" | "addr" | "address" => {
            io.out(&format!("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n    inet6 ::1/128 scope host \n       valid_lft forever preferred_lft forever\n2: {0}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000\n    link/ether {1} brd ff:ff:ff:ff:ff:ff\n    inet {2}/{3} brd {4} scope global {0}\n       valid_lft forever preferred_lft forever\n    inet6 {5}/64 scope link \n       valid_lft forever preferred_lft forever\n", m.iface, m.mac, m.addr, m.prefix, broadcast(m), link_local(m)));
        }
        "r" | "route" => io.out(&format!("default via {gateway} dev {0} proto static \n{network}/{1} dev {0} proto kernel scope link src {2} \n", m.iface, m.prefix, m.addr)),
        "l" | "link" => io.out(&format!("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n2: {}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP mode DEFAULT group default qlen 1000\n    link/ether {} brd ff:ff:ff:ff:ff:ff\n", m.iface, m.mac)),
        "" => {
            io.err("Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }\n       ip [ -force ] -batch filename\nwhere  OBJECT := { address | addrlabel | fou | help | ila | ioam | l2tp | link |\n                   macsec | maddress | monitor | mptcp | mroute | mrule |\n                   neighbor | neighbour | netconf | netns | nexthop | ntable |\n                   ntbl | route | rule | sr | tap | tcpmetrics |\n                   token | tunnel | tuntap | vrf | xfrm }\n");
            return 255;
        }
        other => {
            io.err(&format!("Object \"{other}\" is unknown, try \"ip help\".\n"));
            return 1;
        }
    }
    0
}

/// `netstat` and `ss`: listening daemons and this connection.
pub fn netstat(sh: &Shell, name: &str, _args: &[String], io: &mut Io) -> i32 {
    let m = &sh.machine;
    let p = &sh.ctx.persona;
    let sshd = 500 + p.number("sshd-pid", 400);
    let mut listen: Vec<(&str, String, u64, &str)> =
        vec![("tcp", "0.0.0.0:22".into(), sshd, "sshd")];
    if sh.ctx.service == "telnet" {
        listen.push(("tcp", "0.0.0.0:23".into(), sshd + 20, "inetd"));
    }
    if p.distro.slug.starts_with("ubuntu") {
        listen.push((
            "tcp",
            "127.0.0.53:53".into(),
            400 + p.number("resolved-pid", 90),
            "systemd-resolve",
        ));
    }
    if p.number("has-mysql", 2) == 0 {
        listen.push((
            "tcp",
            "127.0.0.1:3306".into(),
            900 + p.number("mysql-pid", 900),
            "mysqld",
        ));
    }
    listen.push(("tcp6", ":::22".into(), sshd, "sshd"));
    let local_port = sh.local.map_or(22, |l| l.port());
    let peer = format!("{}:{}", peer_ip(sh), sh.ctx.peer.port());
    let mine = format!("{}:{local_port}", m.addr);
    let session = 30_000 + p.number("ps-session", 20_000);
    if name == "ss" {
        io.out("Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n");
        for (proto, addr, pid, prog) in &listen {
            let proto = if proto.starts_with("tcp") {
                "tcp"
            } else {
                proto
            };
            let addr = if let Some(port) = addr.strip_prefix(":::") {
                format!("[::]:{port}")
            } else {
                addr.clone()
            };
            io.out(&format!("{proto:<5} LISTEN 0      128    {addr:>18} {:>18}    users:((\"{prog}\",pid={pid},fd=3))\n", if addr.starts_with('[') { "[::]:*" } else { "0.0.0.0:*" }));
        }
        let prog = if sh.ctx.service == "telnet" {
            "in.telnetd"
        } else {
            "sshd"
        };
        io.out(&format!("tcp   ESTAB  0      36     {mine:>18} {peer:>18}    users:((\"{prog}\",pid={session},fd=4))\n"));
    } else {
        io.out("Active Internet connections (servers and established)\nProto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name    \n");
        for (proto, addr, pid, prog) in &listen {
            let foreign = if proto.ends_with('6') {
                ":::*"
            } else {
                "0.0.0.0:*"
            };
            let prog: String = format!("{pid}/{prog}").chars().take(19).collect();
            io.out(&format!(
                "{proto:<5}      0      0 {addr:<23} {foreign:<23} LISTEN      {prog}\n"
            ));
        }
        let owner: String = if sh.ctx.service == "telnet" {
            format!("{session}/in.telnetd: ")
        } else {
            format!("{session}/sshd: {}", sh.ctx.user)
        };
        io.out(&format!(
            "tcp        0     36 {mine:<23} {peer:<23} ESTABLISHED {owner}\n"
        ));
    }
    0
}
