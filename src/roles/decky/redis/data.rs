//! What the fake redis knows: its version, `INFO`, the `CONFIG GET` subset, and a
//! keyspace of plausible session and cache keys, all derived from the decky's persona so
//! two deckies never show the same run id, keys or counters.
use std::collections::BTreeMap;

use super::super::Persona;

/// The redis release claimed and what it changes in the replies.
#[derive(Debug, Clone)]
pub struct Version {
    /// `redis_version`, e.g. `7.0.15`.
    pub text: String,
    /// (major, minor).
    pub major_minor: (u32, u32),
}

impl Version {
    /// Parses `text`; anything unreadable counts as 7.0.
    pub fn new(text: &str) -> Version {
        let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let major = parts.next().unwrap_or(7);
        let minor = parts.next().unwrap_or(0);
        Version {
            text: text.to_owned(),
            major_minor: (major, minor),
        }
    }

    /// Whether this release has ACLs (6.0+: `WRONGPASS`, two-argument AUTH).
    pub fn has_acl(&self) -> bool {
        self.major_minor.0 >= 6
    }
}

/// The keyspace: name → value, from the seed.
pub fn keyspace(p: &Persona) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut keys = BTreeMap::new();
    let sessions = 3 + p.number("redis-sessions", 9);
    for i in 0..sessions {
        let id = p.hex(&format!("redis-session-{i}"), 32);
        let user = 1000 + p.number(&format!("redis-session-user-{i}"), 9000);
        let ts = 1_730_000_000 + p.number(&format!("redis-session-ts-{i}"), 20_000_000);
        let csrf = p.hex(&format!("redis-session-csrf-{i}"), 40);
        keys.insert(
            format!("sess:{id}").into_bytes(),
            format!("{{\"user_id\":{user},\"csrf\":\"{csrf}\",\"last_seen\":{ts}}}").into_bytes(),
        );
    }
    let cached = 2 + p.number("redis-cache", 6);
    for i in 0..cached {
        let user = 1000 + p.number(&format!("redis-cache-user-{i}"), 9000);
        keys.insert(
            format!("cache:user:{user}").into_bytes(),
            format!(
                "{{\"id\":{user},\"name\":\"user{user}\",\"plan\":\"{}\"}}",
                p.pick(&format!("redis-plan-{i}"), &["free", "pro", "team"])
            )
            .into_bytes(),
        );
    }
    let app = p.pick("redis-app", &["app", "web", "api", "shop"]);
    keys.insert(
        format!("{app}:config:feature_flags").into_bytes(),
        b"{\"new_checkout\":false,\"beta_dashboard\":true}".to_vec(),
    );
    keys.insert(
        format!("{app}:rate:login").into_bytes(),
        (p.number("redis-rate", 300)).to_string().into_bytes(),
    );
    keys.insert(
        b"queue:mail:pending".to_vec(),
        p.number("redis-queue", 40).to_string().into_bytes(),
    );
    keys
}

/// `CONFIG GET` values: a realistic subset of redis.conf for this persona.
pub fn config(p: &Persona, version: &Version) -> Vec<(&'static str, String)> {
    let maxmemory = p.pick(
        "redis-maxmemory",
        &["0", "268435456", "536870912", "1073741824"],
    );
    vec![
        ("bind", "* -::*".into()),
        ("port", "6379".into()),
        ("protected-mode", "no".into()),
        ("timeout", "0".into()),
        ("tcp-keepalive", "300".into()),
        ("daemonize", "no".into()),
        ("databases", "16".into()),
        ("dir", "/var/lib/redis".into()),
        ("dbfilename", "dump.rdb".into()),
        (
            "save",
            if version.major_minor.0 >= 7 {
                "3600 1 300 100 60 10000"
            } else {
                "900 1 300 10 60 10000"
            }
            .into(),
        ),
        ("appendonly", "no".into()),
        ("appendfilename", "appendonly.aof".into()),
        ("maxmemory", (*maxmemory).to_owned()),
        ("maxmemory-policy", "noeviction".into()),
        ("maxclients", "10000".into()),
        ("requirepass", String::new()),
        ("logfile", "/var/log/redis/redis-server.log".into()),
        ("loglevel", "notice".into()),
        ("slowlog-log-slower-than", "10000".into()),
        ("slave-read-only", "yes".into()),
        ("replica-read-only", "yes".into()),
    ]
}

/// What `INFO` reports besides the persona: the build and the live counters.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The release claimed.
    pub version: &'a Version,
    /// The `os:` line.
    pub os: &'a str,
    /// The `gcc_version:` line.
    pub gcc: &'a str,
    /// Seconds this process has run (added to a seeded uptime).
    pub uptime: u64,
    /// Connected clients now.
    pub clients: usize,
    /// Keys in db0.
    pub keys: usize,
}

