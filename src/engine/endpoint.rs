//! Where the Docker engine listens: `DOCKER_HOST` (read by `config`) parsed into a typed
//! endpoint before bollard sees it.
//!
//! Docker's own CLI accepts more schemes than decnet speaks. decnet takes the two that
//! need no extra credentials: `unix:///absolute/path` and `tcp://host[:port]` (plain
//! HTTP, default port 2375; `http://` is the same). `ssh://`, `npipe://`, `fd://` and TLS
//! (`https://`, `DOCKER_TLS_VERIFY`) are refused with a message naming what works,
//! rather than handed to bollard to fail somewhere less clear.
use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// The local engine's socket when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// Docker's port for plain-HTTP TCP endpoints given without one.
pub const DEFAULT_TCP_PORT: u16 = 2375;

/// A Docker engine endpoint decnet can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket (absolute path).
    Unix(PathBuf),
    /// Plain HTTP over TCP: `host:port` (an IPv6 host in brackets).
    Tcp(String),
}

/// Why a `DOCKER_HOST` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "DOCKER_HOST={value:?} {reason}; decnet connects to unix:///path/to/docker.sock or \
     tcp://host:port (unset it for {DEFAULT_SOCKET})"
)]
pub struct BadDockerHost {
    /// The value as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Endpoint {
    /// The endpoint of `docker_host` (`DOCKER_HOST`), or the local socket when unset.
    pub fn from_docker_host(docker_host: Option<&str>) -> Result<Self, BadDockerHost> {
        match docker_host.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET))),
            Some(value) => Self::parse(value),
        }
    }

    /// Parses one `DOCKER_HOST` value.
    pub fn parse(value: &str) -> Result<Self, BadDockerHost> {
        let bad = |reason| BadDockerHost {
            value: value.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = value.split_once("://") else {
            return Err(bad("has no scheme"));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "unix" => {
                if !rest.starts_with('/') || rest.len() < 2 {
                    return Err(bad("must name an absolute socket path (unix:///…)"));
                }
                Ok(Endpoint::Unix(PathBuf::from(rest)))
            }
            "tcp" | "http" => {
                let authority = rest.strip_suffix('/').unwrap_or(rest);
                if authority.contains('/') {
                    return Err(bad("has a path; give only tcp://host:port"));
                }
                tcp_authority(authority).map(Endpoint::Tcp).map_err(bad)
            }
            "https" => Err(bad("asks for TLS, which decnet does not speak to Docker")),
            "ssh" | "npipe" | "fd" => Err(bad("uses a transport decnet does not support")),
            _ => Err(bad("has an unknown scheme")),
        }
    }
}

/// `host[:port]` with the default port filled in.
fn tcp_authority(authority: &str) -> Result<String, &'static str> {
    if authority.contains('@') {
        return Err("carries credentials, which plain HTTP would send in clear");
    }
    let (host, port) = match authority.strip_prefix('[') {
        // [v6]:port or [v6]
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("has an unclosed [ in its host")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("has junk after its [host]")?),
            };
            (format!("[{host}]"), port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        },
    };
    if host.is_empty() || host == "[]" || (host.contains(':') && !host.starts_with('[')) {
        return Err("has no usable host");
    }
    let port = match port {
        None => DEFAULT_TCP_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("has a port that is not 1-65535")?,
    };
    Ok(format!("{host}:{port}"))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str) -> Result<Endpoint, BadDockerHost> {
        Ok(Endpoint::Tcp(addr.to_owned()))
    }

    #[test]
    fn unset_or_blank_is_the_local_socket() {
        let local = Ok(Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)));
        assert_eq!(Endpoint::from_docker_host(None), local);
        assert_eq!(Endpoint::from_docker_host(Some("  ")), local);
    }

    #[test]
    fn unix_and_tcp_forms_parse() {
        assert_eq!(
            Endpoint::parse("unix:///run/user/1000/docker.sock"),
            Ok(Endpoint::Unix("/run/user/1000/docker.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375"),
            tcp("127.0.0.1:2375")
        );
        assert_eq!(Endpoint::parse("tcp://docker.lan"), tcp("docker.lan:2375"));
        assert_eq!(
            Endpoint::parse("TCP://docker.lan:1234/"),
            tcp("docker.lan:1234")
        );
        assert_eq!(
            Endpoint::parse("http://10.0.0.5:2375"),
            tcp("10.0.0.5:2375")
        );
        assert_eq!(Endpoint::parse("tcp://[::1]:2375"), tcp("[::1]:2375"));
        assert_eq!(Endpoint::parse("tcp://[fd00::5]"), tcp("[fd00::5]:2375"));
        // Display gives back a form the parser takes.
        for v in [
            "unix:///var/run/docker.sock",
            "tcp://[::1]:2375",
            "tcp://h:1",
        ] {
            let e = Endpoint::parse(v).expect(v);
            assert_eq!(Endpoint::parse(&e.to_string()), Ok(e));
        }
    }

    #[test]
    fn unusable_values_say_why_and_what_works() {
        for (value, reason) in [
            ("/var/run/docker.sock", "no scheme"),
            ("unix://docker.sock", "absolute socket path"),
            ("unix://", "absolute socket path"),
            ("tcp://", "no usable host"),
            ("tcp://:2375", "no usable host"),
            ("tcp://::1:2375", "no usable host"),
            ("tcp://h:0", "1-65535"),
            ("tcp://h:http", "1-65535"),
            ("tcp://h:2375/v1.41", "has a path"),
            ("tcp://[::1", "unclosed"),
            ("tcp://[::1]x", "junk"),
            ("tcp://me:pw@h:2375", "credentials"),
            ("https://h:2376", "TLS"),
            ("ssh://me@host", "transport"),
            ("npipe:////./pipe/docker_engine", "transport"),
            ("gopher://h", "unknown scheme"),
        ] {
            let err = Endpoint::parse(value).expect_err(value);
            let msg = err.to_string();
            assert!(msg.contains(reason), "{value}: {msg}");
            assert!(
                msg.contains("DOCKER_HOST") && msg.contains("tcp://host:port"),
                "{msg}"
            );
        }
    }
}
