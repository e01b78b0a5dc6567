//! What `decnet up` creates once and finds again on every later run.
//!
//! - The decnet CA and the master identity (`$DECNET_PKI_DIR`), the listener's mTLS
//!   certificate.
//! - The in-process forwarder's worker bundle [`LOCAL_WORKER`] in `$DECNET_AGENT_DIR`
//!   (where `decnet forwarder` looks), put on the listener's allow-list with its pin and
//!   given the master's current pin, so the one-host log path is the swarm's own.
//! - The admin account: with `DECNET_ADMIN_PASSWORD` when given, else a random password
//!   returned here to be printed once, never logged and never stored in clear. Later runs
//!   find the account and print nothing; `--reset-admin-password` replaces its password
//!   (and revokes its tokens) with a new random one, printed the same way.
//! - The token key `jwt.secret` (0600), through the master's own bootstrap.
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Error;
use crate::config::{Config, Secret};
use crate::pki::{Bundle, Kind, Layout, write_master_pin};
use crate::roles::master::state::MasterConfig;
use crate::roles::master::{auth, bootstrap, random_hex};
use crate::store::Store;

/// CN of the in-process forwarder's worker certificate.
pub const LOCAL_WORKER: &str = "local";
/// Random bytes of a generated admin password (printed as twice as many hex digits).
const PASSWORD_BYTES: usize = 12;

/// What the first-run step leaves for the rest of `decnet up`.
#[derive(Debug)]
pub struct Prepared {
    /// The master API's configuration (store, token key, settings).
    pub master: MasterConfig,
    /// The listener's identity.
    pub identity: Bundle,
    /// A password generated now: print it once.
    pub new_password: Option<Secret>,
    /// Whether the admin account existed before this run.
    pub admin_existed: bool,
}

/// A fresh random admin password.
fn generate_password() -> Secret {
    Secret::new(random_hex(PASSWORD_BYTES))
}

/// Creates what is missing (PKI, local worker, admin, token key) and loads the rest.
/// Blocking (key generation, argon2id): run it off the async runtime.
pub fn prepare(config: &Config, store: Store, reset_password: bool) -> Result<Prepared, Error> {
    let layout = Layout::new(config.pki_dir.clone());
    layout.ensure_ca()?;
    let identity = layout.ensure_master()?;
    local_worker(&layout, &config.agent_dir, &identity, &store)?;

    let mut config = config.clone();
    let admin = store.reader()?.user_by_name(&config.api.admin_user)?;
    let mut new_password = None;
    match (&admin, &config.api.admin_password) {
        (None, None) => {
            let password = generate_password();
            config.api.admin_password = Some(password.clone());
            new_password = Some(password);
        }
        (Some(user), _) if reset_password => {
            let password = config
                .api
                .admin_password
                .clone()
                .unwrap_or_else(generate_password);
            let hash = auth::password::hash(password.expose()).map_err(Error::Hash)?;
            store.set_password(&user.uuid, &hash, true, now_ms())?;
            new_password = Some(password);
        }
        _ => {}
    }
    let master = bootstrap::prepare(&config, store)?;
    Ok(Prepared {
        master,
        identity,
        new_password,
        admin_existed: admin.is_some(),
    })
}

/// Milliseconds since the epoch (tokens issued before a password reset are revoked).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Issues the local worker bundle in `dir` once, and on every run re-pins the master in
/// it and the bundle on the allow-list (a reissued identity must not cut the link).
fn local_worker(layout: &Layout, dir: &Path, master: &Bundle, store: &Store) -> Result<(), Error> {
    let stem = Kind::Worker.stem();
    if !Bundle::exists(dir, stem) {
        layout.issue_host(
            Kind::Worker,
            LOCAL_WORKER,
            &["127.0.0.1".to_owned()],
            Some(dir),
            false,
        )?;
    }
    let bundle = Bundle::load(dir, stem)?;
    write_master_pin(dir, master.fingerprint())?;
    store.allow_worker(bundle.cn(), bundle.fingerprint())?;
    Ok(())
}
