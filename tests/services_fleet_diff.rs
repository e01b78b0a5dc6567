//! Two deckies of one fleet and a decky of another install, configured alike, must share
//! no identity material: per service, what a visitor can collect (certificate, cookies,
//! ETags, file listings and contents, run ids, host keys, greetings with hostnames…) is
//! gathered from each and compared pairwise.
//!
//! The three deckies differ only in their seeds (the second install's decky even has the
//! first one's name and configuration), so anything equal between them is a constant of
//! decnet, the tell that puts every install on a block list. Material a real server
//! shares with every install of the same release (the `Server` header, the default page,
//! the vsftpd banner) is marked [`Rule::Genuine`] and only shown.
//!
//! [`ENTRIES`] holds one row per service; a row whose service is still a stand-in is
//! skipped with a note, so an emulation that lands is diffed at once.
mod services_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use decnet::roles::decky::is_emulated;
use services_common::{Service, exchange, run, tool};

/// Whether two deckies may show the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Derived from the seed: equal on two deckies is a tell.
    Differ,
    /// What every install of the real release shows.
    Genuine,
}

/// One piece of identity material.
struct Item {
    label: String,
    value: Vec<u8>,
    rule: Rule,
}

fn item(label: impl Into<String>, value: impl Into<Vec<u8>>, rule: Rule) -> Item {
    Item {
        label: label.into(),
        value: value.into(),
        rule,
    }
}

/// One service of the table.
struct Entry {
    service: &'static str,
    /// Settings the service runs with.
    env: &'static [(&'static str, &'static str)],
    /// Client tools the collector needs.
    tools: &'static [&'static str],
    /// What a visitor collects from a running service.
    collect: fn(&Service) -> Vec<Item>,
}

/// Every service diffed; a new emulation is one row here.
const ENTRIES: &[Entry] = &[
    Entry {
        service: "http",
        env: &[("FAKE_APP", "apache_default")],
        tools: &[],
        collect: http,
    },
    Entry {
        service: "http",
        env: &[("FAKE_APP", "phpmyadmin")],
        tools: &[],
        collect: http,
    },
    Entry {
        service: "https",
        env: &[],
        tools: &["openssl"],
        collect: https,
    },
    Entry {
        service: "ftp",
        env: &[("FTP_LOGIN_MODE", "always")],
        tools: &[],
        collect: ftp,
    },
    Entry {
        service: "redis",
        env: &[],
        tools: &[],
        collect: redis,
    },
    Entry {
        service: "ssh",
        env: &[],
        tools: &["ssh-keyscan"],
        collect: ssh,
    },
    Entry {
        service: "smtp",
        env: &[],
        tools: &[],
        collect: smtp,
    },
    Entry {
        service: "telnet",
        env: &[],
        tools: &[],
        collect: telnet,
    },
    Entry {
        service: "mysql",
        env: &[],
        tools: &[],
        collect: mysql,
    },
];

/// A response's header values named `name` (case-insensitive), and its body.
fn http_parts(response: &[u8], name: &str) -> (Vec<String>, Vec<u8>) {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&response[..split]);
    let values = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    (values, response[split + 4..].to_vec())
}

fn http(svc: &Service) -> Vec<Item> {
    let response = exchange(
        svc.port,
        b"GET /index.php HTTP/1.0\r\nHost: intranet\r\n\r\n",
        Duration::from_secs(5),
    );
    let header = |name: &str| http_parts(&response, name).0.join("\n");
    let (_, body) = http_parts(&response, "server");
    let mut items = vec![item("Server header", header("server"), Rule::Genuine)];
    // Pages served "from disk" carry the file's ETag and Last-Modified; error pages none.
    for name in ["etag", "last-modified"] {
        let value = header(name);
        if !value.is_empty() {
            items.push(item(name, value, Rule::Differ));
        }
    }
    let cookie = header("set-cookie");
    if cookie.is_empty() {
        items.push(item("page body", body, Rule::Genuine));
    } else {
        items.push(item("session cookie", cookie, Rule::Differ));
        items.push(item("app page body (with its token)", body, Rule::Differ));
    }
    items
}

fn https(svc: &Service) -> Vec<Item> {
    let out = run(Command::new("sh").args([
        "-c",
        &format!(
            "openssl s_client -connect 127.0.0.1:{} -servername web </dev/null 2>/dev/null \
             | openssl x509 -outform DER",
            svc.port
        ),
    ]));
    assert!(!out.stdout.is_empty(), "https presents a certificate");
    vec![item("TLS certificate DER", out.stdout, Rule::Differ)]
}

/// A minimal FTP client: login, then `LIST` and `RETR README.txt` over EPSV.
fn ftp(svc: &Service) -> Vec<Item> {
    let control = TcpStream::connect(("127.0.0.1", svc.port)).expect("connect");
    control
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(control.try_clone().expect("clone"));
    let mut writer = control;
    let mut reply = |send: &str| {
        if !send.is_empty() {
            writer.write_all(send.as_bytes()).expect("send");
        }
        let mut line = String::new();
        reader.read_line(&mut line).expect("reply");
        line
    };
    let banner = reply("");
    assert!(reply("USER backup\r\n").starts_with("331"));
    assert!(reply("PASS hunter2\r\n").starts_with("230"));
    let mut fetch = |command: &str| {
        let epsv = reply("EPSV\r\n");
        let port: u16 = epsv
            .split('|')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("EPSV reply: {epsv}"));
        let mut data = TcpStream::connect(("127.0.0.1", port)).expect("data connection");
        assert!(reply(command).starts_with("150"));
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes).expect("data");
        assert!(reply("").starts_with("226"));
        bytes
    };
    let listing = fetch("LIST\r\n");
    let readme = fetch("RETR README.txt\r\n");
    vec![
        item("banner", banner, Rule::Genuine),
        item("LIST of the bait tree", listing, Rule::Differ),
        item("README.txt content", readme, Rule::Differ),
    ]
}

