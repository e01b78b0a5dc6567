//! The route handlers, one file per route group of engine.md §7.2.
pub mod artifacts;
pub mod attackers;
pub mod bounty;
pub mod config;
pub mod credentials;
pub mod deckies;
pub mod deploy;
pub mod health;
pub mod logs;
pub mod stream;
pub mod users;
