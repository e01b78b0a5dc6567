//! Every emulated service fed random and truncated protocol data, then asked for a normal
//! exchange: it must survive (no panic, no exit), keep serving, and answer as before.
//!
//! Each row of [`ENTRIES`] gives a few valid client messages of its protocol and a normal
//! exchange to check afterwards; the cases are built from them with a seeded generator
//! ([`Fuzz`]), so a failure repeats: random bytes, valid data cut anywhere, valid data
//! with flipped bytes, a valid prefix with a random tail, an overlong line, and half-open
//! connections that send nothing. Services run side by side, each case on a fresh
//! connection, each service within [`BUDGET`]. A row whose service is still a stand-in
//! is skipped with a note, so an emulation that lands is fuzzed at once.
mod services_common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, SystemTime};

use decnet::roles::decky::is_emulated;
use services_common::{Fuzz, Service, exchange, run, seed, tool};

/// Cases per service.
const CASES: usize = 300;
/// Wall-clock budget of one service's cases: past it the rest are skipped (and said so).
const BUDGET: Duration = Duration::from_secs(120);
/// How long one case waits for the service's answer.
const CASE_WAIT: Duration = Duration::from_millis(300);

/// One service of the table.
struct Entry {
    service: &'static str,
    env: &'static [(&'static str, &'static str)],
    /// Valid client data of the protocol, which the cases cut and mangle.
    samples: &'static [&'static [u8]],
    /// A normal client exchange; `Err` says what was wrong.
    normal: fn(&Service) -> Result<(), String>,
}

/// Every service fuzzed; a new emulation is one row here.
const ENTRIES: &[Entry] = &[
    Entry {
        service: "http",
        env: &[],
        samples: &[
            b"GET /index.php?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
            b"POST /login HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cGFzcw==\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04\x00\x00\xff\xff\x00\x02\x00\x00\x00\x00",
        ],
        normal: http_get,
    },
    Entry {
        service: "https",
        env: &[],
        samples: &[TLS_HELLO, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
        normal: https_get,
    },
    Entry {
        service: "ftp",
        env: &[("FTP_LOGIN_MODE", "always")],
        samples: &[
            b"USER backup\r\nPASS s3cret\r\nSYST\r\nPWD\r\nCWD /backups\r\nEPSV\r\nLIST\r\nRETR README.txt\r\nQUIT\r\n",
            b"USER anonymous\r\nPASS a@b\r\nPORT 127,0,0,1,4,1\r\nPASV\r\nSTOR ../../x.sh\r\nTYPE I\r\nREST 100\r\n",
        ],
        normal: ftp_login,
    },
    Entry {
        service: "redis",
        env: &[],
        samples: &[
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\n",
            b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\nKEYS *\r\nCONFIG GET dir\r\n",
        ],
        normal: redis_ping,
    },
    Entry {
        service: "ssh",
        env: &[],
        samples: &[
            b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n\x00\x00\x00\x2c\x06\x14\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x00\x00\x00\x00\x0a\x63\x75\x72\x76\x65\x32\x35\x35\x31\x39\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"SSH-1.5-Nmap-SSH1-Hostkey\r\n",
        ],
        normal: ssh_banner,
    },
    Entry {
        service: "smtp",
        env: &[],
        samples: &[
            b"EHLO x\r\nAUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
            b"HELO x\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\nSTARTTLS\r\nVRFY root\r\n",
        ],
        normal: smtp_greeting,
    },
    Entry {
        service: "telnet",
        env: &[],
        samples: &[
            b"\xff\xfb\x18\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0root\r\npassword\r\n",
            b"\xff\xfd\x01\xff\xfd\x03admin\r\n\xff\xf4\r\n",
        ],
        normal: any_greeting,
    },
    Entry {
        service: "mysql",
        env: &[],
        samples: &[MYSQL_LOGIN],
        normal: mysql_greeting,
    },
    Entry {
        service: "postgres",
        env: &[],
        samples: &[
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
            b"\x00\x00\x00\x29\x00\x03\x00\x00user\x00postgres\x00database\x00postgres\x00\x00p\x00\x00\x00\x0bs3cret\x00",
        ],
        normal: postgres_ssl_request,
    },
];

/// A TLS 1.2 ClientHello (nmap's TLSSessionReq probe).
const TLS_HELLO: &[u8] = b"\x16\x03\x00\x00\x69\x01\x00\x00\x65\x03\x03U\x1c\xa7\xe4random1random2random3random4\x00\x00\x0c\x00/\x00\x0a\x00\x13\x009\x00\x04\x00\xff\x01\x00\x00\x30\x00\x0d\x00,\x00*\x00\x01\x00\x03\x00\x02\x06\x01\x06\x03\x06\x02\x02\x01\x02\x03\x02\x02\x03\x01\x03\x03\x03\x02\x04\x01\x04\x03\x04\x02\x01\x01\x01\x03\x01\x02\x05\x01\x05\x03\x05\x02";

/// A HandshakeResponse41 for `root` with a 20-byte native-password scramble.
const MYSQL_LOGIN: &[u8] = b"\x50\x00\x00\x01\x85\xa6\xff\x01\x00\x00\x00\x01\x21\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00root\x00\x14\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14mysql_native_password\x00";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn http_get(svc: &Service) -> Result<(), String> {
    let reply = exchange(
        svc.port,
        b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    let t = text(&reply);
    t.starts_with("HTTP/1.").then_some(()).ok_or(t)
}

fn https_get(svc: &Service) -> Result<(), String> {
    let out = run(Command::new("curl").args([
        "-k",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "20",
        &format!("https://127.0.0.1:{}/", svc.port),
    ]));
    let code = text(&out.stdout);
    (code.len() == 3 && code != "000").then_some(()).ok_or(code)
}

fn ftp_login(svc: &Service) -> Result<(), String> {
    let reply = exchange(svc.port, b"USER backup\r\n", Duration::from_secs(3));
    let t = text(&reply);
    (t.starts_with("220") && t.contains("\r\n331 "))
        .then_some(())
        .ok_or(t)
}

fn redis_ping(svc: &Service) -> Result<(), String> {
    let reply = exchange(svc.port, b"PING\r\nQUIT\r\n", Duration::from_secs(3));
    let t = text(&reply);
    t.starts_with("+PONG\r\n").then_some(()).ok_or(t)
}

fn ssh_banner(svc: &Service) -> Result<(), String> {
    let reply = exchange(svc.port, b"", Duration::from_secs(2));
    let t = text(&reply);
    t.starts_with("SSH-2.0-").then_some(()).ok_or(t)
}

fn smtp_greeting(svc: &Service) -> Result<(), String> {
    let reply = exchange(svc.port, b"EHLO x\r\n", Duration::from_secs(3));
    let t = text(&reply);
    (t.starts_with("220 ") && t.contains("\r\n250"))
        .then_some(())
        .ok_or(t)
}

fn any_greeting(svc: &Service) -> Result<(), String> {
    let reply = exchange(svc.port, b"", Duration::from_secs(3));
    (!reply.is_empty())
        .then_some(())
        .ok_or_else(|| "no greeting".to_owned())
}

fn mysql_greeting(svc: &Service) -> Result<(), String> {
    let reply = exchange(svc.port, b"", Duration::from_secs(2));
    (reply.len() > 5 && reply[4] == 10)
        .then_some(())
        .ok_or_else(|| format!("{reply:?}"))
}

fn postgres_ssl_request(svc: &Service) -> Result<(), String> {
    let reply = exchange(
        svc.port,
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        Duration::from_secs(2),
    );
    matches!(reply.first(), Some(b'N' | b'S'))
        .then_some(())
        .ok_or_else(|| format!("{reply:?}"))
}

/// Sends one case on a fresh connection and reads the answer for [`CASE_WAIT`] at most;
/// with `half_close` the client ends its side first (most cases, which keeps the run
/// short), without it the connection stays half-open until the wait is over.
fn hit(port: u16, data: &[u8], half_close: bool) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(CASE_WAIT));
    let _ = s.write_all(data);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut sink = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut sink);
}

