//! The API's way into the store: every query runs on a blocking thread, on a pooled
//! read-only connection, so SQLite never stalls the async runtime.
//!
//! At most [`MAX_CONCURRENT`] queries run at once (a bounded number of threads and
//! connections however many requests arrive); idle readers are kept for reuse, at most
//! [`MAX_IDLE`]. Writes (accounts, state) are rare and go through [`Store`]'s own
//! short-lived connections, also off the runtime.
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::store::{self, Reader, Store};

/// Queries running at once.
pub const MAX_CONCURRENT: usize = 8;
/// Idle reader connections kept.
pub const MAX_IDLE: usize = 8;

/// The store, a reader pool and the concurrency bound.
#[derive(Debug, Clone)]
pub struct Db {
    store: Store,
    idle: Arc<Mutex<Vec<Reader>>>,
    permits: Arc<Semaphore>,
}

impl Db {
    /// Wraps an opened (migrated) store.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
        }
    }

    /// The store itself.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `f` on a pooled reader on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> store::Result<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("database pool closed".into()))?;
        let (store, idle) = (self.store.clone(), self.idle.clone());
        let job = move || {
            let pooled = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let reader = match pooled {
                Some(r) => r,
                None => store.reader()?,
            };
            let out = f(&reader);
            // A reader whose query failed may be in a bad state: it is not reused.
            if out.is_ok() {
                let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(reader);
                }
            }
            out
        };
        Ok(tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| ApiError::Internal(format!("database task: {e}")))??)
    }

    /// Runs the write `f` on a blocking thread.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> store::Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiError::Internal(format!("database task: {e}")))??)
    }
}