/// The `INFO` text (all sections, or the one named).
pub fn info(p: &Persona, facts: &Facts<'_>, section: Option<&str>) -> String {
    let Facts {
        version,
        os,
        gcc,
        uptime,
        clients,
        keys,
    } = *facts;
    let base_uptime = 86_400 * (3 + p.number("redis-uptime-days", 200));
    let up = base_uptime + uptime;
    let pid = 400 + p.number("redis-pid", 3000);
    let used = 850_000 + p.number("redis-used-memory", 2_000_000) + 600 * keys as u64;
    let rss = used * 3 + 4_000_000;
    let peak = used + p.number("redis-peak", 900_000);
    let sections: Vec<(&str, String)> = vec![
        (
            "Server",
            format!(
                "redis_version:{v}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:{build}\r\nredis_mode:standalone\r\nos:{os}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:{gcc}\r\nprocess_id:{pid}\r\nprocess_supervised:systemd\r\nrun_id:{run}\r\ntcp_port:6379\r\nserver_time_usec:{now}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{days}\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:{lru}\r\nexecutable:/usr/bin/redis-server\r\nconfig_file:/etc/redis/redis.conf\r\nio_threads_active:0\r\n",
                v = version.text,
                build = p.hex("redis-build-id", 16),
                run = p.hex("redis-run-id", 40),
                now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000,
                days = up / 86_400,
                lru = (time::OffsetDateTime::now_utc().unix_timestamp() as u64) % 16_777_216,
            ),
        ),
        (
            "Clients",
            format!(
                "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:10000\r\nclient_recent_max_input_buffer:20480\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                clients + usize::try_from(p.number("redis-clients", 4)).unwrap_or(0)
            ),
        ),
        (
            "Memory",
            format!(
                "used_memory:{used}\r\nused_memory_human:{:.2}M\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{:.2}M\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{:.2}M\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:jemalloc-5.3.0\r\n",
                used as f64 / 1_048_576.0,
                rss as f64 / 1_048_576.0,
                peak as f64 / 1_048_576.0,
                rss as f64 / used as f64,
            ),
        ),
        (
            "Persistence",
            format!(
                "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n",
                p.number("redis-changes", 50),
                time::OffsetDateTime::now_utc().unix_timestamp()
                    - i64::try_from(p.number("redis-last-save", 3600)).unwrap_or(0)
            ),
        ),
        (
            "Stats",
            format!(
                "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\nrejected_connections:0\r\nexpired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:0\r\n",
                up / 40 + p.number("redis-conns", 500),
                up * 3 + p.number("redis-cmds", 10_000),
                p.number("redis-ops", 12),
                up / 90,
                up * 2,
                up / 7,
            ),
        ),
        (
            "Replication",
            format!(
                "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n",
                p.hex("redis-replid", 40)
            ),
        ),
        (
            "CPU",
            format!(
                "used_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n",
                up as f64 / 1900.0,
                up as f64 / 1400.0
            ),
        ),
        (
            "Keyspace",
            format!("db0:keys={keys},expires=0,avg_ttl=0\r\n"),
        ),
    ];
    let wanted = section.map(str::to_ascii_lowercase);
    let mut out = String::new();
    for (name, body) in sections {
        let all = matches!(
            wanted.as_deref(),
            None | Some("all" | "everything" | "default")
        );
        if all || wanted.as_deref() == Some(&name.to_ascii_lowercase()) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            out.push_str(&format!("# {name}\r\n{body}"));
        }
    }
    out
}

/// Whether `name` matches the redis glob `pattern` (`*`, `?`, `[...]`, `\`).
pub fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..]))
        }
        (None, Some(_)) | (Some(_), None) => false,
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(b'['), Some(&c)) => match pattern.iter().position(|b| *b == b']') {
            Some(end) if end > 1 => {
                let set = &pattern[1..end];
                let (negate, set) = match set.first() {
                    Some(b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && glob(&pattern[end + 1..], &name[1..])
            }
            _ => c == b'[' && glob(&pattern[1..], &name[1..]),
        },
        (Some(b'\\'), Some(&c)) if pattern.len() > 1 => {
            pattern[1] == c && glob(&pattern[2..], &name[1..])
        }
        (Some(&p), Some(&c)) => p == c && glob(&pattern[1..], &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::decky::persona::tests::persona;

    #[test]
    fn globs_like_redis() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"sess:*", b"sess:abc"));
        assert!(!glob(b"sess:*", b"cache:x"));
        assert!(glob(b"h?llo", b"hello"));
        assert!(glob(b"h[ae]llo", b"hallo"));
        assert!(!glob(b"h[^e]llo", b"hello"));
        assert!(glob(b"h[a-c]llo", b"hbllo"));
        assert!(glob(b"a\\*", b"a*"));
    }

    #[test]
    fn keyspace_and_info_follow_the_seed() {
        let a = persona(3, "debian");
        assert_eq!(keyspace(&a), keyspace(&persona(3, "debian")));
        assert_ne!(keyspace(&a), keyspace(&persona(4, "debian")));
        let v = Version::new("7.0.15");
        let mut facts = Facts {
            version: &v,
            os: "Linux 6.1.0-28-amd64 x86_64",
            gcc: "12.2.0",
            uptime: 5,
            clients: 1,
            keys: 9,
        };
        let text = info(&a, &facts, None);
        assert!(
            text.starts_with("# Server\r\nredis_version:7.0.15\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\n\r\n# Keyspace\r\ndb0:keys=9,"));
        facts.os = "os";
        let one = info(&a, &facts, Some("keyspace"));
        assert!(one.starts_with("# Keyspace"));
        assert!(!Version::new("5.0.7").has_acl());
    }
}
