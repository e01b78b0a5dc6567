//! Seeded randomness for key generation: keys that are functions of the decky's seed,
//! so a restarted decky keeps its host keys and certificate and no two deckies share one.
use std::convert::Infallible;

use ring::hmac;

use super::Persona;

/// A deterministic byte stream keyed by one persona label (HMAC-SHA256 in counter
/// mode), the randomness key generation draws from so a key is a function of the seed.
pub struct SeedRng {
    key: hmac::Key,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeedRng {
    /// The stream of `persona`'s secret for `label`.
    pub fn new(persona: &Persona, label: &str) -> Self {
        SeedRng {
            key: hmac::Key::new(hmac::HMAC_SHA256, &persona.derive(label)),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl rand_core::TryRng for SeedRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for byte in dst {
            if self.used == self.block.len() {
                let tag = hmac::sign(&self.key, &self.counter.to_be_bytes());
                self.block.copy_from_slice(tag.as_ref());
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SeedRng {}
