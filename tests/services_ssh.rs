//! ssh against OpenSSH's own clients (`ssh` via `sshpass`, `scp`, `sftp`, `ssh-keyscan`):
//! the claimed release's banner and KEXINIT lists, passwords logged byte-exact, the
//! configured account accepted, commands run by the emulated shell, uploads captured,
//! seed-derived host keys, OpenSSH's answers to odd identification lines, survival of
//! garbage after the banner, and sshd's `MaxStartups` drops.
mod services_common;

use std::process::{Command, Output};

use services_common::{Fuzz, Service, run, secret, seed, tool};
use sha2::{Digest, Sha256};

/// A password with spaces, quotes, `]`, `\` and non-ASCII (UTF-8) characters.
const NASTY: &str = "p a\"s]s\\w'ö€rd";
/// The root password the tests configure.
const ROOT_PW: &str = "T0p s\"ecret] \\ü";

fn tools() -> bool {
    tool("ssh") && tool("sshpass")
}

/// Options that keep the client from reading the test machine's own ssh setup.
fn client_opts(cmd: &mut Command, port: u16) {
    cmd.args(["-F", "/dev/null", "-p", &port.to_string()])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "LogLevel=ERROR"])
        .args(["-o", "ConnectTimeout=20"]);
}

/// `ssh user@127.0.0.1 command` with `password` given by sshpass.
fn ssh(port: u16, user: &str, password: &str, extra: &[&str], command: &[&str]) -> Output {
    let mut cmd = Command::new("sshpass");
    cmd.env("SSHPASS", password).args(["-e", "ssh"]);
    client_opts(&mut cmd, port);
    cmd.args(["-o", "PubkeyAuthentication=no"])
        .args(["-o", "NumberOfPasswordPrompts=1"])
        .args(extra)
        .arg(format!("{user}@127.0.0.1"))
        .args(command);
    run(&mut cmd)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn root_service(byte: u8, distro: &str, extra: &[(&str, &str)]) -> Service {
    // No RSA host key unless a test asks: a debug build takes long to make one.
    let mut env = vec![
        ("SSH_ROOT_PASSWORD", ROOT_PW),
        ("SSH_AUTH_DELAY_MS", "100"),
        ("SSH_RSA_HOST_KEY", "0"),
    ];
    env.extend_from_slice(extra);
    Service::start("ssh", &seed(byte), "deaddeck-01", distro, &env)
}

#[test]
fn a_wrong_password_is_refused_and_logged_byte_exact() {
    if !tools() {
        return;
    }
    let mut svc = root_service(1, "debian", &[]);
    let mut cmd = Command::new("sshpass");
    cmd.env("SSHPASS", NASTY).args(["-e", "ssh"]);
    client_opts(&mut cmd, svc.port);
    cmd.args(["-o", "PubkeyAuthentication=no", "-o", "LogLevel=INFO"])
        .args(["-o", "NumberOfPasswordPrompts=1", "root@127.0.0.1", "id"]);
    let out = run(&mut cmd);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Permission denied (publickey,password)."),
        "sshd keeps offering password: {}",
        text(&out)
    );
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("principal"), Some("root"));
    assert_eq!(auth.fields.get("outcome"), Some("failure"));
    assert_eq!(auth.attacker_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(secret(&auth), NASTY.as_bytes());
    assert!(svc.alive());
}

