//! Schema migrations, numbered by `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up and is only ever appended
//! to: a released migration is never edited, and changes are additive (new tables, new
//! nullable columns, new or dropped indexes) so an older reader keeps working during an
//! upgrade.
//! Every step runs in an immediate transaction that re-reads the version, so two
//! processes opening the same new database cannot both apply it.
use rusqlite::{Connection, TransactionBehavior};

use super::{Error, Result};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: the `logs` table of engine.md §3.4 plus delivery bookkeeping.
const V1: &str = "
CREATE TABLE logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp   TEXT NOT NULL,
    decky       TEXT NOT NULL,
    service     TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    attacker_ip TEXT NOT NULL,
    raw_line    TEXT NOT NULL,
    fields      TEXT NOT NULL,
    msg         TEXT,
    trace_id    TEXT,
    span_id     TEXT,
    worker      TEXT NOT NULL,
    source      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE UNIQUE INDEX logs_delivery ON logs (worker, source, seq);
CREATE INDEX logs_timestamp ON logs (timestamp);
CREATE INDEX logs_decky ON logs (decky);
CREATE INDEX logs_service ON logs (service);
CREATE INDEX logs_event_type ON logs (event_type);
CREATE INDEX logs_attacker_ip ON logs (attacker_ip);

CREATE TABLE log_sources (
    worker     TEXT NOT NULL,
    source     TEXT NOT NULL,
    last_seq   INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (worker, source)
);

CREATE TABLE allowed_workers (
    name        TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    added_at    TEXT NOT NULL
);
";

/// Version 2: only the indexes the dashboard's queries use (engine.md §3.4, §7.2).
///
/// Every row pays one B-tree insert per index, inside the single writer's transaction,
/// so an index has to earn its place:
/// - `logs_delivery` (unique) is the exactly-once key; the stream cursor is the rowid.
/// - `logs_timestamp` serves the `start_time`/`end_time` range, the histogram buckets and
///   the newest-first order of every page.
/// - `logs_attacker_ip` serves the attacker drill-down: one address is a tiny share of
///   the rows, which an index finds at once and a scan does not.
/// - `decky`, `service` and `event_type` are dropped: a fleet has a few dozen values of
///   each, so one value matches a large share of the rows. A newest-first page filtered
///   on one of them is found faster by walking `logs_timestamp` backwards and skipping
///   (about rows-per-page × values rows read) than by collecting every match through the
///   column's index and sorting it; free-text and `fields.<key>` filters scan anyway.
const V2: &str = "
DROP INDEX IF EXISTS logs_decky;
DROP INDEX IF EXISTS logs_service;
DROP INDEX IF EXISTS logs_event_type;
";

