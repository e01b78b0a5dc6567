//! Who may ship logs, asked of the store: the allow-list check and the watermarks.
//!
//! One read-only connection shared by every connection task, used on a blocking thread:
//! the queries are point lookups, and one connection keeps the listener's memory flat
//! however many workers connect. Any store error counts as "not allowed" (fail closed).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::pki::Fingerprint;
use crate::store::{self, Reader, Store};

/// Shared access to the allow-list and the committed watermarks.
#[derive(Debug, Clone)]
pub(super) struct Gate {
    reader: Arc<Mutex<Reader>>,
}

impl Gate {
    pub(super) fn new(store: &Store) -> store::Result<Self> {
        Ok(Self {
            reader: Arc::new(Mutex::new(store.reader()?)),
        })
    }

    async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> store::Result<T> + Send + 'static,
    ) -> store::Result<T> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let guard = reader
                .lock()
                .map_err(|_| store::Error::Corrupt("allow-list reader poisoned".into()))?;
            f(&guard)
        })
        .await
        .map_err(|e| store::Error::Corrupt(format!("allow-list check failed: {e}")))?
    }

    /// Whether `cn` is allowed with exactly this certificate; errors refuse.
    pub(super) async fn allowed(&self, cn: &str, fingerprint: &Fingerprint) -> bool {
        let (name, fp) = (cn.to_owned(), fingerprint.clone());
        match self.ask(move |r| r.is_worker_allowed(&name, &fp)).await {
            Ok(allowed) => allowed,
            Err(err) => {
                tracing::warn!(worker = cn, "allow-list check failed, refusing: {err}");
                false
            }
        }
    }

    /// Every committed watermark of `worker`, by source name.
    pub(super) async fn watermarks(&self, worker: &str) -> store::Result<HashMap<String, u64>> {
        let name = worker.to_owned();
        let marks = self.ask(move |r| r.watermarks(&name)).await?;
        Ok(marks.into_iter().map(|w| (w.source, w.seq)).collect())
    }
}
