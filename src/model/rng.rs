//! [`Rng`]: the small seeded generator behind every random choice of the builders.
//!
//! Builders must give the same fleet for the same seed (spec decision engine #9), on every
//! platform and across releases, so they never touch a thread or OS generator. SplitMix64
//! is tiny, well studied and plenty for picking hostnames and service sets; it is not a
//! cryptographic generator and nothing secret is drawn from it.
use std::time::{SystemTime, UNIX_EPOCH};

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is decided by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (`0` when `n == 0`), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        if n == 0 {
            return 0;
        }
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                // x % n < n, which came from a usize.
                return (x % n) as usize;
            }
        }
    }

    /// A uniform value in `lo..=hi` (`lo` when the range is empty).
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// A uniformly chosen element of `items`, `None` when empty.
    pub fn choose<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    /// `k` distinct elements of `items` in random order (all of them if `k` is larger).
    pub fn sample<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        let k = k.min(pool.len());
        for i in 0..k {
            let j = i + self.below(pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }
}

/// A seed for callers that did not choose one: differs between runs, so print it if the
/// outcome must be reproducible.
pub fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(32)).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(42);
        let b: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(Rng::new(43).next_u64(), a[0]);
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut r = Rng::new(7);
        for _ in 0..1000 {
            assert!(r.below(3) < 3);
            let v = r.between(10, 99);
            assert!((10..=99).contains(&v));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.choose::<u8>(&[]), None);
    }

    #[test]
    fn sample_is_distinct() {
        let mut r = Rng::new(1);
        let items: Vec<u32> = (0..10).collect();
        let mut s = r.sample(&items, 5);
        assert_eq!(s.len(), 5);
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 5);
        assert_eq!(r.sample(&items, 50).len(), 10);
    }
}
