//! The systemd units of decnet's daemons, inside the binary so a release carries its own
//! (decision swarm #8, #16): the enrolment bundle installs a worker's from here.

/// The agent's unit: deploys deckies for the master, ships their logs.
pub const AGENT: (&str, &str) = (
    "decnet-agent.service",
    include_str!("../units/decnet-agent.service"),
);

/// The units a worker host runs.
pub const WORKER: &[(&str, &str)] = &[AGENT];
