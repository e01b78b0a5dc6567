//! The canonical topic names, so producers and consumers cannot drift apart.
//!
//! Fixed topics are constants; topics that embed an id are built by functions that
//! refuse an id holding `.`, `*`, `>` or whitespace (one id is always one token; `:` is
//! fine, as in the reconciler's `<host_uuid>:<name>`). A name is added here together with
//! the first code that publishes or subscribes to it; the whole hierarchy the original
//! used is listed in engine.md §4.
use super::topic::{TopicError, validate_segment};

fn with_id(prefix: &str, id: &str, suffix: &str) -> Result<String, TopicError> {
    validate_segment(id)?;
    Ok(format!("{prefix}.{id}{suffix}"))
}

/// `system.<worker>.health`: a worker's heartbeat (every 30 s).
pub fn system_health(worker: &str) -> Result<String, TopicError> {
    with_id("system", worker, ".health")
}

/// `system.<worker>.control`: start/stop requests a worker listens to.
pub fn system_control(worker: &str) -> Result<String, TopicError> {
    with_id("system", worker, ".control")
}

/// `decky.<name>.lifecycle`: a background decky operation moved (a worker reported it).
pub fn decky_lifecycle(decky: &str) -> Result<String, TopicError> {
    with_id("decky", decky, ".lifecycle")
}

/// A shell session ended; its commands are attached (the collector's aggregator).
pub const ATTACKER_SESSION_ENDED: &str = "attacker.session.ended";
/// A credential was stored or attempted again (the ingester).
pub const CREDENTIAL_CAPTURED: &str = "credential.captured";
/// An address was profiled for the first time (the profiler).
pub const ATTACKER_OBSERVED: &str = "attacker.observed";
/// An attacker profile changed (the profiler).
pub const ATTACKER_SCORED: &str = "attacker.scored";
/// A diagnostic log line forwarded on the bus.
pub const SYSTEM_LOG: &str = "system.log";
/// The broker's own heartbeat (every 10 s).
pub const SYSTEM_BUS_HEALTH: &str = "system.bus.health";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::topic::{Pattern, validate_topic};

    #[test]
    fn builders_produce_valid_topics_and_refuse_bad_ids() {
        assert_eq!(
            system_health("profiler").as_deref(),
            Ok("system.profiler.health")
        );
        assert_eq!(
            system_control("0f3a:web1").as_deref(),
            Ok("system.0f3a:web1.control")
        );
        for bad in ["a.b", "*", ">", "a b", ""] {
            assert!(system_health(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn constants_are_valid_and_health_topics_match_one_pattern() {
        for topic in [
            ATTACKER_SESSION_ENDED,
            CREDENTIAL_CAPTURED,
            ATTACKER_OBSERVED,
            ATTACKER_SCORED,
            SYSTEM_LOG,
            SYSTEM_BUS_HEALTH,
        ] {
            assert!(validate_topic(topic).is_ok(), "{topic}");
        }
        let health = Pattern::parse("system.*.health").expect("pattern");
        assert!(health.matches(SYSTEM_BUS_HEALTH));
        assert!(health.matches(&system_health("collector").expect("topic")));
    }
}
