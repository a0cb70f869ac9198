//! `GET /metrics`: Prometheus text, served by every role without authentication.

use actix_web::{HttpResponse, web};

use super::stats::queue_gauges;
use crate::queue::{now_millis, outbox};
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
    let mut text = state.metrics.render(gauges.as_ref());
    if gauges.is_some() {
        text.push_str(&outbox_gauges(&state).await);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}

/// Depth and oldest undelivered event per configured sink, each read from an index.
async fn outbox_gauges(state: &AppState) -> String {
    let sinks = &state.settings.events.sinks;
    if sinks.is_empty() {
        return String::new();
    }
    let now = now_millis();
    let mut depth = String::from(
        "# HELP callvault_event_outbox Events in the outbox by sink and state (delivered ones are not counted)\n# TYPE callvault_event_outbox gauge\n",
    );
    let mut age = String::from(
        "# HELP callvault_event_outbox_oldest_pending_age_seconds Age of the oldest event not yet delivered, per sink (0 when none)\n# TYPE callvault_event_outbox_oldest_pending_age_seconds gauge\n",
    );
    for sink in sinks {
        match outbox::gauges(&state.db, &sink.name, now).await {
            Ok(g) => {
                for (name, n) in [
                    ("pending", g.pending),
                    ("delivering", g.delivering),
                    ("failed", g.failed),
                ] {
                    depth.push_str(&format!(
                        "callvault_event_outbox{{sink=\"{}\",state=\"{name}\"}} {n}\n",
                        g.sink
                    ));
                }
                age.push_str(&format!(
                    "callvault_event_outbox_oldest_pending_age_seconds{{sink=\"{}\"}} {}\n",
                    g.sink, g.oldest_pending_age_seconds
                ));
            }
            Err(err) => {
                tracing::warn!(sink = %sink.name, error = %err, "metrics scrape without the outbox gauges of a sink")
            }
        }
    }
    depth + &age
}
