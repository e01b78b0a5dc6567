//! smtp against real clients: swaks (AUTH LOGIN, then a message) and Python's smtplib
//! (CRAM-MD5 through `login`, AUTH PLAIN with a password of every awkward byte, a
//! dot-stuffed message, a relay attempt, STARTTLS), the open-relay persona, Postfix's
//! replies to pipelined and broken input, and survival of garbage and slow clients.
mod services_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use services_common::{Fuzz, Service, run, secret, seed, tool};
use sha2::{Digest, Sha256};

/// A password with spaces, quotes, `]`, `\`, UTF-8 and a byte that is not UTF-8.
const NASTY: &[u8] = b"p a\"s]s\\w'\xc3\xb6\xffrd";

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn swaks_auth_login_and_a_message() {
    if !tool("swaks") {
        return;
    }
    let quarantine = tempfile::tempdir().expect("tempdir");
    let dir = quarantine.path().to_string_lossy().into_owned();
    let mut svc = Service::start(
        "smtp",
        &seed(1),
        "mail-01",
        "debian",
        &[("SMTP_QUARANTINE_DIR", &dir)],
    );
    let server = format!("127.0.0.1:{}", svc.port);
    let out = run(Command::new("swaks").args([
        "--server",
        &server,
        "--from",
        "bob@example.org",
        "--to",
        "root",
        "--auth",
        "LOGIN",
        "--auth-user",
        "bob@example.org",
        "--auth-password",
        "Winter2024! \"x\" ]\\",
        "--timeout",
        "20",
    ]));
    let log = text(&out);
    assert!(!out.status.success(), "the login must fail: {log}");
    assert!(
        log.contains("<-  220 ") && log.contains(" ESMTP Postfix (Debian/GNU)"),
        "{log}"
    );
    assert!(log.contains("<-  250-PIPELINING"), "{log}");
    assert!(log.contains("<-  250-STARTTLS"), "{log}");
    assert!(log.contains("<-  250-AUTH PLAIN LOGIN CRAM-MD5"), "{log}");
    assert!(log.contains("<-  250 CHUNKING"), "{log}");
    assert!(log.contains("<-  334 VXNlcm5hbWU6"), "{log}");
    assert!(log.contains("<-  334 UGFzc3dvcmQ6"), "{log}");
    assert!(
        log.contains("<** 535 5.7.8 Error: authentication failed: (reason unavailable)"),
        "{log}"
    );
    let connect = svc.next("connect");
    assert_eq!(connect.attacker_ip.as_deref(), Some("127.0.0.1"));
    let ehlo = svc.next("ehlo");
    assert_eq!(ehlo.fields.get("command"), Some("EHLO"));
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("mechanism"), Some("LOGIN"));
    assert_eq!(auth.fields.get("principal"), Some("bob@example.org"));
    assert_eq!(auth.fields.get("secret_kind"), Some("plaintext"));
    assert_eq!(secret(&auth), b"Winter2024! \"x\" ]\\");
    assert_eq!(auth.fields.get("outcome"), Some("failure"));

    let body = "From: Bob <bob@example.org>\nTo: root\nSubject: quarterly report\n\nSee https://files.example.net/r.zip\n";
    let out = run(Command::new("swaks").args([
        "--server",
        &server,
        "--from",
        "bob@example.org",
        "--to",
        "root",
        "--data",
        body,
        "--timeout",
        "20",
    ]));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("<-  250 2.1.0 Ok"), "{log}");
    assert!(log.contains("<-  250 2.1.5 Ok"), "{log}");
    assert!(
        log.contains("<-  354 End data with <CR><LF>.<CR><LF>"),
        "{log}"
    );
    assert!(log.contains("<-  250 2.0.0 Ok: queued as "), "{log}");
    assert!(log.contains("<-  221 2.0.0 Bye"), "{log}");
    let from = svc.next("mail_from");
    assert_eq!(from.fields.get("value"), Some("bob@example.org"));
    assert_eq!(from.fields.get("domain"), Some("example.org"));
    let stored = svc.next("message_stored");
    assert_eq!(stored.fields.get("subject"), Some("quarterly report"));
    assert_eq!(stored.fields.get("rcpt_to"), Some("[\"root\"]"));
    assert_eq!(
        stored.fields.get("urls_json"),
        Some("[\"https://files.example.net/r.zip\"]")
    );
    let name = stored.fields.get("stored_as").expect("stored_as");
    let kept = std::fs::read(quarantine.path().join(name)).expect("message in quarantine");
    let sha = hex::encode(Sha256::digest(&kept));
    assert_eq!(stored.fields.get("sha256"), Some(sha.as_str()));
    assert!(name.contains(&format!("_{}_", &sha[..12])), "{name}");
    assert!(
        String::from_utf8_lossy(&kept).contains("Subject: quarterly report\r\n"),
        "{kept:?}"
    );
    let accepted = svc.next("message_accepted");
    assert_eq!(
        accepted.fields.get("body_bytes"),
        Some(kept.len().to_string().as_str())
    );
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys, base64
port, nasty, message = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
print("EHLO", s.ehlo()[0], sorted(s.esmtp_features))
try:
    s.login("carol", "s3cret pass")
