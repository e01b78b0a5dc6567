//! The fleet routes (engine.md §1.10, §7.2) against a real master over a real SQLite
//! file: INI validation and the 409s with the spec's texts, lifecycle polling and its
//! restart rule, mutation intervals and removal's 404/422 without Docker; then one real
//! deploy → lifecycle → mutate → delete on a bridge network with the static binary's
//! image (skipped without Docker, a failure under CI).
mod api_common;
mod util;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use api_common::{Master, Setup, have_curl};
use decnet::engine::plan::Driver;
use decnet::roles::master::Extras;
use decnet::roles::master::fleet::FleetOptions;
use serde_json::{Value, json};

/// A fleet of two deckies on a bridge, as the engine would have saved it.
fn write_fleet(home: &Path) {
    let state = json!({
        "config": {
            "mode": "unihost", "interface": "lo",
            "subnet": "203.0.113.0/28", "gateway": "203.0.113.1",
            "deckies": [
                {"name": "web-1", "ip": "203.0.113.5", "services": ["ssh"],
                 "distro": "debian", "base_image": "debian:bookworm-slim",
                 "hostname": "web01",
                 "service_config": {"ssh": {"password": "hunter2-secret", "user": "admin"}}},
                {"name": "db-2", "ip": "203.0.113.6", "services": ["mysql"],
                 "distro": "debian", "base_image": "debian:bookworm-slim",
                 "hostname": "db02"}
            ]
        },
        "driver": "bridge",
        "names": {"network": "decnet_apitest", "macvlan_link": "dnmx", "ipvlan_link": "dnix"},
        "image": "decnet/decky:test"
    });
    std::fs::write(
        home.join("decnet-state.json"),
        serde_json::to_vec_pretty(&state).expect("json"),
    )
    .expect("state file");
}

