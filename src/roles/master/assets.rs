//! The dashboard: the files of `assets/` embedded in the binary and served at `/`.
//!
//! The dashboard is a single-page application, so every GET of a path outside `/api/`
//! that names no embedded file answers `index.html` and the page's own router takes
//! over. Paths under `/api/` never reach this module's SPA fallback: they keep the API's
//! JSON 404, so a client bug never gets HTML where it expects `{"detail": …}`.
//!
//! Every answer carries a strict Content-Security-Policy (only this origin, no inline
//! script or style, no framing) because the dashboard renders attacker-controlled
//! strings: should one ever reach the DOM as markup, the browser still refuses to run
//! it. Files are revalidated on every load (`no-cache` + a SHA-256 `ETag`, answered with
//! 304) instead of fingerprinted names, which would need a build step.
use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The policy of every dashboard answer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers of every dashboard answer: revalidate each load, the policy, no sniffing, no
/// framing, no referrer leaking a route to another site.
static HEADERS: [(header::HeaderName, &str); 5] = [
    (header::CACHE_CONTROL, "no-cache"),
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// One embedded file.
struct Asset {
    /// URL path.
    path: &'static str,
    /// Content-Type.
    mime: &'static str,
    /// The bytes.
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: concat!("/", $path),
            mime: $mime,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Everything the dashboard loads; `index.html` first (the SPA fallback).
static FILES: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("js/theme.js", JS),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/format.js", JS),
    asset!("js/live.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/table.js", JS),
    asset!("js/pages/login.js", JS),
    asset!("js/pages/overview.js", JS),
    asset!("js/pages/logs.js", JS),
    asset!("js/pages/attackers.js", JS),
    asset!("js/pages/attacker.js", JS),
    asset!("js/pages/credentials.js", JS),
    asset!("js/pages/bounty.js", JS),
    asset!("js/pages/fleet.js", JS),
    asset!("js/pages/swarm.js", JS),
    asset!("js/pages/config.js", JS),
];

/// The quoted SHA-256 (first 16 bytes, hex) of each file, in [`FILES`] order.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|a| {
            let d = ring::digest::digest(&ring::digest::SHA256, a.body);
            let tag = format!("\"{}\"", hex::encode(&d.as_ref()[..16]));
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\""))
        })
        .collect()
});

/// The file for `path`: an embedded one, else `index.html` for a route of the page.
fn lookup(path: &str) -> usize {
    let path = if path == "/" { "/index.html" } else { path };
    FILES.iter().position(|a| a.path == path).unwrap_or(0)
}

/// Whether `path` belongs to the API (never answered with the page). The developer-mode
/// documents count too: outside developer mode they must stay a 404, not the page.
fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/openapi.json" || path == "/docs"
}

/// The router's fallback: the dashboard for GET/HEAD outside `/api/`, the API's JSON
/// 404/405 otherwise.
pub async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    if is_api(path) {
        return super::error::not_found().await.into_response();
    }
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return super::error::method_not_allowed().await;
    }
    let i = lookup(path);
    let (asset, etag) = (&FILES[i], &ETAGS[i]);
    let fresh = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag.to_str().unwrap_or_default() || t.trim() == "*");
    let mut r = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let body = if head {
            Body::empty()
        } else {
            Body::from(asset.body)
        };
        let mut r = Response::new(body);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(asset.body.len()));
        r
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, etag.clone());
    for (name, value) in &HEADERS {
        h.insert(name.clone(), HeaderValue::from_static(value));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_resolve_and_routes_fall_back_to_the_page() {
        assert_eq!(FILES[lookup("/")].path, "/index.html");
        assert_eq!(FILES[lookup("/js/app.js")].path, "/js/app.js");
        assert_eq!(FILES[lookup("/attackers/abc")].path, "/index.html");
        assert_eq!(FILES[lookup("/js/../../etc/passwd")].path, "/index.html");
        assert!(is_api("/api/v1/nothing") && is_api("/api") && is_api("/openapi.json"));
        assert!(!is_api("/apix") && !is_api("/logs"));
    }

    #[test]
    fn every_file_is_embedded_once_with_a_distinct_tag() {
        let mut paths: Vec<_> = FILES.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), FILES.len());
        assert!(FILES.iter().all(|a| !a.body.is_empty()));
        let mut tags: Vec<_> = ETAGS.iter().collect();
        tags.sort_unstable_by_key(|t| t.as_bytes());
        tags.dedup();
        assert_eq!(tags.len(), FILES.len());
    }

    #[test]
    fn every_file_of_the_assets_folder_is_served() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("read assets") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path.to_string_lossy().into_owned());
                }
            }
        }
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
        let mut found = Vec::new();
        walk(std::path::Path::new(root), &mut found);
        for file in found {
            let path = &file[root.len()..];
            if path != "/README.md" {
                assert!(
                    FILES.iter().any(|a| a.path == path),
                    "{path} is not embedded"
                );
            }
        }
    }
}
