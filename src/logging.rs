//! The one place the `tracing` subscriber is installed.
//!
//! Diagnostics go to stderr, pretty or JSON. Attacker events are data (RFC 5424 lines in
//! the event log), never written through this channel, so the two can't be confused.
use thiserror::Error;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The diagnostic log could not be set up.
#[derive(Debug, Error)]
pub enum LogError {
    /// The filter string is not valid `EnvFilter` syntax.
    #[error("invalid log level/filter {filter:?}: {source}")]
    Filter {
        /// The rejected filter.
        filter: String,
        /// Why tracing refused it.
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Installs the global subscriber; a second call is a no-op so tests may call it freely.
pub fn init(format: LogFormat, filter: &str) -> Result<(), LogError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|source| LogError::Filter {
        filter: filter.to_owned(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    // An Err here only means a subscriber is already installed, which is fine.
    let _ = match format {
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}
