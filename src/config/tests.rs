//! Configuration parsing against an in-memory source: defaults, validation, masking.
use super::*;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<&str, &str> = pairs.iter().copied().collect();
    parse(&map)
}

#[test]
fn defaults_follow_the_state_directory() {
    let c = cfg(&[]).expect("defaults parse");
    assert_eq!(c.home, PathBuf::from("/var/lib/decnet"));
    assert_eq!(c.pki_dir, PathBuf::from("/var/lib/decnet/pki"));
    assert_eq!(c.run_dir, PathBuf::from("/var/lib/decnet/run"));
    assert_eq!(
        c.ingest_log_file,
        PathBuf::from("/var/log/decnet/decnet.log")
    );
    assert_eq!(c.ports.agent, 8765);
    assert_eq!(c.ports.syslog, 6514);
    assert_eq!(
        (c.api.swarmctl_host.as_str(), c.ports.swarmctl),
        ("127.0.0.1", 8770)
    );
    assert!(!c.verify_hostname);
    assert_eq!(c.log_format, LogFormat::Pretty);
    assert_eq!(c.log_filter, "info");

    let c = cfg(&[(HOME, "/tmp/x")]).expect("home parses");
    assert_eq!(c.pki_dir, PathBuf::from("/tmp/x/pki"));
}

#[test]
fn bad_values_name_the_variable() {
    let err = cfg(&[(AGENT_PORT, "99999")]).expect_err("port out of range");
    assert!(err.to_string().contains("DECNET_AGENT_PORT"), "{err}");
    let err = cfg(&[(VERIFY_HOSTNAME, "maybe")]).expect_err("bad bool");
    assert!(err.to_string().contains("DECNET_VERIFY_HOSTNAME"), "{err}");
    let err = cfg(&[(HOME, "relative/dir")]).expect_err("relative path");
    assert!(err.to_string().contains("absolute"), "{err}");
    assert!(cfg(&[(LOG_FORMAT, "xml")]).is_err());
}

#[test]
fn secrets_are_masked_everywhere() {
    let c = cfg(&[(API_TOKEN, "hunter2")]).expect("parses");
    assert_eq!(c.api_token.as_ref().map(Secret::expose), Some("hunter2"));
    assert!(!format!("{c:?}").contains("hunter2"));
    let shown: Vec<_> = c.entries().iter().map(|e| e.shown.clone()).collect();
    assert!(!shown.iter().any(|s| s.contains("hunter2")));
    let entry = c
        .entries()
        .iter()
        .find(|e| e.key == API_TOKEN)
        .expect("token listed");
    assert_eq!(entry.origin, Origin::Env);
}

#[test]
fn bus_socket_follows_the_run_directory() {
    let c = cfg(&[(HOME, "/tmp/x")]).expect("parses");
    assert_eq!(c.bus.socket, PathBuf::from("/tmp/x/run/bus.sock"));
    assert_eq!(c.bus.group, "decnet");
    assert!(c.bus.enabled);
    assert_eq!(c.bus.kind, BusKind::Unix);
    let c = cfg(&[
        (RUN_DIR, "/run/decnet"),
        (BUS_ENABLED, "no"),
        (BUS_TYPE, "fake"),
    ])
    .expect("parses");
    assert_eq!(c.bus.socket, PathBuf::from("/run/decnet/bus.sock"));
    assert!(!c.bus.enabled);
    assert_eq!(c.bus.kind, BusKind::Fake);
    let c = cfg(&[(BUS_SOCKET, "/tmp/b.sock"), (BUS_GROUP, "ops")]).expect("parses");
    assert_eq!(c.bus.socket, PathBuf::from("/tmp/b.sock"));
    assert_eq!(c.bus.group, "ops");
    assert!(cfg(&[(BUS_SOCKET, "bus.sock")]).is_err());
    let err = cfg(&[(BUS_TYPE, "redis")]).expect_err("unknown type");
    assert!(err.to_string().contains("DECNET_BUS_TYPE"), "{err}");
}

#[test]
fn collector_settings_have_defaults_and_validation() {
    let c = cfg(&[]).expect("defaults parse").collector;
    assert_eq!(c.drop_apps.len(), 10);
    assert!(c.drop_apps.iter().any(|a| a == "CRON"));
    assert_eq!(
        c.rl_event_types,
        ["connect", "disconnect", "connection", "accept", "close"]
    );
    assert_eq!(c.rl_window, Some(Duration::from_secs(1)));
    assert_eq!(c.reconcile, Duration::from_secs(30));
    assert_eq!(c.session_ttl, Some(Duration::from_secs(3600)));
    let c = cfg(&[
        (COLLECTOR_DROP_APPS, " cron , ,sudo"),
        (COLLECTOR_RL_EVENT_TYPES, "connect"),
        (COLLECTOR_RL_WINDOW_SEC, "0"),
        (COLLECTOR_RECONCILE_S, "2.5"),
        (COLLECTOR_SESSION_AGG_TTL_SEC, "0"),
    ])
    .expect("parses")
    .collector;
    assert_eq!(c.drop_apps, ["cron", "sudo"]);
    assert_eq!(c.rl_event_types, ["connect"]);
    assert_eq!(c.rl_window, None, "a zero window turns the limit off");
    assert_eq!(c.reconcile, Duration::from_millis(2500));
    assert_eq!(c.session_ttl, None);
    assert_eq!(
        cfg(&[(COLLECTOR_RL_WINDOW_SEC, "-1")])
            .expect("parses")
            .collector
            .rl_window,
        None
    );
    for bad in [
        (COLLECTOR_RL_WINDOW_SEC, "soon"),
        (COLLECTOR_RL_WINDOW_SEC, "NaN"),
        (COLLECTOR_RECONCILE_S, "0"),
        (COLLECTOR_RECONCILE_S, "inf"),
    ] {
        let err = cfg(&[bad]).expect_err("invalid");
        assert!(err.to_string().contains(bad.0), "{err}");
    }
}

