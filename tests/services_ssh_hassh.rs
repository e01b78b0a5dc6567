//! ssh's fingerprint against the real releases: the KEXINIT each persona sends has the
//! HASSH-server of the OpenSSH release it claims (lists taken from `myproposal.h` of the
//! release's tag, plus the distro's markers), Debian 12's equals the real sshd's on
//! loopback, OpenSSH's `ssh` logs in over every UMAC MAC and both sntrup761 names, and a
//! password or user name that is not UTF-8 is logged byte-exact.
mod services_common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use services_common::{Service, run, secret, seed, tool};

/// The root password the tests configure.
const ROOT_PW: &str = "hassh-Pw 1";

/// KEX_SERVER_MAC of every release here (7.4 to 10.0).
const MACS: &str = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,\
    hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,\
    umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";
/// KEX_SERVER_ENCRYPT from 7.4 (with OpenSSL's GCM) to 9.9.
const CIPHERS: &str = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,\
    aes128-gcm@openssh.com,aes256-gcm@openssh.com";
/// KEX_SERVER_ENCRYPT of 10.0.
const CIPHERS_10: &str = "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,\
    aes256-gcm@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr";
/// The ECDH and finite-field tail that 8.2 to 9.9 share.
const ECDH: &str = "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521";
const FFDH: &str = "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,\
    diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";
const X25519: &str = "curve25519-sha256,curve25519-sha256@libssh.org";
const STRICT: &str = "kex-strict-s-v00@openssh.com";
const EXT_STRICT: &str = "ext-info-s,kex-strict-s-v00@openssh.com";
const SNTRUP: &str = "sntrup761x25519-sha512@openssh.com";

/// The server's KEX and cipher lists of the release whose identification is `ident`:
/// KEX_SERVER_KEX of its openssh-portable tag, then what the distro's sshd adds (the
/// strict-kex backport, Debian's standard sntrup761 name; upstream's markers from 9.6).
fn expected(ident: &str) -> (String, &'static str) {
    let v = ident
        .strip_prefix("SSH-2.0-OpenSSH_")
        .expect("an OpenSSH ident");
    let kex = if v.starts_with("7.4") {
        format!("{X25519},{ECDH},{FFDH},diffie-hellman-group14-sha1")
    } else if v.starts_with("8.2p1 Ubuntu") || v == "8.7" {
        format!("{X25519},{ECDH},{FFDH},{STRICT}")
    } else if v.starts_with("8.9p1 Ubuntu") {
        format!("{X25519},{ECDH},{SNTRUP},{FFDH},{STRICT}")
    } else if v.starts_with("9.2p1 Debian") {
        format!("sntrup761x25519-sha512,{SNTRUP},{X25519},{ECDH},{FFDH},{STRICT}")
    } else if v == "9.3" {
        format!("{SNTRUP},{X25519},{ECDH},{FFDH},{STRICT}")
    } else if v == "9.6" {
        format!("{SNTRUP},{X25519},{ECDH},{FFDH},{EXT_STRICT}")
    } else if v.starts_with("9.9") {
        format!(
            "sntrup761x25519-sha512,{SNTRUP},mlkem768x25519-sha256,{X25519},{ECDH},{FFDH},\
             {EXT_STRICT}"
        )
    } else if v == "10.0" {
        let kex = format!(
            "mlkem768x25519-sha256,sntrup761x25519-sha512,{SNTRUP},{X25519},{ECDH},{EXT_STRICT}"
        );
        return (kex, CIPHERS_10);
    } else {
        panic!("no expected lists for {ident}");
    };
    (kex, CIPHERS)
}

/// HASSH-server: md5 of "kex;ciphers;macs;compression" (server to client lists).
fn hassh(kex: &str, ciphers: &str, macs: &str, compression: &str) -> String {
    format!(
        "{:x}",
        md5::compute(format!("{kex};{ciphers};{macs};{compression}"))
    )
}

/// What a server at `port` sends first: its identification line and the name-lists of
/// its KEXINIT (kex, host key, ciphers c→s, s→c, MACs c→s, s→c, compression c→s, s→c).
fn kexinit(port: u16) -> (String, Vec<String>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n")
        .expect("send ident");
    let mut r = BufReader::new(s);
    let ident = loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).expect("read ident") > 0, "closed");
        if line.starts_with("SSH-") {
            break line.trim_end().to_owned();
        }
    };
    let mut len = [0u8; 4];
    r.read_exact(&mut len).expect("packet length");
    let len = u32::from_be_bytes(len) as usize;
    assert!(len < 65_536, "KEXINIT of {len} bytes");
    let mut packet = vec![0u8; len];
    r.read_exact(&mut packet).expect("packet");
    // padding length, SSH_MSG_KEXINIT (20), 16 bytes of cookie, then the lists.
    assert_eq!(packet[1], 20, "first packet is KEXINIT");
    let mut at = 18;
    let lists = (0..8)
        .map(|_| {
            let n = u32::from_be_bytes(packet[at..at + 4].try_into().expect("4 bytes")) as usize;
            let list = String::from_utf8(packet[at + 4..at + 4 + n].to_vec()).expect("ASCII");
            at += 4 + n;
            list
        })
        .collect();
    (ident, lists)
}