except smtplib.SMTPAuthenticationError as e:
    print("LOGIN", e.smtp_code, e.smtp_error.decode())
blob = base64.b64encode(b"\0admin\0" + nasty).decode()
print("PLAIN", s.docmd("AUTH", "PLAIN " + blob))
s.mail("<eve@example.org>")
print("RELAY", s.rcpt("<victim@example.com>"))
print("LOCAL", s.rcpt("<postmaster@localhost>"))
print("UNKNOWN", s.rcpt("<nosuchuser@localhost>"))
print("DATA", s.data(message))
print("VRFY", s.verify("root"))
print("HELP", s.docmd("HELP"))
s.quit()
t = smtplib.SMTP("127.0.0.1", port, timeout=20)
t.ehlo()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
print("STARTTLS", t.starttls(context=ctx)[0])
t.ehlo()
print("AFTER", "starttls" in t.esmtp_features, "auth" in t.esmtp_features)
t.quit()
"#;

#[test]
fn smtplib_credentials_relay_and_a_dot_stuffed_message() {
    if !tool("python3") {
        return;
    }
    let quarantine = tempfile::tempdir().expect("tempdir");
    let dir = quarantine.path().to_string_lossy().into_owned();
    let mut svc = Service::start(
        "smtp",
        &seed(2),
        "mail-02",
        "ubuntu22",
        &[("SMTP_QUARANTINE_DIR", &dir)],
    );
    let message = b"From: eve@example.org\r\nTo: postmaster@localhost\r\nSubject: hi\r\n\r\n.leading dot\r\n..two dots\r\nbody \xc3\xb6\r\n".to_vec();
    let out = run(Command::new("python3").args([
        "-c",
        SMTPLIB,
        &svc.port.to_string(),
        &hex::encode(NASTY),
        &hex::encode(&message),
    ]));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("EHLO 250 ['8bitmime', 'auth', 'chunking', 'dsn', 'enhancedstatuscodes', 'etrn', 'pipelining', 'size', 'smtputf8', 'starttls', 'vrfy']"), "{log}");
    // smtplib tries CRAM-MD5, PLAIN and LOGIN in turn; Ubuntu 22.04's Postfix 3.6.4 prints
    // the last challenge it sent (the bug fixed in 3.6.20), LOGIN's `Password:`.
    assert!(
        log.contains("LOGIN 535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6"),
        "{log}"
    );
    assert!(
        log.contains("PLAIN (535, b'5.7.8 Error: authentication failed: UGFzc3dvcmQ6')"),
        "{log}"
    );
    assert!(
        log.contains("5.7.1 <victim@example.com>: Relay access denied')"),
        "{log}"
    );
    assert!(
        log.contains("RELAY (554,") || log.contains("RELAY (454,"),
        "{log}"
    );
    assert!(log.contains("LOCAL (250, b'2.1.5 Ok')"), "{log}");
    assert!(log.contains("UNKNOWN (550, b'5.1.1 <nosuchuser@localhost>: Recipient address rejected: User unknown in local recipient table')"), "{log}");
    assert!(log.contains("DATA (250, b'2.0.0 Ok: queued as "), "{log}");
    assert!(log.contains("VRFY (252, b'2.0.0 root')"), "{log}");
    assert!(
        log.contains("HELP (502, b'5.5.2 Error: command not recognized')"),
        "{log}"
    );
    assert!(log.contains("STARTTLS 220"), "{log}");
    assert!(log.contains("AFTER False True"), "{log}");

    let cram = svc.next("auth_attempt");
    assert_eq!(cram.fields.get("mechanism"), Some("CRAM-MD5"));
    assert_eq!(cram.fields.get("secret_kind"), Some("cram_md5"));
    assert_eq!(cram.fields.get("principal"), Some("carol"));
    let challenge = cram.fields.get("challenge").expect("challenge").to_owned();
    assert!(
        challenge.starts_with('<') && challenge.ends_with('>'),
        "{challenge}"
    );
    let hashcat = String::from_utf8(secret(&cram)).expect("ascii");
    let parts: Vec<&str> = hashcat.split('$').collect();
    assert_eq!(parts[..3], ["", "cram_md5", &b64(challenge.as_bytes())]);
    let response = base64::engine::general_purpose::STANDARD
        .decode(parts[3])
        .expect("b64");
    let expected = run(Command::new("python3").args([
        "-c",
        "import hmac,sys;print('carol '+hmac.new(b's3cret pass',sys.argv[1].encode(),'md5').hexdigest(),end='')",
        &challenge,
    ]));
    assert_eq!(response, expected.stdout, "the digest of the real password");

    for mechanism in ["PLAIN", "LOGIN"] {
        let attempt = svc.next("auth_attempt");
        assert_eq!(attempt.fields.get("mechanism"), Some(mechanism));
        assert_eq!(attempt.fields.get("principal"), Some("carol"));
        assert_eq!(secret(&attempt), b"s3cret pass");
    }
    let plain = svc.next("auth_attempt");
    assert_eq!(plain.fields.get("mechanism"), Some("PLAIN"));
    assert_eq!(plain.fields.get("principal"), Some("admin"));
    assert_eq!(secret(&plain), NASTY, "byte-exact");
    assert_eq!(
        plain.fields.get("secret_printable"),
        Some("p a\"s]s\\w'???rd")
    );
    let denied = svc.next("rcpt_denied");
    assert_eq!(denied.fields.get("value"), Some("victim@example.com"));
    let stored = svc.next("message_stored");
    let name = stored.fields.get("stored_as").expect("stored_as");
    let kept = std::fs::read(quarantine.path().join(name)).expect("in quarantine");
    assert_eq!(kept, message, "dot-unstuffed, byte for byte");
    let sha = hex::encode(Sha256::digest(&message));
    assert_eq!(stored.fields.get("sha256"), Some(sha.as_str()));
    assert_eq!(
        stored.fields.get("rcpt_to"),
        Some("[\"postmaster@localhost\"]")
    );
    assert!(svc.next("starttls").attacker_ip.is_some());
}

