//! `GET /artifacts/{decky}/{stored_as}?service=` (admin; engine.md §3.5): one file a
//! decky captured, as an attachment.
//!
//! The file is `<ARTIFACTS_ROOT>/<decky>/<dir>/<stored_as>`, `<dir>` from the engine's
//! capture table (`engine::artifacts`): ssh, smtp (and smtp_relay's messages) and ftp.
//! Properties kept:
//! - **Never outside the root.** The names are checked against the spec's patterns
//!   first (no `/`, no `..`), then the path is resolved with every symlink followed
//!   and must still lie under the resolved root ("path escapes artifacts root"). The
//!   resolved file is then opened with `O_NOFOLLOW`, so a symlink swapped in after the
//!   check is refused instead of followed, and it must be a regular file.
//! - **Never rendered.** `application/octet-stream`, `Content-Disposition: attachment`
//!   and `X-Content-Type-Options: nosniff`: captured files are hostile.
//!
//! Where this differs from the spec: `ftp` is accepted besides `ssh` and `smtp`, since
//! decnet's ftp captures uploads too; `service` defaults to `ssh`.
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::logs::present;
use crate::roles::master::auth::Admin;
use crate::roles::master::error::{ApiError, Detail, Params, Segment};
use crate::roles::master::state::AppState;

/// Services whose captures can be downloaded.
pub const SERVICES: &[&str] = &["ssh", "smtp", "ftp"];
/// Bytes read per chunk of the response body.
const CHUNK: usize = 64 * 1024;

/// Query of the download.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactQuery {
    /// `ssh` (default), `smtp` or `ftp`.
    pub service: Option<String>,
}

/// `^[a-z0-9][a-z0-9-]{0,62}$`.
pub fn valid_decky(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z_[a-f0-9]{12}_[A-Za-z0-9._-]{1,255}$`.
pub fn valid_stored_as(name: &str) -> bool {
    const STAMP: &[u8] = b"dddd-dd-ddTdd:dd:ddZ_";
    let b = name.as_bytes();
    if b.len() < STAMP.len() + 14 {
        return false;
    }
    let (stamp, rest) = b.split_at(STAMP.len());
    let stamp_ok = stamp.iter().zip(STAMP).all(|(&c, &p)| match p {
        b'd' => c.is_ascii_digit(),
        _ => c == p,
    });
    let (sha, rest) = rest.split_at(12);
    let sha_ok = sha
        .iter()
        .all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    let base = &rest[1..];
    stamp_ok
        && sha_ok
        && rest[0] == b'_'
        && (1..=255).contains(&base.len())
        && base
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Why a download is refused once the names are valid.
enum Refusal {
    Escapes,
    Missing,
}

/// Resolves and opens `root/decky/dir/name`, refusing anything outside `root`.
fn open_inside(root: &Path, rel: PathBuf) -> Result<(File, u64), Refusal> {
    let root = root.canonicalize().map_err(|_| Refusal::Missing)?;
    let path = root
        .join(rel)
        .canonicalize()
        .map_err(|_| Refusal::Missing)?;
    if !path.starts_with(&root) {
        return Err(Refusal::Escapes);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|_| Refusal::Missing)?;
    let meta = file.metadata().map_err(|_| Refusal::Missing)?;
    if !meta.is_file() {
        return Err(Refusal::Missing);
    }
    Ok((file, meta.len()))
}

/// The body: the file in [`CHUNK`]-byte reads on blocking threads.
fn stream(file: File) -> Body {
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await;
        match read {
            Ok(Ok((_, buf))) if buf.is_empty() => None,
            Ok(Ok((file, buf))) => Some((Ok(bytes::Bytes::from(buf)), Some(file))),
            Ok(Err(e)) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    });
    Body::from_stream(chunks)
}

/// Downloads one captured file.
#[utoipa::path(get, path = "/api/v1/artifacts/{decky}/{stored_as}", tag = "attackers",
    params(("decky" = String, Path, description = "decky name"),
        ("stored_as" = String, Path, description = "stored file name"), ArtifactQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 400, body = Detail), (status = 401, body = Detail),
        (status = 403, body = Detail), (status = 404, body = Detail)))]
pub async fn download(
    State(state): State<AppState>,
    _: Admin,
    Segment((decky, stored_as)): Segment<(String, String)>,
    Params(q): Params<ArtifactQuery>,
) -> Result<Response, ApiError> {
    let service = present(q.service).unwrap_or_else(|| "ssh".into());
    let dir = crate::engine::artifacts::capture(&service)
        .filter(|_| SERVICES.contains(&service.as_str()))
        .map(|c| c.host_dir)
        .ok_or_else(|| ApiError::BadRequest("invalid service".into()))?;
    if !valid_decky(&decky) {
        return Err(ApiError::BadRequest("invalid decky name".into()));
    }
    if !valid_stored_as(&stored_as) {
        return Err(ApiError::BadRequest("invalid stored_as".into()));
    }
    let root = state.settings.artifacts_root.clone();
    let rel = PathBuf::from(&decky).join(dir).join(&stored_as);
    let opened = tokio::task::spawn_blocking(move || open_inside(&root, rel))
        .await
        .map_err(|e| ApiError::Internal(format!("artifact task: {e}")))?;
    let (file, len) = match opened {
        Ok(f) => f,
        Err(Refusal::Escapes) => {
            return Err(ApiError::BadRequest("path escapes artifacts root".into()));
        }
        Err(Refusal::Missing) => return Err(ApiError::NotFound("artifact not found".into())),
    };
    let mut resp = Response::new(stream(file));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // The name passed the pattern above, so it is plain ASCII without quotes.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{stored_as}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_patterns() {
        assert!(valid_decky("web-1"));
        assert!(valid_decky("0"));
        assert!(!valid_decky("-web"));
        assert!(!valid_decky("Web"));
        assert!(!valid_decky(".."));
        assert!(!valid_decky(&"a".repeat(64)));
        let good = "2026-03-04T10:00:00Z_0123456789ab_payload.tar.gz";
        assert!(valid_stored_as(good));
        assert!(!valid_stored_as("2026-03-04T10:00:00Z_0123456789ab_"));
        assert!(!valid_stored_as("2026-03-04T10:00:00Z_0123456789AB_x"));
        assert!(!valid_stored_as("2026-03-04T10:00:00Z_0123456789ab_../x"));
        assert!(!valid_stored_as("../etc/passwd"));
        assert!(!valid_stored_as(&format!(
            "2026-03-04T10:00:00Z_0123456789ab_{}",
            "a".repeat(256)
        )));
    }
}