fn hassh_of(lists: &[String]) -> String {
    hassh(&lists[0], &lists[3], &lists[5], &lists[7])
}

fn root_service(byte: u8, distro: &str) -> Service {
    Service::start(
        "ssh",
        &seed(byte),
        "hassh-01",
        distro,
        &[
            ("SSH_ROOT_PASSWORD", ROOT_PW),
            ("SSH_AUTH_DELAY_MS", "100"),
            ("SSH_RSA_HOST_KEY", "0"),
        ],
    )
}

/// Checks the KEXINIT of `distro`'s decky with seed `byte`; returns its ident.
fn check_persona(distro: &str, byte: u8) -> String {
    let svc = root_service(byte, distro);
    let (ident, lists) = kexinit(svc.port);
    let (kex, ciphers) = expected(&ident);
    assert_eq!(lists[0], kex, "{distro}: {ident}");
    assert_eq!(lists[3], ciphers, "{distro}: {ident}");
    assert_eq!(lists[5], MACS, "{distro}: {ident}");
    assert_eq!(lists[7], "none,zlib@openssh.com", "{distro}: {ident}");
    assert_eq!(
        hassh_of(&lists),
        hassh(&kex, ciphers, MACS, "none,zlib@openssh.com"),
        "{distro}: {ident}"
    );
    ident
}

#[test]
fn every_persona_sends_the_hassh_of_its_release() {
    let distros = [
        "debian", "ubuntu22", "ubuntu20", "rocky9", "centos7", "alpine", "fedora", "kali", "arch",
    ];
    let mut seen: Vec<String> = (0u8..)
        .zip(distros)
        .map(|(i, distro)| check_persona(distro, 40 + i))
        .collect();
    // Arch ships two builds (9.9 and 10.0): seeds until the seed picks the other one.
    let first = seen.last().cloned();
    let other = (60u8..92)
        .map(|byte| check_persona("arch", byte))
        .find(|ident| Some(ident) != first.as_ref())
        .expect("a seed that picks arch's other build");
    seen.push(other);
    seen.sort();
    seen.dedup();
    eprintln!("releases checked: {seen:?}");
    assert_eq!(seen.len(), distros.len() + 1, "{seen:?}");
}

