//! `wget`, `curl`, `tftp` and `ftp`: the URL is recorded as a `download_attempt` event
//! (engine.md §2.3) and nothing is fetched. The tool then fails as it does on a host whose
//! egress is blocked: names do not resolve, addresses refuse the connection, in the words
//! of the release the distro ships.
use std::net::IpAddr;
use std::time::Duration;

use super::Shell;
use super::commands::Io;

/// Longest URL kept in an event.
const MAX_URL: usize = 2048;

/// Options of wget that take a value (so the value is not taken for a URL).
const WGET_VALUED: &[&str] = &[
    "-O",
    "-o",
    "-a",
    "-P",
    "-U",
    "-e",
    "-T",
    "-t",
    "-w",
    "--output-document",
    "--user-agent",
    "--header",
    "--tries",
    "--timeout",
    "--output-file",
    "--directory-prefix",
];
/// Options of curl that take a value.
const CURL_VALUED: &[&str] = &[
    "-o",
    "-H",
    "-A",
    "-X",
    "-d",
    "-u",
    "-x",
    "-m",
    "-b",
    "-c",
    "-e",
    "-T",
    "-F",
    "-w",
    "--output",
    "--header",
    "--user-agent",
    "--data",
    "--user",
    "--request",
    "--max-time",
    "--connect-timeout",
    "--proxy",
    "--cookie",
];

/// A URL's host and port, with the default port of its scheme.
fn host_port(url: &str, default: u16) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default = match url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
        Some(s) if s == "https" => 443,
        Some(s) if s == "ftp" => 21,
        Some(s) if s == "tftp" => 69,
        _ => default,
    };
    if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']').unwrap_or((v6, ""));
        let port = p.trim_start_matches(':').parse().unwrap_or(default);
        return (h.to_owned(), port);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(default)),
        None => (authority.to_owned(), default),
    }
}

