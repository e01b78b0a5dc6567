//! The status snapshot (swarm.md §4.4): `GET /status` and the `status` of every
//! heartbeat.
//!
//! The state file says what is deployed; Docker says how it runs. Docker is asked once
//! per snapshot (the fleet's containers, stopped ones included), and a Docker error
//! gives an empty runtime map, never an error: a heartbeat must go out even when the
//! engine is down, since that is exactly when the master wants to hear from the worker.
use std::collections::BTreeMap;

use super::AgentState;
use crate::engine::plan::container_name;
use crate::engine::{containers, off_task, state};
use crate::model::DeckyConfig;
use crate::model::swarm::{AgentStatus, DeckyRuntime};

/// The state word of a service whose container does not exist.
pub const ABSENT: &str = "absent";

/// The runtime map of `deckies`, given the `(container name, state word)` of every
/// container found: per service its state or [`ABSENT`], `running` iff the decky has
/// services and all of them run.
pub fn runtime_map<'a>(
    deckies: &[DeckyConfig],
    found: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, DeckyRuntime> {
    let found: BTreeMap<&str, &str> = found.into_iter().collect();
    deckies
        .iter()
        .map(|d| {
            let services: BTreeMap<String, String> = d
                .services
                .iter()
                .map(|svc| {
                    let name = container_name(&d.name, svc);
                    let state = found.get(name.as_str()).copied().unwrap_or(ABSENT);
                    (svc.clone(), state.to_owned())
                })
                .collect();
            let running = !services.is_empty() && services.values().all(|s| s == "running");
            (d.name.clone(), DeckyRuntime { running, services })
        })
        .collect()
}

/// The current snapshot.
pub async fn take(state: &AgentState) -> AgentStatus {
    let st = match state::load(&state.state_path()) {
        Ok(Some(st)) => st,
        Ok(None) => return AgentStatus::default(),
        Err(e) => {
            // A corrupt state file is not a fleet the worker can vouch for.
            tracing::warn!(error = %e, "unreadable state file; reporting no deployment");
            return AgentStatus::default();
        }
    };
    let (s, network) = (state.clone(), st.names.network.clone());
    let found = off_task(move || async move {
        let engine = s.engine().await?;
        containers::of_fleet(&engine, &network, None).await
    })
    .await;
    let runtime = match found {
        Some(Ok(found)) => runtime_map(
            &st.config.deckies,
            found.iter().map(|f| (f.name.as_str(), f.state.as_str())),
        ),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "no runtime map: Docker did not answer");
            BTreeMap::new()
        }
        None => BTreeMap::new(),
    };
    AgentStatus {
        deployed: true,
        mode: Some(st.config.mode),
        compose_path: st.compose_path.map(|p| p.display().to_string()),
        deckies: st.config.deckies,
        runtime: Some(runtime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decky(name: &str, services: &[&str]) -> DeckyConfig {
        serde_json::from_value(serde_json::json!({
            "name": name, "ip": "198.51.100.3", "services": services,
            "distro": "debian", "base_image": "debian", "hostname": name,
        }))
        .expect("decky")
    }

    #[test]
    fn services_are_looked_up_by_container_name() {
        let deckies = [decky("d1", &["ssh", "smb_share"]), decky("d2", &["http"])];
        let found = [
            ("d1-ssh", "running"),
            ("d1-smb-share", "running"),
            ("d2-http", "exited"),
        ];
        let map = runtime_map(&deckies, found);
        assert!(map["d1"].running);
        assert_eq!(map["d1"].services["smb_share"], "running");
        assert!(!map["d2"].running);
        assert_eq!(map["d2"].services["http"], "exited");

        let map = runtime_map(&deckies, [("d1-ssh", "running")]);
        assert!(!map["d1"].running);
        assert_eq!(map["d1"].services["smb_share"], ABSENT);
    }
}