/// Version 3: the master API's accounts (engine.md §7.1) and its key/value `state`
/// (§3.6).
///
/// `tokens_valid_from` is in milliseconds since the epoch: a token whose `iat` is older is
/// dead (password or role changed). `revoked_tokens` holds logged-out token ids until
/// their expiry (seconds), after which the token is dead anyway and the row is pruned.
const V3: &str = "
CREATE TABLE users (
    uuid                 TEXT PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    password_hash        TEXT NOT NULL,
    role                 TEXT NOT NULL,
    must_change_password INTEGER NOT NULL,
    tokens_valid_from    INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    user_uuid  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at TEXT NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

CREATE TABLE state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Version 4: no unique index on `(worker, source, seq)`.
///
/// The writer finds a re-sent line by its source's committed watermark instead (a source's
/// stored lines are always a gap-free prefix, see `logs::insert`), so the index only
/// cost every row one more B-tree insert in the single writer's transaction.
const V4: &str = "DROP INDEX IF EXISTS logs_delivery;";

/// Version 5: background decky operations and their outcome (engine.md §1.10), polled
/// through `/deckies/lifecycle`.
const V5: &str = "
CREATE TABLE decky_lifecycle (
    id           TEXT PRIMARY KEY,
    decky_name   TEXT NOT NULL,
    host_uuid    TEXT,
    operation    TEXT NOT NULL,
    status       TEXT NOT NULL,
    error        TEXT,
    started_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX decky_lifecycle_open ON decky_lifecycle (status, started_at);
";

/// Version 6: what the ingester and profiler derive from `logs` (engine.md §3.5).
///
/// - `credentials`: one row per (attacker, decky, service, kind, secret, principal); a
///   repeat raises `attempt_count`. `attacker_uuid` is set by the profiler in the same
///   transaction, so it is a plain column, not a declared foreign key.
/// - `bounty`: deduplicated on (attacker, type, SHA-256 of the payload text) rather than
///   the payload itself, which keeps the unique index small however long payloads get.
/// - `attackers`: one row per source address. The geo/ASN/RPKI/PTR enrichment and the
///   rotation/IPv6-leak counters of the original are left out until an enrichment source
///   exists; they will be added as nullable columns.
///
/// The ingestion cursor lives in the existing `state` table.
const V6: &str = "
CREATE TABLE credentials (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    attacker_ip      TEXT NOT NULL,
    attacker_uuid    TEXT,
    decky_name       TEXT NOT NULL,
    service          TEXT NOT NULL,
    principal        TEXT,
    principal_key    TEXT NOT NULL,
    secret_kind      TEXT NOT NULL,
    secret_sha256    TEXT NOT NULL,
    secret_b64       TEXT NOT NULL,
    secret_printable TEXT NOT NULL,
    outcome          TEXT,
    fields           TEXT NOT NULL,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    attempt_count    INTEGER NOT NULL
);
CREATE UNIQUE INDEX credentials_identity ON credentials
    (attacker_ip, decky_name, service, secret_kind, secret_sha256, principal_key);
CREATE INDEX credentials_last_seen ON credentials (last_seen);

CREATE TABLE bounty (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp      TEXT NOT NULL,
    decky          TEXT NOT NULL,
    service        TEXT NOT NULL,
    attacker_ip    TEXT NOT NULL,
    bounty_type    TEXT NOT NULL,
    payload        TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL
);
CREATE UNIQUE INDEX bounty_identity ON bounty (attacker_ip, bounty_type, payload_sha256);

CREATE TABLE attackers (
    uuid             TEXT PRIMARY KEY,
    ip               TEXT NOT NULL UNIQUE,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    event_count      INTEGER NOT NULL,
    service_count    INTEGER NOT NULL,
    decky_count      INTEGER NOT NULL,
    services         TEXT NOT NULL,
    deckies          TEXT NOT NULL,
    traversal_path   TEXT,
    is_traversal     INTEGER NOT NULL,
    bounty_count     INTEGER NOT NULL,
    credential_count INTEGER NOT NULL,
    fingerprints     TEXT NOT NULL,
    commands         TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX attackers_last_seen ON attackers (last_seen);
CREATE INDEX attackers_event_count ON attackers (event_count);
";

/// Version 7: attacker commands and fingerprints in append-only child tables, so a batch
/// appends the few entries it found instead of rewriting each touched profile's JSON lists.
///
/// - `attacker_commands`: the newest `MAX_COMMANDS` per attacker, in log order (`id`); the
///   profiler deletes the oldest beyond that. `id` is a plain rowid: only an attacker's
///   oldest rows are deleted, never the table's newest, so ids keep rising.
/// - `attacker_fingerprints`: distinct (type, value) per attacker, first seen first.
/// - `attackers.command_count`: rows in `attacker_commands` of the attacker, so a list page
///   reads only the newest few commands yet reports the count.
///
/// Rows of version 6 move into the new tables; their `commands` and `fingerprints` columns
/// stay (migrations are additive) and hold `[]` from now on.
const V7: &str = "
CREATE TABLE attacker_commands (
    id            INTEGER PRIMARY KEY,
    attacker_uuid TEXT NOT NULL,
    service       TEXT NOT NULL,
    decky         TEXT NOT NULL,
    command       TEXT NOT NULL,
    timestamp     TEXT NOT NULL
);
CREATE INDEX attacker_commands_of ON attacker_commands (attacker_uuid, id);

CREATE TABLE attacker_fingerprints (
    id               INTEGER PRIMARY KEY,
    attacker_uuid    TEXT NOT NULL,
    fingerprint_type TEXT NOT NULL,
    value            TEXT NOT NULL
);
CREATE UNIQUE INDEX attacker_fingerprints_of
    ON attacker_fingerprints (attacker_uuid, fingerprint_type, value);

ALTER TABLE attackers ADD COLUMN command_count INTEGER NOT NULL DEFAULT 0;

INSERT INTO attacker_commands (attacker_uuid, service, decky, command, timestamp)
    SELECT a.uuid, json_extract(c.value, '$.service'), json_extract(c.value, '$.decky'),
           json_extract(c.value, '$.command'), json_extract(c.value, '$.timestamp')
    FROM attackers a, json_each(a.commands) c ORDER BY a.rowid, c.key;
INSERT INTO attacker_fingerprints (attacker_uuid, fingerprint_type, value)
    SELECT a.uuid, json_extract(f.value, '$.fingerprint_type'), json_extract(f.value, '$.value')
    FROM attackers a, json_each(a.fingerprints) f ORDER BY a.rowid, f.key
    ON CONFLICT DO NOTHING;
UPDATE attackers SET command_count = json_array_length(commands),
    commands = '[]', fingerprints = '[]';
";

/// Version 8: the swarm (swarm.md §13): enrolled worker hosts and which host runs which
/// decky. `decky_lifecycle` (version 5) already carries `host_uuid`; it gets the index
/// the heartbeat's "open row of this decky" lookup needs.
///
/// - `swarm_hosts`: one row per enrolled worker; `name` is its certificate CN and
///   `client_cert_fingerprint` the pin every link checks (indexed: the listener asks by
///   name and pin on every connection and recheck).
/// - `decky_shards`: keyed by decky name (names are swarm-wide unique; re-homing a decky
///   overwrites its host). The store deletes a host's shards before the host.
const V8: &str = "
CREATE TABLE swarm_hosts (
    uuid                     TEXT PRIMARY KEY,
    name                     TEXT NOT NULL UNIQUE,
    address                  TEXT NOT NULL,
    agent_port               INTEGER NOT NULL DEFAULT 8765,
    status                   TEXT NOT NULL DEFAULT 'enrolled',
    last_heartbeat           TEXT,
    client_cert_fingerprint  TEXT NOT NULL,
    updater_cert_fingerprint TEXT,
    cert_bundle_path         TEXT NOT NULL,
    enrolled_at              TEXT NOT NULL,
    notes                    TEXT,
    use_ipvlan               INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX swarm_hosts_status ON swarm_hosts (status);
CREATE INDEX swarm_hosts_fingerprint ON swarm_hosts (client_cert_fingerprint);

CREATE TABLE decky_shards (
    decky_name   TEXT PRIMARY KEY,
    host_uuid    TEXT NOT NULL,
    services     TEXT NOT NULL DEFAULT '[]',
    decky_config TEXT,
    decky_ip     TEXT,
    state        TEXT NOT NULL DEFAULT 'pending',
    last_error   TEXT,
    compose_hash TEXT,
    last_seen    TEXT,
    updated_at   TEXT NOT NULL
);
CREATE INDEX decky_shards_host ON decky_shards (host_uuid);
CREATE INDEX decky_shards_state ON decky_shards (state);

CREATE INDEX decky_lifecycle_decky ON decky_lifecycle (decky_name, operation, started_at);
";

/// Every migration, in order; index `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8];

/// Applies the migrations `conn`'s database has not seen yet.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        let applied = usize::try_from(version)
            .map_err(|_| Error::Corrupt(format!("negative schema version {version}")))?;
        let Some(sql) = MIGRATIONS.get(applied) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexes(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master
                 WHERE type = 'index' AND tbl_name = 'logs' AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        stmt.query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(3))
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| panic!("{e}"));
        rows.join("; ")
    }

    #[test]
    fn later_versions_keep_only_the_used_indexes_and_the_rows() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch(V1)?;
        conn.pragma_update(None, "user_version", 1)?;
        conn.execute(
            "INSERT INTO logs (timestamp, decky, service, event_type, attacker_ip, raw_line,
             fields, worker, source, seq, received_at)
             VALUES ('2026-01-01 00:00:00', 'd', 's', 'e', '203.0.113.9', 'raw', '{}',
             'w', 'f', 1, '2026-01-01 00:00:00.000000')",
            [],
        )?;
        migrate(&mut conn)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(indexes(&conn), ["logs_attacker_ip", "logs_timestamp"]);
        let n: i64 = conn.query_row("SELECT count(*) FROM logs", [], |r| r.get(0))?;
        assert_eq!(n, 1);
        Ok(())
    }

    /// The dashboard's page queries (engine.md §3.4, §7.2) still avoid scanning and
    /// sorting the whole table.
    #[test]
    fn dashboard_queries_use_an_index() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        let page = "ORDER BY timestamp DESC LIMIT 50";
        let cases = [
            (format!("SELECT * FROM logs {page}"), "logs_timestamp"),
            (
                format!(
                    "SELECT * FROM logs WHERE timestamp >= '2026' AND timestamp <= '2027' {page}"
                ),
                "logs_timestamp",
            ),
            (
                format!("SELECT * FROM logs WHERE decky = 'd' AND service = 's' {page}"),
                "logs_timestamp",
            ),
            (
                format!("SELECT * FROM logs WHERE event_type = 'e' {page}"),
                "logs_timestamp",
            ),
            (
                format!("SELECT * FROM logs WHERE attacker_ip = '203.0.113.9' {page}"),
                "logs_attacker_ip",
            ),
            (
                "SELECT * FROM logs WHERE id > 7 ORDER BY id LIMIT 50".to_owned(),
                "INTEGER PRIMARY KEY",
            ),
        ];
        for (sql, index) in cases {
            let plan = plan(&conn, &sql);
            assert!(plan.contains(index), "{sql}: {plan}");
        }
        Ok(())
    }

    /// A version 6 profile keeps its commands and fingerprints, in order, in the tables
    /// of version 7.
    #[test]
    fn version_7_moves_profile_lists_into_their_tables() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        for (version, sql) in (1..).zip(&MIGRATIONS[..6]) {
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", version)?;
        }
        let commands = r#"[{"service":"ssh","decky":"d1","command":"id","timestamp":"t1"},
            {"service":"ssh","decky":"d2","command":"uname -a","timestamp":"t2"}]"#;
        let prints = r#"[{"fingerprint_type":"ja4h","value":"b"},
            {"fingerprint_type":"http_useragent","value":"a"}]"#;
        conn.execute(
            "INSERT INTO attackers (uuid, ip, first_seen, last_seen, event_count,
                 service_count, decky_count, services, deckies, traversal_path, is_traversal,
                 bounty_count, credential_count, fingerprints, commands, updated_at)
             VALUES ('u1', '203.0.113.9', 't1', 't2', 5, 1, 2, '[\"ssh\"]',
                 '[\"d1\",\"d2\"]', 'd1 → d2', 1, 2, 0, ?1, ?2, 'now')",
            [prints, commands],
        )?;
        migrate(&mut conn)?;
        let rows = |sql: &str| -> Result<Vec<String>> {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        assert_eq!(
            rows(
                "SELECT attacker_uuid || ' ' || service || ' ' || decky || ' ' || command
                  || ' ' || timestamp FROM attacker_commands ORDER BY id"
            )?,
            ["u1 ssh d1 id t1", "u1 ssh d2 uname -a t2"]
        );
        assert_eq!(
            rows(
                "SELECT attacker_uuid || ' ' || fingerprint_type || ' ' || value
                  FROM attacker_fingerprints ORDER BY id"
            )?,
            ["u1 ja4h b", "u1 http_useragent a"]
        );
        assert_eq!(
            rows(
                "SELECT command_count || ' ' || commands || ' ' || fingerprints
                  FROM attackers"
            )?,
            ["2 [] []"]
        );
        Ok(())
    }
}
