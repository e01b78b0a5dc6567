//! Where collected lines go: the raw log, its `.json` sibling and the bus.
//!
//! One writer owns both files, the filter and the read positions, and runs on a blocking
//! thread fed by a bounded channel from the followers: appends are ordinary synchronous
//! writes, a slow disk back-pressures the followers (and, through Docker, nobody else),
//! and lines of one container stay in order. For each line, in this order:
//! 1. parse it (engine.md §3.2); a line that does not parse is appended to the raw log
//!    `F` as it is and stops here;
//! 2. attribute it to the container's decky ([`super::provenance`]): a line claiming
//!    another HOSTNAME is rewritten and flagged; then append it to `F` (the record the
//!    forwarder ships: every line);
//! 3. run the [`Filter`]; an admitted event is appended to `F.json` as one JSON object
//!    and published on `system.log`, and feeds the session aggregator ([`super::session`]);
//! 4. record the container's read position (see [`super::cursor`]).
//!
//! Before every append the file's path is checked against the open file's device and
//! inode; when logrotate moved it away or someone deleted it, the file is re-opened
//! (created with mode 0640), so no line goes to a file nobody reads.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::cursor::Cursors;
use super::error::Error;
use super::filter::{Filter, Verdict};
use super::follow::Msg;
use super::provenance::{HOSTNAME_MISMATCH, attribute};
use super::session::Sessions;
use crate::bus::{Bus, publish_safely, topics};
use crate::syslog::{Event, parse};

/// Counters of what the writer did, for the health heartbeat and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Lines appended to the raw log.
    pub lines: u64,
    /// Lines that are not RFC 5424 (raw log only).
    pub unparsed: u64,
    /// Events written to `.json` and published.
    pub admitted: u64,
    /// Events whose APP-NAME is on the drop list.
    pub dropped: u64,
    /// Events held back by the rate limit.
    pub rate_limited: u64,
    /// Lines whose HOSTNAME was not their container's decky (rewritten and flagged).
    pub mismatched: u64,
}

/// `F` with its extension replaced by `.json` (`decnet.log` → `decnet.json`).
pub fn json_path(log_file: &Path) -> Result<PathBuf, Error> {
    let json = log_file.with_extension("json");
    if json == log_file {
        return Err(Error::LogFileName(log_file.to_owned()));
    }
    Ok(json)
}

/// `F` with its extension replaced by `.cursors`, where read positions are saved.
pub fn cursor_path(log_file: &Path) -> PathBuf {
    log_file.with_extension("cursors")
}

/// A file opened for appending that follows its path across rotation.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    open: Option<(File, (u64, u64))>,
}

impl LogFile {
    fn new(path: PathBuf) -> Self {
        Self { path, open: None }
    }

    /// The open file, re-opened first if the path now names another file (or none).
    fn file(&mut self) -> Result<&mut File, Error> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let current = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let fresh = matches!(&self.open, Some((_, id)) if Some(*id) == current);
        if !fresh {
            if let Some(parent) = self.path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(&self.path)
                .map_err(io)?;
            let meta = file.metadata().map_err(io)?;
            self.open = Some((file, (meta.dev(), meta.ino())));
        }
        self.open
            .as_mut()
            .map(|(file, _)| file)
            .ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))
    }

    /// Appends `line` and a newline in one write.
    fn append(&mut self, line: &str) -> Result<(), Error> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file()?.write_all(&bytes).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The raw log, its `.json` sibling, the filter and the bus, written in one place.
#[derive(Debug)]
pub struct Sink {
    raw: LogFile,
    json: LogFile,
    filter: Filter,
    bus: Option<Arc<dyn Bus>>,
    sessions: Option<Sessions>,
    stats: Stats,
}

impl Sink {
    /// A sink writing `log_file` and its `.json` sibling, both opened (and created, with
    /// their directory) now, so a path the process cannot write fails at start.
    pub fn new(log_file: &Path, filter: Filter, bus: Option<Arc<dyn Bus>>) -> Result<Self, Error> {
        Self::with_sessions(log_file, filter, bus, None)
    }

    /// Like [`Sink::new`], also summarising shell sessions (kept for `session_ttl`) on
    /// `attacker.session.ended` when there is a bus.
    pub fn with_sessions(
        log_file: &Path,
        filter: Filter,
        bus: Option<Arc<dyn Bus>>,
        session_ttl: Option<Duration>,
    ) -> Result<Self, Error> {
        let mut raw = LogFile::new(log_file.to_owned());
        let mut json = LogFile::new(json_path(log_file)?);
        raw.file()?;
        json.file()?;
        let sessions = session_ttl.filter(|_| bus.is_some()).map(Sessions::new);
        Ok(Self {
            raw,
            json,
            filter,
            bus,
            sessions,
            stats: Stats::default(),
        })
    }

