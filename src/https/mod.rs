//! HTTPS between decnet hosts: axum served over mutual TLS with the peer's identity in
//! every request ([`server`]), and a pinned JSON client with per-phase timeouts
//! ([`client`]). The agent API, the swarm controller and the heartbeat use both.
pub mod client;
pub mod server;

pub use client::{Client, Response, Timeouts};
pub use server::{Peer, ServeOptions, serve};
