//! `nmap -sV` from the attacker's namespace of a lab (DESIGN.md "Testing", tests/util/lab)
//! against decky service processes on their real ports: nmap must name, for each emulated
//! service, the product and version the decky's persona claims — never `tcpwrapped`,
//! never a honeypot (nmap-service-probes knows Dionaea, Kojoney, Cowrie and friends).
//!
//! The table [`ENTRIES`] holds one row per service: its port, whether it speaks first, and
//! what nmap must report for a persona. A row whose service is still a stand-in is left
//! out of the scan (and named on stderr), so a service that lands is checked at once.
//! Claims come from two sides: the persona the library computes for the decky's seed
//! (the `Server` header, the redis release), and, where the persona's API belongs to the
//! service, the greeting the service really sent, checked against the releases the
//! distro shipped (this file's own tables) and then against what nmap made of it.
mod services_common;
mod util;

use std::net::Ipv4Addr;
use std::time::Duration;

use decnet::model::DeckySeed;
use decnet::roles::decky::persona::WebFlavor;
use decnet::roles::decky::{Persona, is_emulated};
use services_common::{Launch, Service, seed, tool};
use util::lab::Lab;

/// What nmap must say about one port.
#[derive(Debug)]
struct Claim {
    /// nmap's service name (`http` also for https, which nmap reports as a tunnel).
    name: &'static str,
    /// Its product.
    product: String,
    /// Its version, exactly; `None`: nmap cannot learn one (PostgreSQL, Postfix).
    version: Option<String>,
    /// Text its extra info must contain.
    extrainfo: Option<String>,
    /// The hostname nmap learns, where the reply names one.
    hostname: Option<String>,
    /// `ssl` for TLS services.
    tunnel: Option<&'static str>,
}

impl Claim {
    fn new(name: &'static str, product: &str, version: Option<&str>) -> Self {
        Claim {
            name,
            product: product.to_owned(),
            version: version.map(str::to_owned),
            extrainfo: None,
            hostname: None,
            tunnel: None,
        }
    }
}

/// One service of the table.
struct Entry {
    service: &'static str,
    port: u16,
    /// Whether it speaks first (then its greeting is read and handed to `claim`).
    greets: bool,
    /// What nmap must report, from the persona and the greeting.
    claim: fn(&Persona, &[u8]) -> Claim,
}

/// Every service nmap is asked about; a new emulation is one row here.
const ENTRIES: &[Entry] = &[
    Entry {
        service: "ftp",
        port: 21,
        greets: true,
        claim: ftp,
    },
    Entry {
        service: "ssh",
        port: 22,
        greets: true,
        claim: ssh,
    },
    Entry {
        service: "telnet",
        port: 23,
        greets: true,
        claim: telnet,
    },
    Entry {
        service: "smtp",
        port: 25,
        greets: true,
        claim: smtp,
    },
    Entry {
        service: "http",
        port: 80,
        greets: false,
        claim: http,
    },
    Entry {
        service: "https",
        port: 443,
        greets: false,
        claim: https,
    },
    Entry {
        service: "mysql",
        port: 3306,
        greets: true,
        claim: mysql,
    },
    Entry {
        service: "postgres",
        port: 5432,
        greets: false,
        claim: postgres,
    },
    Entry {
        service: "redis",
        port: 6379,
        greets: false,
        claim: redis,
    },
];

