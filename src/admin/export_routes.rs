//! `/admin/exports`: queue an access-request export, follow it, download the tar.

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, web};

use super::exports::{ExportView, MAX_OPEN_EXPORTS, file_of};
use crate::export::Selection;
use crate::http_error::ApiError;
use crate::queue::{exports, now_millis, recordings};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/exports", web::post().to(create))
        .route("/exports/{id}", web::get().to(show))
        .route("/exports/{id}/download", web::get().to(download));
}

/// The one place that decides who may export personal data (the operator role) and names
/// them for `index.json` and the exports table: the holder of an operator token, by its
/// name (`admin` for `admin.token`).
fn require_operator(request: &HttpRequest) -> Result<String, ApiError> {
    Ok(super::auth::operator_of(request)?.name)
}

fn export_dir(state: &AppState) -> Result<std::path::PathBuf, ApiError> {
    let dir = &state.settings.admin.export_dir;
    if dir.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "exports_disabled",
            "exports through the admin API are off: set admin.export_dir (or use `callvault export`)",
        ));
    }
    Ok(dir.into())
}

#[tracing::instrument(skip_all)]
async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<Selection>,
) -> Result<HttpResponse, ApiError> {
    let requested_by = require_operator(&request)?;
    export_dir(&state)?;
    let selection = body
        .into_inner()
        .checked()
        .map_err(|err| ApiError::bad_request("invalid_selection", err.to_string()))?;
    if let Selection::Recordings(ids) = &selection {
        for id in ids {
            if recordings::get(&state.db, *id).await?.is_none() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "recording_not_found",
                    format!("no recording with id {id}"),
                ));
            }
        }
    }
    if exports::open_count(&state.db).await? >= MAX_OPEN_EXPORTS {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_exports",
            format!(
                "{MAX_OPEN_EXPORTS} exports are already queued or running; retry once some are done"
            ),
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let stored = serde_json::to_string(&selection).expect("a selection serialises");
    exports::insert(&state.db, &id, &stored, &requested_by, now_millis()).await?;
    state.export_wake.notify_one();
    tracing::info!(export_id = %id, asked_for = %selection.describe(), %requested_by, "export queued");
    let row = exports::get(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::internal("the export just queued is gone; see the server log"))?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/admin/exports/{id}")))
        .json(ExportView::new(
            &row,
            state.settings.admin.export_keep_hours,
        )))
}

async fn find(state: &AppState, id: &str) -> Result<exports::ExportRow, ApiError> {
    // Ids are 32 hex digits; anything else cannot name one.
    let plausible = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let row = if plausible {
        exports::get(&state.db, id).await?
    } else {
        None
    };
    row.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "export_not_found",
            format!("no export with id `{}`", crate::quote::quote(id)),
        )
    })
}

#[tracing::instrument(skip_all, fields(export_id = %path))]
async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&state, &path).await?;
    Ok(HttpResponse::Ok().json(ExportView::new(
        &row,
        state.settings.admin.export_keep_hours,
    )))
}

/// The finished tar, streamed from the file.
#[tracing::instrument(skip_all, fields(export_id = %path))]
async fn download(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let requested_by = require_operator(&request)?;
    let dir = export_dir(&state)?;
    let row = find(&state, &path).await?;
    match row.state.as_str() {
        "done" => {}
        "removed" => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "export_removed",
                format!(
                    "export {} was deleted after admin.export_keep_hours; request a new one",
                    row.id
                ),
            ));
        }
        "failed" => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "export_failed",
                format!(
                    "export {} failed: {}",
                    row.id,
                    row.error.as_deref().unwrap_or("see the server log")
                ),
            ));
        }
        other => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "export_not_ready",
                format!(
                    "export {} is {other}; download it once its state is done",
                    row.id
                ),
            ));
        }
    }
    let file_path = file_of(&dir, &row.id);
    let file = tokio::fs::File::open(&file_path).await.map_err(|err| {
        tracing::error!(export_id = %row.id, path = %file_path.display(), error = %err, "a done export has no file");
        ApiError::new(
            StatusCode::GONE,
            "export_file_missing",
            format!("export {} is done but its file is gone from admin.export_dir on this replica", row.id),
        )
    })?;
    let length = file
        .metadata()
        .await
        .map_err(|_| ApiError::internal("cannot read the export's size; see the server log"))?
        .len();
    tracing::info!(export_id = %row.id, %requested_by, bytes = length, "audit: export downloaded");
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(format!(
                "callvault-export-{}.tar",
                row.id
            ))],
        })
        .no_chunking(length)
        .streaming(tokio_util::io::ReaderStream::new(file)))
}