async fn deploy(m: &Master, token: &str, body: Value) -> (u16, String) {
    let r = m
        .req("POST", "/api/v1/deckies/deploy")
        .bearer(token)
        .json(&body)
        .send()
        .await;
    let detail = serde_json::from_str::<Value>(&r.text)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or(r.text.clone());
    (r.status, detail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_checks_the_ini_the_network_collisions_and_the_limit_before_docker() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let token = m.admin().await;
    let ini = |text: &str| json!({ "ini_content": text });
    let general = "[general]\nnet = 203.0.113.0/28\ngw = 203.0.113.1\n";
    let cases = [
        (ini("   "), 409, "Configuration conflict: INI content is empty.".to_owned()),
        (
            ini("[web\nservices=ssh"),
            409,
            "Configuration conflict: INI syntax or characters are invalid.".into(),
        ),
        (
            ini("no sections at all"),
            409,
            "Configuration conflict: INI syntax or characters are invalid.".into(),
        ),
        (
            ini(general),
            409,
            "Invalid INI config structure: No decky sections found.".into(),
        ),
        (
            json!({"ini_content": "[a]\nservices=ssh", "extra": 1}),
            400,
            "Bad Request: Schema structural violation (wrong type, extra fields, or invalid length).".into(),
        ),
        (
            ini("[general]\nnet = 203.0.113.0/28\ngw = 198.51.100.1\n[a]\nservices = ssh\n"),
            409,
            "Network configuration conflict".into(),
        ),
        (
            ini(&format!("{general}[a]\nservices = nosuchservice\n")),
            409,
            "nosuchservice".into(),
        ),
        (
            ini(&format!("{general}[a]\nservices = ssh\n")),
            503,
            "docker daemon unavailable".into(),
        ),
    ];
    for (body, status, detail) in cases {
        let (s, d) = deploy(&m, &token, body.clone()).await;
        assert_eq!(s, status, "{body}: {d}");
        assert!(
            d.contains(&detail),
            "{body}: {d:?} should contain {detail:?}"
        );
    }
    let r = m
        .req("POST", "/api/v1/deckies/deploy")
        .bearer(&token)
        .raw(b"{}")
        .send()
        .await;
    assert_eq!(r.status, 415);

    // Against a deployed fleet: additive collisions, then the limit.
    write_fleet(m.home());
    let (s, d) = deploy(&m, &token, ini("[web-1]\nservices = ssh\n")).await;
    assert_eq!(
        (s, d.as_str()),
        (
            409,
            "decky 'web-1' already exists; submit with replace_fleet=true to overwrite the fleet"
        )
    );
    let (s, d) = deploy(&m, &token, ini("[new]\nservices = ssh\nip = 203.0.113.6\n")).await;
    assert_eq!(
        (s, d.as_str()),
        (409, "IP 203.0.113.6 is already in use by an existing decky")
    );
    let (s, d) = deploy(&m, &token, ini("[many]\nservices = ssh\namount = 9\n")).await;
    assert_eq!(
        (s, d.as_str()),
        (
            409,
            "Deployment would result in 11 deckies, exceeding the configured limit of 10"
        )
    );
    let r = m
        .req("PUT", "/api/v1/config/deployment-limit")
        .bearer(&token)
        .json(&json!({"deployment_limit": 2}))
        .send()
        .await;
    assert_eq!(r.status, 200);
    let (s, d) = deploy(&m, &token, ini("[one]\nservices = ssh\n")).await;
    assert_eq!(
        (s, d.as_str()),
        (
            409,
            "Deployment would result in 3 deckies, exceeding the configured limit of 2"
        )
    );
    // The deployed fleet's network stays; an INI asking for another one is refused.
    let (s, d) = deploy(
        &m,
        &token,
        ini("[general]\nnet = 203.0.113.16/28\ngw = 203.0.113.17\n[x]\nservices = ssh\n"),
    )
    .await;
    assert_eq!(s, 409, "{d}");
    assert!(
        d.starts_with("Network configuration conflict: the deployed fleet uses 203.0.113.0/28"),
        "{d}"
    );
    // Replacing the fleet counts only the INI's deckies and may reuse names.
    let (s, d) = deploy(
        &m,
        &token,
        json!({"ini_content": "[web-1]\nservices = ssh\n", "replace_fleet": true}),
    )
    .await;
    assert_eq!((s, d.as_str()), (503, "docker daemon unavailable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_is_listed_without_secrets_and_intervals_and_removal_check_names() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let token = m.admin().await;
    let list = m.req("GET", "/api/v1/deckies").bearer(&token).send().await;
    assert_eq!((list.status, list.json()), (200, json!([])));
    let r = m
        .req("DELETE", "/api/v1/deckies/web-1")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(
        (r.status, r.detail().as_str()),
        (404, "No active deployment")
    );

    write_fleet(m.home());
    // `/deckies` is cached 5 s; a fleet change made by the API invalidates it, a file
    // written behind its back shows within the TTL.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let list = m.req("GET", "/api/v1/deckies").bearer(&token).send().await;
    assert_eq!(list.status, 200, "{}", list.text);
    let v = list.json();
    assert_eq!(v[0]["name"], "web-1");
    assert_eq!(v[0]["service_config"]["ssh"]["password"], "********");
    assert_eq!(v[0]["service_config"]["ssh"]["user"], "admin");
    assert!(v[0].get("seed").is_none(), "{v}");
    assert!(!list.text.contains("hunter2"), "{}", list.text);

    let put = |name: &str, body: Value| {
        m.req("PUT", &format!("/api/v1/deckies/{name}/mutate-interval"))
            .bearer(&token)
            .json(&body)
    };
    let r = put("web-1", json!({"mutate_interval": "2d"})).send().await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (200, json!("Mutation interval updated"))
    );
    let saved: Value =
        serde_json::from_slice(&std::fs::read(m.home().join("decnet-state.json")).expect("state"))
            .expect("json");
    assert_eq!(saved["config"]["deckies"][0]["mutate_interval"], 2880);
    let list = m.req("GET", "/api/v1/deckies").bearer(&token).send().await;
    assert_eq!(
        list.json()[0]["mutate_interval"],
        2880,
        "the cache was invalidated"
    );
    let r = put("web-1", json!({"mutate_interval": null})).send().await;
    assert_eq!(r.status, 200);
    for (name, body, status) in [
        ("web-1", json!({"mutate_interval": "1h"}), 422),
        ("web-1", json!({"mutate_interval": 5}), 400),
        ("nope", json!({"mutate_interval": "5m"}), 404),
        ("Bad_Name", json!({"mutate_interval": "5m"}), 422),
    ] {
        let r = put(name, body.clone()).send().await;
        assert_eq!(r.status, status, "{name} {body}: {}", r.text);
    }

    for (name, status, detail) in [
        ("Bad_Name", 422, "Invalid request parameters"),
        ("nope", 404, "Decky nope not found"),
        ("web-1", 503, "docker daemon unavailable"),
    ] {
        let r = m
            .req("DELETE", &format!("/api/v1/deckies/{name}"))
            .bearer(&token)
            .send()
            .await;
        assert_eq!((r.status, r.detail().as_str()), (status, detail), "{name}");
    }
    let mutate = |name: &str| {
        m.req("POST", &format!("/api/v1/deckies/{name}/mutate"))
            .bearer(&token)
    };
    let r = mutate("web-1").send().await;
    assert_eq!(
        (r.status, r.detail().as_str()),
        (404, "No services available to mutate web-1")
    );
    let r = mutate("nope").send().await;
    assert_eq!(
        (r.status, r.detail().as_str()),
        (404, "Decky nope not found")
    );

    let mode = m
        .req("GET", "/api/v1/system/deployment-mode")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(
        mode.json(),
        json!({"mode": "unihost", "role": "master", "swarm_host_count": 0})
    );
    let anon = m.req("GET", "/api/v1/deckies").send().await;
    assert_eq!(anon.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_rows_are_polled_by_id_and_a_restart_fails_stale_ones() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let token = m.admin().await;
    let rows = [
        ("old-1".to_owned(), "web-1".to_owned()),
        ("new-1".into(), "db-2".into()),
    ];
    m.store
        .create_lifecycle("deploy", None, &rows)
        .expect("rows");
    let poll = |q: &str| {
        m.req("GET", &format!("/api/v1/deckies/lifecycle{q}"))
            .bearer(&token)
    };
    let r = poll("?ids=new-1&ids=old-1&ids=missing").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(
        (v["rows"][0]["id"].clone(), v["rows"][0]["status"].clone()),
        (json!("new-1"), json!("pending"))
    );
    for key in [
        "decky_name",
        "host_uuid",
        "operation",
        "error",
        "started_at",
        "updated_at",
        "completed_at",
    ] {
        assert!(v["rows"][0].get(key).is_some(), "{key} in {v}");
    }
    let too_many: String = (0..201).map(|i| format!("&ids=x{i}")).collect();
    for q in ["", "?ids=", "?other=1", &format!("?{}", &too_many[1..])] {
        let r = poll(q).send().await;
        assert_eq!(r.status, 422, "{q}: {}", r.text);
    }
    let two_hundred: String = (0..200).map(|i| format!("&ids=x{i}")).collect();
    assert_eq!(
        poll(&format!("?{}", &two_hundred[1..])).send().await.status,
        200
    );

    // A row accepted two hours ago and never finished: a restart fails it.
    let conn = rusqlite::Connection::open(m.store.path()).expect("db");
    conn.execute(
        "UPDATE decky_lifecycle SET started_at = datetime('now', '-2 hours') WHERE id = 'old-1'",
        [],
    )
    .expect("age the row");
    drop(conn);
    let home = m.home().to_path_buf();
    let m = m.restart(Setup::default(), Extras::for_home(&home)).await;
    let token = m.token("admin", "admin-chosen-password").await;
    let r = m
        .req("GET", "/api/v1/deckies/lifecycle?ids=old-1&ids=new-1")
        .bearer(&token)
        .send()
        .await;
    let v = r.json();
    assert_eq!(v["rows"][0]["status"], "failed", "{v}");
    assert_eq!(v["rows"][0]["error"], "master restarted during operation");
    assert!(v["rows"][0]["completed_at"].is_string());
    assert_eq!(
        v["rows"][1]["status"], "pending",
        "a recent row is left alone"
    );
}

/// Removes the test's fleet through the CLI even when an assertion fails.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = util::Dir::new();
        let _ = dir
            .decnet()
            .env("DECNET_HOME", &self.0)
            .args(["teardown", "--all"])
            .output();
    }
}

/// Polls the lifecycle rows `ids` until none is pending or running.
async fn settle(m: &Master, token: &str, ids: &[Value]) -> Value {
    let q: Vec<String> = ids
        .iter()
        .map(|i| format!("ids={}", i.as_str().unwrap_or_default()))
        .collect();
    let path = format!("/api/v1/deckies/lifecycle?{}", q.join("&"));
    for _ in 0..600 {
        let v = m.req("GET", &path).bearer(token).send().await.json();
        let open = v["rows"].as_array().is_some_and(|rows| {
            rows.iter()
                .any(|r| r["status"] == "pending" || r["status"] == "running")
        });
        if !open {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("lifecycle rows {ids:?} never finished");
}

async fn reachable(ip: &str, port: u16) -> bool {
    let addr: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
    for _ in 0..40 {
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_deploy_is_polled_mutated_and_removed() {
    if !have_curl() {
        return;
    }
    let Some(engine) = util::docker().await else {
        return;
    };
    let network = format!("decnet_apid{}", std::process::id());
    let m = Master::start_with(Setup::default(), |home| Extras {
        engine: Some(engine),
        fleet: FleetOptions {
            driver: Driver::Bridge,
            network_name: network.clone(),
            decky_binary: Some(util::static_binary()),
            artifacts_root: home.join("artifacts"),
        },
        ..Extras::for_home(home)
    })
    .await;
    let _cleanup = Cleanup(m.home().to_path_buf());
    let token = m.admin().await;
    let ini = "[general]\nnet = 203.0.113.208/28\ngw = 203.0.113.209\n\
               [apid-1]\narchetype = windows-workstation\nip = 203.0.113.212\n";
    let r = m
        .req("POST", "/api/v1/deckies/deploy")
        .bearer(&token)
        .json(&json!({ "ini_content": ini }))
        .send()
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let accepted = r.json();
    assert_eq!(accepted["mode"], "unihost");
    let ids = accepted["lifecycle_ids"].as_array().cloned().expect("ids");
    assert_eq!(ids.len(), 1);
    assert!(
        accepted["message"].as_str().is_some_and(|t| t.starts_with(
            "Deploy accepted (1 decky/ies, mode=unihost). Poll /deckies/lifecycle?ids="
        )),
        "{accepted}"
    );
    let started = tokio::time::Instant::now();
    let done = settle(&m, &token, &ids).await;
    assert_eq!(done["rows"][0]["status"], "succeeded", "{done}");
    eprintln!(
        "deploy finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let list = m
        .req("GET", "/api/v1/deckies")
        .bearer(&token)
        .send()
        .await
        .json();
    assert_eq!(list[0]["name"], "apid-1", "{list}");
    let before: Vec<String> =
        serde_json::from_value(list[0]["services"].clone()).expect("services");
    assert_eq!(before, ["smb", "rdp"]);
    assert!(
        reachable("203.0.113.212", 445).await,
        "smb stand-in unreachable"
    );

    let r = m
        .req("POST", "/api/v1/deckies/apid-1/mutate")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let ids = r.json()["lifecycle_ids"].as_array().cloned().expect("ids");
    let done = settle(&m, &token, &ids).await;
    assert_eq!(done["rows"][0]["status"], "succeeded", "{done}");
    assert_eq!(done["rows"][0]["operation"], "mutate");
    let list = m
        .req("GET", "/api/v1/deckies")
        .bearer(&token)
        .send()
        .await
        .json();
    let after: Vec<String> = serde_json::from_value(list[0]["services"].clone()).expect("services");
    assert!(
        !after.is_empty() && after.len() < 2,
        "re-rolled from the archetype: {after:?}"
    );
    assert_eq!(list[0]["ip"], "203.0.113.212");
    let port = if after[0] == "smb" { 445 } else { 3389 };
    assert!(
        reachable("203.0.113.212", port).await,
        "{after:?} unreachable after the mutation"
    );

    let r = m
        .req("DELETE", "/api/v1/deckies/apid-1")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        !m.home().join("decnet-state.json").exists(),
        "the last decky takes the fleet"
    );
    let list = m
        .req("GET", "/api/v1/deckies")
        .bearer(&token)
        .send()
        .await
        .json();
    assert_eq!(list, json!([]));
    let networks = util::docker_cli(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.lines().any(|n| n == network), "{networks}");
}