#[test]
fn open_relay_persona_takes_remote_mail_and_keeps_it() {
    let quarantine = tempfile::tempdir().expect("tempdir");
    let dir = quarantine.path().to_string_lossy().into_owned();
    let mut svc = Service::start(
        "smtp_relay",
        &seed(3),
        "mail-03",
        "rocky9",
        &[("SMTP_OPEN_RELAY", "1"), ("SMTP_QUARANTINE_DIR", &dir)],
    );
    let reply = svc.raw(b"EHLO spam.example\r\nMAIL FROM:<a@spam.example>\r\nRCPT TO:<v@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    assert!(
        reply.starts_with("220 ") && reply.contains(" ESMTP Postfix\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\n250 2.1.5 Ok\r\n354 End data"),
        "{reply}"
    );
    assert!(reply.contains("250 2.0.0 Ok: queued as "), "{reply}");
    let stored = svc.next("message_stored");
    assert_eq!(stored.fields.get("rcpt_to"), Some("[\"v@example.com\"]"));
    let name = stored.fields.get("stored_as").expect("stored_as");
    assert_eq!(
        std::fs::read(quarantine.path().join(name)).expect("kept"),
        b"Subject: x\r\n\r\nhello\r\n"
    );
}

#[test]
fn pipelined_and_broken_input_get_postfix_replies() {
    let mut svc = Service::start("smtp", &seed(4), "mail-04", "debian", &[]);
    let reply = svc.raw(b"EHLO a\r\nMAIL FROM:<a@b.c> SIZE=999999999999\r\nMAIL FROM:a@b.c\r\nMAIL FROM:<x@y>\r\nRCPT TO:<root>\r\nBDAT 5 LAST\r\nhelloXYZZY\r\nNOOP\r\nQUIT\r\n");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let lines: Vec<&str> = reply.split("\r\n").collect();
    let after_ehlo: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("250 CHUNKING"))
        .skip(1)
        .copied()
        .collect();
    assert_eq!(
        after_ehlo[..4],
        [
            "552 5.3.4 Message size exceeds fixed limit",
            "250 2.1.0 Ok",
            "503 5.5.1 Error: nested MAIL command",
            "250 2.1.5 Ok",
        ],
        "{reply}"
    );
    assert!(
        reply.contains("\r\n250 2.0.0 Ok: 5 bytes queued as "),
        "{reply}"
    );
    assert!(
        reply.ends_with(
            "500 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
        ),
        "{reply}"
    );
    assert!(svc.next("message_stored").fields.get("sha256").is_some());

    let http = String::from_utf8_lossy(&svc.raw(b"GET / HTTP/1.0\r\n\r\n")).into_owned();
    assert!(
        http.ends_with("\r\n221 2.7.0 Error: I can break rules, too. Goodbye.\r\n"),
        "{http}"
    );
    let mut errors = Vec::new();
    for _ in 0..21 {
        errors.extend_from_slice(b"XYZZY\r\n");
    }
    let cut = String::from_utf8_lossy(&svc.raw(&errors)).into_owned();
    assert!(cut.ends_with(" Error: too many errors\r\n"), "{cut}");
    assert!(cut.contains("\r\n421 4.7.0 "), "{cut}");
}