    /// What was written so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Writes one line of decky `decky`'s container seen at `now`: raw log (attributed to
    /// `decky`, see [`attribute`]), then (parsed and admitted) `.json` and bus. Returns the
    /// filter's verdict, or `None` for a line that is not RFC 5424.
    pub fn write(
        &mut self,
        line: &str,
        decky: &str,
        now: Instant,
    ) -> Result<Option<Verdict>, Error> {
        let Ok(event) = parse(line) else {
            self.raw.append(line)?;
            self.stats.lines += 1;
            self.stats.unparsed += 1;
            return Ok(None);
        };
        let event = attribute(event, decky);
        self.raw.append(&event.raw)?;
        self.stats.lines += 1;
        if event.fields.contains(HOSTNAME_MISMATCH) {
            self.stats.mismatched += 1;
        }
        let verdict = self.filter.check(&event, now);
        match verdict {
            Verdict::Dropped => self.stats.dropped += 1,
            Verdict::RateLimited => self.stats.rate_limited += 1,
            Verdict::Admit => {
                self.json.append(&to_json(&event).to_string())?;
                self.stats.admitted += 1;
                let payload = json!({
                    "decky": event.decky,
                    "service": event.service,
                    "event_type": event.event_type,
                    "attacker_ip": event.attacker_ip_or_unknown(),
                    "timestamp": event.timestamp.display(),
                });
                publish_safely(
                    self.bus.as_deref(),
                    topics::SYSTEM_LOG,
                    &payload,
                    &event.event_type,
                );
                if let Some(ended) = self.sessions.as_mut().and_then(|s| s.observe(&event, now)) {
                    publish_safely(
                        self.bus.as_deref(),
                        topics::ATTACKER_SESSION_ENDED,
                        &ended,
                        "session_ended",
                    );
                }
            }
        }
        Ok(Some(verdict))
    }
}

/// The `.json` object of engine.md §3.2: what the ingester reads. `msg` is `null` when the
/// line has no free text.
pub fn to_json(event: &Event) -> serde_json::Value {
    json!({
        "timestamp": event.timestamp.display(),
        "decky": event.decky,
        "service": event.service,
        "event_type": event.event_type,
        "attacker_ip": event.attacker_ip_or_unknown(),
        "fields": event.fields,
        "msg": event.msg,
        "raw_line": event.raw,
    })
}