fn is_address(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

/// Records `url` fetched by `tool`.
fn record(sh: &mut Shell, tool: &str, url: &str) {
    let url: String = super::super::events::cap_str(url, MAX_URL).to_owned();
    let m = sh
        .ctx
        .emitter
        .peer_event("download_attempt", sh.ctx.peer)
        .param("tool", tool)
        .param("url", url.as_str())
        .param("user", sh.user.as_str())
        .msg(format!("{tool} {url}"));
    sh.event(m);
}

/// The curl release the distro ships, as (major, minor).
fn curl_version(slug: &str) -> (u32, u32) {
    match slug {
        "debian" => (7, 88),
        "ubuntu22" => (7, 81),
        "ubuntu20" => (7, 68),
        "rocky9" => (7, 76),
        "centos7" => (7, 29),
        _ => (8, 5),
    }
}

/// `wget`, `curl`, `tftp`, `ftp`: record the URLs, then fail as offline.
pub fn download(sh: &mut Shell, tool: &str, args: &[String], io: &mut Io) -> i32 {
    let mut urls: Vec<String> = Vec::new();
    let mut quiet = false;
    let mut show_errors = false;
    let mut skip = false;
    let mut plain: Vec<&String> = Vec::new();
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        let valued = match tool {
            "wget" => WGET_VALUED,
            "curl" => CURL_VALUED,
            _ => &[],
        };
        if valued.contains(&a.as_str()) {
            skip = true;
            continue;
        }
        if a.starts_with("--") {
            quiet |= a == "--quiet" || a == "--silent";
            show_errors |= a == "--show-error";
            continue;
        }
        if let Some(flags) = a.strip_prefix('-') {
            quiet |= flags.contains('q') || (tool == "curl" && flags.contains('s'));
            show_errors |= tool == "curl" && flags.contains('S');
            continue;
        }
        plain.push(a);
    }
    match tool {
        "wget" | "curl" => urls.extend(plain.iter().map(|s| (*s).clone())),
        "tftp" => {
            let host = plain.first().map_or_else(String::new, |s| (*s).clone());
            let file = args
                .windows(2)
                .find(|w| w[0] == "-r" || w[0] == "get" || w[0] == "-c")
                .map(|w| w[1].clone())
                .or_else(|| args.iter().skip_while(|a| *a != "get").nth(1).cloned())
                .unwrap_or_default();
            let host = if host == "get" { String::new() } else { host };
            if !host.is_empty() {
                urls.push(format!("tftp://{host}/{file}"));
            }
        }
        _ => {
            if let Some(h) = plain.first() {
                urls.push(if h.contains("://") {
                    (*h).clone()
                } else {
                    format!("ftp://{h}/")
                });
            }
        }
    }
    if urls.is_empty() {
        match tool {
            "wget" => io.err("wget: missing URL\nUsage: wget [OPTION]... [URL]...\n\nTry `wget --help' for more options.\n"),
            "curl" => io.err("curl: try 'curl --help' or 'curl --manual' for more information\n"),
            "tftp" => io.err("usage: tftp [-4][-6][-v][-l][-m mode] [host [port]] [-c command]\n"),
            _ => io.out("ftp> "),
        }
        return if tool == "curl" { 2 } else { 1 };
    }
    for url in urls.iter().take(16) {
        record(sh, tool, url);
    }
    let slug = sh.ctx.persona.distro.slug;
    let mut status = 0;
    for url in urls.iter().take(16) {
        let (host, port) = host_port(url, 80);
        let address = is_address(&host);
        match tool {
            "wget" => {
                let shown = if url.contains("://") {
                    url.clone()
                } else {
                    format!("http://{url}")
                };
                if quiet {
                    status = 4;
                    continue;
                }
                let now = sh.now();
                io.err(&format!(
                    "--{}-{:02}-{:02} {:02}:{:02}:{:02}--  {shown}\n",
                    now.year(),
                    u8::from(now.month()),
                    now.day(),
                    now.hour(),
                    now.minute(),
                    now.second()
                ));
                if address {
                    io.err(&format!(
                        "Connecting to {host}:{port}... failed: Connection refused.\n"
                    ));
                } else {
                    io.err(&format!("Resolving {host} ({host})... failed: Temporary failure in name resolution.\nwget: unable to resolve host address ‘{host}’\n"));
                }
                status = 4;
            }
            "curl" => {
                status = if address { 7 } else { 6 };
                if quiet && !show_errors {
                    continue;
                }
                let (major, minor) = curl_version(slug);
                let text = if !address {
                    format!("curl: (6) Could not resolve host: {host}\n")
                } else if (major, minor) < (7, 50) {
                    format!("curl: (7) Failed connect to {host}:{port}; Connection refused\n")
                } else if (major, minor) < (7, 75) {
                    format!(
                        "curl: (7) Failed to connect to {host} port {port}: Connection refused\n"
                    )
                } else if (major, minor) < (7, 87) {
                    format!(
                        "curl: (7) Failed to connect to {host} port {port} after 0 ms: Connection refused\n"
                    )
                } else {
                    format!(
                        "curl: (7) Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server\n"
                    )
                };
                io.err(&text);
            }
            "tftp" => {
                sh.delay = sh.delay.max(Duration::from_secs(3));
                if slug == "alpine" {
                    io.err("tftp: timeout\n");
                } else {
                    io.err("Transfer timed out.\n\n");
                }
                status = 1;
            }
            _ => {
                if address {
                    io.err("ftp: connect: Connection refused\n");
                } else {
                    io.err(&format!(
                        "ftp: {host}: Temporary failure in name resolution\n"
                    ));
                }
                status = 1;
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_come_out_of_urls() {
        assert_eq!(
            host_port("http://evil.example/x.sh", 80),
            ("evil.example".into(), 80)
        );
        assert_eq!(
            host_port("https://u:p@1.2.3.4:8443/a?b", 80),
            ("1.2.3.4".into(), 8443)
        );
        assert_eq!(
            host_port("evil.example/bot", 80),
            ("evil.example".into(), 80)
        );
        assert_eq!(
            host_port("ftp://[2001:db8::1]/f", 80),
            ("2001:db8::1".into(), 21)
        );
        assert!(is_address("203.0.113.7") && !is_address("evil.example"));
    }
}