#[test]
fn the_configured_password_opens_an_emulated_shell() {
    if !tools() {
        return;
    }
    let mut svc = root_service(2, "debian", &[]);
    let out = ssh(svc.port, "root", ROOT_PW, &[], &["echo", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("outcome"), Some("success"));
    assert_eq!(secret(&auth), ROOT_PW.as_bytes());
    let cmd = svc.next("command");
    assert_eq!(cmd.fields.get("command"), Some("echo hello"));
    assert_eq!(cmd.fields.get("user"), Some("root"));
    let rec = svc.next("session_recorded");
    assert_eq!(rec.fields.get("service"), Some("ssh"));
}

/// Relies on the shell branch's commands (uname, cat of the bait files, pipes, bash's
/// "command not found").
#[test]
fn shell_commands_give_plausible_output_and_command_events() {
    if !tools() {
        return;
    }
    let mut svc = root_service(3, "debian", &[]);
    let uname = ssh(svc.port, "root", ROOT_PW, &[], &["uname", "-a"]);
    let t = String::from_utf8_lossy(&uname.stdout).into_owned();
    assert!(
        t.starts_with("Linux ") && t.contains("GNU/Linux"),
        "{}",
        text(&uname)
    );
    assert!(t.contains("-amd64"), "a Debian kernel: {t}");
    assert_eq!(svc.next("command").fields.get("command"), Some("uname -a"));

    let release = ssh(svc.port, "root", ROOT_PW, &[], &["cat", "/etc/os-release"]);
    let t = String::from_utf8_lossy(&release.stdout).into_owned();
    assert!(
        t.contains("Debian GNU/Linux 12 (bookworm)"),
        "{}",
        text(&release)
    );

    let pipe = ssh(
        svc.port,
        "root",
        ROOT_PW,
        &[],
        &["cat /etc/passwd | grep root"],
    );
    let t = String::from_utf8_lossy(&pipe.stdout).into_owned();
    assert!(t.starts_with("root:x:0:0:"), "{}", text(&pipe));

    let unknown = ssh(svc.port, "root", ROOT_PW, &[], &["frobnicate"]);
    assert!(
        text(&unknown).contains("frobnicate: command not found"),
        "{}",
        text(&unknown)
    );
}

#[test]
fn scp_and_sftp_uploads_are_captured_with_their_sha256() {
    if !tools() || !tool("scp") || !tool("sftp") {
        return;
    }
    let artifacts = tempfile::tempdir().expect("tempdir");
    let dir = artifacts.path().to_string_lossy().into_owned();
    let mut svc = root_service(4, "ubuntu22", &[("SSH_ARTIFACTS_DIR", &dir)]);
    let local = tempfile::tempdir().expect("tempdir");
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = local.path().join("dropper.sh");
    std::fs::write(&file, &payload).expect("write payload");
    let want = hex::encode(Sha256::digest(&payload));
    let file = file.to_string_lossy().into_owned();

    for (label, legacy) in [
        ("scp (legacy protocol)", true),
        ("scp (sftp protocol)", false),
    ] {
        let mut cmd = Command::new("sshpass");
        cmd.env("SSHPASS", ROOT_PW).args(["-e", "scp"]);
        if legacy {
            cmd.arg("-O");
        }
        cmd.args(["-F", "/dev/null", "-P", &svc.port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "PubkeyAuthentication=no", "-o", "LogLevel=ERROR"])
            .arg(&file)
            .arg("root@127.0.0.1:/tmp/");
        let out = run(&mut cmd);
        assert!(out.status.success(), "{label}: {}", text(&out));
        let got = svc.next("file_captured");
        assert_eq!(got.fields.get("sha256"), Some(want.as_str()), "{label}");
        assert_eq!(
            got.fields.get("orig_path"),
            Some("/tmp/dropper.sh"),
            "{label}"
        );
        assert_eq!(got.fields.get("size"), Some("70000"), "{label}");
        let stored = got.fields.get("stored_as").expect("stored_as").to_owned();
        assert!(
            stored.ends_with(&format!("_{}_dropper.sh", &want[..12])),
            "{stored}"
        );
        let kept = std::fs::read(artifacts.path().join(&stored)).expect("kept in artifacts");
        assert_eq!(kept, payload, "{label}");
    }

    let batch = local.path().join("batch");
    std::fs::write(&batch, format!("put {file} /var/tmp/x.bin\nls /tmp\n")).expect("batch");
    let mut cmd = Command::new("sshpass");
    cmd.env("SSHPASS", ROOT_PW).args(["-e", "sftp"]);
    cmd.args(["-F", "/dev/null", "-P", &svc.port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "PubkeyAuthentication=no", "-o", "LogLevel=ERROR"])
        .arg("root@127.0.0.1")
        // Commands on stdin, not `-b`: batch mode turns password logins off.
        .stdin(std::fs::File::open(&batch).expect("batch file"));
    let out = run(&mut cmd);
    assert!(out.status.success(), "sftp: {}", text(&out));
    let got = svc.next("file_captured");
    assert_eq!(got.fields.get("sha256"), Some(want.as_str()));
    assert_eq!(got.fields.get("orig_path"), Some("/var/tmp/x.bin"));
    assert_eq!(got.fields.get("ssh_user"), Some("root"));
}

/// The lines after "peer server KEXINIT proposal" in `ssh -vv` output, by name.
fn server_proposal(debug: &str) -> Vec<(String, String)> {
    debug
        .lines()
        .skip_while(|l| !l.contains("peer server KEXINIT proposal"))
        .skip(1)
        .take(10)
        .filter_map(|l| {
            let l = l.strip_prefix("debug2: ")?;
            let (k, v) = l.split_once(": ")?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

#[test]
fn ssh_vv_shows_the_claimed_releases_lists() {
    if !tools() {
        return;
    }
    let svc = rsa_service(5);
    let out = ssh(svc.port, "root", "wrong", &["-vv"], &["true"]);
    let debug = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        debug.contains("remote software version OpenSSH_9.2p1 Debian-2+deb12u"),
        "{debug}"
    );
    let lists = server_proposal(&debug);
    let get = |k: &str| {
        lists
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{k} in {lists:?}"))
    };
    // Debian 12's sshd (9.2p1-2+deb12u10), in full.
    assert_eq!(
        get("KEX algorithms"),
        "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,\
         ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,\
         diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,\
         diffie-hellman-group14-sha256,kex-strict-s-v00@openssh.com"
    );
    assert_eq!(
        get("host key algorithms"),
        "rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256,ssh-ed25519"
    );
    assert_eq!(
        get("ciphers ctos"),
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,\
         aes128-gcm@openssh.com,aes256-gcm@openssh.com"
    );
    assert_eq!(
        get("MACs stoc"),
        "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,\
         hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,\
         umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1"
    );
    assert_eq!(get("compression ctos"), "none,zlib@openssh.com");
}

fn keyscan_types(port: u16, types: &str) -> Vec<String> {
    let out =
        run(Command::new("ssh-keyscan").args(["-p", &port.to_string(), "-t", types, "127.0.0.1"]));
    let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(_, k)| k.to_owned()))
        .collect();
    keys.sort();
    keys
}

fn keyscan(port: u16) -> Vec<String> {
    keyscan_types(port, "ecdsa,ed25519")
}

/// A service with its RSA host key, once the background generation is done (seconds in a
/// debug build; three minutes at most on a loaded machine).
fn rsa_service(byte: u8) -> Service {
    let svc = Service::start(
        "ssh",
        &seed(byte),
        "deaddeck-01",
        "debian",
        &[("SSH_AUTH_DELAY_MS", "100")],
    );
    for _ in 0..180 {
        if !keyscan_types(svc.port, "rsa").is_empty() {
            return svc;
        }
        std::thread::park_timeout(std::time::Duration::from_secs(1));
    }
    panic!("no RSA host key within 3 minutes");
}

#[test]
fn host_keys_follow_the_seed() {
    if !tool("ssh-keyscan") {
        return;
    }
    let all = "rsa,ecdsa,ed25519";
    let first = keyscan_types(rsa_service(6).port, all);
    assert_eq!(first.len(), 3, "{first:?}");
    let again = keyscan_types(rsa_service(6).port, all);
    assert_eq!(first, again, "same seed, same keys after a restart");
    let other = keyscan_types(rsa_service(7).port, all);
    assert_eq!(other.len(), 3);
    assert!(
        first.iter().all(|k| !other.contains(k)),
        "two seeds share no key"
    );
}

#[test]
fn odd_identification_lines_get_openssh_answers() {
    let svc = root_service(8, "debian", &[]);
    let reply = String::from_utf8_lossy(&svc.raw(b"SSH-1.5-Nmap-SSH1-Hostkey\r\n")).into_owned();
    let (banner, rest) = reply.split_once("\r\n").expect("banner line");
    assert!(
        banner.starts_with("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u"),
        "{reply:?}"
    );
    assert_eq!(rest, "Protocol major versions differ.\r\n");
    let reply = String::from_utf8_lossy(&svc.raw(b"GET / HTTP/1.0\r\n\r\n")).into_owned();
    assert!(
        reply.ends_with("\r\nInvalid SSH identification string.\r\n"),
        "{reply:?}"
    );
    let reply = svc.raw(b"");
    assert!(reply.starts_with(b"SSH-2.0-") && reply.ends_with(b"\r\n"));
    let old = root_service(8, "centos7", &[]);
    let reply = String::from_utf8_lossy(&old.raw(b"hello\n")).into_owned();
    assert_eq!(reply, "SSH-2.0-OpenSSH_7.4\r\nProtocol mismatch.\r\n");
}

#[test]
fn port_forwarding_is_refused_and_logged() {
    if !tools() {
        return;
    }
    let mut svc = root_service(9, "debian", &[]);
    let out = ssh(svc.port, "root", ROOT_PW, &["-W", "10.0.0.1:3306"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("stdio forwarding failed"),
        "{}",
        text(&out)
    );
    let fwd = svc.next("port_forward");
    assert_eq!(fwd.fields.get("host"), Some("10.0.0.1"));
    assert_eq!(fwd.fields.get("port"), Some("3306"));
}

#[test]
fn garbage_after_the_banner_leaves_the_service_serving() {
    let mut svc = root_service(10, "debian", &[]);
    let mut fuzz = Fuzz::new(0x5eed);
    for i in 0..40 {
        let mut data = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
        let len = (fuzz.next() % 3000) as usize;
        let mut junk = fuzz.bytes(len);
        if i % 4 == 0 {
            // A plausible packet header with a huge length, then nothing.
            junk = vec![0x7f, 0xff, 0xff, 0xf0, 0x04, 0x14];
        } else if i % 4 == 1 {
            junk.truncate(len / 7);
        }
        data.extend_from_slice(&junk);
        let reply = svc.raw(&data);
        assert!(reply.starts_with(b"SSH-2.0-OpenSSH_9.2p1"), "round {i}");
    }
    assert!(svc.alive());
    if tool("ssh-keyscan") {
        assert_eq!(
            keyscan(svc.port).len(),
            2,
            "still serving after the garbage"
        );
    }
}

#[test]
fn public_keys_offered_are_logged_with_their_fingerprint() {
    if !tool("ssh") || !tool("ssh-keygen") {
        return;
    }
    let mut svc = root_service(11, "ubuntu22", &[]);
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("id_ed25519");
    let made = run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key));
    assert!(made.status.success(), "{}", text(&made));
    let listed = run(Command::new("ssh-keygen").arg("-lf").arg(&key));
    let fingerprint = String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned();
    let mut cmd = Command::new("ssh");
    client_opts(&mut cmd, svc.port);
    cmd.args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .args(["-o", "PreferredAuthentications=publickey", "-i"])
        .arg(&key)
        .args(["admin@127.0.0.1", "true"]);
    let out = run(&mut cmd);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Permission denied (publickey,password)."),
        "{}",
        text(&out)
    );
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("method"), Some("publickey"));
    assert_eq!(auth.fields.get("principal"), Some("admin"));
    assert_eq!(auth.fields.get("key_type"), Some("ssh-ed25519"));
    assert_eq!(auth.fields.get("fingerprint"), Some(fingerprint.as_str()));
}

