//! The canonical topic names, so producers and consumers cannot drift apart.
//!
//! Fixed topics are constants; topics that embed an id are built by functions that
//! refuse an id holding `.`, `*`, `>` or whitespace (one id is always one token; `:` is
//! fine, as in the reconciler's `<host_uuid>:<name>`). Patterns for the common
//! subscriptions sit at the end.
use super::topic::{TopicError, validate_segment, validate_topic};

fn with_id(prefix: &str, id: &str, suffix: &str) -> Result<String, TopicError> {
    validate_segment(id)?;
    Ok(format!("{prefix}.{id}{suffix}"))
}

/// `topology.<id>.mutation.enqueued`: the API queued a topology mutation.
pub fn topology_mutation_enqueued(topology: &str) -> Result<String, TopicError> {
    with_id("topology", topology, ".mutation.enqueued")
}

/// `topology.<id>.mutation.applying`: the mutator started applying a mutation.
pub fn topology_mutation_applying(topology: &str) -> Result<String, TopicError> {
    with_id("topology", topology, ".mutation.applying")
}

/// `topology.<id>.mutation.applied`: a mutation completed.
pub fn topology_mutation_applied(topology: &str) -> Result<String, TopicError> {
    with_id("topology", topology, ".mutation.applied")
}

/// `topology.<id>.mutation.failed`: a mutation failed.
pub fn topology_mutation_failed(topology: &str) -> Result<String, TopicError> {
    with_id("topology", topology, ".mutation.failed")
}

/// `topology.<id>.status`: the mutator degraded the topology.
pub fn topology_status(topology: &str) -> Result<String, TopicError> {
    with_id("topology", topology, ".status")
}

/// `decky.<id>.state`: the reconciler saw a state transition (`id` = `<host_uuid>:<name>`).
pub fn decky_state(id: &str) -> Result<String, TopicError> {
    with_id("decky", id, ".state")
}

/// `decky.<id>.traffic`: reserved.
pub fn decky_traffic(id: &str) -> Result<String, TopicError> {
    with_id("decky", id, ".traffic")
}

/// `decky.<name>.mutate_request`: the API or CLI asks the mutator to mutate now.
pub fn decky_mutate_request(name: &str) -> Result<String, TopicError> {
    with_id("decky", name, ".mutate_request")
}

/// `decky.<name>.mutation`: a decky's services were rotated.
pub fn decky_mutation(name: &str) -> Result<String, TopicError> {
    with_id("decky", name, ".mutation")
}

/// `decky.<name>.service_added`: a live service edit added a service.
pub fn decky_service_added(name: &str) -> Result<String, TopicError> {
    with_id("decky", name, ".service_added")
}

/// `decky.<name>.service_removed`: a live service edit removed a service.
pub fn decky_service_removed(name: &str) -> Result<String, TopicError> {
    with_id("decky", name, ".service_removed")
}

/// `decky.<name>.service_config_changed`: a live edit changed a service's configuration.
pub fn decky_service_config_changed(name: &str) -> Result<String, TopicError> {
    with_id("decky", name, ".service_config_changed")
}

/// `decky.<name>.lifecycle`: progress of a deploy or mutate operation.
pub fn decky_lifecycle(name: &str) -> Result<String, TopicError> {
    with_id("decky", name, ".lifecycle")
}

/// `orchestrator.traffic.<decky>`: synthetic network activity.
pub fn orchestrator_traffic(decky: &str) -> Result<String, TopicError> {
    with_id("orchestrator.traffic", decky, "")
}

/// `orchestrator.file.<decky>`: synthetic file activity.
pub fn orchestrator_file(decky: &str) -> Result<String, TopicError> {
    with_id("orchestrator.file", decky, "")
}

/// `orchestrator.email.<decky>`: synthetic mail activity.
pub fn orchestrator_email(decky: &str) -> Result<String, TopicError> {
    with_id("orchestrator.email", decky, "")
}

/// `attacker.observation.<primitive…>`: a collector observed a primitive (may be dotted).
pub fn attacker_observation(primitive: &str) -> Result<String, TopicError> {
    let topic = format!("attacker.observation.{primitive}");
    validate_topic(&topic)?;
    Ok(topic)
}

