//! sshd's default `MaxStartups 10:30:100`: once 10 connections are unauthenticated, each
//! new one is dropped with a chance of 30 %, rising linearly to every one at 100; a
//! dropped client reads `Exceeded MaxStartups` and the close, as from OpenSSH's listener
//! (`sshd.c`, `should_drop_connection`).
//!
//! A real sshd does this out of the box, so a decky that keeps hundreds of handshakes
//! going at once would be unlike the release it claims. It also bounds what a flood of
//! half-finished handshakes costs the decky: each holds key-exchange state and buffers.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ring::rand::{SecureRandom, SystemRandom};

/// Unauthenticated connections served before any is dropped.
pub const BEGIN: usize = 10;
/// The drop chance, percent, at [`BEGIN`].
pub const RATE: usize = 30;
/// Unauthenticated connections past which every new one is dropped.
pub const FULL: usize = 100;
/// What a dropped client reads before the close.
pub const REFUSAL: &[u8] = b"Exceeded MaxStartups\r\n";

/// The count of unauthenticated connections of one ssh service.
#[derive(Debug, Default)]
pub struct Startups {
    open: Arc<AtomicUsize>,
}

/// One unauthenticated connection; dropping it (login or close) frees its place.
#[derive(Debug)]
pub struct Startup {
    open: Arc<AtomicUsize>,
}

impl Drop for Startup {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Startups {
    /// A place for a new connection, or `None` when sshd would drop it.
    pub fn admit(&self) -> Option<Startup> {
        self.admit_with(percent)
    }

    /// [`Startups::admit`] with `roll` giving the random percentage (0..100).
    fn admit_with(&self, roll: impl FnOnce() -> usize) -> Option<Startup> {
        // Counted first, so concurrent accepts never see fewer than there are.
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        let startup = Startup {
            open: self.open.clone(),
        };
        (!should_drop(before, roll)).then_some(startup)
    }

    /// Unauthenticated connections now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// sshd's decision for a connection that finds `startups` unauthenticated ones.
fn should_drop(startups: usize, roll: impl FnOnce() -> usize) -> bool {
    if startups < BEGIN {
        return false;
    }
    if startups >= FULL {
        return true;
    }
    let p = (100 - RATE) * (startups - BEGIN) / (FULL - BEGIN) + RATE;
    roll() < p
}

/// A uniform percentage from the system's generator (100 when it fails: drop).
fn percent() -> usize {
    let mut bytes = [0u8; 4];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return 100;
    }
    // The bias of a 32-bit draw reduced mod 100 is below 1e-7.
    (u32::from_le_bytes(bytes) % 100) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chance_rises_from_30_to_100_percent() {
        assert!(!should_drop(9, || 0));
        // At 10 startups, rolls 0..30 drop and 30.. pass.
        assert!(should_drop(10, || 29));
        assert!(!should_drop(10, || 30));
        // Half-way (55): 30 + 70 * 45 / 90 = 65.
        assert!(should_drop(55, || 64));
        assert!(!should_drop(55, || 65));
        assert!(should_drop(99, || 98));
        assert!(should_drop(100, || unreachable!("no roll past the limit")));
    }

    #[test]
    fn places_are_freed_when_dropped() {
        let s = Startups::default();
        let held: Vec<_> = (0..BEGIN).map(|_| s.admit_with(|| 0)).collect();
        assert!(held.iter().all(Option::is_some));
        assert_eq!(s.open(), BEGIN);
        assert!(s.admit_with(|| 0).is_none(), "the 11th drops on a low roll");
        assert_eq!(s.open(), BEGIN, "a refused connection holds no place");
        drop(held);
        assert_eq!(s.open(), 0);
        assert!(s.admit_with(|| 0).is_some());
    }
}