#[test]
fn keyboard_interactive_answers_are_logged_where_the_distro_offers_it() {
    if !tools() {
        return;
    }
    // Alpine keeps upstream's sshd_config: keyboard-interactive is on.
    let mut svc = root_service(12, "alpine", &[]);
    let out = ssh(
        svc.port,
        "root",
        NASTY,
        &["-o", "PreferredAuthentications=keyboard-interactive"],
        &["true"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("method"), Some("keyboard-interactive"));
    assert_eq!(secret(&auth), NASTY.as_bytes());
    let out = ssh(
        svc.port,
        "root",
        ROOT_PW,
        &["-o", "PreferredAuthentications=keyboard-interactive"],
        &["id"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("uid=0(root)"),
        "{}",
        text(&out)
    );
}

/// What a new connection reads first: its first line, up to the line end or the close.
fn first_reply(port: u16) -> Option<(std::net::TcpStream, String)> {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") && line.len() < 256 {
        match conn.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => break,
        }
    }
    Some((conn, String::from_utf8_lossy(&line).into_owned()))
}

#[test]
fn unauthenticated_connections_past_max_startups_are_dropped_as_sshd_does() {
    use std::io::Read;
    let svc = root_service(12, "debian", &[]);
    let mut held = Vec::new();
    let mut dropped = 0;
    for _ in 0..20_000 {
        if held.len() == 100 {
            break;
        }
        let (conn, line) = first_reply(svc.port).expect("connect");
        match line.as_str() {
            l if l.starts_with("SSH-2.0-OpenSSH_9.2p1") => held.push(conn),
            "Exceeded MaxStartups\r\n" => {
                assert!(held.len() >= 10, "dropped with only {} open", held.len());
                dropped += 1;
            }
            other => panic!("unexpected first line {other:?}"),
        }
    }
    assert_eq!(held.len(), 100, "100 handshakes held");
    assert!(dropped > 0, "some were dropped between 10 and 100");
    for _ in 0..3 {
        let (mut conn, line) = first_reply(svc.port).expect("connect");
        assert_eq!(line, "Exceeded MaxStartups\r\n", "past 100 every one drops");
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
        assert!(rest.is_empty(), "closed after the refusal: {rest:?}");
    }
    drop(held);
    // The decky sees the 100 closes at once; 100 tries 50 ms apart give it 5 s.
    let freed = (0..100).any(|_| {
        let (_, line) = first_reply(svc.port).expect("connect");
        #[allow(clippy::disallowed_methods)] // a blocking client polling a child process
        std::thread::sleep(std::time::Duration::from_millis(50));
        line.starts_with("SSH-2.0-OpenSSH_9.2p1")
    });
    assert!(freed, "places never freed");
}