/// The first line of a greeting, without its line end.
fn first_line(greeting: &[u8]) -> String {
    let text = String::from_utf8_lossy(greeting);
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

fn ftp(p: &Persona, greeting: &[u8]) -> Claim {
    if p.is_windows() {
        // IIS's FTP service names no version in its greeting, so nmap names none.
        assert_eq!(first_line(greeting), "220 Microsoft FTP Service");
        return Claim::new("ftp", "Microsoft ftpd", None);
    }
    // The vsftpd each distro packages: Debian 12 and Ubuntu 20.04 3.0.3, CentOS 7 3.0.2,
    // the rest 3.0.5.
    let release = match p.distro.slug {
        "ubuntu20" | "debian" => "3.0.3",
        "centos7" => "3.0.2",
        _ => "3.0.5",
    };
    assert_eq!(first_line(greeting), format!("220 (vsFTPd {release})"));
    Claim::new("ftp", "vsftpd", Some(release))
}

fn ssh(p: &Persona, greeting: &[u8]) -> Claim {
    let line = first_line(greeting);
    let shipped = match p.distro.slug {
        "debian" => Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u"),
        "ubuntu22" => Some("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0."),
        "ubuntu20" => Some("SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0."),
        _ => None,
    };
    if let Some(prefix) = shipped {
        assert!(line.starts_with(prefix), "{line} is not {prefix}…");
    }
    let rest = line
        .strip_prefix("SSH-2.0-OpenSSH_")
        .unwrap_or_else(|| panic!("not an OpenSSH banner: {line}"));
    // nmap prints `9.2p1 Debian 2+deb12u3` for `9.2p1 Debian-2+deb12u3`.
    let (version, info) = match rest.split_once(' ') {
        Some((v, vendor)) => {
            let vendor = vendor.replacen('-', " ", 1);
            let info = if vendor.starts_with("Ubuntu") {
                "Ubuntu Linux; protocol 2.0"
            } else {
                "protocol 2.0"
            };
            (format!("{v} {vendor}"), info)
        }
        None => (rest.to_owned(), "protocol 2.0"),
    };
    let mut claim = Claim::new("ssh", "OpenSSH", Some(&version));
    claim.extrainfo = Some(info.to_owned());
    claim
}

fn telnet(_: &Persona, _: &[u8]) -> Claim {
    Claim::new("telnet", "Linux telnetd", None)
}

fn smtp(_: &Persona, greeting: &[u8]) -> Claim {
    let line = first_line(greeting);
    assert!(line.starts_with("220 "), "{line}");
    Claim::new("smtp", "Postfix smtpd", None)
}

fn http(p: &Persona, _: &[u8]) -> Claim {
    let server = p.web_server_header();
    let (product, rest) = server.split_once('/').expect("product/version");
    let (version, info) = rest.split_once(' ').unwrap_or((rest, ""));
    match product {
        // `GET /` is answered 403 with Apache's error page, whose `<address>` line nmap
        // matches first (as for a real Apache that denies `/`): the version and the
        // ServerName, without the `(Ubuntu)` of the `Server` header.
        "Apache" => {
            let mut c = Claim::new("http", "Apache httpd", Some(version));
            c.hostname = Some(p.hostname.clone());
            c
        }
        "nginx" => {
            let mut c = Claim::new("http", "nginx", Some(version));
            c.extrainfo = Some(info.trim_matches(['(', ')']).to_owned()).filter(|i| !i.is_empty());
            c
        }
        "Microsoft-IIS" => Claim::new("http", "Microsoft IIS httpd", Some(version)),
        other => panic!("a Server header decnet does not claim: {other}"),
    }
}

fn https(p: &Persona, greeting: &[u8]) -> Claim {
    let mut claim = http(p, greeting);
    claim.tunnel = Some("ssl");
    claim
}

fn mysql(p: &Persona, greeting: &[u8]) -> Claim {
    // Handshake v10: 3-byte length, sequence id, protocol 10, NUL-terminated version.
    assert!(
        greeting.len() > 5 && greeting[4] == 10,
        "not a v10 handshake"
    );
    let end = greeting[5..]
        .iter()
        .position(|b| *b == 0)
        .expect("version ends");
    let version = String::from_utf8_lossy(&greeting[5..5 + end]).into_owned();
    let shipped = match p.distro.slug {
        _ if p.is_windows() => None,
        "debian" => Some("deb12u"),
        "ubuntu22" => Some("0ubuntu0.22.04"),
        "ubuntu20" => Some("0ubuntu0.20.04"),
        _ => None,
    };
    if let Some(mark) = shipped {
        assert!(
            version.contains(mark),
            "{version} is no {} build",
            p.distro.slug
        );
    }
    Claim::new("mysql", "MySQL", Some(&version))
}

fn postgres(_: &Persona, _: &[u8]) -> Claim {
    Claim::new("postgresql", "PostgreSQL DB", None)
}

fn redis(p: &Persona, _: &[u8]) -> Claim {
    Claim::new("redis", "Redis key-value store", Some(p.redis_build().0))
}

/// A decky of the lab: its persona and the services it runs.
struct Decky {
    distro: &'static str,
    os: Option<&'static str>,
    flavor: WebFlavor,
    services: &'static [&'static str],
}

/// Ubuntu with Apache, Debian with nginx, Windows with IIS: every web server decnet
/// claims, every other service on two distros, and the Windows builds of ftp and mysql.
const DECKIES: &[Decky] = &[
    Decky {
        distro: "ubuntu22",
        os: None,
        flavor: WebFlavor::Apache,
        services: &[
            "ftp", "ssh", "telnet", "smtp", "http", "https", "mysql", "postgres", "redis",
        ],
    },
    Decky {
        distro: "debian",
        os: None,
        flavor: WebFlavor::Nginx,
        services: &[
            "ftp", "ssh", "telnet", "smtp", "http", "https", "mysql", "postgres", "redis",
        ],
    },
    Decky {
        distro: "debian",
        os: Some("windows"),
        flavor: WebFlavor::Iis,
        services: &["ftp", "http", "https", "mysql"],
    },
];

