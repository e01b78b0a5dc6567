//! The master's swarm controller over real sockets: operator gate, enrolment, heartbeat
//! pins, liveness, lifecycle deltas, decommission, rate limits and sharded dispatch
//! against fake agents, all with certificates issued by the real CA code.
mod swarm_common;
mod util;

use decnet::pki::Bundle;
use decnet::roles::master::swarm;
use serde_json::{Value, json};
use swarm_common::{bind, decky, detail, fake_agent, fleet, mtls, plain, rig};

#[tokio::test]
async fn operator_routes_need_an_admin_and_an_operator_transport_and_enrolment_is_once() {
    let r = rig(true).await;
    let (code, v) = plain(r.plain, "GET", "/swarm/health", None, None).await;
    assert_eq!(
        (code, v.clone()),
        (200, json!({"status": "ok", "role": "swarm-controller"}))
    );
    let (code, _) = mtls(&r.master, r.tls, "GET", "/health", None, None).await;
    assert_eq!(code, 200);

    let (code, v) = plain(r.plain, "GET", "/swarm/hosts", None, None).await;
    assert_eq!(code, 401, "{v}");
    let (code, v) = plain(r.plain, "GET", "/swarm/hosts", Some(&r.token), None).await;
    assert_eq!((code, v), (200, json!([])));

    let (code, v) = r.enroll("w1", 8765).await;
    assert_eq!(code, 201, "{v}");
    let uuid = v["host_uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(v["name"], "w1");
    assert!(
        v["worker_key_pem"]
            .as_str()
            .is_some_and(|k| k.contains("PRIVATE KEY"))
    );
    assert!(v["updater"].is_null());
    assert_eq!(
        v["master_fingerprint"],
        json!(r.master.fingerprint().to_string())
    );
    let ctl_pin = r
        .state
        .swarm
        .controller_pin()
        .expect("controller pin")
        .to_string();
    assert_eq!(v["swarmctl_fingerprint"], json!(ctl_pin));
    let dir = r.layout.bundle_dir(decnet::pki::Kind::Worker, "w1");
    assert_eq!(
        decnet::pki::read_swarmctl_pin(&dir)
            .expect("pin file")
            .map(|p| p.to_string()),
        Some(ctl_pin)
    );
    let worker = Bundle::load(&dir, "worker").expect("bundle");
    assert_eq!(v["fingerprint"], json!(worker.fingerprint().to_string()));

    let (code, v) = r.enroll("w1", 8765).await;
    assert_eq!(
        (code, detail(&v)),
        (409, "Worker 'w1' is already enrolled".into())
    );
    let (code, v) = r.enroll("-bad", 8765).await;
    assert_eq!(code, 422);
    assert!(detail(&v).starts_with("name:"), "{v}");
    let (code, v) = plain(
        r.plain,
        "POST",
        "/swarm/enroll",
        Some(&r.token),
        Some(&json!({"name": "w9"})),
    )
    .await;
    assert_eq!(code, 422);
    assert!(detail(&v).contains("address"), "{v}");
    let body = json!({"name": "w9", "address": "127.0.0.1", "agent_port": 70000});
    let (code, v) = plain(
        r.plain,
        "POST",
        "/swarm/enroll",
        Some(&r.token),
        Some(&body),
    )
    .await;
    assert_eq!(code, 422);
    assert!(detail(&v).contains("agent_port"), "{v}");
    let body = json!({"name": "w9", "address": "127.0.0.1", "issue_updater_bundle": true});
    let (code, v) = plain(
        r.plain,
        "POST",
        "/swarm/enroll",
        Some(&r.token),
        Some(&body),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert!(
        v["updater"]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.len() == 64)
    );

    let (code, v) = plain(r.plain, "GET", "/swarm/hosts", Some(&r.token), None).await;
    assert_eq!(code, 200);
    let names: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(names, ["w1", "w9"]);
    assert!(v[0].get("cert_bundle_path").is_none());
    let (code, v) = plain(
        r.plain,
        "GET",
        "/swarm/hosts?host_status=active",
        Some(&r.token),
        None,
    )
    .await;
    assert_eq!((code, v), (200, json!([])));
    let (code, v) = plain(
        r.plain,
        "GET",
        &format!("/swarm/hosts/{uuid}"),
        Some(&r.token),
        None,
    )
    .await;
    assert_eq!((code, v["status"].clone()), (200, json!("enrolled")));
    let (code, v) = plain(r.plain, "GET", "/swarm/hosts/nope", Some(&r.token), None).await;
    assert_eq!((code, detail(&v)), (404, "host not found".into()));

    // Over TLS the client certificate decides: the master identity may, a worker may not.
    let (code, _) = mtls(
        &r.master,
        r.tls,
        "GET",
        "/swarm/hosts",
        Some(&r.token),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let (code, v) = mtls(&worker, r.tls, "GET", "/swarm/hosts", Some(&r.token), None).await;
    assert_eq!(
        (code, detail(&v)),
        (403, "operator certificate required".into())
    );
    let (code, _) = mtls(&worker, r.tls, "GET", "/swarm/hosts", None, None).await;
    assert_eq!(code, 401, "the JWT is checked first");

    let (code, v) = plain(
        r.api,
        "GET",
        "/api/v1/system/deployment-mode",
        Some(&r.token),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        (v["mode"].clone(), v["swarm_host_count"].clone()),
        (json!("swarm"), json!(2))
    );
}

#[tokio::test]
async fn heartbeats_prove_their_host_by_pin_and_stop_at_decommission() {
    let r = rig(true).await;
    let (u1, w1) = r.enrolled("w1", 1).await;
    let (u2, w2) = r.enrolled("w2", 1).await;

    let (code, v) = r.beat(&w1, &u1, json!({})).await;
    assert_eq!(code, 204, "{v}");
    let (code, v) = r.beat(&w2, &u1, json!({})).await;
    assert_eq!(
        (code, detail(&v)),
        (403, "cert fingerprint mismatch".into())
    );
    let (code, v) = r.beat(&w1, "no-such-host", json!({})).await;
    assert_eq!((code, detail(&v)), (404, "unknown host".into()));
    let body = json!({"host_uuid": u1, "status": {"deployed": false}});
    let (code, v) = plain(r.plain, "POST", "/swarm/heartbeat", None, Some(&body)).await;
    assert_eq!((code, detail(&v)), (403, "peer cert unavailable".into()));
    let (code, v) = mtls(
        &w1,
        r.tls,
        "POST",
        "/swarm/heartbeat",
        None,
        Some(&json!({"status": {}})),
    )
    .await;
    assert_eq!(code, 422);
    assert!(detail(&v).contains("host_uuid"), "{v}");
    // A big snapshot (200 deckies, ~100 KiB) is within the heartbeat's own body limit;
    // an absurd one is refused.
    let many: Vec<Value> = (0..200)
        .map(|i| decky(&format!("big-{i}"), "203.0.113.9", None))
        .collect();
    let (code, v) = r
        .beat(
            &w2,
            &u2,
            json!({"status": {"deployed": false, "deckies": many}}),
        )
        .await;
    assert_eq!(code, 204, "{v}");
    let huge = "x".repeat(5 * 1024 * 1024);
    let (code, _) = r.beat(&w2, &u2, json!({"pad": huge})).await;
    assert_eq!(code, 413);
    r.until("host active", |_| {
        r.host_status(&u1).as_deref() == Some("active")
    })
    .await;

    // Lifecycle: the worker's report finishes the open row of that decky on that host.
    r.store
        .create_lifecycle("deploy", Some(&u1), &[("op-1".into(), "web-1".into())])
        .expect("row");
    let status = json!({"deployed": true,
        "deckies": [decky("web-1", "203.0.113.5", None), decky("db-2", "203.0.113.6", None), {"name": "junk"}],
        "runtime": {"web-1": {"running": true, "services": {"ssh": "running"}}}});
    let delta = json!([{"decky_name": "web-1", "operation": "deploy", "status": "succeeded",
        "completed_at": "2026-01-02T03:04:05Z"}, {"bogus": true}]);
    let mut events = r.state.swarm.bus().subscribe("decky.>").expect("subscribe");
    let (code, v) = r
        .beat(&w1, &u1, json!({"status": status, "lifecycle": delta}))
        .await;
    assert_eq!(code, 204, "{v}");
    let event = events.try_recv().expect("lifecycle event");
    assert_eq!(event.topic, "decky.web-1.lifecycle");
    let payload = event.envelope().expect("envelope").payload;
    assert_eq!(
        (payload["lifecycle_id"].clone(), payload["status"].clone()),
        (json!("op-1"), json!("succeeded"))
    );
    let row = r
        .store
        .reader()
        .expect("reader")
        .lifecycle_row("op-1")
        .expect("q")
        .expect("row");
    assert_eq!(row.status, "succeeded");
    assert_eq!(
        row.completed_at.as_deref(),
        Some("2026-01-02 03:04:05.000000")
    );
    r.until("shards", |s| {
        s.reader().expect("r").shards(Some(&u1)).expect("q").len() == 2
    })
    .await;
    let shards = r.store.reader().expect("r").shards(Some(&u1)).expect("q");
    let states: Vec<(&str, &str)> = shards
        .iter()
        .map(|s| (s.decky_name.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(states, [("db-2", "degraded"), ("web-1", "running")]);
    let (code, v) = plain(
        r.plain,
        "GET",
        &format!("/swarm/deckies?host_uuid={u1}&state=running"),
        Some(&r.token),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (v[0]["host_name"].clone(), v[0]["hostname"].clone()),
        (json!("w1"), json!("web-1-h"))
    );

    // Liveness: silence past the window is unreachable; the next beat is active again.
    r.until("host unreachable", |_| {
        r.host_status(&u1).as_deref() == Some("unreachable")
    })
    .await;
    let (code, _) = r.beat(&w1, &u1, json!({})).await;
    assert_eq!(code, 204);
    r.until("host active again", |_| {
        r.host_status(&u1).as_deref() == Some("active")
    })
    .await;

    // Decommission: 204, then the heartbeat is 404 and the listener refuses its logs.
    let (code, v) = plain(
        r.plain,
        "DELETE",
        &format!("/swarm/hosts/{u1}"),
        Some(&r.token),
        None,
    )
    .await;
    assert_eq!(code, 204, "{v}");
    let (code, _) = r.beat(&w1, &u1, json!({})).await;
    assert_eq!(code, 404);
    let reader = r.store.reader().expect("reader");
    assert!(!reader.is_worker_allowed("w1", w1.fingerprint()).expect("q"));
    assert!(reader.shards(Some(&u1)).expect("q").is_empty());
    assert!(
        !r.layout
            .bundle_dir(decnet::pki::Kind::Worker, "w1")
            .exists()
    );
    let (code, _) = plain(
        r.plain,
        "DELETE",
        &format!("/swarm/hosts/{u1}"),
        Some(&r.token),
        None,
    )
    .await;
    assert_eq!(code, 404);

    // Enrolled again under the same name: the old certificate is worth nothing.
    let (u1b, w1b) = r.enrolled("w1", 1).await;
    let (code, _) = r.beat(&w1, &u1b, json!({})).await;
    assert_eq!(code, 403);
    let (code, _) = r.beat(&w1b, &u1b, json!({})).await;
    assert_eq!(code, 204);
}

#[tokio::test]
async fn decommission_is_limited_to_20_a_minute_per_client() {
    let r = rig(true).await;
    for i in 0..20 {
        let (code, _) = plain(
            r.plain,
            "DELETE",
            &format!("/swarm/hosts/x{i}"),
            Some(&r.token),
            None,
        )
        .await;
        assert_eq!(code, 404);
    }
    let (code, _) = plain(r.plain, "DELETE", "/swarm/hosts/x20", Some(&r.token), None).await;
    assert_eq!(code, 429);
}

#[tokio::test]
async fn dispatch_shards_per_host_and_a_dead_host_only_fails_its_own() {
    let r = rig(true).await;
    let (agent_l, agent_addr) = bind().await;
    let (ua, wa) = r.enrolled("agent-a", agent_addr.port()).await;
    let seen = fake_agent(agent_l, &wa, r.stop.clone());
    let (dead_l, dead_addr) = bind().await;
    drop(dead_l);
    let (ub, _) = r.enrolled("agent-b", dead_addr.port()).await;
    let tok = Some(r.token.as_str());

    let body = fleet("unihost", vec![decky("web-1", "203.0.113.5", Some(&ua))]);
    let (code, v) = plain(r.plain, "POST", "/swarm/deploy", tok, Some(&body)).await;
    assert_eq!((code, detail(&v)), (400, "mode must be 'swarm'".into()));
    let body = fleet("swarm", vec![decky("web-1", "203.0.113.5", None)]);
    let (code, v) = plain(r.plain, "POST", "/swarm/deploy", tok, Some(&body)).await;
    assert_eq!(
        (code, detail(&v)),
        (
            400,
            "decky 'web-1' has no host_uuid — caller must shard before dispatch".into()
        )
    );
    let body = fleet("swarm", vec![decky("web-1", "203.0.113.5", Some("ghost"))]);
    let (code, v) = plain(r.plain, "POST", "/swarm/deploy", tok, Some(&body)).await;
    assert_eq!((code, detail(&v)), (404, "unknown host_uuid: ghost".into()));
    assert!(
        seen.lock().expect("lock").deploys.is_empty(),
        "nothing dispatched"
    );

    let body = fleet(
        "swarm",
        vec![
            decky("web-1", "203.0.113.5", Some(&ua)),
            decky("db-2", "203.0.113.6", Some(&ub)),
            decky("mail-3", "203.0.113.7", Some(&ua)),
        ],
    );
    let (code, v) = plain(r.plain, "POST", "/swarm/deploy", tok, Some(&body)).await;
    assert_eq!(code, 200, "{v}");
    let results = v["results"].as_array().expect("results");
    let ok: Vec<(&str, bool)> = results
        .iter()
        .map(|x| {
            (
                x["host_name"].as_str().unwrap_or(""),
                x["ok"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(ok, [("agent-a", true), ("agent-b", false)]);
    assert!(
        results[1]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("agent-b")),
        "{v}"
    );
    {
        let s = seen.lock().expect("lock");
        assert_eq!(s.deploys.len(), 1);
        let names: Vec<&str> = s.deploys[0]["config"]["deckies"]
            .as_array()
            .expect("deckies")
            .iter()
            .filter_map(|d| d["name"].as_str())
            .collect();
        assert_eq!(names, ["web-1", "mail-3"], "agent-a got only its shard");
    }
    let (code, v) = plain(r.plain, "GET", "/swarm/deckies", tok, None).await;
    assert_eq!(code, 200);
    let rows: Vec<(&str, &str, &str)> = v
        .as_array()
        .expect("list")
        .iter()
        .map(|d| {
            (
                d["decky_name"].as_str().unwrap_or(""),
                d["host_name"].as_str().unwrap_or(""),
                d["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("db-2", "agent-b", "failed"),
            ("mail-3", "agent-a", "running"),
            ("web-1", "agent-a", "running")
        ]
    );
    assert!(
        v[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("agent-b"))
    );
    assert_eq!(r.host_status(&ua).as_deref(), Some("active"));

    let (code, v) = plain(r.plain, "POST", "/swarm/check", tok, None).await;
    assert_eq!(code, 200);
    let health: Vec<(bool, Value)> = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| {
            (
                h["reachable"].as_bool().unwrap_or(false),
                h["detail"].clone(),
            )
        })
        .collect();
    assert_eq!(
        health,
        [
            (true, json!({"status": "ok"})),
            (false, json!("probe failed"))
        ]
    );
    assert_eq!(r.host_status(&ub).as_deref(), Some("unreachable"));

    let body = json!({"host_uuid": ua});
    let (code, v) = plain(r.plain, "POST", "/swarm/teardown", tok, Some(&body)).await;
    assert_eq!(code, 200);
    assert_eq!(v["results"][0]["ok"], json!(true));
    assert_eq!(
        seen.lock().expect("lock").teardowns,
        [json!({"decky_id": null})]
    );
    assert!(
        r.store
            .reader()
            .expect("r")
            .shards(Some(&ua))
            .expect("q")
            .is_empty()
    );
    let (code, _) = plain(
        r.plain,
        "POST",
        "/swarm/teardown",
        tok,
        Some(&json!({"host_uuid": "ghost"})),
    )
    .await;
    assert_eq!(code, 404);

    // The dashboard's routes: background teardown of the dead host fails its shard.
    let (code, v) = plain(
        r.api,
        "POST",
        &format!("/api/v1/swarm/hosts/{ub}/teardown"),
        tok,
        Some(&json!({})),
    )
    .await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(
        (v["accepted"].clone(), v["detail"].clone()),
        (json!(true), json!("teardown queued"))
    );
    r.until("teardown_failed", |s| {
        s.reader()
            .expect("r")
            .shards(Some(&ub))
            .expect("q")
            .first()
            .is_some_and(|x| x.state == "teardown_failed")
    })
    .await;
    let (code, v) = plain(r.api, "GET", "/api/v1/swarm/hosts", tok, None).await;
    assert_eq!(code, 200);
    let st: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(st, ["active", "unreachable"]);
    let (code, v) = plain(r.api, "GET", "/api/v1/swarm/deckies", tok, None).await;
    assert_eq!((code, v.as_array().map(Vec::len)), (200, Some(1)));
    let (code, _) = plain(r.api, "GET", "/api/v1/swarm/hosts", None, None).await;
    assert_eq!(code, 401);
    let (code, _) = plain(
        r.api,
        "DELETE",
        &format!("/api/v1/swarm/hosts/{ua}"),
        tok,
        None,
    )
    .await;
    assert_eq!(code, 204);
    assert_eq!(seen.lock().expect("lock").self_destructs, 1);
    let (code, v) = plain(
        r.api,
        "DELETE",
        &format!("/api/v1/swarm/hosts/{ua}"),
        tok,
        None,
    )
    .await;
    assert_eq!((code, detail(&v)), (404, "host not found".into()));
}

#[test]
fn round_robin_sharding_uses_hosts_with_an_address_by_name() {
    let host = |uuid: &str, name: &str, status: &str, address: &str| decnet::store::SwarmHost {
        uuid: uuid.into(),
        name: name.into(),
        address: address.into(),
        agent_port: 8765,
        status: status.into(),
        last_heartbeat: None,
        client_cert_fingerprint: String::new(),
        updater_cert_fingerprint: None,
        cert_bundle_path: String::new(),
        enrolled_at: String::new(),
        notes: None,
        use_ipvlan: false,
    };
    let hosts = [
        host("u-b", "b", "active", "10.0.0.2"),
        host("u-a", "a", "enrolled", "10.0.0.1"),
        host("u-c", "c", "unreachable", "10.0.0.3"),
        host("u-d", "d", "active", ""),
    ];
    let body = fleet(
        "swarm",
        vec![
            decky("d1", "203.0.113.5", None),
            decky("d2", "203.0.113.6", Some("pinned")),
            decky("d3", "203.0.113.7", None),
            decky("d4", "203.0.113.8", None),
        ],
    );
    let mut config: decnet::model::DecnetConfig =
        serde_json::from_value(body["config"].clone()).expect("config");
    swarm::dispatch::shard_round_robin(&mut config, &hosts).expect("sharded");
    let got: Vec<&str> = config
        .deckies
        .iter()
        .filter_map(|d| d.host_uuid.as_deref())
        .collect();
    assert_eq!(got, ["u-a", "pinned", "u-b", "u-a"]);
    assert!(swarm::dispatch::shard_round_robin(&mut config, &hosts[2..]).is_err());
}

#[test]
fn a_plain_controller_off_loopback_is_refused_before_anything_starts() {
    let dir = util::Dir::new();
    let out = util::run(dir.decnet().args(["master", "--swarmctl-host", "0.0.0.0"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls"), "{err}");
    assert!(!dir.path().join("decnet.db").exists(), "nothing started");
}

#[tokio::test]
async fn the_dashboard_shard_list_takes_a_missing_address_from_the_fleet_state() {
    let r = rig(true).await;
    let (uuid, _) = r.enrolled("w1", 1).await;
    let shard = |name: &str| decnet::store::Shard {
        decky_name: name.into(),
        host_uuid: uuid.clone(),
        services: "[\"ssh\"]".into(),
        decky_config: None,
        decky_ip: None,
        state: "running".into(),
        last_error: None,
        last_seen: None,
        updated_at: String::new(),
    };
    r.store
        .upsert_shards(&[shard("web-1"), shard("lost-9")])
        .expect("shards");
    let state = json!({
        "config": {"mode": "swarm", "interface": "lo", "subnet": "203.0.113.0/28",
            "gateway": "203.0.113.1", "deckies": [decky("web-1", "203.0.113.5", Some(&uuid))]},
        "driver": "bridge",
        "names": {"network": "decnet_t", "macvlan_link": "dnmx", "ipvlan_link": "dnix"},
        "image": "decnet/decky:test"
    });
    std::fs::write(
        r.home().join("decnet-state.json"),
        serde_json::to_vec(&state).expect("json"),
    )
    .expect("state file");
    let (code, v) = plain(r.api, "GET", "/api/v1/swarm/deckies", Some(&r.token), None).await;
    assert_eq!(code, 200, "{v}");
    let ips: Vec<(&str, Value)> = v
        .as_array()
        .expect("list")
        .iter()
        .map(|d| {
            (
                d["decky_name"].as_str().unwrap_or(""),
                d["decky_ip"].clone(),
            )
        })
        .collect();
    assert_eq!(
        ips,
        [("lost-9", Value::Null), ("web-1", json!("203.0.113.5"))]
    );
    let (code, v) = plain(r.plain, "GET", "/swarm/deckies", Some(&r.token), None).await;
    assert_eq!(
        (code, v[1]["decky_ip"].clone()),
        (200, Value::Null),
        "controller: no fleet fallback"
    );
}

#[tokio::test]
async fn decnet_master_serves_the_controller_over_mutual_tls() {
    let dir = util::Dir::new();
    let layout = decnet::pki::Layout::new(dir.path().join("pki"));
    let master = layout.ensure_master().expect("master identity");
    let (probe, addr) = bind().await;
    drop(probe);
    let mut child = tokio::process::Command::from(dir.decnet())
        .args(["master", "--port", "0", "--tls"])
        .args(["--swarmctl-port", &addr.port().to_string()])
        .env("DECNET_ADMIN_PASSWORD", "a-strong-admin-password")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn decnet master");
    let mut answered = None;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            answered = Some(mtls(&master, addr, "GET", "/swarm/health", None, None).await);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill().await;
    assert_eq!(
        answered,
        Some((200, json!({"status": "ok", "role": "swarm-controller"})))
    );
}
