//! mysql against the real `mariadb` client: the MariaDB and MySQL 8.0 logins end in the
//! real `Access denied` error, each auth response is logged byte-exact with the scramble
//! it answers (checked by recomputing it from the password), and garbage, truncated
//! packets and oversized length headers leave the server serving.
mod services_common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY as SHA1, SHA256, digest};
use services_common::{Fuzz, Service, run, secret, seed, tool};

/// A password with spaces, quotes, `]`, `\`, UTF-8 and a byte that is not UTF-8.
const NASTY: &[u8] = b"p a\"s]s\\w'\xc3\xb6\xffrd";

fn client(svc: &Service, user: &str, password: &[u8]) -> Command {
    let mut c = Command::new("mariadb");
    c.args(["--protocol=TCP", "-h", "127.0.0.1", "--connect-timeout=10"])
        .arg(format!("-P{}", svc.port))
        .arg(format!("-u{user}"))
        .arg(OsStr::from_bytes(&[b"--password=", password].concat()))
        .args(["-e", "select 1"]);
    c
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))).
fn native(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let stage1 = digest(&SHA1, password);
    let stage2 = digest(&SHA1, stage1.as_ref());
    let mix = digest(&SHA1, &[salt, stage2.as_ref()].concat());
    xor(stage1.as_ref(), mix.as_ref())
}

/// `caching_sha2_password`: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + salt).
fn caching_sha2(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let stage1 = digest(&SHA256, password);
    let stage2 = digest(&SHA256, stage1.as_ref());
    let mix = digest(&SHA256, &[stage2.as_ref(), salt].concat());
    xor(stage1.as_ref(), mix.as_ref())
}

/// The payload of the packet after the greeting in what a server sent.
fn reply(sent: &[u8]) -> &[u8] {
    let greeting = 4 + usize::from(sent[0]) + (usize::from(sent[1]) << 8);
    let len = usize::from(sent[greeting]) + (usize::from(sent[greeting + 1]) << 8);
    &sent[greeting + 4..greeting + 4 + len]
}

/// The connection id of a greeting packet.
fn thread_id(greeting: &[u8]) -> u32 {
    let end = 5 + greeting[5..]
        .iter()
        .position(|&b| b == 0)
        .expect("version NUL");
    let id = &greeting[end + 1..end + 5];
    u32::from_le_bytes([id[0], id[1], id[2], id[3]])
}

fn salt(event: &decnet::syslog::Event) -> Vec<u8> {
    hex::decode(event.fields.get("salt").expect("salt")).expect("hex salt")
}

#[test]
fn mariadb_native_password_is_denied_and_logged_byte_exact() {
    if !tool("mariadb") {
        return;
    }
    let mut svc = Service::start("mysql", &seed(1), "db-01", "debian", &[]);
    let greeting = svc.raw(b"");
    let version = &greeting[5..greeting[5..].iter().position(|&b| b == 0).expect("NUL") + 5];
    let version = String::from_utf8_lossy(version).into_owned();
    assert!(
        version.starts_with("5.5.5-10.11.") && version.ends_with("-MariaDB-0+deb12u1"),
        "{version}"
    );
    let first = svc.next("connect");
    let out = run(&mut client(&svc, "admin", NASTY));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "ERROR 1045 (28000): Access denied for user 'admin'@'127.0.0.1' (using password: YES)"
        ),
        "{err}"
    );
    let connect = svc.next("connect");
    let ids: Vec<u32> = [&first, &connect]
        .iter()
        .map(|e| {
            e.fields
                .get("connection_id")
                .and_then(|i| i.parse().ok())
                .expect("id")
        })
        .collect();
    assert!(ids[1] > ids[0], "connection ids grow: {ids:?}");
    let auth = svc.next("auth");
    assert_eq!(
        auth.fields.get("secret_kind"),
        Some("mysql_native_password")
    );
    assert_eq!(auth.fields.get("principal"), Some("admin"));
    assert_eq!(auth.fields.get("username"), Some("admin"));
    assert_eq!(
        auth.fields.get("connection_id"),
        connect.fields.get("connection_id")
    );
    assert_eq!(auth.fields.get("client_name"), Some("libmariadb"));
    let s = salt(&auth);
    assert_eq!(s.len(), 20);
    assert!(
        s.iter().all(|b| (33..=126).contains(b)),
        "MariaDB's alphabet"
    );
    assert_eq!(secret(&auth), native(NASTY, &s), "the response, byte-exact");
    assert_eq!(
        auth.fields.get("secret_printable"),
        Some(hex::encode(native(NASTY, &s)).as_str())
    );
    assert_eq!(auth.attacker_ip.as_deref(), Some("127.0.0.1"));

    let out = run(&mut client(&svc, "root", b""));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Access denied for user 'root'@'127.0.0.1' (using password: NO)"),
        "{err}"
    );
    assert_eq!(
        secret(&svc.next("auth")),
        b"",
        "no password, an empty response"
    );
    // A client that starts with caching_sha2_password is switched to the native plugin.
    let out = run(client(&svc, "root", NASTY).arg("--default-auth=caching_sha2_password"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Access denied for user 'root'@'127.0.0.1' (using password: YES)"),
        "{err}"
    );
    let switched = svc.next("auth");
    assert_eq!(
        switched.fields.get("secret_kind"),
        Some("mysql_native_password")
    );
    assert_eq!(secret(&switched), native(NASTY, &salt(&switched)));

    let other = Service::start("mysql", &seed(2), "db-02", "debian", &[]);
    assert_ne!(
        thread_id(&greeting),
        thread_id(&other.raw(b"")),
        "connection ids start elsewhere on another decky"
    );
}

