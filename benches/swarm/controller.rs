//! The master's swarm controller as `decnet master` serves it (mutual TLS with the
//! `swarmctl` certificate, the flush and liveness tasks), on the controller's runtime,
//! over a store file in the bench's state directory; and enrolment through it.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use decnet::config::Secret;
use decnet::pki::{Bundle, Fingerprint};
use decnet::roles::master::swarm::{self, enroll};
use decnet::roles::master::{AppState, Extras, MasterConfig, Settings};
use decnet::store::{Options, Store};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::BenchResult;

/// A running controller.
pub struct Controller {
    /// Its state (registry, store).
    pub state: AppState,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The pin of its `swarmctl` certificate.
    pub pin: Fingerprint,
    stop: CancellationToken,
    served: JoinHandle<()>,
}

/// An enrolled host: its uuid and the worker bundle the master issued.
pub struct Host {
    /// Its uuid.
    pub uuid: String,
    /// Its worker identity.
    pub bundle: Bundle,
}

fn config(store: Store, home: &Path) -> MasterConfig {
    MasterConfig {
        store,
        jwt_secret: Secret::new("bench-key-0123456789abcdef-0123456789".into()),
        settings: Settings {
            token_ttl: Duration::from_secs(3600),
            cors_origins: Vec::new(),
            limiter_enabled: true,
            developer: false,
            home: PathBuf::from(home),
            docker_host: Some("unix:///nonexistent/docker.sock".into()),
            artifacts_root: home.join("artifacts"),
            bus: None,
        },
    }
}

impl Controller {
    /// Starts a controller with a fresh state over `<home>/decnet.db` on `addr`, on
    /// runtime `rt`: what a (re)started master does.
    pub async fn start(rt: &Handle, home: &Path, addr: SocketAddr) -> BenchResult<Self> {
        let home = home.to_owned();
        rt.spawn(async move {
            let store = Store::open(home.join("decnet.db"), Options::default())?;
            let state = AppState::with_extras(config(store, &home), Extras::for_home(&home));
            let acceptor = state.swarm.controller_tls(&[])?;
            let pin = state.swarm.controller_pin().ok_or("no controller pin")?;
            let listener = TcpListener::bind(addr).await?;
            let addr = listener.local_addr()?;
            let stop = CancellationToken::new();
            swarm::spawn(&state, stop.clone());
            let served = tokio::spawn(swarm::serve_controller(
                listener,
                state.clone(),
                Some(acceptor),
                stop.clone(),
            ));
            Ok(Self {
                state,
                addr,
                pin,
                stop,
                served,
            })
        })
        .await?
    }

    /// Stops serving (the shutdown token, as at a master's exit) and waits until the
    /// listener is closed.
    pub async fn stop(self) -> BenchResult<()> {
        self.stop.cancel();
        self.served.await?;
        Ok(())
    }

    /// Enrols `count` hosts named `<prefix>-<i>` whose agents listen on `ports(i)`, one
    /// after another as operators do, through the controller's own enrolment.
    pub async fn enroll(
        &self,
        rt: &Handle,
        prefix: &str,
        count: usize,
        ports: impl Fn(usize) -> u16,
    ) -> BenchResult<Vec<Host>> {
        let specs: Vec<enroll::EnrollSpec> = (0..count)
            .map(|i| enroll::EnrollSpec {
                name: format!("{prefix}-{i}"),
                address: "127.0.0.1".into(),
                agent_port: ports(i),
                sans: Vec::new(),
                notes: None,
                updater: false,
                use_ipvlan: false,
            })
            .collect();
        let state = self.state.clone();
        rt.spawn(async move {
            let mut hosts = Vec::with_capacity(specs.len());
            for spec in specs {
                let e = enroll::enroll_host(&state, spec)
                    .await
                    .map_err(|e| format!("enrolment: {e:?}"))?;
                let bundle = Bundle::load(&e.dir, "worker")?;
                hosts.push(Host {
                    uuid: e.host.uuid,
                    bundle,
                });
            }
            Ok(hosts)
        })
        .await?
    }
}
