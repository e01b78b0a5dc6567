//! A Windows persona across its services: every banner, version and page a client sees
//! names Microsoft software or nothing OS-specific (IIS, Microsoft FTP Service, MySQL's
//! Windows build), never a Linux distro or its packages, and the services that can only
//! pass for Linux software refuse to start with a reason.
mod services_common;

use std::process::{Command, Stdio};

use services_common::{Launch, Service, run, seed, tool};

/// Words that would give away a Linux host.
const LINUX_TELLS: &[&str] = &[
    "Ubuntu",
    "Debian",
    "deb12",
    "Linux",
    "vsFTPd",
    "Apache",
    "nginx",
    "UNIX",
    "Rocky",
    "MariaDB-0",
    "ubuntu",
];

fn windows(service: &str, node: &str, env: &'static [(&'static str, &'static str)]) -> Service {
    Service::launch(Launch {
        service,
        seed: &seed(9),
        node,
        distro: "debian",
        os: Some("windows_server"),
        env,
        ..Launch::default()
    })
}

fn no_linux(what: &str, text: &str) {
    for tell in LINUX_TELLS {
        assert!(!text.contains(tell), "{what} says {tell:?}: {text}");
    }
}

const FTP_CLIENT: &str = r#"
import ftplib, sys
ftp = ftplib.FTP()
print(ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=20))
print(ftp.sendcmd("SYST"))
print(ftp.login("administrator", "Winter2024!"))
print(ftp.pwd())
print(ftp.retrlines("LIST", lambda l: print("LIST", l)))
ftp.set_pasv(False)
print(ftp.retrlines("NLST", lambda l: print("NLST", l)))
print(ftp.quit())
"#;

#[test]
fn a_windows_decky_is_windows_in_every_service() {
    if !tool("python3") || !tool("curl") {
        return;
    }
    let ftp = windows("ftp", "win-01", &[("FTP_LOGIN_MODE", "always")]);
    let out = run(Command::new("python3").args(["-c", FTP_CLIENT, &ftp.port.to_string()]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("220 Microsoft FTP Service"));
    assert_eq!(lines.next(), Some("215 Windows_NT"));
    assert_eq!(lines.next(), Some("230 User logged in."));
    assert_eq!(lines.next(), Some("/"));
    // The MS-DOS listing style of IIS: `MM-DD-YY  HH:MMAM  size name`.
    let listing: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("LIST "))
        .collect();
    assert!(listing.len() >= 3, "{text}");
    for l in &listing {
        let b = l.as_bytes();
        assert!(
            b.len() > 20
                && b[2] == b'-'
                && b[5] == b'-'
                && &l[8..10] == "  "
                && (l[15..17] == *"AM" || l[15..17] == *"PM"),
            "{l}"
        );
    }
    assert!(listing.iter().any(|l| l.ends_with(" web.config")), "{text}");
    assert!(text.contains("NLST README.txt"), "active mode too: {text}");
    assert!(text.contains("226 Transfer complete."), "{text}");
    assert!(text.contains("221 Goodbye."), "{text}");
    no_linux("ftp", &text);

    for service in ["http", "https"] {
        let web = windows(service, "win-01", &[]);
        let url = format!("{service}://127.0.0.1:{}/", web.port);
        let out = run(Command::new("curl").args(["-s", "-k", "-i", "--max-time", "20", &url]));
        let response = String::from_utf8_lossy(&out.stdout).into_owned();
        // https negotiates HTTP/2, whose header names are lower case.
        let lower = response.to_ascii_lowercase();
        assert!(
            lower.contains("server: microsoft-iis/10.0\r\n"),
            "{response}"
        );
        assert!(lower.contains("x-powered-by: asp.net\r\n"), "{response}");
        no_linux(service, &response);
    }

    let mysql = windows("mysql", "win-01", &[]);
    let greeting = mysql.raw(b"");
    // Protocol 10, then the NUL-terminated server version.
    assert_eq!(greeting.get(4), Some(&10u8), "{greeting:?}");
    let version: Vec<u8> = greeting[5..]
        .iter()
        .take_while(|b| **b != 0)
        .copied()
        .collect();
    let version = String::from_utf8_lossy(&version).into_owned();
    assert!(
        version.starts_with("8.0.") && !version.contains('-'),
        "{version}"
    );
    no_linux("mysql", &version);
}

#[test]
fn linux_only_services_refuse_a_windows_persona() {
    for service in ["ssh", "telnet", "redis", "smtp"] {
        let out = Command::new(env!("CARGO_BIN_EXE_decnet"))
            .args(["decky", "--service", service, "--port", "tcp/0", "--seed"])
            .arg(seed(9))
            .args(["--node", "win-02", "--distro", "debian", "--os", "windows"])
            .stdin(Stdio::null())
            .output()
            .expect("run decnet decky");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{service} started on Windows");
        assert!(
            err.contains(&format!("{service}: cannot pass for a windows host (")),
            "{service}: {err}"
        );
    }
}