#[test]
fn log_shipping_paths_follow_home_and_log_dir() {
    let c = cfg(&[(HOME, "/srv/d"), (LOG_DIR, "/logs")]).expect("parses");
    assert_eq!(c.db_path, PathBuf::from("/srv/d/decnet.db"));
    assert_eq!(c.agent_dir, PathBuf::from("/srv/d/agent"));
    assert_eq!(c.agent_log_file, PathBuf::from("/logs/agent.log"));
    assert_eq!(c.listener_host, "0.0.0.0");
    assert_eq!(c.artifacts_root, PathBuf::from("/srv/d/artifacts"));
    assert_eq!(
        cfg(&[]).expect("defaults").artifacts_root,
        PathBuf::from("/var/lib/decnet/artifacts"),
        "engine.md §2.1's default"
    );
    let c = cfg(&[
        (DB_PATH, "/db/m.db"),
        (AGENT_DIR, "/etc/decnet/agent"),
        (AGENT_LOG_FILE, "/x/a.log"),
        (LISTENER_HOST, "127.0.0.1"),
        (ARTIFACTS_ROOT, "/srv/evidence"),
    ])
    .expect("parses");
    assert_eq!(c.artifacts_root, PathBuf::from("/srv/evidence"));
    assert_eq!(c.db_path, PathBuf::from("/db/m.db"));
    assert_eq!(c.agent_dir, PathBuf::from("/etc/decnet/agent"));
    assert_eq!(c.agent_log_file, PathBuf::from("/x/a.log"));
    assert_eq!(c.listener_host, "127.0.0.1");
    assert!(cfg(&[(AGENT_DIR, "agent")]).is_err());
    assert!(cfg(&[(ARTIFACTS_ROOT, "artifacts")]).is_err());
}

#[test]
fn rust_log_wins_over_decnet_log_level() {
    let c = cfg(&[(LOG_LEVEL, "debug"), (RUST_LOG, "warn")]).expect("parses");
    assert_eq!(c.log_filter, "warn");
    let c = cfg(&[(LOG_LEVEL, "debug"), (VERIFY_HOSTNAME, "yes")]).expect("parses");
    assert_eq!(c.log_filter, "debug");
    assert!(c.verify_hostname);
}

#[test]
fn the_master_fingerprint_is_validated_and_shown() {
    let fp = crate::pki::Fingerprint::of_der(b"master");
    let c = cfg(&[(MASTER_FINGERPRINT, &fp.to_string())]).expect("valid pin");
    assert_eq!(c.master_fingerprint, Some(fp));
    assert!(cfg(&[]).expect("defaults").master_fingerprint.is_none());
    let err = cfg(&[(MASTER_FINGERPRINT, "abc")]).expect_err("short pin");
    assert!(err.to_string().contains(MASTER_FINGERPRINT), "{err}");
    let shown = cfg(&[]).expect("defaults");
    assert!(shown.entries().iter().any(|e| e.key == MASTER_FINGERPRINT));
}

#[test]
fn secret_container_variables_are_known() {
    use crate::catalog::is_secret_env;
    assert!(is_secret_env(DECKY_SEED));
    assert!(is_secret_env("SSH_ROOT_PASSWORD"));
    assert!(is_secret_env("TLS_KEY"));
    assert!(!is_secret_env("SSH_USER"));
    assert!(!is_secret_env(NODE_NAME));
}

#[test]
fn the_decky_seed_is_read_but_never_shown() {
    let seed = "ab".repeat(32);
    let src: HashMap<&str, &str> = [(DECKY_SEED, seed.as_str())].into_iter().collect();
    let config = parse(&src).expect("valid");
    assert_eq!(
        config.decky_seed.as_ref().map(|s| s.expose().len()),
        Some(64)
    );
    let shown = config
        .entries()
        .iter()
        .find(|e| e.key == DECKY_SEED)
        .map(|e| e.shown.clone());
    assert_eq!(shown.as_deref(), Some("********"));
    let env = service_env(&src, &[DECKY_SEED, "REDIS_PASSWORD"]);
    assert_eq!(env.len(), 1);
}

#[test]
fn the_heartbeat_master_falls_back_to_the_swarm_master() {
    let c = cfg(&[]).expect("defaults parse");
    assert_eq!((c.heartbeat_master_host, c.host_uuid), (None, None));
    let c = cfg(&[(MASTER_HOST, "10.0.0.1"), (HOST_UUID, "abc")]).expect("parses");
    assert_eq!(c.heartbeat_master_host.as_deref(), Some("10.0.0.1"));
    assert_eq!(c.host_uuid.as_deref(), Some("abc"));
    let c = cfg(&[(MASTER_HOST, "10.0.0.1"), (HEARTBEAT_MASTER_HOST, "ctl")]).expect("parses");
    assert_eq!(c.heartbeat_master_host.as_deref(), Some("ctl"));
    assert_eq!(c.master_host.as_deref(), Some("10.0.0.1"));
}
