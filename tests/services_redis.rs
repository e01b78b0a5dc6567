//! redis against the real `redis-cli`: AUTH with the real error texts and the secret
//! logged byte-exact, INFO of the claimed release, KEYS and GET of the seeded keyspace,
//! and survival of garbage and truncated RESP.
mod services_common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use services_common::{Fuzz, Service, run, secret, seed, tool};

/// A password with spaces, quotes, `]`, `\`, UTF-8 and a byte that is not UTF-8.
const NASTY: &[u8] = b"p a\"s]s\\w'\xc3\xb6\xffrd";

fn cli(svc: &Service) -> Command {
    let mut c = Command::new("redis-cli");
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &svc.port.to_string(),
        "--no-auth-warning",
    ]);
    c
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn auth_is_refused_with_redis_texts_and_logged_byte_exact() {
    if !tool("redis-cli") {
        return;
    }
    let mut svc = Service::start(
        "redis",
        &seed(1),
        "db-01",
        "debian",
        &[("REDIS_PASSWORD", "s3cret")],
    );
    let out = run(cli(&svc)
        .arg("-a")
        .arg(OsStr::from_bytes(NASTY))
        .arg("DBSIZE"));
    let all = format!("{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        all.contains("WRONGPASS invalid username-password pair or user is disabled."),
        "{all}"
    );
    assert!(all.contains("NOAUTH Authentication required."), "{all}");
    let auth = svc.next("auth");
    assert_eq!(secret(&auth), NASTY);
    assert_eq!(auth.fields.get("secret_kind"), Some("plaintext"));
    assert_eq!(
        auth.fields.get("secret_printable"),
        Some("p a\"s]s\\w'???rd")
    );
    assert!(auth.fields.get("principal").is_none());
    assert_eq!(auth.attacker_ip.as_deref(), Some("127.0.0.1"));

    let out = run(cli(&svc)
        .args(["--user", "admin", "--pass"])
        .arg(OsStr::from_bytes(NASTY))
        .arg("PING"));
    assert!(
        text(&out).contains("NOAUTH") || String::from_utf8_lossy(&out.stderr).contains("WRONGPASS")
    );
    let auth = svc.next("auth");
    assert_eq!(auth.fields.get("principal"), Some("admin"));
    assert_eq!(secret(&auth), NASTY);

    let out = run(cli(&svc).args(["-a", "s3cret", "DBSIZE"]));
    assert!(
        text(&out).trim().parse::<u32>().is_ok_and(|n| n >= 5),
        "{}",
        text(&out)
    );
    let command = loop {
        let c = svc.next("command");
        if c.fields.get("cmd") == Some("AUTH") {
            break c;
        }
    };
    assert_eq!(
        command.fields.get("args"),
        Some("[]"),
        "the secret stays in `auth` only"
    );
}

#[test]
fn info_keys_get_of_the_claimed_release() {
    if !tool("redis-cli") {
        return;
    }
    let mut svc = Service::start("redis", &seed(2), "db-02", "ubuntu22", &[]);
    let out = run(cli(&svc).args(["INFO", "server"]));
    let info = text(&out);
    assert!(info.contains("redis_version:6.0.16"), "{info}");
    assert!(
        info.contains("os:Linux 5.15.0-") && info.contains("-generic x86_64"),
        "{info}"
    );
    assert!(info.contains("gcc_version:11.2.0"));
    let out = run(cli(&svc).args(["AUTH", "whatever"]));
    assert!(
        text(&out).contains(
            "AUTH <password> called without any password configured for the default user"
        ),
        "{}",
        text(&out)
    );
    let out = run(cli(&svc).args(["KEYS", "sess:*"]));
    let keys = text(&out);
    let first = keys.lines().next().expect("a session key").to_owned();
    assert!(first.starts_with("sess:") && first.len() == 37, "{keys}");
    let out = run(cli(&svc).args(["GET", &first]));
    assert!(text(&out).contains("\"user_id\":"), "{}", text(&out));
    let out = run(cli(&svc).args(["FOO", "a", "b"]));
    assert_eq!(
        text(&out).trim_end_matches('\n'),
        "ERR unknown command `FOO`, with args beginning with: `a`, `b`, "
    );
    let out = run(cli(&svc).args(["CONFIG", "GET", "maxmemory*"]));
    assert!(
        text(&out).contains("maxmemory-policy\nnoeviction"),
        "{}",
        text(&out)
    );

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let e = svc.next("command");
        seen.push(e.fields.get("cmd").unwrap_or_default().to_owned());
    }
    assert_eq!(seen, ["INFO", "AUTH", "KEYS", "GET"]);
    let other = Service::start("redis", &seed(3), "db-03", "ubuntu22", &[]);
    let theirs = text(&run(cli(&other).args(["KEYS", "*"])));
    assert!(!theirs.contains(&first), "another seed, another keyspace");
}

#[test]
fn garbage_and_truncated_resp_do_not_stop_the_server() {
    if !tool("redis-cli") {
        return;
    }
    let mut svc = Service::start("redis", &seed(4), "db-04", "debian", &[]);
    let mut fuzz = Fuzz::new(4);
    let valid = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\n";
    let mut saw_protocol_error = false;
    for round in 0..80 {
        let len = usize::try_from(fuzz.next() % 4096).unwrap_or(0);
        let data = match round % 4 {
            0 => fuzz.bytes(len),
            1 => valid[..len % valid.len()].to_vec(),
            2 => [&b"*2\r\n$999999999\r\n"[..], &fuzz.bytes(len)].concat(),
            _ => [&b"*1\r\n$4\r\n"[..], &vec![b'z'; len]].concat(),
        };
        let reply = svc.raw(&data);
        saw_protocol_error |= reply.starts_with(b"-ERR Protocol error");
    }
    assert!(
        saw_protocol_error,
        "oversized bulk lengths are refused with redis's text"
    );
    assert!(svc.alive(), "the server survived");
    let out = run(cli(&svc).arg("PING"));
    assert_eq!(text(&out).trim(), "PONG");
    assert!(svc.alive());
}

#[test]
fn connections_over_the_cap_are_closed_at_once() {
    if !tool("redis-cli") {
        return;
    }
    use std::io::{Read, Write};
    let svc = Service::start("redis", &seed(5), "db-05", "debian", &[]);
    let mut held = Vec::new();
    for _ in 0..256 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", svc.port)).expect("connect");
        s.write_all(b"PING\r\n").expect("write");
        let mut pong = [0u8; 7];
        s.read_exact(&mut pong).expect("a reply within the cap");
        assert_eq!(&pong, b"+PONG\r\n");
        held.push(s);
    }
    let mut over = std::net::TcpStream::connect(("127.0.0.1", svc.port)).expect("connect");
    over.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let _ = over.write_all(b"PING\r\n");
    let mut buf = [0u8; 16];
    let n = over.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the 257th connection is closed without a reply");
    drop(held);
    // The server notices the closes asynchronously: give it a few tries.
    let back = (0..50).any(|_| {
        let pong = text(&run(cli(&svc).arg("PING"))).trim() == "PONG";
        if !pong {
            std::thread::park_timeout(std::time::Duration::from_millis(100));
        }
        pong
    });
    assert!(back, "capacity comes back");
}
