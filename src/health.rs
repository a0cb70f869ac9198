//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when the database and the storage answer; else 503 naming which did not.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = state.db.ping().await.err().map(|err| err.to_string());
    let storage = state.archive.check().await.err().map(|err| err.to_string());
    let body = json!({
        "database": database.as_deref().unwrap_or("ok"),
        "storage": storage.as_deref().unwrap_or("ok"),
    });
    if database.is_none() && storage.is_none() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
