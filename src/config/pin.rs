//! Which fingerprint the forwarder pins the master by, when several sources name one.
//!
//! Precedence, most specific first: the `--master-fingerprint` flag, then
//! `DECNET_MASTER_FINGERPRINT`, then `master.fingerprint` in the worker bundle (written by
//! `decnet pki issue worker`, shipped with the bundle at enrolment). The flag and the
//! variable are what an operator sets on purpose, for example while the master identity
//! is being replaced and the bundles still carry the old pin; the bundle is the default
//! that needs no configuration. Only one source is used: a pin is never "any of these".
use crate::pki::Fingerprint;

/// Where the pin in use came from, for the operator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOrigin {
    /// `--master-fingerprint`.
    Flag,
    /// `DECNET_MASTER_FINGERPRINT`.
    Env,
    /// `master.fingerprint` in the worker bundle.
    Bundle,
}

impl std::fmt::Display for PinOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flag => "--master-fingerprint",
            Self::Env => super::MASTER_FINGERPRINT,
            Self::Bundle => "the worker bundle's master.fingerprint",
        })
    }
}

/// The pin to apply: flag, else environment, else bundle; `None` when no source has one.
pub fn master_pin(
    flag: Option<&Fingerprint>,
    env: Option<&Fingerprint>,
    bundle: Option<&Fingerprint>,
) -> Option<(Fingerprint, PinOrigin)> {
    [
        (flag, PinOrigin::Flag),
        (env, PinOrigin::Env),
        (bundle, PinOrigin::Bundle),
    ]
    .into_iter()
    .find_map(|(fp, origin)| fp.map(|fp| (fp.clone(), origin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_beats_the_environment_which_beats_the_bundle() {
        let [flag, env, bundle] = [b"flag", b"env_", b"bndl"].map(|b| Fingerprint::of_der(b));
        let pick = |f: bool, e: bool, b: bool| {
            master_pin(f.then_some(&flag), e.then_some(&env), b.then_some(&bundle))
        };
        let want = |fp: &Fingerprint, origin| Some((fp.clone(), origin));
        assert_eq!(pick(true, true, true), want(&flag, PinOrigin::Flag));
        assert_eq!(pick(true, false, true), want(&flag, PinOrigin::Flag));
        assert_eq!(pick(false, true, true), want(&env, PinOrigin::Env));
        assert_eq!(pick(false, true, false), want(&env, PinOrigin::Env));
        assert_eq!(pick(false, false, true), want(&bundle, PinOrigin::Bundle));
        assert_eq!(pick(false, false, false), None);
    }
}
