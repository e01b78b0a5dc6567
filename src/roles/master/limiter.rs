//! In-memory fixed-window rate limits (engine.md §7.1, §7.5), keyed by a string such as
//! the TCP peer's address or a claimed username.
//!
//! The peer address is the socket's, never `X-Forwarded-For`: a header is the client's
//! to choose. Memory is bounded: at most [`MAX_KEYS`] keys are tracked; when full,
//! expired windows are dropped first, and if none has expired the newcomer is counted
//! against one shared overflow key, so a flood of distinct keys cannot lift the limit.
//! Windows read `tokio::time::Instant`, so tests can pause the clock.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most keys tracked at once per limiter.
pub const MAX_KEYS: usize = 65_536;

/// The key every newcomer shares while the table is full.
const OVERFLOW_KEY: &str = "\u{0}overflow";

/// A limit of `max` hits per `window` for each key.
#[derive(Debug)]
pub struct Limiter {
    max: u32,
    window: Duration,
    enabled: bool,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Limiter {
    /// A limiter allowing `max` hits per `window` and key; `enabled: false` allows all.
    pub fn new(max: u32, window: Duration, enabled: bool) -> Self {
        Self {
            max,
            window,
            enabled,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit for `key`: `Ok` if within the limit, else the seconds until the
    /// window ends.
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        if !self.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.window;
        if !hits.contains_key(key) && hits.len() >= MAX_KEYS {
            hits.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let key = if hits.contains_key(key) || hits.len() < MAX_KEYS {
            key
        } else {
            OVERFLOW_KEY
        };
        let slot = hits.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(slot.0) >= window {
            *slot = (now, 0);
        }
        if slot.1 >= self.max {
            let left = window.saturating_sub(now.duration_since(slot.0));
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(secs.max(1));
        }
        slot.1 += 1;
        Ok(())
    }

    /// The limit as the 429 text states it.
    pub fn describe(&self) -> String {
        let secs = self.window.as_secs();
        let per = match secs {
            60 => "minute".to_owned(),
            s if s % 60 == 0 => format!("{} minutes", s / 60),
            s => format!("{s} seconds"),
        };
        format!("Rate limit exceeded: {} per {per}", self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_key_gets_max_hits_per_window() {
        let l = Limiter::new(2, Duration::from_secs(60), true);
        assert_eq!(l.hit("a"), Ok(()));
        assert_eq!(l.hit("a"), Ok(()));
        assert_eq!(l.hit("a"), Err(60));
        assert_eq!(l.hit("b"), Ok(()));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(l.hit("a"), Ok(()));
        assert_eq!(l.describe(), "Rate limit exceeded: 2 per minute");
        let off = Limiter::new(0, Duration::from_secs(1), false);
        assert_eq!(off.hit("a"), Ok(()));
    }
}
