//! A webhook receiver on loopback that records every delivery, checks its Standard Webhooks
//! signature and, for an `archived` event, whether its manifest was readable at that moment
//! (for an `erased` event, its tombstone).

use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One POST as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub event: Value,
    pub at: Instant,
    pub answered: u16,
    pub signature_ok: bool,
    /// For `archived`: the manifest at `data.manifest.key` existed and listed at least the
    /// event's chunks when the event arrived.
    pub manifest_readable: Option<bool>,
    /// For `erased`: the tombstone at `data.tombstone.key` existed with the event's sha256
    /// when the event arrived.
    pub tombstone_readable: Option<bool>,
    /// The `aeg-sas-key` header (an Event Grid topic's key), empty when absent.
    pub aeg_sas_key: String,
}

struct Shared {
    key: Vec<u8>,
    /// Statuses to answer first, in order; then `otherwise`.
    plan: Mutex<VecDeque<u16>>,
    otherwise: Mutex<u16>,
    log: Mutex<Vec<Received>>,
    archive: Option<PathBuf>,
}

pub struct Receiver {
    pub url: String,
    shared: web::Data<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Answers `plan` first, then 200; `archive` is the local archive an `archived` event's
    /// manifest is looked for in.
    pub fn start(plan: &[u16], archive: Option<PathBuf>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let shared = web::Data::new(Shared {
            key: STANDARD
                .decode(WEBHOOK_SECRET.strip_prefix("whsec_").unwrap())
                .unwrap(),
            plan: Mutex::new(plan.iter().copied().collect()),
            otherwise: Mutex::new(200),
            log: Mutex::default(),
            archive,
        });
        let data = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/hook", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url,
            shared,
            server: handle,
        }
    }

    /// Every delivery so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The deliveries answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// What to answer once the plan is used up.
    pub fn answer_from_now(&self, status: u16) {
        *self.shared.otherwise.lock().unwrap() = status;
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&shared.key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let manifest_readable = (event["type"] == "com.callvault.recording.archived")
        .then(|| manifest_is_readable(shared.archive.as_ref(), &event));
    let tombstone_readable = (event["type"] == "com.callvault.recording.erased")
        .then(|| tombstone_is_readable(shared.archive.as_ref(), &event));
    let answered = shared
        .plan
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(*shared.otherwise.lock().unwrap());
    shared.log.lock().unwrap().push(Received {
        signature_ok: fresh && signature == expected && event["id"] == id.as_str(),
        id,
        event,
        at: Instant::now(),
        answered,
        manifest_readable,
        tombstone_readable,
        aeg_sas_key: header("aeg-sas-key"),
    });
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap());
    if answered == 429 || answered == 503 {
        response.insert_header(("retry-after", "0"));
    }
    response.body("answered by the test receiver")
}

fn manifest_is_readable(archive: Option<&PathBuf>, event: &Value) -> bool {
    let Some(archive) = archive else {
        return true;
    };
    let Some(key) = event["data"]["manifest"]["key"].as_str() else {
        return false;
    };
    let Ok(bytes) = std::fs::read(archive.join(key)) else {
        return false;
    };
    let Ok(manifest) = serde_json::from_slice::<Value>(&bytes) else {
        return false;
    };
    let listed = manifest["chunks"].as_array().map_or(0, Vec::len) as u64;
    listed >= event["data"]["chunkCount"].as_u64().unwrap_or(u64::MAX)
}

fn tombstone_is_readable(archive: Option<&PathBuf>, event: &Value) -> bool {
    let Some(archive) = archive else {
        return true;
    };
    let Some(key) = event["data"]["tombstone"]["key"].as_str() else {
        return false;
    };
    std::fs::read(archive.join(key)).is_ok_and(|bytes| {
        crate::support::sha256_hex(&bytes)
            == event["data"]["tombstone"]["sha256"]
                .as_str()
                .unwrap_or_default()
    })
}
