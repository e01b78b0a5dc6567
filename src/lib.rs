//! decnet: a honeypot deception network in one static binary.
//!
//! Every role (master, agent, updater, forwarder, bus, reconciler, decky) is a subcommand of
//! the same executable, also reachable through busybox-style symlinks (`decnet-agent`).
//! Hosts talk to each other only over mutual TLS under a private decnet CA, with
//! certificate fingerprints pinned.
//!
//! # Layout
//! - [`catalog`]: services, archetypes, distros, OS fingerprint profiles (static data).
//! - [`cli`]: argument parsing, argv[0] dispatch, exit codes.
//! - [`config`]: every `DECNET_*` variable, its default and its validation.
//! - [`ini`]: the INI deployment file format.
//! - [`logging`]: the one `tracing` subscriber set-up.
//! - [`model`]: fleet data (DecnetConfig, DeckyConfig), IP allocation, network detection,
//!   and the deterministic builders that turn an INI file or flags into deckies.
//! - [`pki`]: the decnet CA, certificate issue, bundles on disk, fingerprints.
//! - [`tls`]: rustls configurations for mTLS servers and pinned clients.
//! - [`https`]: axum over mTLS with the peer identity per request, and a pinned client.
//! - [`bus`]: the host-local publish/subscribe bus: wire protocol, broker, client, topics.
//! - [`engine`]: Docker through bollard: the decky image built from this binary, the fleet
//!   network, decky containers, deploy / teardown / status and the state file.
//! - [`syslog`]: RFC 5424 lines (format, tolerant parse) and the octet-counting codec.
//! - [`store`]: the SQLite store: migrations, the `logs` table, the batching writer task.
//! - [`logship`]: the forwarder ↔ listener envelope that makes log delivery exactly-once.
//! - [`roles`]: one module per long-running role, among them the [`roles::collector`] that
//!   follows decky service containers' stdout into the local event log.
//! - [`signals`]: SIGTERM / Ctrl-C as a shutdown token for every role.
//! - [`term`]: attacker text escaped before it reaches an operator's terminal.
//! - [`units`]: the systemd units of the daemons, embedded.
//! - [`text`]: byte-bounded cuts and the printable form of secrets.
#![forbid(unsafe_code)]

pub mod bus;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod engine;
pub mod fsutil;
pub mod https;
pub mod ini;
pub mod logging;
pub mod logship;
pub mod model;
pub mod pki;
pub mod roles;
pub mod signals;
pub mod store;
pub mod syslog;
pub mod term;
pub mod text;
pub mod tls;
pub mod units;

/// The crate version, as built.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binary was built from (`unknown` outside a git checkout).
pub const GIT_COMMIT: &str = env!("DECNET_GIT_COMMIT");