/// The writer loop: runs until every sender is gone, then saves the positions.
///
/// A write error (full disk, a directory that vanished) is logged once per distinct message
/// in a row and costs that line; the collector keeps going and resumes writing as soon as
/// the file can be opened again, rather than stopping every follower.
pub fn write_loop(mut sink: Sink, cursors: Cursors, mut rx: mpsc::Receiver<Msg>) -> Stats {
    let mut last_error: Option<String> = None;
    let mut report = |result: Result<(), Error>| match result {
        Ok(()) => last_error = None,
        Err(e) => {
            let text = e.to_string();
            if last_error.as_deref() != Some(&text) {
                tracing::error!("collector: {text}");
                last_error = Some(text);
            }
        }
    };
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Line {
                container,
                decky,
                line,
                position,
            } => {
                let written = sink.write(&line, &decky, Instant::now());
                if let (Ok(_), Some(p)) = (&written, position) {
                    cursors.set(&container, p);
                }
                report(written.map(drop));
            }
            Msg::Flush => report(cursors.save()),
            Msg::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
    report(cursors.save());
    sink.stats()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;
    use crate::config::CollectorConfig;

    const CONNECT: &str = r#"<134>1 2026-11-29T12:00:00.000001+00:00 decky-01 redis - connect [relay@55555 src_ip="192.0.2.7" src_port="5000"]"#;

    fn filter() -> Filter {
        Filter::new(&CollectorConfig {
            drop_apps: vec!["sshd".into()],
            rl_event_types: vec!["connect".into()],
            rl_window: Some(Duration::from_secs(60)),
            reconcile: Duration::from_secs(30),
            session_ttl: None,
        })
    }

    fn read(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn raw_gets_everything_json_and_bus_get_admitted_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("logs/decnet.log");
        let bus = LocalBus::new();
        let mut all = bus.subscribe(">").expect("subscribe");
        let mut sink = Sink::new(&log, filter(), Some(Arc::new(bus.clone()))).expect("sink");
        let sshd = "<38>1 2026-11-29T12:00:00Z decky-01 sshd - - - Accepted password";
        for (line, verdict) in [
            (CONNECT, Some(Verdict::Admit)),
            (CONNECT, Some(Verdict::RateLimited)),
            (sshd, Some(Verdict::Dropped)),
            ("not syslog at all", None),
        ] {
            assert_eq!(
                sink.write(line, "decky-01", Instant::now()).expect("write"),
                verdict
            );
        }
        assert_eq!(read(&log), [CONNECT, CONNECT, sshd, "not syslog at all"]);
        let json = read(&dir.path().join("logs/decnet.json"));
        assert_eq!(json.len(), 1);
        let obj: serde_json::Value = serde_json::from_str(&json[0]).expect("json");
        assert_eq!(
            obj,
            json!({
                "timestamp": "2026-11-29 12:00:00",
                "decky": "decky-01",
                "service": "redis",
                "event_type": "connect",
                "attacker_ip": "192.0.2.7",
                "fields": {"src_ip": "192.0.2.7", "src_port": "5000"},
                "msg": null,
                "raw_line": CONNECT,
            })
        );
        let published: Vec<_> = std::iter::from_fn(|| all.try_recv()).collect();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].topic, topics::SYSTEM_LOG);
        let body = published[0].envelope().expect("envelope");
        assert_eq!(body.event_type, "connect");
        assert_eq!(
            body.payload,
            json!({"decky": "decky-01", "service": "redis", "event_type": "connect",
                   "attacker_ip": "192.0.2.7", "timestamp": "2026-11-29 12:00:00"})
        );
        assert_eq!(
            sink.stats(),
            Stats {
                lines: 4,
                unparsed: 1,
                admitted: 1,
                dropped: 1,
                rate_limited: 1,
                mismatched: 0,
            }
        );
    }

    #[test]
    fn a_line_claiming_another_decky_is_stored_under_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("decnet.log");
        let bus = LocalBus::new();
        let mut all = bus.subscribe(">").expect("subscribe");
        let mut sink = Sink::new(&log, filter(), Some(Arc::new(bus.clone()))).expect("sink");
        let forged = CONNECT.replace("decky-01", "decky-02");
        sink.write(&forged, "decky-01", Instant::now())
            .expect("write");
        let raw = read(&log);
        let stored = parse(&raw[0]).expect("the raw log holds RFC 5424");
        assert_eq!(stored.decky, "decky-01", "{}", raw[0]);
        assert_eq!(stored.fields.get("claimed_hostname"), Some("decky-02"));
        assert_eq!(stored.fields.get("hostname_mismatch"), Some("true"));
        let json: serde_json::Value =
            serde_json::from_str(&read(&dir.path().join("decnet.json"))[0]).expect("json");
        assert_eq!(json["decky"], "decky-01");
        assert_eq!(json["fields"]["claimed_hostname"], "decky-02");
        assert_eq!(json["raw_line"], raw[0].as_str());
        let published = all
            .try_recv()
            .expect("published")
            .envelope()
            .expect("envelope");
        assert_eq!(published.payload["decky"], "decky-01");
        assert_eq!(sink.stats().mismatched, 1);
    }

    #[test]
    fn a_recorded_session_is_summarised_on_the_bus() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bus = LocalBus::new();
        let mut ended = bus
            .subscribe(topics::ATTACKER_SESSION_ENDED)
            .expect("subscribe");
        let mut sink = Sink::with_sessions(
            &dir.path().join("decnet.log"),
            filter(),
            Some(Arc::new(bus.clone())),
            Some(Duration::from_secs(3600)),
        )
        .expect("sink");
        for line in [
            "<14>1 2026-11-29T12:00:01Z d1 bash - - - CMD uid=0 user=root src=192.0.2.9 pwd=/ cmd=id",
            r#"<134>1 2026-11-29T12:00:09Z d1 sessrec - session_recorded [relay@55555 sid="7" src_ip="192.0.2.9"]"#,
        ] {
            sink.write(line, "d1", Instant::now()).expect("write");
        }
        let ended: Vec<_> = std::iter::from_fn(|| ended.try_recv())
            .filter_map(|m| m.envelope().ok())
            .collect();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].payload["session_id"], "7");
        assert_eq!(ended[0].payload["commands"][0]["command_text"], "id");
    }

    #[test]
    fn a_rotated_or_deleted_file_is_reopened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("decnet.log");
        let mut sink = Sink::new(&log, filter(), None).expect("sink");
        sink.write("one", "d1", Instant::now()).expect("write");
        std::fs::rename(&log, dir.path().join("decnet.log.1")).expect("rotate");
        sink.write("two", "d1", Instant::now()).expect("write");
        assert_eq!(read(&dir.path().join("decnet.log.1")), ["one"]);
        assert_eq!(read(&log), ["two"]);
        std::fs::remove_file(&log).expect("delete");
        sink.write("three", "d1", Instant::now()).expect("write");
        assert_eq!(read(&log), ["three"]);
        assert_eq!(crate::fsutil::mode_of(&log).expect("mode") & 0o137, 0);
    }

    #[test]
    fn an_unwritable_log_fails_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"").expect("write");
        let err = Sink::new(&blocker.join("decnet.log"), filter(), None).expect_err("refused");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn sibling_names() {
        let p = Path::new("/var/log/decnet/decnet.log");
        assert_eq!(
            json_path(p).ok(),
            Some(PathBuf::from("/var/log/decnet/decnet.json"))
        );
        assert_eq!(
            cursor_path(p),
            PathBuf::from("/var/log/decnet/decnet.cursors")
        );
        assert_eq!(
            json_path(Path::new("/x/events")).ok(),
            Some(PathBuf::from("/x/events.json"))
        );
        assert!(json_path(Path::new("/x/events.json")).is_err());
    }
}