/// A real Debian 12 sshd on a loopback port, if openssh-server is installed.
struct RealSshd {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RealSshd {
    fn start() -> Option<RealSshd> {
        let sshd = "/usr/sbin/sshd";
        if !std::path::Path::new(sshd).exists() {
            // Same policy as a missing client: loud skip here, a failure in CI.
            tool("sshd");
            eprintln!("SKIP: debian_12_hassh_equals_the_real_sshds: no {sshd}");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("host_ed25519");
        let out = run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        assert!(out.status.success(), "ssh-keygen");
        // sshd refuses to start without its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(sshd)
            .args(["-D", "-e", "-f", "/dev/null", "-h"])
            .arg(&key)
            .args(["-p", &port.to_string(), "-o", "ListenAddress=127.0.0.1"])
            .args(["-o", "PidFile=none"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sshd");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("Server listening on"));
        assert!(listening, "sshd did not start");
        std::thread::spawn(move || lines.for_each(drop));
        Some(RealSshd {
            child,
            port,
            _dir: dir,
        })
    }
}

impl Drop for RealSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn debian_12_hassh_equals_the_real_sshds() {
    let Some(real) = RealSshd::start() else {
        return;
    };
    let (real_ident, real_lists) = kexinit(real.port);
    let svc = root_service(3, "debian");
    let (ident, lists) = kexinit(svc.port);
    eprintln!("real {real_ident} hassh {}", hassh_of(&real_lists));
    assert_eq!(lists[0], real_lists[0], "kex");
    assert_eq!(lists[2..8], real_lists[2..8], "ciphers, MACs, compression");
    assert_eq!(
        hassh_of(&lists),
        hassh_of(&real_lists),
        "{ident} vs {real_ident}"
    );
}

/// `ssh -v` with `password` from sshpass and `opts`, running `echo hassh-ok`.
fn ssh_with(port: u16, password: &OsStr, opts: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new("sshpass");
    cmd.env("SSHPASS", password).args(["-e", "ssh", "-v"]);
    cmd.args(["-F", "/dev/null", "-p", &port.to_string()])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "ConnectTimeout=20"])
        .args(["-o", "PubkeyAuthentication=no"])
        .args(["-o", "NumberOfPasswordPrompts=1"])
        .args(opts)
        .args(["root@127.0.0.1", "echo", "hassh-ok"]);
    let out = run(&mut cmd);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn openssh_logs_in_over_every_umac_mac() {
    if !(tool("ssh") && tool("sshpass")) {
        return;
    }
    let svc = root_service(4, "debian");
    for mac in [
        "umac-64-etm@openssh.com",
        "umac-128-etm@openssh.com",
        "umac-64@openssh.com",
        "umac-128@openssh.com",
    ] {
        // A cipher without its own tag, so the MAC is the one negotiated.
        let opt = format!("MACs={mac}");
        let (ok, stdout, stderr) = ssh_with(
            svc.port,
            OsStr::new(ROOT_PW),
            &["-o", "Ciphers=aes128-ctr", "-o", &opt],
        );
        assert!(ok, "{mac}: {stderr}");
        assert_eq!(stdout, "hassh-ok\n", "{mac}");
        assert!(
            stderr.contains(&format!("server->client cipher: aes128-ctr MAC: {mac}")),
            "{mac} negotiated: {stderr}"
        );
    }
}

#[test]
fn openssh_logs_in_over_both_sntrup761_names() {
    if !(tool("ssh") && tool("sshpass")) {
        return;
    }
    let svc = root_service(5, "debian");
    for kex in [
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
    ] {
        let opt = format!("KexAlgorithms={kex}");
        let (ok, stdout, stderr) = ssh_with(svc.port, OsStr::new(ROOT_PW), &["-o", &opt]);
        assert!(ok, "{kex}: {stderr}");
        assert_eq!(stdout, "hassh-ok\n", "{kex}");
        let line = format!("debug1: kex: algorithm: {kex}");
        assert!(
            stderr.lines().any(|l| l.trim_end() == line),
            "{kex} negotiated: {stderr}"
        );
    }
}

#[test]
fn a_password_that_is_not_utf8_is_logged_byte_exact() {
    if !(tool("ssh") && tool("sshpass")) {
        return;
    }
    let mut svc = root_service(6, "debian");
    // Latin-1 "pässwörd", a lone continuation byte and 0xff: no valid UTF-8.
    let password: &[u8] = b"p\xe4ssw\xf6rd \x80\xff";
    let (ok, _, stderr) = ssh_with(svc.port, OsStr::from_bytes(password), &[]);
    assert!(!ok, "a wrong password is refused: {stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("method"), Some("password"));
    assert_eq!(auth.fields.get("outcome"), Some("failure"));
    assert_eq!(secret(&auth), password);
    assert_eq!(auth.fields.get("secret_printable"), Some("p?ssw?rd ??"));
    assert!(svc.alive(), "the service keeps serving");
}

#[test]
fn a_user_name_that_is_not_utf8_is_logged_byte_exact() {
    if !tool("ssh") {
        return;
    }
    let mut svc = root_service(7, "debian");
    // The password comes from an askpass program, so plain `ssh` is enough.
    let dir = tempfile::tempdir().expect("tempdir");
    let askpass = dir.path().join("askpass");
    std::fs::write(&askpass, "#!/bin/sh\necho 'wrong pw'\n").expect("askpass");
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    // Latin-1 "röot", a lone continuation byte and 0xff.
    let user: &[u8] = b"r\xf6ot\x80\xff";
    let mut cmd = Command::new("ssh");
    cmd.env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .args(["-F", "/dev/null", "-p", &svc.port.to_string()])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "ConnectTimeout=20"])
        .args(["-o", "PreferredAuthentications=password"])
        .args(["-o", "NumberOfPasswordPrompts=1"])
        .arg("-l")
        .arg(OsStr::from_bytes(user))
        .args(["127.0.0.1", "true"])
        .stdin(Stdio::null());
    let out = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a wrong password is refused: {stderr}"
    );
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("method"), Some("password"));
    assert_eq!(auth.fields.get("outcome"), Some("failure"));
    assert_eq!(secret(&auth), b"wrong pw");
    assert_eq!(
        auth.fields.get("principal"),
        Some("r\u{fffd}ot\u{fffd}\u{fffd}")
    );
    let exact = base64::engine::general_purpose::STANDARD
        .decode(auth.fields.get("principal_b64").expect("principal_b64"))
        .expect("base64");
    assert_eq!(exact, user);
    assert!(svc.alive(), "the service keeps serving");
}
