//! The control routes of storage queue delivery (under `/emulator`):
//!
//! - `PUT /emulator/queues` with `[{"url", "accountKey"?, "sas"?}]` replaces the queues every
//!   recording event is also put into (credentials as for `--deliver-to-queue`); answers
//!   `{"queues": [URL, …]}`.
//! - `GET /emulator/queues` answers `{"queues": [URL, …]}` (never a credential).
//!
//! `POST /emulator/deliver` delivers into these queues as well as to the webhooks.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::control_error::ControlError;
use crate::queue_destination::QueueDestination;
use crate::state::{Shared, lock};

/// More queue destinations than this are refused.
pub(crate) const MAX_QUEUES: usize = 16;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/queues")
            .route(web::put().to(set))
            .route(web::get().to(get)),
    );
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QueueBody {
    url: String,
    account_key: Option<String>,
    sas: Option<String>,
}

async fn set(
    shared: web::Data<Shared>,
    body: web::Json<Vec<QueueBody>>,
) -> Result<HttpResponse, ControlError> {
    let bodies = body.into_inner();
    if bodies.len() > MAX_QUEUES {
        return Err(ControlError::bad_request(
            "too_many_queues",
            format!("{} queues given; at most {MAX_QUEUES}", bodies.len()),
        ));
    }
    let destinations = bodies
        .iter()
        .enumerate()
        .map(|(index, queue)| {
            QueueDestination::new(
                &queue.url,
                queue.account_key.as_deref(),
                queue.sas.as_deref(),
            )
            .map_err(|err| {
                ControlError::bad_request("invalid_queue", format!("queue {index}: {err}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    *lock(&shared.queues) = destinations;
    Ok(get(shared).await)
}

async fn get(shared: web::Data<Shared>) -> HttpResponse {
    let queues: Vec<String> = lock(&shared.queues)
        .iter()
        .map(ToString::to_string)
        .collect();
    HttpResponse::Ok().json(json!({ "queues": queues }))
}
