//! http and https against real clients: curl over HTTP/1.1, h2c and h2 over TLS; the
//! credentials it sends logged byte-exact; pages and headers of the claimed server; the
//! seed deciding certificate, build string and cookies; garbage survived.
mod services_common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use services_common::{Fuzz, Service, run, secret, seed, tool};

/// A password with spaces, quotes, `]`, `\`, UTF-8 and a byte that is not UTF-8.
const NASTY: &[u8] = b"p a\"s]s\\w'\xc3\xb6\xffrd";
/// [`NASTY`] urlencoded.
const NASTY_FORM: &str = "p+a%22s%5Ds%5Cw%27%C3%B6%FFrd";

fn curl() -> Command {
    let mut c = Command::new("curl");
    c.args(["-s", "-S", "-i", "--max-time", "20"]);
    c
}

/// Header names of a curl `-i` response, in order, lowercased.
fn header_names(response: &str) -> Vec<String> {
    response
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

#[test]
fn curl_basic_auth_over_http1_is_logged_byte_exact() {
    if !tool("curl") {
        return;
    }
    let mut svc = Service::start("http", &seed(1), "web-01", "ubuntu22", &[]);
    let mut user_pass = b"admin:".to_vec();
    user_pass.extend_from_slice(NASTY);
    let out = run(curl()
        .arg("-u")
        .arg(OsStr::from_bytes(&user_pass))
        .arg(format!("http://127.0.0.1:{}/admin/?q=1", svc.port)));
    let response = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        response.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{response}"
    );
    let server = header(&response, "server").expect("a Server header");
    match server {
        "Apache/2.4.52 (Ubuntu)" => {
            assert_eq!(header_names(&response)[..2], ["date", "server"]);
            assert!(
                response.contains(&format!(
                    "<address>Apache/2.4.52 (Ubuntu) Server at 127.0.0.1 Port {}</address>",
                    svc.port
                )),
                "{response}"
            );
        }
        "nginx/1.18.0 (Ubuntu)" => {
            assert_eq!(
                header_names(&response)[..3],
                ["server", "date", "content-type"]
            );
            assert!(response.contains("<hr><center>nginx/1.18.0 (Ubuntu)</center>"));
        }
        other => panic!("not a server Ubuntu 22.04 ships: {other}"),
    }

    let event = svc.next("request");
    assert_eq!(event.fields.get("method"), Some("GET"));
    assert_eq!(event.fields.get("path"), Some("/admin/?q=1"));
    assert_eq!(event.fields.get("proto"), Some("HTTP/1.1"));
    assert_eq!(event.attacker_ip.as_deref(), Some("127.0.0.1"));
    assert!(
        event
            .fields
            .get("src_port")
            .is_some_and(|p| p.parse::<u16>().is_ok())
    );
    assert_eq!(event.fields.get("principal"), Some("admin"));
    assert_eq!(event.fields.get("secret_kind"), Some("plaintext"));
    assert_eq!(
        event.fields.get("secret_printable"),
        Some("p a\"s]s\\w'???rd")
    );
    assert_eq!(secret(&event), NASTY);
    let headers: serde_json::Value =
        serde_json::from_str(event.fields.get("headers").expect("headers")).expect("JSON");
    assert!(
        headers["User-Agent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("curl/"))
    );
    // The line re-parses to the same fields: the SD escaping round-trips.
    let again = decnet::syslog::parse(&event.raw).expect("re-parse");
    assert_eq!(again.fields, event.fields);
}

#[test]
fn h2c_login_form_of_a_fake_wordpress() {
    if !tool("curl") {
        return;
    }
    let mut svc = Service::start(
        "http",
        &seed(2),
        "web-02",
        "debian",
        &[("FAKE_APP", "wordpress")],
    );
    let out = run(curl()
        .arg("--http2-prior-knowledge")
        .args([
            "--data-binary",
            &format!("log=admin&pwd={NASTY_FORM}&wp-submit=Log+In"),
        ])
        .arg(format!("http://127.0.0.1:{}/wp-login.php", svc.port)));
    let response = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(response.starts_with("HTTP/2 500"), "{response}");
    assert!(response.contains("Error establishing a database connection"));
    assert!(header(&response, "x-powered-by").is_some_and(|v| v.starts_with("PHP/8.2.")));
    let event = svc.next("request");
    assert_eq!(event.fields.get("proto"), Some("HTTP/2.0"));
    assert_eq!(event.fields.get("method"), Some("POST"));
    assert_eq!(event.fields.get("principal"), Some("admin"));
    assert_eq!(secret(&event), NASTY);
    let body = event.fields.get("body").expect("body preview");
    assert!(body.starts_with("log=admin&pwd="), "{body}");
}

#[test]
fn bodies_are_previewed_and_capped() {
    if !tool("curl") {
        return;
    }
    let mut svc = Service::start(
        "http",
        &seed(3),
        "web-03",
        "debian",
        &[("RESPONSE_CODE", "200")],
    );
    let big = "x".repeat(5000);
    let out = run(curl()
        .args(["-H", "Content-Type: text/plain", "--data-binary", &big])
        .arg(format!("http://127.0.0.1:{}/upload", svc.port)));
    let response = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("Default Page") || response.contains("Welcome to nginx!"));
    let event = svc.next("request");
    assert_eq!(event.fields.get("body").map(str::len), Some(512));
    assert!(event.fields.get("secret_b64").is_none());

    let huge = vec![b'y'; 100 * 1024];
    std::fs::write(std::env::temp_dir().join("decnet-http-huge"), &huge).expect("write");
    let out = run(curl()
        .args(["--data-binary"])
        .arg(format!(
            "@{}",
            std::env::temp_dir().join("decnet-http-huge").display()
        ))
        .arg(format!("http://127.0.0.1:{}/upload", svc.port)));
    let response = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(response.contains(" 413 "), "{response}");
}

