use super::*;
use crate::engine::plan::tests::decky;
use crate::model::Mode;
use crate::model::detect::{HostNetwork, Network};

fn network() -> Network {
    Network {
        interface: "dnt0".into(),
        subnet: "192.0.2.0/24".parse().expect("cidr"),
        gateway: "192.0.2.1".parse().expect("ip"),
        host_ip: None,
    }
}

fn request(deckies: Vec<model::DeckyConfig>, replace: bool) -> Request<'static> {
    Request {
        fleet: DecnetConfig::new(Mode::Unihost, &network(), deckies).expect("fleet"),
        driver: Driver::Macvlan,
        names: Names::default(),
        host_ip: None,
        image: ImageSpec {
            tag: "decnet/decky:t".into(),
            binary: "/nonexistent".into(),
        },
        custom: &[],
        replace,
        state_path: "/nonexistent/decnet-state.json".into(),
        parallel: 2,
        cancel: Default::default(),
        artifacts_root: "/nonexistent/artifacts".into(),
    }
}

fn deployed() -> State {
    let req = request(vec![decky("a", [192, 0, 2, 10], &["ssh"], "linux")], false);
    State {
        config: req.fleet,
        compose_path: None,
        driver: Driver::Macvlan,
        names: Names::default(),
        hairpin: None,
        image: "decnet/decky:t".into(),
    }
}

#[test]
fn additive_deploys_keep_the_fleet_and_refuse_collisions() {
    let prev = deployed();
    let req = request(vec![decky("b", [192, 0, 2, 11], &["http"], "bsd")], false);
    let (merged, create) = merge(Some(&prev), &req).expect("merge");
    let names: Vec<_> = merged.deckies.iter().map(|d| d.name.as_str()).collect();
    assert_eq!((names, create), (vec!["a", "b"], vec!["b".to_owned()]));

    let same_name = request(vec![decky("a", [192, 0, 2, 12], &["ssh"], "linux")], false);
    assert_eq!(
        merge(Some(&prev), &same_name).unwrap_err().to_string(),
        "decky 'a' already exists; deploy with --replace to replace the fleet"
    );
    let same_ip = request(vec![decky("c", [192, 0, 2, 10], &["ssh"], "linux")], false);
    assert_eq!(
        merge(Some(&prev), &same_ip).unwrap_err().to_string(),
        "IP 192.0.2.10 is already in use by an existing decky (a)"
    );
    let replace = request(vec![decky("a", [192, 0, 2, 10], &["ftp"], "linux")], true);
    let (merged, create) = merge(Some(&prev), &replace).expect("replace");
    assert_eq!(merged.deckies[0].services, ["ftp"]);
    assert_eq!(create, ["a"]);
}

#[test]
fn a_different_network_is_refused_with_a_way_out() {
    let prev = deployed();
    let mut req = request(vec![decky("b", [192, 0, 2, 11], &["ssh"], "linux")], true);
    req.driver = Driver::Ipvlan;
    let e = merge(Some(&prev), &req).unwrap_err().to_string();
    assert!(e.contains("macvlan 192.0.2.0/24 via dnt0"), "{e}");
    assert!(e.contains("decnet teardown --all"), "{e}");
}

#[test]
fn dry_run_plans_only_the_new_deckies_on_the_whole_range() {
    let prev = deployed();
    let req = request(vec![decky("b", [192, 0, 2, 40], &["ssh"], "linux")], false);
    let plan = plan(Some(&prev), &req, "id").expect("plan");
    assert_eq!(plan.deckies.len(), 1);
    assert_eq!(plan.deckies[0].base.name, "b");
    assert_eq!(plan.network.ip_range.to_string(), "192.0.2.0/26");
}

#[test]
fn a_missing_parent_fails_before_docker() {
    let mut req = request(vec![decky("b", [192, 0, 2, 11], &["ssh"], "linux")], false);
    req.fleet.interface = "no-such-nic0".into();
    let host = HostNetwork::default();
    let e = preflight(&req, &host).unwrap_err();
    assert!(matches!(e, Error::NoSuchInterface { .. }), "{e}");
    req.driver = Driver::Bridge;
    assert!(preflight(&req, &host).is_ok(), "a bridge needs no parent");
}
