//! The OpenAPI document, generated from the handlers' annotations (utoipa), so it
//! cannot drift from the code. Served at `/openapi.json` in developer mode only
//! (engine.md §7.5); [`document`] gives it to tests and tools in any mode.
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::auth::routes as auth;
use super::routes::{
    artifacts, attackers, bounty, config, credentials, deckies, deploy, health, logs, stream, users,
};

/// Adds the bearer scheme the routes' `security` refers to.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "decnet master API", description = "engine.md §7"),
    paths(
        auth::login, auth::change_password, auth::logout,
        health::health,
        logs::stats, logs::logs, logs::histogram,
        attackers::list, attackers::detail, attackers::commands, attackers::artifacts,
        credentials::list, bounty::list, artifacts::download,
        config::get_config, config::put_limit, config::put_interval,
        users::create, users::delete, users::set_role, users::reset_password,
        stream::sse_ticket, stream::stream,
        deckies::list, deploy::deploy, deploy::lifecycle, deckies::mutate,
        deckies::mutate_interval, deckies::remove, deckies::deployment_mode,
    ),
    components(schemas(super::error::Detail, super::Message)),
    modifiers(&Bearer),
)]
struct Api;

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    Api::openapi()
}