/// The certificate an https service presents, as PEM, via `openssl s_client`.
fn certificate(port: u16) -> String {
    let out = run(Command::new("sh").args([
        "-c",
        &format!(
            "openssl s_client -connect 127.0.0.1:{port} -servername web </dev/null 2>/dev/null \
             | openssl x509"
        ),
    ]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn https_speaks_h2_and_http1_with_a_certificate_from_the_seed() {
    if !tool("curl") || !tool("openssl") {
        return;
    }
    let mut a = Service::start("https", &seed(4), "web-04", "ubuntu22", &[]);
    let out = run(curl()
        .args(["-k", "--http2", "-H", "Authorization: Bearer tok\"en]\\"])
        .arg(format!("https://127.0.0.1:{}/api", a.port)));
    let response = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(response.starts_with("HTTP/2 403"), "{response}");
    let event = a.next("request");
    assert_eq!(event.fields.get("proto"), Some("HTTP/2.0"));
    assert_eq!(event.fields.get("secret_kind"), Some("http_bearer"));
    assert!(event.fields.get("principal").is_none());
    assert_eq!(secret(&event), b"tok\"en]\\");
    let out = run(curl()
        .args(["-k", "--http1.1"])
        .arg(format!("https://127.0.0.1:{}/", a.port)));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 403"));
    assert_eq!(a.next("request").fields.get("proto"), Some("HTTP/1.1"));

    let cert_a = certificate(a.port);
    assert!(
        cert_a.starts_with("-----BEGIN CERTIFICATE-----"),
        "{cert_a}"
    );
    drop(a);
    let again = Service::start("https", &seed(4), "web-04", "ubuntu22", &[]);
    assert_eq!(
        certificate(again.port),
        cert_a,
        "a restart serves the same certificate"
    );
    let other = Service::start("https", &seed(5), "web-05", "ubuntu22", &[]);
    assert_ne!(
        certificate(other.port),
        cert_a,
        "another seed, another certificate"
    );
}

#[test]
fn the_seed_decides_build_strings_and_session_ids_are_fresh() {
    if !tool("curl") {
        return;
    }
    let fetch = |byte: u8| {
        let svc = Service::start(
            "http",
            &seed(byte),
            "web",
            "debian",
            &[("FAKE_APP", "phpmyadmin")],
        );
        let out = run(curl().arg(format!("http://127.0.0.1:{}/index.php", svc.port)));
        let response = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(response.contains("<title>phpMyAdmin</title>"), "{response}");
        let server = header(&response, "server").expect("Server").to_owned();
        let cookie = response
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("set-cookie: phpmyadmin=")
            })
            .expect("session cookie")
            .to_owned();
        (server, cookie)
    };
    let first = fetch(6);
    let restarted = fetch(6);
    assert_eq!(restarted.0, first.0, "same seed, same build string");
    assert_ne!(
        restarted.1, first.1,
        "a restart must not hand out the same session id again"
    );
    let others: Vec<(String, String)> = (7..13).map(fetch).collect();
    assert!(
        others.iter().all(|o| o.1 != first.1),
        "cookies differ per seed"
    );
    let id = first.1.split(['=', ';']).nth(1).unwrap_or_default();
    assert!(
        id.len() == 26 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "a PHP-style session id: {id}"
    );
    let mut builds: Vec<&str> = others.iter().map(|o| o.0.as_str()).collect();
    builds.push(&first.0);
    builds.sort_unstable();
    builds.dedup();
    assert!(builds.len() >= 2, "seeds pick different builds: {builds:?}");
    assert!(
        builds
            .iter()
            .all(|b| b.ends_with("(Debian)") || b.starts_with("nginx/1.22"))
    );
}

#[test]
fn garbage_and_truncated_requests_do_not_stop_the_server() {
    if !tool("curl") {
        return;
    }
    let mut svc = Service::start("http", &seed(14), "web-14", "debian", &[]);
    let mut fuzz = Fuzz::new(14);
    let valid = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789";
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00";
    for round in 0..60 {
        let len = usize::try_from(fuzz.next() % 2048).unwrap_or(0);
        let data = match round % 4 {
            0 => fuzz.bytes(len),
            1 => valid[..len % valid.len()].to_vec(),
            2 => preface[..len % preface.len()]
                .iter()
                .copied()
                .chain(fuzz.bytes(len))
                .collect(),
            _ => [&b"GET / HTTP/1.1\r\nX: "[..], &vec![b'a'; 40_000]].concat(),
        };
        svc.raw(&data);
    }
    assert!(svc.alive(), "the server survived");
    let out = run(curl().arg(format!("http://127.0.0.1:{}/still", svc.port)));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 403"));
    loop {
        if svc.next("request").fields.get("path") == Some("/still") {
            break;
        }
    }
}

/// `name,name,…` of the fingerprint event, split.
fn ordered(event: &decnet::syslog::Event) -> Vec<String> {
    event
        .fields
        .get("headers_ordered")
        .expect("headers_ordered")
        .split(',')
        .map(str::to_owned)
        .collect()
}

#[test]
fn curl_requests_are_fingerprinted_with_ja4h_and_http2_settings() {
    use decnet::roles::decky::http::fingerprint::{RequestParts, ja4h};
    if !tool("curl") {
        return;
    }
    let mut svc = Service::start("http", &seed(5), "web-05", "debian", &[]);
    let out = run(curl().args([
        "-A",
        "Mozilla/5.0 (X11; Linux x86_64) probe",
        "-H",
        "Accept-Language: de-DE,de;q=0.9",
        "-H",
        "X-Custom-Thing: 1",
        "-b",
        "zeta=1; alpha=2",
        "-e",
        "http://203.0.113.8/",
        &format!("http://127.0.0.1:{}/wp-login.php", svc.port),
    ]));
    let response = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(response.starts_with("HTTP/1.1 "), "{response}");
    let fp = svc.next("http_request_fingerprint");
    assert_eq!(fp.attacker_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(fp.fields.get("proto"), Some("HTTP/1.1"));
    assert_eq!(fp.fields.get("path"), Some("/wp-login.php"));
    let names = ordered(&fp);
    // curl's own order and case, as sent: hyper would have lower-cased them.
    assert_eq!(names[..3], ["Host", "User-Agent", "Accept"], "{names:?}");
    for sent in ["Referer", "Cookie", "Accept-Language", "X-Custom-Thing"] {
        assert!(names.iter().any(|n| n == sent), "{sent} in {names:?}");
    }
    assert_eq!(fp.fields.get("cookie"), Some("zeta=1; alpha=2"));
    assert_eq!(fp.fields.get("accept_language"), Some("de-DE,de;q=0.9"));
    let ja = fp.fields.get("ja4h").expect("ja4h");
    // GET, HTTP/1.1, a cookie, a referer, five headers besides those two, German.
    assert!(ja.starts_with("ge11cr05dede_"), "{ja}");
    let expected = ja4h(&RequestParts {
        method: "GET",
        version: "11",
        names: &names,
        cookie: Some("zeta=1; alpha=2"),
        accept_language: Some("de-DE,de;q=0.9"),
    });
    assert_eq!(ja, expected);
    let access = svc.next("http_access");
    let status = response
        .split_whitespace()
        .nth(1)
        .expect("a status code")
        .to_owned();
    assert_eq!(access.fields.get("status"), Some(status.as_str()));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(
        access.fields.get("bytes"),
        Some(body.len().to_string().as_str())
    );

    // HTTP/2 in clear text: the client's SETTINGS and frame order, then JA4H `ge20`.
    let out = run(curl().args([
        "--http2-prior-knowledge",
        &format!("http://127.0.0.1:{}/", svc.port),
    ]));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("HTTP/2 "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h2 = svc.next("http2_settings");
    let settings = h2.fields.get("settings").expect("settings");
    assert!(
        !settings.is_empty()
            && settings.split(';').all(|kv| kv
                .split_once(':')
                .is_some_and(|(k, v)| k.parse::<u16>().is_ok() && v.parse::<u32>().is_ok())),
        "{settings}"
    );
    let frames = h2.fields.get("frame_order").expect("frame_order");
    assert!(
        frames.starts_with("SETTINGS") && frames.ends_with("HEADERS"),
        "{frames}"
    );
    let mut pseudo: Vec<&str> = h2
        .fields
        .get("pseudo_header_order")
        .expect("pseudo-headers")
        .split(',')
        .collect();
    pseudo.sort_unstable();
    assert_eq!(pseudo, ["a", "m", "p", "s"]);
    let akamai = h2.fields.get("akamai").expect("akamai");
    assert!(akamai.starts_with(&format!("{settings}|")), "{akamai}");
    let fp2 = svc.next("http_request_fingerprint");
    assert_eq!(fp2.fields.get("proto"), Some("HTTP/2.0"));
    assert!(
        fp2.fields
            .get("ja4h")
            .is_some_and(|j| j.starts_with("ge20nn")),
        "{:?}",
        fp2.fields.get("ja4h")
    );
    assert_eq!(ordered(&fp2)[..2], ["user-agent", "accept"]);
}

#[test]
fn https_clients_are_fingerprinted_by_their_hello_and_h2_frames() {
    if !tool("curl") {
        return;
    }
    let mut svc = Service::start("https", &seed(6), "web-06", "ubuntu22", &[]);
    let out = run(curl().args(["-k", "--http2", &format!("https://127.0.0.1:{}/", svc.port)]));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("HTTP/2 "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // curl sends no SNI for an IP address, and offers h2 first.
    let hello = svc.next("tls_client_hello");
    let ja4 = hello.fields.get("ja4").expect("ja4");
    assert!(
        ja4.starts_with("t13i") && ja4[8..].starts_with("h2_"),
        "{ja4}"
    );
    assert_eq!(ja4.len(), 36, "{ja4}");
    let ja3 = hello.fields.get("ja3").expect("ja3");
    assert!(
        ja3.len() == 32 && ja3.bytes().all(|b| b.is_ascii_hexdigit()),
        "{ja3}"
    );
    assert!(
        hello
            .fields
            .get("ja3_full")
            .is_some_and(|f| f.starts_with("771,"))
    );
    assert_eq!(hello.fields.get("alpn"), Some("h2,http/1.1"));
    let h2 = svc.next("http2_settings");
    assert!(h2.fields.get("settings").is_some_and(|s| !s.is_empty()));
    let fp = svc.next("http_request_fingerprint");
    assert!(
        fp.fields
            .get("ja4h")
            .is_some_and(|j| j.starts_with("ge20nn"))
    );
}
