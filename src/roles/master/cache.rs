//! The two caches of the hot reads (engine.md §7.1, §7.5 "Caching pattern").
//!
//! - [`Cached`]: one value per endpoint with a TTL and a lock held across the load, so
//!   concurrent callers of an expired entry collapse into one database hit
//!   (single flight), the others served the expired value meanwhile; filtered requests
//!   bypass it.
//! - [`TtlMap`]: a bounded key→value map with a TTL per entry (user by uuid, revoked
//!   token ids), invalidated explicitly on every write this process makes.
//!
//! Both read `tokio::time::Instant`, so tests can pause the clock.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// One cached value with a time to live, loaded by one caller at a time.
///
/// A fresh value is read under a short synchronous lock, so the hot path never waits
/// behind a load. When the value has expired, the first caller reloads it while the
/// others keep getting the expired one until the reload lands (stale while
/// revalidating): a count over a million rows then delays one request, not every
/// request queued behind it. Only when there is no value at all (first use, or after
/// [`Cached::invalidate`]) do callers wait for the one load.
#[derive(Debug)]
pub struct Cached<V> {
    ttl: Duration,
    slot: Mutex<Option<(Instant, V)>>,
    loading: tokio::sync::Mutex<()>,
}

impl<V: Clone> Cached<V> {
    /// An empty cache whose values live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The value, and whether it is still fresh.
    fn peek(&self) -> Option<(V, bool)> {
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .map(|(at, v)| (v.clone(), at.elapsed() < self.ttl))
    }

    /// The cached value if fresh, else what `load` returns (cached only on success);
    /// an expired value while another caller reloads it.
    pub async fn get_or_load<E, F, Fut>(&self, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let _guard = match self.peek() {
            Some((v, true)) => return Ok(v),
            Some((v, false)) => match self.loading.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(v),
            },
            None => self.loading.lock().await,
        };
        // Another caller may have loaded it while this one waited for the lock.
        if let Some((v, true)) = self.peek() {
            return Ok(v);
        }
        let v = load().await?;
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), v.clone()));
        Ok(v)
    }

    /// Forgets the value, so the next caller loads it again.
    pub fn invalidate(&self) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A bounded map whose entries expire `ttl` after they were put.
#[derive(Debug)]
pub struct TtlMap<K, V> {
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    /// An empty map of at most `max` entries living `ttl` each.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key` if present and fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Puts `value` for `key`; when full, expired entries go first, then everything.
    pub fn put(&self, key: K, value: V) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max && !map.contains_key(&key) {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), value));
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_load_until_the_ttl_ends() {
        let cache = Arc::new(Cached::new(Duration::from_secs(5)));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load(|| async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.ok(), Some(Ok(7)));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        let v = cache.get_or_load(|| async { Ok::<_, ()>(8) }).await;
        assert_eq!(v, Ok(8));
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_value_is_served_while_one_caller_reloads_it() {
        let cache = Arc::new(Cached::new(Duration::from_secs(5)));
        assert_eq!(cache.get_or_load(|| async { Ok::<_, ()>(1) }).await, Ok(1));
        tokio::time::advance(Duration::from_secs(5)).await;
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let slow = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load(|| async move {
                        let _ = wait.await;
                        Ok::<_, ()>(2)
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        let during = cache.get_or_load(|| async { Ok::<_, ()>(3) }).await;
        assert_eq!(during, Ok(1), "the reload in flight is not repeated");
        let _ = release.send(());
        assert_eq!(slow.await.ok(), Some(Ok(2)));
        assert_eq!(cache.get_or_load(|| async { Ok::<_, ()>(4) }).await, Ok(2));
        cache.invalidate();
        assert_eq!(cache.get_or_load(|| async { Ok::<_, ()>(5) }).await, Ok(5));
    }

    #[tokio::test(start_paused = true)]
    async fn map_entries_expire_and_the_map_stays_bounded() {
        let m = TtlMap::new(Duration::from_secs(10), 2);
        m.put(1, "a");
        m.put(2, "b");
        m.put(3, "c");
        assert!(m.get(&3).is_some());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(m.get(&3), None);
    }
}