/// `canary.<token>.placed`: a canary token was planted.
pub fn canary_placed(token: &str) -> Result<String, TopicError> {
    with_id("canary", token, ".placed")
}

/// `canary.<token>.triggered`: a canary token fired.
pub fn canary_triggered(token: &str) -> Result<String, TopicError> {
    with_id("canary", token, ".triggered")
}

/// `canary.<token>.revoked`: a canary token was withdrawn.
pub fn canary_revoked(token: &str) -> Result<String, TopicError> {
    with_id("canary", token, ".revoked")
}

/// `system.<worker>.health`: a worker's heartbeat (every 30 s).
pub fn system_health(worker: &str) -> Result<String, TopicError> {
    with_id("system", worker, ".health")
}

/// `system.<worker>.control`: start/stop requests a worker listens to.
pub fn system_control(worker: &str) -> Result<String, TopicError> {
    with_id("system", worker, ".control")
}

/// `ttp.rule.fired.<technique>`: a TTP rule matched.
pub fn ttp_rule_fired(technique: &str) -> Result<String, TopicError> {
    with_id("ttp.rule.fired", technique, "")
}

/// `ttp.rule.reloaded.<rule>`: a TTP rule was reloaded.
pub fn ttp_rule_reloaded(rule: &str) -> Result<String, TopicError> {
    with_id("ttp.rule.reloaded", rule, "")
}

/// `ttp.rule.state.<rule>`: a TTP rule was enabled or disabled.
pub fn ttp_rule_state(rule: &str) -> Result<String, TopicError> {
    with_id("ttp.rule.state", rule, "")
}

/// A correlated attacker was seen.
pub const ATTACKER_OBSERVED: &str = "attacker.observed";
/// An attacker's score changed.
pub const ATTACKER_SCORED: &str = "attacker.scored";
/// An attacker was fingerprinted.
pub const ATTACKER_FINGERPRINTED: &str = "attacker.fingerprinted";
/// An attacker's fingerprint changed.
pub const ATTACKER_FINGERPRINT_ROTATED: &str = "attacker.fingerprint_rotated";
/// An attacker session began.
pub const ATTACKER_SESSION_STARTED: &str = "attacker.session.started";
/// An attacker session ended.
pub const ATTACKER_SESSION_ENDED: &str = "attacker.session.ended";
/// Threat-intel enrichment finished for an attacker.
pub const ATTACKER_INTEL_ENRICHED: &str = "attacker.intel.enriched";
/// The clusterer formed an identity.
pub const IDENTITY_FORMED: &str = "identity.formed";
/// An observation was linked to an identity.
pub const IDENTITY_OBSERVATION_LINKED: &str = "identity.observation.linked";
/// Identities were merged.
pub const IDENTITY_MERGED: &str = "identity.merged";
/// A merge of identities was undone.
pub const IDENTITY_UNMERGED: &str = "identity.unmerged";
/// An identity was assigned to a campaign.
pub const IDENTITY_CAMPAIGN_ASSIGNED: &str = "identity.campaign.assigned";
/// The campaign clusterer formed a campaign.
pub const CAMPAIGN_FORMED: &str = "campaign.formed";
/// An identity joined a campaign.
pub const CAMPAIGN_IDENTITY_ASSIGNED: &str = "campaign.identity.assigned";
/// Campaigns were merged.
pub const CAMPAIGN_MERGED: &str = "campaign.merged";
/// A merge of campaigns was undone.
pub const CAMPAIGN_UNMERGED: &str = "campaign.unmerged";
/// The ingester stored a captured credential.
pub const CREDENTIAL_CAPTURED: &str = "credential.captured";
/// A credential was seen again elsewhere.
pub const CREDENTIAL_REUSE_DETECTED: &str = "credential.reuse.detected";
/// An attribution profile changed state.
pub const ATTRIBUTION_PROFILE_STATE_CHANGED: &str = "attribution.profile.state_changed";
/// An attribution profile looks like several actors.
pub const ATTRIBUTION_PROFILE_MULTI_ACTOR_SUSPECTED: &str =
    "attribution.profile.multi_actor_suspected";
