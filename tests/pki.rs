//! The CA and bundles on disk: idempotence, permissions, chains, SANs.
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use decnet::pki::{Bundle, Ca, Error, IssueRequest, Kind, Layout, cert_info, pem_to_der};

fn layout() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::new(dir.path().join("pki"));
    (dir, layout)
}

#[test]
fn ca_creation_is_idempotent_on_disk() {
    let (_d, layout) = layout();
    let (first, created) = layout.ensure_ca().expect("create");
    assert!(created);
    let key = fs::read(layout.ca_dir().join("ca.key")).expect("key");
    let (second, created) = layout.ensure_ca().expect("load");
    assert!(!created);
    assert_eq!(first.fingerprint(), second.fingerprint());
    assert_eq!(fs::read(layout.ca_dir().join("ca.key")).expect("key"), key);

    // A half-present CA is an error, never a silent regeneration.
    fs::remove_file(layout.ca_dir().join("ca.crt")).expect("rm");
    let err = layout.ensure_ca().expect_err("half CA");
    assert!(err.to_string().contains("restore it from backup"), "{err}");
}

#[test]
fn issued_certificates_chain_to_the_ca_and_carry_their_sans() {
    let (dir, layout) = layout();
    let (ca, _) = layout.ensure_ca().expect("CA");
    let sans = ["192.0.2.7".to_owned(), "w7.lan".to_owned()];
    let (bundle, bundle_dir) = layout
        .issue_host(Kind::Worker, "w7", &sans, None, false)
        .expect("issue");
    let info = cert_info(&pem_to_der(bundle.cert_pem()).expect("der")).expect("info");
    assert_eq!(info.cn, "w7");
    assert_eq!(info.issuer_cn, decnet::pki::CA_CN);
    for san in ["DNS:w7", "DNS:w7.lan", "IP:192.0.2.7"] {
        assert!(
            info.sans.iter().any(|s| s == san),
            "{san} missing from {:?}",
            info.sans
        );
    }
    assert!(!info.is_ca);
    assert_eq!(bundle.ca_pem(), ca.cert_pem());

    // An independent verifier agrees: openssl checks chain, purpose and dates.
    let cert = bundle_dir.join("worker.crt");
    let ca_crt = layout.ca_dir().join("ca.crt");
    for purpose in ["sslserver", "sslclient"] {
        let out = Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(&ca_crt)
            .arg(&cert)
            .output()
            .expect("openssl (scripts/setup.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And a certificate from another CA does not verify against ours.
    let foreign = Ca::generate()
        .expect("other CA")
        .issue(&IssueRequest::new("x", ["127.0.0.1"]))
        .expect("issue");
    let foreign_path = dir.path().join("foreign.crt");
    fs::write(&foreign_path, foreign.cert_pem()).expect("write");
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca_crt)
        .arg(&foreign_path)
        .output()
        .expect("openssl");
    assert!(!out.status.success());
}

#[test]
fn updater_identity_is_named_after_its_worker() {
    let (_d, layout) = layout();
    layout.ensure_ca().expect("CA");
    let (bundle, dir) = layout
        .issue_host(Kind::Updater, "w1", &[], None, false)
        .expect("issue");
    assert_eq!(bundle.cn(), "updater@w1");
    assert!(dir.ends_with("workers/w1/updater"));
    let info = cert_info(&pem_to_der(bundle.cert_pem()).expect("der")).expect("info");
    assert_eq!(info.sans, vec!["IP:127.0.0.1".to_owned()]);
}

#[test]
fn each_role_gets_only_the_key_usages_it_needs() {
    let (_d, layout) = layout();
    let (_, _) = layout.ensure_ca().expect("CA");
    let ca_crt = layout.ca_dir().join("ca.crt");
    let updater = layout
        .issue_host(Kind::Updater, "w1", &[], None, false)
        .expect("updater")
        .1
        .join("updater.crt");
    layout.ensure_server(&[]).expect("server");
    layout.ensure_master().expect("master");
    let server = layout.bundle_dir(Kind::Server, "").join("server.crt");
    let master = layout.bundle_dir(Kind::Master, "").join("master.crt");
    let verifies = |cert: &std::path::Path, purpose: &str| {
        Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(&ca_crt)
            .arg(cert)
            .output()
            .expect("openssl")
            .status
            .success()
    };
    for (cert, server_ok, client_ok) in [
        (&updater, true, false),
        (&server, true, false),
        (&master, true, true),
    ] {
        assert_eq!(verifies(cert, "sslserver"), server_ok, "{}", cert.display());
        assert_eq!(verifies(cert, "sslclient"), client_ok, "{}", cert.display());
    }
}

#[test]
fn reserved_names_are_refused_by_the_ca_whoever_asks() {
    let (_d, layout) = layout();
    let (ca, _) = layout.ensure_ca().expect("CA");
    for name in ["decnet-master", "swarmctl", "Decnet-Master"] {
        for kind in [Kind::Worker, Kind::Updater] {
            let err = layout
                .issue_host(kind, name, &[], None, false)
                .expect_err(name);
            assert!(
                matches!(err, Error::ReservedName { .. }),
                "{kind:?} {name}: {err:?}"
            );
        }
    }
    // The library entry point enforces it too, not just the command line.
    let req = IssueRequest::new(decnet::pki::MASTER_CN, ["127.0.0.1"]).with_kind(Kind::Worker);
    assert!(matches!(ca.issue(&req), Err(Error::ReservedName { .. })));
    let req = IssueRequest::new("updater@w1", ["127.0.0.1"]).with_kind(Kind::Worker);
    assert!(matches!(ca.issue(&req), Err(Error::ReservedName { .. })));
}

#[test]
fn a_worker_bundle_carries_the_master_pin() {
    let (d, layout) = layout();
    layout.ensure_ca().expect("CA");
    let out = d.path().join("agent");
    let (_, dir) = layout
        .issue_host(Kind::Worker, "w1", &[], Some(&out), false)
        .expect("worker");
    let master = layout
        .ensure_master()
        .expect("master, issued with the worker");
    let pin = decnet::pki::read_master_pin(&dir).expect("readable");
    assert_eq!(pin.as_ref(), Some(master.fingerprint()));
    assert_eq!(
        decnet::pki::read_master_pin(d.path()).expect("absent"),
        None
    );
    fs::write(dir.join(decnet::pki::MASTER_PIN_FILE), "not a pin\n").expect("write");
    assert!(
        decnet::pki::read_master_pin(&dir).is_err(),
        "a bad pin file is an error"
    );
}

#[test]
fn server_and_master_identities_are_stable_across_restarts() {
    let (_d, layout) = layout();
    let a = layout.ensure_server(&["192.0.2.1".into()]).expect("server");
    let b = layout
        .ensure_server(&["192.0.2.1".into()])
        .expect("server again");
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.cn(), decnet::pki::SWARMCTL_CN);
    let m1 = layout.ensure_master().expect("master");
    let m2 = layout.ensure_master().expect("master again");
    assert_eq!(m1.fingerprint(), m2.fingerprint());
}

