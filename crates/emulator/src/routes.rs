//! The ACS download routes: GA object URLs and the 2021 preview ones, every request
//! HMAC-verified, ranges honoured, media streamed from its generator.

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::auth::{self, Presented};
use crate::errors::acs_error;
use crate::faults::{self, Effect, Target};
use crate::media::MediaSpec;
use crate::range::RangeRequest;
use crate::state::{Shared, SignedOk, lock};

/// Mounts the download routes.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    // ACS serves video and preview media as video/mp4, audio and the JSON metadata as
    // octet-stream: clients must not insist on JSON.
    const OCTETS: &str = "application/octet-stream";
    config
        .route(
            "/v1/objects/{id}/content/video",
            download(Target::Media, "video/mp4"),
        )
        .route(
            "/v1/objects/{id}/content/audio",
            download(Target::Media, OCTETS),
        )
        .route(
            "/v1/objects/{id}/content/acsmetadata",
            download(Target::Metadata, OCTETS),
        )
        .route(
            "/v1/objects/{id}/content/deletedata",
            web::delete().to(delete),
        )
        .route(
            "/recording/download/{id}",
            download(Target::Media, "video/mp4"),
        )
        .route(
            "/recording/download/{id}/metadata",
            download(Target::Metadata, OCTETS),
        );
}

/// Anything else: ACS's 404.
pub(crate) async fn not_found() -> HttpResponse {
    acs_error(404, "no such resource", None)
}

/// A signed GET that serves one body of a document with the content type ACS gives it.
fn download(target: Target, content_type: &'static str) -> actix_web::Route {
    web::get().to(
        move |request: HttpRequest,
              body: web::Bytes,
              shared: web::Data<Shared>,
              id: web::Path<String>| async move {
            serve(&request, &body, &shared, &id, target, content_type)
        },
    )
}

async fn delete(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(denied) = refuse_unsigned(&request, &body, &shared) {
        return denied;
    }
    let now = shared.now();
    let mut store = lock(&shared.store);
    match store.documents.get_mut(id.as_str()) {
        Some(document) if document.available(now, shared.retention) => {
            document.deleted = true;
            HttpResponse::Ok().finish()
        }
        _ => acs_error(404, "the recording does not exist", Some(&id)),
    }
}

/// Checks the signature (wall clock, not the shifted one: the client's date is real),
/// notes the outcome for the request log, and returns the 401 when it fails.
pub(crate) fn refuse_unsigned(
    request: &HttpRequest,
    body: &[u8],
    shared: &Shared,
) -> Option<HttpResponse> {
    check_signature(request, body, shared)
        .err()
        .map(|err| acs_error(401, &err.to_string(), None))
}

/// Checks the signature and notes the outcome for the request log; the caller shapes the
/// 401 (the preview API's errors are not wrapped).
pub(crate) fn check_signature(
    request: &HttpRequest,
    body: &[u8],
    shared: &Shared,
) -> Result<(), auth::AuthError> {
    let outcome = auth::verify(
        &Presented::from_request(request, body),
        &shared.host,
        &shared.key,
        chrono::Utc::now(),
    );
    request.extensions_mut().insert(SignedOk(outcome.is_ok()));
    if let Err(err) = &outcome {
        tracing::debug!(path = request.path(), reason = %err, "emulator refused a signature");
    }
    outcome
}

/// Answers a GET of a document's media or metadata.
fn serve(
    request: &HttpRequest,
    body: &[u8],
    shared: &Shared,
    id: &str,
    target: Target,
    content_type: &'static str,
) -> HttpResponse {
    if let Some(denied) = refuse_unsigned(request, body, shared) {
        return denied;
    }
    let range_header = request
        .headers()
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    let now = shared.now();
    let (source, range, effect) = {
        let mut store = lock(&shared.store);
        let source = match store.documents.get(id) {
            Some(document) if document.available(now, shared.retention) => match target {
                Target::Media => document.media.clone(),
                Target::Metadata => MediaSpec::Bytes(document.metadata.clone()),
            },
            _ => return acs_error(404, "the recording does not exist", Some(id)),
        };
        let range = RangeRequest::parse(range_header, source.len());
        let has_body = range != RangeRequest::Unsatisfiable;
        let effect = store
            .faults
            .get_mut(id)
            .map_or(Effect::Serve, |fault| fault.take(target, has_body));
        (source, range, effect)
    };
    let total = source.len();
    match effect {
        Effect::Status(status) => {
            return acs_error(status, "emulated failure of the recording store", Some(id));
        }
        Effect::EmptyBody => {
            return HttpResponse::Ok()
                .content_type(content_type)
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .body(web::Bytes::new());
        }
        _ => {}
    }
    let (mut response, start, end) = match range {
        RangeRequest::Full => (HttpResponse::Ok(), 0, total),
        RangeRequest::Partial { start, end } => {
            let mut response = HttpResponse::PartialContent();
            response.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{total}"),
            ));
            (response, start, end + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut response = acs_error(416, "the range cannot be satisfied", Some(id));
            if let Ok(value) = header::HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let chunks = source.stream(start, end);
    let stream = match effect {
        Effect::ResetAfter(limit) => faults::cut_after(chunks, limit),
        Effect::Throttle(rate) => faults::throttle(chunks, rate),
        _ => faults::plain(chunks),
    };
    response
        .content_type(content_type)
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .body(SizedStream::new(end - start, stream))
}
