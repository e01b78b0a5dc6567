//! The master API's authentication (engine.md §7.1) against a real server and curl:
//! login, the forced password change, revocation, roles, rate limits.
mod api_common;
mod util;

use api_common::{ADMIN_PASSWORD, Master, Setup, have_curl};
use serde_json::json;

const BAD_CREDENTIALS: &str = "Could not validate credentials";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn must_change_then_the_new_password_revokes_older_tokens() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let r = m.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["must_change_password"], true);
    let first = body["access_token"].as_str().unwrap_or_default().to_owned();

    // Nothing but change-password and logout while the password must change.
    let r = m.req("GET", "/api/v1/stats").bearer(&first).send().await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.detail(),
        "Password change required before accessing this resource"
    );

    let change = |old: &str, new: &str| {
        m.req("POST", "/api/v1/auth/change-password")
            .bearer(&first)
            .json(&json!({ "old_password": old, "new_password": new }))
    };
    let r = change("not the password", "a-new-password-1").send().await;
    assert_eq!(
        (r.status, r.detail().as_str()),
        (401, "Incorrect old password")
    );
    let r = change(ADMIN_PASSWORD, "short").send().await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = change(ADMIN_PASSWORD, &"x".repeat(73)).send().await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = change(ADMIN_PASSWORD, "a-new-password-1").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["message"], "Password updated successfully");

    // The token used for the change, issued before it, is dead now.
    let r = m.req("GET", "/api/v1/stats").bearer(&first).send().await;
    assert_eq!((r.status, r.detail().as_str()), (401, BAD_CREDENTIALS));

    let r = m.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.detail(), "Incorrect username or password");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));

    let r = m.login("admin", "a-new-password-1").await;
    assert_eq!(r.json()["must_change_password"], false);
    let token = r.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = m.req("GET", "/api/v1/stats").bearer(&token).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_passwords_unknown_users_and_bad_tokens_are_401() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    for (user, pass) in [("admin", "wrong-password"), ("nobody", ADMIN_PASSWORD)] {
        let r = m.login(user, pass).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.detail(), "Incorrect username or password");
    }
    let r = m.login("admin", &"é".repeat(37)).await;
    assert_eq!(r.status, 422, "74 UTF-8 bytes: {}", r.text);

    let token = m.admin().await;
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    for auth in [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer not.a.token".to_owned()),
        Some(format!("Bearer {forged}")),
        Some(format!("Basic {token}")),
    ] {
        let mut req = m.req("GET", "/api/v1/logs");
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await;
        assert_eq!(
            (r.status, r.detail().as_str()),
            (401, BAD_CREDENTIALS),
            "{auth:?}"
        );
    }

    // Logout revokes exactly this token.
    let r = m
        .req("POST", "/api/v1/auth/logout")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(r.json()["message"], "Logged out");
    let r = m.req("GET", "/api/v1/logs").bearer(&token).send().await;
    assert_eq!((r.status, r.detail().as_str()), (401, BAD_CREDENTIALS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_cannot_administer_and_role_changes_revoke_tokens() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    let admin = m.admin().await;
    let create = |name: &str, role: &str| {
        m.req("POST", "/api/v1/config/users")
            .bearer(&admin)
            .json(&json!({
                "username": name, "password": "viewer-password-1", "role": role
            }))
    };
    let r = create("vera", "viewer").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let vera = r.json()["uuid"].as_str().unwrap_or_default().to_owned();
    let r = create("vera", "viewer").send().await;
    assert_eq!(
        (r.status, r.detail().as_str()),
        (409, "Username already exists")
    );
    assert_eq!(create("bob", "root").send().await.status, 422);
    assert_eq!(create("", "viewer").send().await.status, 400);

    // A new account must change its password too.
    let first = m.token("vera", "viewer-password-1").await;
    let r = m
        .req("POST", "/api/v1/auth/change-password")
        .bearer(&first)
        .json(&json!({ "old_password": "viewer-password-1", "new_password": "vera-own-password" }))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let viewer = m.token("vera", "vera-own-password").await;

    let r = m.req("GET", "/api/v1/config").bearer(&viewer).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let config = r.json();
    assert_eq!(config["role"], "viewer");
    assert_eq!(config["deployment_limit"], 10);
    assert_eq!(config["global_mutation_interval"], "30m");
    assert!(config.get("users").is_none(), "{config}");
    let r = m.req("GET", "/api/v1/config").bearer(&admin).send().await;
    let users = r.json()["users"].as_array().cloned().unwrap_or_default();
    assert_eq!(users.len(), 2, "{}", r.text);
    assert!(!r.text.contains("argon2"), "hashes never leave the store");

    for (method, path, body) in [
        (
            "POST",
            "/api/v1/config/users".to_owned(),
            json!({"username": "x", "password": "xxxxxxxxxxxxxx", "role": "admin"}),
        ),
        (
            "PUT",
            format!("/api/v1/config/users/{vera}/role"),
            json!({"role": "admin"}),
        ),
        (
            "PUT",
            "/api/v1/config/deployment-limit".to_owned(),
            json!({"deployment_limit": 5}),
        ),
    ] {
        let r = m
            .req(method, &path)
            .bearer(&viewer)
            .json(&body)
            .send()
            .await;
        assert_eq!(
            (r.status, r.detail().as_str()),
            (403, "Insufficient permissions"),
            "{path}"
        );
    }
    let r = m
        .req("DELETE", &format!("/api/v1/config/users/{vera}"))
        .bearer(&viewer)
        .send()
        .await;
    assert_eq!(r.status, 403);

    // Admin-only guards on oneself, and unknown accounts.
    let me = users
        .iter()
        .find(|u| u["username"] == "admin")
        .and_then(|u| u["uuid"].as_str())
        .unwrap_or_default()
        .to_owned();
    let r = m
        .req("DELETE", &format!("/api/v1/config/users/{me}"))
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(
        (r.status, r.detail().as_str()),
        (403, "Cannot delete your own account")
    );
    let r = m
        .req("PUT", &format!("/api/v1/config/users/{me}/role"))
        .bearer(&admin)
        .json(&json!({"role": "viewer"}))
        .send()
        .await;
    assert_eq!(
        (r.status, r.detail().as_str()),
        (403, "Cannot change your own role")
    );
    let r = m
        .req("DELETE", "/api/v1/config/users/nope")
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(r.status, 404);

    // Promoting vera kills her viewer token.
    let r = m
        .req("PUT", &format!("/api/v1/config/users/{vera}/role"))
        .bearer(&admin)
        .json(&json!({"role": "admin"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = m.req("GET", "/api/v1/stats").bearer(&viewer).send().await;
    assert_eq!((r.status, r.detail().as_str()), (401, BAD_CREDENTIALS));
    let promoted = m.token("vera", "vera-own-password").await;
    let r = m
        .req("PUT", "/api/v1/config/deployment-limit")
        .bearer(&promoted)
        .json(&json!({"deployment_limit": 25}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = m
        .req("GET", "/api/v1/config")
        .bearer(&promoted)
        .send()
        .await;
    assert_eq!(r.json()["deployment_limit"], 25);

    // A reset password must be changed again.
    let r = m
        .req(
            "PUT",
            &format!("/api/v1/config/users/{vera}/reset-password"),
        )
        .bearer(&admin)
        .json(&json!({"new_password": "reset-password-99"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = m.login("vera", "reset-password-99").await;
    assert_eq!(r.json()["must_change_password"], true);
    let r = m
        .req("DELETE", &format!("/api/v1/config/users/{vera}"))
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(m.login("vera", "reset-password-99").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_limited_per_address_and_per_username() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup::default()).await;
    // Ten tries from one address, the eleventh is refused even with the right password.
    for _ in 0..10 {
        assert_eq!(m.login("admin", "wrong-password").await.status, 401);
    }
    let r = m.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.detail().starts_with("Rate limit exceeded"), "{}", r.text);
    assert!(r.header("retry-after").is_some());

    // From other addresses the per-username bucket of `admin` is already full...
    let login = |ip: &str, user: &str| {
        m.req("POST", "/api/v1/auth/login")
            .source_ip(ip)
            .json(&json!({ "username": user, "password": "whatever-it-is" }))
    };
    assert_eq!(login("127.0.0.2", "admin").send().await.status, 429);
    // ...while another username from another address still gets an answer.
    assert_eq!(login("127.0.0.3", "someone").send().await.status, 401);
    // Unparsable bodies share one bucket, whatever address they come from.
    for i in 0..10 {
        let r = m
            .req("POST", "/api/v1/auth/login")
            .source_ip(&format!("127.0.1.{i}"))
            .header("Content-Type", "application/json")
            .raw(b"{not json")
            .send()
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
    let r = m
        .req("POST", "/api/v1/auth/login")
        .source_ip("127.0.2.1")
        .header("Content-Type", "application/json")
        .raw(b"[]")
        .send()
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_can_be_disabled() {
    if !have_curl() {
        return;
    }
    let m = Master::start(Setup {
        limiter: false,
        ..Setup::default()
    })
    .await;
    for _ in 0..12 {
        assert_eq!(m.login("admin", "wrong-password").await.status, 401);
    }
}