#[test]
fn bundle_round_trip_keeps_keys_private_and_refuses_exposed_ones() {
    let (d, layout) = layout();
    let (ca, _) = layout.ensure_ca().expect("CA");
    let bundle = ca
        .issue(&IssueRequest::new("w2", ["127.0.0.1"]))
        .expect("issue");
    let dir = d.path().join("bundle");
    bundle.write(&dir, "worker").expect("write");
    let mode = |p: &str| {
        fs::metadata(dir.join(p))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("worker.key"), 0o600);
    assert_eq!(
        fs::metadata(&dir).expect("stat").permissions().mode() & 0o777,
        0o700
    );
    let loaded = Bundle::load(&dir, "worker").expect("load");
    assert_eq!(loaded.fingerprint(), bundle.fingerprint());
    assert_eq!(loaded.cn(), "w2");

    fs::set_permissions(dir.join("worker.key"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Bundle::load(&dir, "worker").expect_err("0644 key accepted");
    assert!(
        matches!(err, Error::InsecureKey { mode: 0o644, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("chmod 600") && msg.contains("worker.key"),
        "{msg}"
    );

    // A key that does not belong to the certificate is refused too.
    fs::set_permissions(dir.join("worker.key"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let other = ca
        .issue(&IssueRequest::new("w3", ["127.0.0.1"]))
        .expect("issue");
    let other_dir = d.path().join("other");
    other.write(&other_dir, "worker").expect("write");
    fs::copy(other_dir.join("worker.key"), dir.join("worker.key")).expect("swap key");
    let err = Bundle::load(&dir, "worker").expect_err("mismatched key accepted");
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn missing_bundle_says_how_to_create_it() {
    let (d, _layout) = layout();
    let err = Bundle::load(d.path(), "worker").expect_err("no bundle");
    assert!(matches!(err, Error::Missing { .. }));
    assert!(err.to_string().contains("decnet pki issue"), "{err}");
}
