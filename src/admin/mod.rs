//! Operating callvault: the `/admin` API and operator page (behind `admin.token`), the
//! `/metrics` endpoint, the deadline watch, the quarantine purge, and the queries the `jobs` / `recordings`
//! commands share with the API.
//!
//! A recording's state is derived, never stored: see [`state::RecordingState`].

mod audit_trail;
pub mod auth;
pub mod call_legs;
pub mod deadline;
mod erased_event;
pub mod erasure;
mod events;
mod export_routes;
pub mod exports;
pub mod holds;
pub mod lock_schedule;
pub mod operations;
pub mod quarantine_purge;
pub mod queries;
pub mod retention;
mod routes;
pub mod scrape;
pub mod state;
pub mod stats;
mod ui;
pub mod views;

use actix_web::web;

use crate::http_error::ApiError;

pub use state::RecordingState;

/// Registers `/admin/*`. With `enabled` false (an empty `admin.token`) every `/admin` path
/// answers 404, so a disabled admin API is indistinguishable from none.
pub fn configure(enabled: bool) -> impl Fn(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        if !enabled {
            cfg.service(web::scope("/admin").default_service(web::to(not_found)));
            return;
        }
        // The page holds no data, so it is served without the token; it asks for it.
        cfg.route("/admin/ui", web::get().to(ui::page)).service(
            web::scope("/admin")
                .wrap(actix_web::middleware::from_fn(auth::require_token))
                .configure(routes::data_routes)
                .default_service(web::to(not_found)),
        );
    }
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("no such endpoint"))
}
