//! The master REST API's settings (engine.md §7.5, §7.6): bind address, token signing,
//! the seeded admin, CORS and the switches that relax the startup checks.
//!
//! Only parsing lives here; the checks that need more than one value (secret strength,
//! public binding, the CORS default) run when the master starts, in
//! [`crate::roles::master`], so that `decnet config` still shows a half-configured host.
use super::reader::Reader;
use super::{ConfigError, Secret, Source};

/// Address the API binds (default `127.0.0.1`).
pub const API_HOST: &str = "DECNET_API_HOST";
/// Address the swarm controller binds (default `127.0.0.1`; anything else needs `--tls`).
pub const SWARMCTL_HOST: &str = "DECNET_SWARMCTL_HOST";
/// Address the dashboard is served on (default `127.0.0.1`): the default CORS origin's host.
pub const WEB_HOST: &str = "DECNET_WEB_HOST";
/// HS256 key of the API's tokens (a generated one is kept in the state directory when unset).
pub const JWT_SECRET: &str = "DECNET_JWT_SECRET";
/// Token lifetime in minutes (default 240).
pub const JWT_EXP_MINUTES: &str = "DECNET_JWT_EXP_MINUTES";
/// Name of the seeded admin account (default `admin`).
pub const ADMIN_USER: &str = "DECNET_ADMIN_USER";
/// Password of the seeded admin account; it must be changed at first login.
pub const ADMIN_PASSWORD: &str = "DECNET_ADMIN_PASSWORD";
/// Browser origins allowed to call the API (comma list).
pub const CORS_ORIGINS: &str = "DECNET_CORS_ORIGINS";
/// Whether the API's rate limits apply (default on).
pub const LIMITER_ENABLED: &str = "DECNET_LIMITER_ENABLED";
/// Live-stream connections one user may hold (default 5).
pub const SSE_MAX_PER_USER: &str = "DECNET_SSE_MAX_PER_USER";
/// Developer mode: weaker secrets allowed, `/openapi.json` served, error details shown.
pub const DEVELOPER: &str = "DECNET_DEVELOPER";
/// `1` skips the secret-strength and public-binding checks (test rigs only).
pub const TESTING: &str = "DECNET_TESTING";
/// `master` or `agent`: which side of a swarm this host is.
pub const MODE: &str = "DECNET_MODE";
/// With `DECNET_MODE=agent`, refuse to run the master (default true).
pub const DISALLOW_MASTER: &str = "DECNET_DISALLOW_MASTER";

/// Longest token lifetime accepted, in minutes (one year).
const MAX_EXP_MINUTES: u32 = 525_600;

/// The API settings as read from the environment.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Bind address (`DECNET_API_HOST`).
    pub host: String,
    /// Swarm controller bind address (`DECNET_SWARMCTL_HOST`).
    pub swarmctl_host: String,
    /// Dashboard host (`DECNET_WEB_HOST`), for the default CORS origin.
    pub web_host: String,
    /// Token key (`DECNET_JWT_SECRET`); `None` means "use the state directory's file".
    pub jwt_secret: Option<Secret>,
    /// Token lifetime in minutes (`DECNET_JWT_EXP_MINUTES`).
    pub jwt_exp_minutes: u32,
    /// Seeded admin name (`DECNET_ADMIN_USER`).
    pub admin_user: String,
    /// Seeded admin password (`DECNET_ADMIN_PASSWORD`).
    pub admin_password: Option<Secret>,
    /// Allowed origins (`DECNET_CORS_ORIGINS`); `None` means the dashboard's own origin.
    pub cors_origins: Option<Vec<String>>,
    /// Rate limits on (`DECNET_LIMITER_ENABLED`).
    pub limiter_enabled: bool,
    /// Live-stream cap per user (`DECNET_SSE_MAX_PER_USER`).
    pub sse_max_per_user: u32,
    /// Developer mode (`DECNET_DEVELOPER`).
    pub developer: bool,
    /// Test rig: startup checks skipped (`DECNET_TESTING=1`).
    pub testing: bool,
    /// `master` or `agent` (`DECNET_MODE`).
    pub mode: String,
    /// Refuse the master on an agent (`DECNET_DISALLOW_MASTER`).
    pub disallow_master: bool,
}

/// Reads the API settings through `r`.
pub(super) fn parse<S: Source>(r: &mut Reader<'_, S>) -> Result<ApiConfig, ConfigError> {
    let exp_raw = r.text_or(JWT_EXP_MINUTES, "240");
    let jwt_exp_minutes = exp_raw
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|m| (1..=MAX_EXP_MINUTES).contains(m))
        .ok_or_else(|| ConfigError::Invalid {
            key: JWT_EXP_MINUTES,
            value: exp_raw.clone(),
            reason: format!("expected minutes between 1 and {MAX_EXP_MINUTES}"),
        })?;
    let sse_raw = r.text_or(SSE_MAX_PER_USER, "5");
    let sse_max_per_user = sse_raw
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| ConfigError::Invalid {
            key: SSE_MAX_PER_USER,
            value: sse_raw.clone(),
            reason: "expected a number between 1 and 1000".into(),
        })?;
    let cors_origins = r.raw(CORS_ORIGINS).map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let cors_shown = cors_origins.as_ref().map_or_else(
        || "(the dashboard's origin)".to_owned(),
        |o: &Vec<String>| o.join(","),
    );
    r.record(CORS_ORIGINS, cors_shown, cors_origins.is_some());
    let mode = r.text_or(MODE, "master").trim().to_ascii_lowercase();
    if mode != "master" && mode != "agent" {
        return Err(ConfigError::Invalid {
            key: MODE,
            value: mode,
            reason: "expected `master` or `agent`".into(),
        });
    }
    Ok(ApiConfig {
        host: r.text_or(API_HOST, "127.0.0.1"),
        swarmctl_host: r.text_or(SWARMCTL_HOST, "127.0.0.1"),
        web_host: r.text_or(WEB_HOST, "127.0.0.1"),
        jwt_secret: r.secret(JWT_SECRET),
        jwt_exp_minutes,
        admin_user: r.text_or(ADMIN_USER, "admin"),
        admin_password: r.secret(ADMIN_PASSWORD),
        cors_origins,
        limiter_enabled: r.flag(LIMITER_ENABLED, true)?,
        sse_max_per_user,
        developer: r.flag(DEVELOPER, false)?,
        testing: r.raw(TESTING).is_some_and(|v| v.trim() == "1"),
        mode,
        disallow_master: r.flag(DISALLOW_MASTER, true)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn api(pairs: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        super::super::parse(&map).map(|c| c.api)
    }

    #[test]
    fn defaults_bind_loopback_with_four_hour_tokens() {
        let a = api(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.host.as_str(), a.jwt_exp_minutes), ("127.0.0.1", 240));
        assert_eq!(a.admin_user, "admin");
        assert!(a.limiter_enabled && !a.developer && !a.testing && a.cors_origins.is_none());
    }

    #[test]
    fn values_are_validated_and_secrets_masked() {
        assert!(api(&[(JWT_EXP_MINUTES, "0")]).is_err());
        assert!(api(&[(MODE, "worker")]).is_err());
        let a = api(&[(CORS_ORIGINS, " https://a.example , ,https://b.example")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.cors_origins,
            Some(vec!["https://a.example".into(), "https://b.example".into()])
        );
        let a = api(&[(JWT_SECRET, "s3cr3t-value")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{:?}", a.jwt_secret), "Some(********)");
    }
}