/// Case `round` of a service's run, from its samples.
fn case(fuzz: &mut Fuzz, samples: &[&[u8]], round: usize) -> Vec<u8> {
    let pick = usize::try_from(fuzz.next()).unwrap_or(0) % samples.len();
    let sample = samples[pick];
    let cut = usize::try_from(fuzz.next()).unwrap_or(0) % (sample.len() + 1);
    let len = usize::try_from(fuzz.next() % 4096).unwrap_or(0);
    match round % 6 {
        0 => fuzz.bytes(len),
        1 => sample[..cut].to_vec(),
        2 => {
            let mut v = sample.to_vec();
            for _ in 0..=(fuzz.next() % 8) {
                let at = usize::try_from(fuzz.next()).unwrap_or(0) % v.len().max(1);
                if let Some(b) = v.get_mut(at) {
                    *b = (fuzz.next() & 0xff) as u8;
                }
            }
            v
        }
        3 => [&sample[..cut], &fuzz.bytes(len)[..]].concat(),
        4 => [&sample[..cut], &vec![b'A'; 70_000][..]].concat(),
        _ => Vec::new(),
    }
}

/// Fuzzes one row; `Err` names what went wrong.
fn fuzz_one(entry: &Entry, index: u8) -> Result<usize, String> {
    let node = format!("fuzz-{:02}", index);
    let mut svc = Service::start(
        entry.service,
        &seed(0x60 + index),
        &node,
        "debian",
        entry.env,
    );
    (entry.normal)(&svc).map_err(|e| format!("before fuzzing, a normal exchange failed: {e}"))?;
    let mut fuzz = Fuzz::new(0xf00d + u64::from(index));
    let started = SystemTime::now();
    let mut done = 0;
    for round in 0..CASES {
        if started.elapsed().unwrap_or_default() > BUDGET {
            eprintln!(
                "fuzz: {}: budget spent after {done} of {CASES} cases",
                entry.service
            );
            break;
        }
        let data = case(&mut fuzz, entry.samples, round);
        hit(svc.port, &data, round % 3 != 0);
        done += 1;
    }
    if !svc.alive() {
        return Err("the process exited".to_owned());
    }
    (entry.normal)(&svc)
        .map_err(|e| format!("after {done} cases, a normal exchange failed: {e}"))?;
    Ok(done)
}

#[test]
fn every_service_survives_random_and_truncated_data() {
    if !tool("curl") {
        return;
    }
    let results: Vec<(&str, Result<usize, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = ENTRIES
            .iter()
            .zip(0u8..)
            .filter(|(e, _)| {
                let emulated = is_emulated(e.service);
                if !emulated {
                    eprintln!("fuzz: {} is a stand-in, not fuzzed", e.service);
                }
                emulated
            })
            .map(|(e, i)| (e.service, s.spawn(move || fuzz_one(e, i))))
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| {
                let result = h
                    .join()
                    .unwrap_or_else(|_| Err("the test thread panicked".to_owned()));
                (name, result)
            })
            .collect()
    });
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    for (name, r) in &results {
        if let Ok(n) = r {
            eprintln!("fuzz: {name}: {n} cases survived");
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