#[test]
fn garbage_huge_lines_and_slow_clients_leave_it_serving() {
    let mut svc = Service::start("smtp", &seed(5), "mail-05", "centos7", &[]);
    let mut fuzz = Fuzz::new(5);
    for round in 0..40 {
        let len = usize::try_from(fuzz.next() % 4000).unwrap_or(0);
        let data = match round % 4 {
            0 => fuzz.bytes(len),
            1 => [&b"EHLO x\r\nAUTH PLAIN "[..], &fuzz.bytes(len)].concat(),
            2 => [
                &b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<root>\r\nDATA\r\n"[..],
                &fuzz.bytes(len),
            ]
            .concat(),
            _ => [
                &b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<root>\r\nBDAT 99999 LAST\r\n"[..],
                &fuzz.bytes(len),
            ]
            .concat(),
        };
        svc.raw(&data);
    }
    let mut huge = vec![b'A'; 200_000];
    huge.extend_from_slice(b"\r\nNOOP\r\n");
    let reply = String::from_utf8_lossy(&svc.raw(&huge)).into_owned();
    assert!(
        reply.ends_with("502 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n"),
        "CentOS 7's Postfix 2.10 cuts the long line and goes on: {reply}"
    );

    let mut slow = TcpStream::connect(("127.0.0.1", svc.port)).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for b in b"HELO slow\r\n" {
        slow.write_all(&[*b]).expect("write");
        #[allow(clippy::disallowed_methods)] // a blocking client, one byte at a time
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\r\n250 ") {
        let n = slow.read(&mut buf).expect("reply");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(svc.alive(), "the server survived");
    let again = String::from_utf8_lossy(&svc.raw(b"EHLO x\r\nQUIT\r\n")).into_owned();
    assert!(
        again.contains("\r\n250 DSN\r\n"),
        "no SMTPUTF8/CHUNKING on 2.10: {again}"
    );
    assert!(!again.contains("STARTTLS"), "{again}");
    assert!(again.ends_with("221 2.0.0 Bye\r\n"), "{again}");
}