/// A diagnostic log line forwarded on the bus.
pub const SYSTEM_LOG: &str = "system.log";
/// The broker's own heartbeat (every 10 s).
pub const SYSTEM_BUS_HEALTH: &str = "system.bus.health";
/// Webhook subscriptions changed.
pub const SYSTEM_WEBHOOK_SUBSCRIPTIONS_CHANGED: &str = "system.webhook.subscriptions_changed";
/// An SMTP probe awaits processing.
pub const SMTP_PROBE_PENDING: &str = "smtp.probe.pending";
/// A decky received an email.
pub const EMAIL_RECEIVED: &str = "email.received";
/// An event was tagged with TTPs.
pub const TTP_TAGGED: &str = "ttp.tagged";
/// A TTP rule match was suppressed.
pub const TTP_RULE_SUPPRESSED: &str = "ttp.rule.suppressed";

/// Every topology event (`topology.>`).
pub const ALL_TOPOLOGY: &str = "topology.>";
/// Every decky event (`decky.>`).
pub const ALL_DECKY: &str = "decky.>";
/// Every attacker event (`attacker.>`).
pub const ALL_ATTACKER: &str = "attacker.>";
/// Every worker heartbeat (`system.*.health`).
pub const ALL_HEALTH: &str = "system.*.health";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::topic::Pattern;

    #[test]
    fn builders_produce_valid_topics_and_refuse_bad_ids() {
        assert_eq!(
            decky_state("0f3a:web1").as_deref(),
            Ok("decky.0f3a:web1.state")
        );
        assert_eq!(
            topology_mutation_applied("t1").as_deref(),
            Ok("topology.t1.mutation.applied")
        );
        assert_eq!(
            orchestrator_email("web1").as_deref(),
            Ok("orchestrator.email.web1")
        );
        assert_eq!(
            system_health("profiler").as_deref(),
            Ok("system.profiler.health")
        );
        assert_eq!(
            attacker_observation("ssh.banner").as_deref(),
            Ok("attacker.observation.ssh.banner")
        );
        for bad in ["a.b", "*", ">", "a b", ""] {
            assert!(decky_state(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn constants_are_valid_and_patterns_match_them() {
        let fixed = [
            ATTACKER_OBSERVED,
            ATTACKER_SCORED,
            ATTACKER_FINGERPRINTED,
            ATTACKER_FINGERPRINT_ROTATED,
            ATTACKER_SESSION_STARTED,
            ATTACKER_SESSION_ENDED,
            ATTACKER_INTEL_ENRICHED,
            IDENTITY_FORMED,
            IDENTITY_OBSERVATION_LINKED,
            IDENTITY_MERGED,
            IDENTITY_UNMERGED,
            IDENTITY_CAMPAIGN_ASSIGNED,
            CAMPAIGN_FORMED,
            CAMPAIGN_IDENTITY_ASSIGNED,
            CAMPAIGN_MERGED,
            CAMPAIGN_UNMERGED,
            CREDENTIAL_CAPTURED,
            CREDENTIAL_REUSE_DETECTED,
            ATTRIBUTION_PROFILE_STATE_CHANGED,
            ATTRIBUTION_PROFILE_MULTI_ACTOR_SUSPECTED,
            SYSTEM_LOG,
            SYSTEM_BUS_HEALTH,
            SYSTEM_WEBHOOK_SUBSCRIPTIONS_CHANGED,
            SMTP_PROBE_PENDING,
            EMAIL_RECEIVED,
            TTP_TAGGED,
            TTP_RULE_SUPPRESSED,
        ];
        for topic in fixed {
            assert!(validate_topic(topic).is_ok(), "{topic}");
        }
        let attacker = Pattern::parse(ALL_ATTACKER).expect("pattern");
        assert!(attacker.matches(ATTACKER_SESSION_STARTED));
        let health = Pattern::parse(ALL_HEALTH).expect("pattern");
        assert!(health.matches(SYSTEM_BUS_HEALTH));
        let decky = Pattern::parse(ALL_DECKY).expect("pattern");
        assert!(decky.matches(&decky_lifecycle("web1").expect("topic")));
        assert!(Pattern::parse(ALL_TOPOLOGY).is_ok());
    }
}