#[test]
fn mysql8_switches_to_caching_sha2_and_fails_its_fast_path() {
    if !tool("mariadb") {
        return;
    }
    let mut svc = Service::start("mysql", &seed(3), "db-03", "ubuntu22", &[]);
    let greeting = svc.raw(b"");
    let text = String::from_utf8_lossy(&greeting).into_owned();
    assert!(text.contains("-0ubuntu0.22.04.1\0"), "{text:?}");
    assert!(text.ends_with("caching_sha2_password\0"), "{text:?}");
    let password = b"Winter2024! \\]";
    let out = run(&mut client(&svc, "backup", password));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "ERROR 1045 (28000): Access denied for user 'backup'@'127.0.0.1' (using password: YES)"
        ),
        "{err}"
    );
    // The client takes the server's plugin: the SHA-256 scramble, then full
    // authentication with the RSA key fetched from the server.
    let fast = svc.next("auth");
    assert_eq!(
        fast.fields.get("secret_kind"),
        Some("caching_sha2_password")
    );
    let s = salt(&fast);
    assert!(
        s.iter().all(|&b| b != 0 && b != b'$' && b < 0x80),
        "MySQL's alphabet"
    );
    assert_eq!(secret(&fast), caching_sha2(password, &s));
    let full = svc.next("auth");
    assert_eq!(full.fields.get("secret_kind"), Some("plaintext"));
    assert_eq!(full.fields.get("plugin"), Some("caching_sha2_password"));
    assert_eq!(secret(&full), password);
    assert_eq!(full.fields.get("secret_printable"), Some("Winter2024! \\]"));

    // A client that starts with mysql_native_password is switched, with the same scramble.
    let out = run(client(&svc, "root", NASTY).arg("--default-auth=mysql_native_password"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Access denied for user 'root'@'127.0.0.1' (using password: YES)"),
        "{err}"
    );
    let switched = svc.next("auth");
    assert_eq!(
        switched.fields.get("secret_kind"),
        Some("caching_sha2_password")
    );
    assert_eq!(secret(&switched), caching_sha2(NASTY, &salt(&switched)));
    let full = svc.next("auth");
    assert_eq!(full.fields.get("secret_kind"), Some("plaintext"));
    assert_eq!(secret(&full), NASTY);
}

#[test]
fn garbage_truncated_and_oversized_packets_do_not_stop_the_server() {
    if !tool("mariadb") {
        return;
    }
    let mut svc = Service::start("mysql", &seed(4), "db-04", "debian", &[]);
    let mut fuzz = Fuzz::new(7);
    let login = hex::decode(
        "84a2bf000000100021000000000000000000000000000000000000001d000000726f6f7400\
         14c969e27f0f0af7d94eb2234f0dd9b7cb9153cbcd6d7973716c5f6e61746976655f7061737377\
         6f726400",
    )
    .expect("hex");
    let packet = |payload: &[u8]| {
        let len = u32::try_from(payload.len()).expect("small").to_le_bytes();
        [&len[..3], &[1], payload].concat()
    };
    let mut bad_handshakes = 0;
    for round in 0..60 {
        let len = usize::try_from(fuzz.next() % 2048).unwrap_or(0);
        let data = match round % 5 {
            0 => fuzz.bytes(len),
            1 => packet(&login[..len % login.len()]),
            2 => [&[0xff, 0xff, 0xff, 0x01][..], &fuzz.bytes(len)].concat(),
            3 => packet(&fuzz.bytes(len)),
            _ => {
                // An SSL request to a server that offers no TLS.
                let mut ssl = login[..32].to_vec();
                ssl[1] |= 0x08;
                packet(&ssl)
            }
        };
        let reply = svc.raw(&data);
        if reply.windows(13).any(|w| w == b"Bad handshake") {
            bad_handshakes += 1;
        }
    }
    assert!(
        bad_handshakes >= 12,
        "SSL requests get Bad handshake: {bad_handshakes}"
    );
    // What a MariaDB 10.11 server answers to an HTTP request and to a pre-4.1 login.
    let http = svc.raw(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(reply(&http), b"\xff\x84\x04#08S01Got packets out of order");
    let old = svc.raw(&packet(b"\x05\x00\x00\x00\x00root\x00"));
    assert_eq!(
        reply(&old),
        &b"\xff\x15\x04Access denied for user 'root'@'127.0.0.1' (using password: NO)"[..]
    );
    assert!(svc.alive(), "the server survived");
    let out = run(&mut client(&svc, "admin", b"x"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR 1045 (28000)"),
        "still serving"
    );
    let _ = svc.next("auth");
    assert!(svc.alive());
}
