//! Which parsed events go on to the `.json` file and the bus: the drop list and the
//! connection rate limit of engine.md §3.1. The raw log receives every line regardless.
//!
//! The rate limiter admits at most one event per (attacker IP, decky, service, event type)
//! per window, for the configured event types only: a port scan produces thousands of
//! `connect` lines, and one per window is what the dashboard needs. Time is passed in as a
//! `tokio::time::Instant`, so the logic is pure and tests drive it with a paused clock.
//!
//! The map is bounded at [`MAX_KEYS`]. When it fills, entries older than the window are
//! collected; if that frees less than half of it, the whole map is forgotten. Under a flood
//! of distinct sources that means one extra event per key, never unbounded memory, and
//! keeps the collection cost amortised constant per event.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::CollectorConfig;
use crate::syslog::Event;

/// Most rate-limit keys remembered at once.
pub const MAX_KEYS: usize = 10_000;

/// What the filter decided for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Goes to the `.json` file and the bus.
    Admit,
    /// Its APP-NAME is on the drop list.
    Dropped,
    /// The same key was admitted less than a window ago.
    RateLimited,
}

/// The drop list and the rate limiter, with their state.
#[derive(Debug, Clone)]
pub struct Filter {
    drop_apps: HashSet<String>,
    limited: HashSet<String>,
    window: Option<Duration>,
    last: HashMap<Key, Instant>,
}

/// (attacker IP, decky, service, event type).
type Key = (String, String, String, String);

impl Filter {
    /// A filter as configured; `window` `None` turns the rate limit off.
    pub fn new(config: &CollectorConfig) -> Self {
        Self {
            drop_apps: config.drop_apps.iter().cloned().collect(),
            limited: config.rl_event_types.iter().cloned().collect(),
            window: config.rl_window,
            last: HashMap::new(),
        }
    }

    /// Decides on `event` seen at `now`, recording it when it is admitted.
    pub fn check(&mut self, event: &Event, now: Instant) -> Verdict {
        if self.drop_apps.contains(&event.service) {
            return Verdict::Dropped;
        }
        let Some(window) = self.window else {
            return Verdict::Admit;
        };
        if !self.limited.contains(&event.event_type) {
            return Verdict::Admit;
        }
        let key = (
            event.attacker_ip_or_unknown().to_owned(),
            event.decky.clone(),
            event.service.clone(),
            event.event_type.clone(),
        );
        if let Some(last) = self.last.get(&key)
            && now.saturating_duration_since(*last) < window
        {
            return Verdict::RateLimited;
        }
        if !self.last.contains_key(&key) && self.last.len() >= MAX_KEYS {
            self.last
                .retain(|_, seen| now.saturating_duration_since(*seen) < window);
            if self.last.len() > MAX_KEYS / 2 {
                tracing::warn!(
                    keys = self.last.len(),
                    "collector rate-limit map full of live keys; forgetting it"
                );
                self.last.clear();
            }
        }
        self.last.insert(key, now);
        Verdict::Admit
    }

    /// How many rate-limit keys are remembered.
    pub fn keys(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::parse;

    fn config(window_ms: u64) -> CollectorConfig {
        CollectorConfig {
            drop_apps: vec!["sshd".into(), "CRON".into()],
            rl_event_types: vec!["connect".into()],
            rl_window: Some(Duration::from_millis(window_ms)).filter(|w| !w.is_zero()),
            reconcile: Duration::from_secs(30),
            session_ttl: None,
        }
    }

    fn event(app: &str, msgid: &str, ip: &str) -> Event {
        parse(&format!(
            "<134>1 2026-04-14T12:00:00Z decky-01 {app} - {msgid} [relay@55555 src_ip=\"{ip}\"]"
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn one_connect_per_key_and_window() {
        let mut f = Filter::new(&config(1000));
        let t0 = Instant::now();
        let a = event("redis", "connect", "192.0.2.1");
        let b = event("redis", "connect", "192.0.2.2");
        assert_eq!(f.check(&a, t0), Verdict::Admit);
        assert_eq!(f.check(&a, t0), Verdict::RateLimited);
        assert_eq!(f.check(&b, t0), Verdict::Admit, "another IP");
        let other_type = event("redis", "command", "192.0.2.1");
        assert_eq!(f.check(&other_type, t0), Verdict::Admit);
        assert_eq!(f.check(&other_type, t0), Verdict::Admit);
        let t = t0 + Duration::from_millis(999);
        assert_eq!(f.check(&a, t), Verdict::RateLimited);
        let t = t0 + Duration::from_millis(1000);
        assert_eq!(f.check(&a, t), Verdict::Admit);
        assert_eq!(
            f.check(&a, t0),
            Verdict::RateLimited,
            "a clock that seems to go back never admits early"
        );
    }

    #[test]
    fn drop_list_wins_and_a_zero_window_disables_the_limit() {
        let mut f = Filter::new(&config(0));
        let t0 = Instant::now();
        assert_eq!(
            f.check(&event("CRON", "connect", "192.0.2.1"), t0),
            Verdict::Dropped
        );
        assert_eq!(
            f.check(&event("cron", "connect", "192.0.2.1"), t0),
            Verdict::Admit,
            "the drop list is case-sensitive, as listed"
        );
        let a = event("redis", "connect", "192.0.2.1");
        assert_eq!(f.check(&a, t0), Verdict::Admit);
        assert_eq!(f.check(&a, t0), Verdict::Admit);
        assert_eq!(f.keys(), 0);
    }

    #[test]
    fn the_map_stays_bounded() {
        let mut f = Filter::new(&config(1000));
        let t0 = Instant::now();
        let ip = |i: usize| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        for i in 0..MAX_KEYS {
            assert_eq!(
                f.check(&event("redis", "connect", &ip(i)), t0),
                Verdict::Admit
            );
        }
        assert_eq!(f.keys(), MAX_KEYS);
        // Stale entries are collected first: after a window they all go.
        let t1 = t0 + Duration::from_secs(1);
        let fresh = event("redis", "connect", "192.0.2.200");
        assert_eq!(f.check(&fresh, t1), Verdict::Admit);
        assert_eq!(f.keys(), 1);
        assert_eq!(f.check(&fresh, t1), Verdict::RateLimited);
        // A map full of live keys is forgotten rather than grown.
        for i in 0..MAX_KEYS * 2 {
            f.check(&event("redis", "connect", &ip(i)), t1);
            assert!(f.keys() <= MAX_KEYS);
        }
    }
}
