//! Which role runs: by subcommand, or by the name the binary was called under.
//!
//! One table ([`ROLES`]) lists every role. `argv[0]` is matched by its file name: exactly
//! a role name (`agent`), then a role name after a non-alphanumeric prefix (`decnet-agent`,
//! `decnet_agent`); anything else is `decnet <subcommand>`. A matched name is rewritten
//! into `decnet <role> …` so clap parses every entry point the same way.
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Every role the binary can take, with what it is for.
pub const ROLES: &[(&str, &str)] = &[
    (
        "master",
        "REST API, dashboard, swarm controller, log listener, ingester",
    ),
    ("agent", "worker API the master drives to deploy deckies"),
    (
        "updater",
        "installs new releases pushed by the master, rolls back on failure",
    ),
    ("forwarder", "ships the worker's honeypot log to the master"),
    ("listener", "the master's syslog-over-TLS receiver"),
    ("bus", "host-local publish/subscribe broker"),
    ("reconciler", "compares desired and real fleet state"),
    ("decky", "the honeypot services inside decky containers"),
];

/// The role named by `argv0`'s file name, if it names one.
pub fn role_from_argv0(argv0: &OsStr) -> Option<&'static str> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    if let Some((role, _)) = ROLES.iter().find(|(role, _)| *role == name) {
        return Some(role);
    }
    ROLES.iter().map(|(role, _)| *role).find(|role| {
        name.strip_suffix(role)
            .and_then(|prefix| prefix.chars().last())
            .is_some_and(|c| !c.is_alphanumeric())
    })
}

/// Rewrites a symlink invocation (`decnet-agent --port 1`) into `decnet agent --port 1`.
pub fn normalize(mut args: Vec<OsString>) -> Vec<OsString> {
    let Some(argv0) = args.first() else {
        return vec![OsString::from("decnet")];
    };
    match role_from_argv0(argv0) {
        Some(role) => {
            args[0] = OsString::from("decnet");
            args.insert(1, OsString::from(role));
            args
        }
        None => args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn names_resolve_exactly_then_by_prefix() {
        assert_eq!(role_from_argv0(OsStr::new("agent")), Some("agent"));
        assert_eq!(
            role_from_argv0(OsStr::new("/usr/bin/decnet-agent")),
            Some("agent")
        );
        assert_eq!(
            role_from_argv0(OsStr::new("decnet_forwarder")),
            Some("forwarder")
        );
        assert_eq!(role_from_argv0(OsStr::new("decnet")), None);
        assert_eq!(role_from_argv0(OsStr::new("/opt/x/decnet")), None);
        assert_eq!(role_from_argv0(OsStr::new("superagent")), None);
        assert_eq!(role_from_argv0(OsStr::new("decnet-agentx")), None);
    }

    #[test]
    fn symlink_invocations_become_subcommands() {
        assert_eq!(
            normalize(os(&["/x/decnet-agent", "--port", "1"])),
            os(&["decnet", "agent", "--port", "1"])
        );
        assert_eq!(
            normalize(os(&["decnet", "pki", "init"])),
            os(&["decnet", "pki", "init"])
        );
        assert_eq!(normalize(Vec::new()), os(&["decnet"]));
    }
}
