//! Enrolment (swarm.md §5.4): issue the worker's identity (and optionally its updater's),
//! write the bundle with the master's and the controller's pins, record the host.
//!
//! Bundle files are written before the row is inserted, so a failed insert leaves only
//! files behind, never a host whose certificate does not exist.
use std::path::PathBuf;

use super::super::error::ApiError;
use super::super::state::AppState;
use super::dto::{EnrollRequest, EnrolledBundle, UpdaterBundle};
use crate::pki::{self, Bundle, Kind, Layout};
use crate::store::SwarmHost;
use crate::store::swarm_status::{ENROLLED, now_text};

/// What to enrol, already validated by the caller (the bundle flow has no address yet).
#[derive(Debug, Clone)]
pub struct EnrollSpec {
    /// Host name (certificate CN).
    pub name: String,
    /// How the master reaches it (`""` until a connect-back).
    pub address: String,
    /// Agent port.
    pub agent_port: u16,
    /// Agent certificate SANs besides the address and the name.
    pub sans: Vec<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Also issue an updater identity.
    pub updater: bool,
    /// Deploy with IPvlan on this host.
    pub use_ipvlan: bool,
}

/// An enrolled host: its row and the bundle (with private keys) to hand over once.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The inserted row.
    pub host: SwarmHost,
    /// The bundle.
    pub bundle: EnrolledBundle,
    /// Where the master keeps the bundle.
    pub dir: PathBuf,
}

fn conflict(name: &str) -> ApiError {
    ApiError::Conflict(format!("Worker '{name}' is already enrolled"))
}

/// `POST /swarm/enroll`: validates `req`, then [`enroll_host`].
pub async fn enroll(state: &AppState, req: EnrollRequest) -> Result<Enrolled, ApiError> {
    req.validate()?;
    let spec = EnrollSpec {
        name: req.name,
        address: req.address,
        agent_port: req.agent_port,
        sans: req.sans,
        notes: req.notes,
        updater: req.issue_updater_bundle,
        use_ipvlan: false,
    };
    enroll_host(state, spec).await
}

struct Issued {
    worker: Bundle,
    updater: Option<Bundle>,
    dir: PathBuf,
    master_pin: String,
}

fn issue(
    layout: &Layout,
    spec: &EnrollSpec,
    swarmctl: Option<&pki::Fingerprint>,
) -> Result<Issued, ApiError> {
    let name_err = |e: pki::Error| match e {
        pki::Error::ReservedName { .. } | pki::Error::InvalidName { .. } => {
            ApiError::Unprocessable(format!("name: {e}"))
        }
        other => ApiError::Internal(format!("issuing the bundle: {other}")),
    };
    layout.ensure_ca().map_err(name_err)?;
    let mut sans: Vec<String> = Vec::new();
    for s in spec
        .sans
        .iter()
        .chain([&spec.address, &spec.name])
        .filter(|s| !s.is_empty())
    {
        if !sans.contains(s) {
            sans.push(s.clone());
        }
    }
    // No row holds this name (checked by the caller), so a bundle left in its directory
    // (an earlier failed insert, a manual `pki issue`) belongs to nobody: replace it.
    let (worker, dir) = layout
        .issue_host(Kind::Worker, &spec.name, &sans, None, true)
        .map_err(name_err)?;
    let updater = if spec.updater {
        // `updater@<name>` is its CN; it is no DNS name, so unlike the original it is not
        // repeated as a SAN (the CA refuses it). `issue_host` adds 127.0.0.1.
        Some(
            layout
                .issue_host(Kind::Updater, &spec.name, &sans, None, true)
                .map_err(name_err)?
                .0,
        )
    } else {
        None
    };
    if let Some(pin) = swarmctl {
        pki::write_swarmctl_pin(&dir, pin).map_err(name_err)?;
    }
    let master_pin = pki::read_master_pin(&dir)
        .map_err(name_err)?
        .map(|p| p.to_string())
        .unwrap_or_default();
    Ok(Issued {
        worker,
        updater,
        dir,
        master_pin,
    })
}

/// Issues the bundle of `spec` and inserts the host (status `enrolled`); the plain
/// function the controller's and the main API's enrolment routes share.
pub async fn enroll_host(state: &AppState, spec: EnrollSpec) -> Result<Enrolled, ApiError> {
    state.swarm.registry.ensure_loaded(&state.db).await?;
    let _one = state.swarm.enrolling.lock().await;
    let name = spec.name.clone();
    if state
        .db
        .read(move |r| r.host_by_name(&name))
        .await?
        .is_some()
    {
        return Err(conflict(&spec.name));
    }
    let layout = state.swarm.layout();
    let swarmctl = state.swarm.controller_pin();
    let (s, pin) = (spec.clone(), swarmctl.clone());
    let issued = tokio::task::spawn_blocking(move || issue(&layout, &s, pin.as_ref()))
        .await
        .map_err(|e| ApiError::Internal(format!("issuing task: {e}")))??;
    let host = SwarmHost {
        uuid: super::super::new_uuid(),
        name: spec.name.clone(),
        address: spec.address.clone(),
        agent_port: spec.agent_port,
        status: ENROLLED.into(),
        last_heartbeat: None,
        client_cert_fingerprint: issued.worker.fingerprint().to_string(),
        updater_cert_fingerprint: issued.updater.as_ref().map(|u| u.fingerprint().to_string()),
        cert_bundle_path: issued.dir.display().to_string(),
        enrolled_at: now_text(),
        notes: spec.notes.clone(),
        use_ipvlan: spec.use_ipvlan,
    };
    let row = host.clone();
    if !state.db.write(move |s| s.add_host(&row)).await? {
        return Err(conflict(&spec.name));
    }
    state.swarm.registry.insert(&host);
    let bundle = EnrolledBundle {
        host_uuid: host.uuid.clone(),
        name: host.name.clone(),
        address: host.address.clone(),
        agent_port: host.agent_port,
        fingerprint: host.client_cert_fingerprint.clone(),
        ca_cert_pem: issued.worker.ca_pem().to_owned(),
        worker_cert_pem: issued.worker.cert_pem().to_owned(),
        worker_key_pem: issued.worker.key_pem().to_owned(),
        updater: issued.updater.as_ref().map(|u| UpdaterBundle {
            fingerprint: u.fingerprint().to_string(),
            updater_cert_pem: u.cert_pem().to_owned(),
            updater_key_pem: u.key_pem().to_owned(),
        }),
        master_fingerprint: issued.master_pin,
        swarmctl_fingerprint: swarmctl.map(|p| p.to_string()),
    };
    tracing::info!(host = %host.name, uuid = %host.uuid, "worker enrolled");
    Ok(Enrolled {
        host,
        bundle,
        dir: issued.dir,
    })
}
