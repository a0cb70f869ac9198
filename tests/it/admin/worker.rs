//! Replay end to end: a real worker, and a local HTTP server standing in for ACS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;

use super::support::*;
use callvault::app::Role;

/// Serves chunk media and metadata, or 500 while `broken`.
struct FakeAcs {
    authority: String,
    broken: Arc<AtomicBool>,
    server: actix_web::dev::ServerHandle,
}

const MEDIA: &[u8] = b"ID3 not really an mp3, but bytes to archive";

async fn serve(
    path: web::Path<(String, String)>,
    broken: web::Data<Arc<AtomicBool>>,
) -> HttpResponse {
    if broken.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().body("storage hiccup");
    }
    let (document, kind) = path.into_inner();
    if kind == "acsmetadata" {
        HttpResponse::Ok()
            .content_type("application/octet-stream")
            .json(json!({"chunkDocumentId": document, "participants": [{"participantId": "8:acs:p1"}]}))
    } else {
        HttpResponse::Ok().body(MEDIA)
    }
}

async fn fake_acs() -> FakeAcs {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let broken = Arc::new(AtomicBool::new(true));
    let shared = broken.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(shared.clone()))
            .route("/v1/objects/{doc}/content/{kind}", web::get().to(serve))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    FakeAcs {
        authority,
        broken,
        server: handle,
    }
}

async fn a_replayed_failed_job_is_archived_by_the_woken_worker(store: Store) {
    let acs = fake_acs().await;
    // One attempt, and no polling: only a wake-up can make the worker look again.
    let extra = [
        ("worker.max_attempts", "1".to_owned()),
        ("worker.poll_interval_ms", "3600000".to_owned()),
    ];
    let Some(app) = start(store, Role::All, &acs.authority, &extra).await else {
        return;
    };
    let event = recording_event(
        "evt-w",
        "w",
        hours_ago(1),
        &[(0, "SessionEnded")],
        &acs.authority,
    );
    app.deliver(json!([event])).await;
    let job = job_id(app.queue(), "w", 0).await;

    let failed = app
        .await_json(&format!("/admin/jobs/{job}"), "the job to fail", |j| {
            j["state"] == "failed"
        })
        .await;
    assert!(
        failed["last_error"].as_str().unwrap().contains("500"),
        "{failed}"
    );

    acs.broken.store(false, Ordering::SeqCst);
    let (status, body) = app
        .post(&format!("/admin/jobs/{job}/replay"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let recording = app
        .await_json("/admin/recordings/w", "the recording to complete", |r| {
            r["state"] == "complete"
        })
        .await;
    let chunk = &recording["chunks"][0];
    assert_eq!(chunk["state"], "archived");
    assert_eq!(chunk["media"]["bytes"], MEDIA.len());
    assert_eq!(chunk["attempt_history"].as_array().unwrap().len(), 2);
    let manifest = recording["manifest_key"].as_str().unwrap();
    assert!(app.dir().join("archive").join(manifest).is_file());

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("callvault_attempts_total{outcome=\"failed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("callvault_attempts_total{outcome=\"archived\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("callvault_transfer_duration_seconds_count 1"),
        "{text}"
    );
    app.close().await;
    acs.server.stop(true).await;
}

on_every_store!(a_replayed_failed_job_is_archived_by_the_woken_worker);