fn redis(svc: &Service) -> Vec<Item> {
    let reply = exchange(
        svc.port,
        b"INFO server\r\nKEYS *\r\nQUIT\r\n",
        Duration::from_secs(5),
    );
    let text = String::from_utf8_lossy(&reply).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("INFO has {name}: {text}"))
            .to_owned()
    };
    let keys = text.split("\r\n*").nth(1).unwrap_or_default().to_owned();
    assert!(!keys.is_empty(), "KEYS answered: {text}");
    vec![
        item("INFO run_id", field("run_id:"), Rule::Differ),
        item(
            "INFO redis_build_id",
            field("redis_build_id:"),
            Rule::Genuine,
        ),
        item("INFO redis_version", field("redis_version:"), Rule::Genuine),
        item("KEYS *", keys, Rule::Differ),
    ]
}

fn ssh(svc: &Service) -> Vec<Item> {
    let out = run(Command::new("ssh-keyscan").args(["-p", &svc.port.to_string(), "127.0.0.1"]));
    let keys = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut items: Vec<Item> = keys
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace().skip(1);
            Some((f.next()?.to_owned(), f.next()?.to_owned()))
        })
        .map(|(kind, key)| item(format!("host key {kind}"), key, Rule::Differ))
        .collect();
    assert!(!items.is_empty(), "ssh-keyscan found keys: {keys}");
    let banner = exchange(svc.port, b"", Duration::from_secs(2));
    items.push(item("version banner", banner, Rule::Genuine));
    items
}

fn smtp(svc: &Service) -> Vec<Item> {
    let reply = exchange(svc.port, b"EHLO probe\r\nQUIT\r\n", Duration::from_secs(3));
    vec![item(
        "greeting and EHLO (with the hostname)",
        reply,
        Rule::Differ,
    )]
}

fn telnet(svc: &Service) -> Vec<Item> {
    let reply = exchange(svc.port, b"", Duration::from_secs(3));
    let text = String::from_utf8_lossy(&reply);
    let prompt = text
        .lines()
        .find(|l| l.contains("login:"))
        .unwrap_or_else(|| panic!("a login prompt: {text:?}"));
    vec![item("login prompt", prompt, Rule::Differ)]
}

fn mysql(svc: &Service) -> Vec<Item> {
    let greeting = exchange(svc.port, b"", Duration::from_secs(2));
    let end = 5 + greeting
        .get(5..)
        .and_then(|g| g.iter().position(|b| *b == 0))
        .expect("a v10 handshake");
    let thread = greeting.get(end + 1..end + 5).unwrap_or_default().to_vec();
    vec![
        item("server version", &greeting[5..end], Rule::Genuine),
        item("thread id", thread, Rule::Differ),
    ]
}

/// Seeds of fleet A's two deckies and install B's one (distinct, not patterned).
const SEEDS: [&str; 3] = [
    "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592",
    "7d793037a0760186574b0282f2f435e77d793037a0760186574b0282f2f435e7",
    "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
];

/// Decky names: B's decky is named like A's first one.
const NODES: [&str; 3] = ["decky-01", "decky-02", "decky-01"];

#[test]
fn no_identity_material_is_shared_between_deckies_or_installs() {
    let mut clashes = Vec::new();
    for entry in ENTRIES {
        if !is_emulated(entry.service) {
            eprintln!("fleet diff: {} is a stand-in, not diffed", entry.service);
            continue;
        }
        if !entry.tools.iter().all(|t| tool(t)) {
            continue;
        }
        let what = format!("{} {:?}", entry.service, entry.env);
        let collected: Vec<Vec<Item>> = SEEDS
            .iter()
            .zip(NODES)
            .map(|(seed, node)| {
                let svc = Service::start(entry.service, seed, node, "debian", entry.env);
                (entry.collect)(&svc)
            })
            .collect();
        let differ = collected
            .iter()
            .flatten()
            .filter(|it| it.rule == Rule::Differ);
        assert!(differ.count() > 0, "{what}: nothing seeded was collected");
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            for x in &collected[a] {
                // Material only one of them shows (a header of one page kind) is not shared.
                let Some(y) = collected[b].iter().find(|y| y.label == x.label) else {
                    continue;
                };
                if x.rule == Rule::Differ && x.value == y.value {
                    clashes.push(format!(
                        "{what}: {} is the same on decky {a} and decky {b}: {:?}",
                        x.label,
                        String::from_utf8_lossy(&x.value)
                    ));
                }
            }
        }
        for it in collected[0].iter().filter(|it| it.rule == Rule::Genuine) {
            eprintln!(
                "fleet diff: {what}: {} (may be shared): {:?}",
                it.label,
                String::from_utf8_lossy(&it.value)
                    .chars()
                    .take(80)
                    .collect::<String>()
            );
        }
    }
    assert!(clashes.is_empty(), "{}", clashes.join("\n"));
}
