//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when the database and the storage answer; else 503 naming which did not, as `ok` or
/// `down`. The error itself goes to the log only: its text can name hosts, paths or users,
/// and a probe endpoint is reachable without a token.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.db.ping().await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "readiness: the database does not answer");
            false
        }
    };
    let storage = match state.archive.check().await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "readiness: the storage does not answer");
            false
        }
    };
    let word = |up: bool| if up { "ok" } else { "down" };
    let body = json!({ "database": word(database), "storage": word(storage) });
    if database && storage {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
