//! `GET /metrics`: Prometheus text, served by every role without authentication.

use actix_web::{HttpResponse, web};

use super::stats::queue_gauges;
use crate::queue::now_millis;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let margin = chrono::Duration::hours(state.settings.admin.deadline_warning_hours as i64);
    // Process counters are still worth a scrape when the database is down.
    let gauges = match queue_gauges(&state.db, margin, now_millis()).await {
        Ok(gauges) => Some(gauges),
        Err(err) => {
            tracing::warn!(error = %err, "metrics scrape without queue gauges: database error");
            None
        }
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(gauges.as_ref()))
}
