//! postgres against the real `psql`: cleartext, MD5 and SCRAM-SHA-256 logins end in
//! PostgreSQL's `password authentication failed` error, each secret is logged byte-exact
//! (the MD5 hash and the SCRAM proof checked by recomputing them from the password), and
//! garbage, truncated and oversized packets leave the server serving.
mod services_common;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};
use services_common::{Fuzz, Service, run, secret, seed, tool};

/// A password with spaces, quotes, `]`, `\`, UTF-8 and a byte that is not UTF-8.
const NASTY: &[u8] = b"p a\"s]s\\w'\xc3\xb6\xffrd";
/// The same without the invalid byte (SCRAM's SASLprep needs UTF-8 to be reproducible).
const NASTY_UTF8: &[u8] = "p a\"s]s\\w'örd".as_bytes();

fn psql(svc: &Service, user: &str, password: &[u8]) -> Command {
    let mut c = Command::new("psql");
    c.args(["-h", "127.0.0.1", "-p", &svc.port.to_string(), "-U", user])
        .args(["-d", "sales", "-c", "select 1", "-w"])
        .env("PGPASSWORD", OsStr::from_bytes(password))
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE");
    c
}

fn failed_for(out: &std::process::Output, user: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "FATAL:  password authentication failed for user \"{user}\""
        )),
        "{err}"
    );
}

fn md5_hex(data: &[u8]) -> String {
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("md5sum output");
    String::from_utf8_lossy(&out.stdout[..32]).into_owned()
}

#[test]
fn cleartext_password_is_logged_byte_exact() {
    if !tool("psql") {
        return;
    }
    let mut svc = Service::start(
        "postgres",
        &seed(1),
        "db-01",
        "debian",
        &[("POSTGRES_AUTH", "password")],
    );
    failed_for(&run(&mut psql(&svc, "admin", NASTY)), "admin");
    let login = svc.next("startup_message");
    assert_eq!(login.fields.get("username"), Some("admin"));
    assert_eq!(login.fields.get("database"), Some("sales"));
    assert_eq!(login.fields.get("application_name"), Some("psql"));
    let auth = svc.next("auth");
    assert_eq!(auth.fields.get("secret_kind"), Some("plaintext"));
    assert_eq!(auth.fields.get("principal"), Some("admin"));
    assert_eq!(auth.fields.get("database"), Some("sales"));
    assert_eq!(secret(&auth), NASTY);
    assert_eq!(
        auth.fields.get("secret_printable"),
        Some("p a\"s]s\\w'???rd")
    );
    assert_eq!(auth.attacker_ip.as_deref(), Some("127.0.0.1"));
}

#[test]
fn md5_hash_is_logged_with_its_salt() {
    if !tool("psql") || !tool("md5sum") {
        return;
    }
    let mut svc = Service::start(
        "postgres",
        &seed(2),
        "db-02",
        "debian",
        &[("POSTGRES_AUTH", "md5")],
    );
    let mut salts = Vec::new();
    for _ in 0..2 {
        failed_for(&run(&mut psql(&svc, "postgres", NASTY)), "postgres");
        let auth = svc.next("auth");
        assert_eq!(auth.fields.get("secret_kind"), Some("postgres_md5"));
        let salt = hex::decode(auth.fields.get("salt").expect("salt")).expect("hex");
        let inner = md5_hex(&[NASTY, b"postgres"].concat());
        let expected = format!("md5{}", md5_hex(&[inner.as_bytes(), &salt].concat()));
        assert_eq!(secret(&auth), expected.as_bytes());
        assert_eq!(auth.fields.get("pw_hash"), Some(expected.as_str()));
        salts.push(salt);
    }
    assert_ne!(salts[0], salts[1], "a fresh salt per connection");
}

/// The SCRAM-SHA-256 ClientProof for `password` over `auth_message`.
fn scram_proof(password: &[u8], salt: &[u8], iterations: u32, auth_message: &[u8]) -> Vec<u8> {
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).expect("iterations"),
        salt,
        password,
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored = digest::digest(&digest::SHA256, client_key.as_ref());
    let signature = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, stored.as_ref()),
        auth_message,
    );
    client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(a, b)| a ^ b)
        .collect()
}

#[test]
fn scram_proof_is_logged_and_verifies_against_the_password() {
    if !tool("psql") {
        return;
    }
    let mut svc = Service::start("postgres", &seed(3), "db-03", "ubuntu22", &[]);
    let mut salts = Vec::new();
    for _ in 0..2 {
        failed_for(&run(&mut psql(&svc, "app", NASTY_UTF8)), "app");
        let auth = svc.next("auth");
        assert_eq!(auth.fields.get("secret_kind"), Some("scram_sha_256"));
        let salt = base64::engine::general_purpose::STANDARD
            .decode(auth.fields.get("salt").expect("salt"))
            .expect("b64");
        let iterations: u32 = auth
            .fields
            .get("iterations")
            .and_then(|i| i.parse().ok())
            .expect("iterations");
        let message = auth.fields.get("auth_message").expect("auth message");
        assert!(message.starts_with("n=,r="), "{message}");
        assert_eq!(
            secret(&auth),
            scram_proof(NASTY_UTF8, &salt, iterations, message.as_bytes())
        );
        salts.push(salt);
    }
    assert_eq!(
        salts[0], salts[1],
        "one user, one (mock) salt, as PostgreSQL"
    );
}

#[test]
fn garbage_truncated_and_oversized_packets_do_not_stop_the_server() {
    if !tool("psql") {
        return;
    }
    let mut svc = Service::start("postgres", &seed(4), "db-04", "debian", &[]);
    let mut fuzz = Fuzz::new(11);
    let startup = b"\x00\x00\x00\x1e\x00\x03\x00\x00user\x00bob\x00database\x00db\x00\x00";
    let mut replies = Vec::new();
    for round in 0..60 {
        let len = usize::try_from(fuzz.next() % 2048).unwrap_or(0);
        let data = match round % 6 {
            0 => fuzz.bytes(len),
            1 => startup[..len % startup.len()].to_vec(),
            2 => [&b"\x7f\xff\xff\xff"[..], &fuzz.bytes(len)].concat(),
            3 => [&startup[..], b"p\x7f\xff\xff\xff", &fuzz.bytes(len)].concat(),
            4 => [&startup[..], b"p\x00\x00\x00\x09abc", &fuzz.bytes(len % 8)].concat(),
            _ => [&b"\x00\x00\x00\x08\x04\xd2\x16\x2f"[..], &startup[..]].concat(),
        };
        replies.push(svc.raw(&data));
    }
    assert!(
        replies
            .iter()
            .any(|r| r.windows(8).any(|w| w == b"C08P01\0M")),
        "protocol violations answered as PostgreSQL does"
    );
    let v2 = svc.raw(b"\x00\x00\x00\x0d\x00\x02\x00\x00user\x00\x00");
    assert_eq!(
        v2,
        b"EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\0"
    );
    let cancel = svc.raw(b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01\x00\x00\x00\x02");
    assert!(cancel.is_empty(), "a cancel request is closed silently");
    assert!(svc.alive(), "the server survived");
    failed_for(&run(&mut psql(&svc, "admin", b"x")), "admin");
    assert!(svc.alive());
}
