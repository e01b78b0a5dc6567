//! How long a refused login takes, as the claimed sshd takes it.
//!
//! sshd answers a failed method (other than `none`) no sooner than a per-user delay of
//! 5 to 9.2 ms (`auth2.c`, `user_specific_delay`), so timing tells no user names apart.
//! A password or keyboard-interactive answer goes through PAM where the distro builds
//! sshd with it: `pam_unix` asks for a delay on failure "of the order of two seconds"
//! (pam_unix(8)), which libpam randomises by up to a quarter either way
//! (`pam_fail_delay`). Alpine's sshd is built without PAM and refuses at once. A fixed
//! pause to the millisecond, as russh has it, would be a tell of its own.
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

/// sshd's floor for every refused method but `none` (`MIN_FAIL_DELAY_SECONDS`).
pub const FLOOR: Duration = Duration::from_millis(5);

/// pam_unix's delay on failure, milliseconds.
pub const PAM_MS: u64 = 2000;

/// The pause before a refused password or keyboard-interactive answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailDelay {
    mean: Duration,
}

impl FailDelay {
    /// A delay of `mean_ms` on average, randomised by up to a quarter either way.
    pub fn new(mean_ms: u64) -> Self {
        FailDelay {
            mean: Duration::from_millis(mean_ms),
        }
    }

    /// The default mean of distro `slug`'s sshd, milliseconds.
    pub fn default_ms(slug: &str) -> u64 {
        match slug {
            "alpine" => 0,
            _ => PAM_MS,
        }
    }

    /// One draw: uniform in [¾, 1¼] of the mean.
    pub fn draw(&self) -> Duration {
        let mut b = [0u8; 4];
        let r = SystemRandom::new()
            .fill(&mut b)
            .map_or(u32::MAX / 2, |()| u32::from_le_bytes(b));
        let factor = 0.75 + 0.5 * f64::from(r) / f64::from(u32::MAX);
        self.mean.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_spread_around_the_mean_within_a_quarter() {
        let d = FailDelay::new(2000);
        let draws: Vec<Duration> = (0..200).map(|_| d.draw()).collect();
        let (lo, hi) = (Duration::from_millis(1500), Duration::from_millis(2500));
        assert!(draws.iter().all(|x| (lo..=hi).contains(x)), "{draws:?}");
        let below = draws
            .iter()
            .filter(|x| **x < Duration::from_secs(2))
            .count();
        assert!((40..=160).contains(&below), "{below} of 200 below the mean");
        assert_eq!(FailDelay::new(0).draw(), Duration::ZERO);
        assert_eq!(FailDelay::default_ms("alpine"), 0);
        assert_eq!(FailDelay::default_ms("debian"), PAM_MS);
    }
}