/// The persona of `seed` (as the decky process computes it).
fn persona(node: &str, seed: &str, d: &Decky) -> Persona {
    let seed = DeckySeed::from_hex(seed).expect("hex seed");
    Persona::new(node, None, Some(d.distro), d.os, &seed).expect("catalogued persona")
}

/// The first seed whose persona runs the web server `d` wants.
fn seed_for(node: &str, d: &Decky) -> String {
    (1..=255u8)
        .map(seed)
        .find(|s| persona(node, s, d).web_flavor() == d.flavor)
        .expect("some seed picks each web server")
}

/// What a service sends first, read from the attacker's namespace (2 s at most).
fn greeting(lab: &Lab, ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let script = format!("exec 3<>/dev/tcp/{ip}/{port} && timeout 2 cat <&3");
    for _ in 0..20 {
        let out = lab
            .attacker("timeout")
            .args(["5", "bash", "-c", &script])
            .output()
            .expect("bash in the attacker namespace");
        if !out.stdout.is_empty() {
            return out.stdout;
        }
        std::thread::park_timeout(Duration::from_millis(250));
    }
    panic!("{ip}:{port} sent no greeting");
}

/// The value of attribute `name` in one XML start tag, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The `<service …>` tag nmap's XML gives `ip:port`, when the port is open.
fn service_tag(xml: &str, ip: Ipv4Addr, port: u16) -> Option<String> {
    // `<hosthint>`s before the `<host>`s name the addresses too, without ports.
    let host = xml
        .split("<host ")
        .skip(1)
        .find(|h| h.contains(&format!("<address addr=\"{ip}\"")))?;
    let port_xml = host
        .split("<port ")
        .find(|p| p.contains(&format!("portid=\"{port}\"")))?;
    if !port_xml.contains("<state state=\"open\"") {
        return None;
    }
    let start = port_xml.find("<service ")?;
    let end = start + port_xml[start..].find('>')?;
    Some(port_xml[start..end].to_owned())
}

#[test]
fn nmap_names_each_service_as_the_persona_claims() {
    if !tool("nmap") {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    let mut running: Vec<Service> = Vec::new();
    let mut expected = Vec::new();
    let mut ports = std::collections::BTreeSet::new();
    for (i, d) in DECKIES.iter().enumerate() {
        let node = format!("lab-{i:02}");
        let seed = seed_for(&node, d);
        let p = persona(&node, &seed, d);
        let (netns, ip) = lab.add_decky();
        for entry in ENTRIES.iter().filter(|e| d.services.contains(&e.service)) {
            if !is_emulated(entry.service) {
                eprintln!("nmap lab: {} is a stand-in, not scanned", entry.service);
                continue;
            }
            running.push(Service::launch(Launch {
                service: entry.service,
                seed: &seed,
                node: &node,
                distro: d.distro,
                os: d.os,
                port: entry.port,
                netns: Some(&netns),
                env: &[],
            }));
            let greeting = if entry.greets {
                greeting(&lab, ip, entry.port)
            } else {
                Vec::new()
            };
            ports.insert(entry.port);
            expected.push((ip, entry, (entry.claim)(&p, &greeting)));
        }
    }
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let targets: Vec<String> = (0..DECKIES.len())
        .map(|i| Ipv4Addr::new(198, 51, 100, 10 + u8::try_from(i).unwrap_or(0)).to_string())
        .collect();
    let out = lab
        .attacker("timeout")
        .args(["600", "nmap", "-sV", "-Pn", "-n", "-T4", "-oX", "-", "-p"])
        .arg(ports.join(","))
        .args(&targets)
        .output()
        .expect("run nmap");
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "nmap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !xml.to_ascii_lowercase().contains("honeypot"),
        "nmap calls something a honeypot:\n{xml}"
    );
    let mut wrong = Vec::new();
    for (ip, entry, claim) in &expected {
        let Some(tag) = service_tag(&xml, *ip, entry.port) else {
            wrong.push(format!("{ip}:{} ({}) not open", entry.port, entry.service));
            continue;
        };
        let seen = |name| attr(&tag, name);
        let ok = seen("name").as_deref() == Some(claim.name)
            && seen("product").as_deref() == Some(claim.product.as_str())
            && (claim.version.is_none() || seen("version") == claim.version)
            && claim.extrainfo.as_ref().is_none_or(|want| {
                seen("extrainfo").is_some_and(|have| have.contains(want.as_str()))
            })
            && (claim.hostname.is_none() || seen("hostname") == claim.hostname)
            && seen("tunnel").as_deref() == claim.tunnel;
        if !ok {
            wrong.push(format!(
                "{ip}:{} ({}): nmap says {tag}, the persona claims {claim:?}",
                entry.port, entry.service
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n--- nmap XML\n{xml}",
        wrong.join("\n")
    );
    for svc in &mut running {
        assert!(svc.alive(), "a service died under the scan");
    }
}
