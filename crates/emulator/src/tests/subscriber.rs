//! A small real webhook that records every request and answers as a test scripts it.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// How the webhook answers the Event Grid validation event.
#[derive(Debug, Clone, Copy)]
pub(super) enum Validation {
    /// 200 with the right `validationResponse`.
    Echo,
    /// 202 with the right code, which Event Grid refuses.
    Accepted,
    /// Visits `validationUrl`, then answers 200 without a body.
    Manual,
}

/// One request the webhook received.
#[derive(Debug, Clone)]
pub(super) struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
    /// The body as sent, for the ones that are not JSON.
    pub raw: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct Script {
    validation: Validation,
    /// Statuses for notifications, in order; 200 once they run out.
    statuses: Mutex<VecDeque<u16>>,
    /// `WebHook-Allowed-Origin` for the CloudEvents handshake; `None` refuses it.
    allowed_origin: Option<&'static str>,
    received: Mutex<Vec<Received>>,
}

pub(super) struct Subscriber {
    pub url: url::Url,
    script: Arc<Script>,
    server: ServerHandle,
}

impl Subscriber {
    pub async fn start(
        validation: Validation,
        statuses: &[u16],
        allowed_origin: Option<&'static str>,
    ) -> Subscriber {
        let script = Arc::new(Script {
            validation,
            statuses: Mutex::new(statuses.iter().copied().collect()),
            allowed_origin,
            received: Mutex::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::from(script.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Subscriber {
            url: url::Url::parse(&format!("http://127.0.0.1:{port}/api/events?code=SECRET"))
                .unwrap(),
            script,
            server: handle,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// The notifications, without handshakes.
    pub fn notifications(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.header("aeg-event-type") == Some("Notification"))
            .collect()
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

async fn answer(request: HttpRequest, body: web::Bytes, script: web::Data<Script>) -> HttpResponse {
    let received = Received {
        method: request.method().to_string(),
        path_and_query: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&body).into_owned(),
    };
    script.received.lock().unwrap().push(received.clone());
    if received.method == "OPTIONS" {
        return match script.allowed_origin {
            Some(origin) => HttpResponse::Ok()
                .insert_header(("WebHook-Allowed-Origin", origin))
                .insert_header(("Allow", "POST"))
                .finish(),
            None => HttpResponse::MethodNotAllowed().finish(),
        };
    }
    if received.header("aeg-event-type") == Some("SubscriptionValidation") {
        let data = &received.body[0]["data"];
        let code = data["validationCode"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return match script.validation {
            Validation::Echo => HttpResponse::Ok().json(json!({ "validationResponse": code })),
            Validation::Accepted => {
                HttpResponse::Accepted().json(json!({ "validationResponse": code }))
            }
            Validation::Manual => {
                let url = data["validationUrl"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let visited = reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .unwrap()
                    .get(url)
                    .send()
                    .await;
                match visited {
                    Ok(response) if response.status().is_success() => HttpResponse::Ok().finish(),
                    _ => HttpResponse::InternalServerError().finish(),
                }
            }
        };
    }
    let status = script.statuses.lock().unwrap().pop_front().unwrap_or(200);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}
