//! Enrolment in one line (swarm.md §6.4) against a real master over real sockets: the
//! admin's `POST /api/v1/swarm/enroll-bundle`, then the unauthenticated script, payload
//! and binary downloads a new worker makes with nothing but the token, and the bootstrap
//! script itself run by `sh` with curl, installing under a scratch root.
mod swarm_common;
mod util;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};
use swarm_common::{detail, plain, rig};

/// `GET url` with curl: status, content type, body.
fn get(url: &str) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code} %{content_type}", url])
        .output()
        .expect("curl");
    let meta = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, ctype) = meta.split_once(' ').unwrap_or((&meta, ""));
    (
        code.parse().unwrap_or(0),
        ctype.to_owned(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_is_created_once_downloaded_once_and_installs_with_a_checked_binary() {
    if !swarm_common::have_tools(&["curl", "sha256sum", "tar"]) {
        return;
    }
    let r = rig(true).await;
    let body = json!({"master_host": "127.0.0.1", "agent_name": "w1"});
    let path = "/api/v1/swarm/enroll-bundle";
    let (code, v) = plain(r.api, "POST", path, None, Some(&body)).await;
    assert_eq!(code, 401, "{v}");
    let (code, v) = plain(r.api, "POST", path, Some(&r.token), Some(&body)).await;
    assert_eq!(code, 201, "{v}");
    let token = v["token"].as_str().expect("token").to_owned();
    assert_eq!(token.len(), 32);
    let base = format!(
        "http://127.0.0.1:{}/api/v1/swarm/enroll-bundle",
        r.api.port()
    );
    assert_eq!(
        v["command"],
        json!(format!("curl -fsSL {base}/{token}.sh | sudo sh"))
    );
    let uuid = v["host_uuid"].as_str().expect("uuid").to_owned();
    assert!(
        v["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );
    let host = r.store.reader().expect("reader").host(&uuid).expect("host");
    let host = host.expect("host row");
    assert_eq!(
        (host.address.as_str(), host.status.as_str()),
        ("", "enrolled")
    );

    // Bad input, answered before anything is issued.
    let (code, v) = plain(r.api, "POST", path, Some(&r.token), Some(&body)).await;
    assert_eq!(
        (code, detail(&v)),
        (409, "Worker 'w1' is already enrolled".into())
    );
    for (bad, field) in [
        (
            json!({"master_host": "127.0.0.1", "agent_name": "W_1"}),
            "agent_name",
        ),
        (
            json!({"master_host": "a b", "agent_name": "w9"}),
            "master_host",
        ),
    ] {
        let (code, v) = plain(r.api, "POST", path, Some(&r.token), Some(&bad)).await;
        assert_eq!(code, 422, "{v}");
        assert!(detail(&v).contains(field), "{field}: {v}");
    }
    // An unknown field is a structural violation, as everywhere in the master API.
    let extra = json!({"master_host": "127.0.0.1", "agent_name": "w9", "x": 1});
    let (code, v) = plain(r.api, "POST", path, Some(&r.token), Some(&extra)).await;
    assert_eq!(code, 400, "{v}");
    assert!(
        r.store
            .reader()
            .expect("reader")
            .host_by_name("w9")
            .expect("read")
            .is_none(),
        "a refused bundle enrols nothing"
    );

    // The script: repeatable until the payload is fetched, naming the binary's SHA-256.
    let (code, ctype, script) = get(&format!("{base}/{token}.sh"));
    assert_eq!((code, ctype.as_str()), (200, "text/x-shellscript"));
    let script = String::from_utf8(script).expect("utf-8");
    assert!(script.starts_with("#!/bin/sh\n") && script.contains(&token));
    let (code, _, binary) = get(&format!("{base}/{token}/decnet"));
    assert_eq!(code, 200);
    let sum = hex::encode(Sha256::digest(&binary));
    assert!(
        script.contains(&format!("SHA='{sum}'")),
        "the script pins the binary"
    );
    assert_eq!(get(&format!("{base}/{token}.sh")).0, 200, "repeatable");

    // The bootstrap, run as the operator would (without sudo, under a scratch root).
    let root = tempfile::tempdir().expect("root");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("curl -fsSL {base}/{token}.sh | sh"))
        .env("DECNET_ROOT", root.path())
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "bootstrap: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rp = |p: &str| root.path().join(p);
    let mode = |p: &str| {
        std::fs::metadata(rp(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("etc/decnet/agent/worker.key"), 0o600);
    assert_eq!(mode("etc/decnet/agent"), 0o700);
    assert_eq!(
        mode("etc/decnet/updater/updater.key"),
        0o600,
        "with_updater defaults on"
    );
    assert_eq!(mode("etc/decnet/decnet.ini"), 0o600);
    let installed = std::fs::read(rp("usr/local/bin/decnet")).expect("installed binary");
    assert_eq!(hex::encode(Sha256::digest(&installed)), sum);
    assert_eq!(mode("opt/decnet/current/decnet"), 0o755);
    let ini = std::fs::read_to_string(rp("etc/decnet/decnet.ini")).expect("ini");
    assert!(ini.contains(&format!("host-uuid = {uuid}")), "{ini}");
    assert!(
        ini.contains(&format!(
            "agent-dir = {}/etc/decnet/agent",
            root.path().display()
        )),
        "{ini}"
    );
    assert!(rp("etc/systemd/system/decnet-agent.service").exists());
    let vars = decnet::config::file::variables(&ini).expect("the INI parses");
    assert_eq!(vars.get("DECNET_HOST_UUID"), Some(&uuid));
    assert_eq!(
        vars.get("DECNET_MASTER_HOST").map(String::as_str),
        Some("127.0.0.1")
    );

    // The payload went once, and it recorded where the worker came from.
    let host = r.store.reader().expect("reader").host(&uuid).expect("host");
    assert_eq!(host.map(|h| h.address), Some("127.0.0.1".into()));
    for url in [
        format!("{base}/{token}.tgz"),
        format!("{base}/{token}.sh"),
        format!("{base}/{}.tgz", "A".repeat(32)),
        format!("{base}/{token}"),
    ] {
        let (code, _, body) = get(&url);
        assert_eq!(code, 404, "{url}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(detail(&v), "bundle not found or expired", "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payload_carries_the_bundle_and_decommission_revokes_an_unused_token() {
    if !swarm_common::have_tools(&["curl"]) {
        return;
    }
    let r = rig(true).await;
    let path = "/api/v1/swarm/enroll-bundle";
    let body = json!({"master_host": "198.51.100.1", "agent_name": "w2", "with_updater": false,
        "use_ipvlan": true, "services_ini": "[ssh]\nport = 22\n"});
    let (code, v) = plain(r.api, "POST", path, Some(&r.token), Some(&body)).await;
    assert_eq!(code, 201, "{v}");
    let token = v["token"].as_str().expect("token").to_owned();
    assert!(
        v["command"]
            .as_str()
            .is_some_and(|c| c.starts_with("curl -fsSL http://198.51.100.1:")),
        "the URL names the master as the worker reaches it: {v}"
    );
    let base = format!(
        "http://127.0.0.1:{}/api/v1/swarm/enroll-bundle",
        r.api.port()
    );
    let (code, ctype, tgz) = get(&format!("{base}/{token}.tgz"));
    assert_eq!((code, ctype.as_str()), (200, "application/gzip"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz.as_slice()));
    let mut files = Vec::new();
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").display().to_string();
        let mode = e.header().mode().expect("mode");
        let mut text = String::new();
        let _ = e.read_to_string(&mut text);
        files.push((p, mode, text));
    }
    let find = |p: &str| files.iter().find(|f| f.0 == p);
    let key = find("etc/decnet/agent/worker.key").expect("worker key");
    assert_eq!(key.1, 0o600);
    assert!(key.2.contains("PRIVATE KEY"));
    let pin = find("etc/decnet/agent/master.fingerprint").expect("master pin");
    assert_eq!(pin.2.trim(), r.master.fingerprint().to_string());
    assert!(find("etc/decnet/agent/swarmctl.fingerprint").is_some());
    assert!(
        find("etc/decnet/updater/updater.key").is_none(),
        "no updater asked"
    );
    assert_eq!(
        find("etc/decnet/services.ini").map(|f| f.2.as_str()),
        Some("[ssh]\nport = 22\n")
    );
    let ini = &find("etc/decnet/decnet.ini").expect("ini").2;
    assert!(
        ini.contains("ipvlan = true") && ini.contains("master-host = 198.51.100.1"),
        "{ini}"
    );

    // A worker decommissioned before it fetched its bundle cannot fetch it afterwards.
    let body = json!({"master_host": "127.0.0.1", "agent_name": "w3"});
    let (code, v) = plain(r.api, "POST", path, Some(&r.token), Some(&body)).await;
    assert_eq!(code, 201, "{v}");
    let (t3, u3) = (
        v["token"].as_str().expect("token").to_owned(),
        v["host_uuid"].as_str().expect("uuid").to_owned(),
    );
    let (code, v) = plain(
        r.api,
        "DELETE",
        &format!("/api/v1/swarm/hosts/{u3}"),
        Some(&r.token),
        None,
    )
    .await;
    assert_eq!(code, 204, "{v}");
    assert_eq!(get(&format!("{base}/{t3}.sh")).0, 404);
    assert_eq!(get(&format!("{base}/{t3}/decnet")).0, 404);
}

#[tokio::test]
async fn bundle_creation_is_limited_to_10_a_minute_per_client() {
    let r = rig(true).await;
    let path = "/api/v1/swarm/enroll-bundle";
    for i in 0..10 {
        let body = json!({"master_host": "127.0.0.1", "agent_name": format!("Bad{i}")});
        let (code, _) = plain(r.api, "POST", path, Some(&r.token), Some(&body)).await;
        assert_eq!(code, 422);
    }
    let body = json!({"master_host": "127.0.0.1", "agent_name": "w1"});
    let (code, v) = plain(r.api, "POST", path, Some(&r.token), Some(&body)).await;
    assert_eq!(code, 429, "{v}");
}
