//! A compose file for a [`Plan`], for operators who prefer `docker compose` (engine.md
//! §1.7). decnet itself never runs compose: it creates the same containers through the
//! Engine API.
//!
//! The file is YAML whose values are written as JSON (JSON is a subset of YAML), which
//! keeps quoting right without a YAML library. The network is `external`: it is created
//! by `decnet deploy` (or by hand: the header says how).
//!
//! The environment is the real one, persona secrets included: a compose file whose
//! passwords were masked would deploy deckies with the wrong credentials. Whoever writes
//! the file makes it private (`deploy --compose` writes it 0600).
use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::plan::{Attach, ContainerPlan, Driver, LABEL_DEPLOY, LOG_MAX_FILE, LOG_MAX_SIZE, Plan};

/// The compose file of `plan`.
pub fn render(plan: &Plan) -> String {
    let net = &plan.network;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# decnet fleet: {} deckies. Create the network first:\n\
         #   docker network create -d {} {}--subnet {} --gateway {} --ip-range {} {}",
        plan.deckies.len(),
        net.driver,
        match net.driver {
            Driver::Ipvlan => format!("-o parent={} -o ipvlan_mode=l2 ", net.parent),
            Driver::Macvlan => format!("-o parent={} ", net.parent),
            Driver::Bridge => String::new(),
        },
        net.subnet,
        net.gateway,
        net.ip_range,
        net.names.network
    );
    out.push_str("services:\n");
    for d in &plan.deckies {
        for c in d.containers() {
            service(&mut out, &net.names.network, c);
        }
    }
    let _ = writeln!(
        out,
        "networks:\n  {}:\n    external: true",
        j(&json!(net.names.network))
    );
    out
}

/// Appends the service entry of container `c`.
fn service(out: &mut String, network: &str, c: &ContainerPlan) {
    let mut fields: Vec<(&str, Value)> =
        vec![("image", json!(c.image)), ("container_name", json!(c.name))];
    if let Some(h) = &c.hostname {
        fields.push(("hostname", json!(h)));
    }
    if !c.cmd.is_empty() {
        fields.push(("command", json!(c.cmd)));
    }
    fields.push(("environment", json!(c.env)));
    // The deploy id only matters to `decnet deploy`'s own roll-back.
    let labels: BTreeMap<&String, &String> = c
        .labels
        .iter()
        .filter(|(k, _)| *k != LABEL_DEPLOY)
        .collect();
    fields.push(("labels", json!(labels)));
    fields.push(("restart", json!("unless-stopped")));
    if !c.cap_add.is_empty() {
        fields.push(("cap_add", json!(c.cap_add)));
    }
    if !c.sysctls.is_empty() {
        fields.push(("sysctls", json!(c.sysctls)));
    }
    if !c.mounts.is_empty() {
        // `decnet deploy` makes these 0700 first; compose alone creates missing ones with
        // the daemon's default mode.
        let volumes: Vec<Value> = c
            .mounts
            .iter()
            .map(|m| {
                json!({
                    "type": "bind",
                    "source": m.host,
                    "target": m.container,
                    "read_only": m.read_only,
                    "bind": {"create_host_path": true},
                })
            })
            .collect();
        fields.push(("volumes", json!(volumes)));
    }
    match &c.attach {
        Attach::Lan { ip, mac } => {
            if let Some(mac) = mac {
                fields.push(("mac_address", json!(mac)));
            }
            fields.push((
                "networks",
                json!({ network: { "ipv4_address": ip.to_string() } }),
            ));
        }
        Attach::Join(base) => {
            fields.push(("network_mode", json!(format!("service:{base}"))));
            fields.push(("depends_on", json!([base])));
        }
    }
    fields.push((
        "logging",
        json!({"driver": "json-file", "options": {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILE}}),
    ));
    let _ = writeln!(out, "  {}:", j(&json!(c.name)));
    for (key, value) in fields {
        let _ = writeln!(out, "    {key}: {}", j(&value));
    }
}

/// A value as one line of JSON (valid YAML flow style).
fn j(v: &Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::tests::decky;
    use crate::engine::plan::{Driver, Names, PlanOptions};
    use crate::model::{DecnetConfig, Mode, detect::Network};

    #[test]
    fn bases_sit_on_the_lan_and_services_join_them() {
        let net = Network {
            interface: "dnt0".into(),
            subnet: "192.0.2.0/24".parse().expect("cidr"),
            gateway: "192.0.2.1".parse().expect("ip"),
            host_ip: None,
        };
        let fleet = DecnetConfig::new(
            Mode::Unihost,
            &net,
            vec![decky(
                "web",
                [192, 0, 2, 5],
                &["http", "docker_api", "ftp"],
                "linux",
            )],
        )
        .expect("fleet");
        let opts = PlanOptions {
            driver: Driver::Macvlan,
            names: Names::default(),
            image: "decnet/decky:t".into(),
            host_ip: None,
            custom: &[],
            deploy_id: "x".into(),
            artifacts_root: "/srv/a".into(),
        };
        let text = render(&Plan::new(&fleet, &["web".into()], &opts));
        assert!(
            text.contains("-d macvlan -o parent=dnt0 --subnet 192.0.2.0/24"),
            "{text}"
        );
        assert!(
            text.contains("  \"web\":\n    image: \"decnet/decky:t\""),
            "{text}"
        );
        assert!(text.contains("networks: {\"decnet_lan\":{\"ipv4_address\":\"192.0.2.5\"}}"));
        assert!(text.contains("  \"web-docker-api\":\n"), "{text}");
        assert!(text.contains("network_mode: \"service:web\""));
        assert!(
            text.contains(
                "volumes: [{\"bind\":{\"create_host_path\":true},\"read_only\":false,\
                 \"source\":\"/srv/a/web/ftp\",\"target\":\"/srv/ftp/.quarantine\",\
                 \"type\":\"bind\"}]"
            ),
            "{text}"
        );
        assert_eq!(text.matches("volumes:").count(), 1, "only ftp captures");
        assert!(!text.contains("decnet.fleet.deploy"), "{text}");
        assert!(text.contains("\"net.ipv4.ip_default_ttl\":\"64\""));
        assert!(text.ends_with("networks:\n  \"decnet_lan\":\n    external: true\n"));
    }
}
