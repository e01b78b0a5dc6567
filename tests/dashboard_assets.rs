//! The embedded dashboard as the master serves it: content types, the security headers
//! on every answer, revalidation by ETag, the SPA fallback, and the API's own 404 kept
//! for unknown `/api/` paths. Real master, real HTTP client (curl).
mod api_common;
mod util;

use api_common::{Master, Setup, have_curl};

#[tokio::test]
async fn pages_carry_types_and_security_headers() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    for (path, mime) in [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/app.css", "text/css"),
        ("/js/app.js", "text/javascript"),
        ("/js/pages/overview.js", "text/javascript"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let r = m.req("GET", path).send().await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type")
                .is_some_and(|v| v.starts_with(mime)),
            "{path}: {:?}",
            r.header("content-type")
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert!(
            r.header("etag").is_some_and(|e| e.starts_with('"')),
            "{path}"
        );
    }
    let index = m.req("GET", "/").send().await;
    assert!(
        index
            .text
            .contains("<script type=\"module\" src=\"/js/app.js\">")
    );
    assert!(
        !index.text.contains("<script>"),
        "no inline script: {}",
        index.text
    );
}

#[tokio::test]
async fn etag_revalidation_answers_304() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let first = m.req("GET", "/js/api.js").send().await;
    let tag = first.header("etag").expect("etag").to_owned();
    let again = m
        .req("GET", "/js/api.js")
        .header("If-None-Match", &tag)
        .send()
        .await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    let other = m
        .req("GET", "/js/api.js")
        .header("If-None-Match", "\"stale\"")
        .send()
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.text, first.text);
}

#[tokio::test]
async fn page_routes_fall_back_to_index_but_the_api_keeps_its_404() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let index = m.req("GET", "/").send().await.text;
    for path in [
        "/attackers/0b9c",
        "/fleet",
        "/js/../../etc/passwd",
        "/nothing.js",
    ] {
        let r = m.req("GET", path).send().await;
        assert_eq!((r.status, r.text == index), (200, true), "{path}");
    }
    for path in [
        "/api/v1/nothing-here",
        "/api/nothing",
        "/api",
        "/openapi.json",
    ] {
        let r = m.req("GET", path).send().await;
        assert_eq!(
            (r.status, r.detail().as_str()),
            (404, "Not Found"),
            "{path}"
        );
        assert!(
            r.header("content-type")
                .is_some_and(|v| v.starts_with("application/json"))
        );
    }
    let r = m.req("POST", "/fleet").send().await;
    assert_eq!((r.status, r.detail().as_str()), (405, "Method Not Allowed"));
    // The API itself is untouched by the fallback.
    let r = m.req("GET", "/api/v1/stats").send().await;
    assert_eq!(r.status, 401);
}
