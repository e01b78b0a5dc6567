//! [`DeckySeed`]: the per-decky secret every identity detail of a decky is derived from
//! (host keys, certificates, build strings, cookies, bait files).
//!
//! Unlike the builders' [`super::rng::Rng`], the seed is never reproducible: it comes from
//! the operating system's generator when a decky is built and lives only in the fleet
//! state, so no two deckies and no two installs share one, whatever seed the builders ran
//! with. It is serialised as 64 hex digits and never printed: `Debug` masks it.
//! State files written before the seed existed load with a fresh one (`serde(default)`),
//! which the next save keeps.
use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a seed in bytes.
pub const SEED_LEN: usize = 32;

/// A decky's secret seed.
#[derive(Clone, PartialEq, Eq)]
pub struct DeckySeed([u8; SEED_LEN]);

/// A seed that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a decky seed is 64 hex digits")]
pub struct SeedError;

impl DeckySeed {
    /// A fresh seed from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SEED_LEN];
        if SystemRandom::new().fill(&mut bytes).is_err() {
            // getrandom does not fail on Linux once the pool is initialised; should it
            // ever, a seed from the clock and the process is still unique per decky,
            // which is the property that matters here.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let material = format!("{now}:{}:{:p}", std::process::id(), &bytes);
            let digest = ring::digest::digest(&ring::digest::SHA256, material.as_bytes());
            bytes.copy_from_slice(digest.as_ref());
        }
        DeckySeed(bytes)
    }

    /// A seed given as 64 hex digits (the state file's and `DECNET_DECKY_SEED`'s form).
    pub fn from_hex(hex_digits: &str) -> Result<Self, SeedError> {
        let mut bytes = [0u8; SEED_LEN];
        hex::decode_to_slice(hex_digits.trim(), &mut bytes).map_err(|_| SeedError)?;
        Ok(DeckySeed(bytes))
    }

    /// The seed as 64 hex digits, for the one place that hands it to a container.
    pub fn expose_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The seed's bytes, for key derivation.
    pub fn expose(&self) -> &[u8; SEED_LEN] {
        &self.0
    }
}

impl Default for DeckySeed {
    fn default() -> Self {
        Self::generate()
    }
}

impl fmt::Debug for DeckySeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeckySeed(********)")
    }
}

impl Serialize for DeckySeed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.expose_hex())
    }
}

impl<'de> Deserialize<'de> for DeckySeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        DeckySeed::from_hex(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_fresh_masked_and_round_trip_as_hex() {
        let a = DeckySeed::generate();
        assert_ne!(a, DeckySeed::generate());
        assert_eq!(format!("{a:?}"), "DeckySeed(********)");
        let json = serde_json::to_string(&a).expect("serialise");
        assert_eq!(json, format!("\"{}\"", a.expose_hex()));
        assert_eq!(serde_json::from_str::<DeckySeed>(&json).expect("parse"), a);
        assert!(DeckySeed::from_hex("abcd").is_err());
        assert!(serde_json::from_str::<DeckySeed>(&format!("\"{}\"", "z".repeat(64))).is_err());
    }
}
