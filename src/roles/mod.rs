//! The long-running roles, one module each (`master`, `agent`, `updater`, `collector`,
//! `forwarder`, `listener`, `bus`, `reconciler`, `decky`).
//!
//! Roles depend on the core modules, never on each other. Each exposes `run(config)` for
//! the CLI and a `serve(listener, …)` that tests start on a port-0 listener. Roles not
//! built yet are answered by the CLI with "not implemented yet" (exit code 2).

pub mod agent;
pub mod bus;
pub mod collector;
pub mod decky;
pub mod forwarder;
pub mod listener;
pub mod master;
pub mod up;
