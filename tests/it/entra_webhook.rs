//! Microsoft Entra ID on the webhook, end to end: tokens minted with a test key, the tenant's
//! keys served on loopback as Entra serves them, deliveries through the running app.

use actix_web::{App, HttpResponse, HttpServer, web};
use callvault_emulator::EmulatorConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::support::{SECRET, TestApp, start_emulator};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "api://callvault-webhook";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The tenant's key set, served as `/{tenant}/discovery/v2.0/keys`; answers its URL template.
fn serve_keys() -> String {
    let jwk: Value = serde_json::from_slice(&fixture("entra/first.jwk.json")).unwrap();
    let document = json!({ "keys": [jwk] });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let document = document.clone();
        App::new().route(
            "/{tenant}/discovery/v2.0/keys",
            web::get().to(move || {
                let document = document.clone();
                async move { HttpResponse::Ok().json(document) }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}/{{tenant}}/discovery/v2.0/keys")
}

fn token(audience: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "tid": TENANT,
        "nbf": now - 5,
        "exp": now + 600,
        "roles": ["AzureEventGridSecureWebhookSubscriber"],
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-first".into());
    let key = EncodingKey::from_rsa_pem(&fixture("entra/first.pem")).unwrap();
    encode(&header, &claims, &key).unwrap()
}

async fn app_with_entra(secret: &str) -> (callvault_emulator::Emulator, TestApp) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(
        &emulator,
        &[
            ("ingest.secret", secret.into()),
            ("ingest.entra.tenant_id", TENANT.into()),
            ("ingest.entra.audience", AUDIENCE.into()),
            ("ingest.entra.require_role", "true".into()),
            ("ingest.entra.keys_url", serve_keys()),
        ],
    )
    .await;
    (emulator, app)
}

fn validation() -> Value {
    serde_json::from_slice(&fixture("eventgrid-subscription-validation.json")).unwrap()
}

async fn post(app: &TestApp, url: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = app
        .client
        .post(url)
        .header("aeg-event-type", "SubscriptionValidation")
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn code_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    body["code"].as_str().unwrap().to_owned()
}

async fn refused_count(app: &TestApp) -> String {
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|line| line.starts_with("callvault_webhook_unauthorized_total "))
        .unwrap_or_else(|| panic!("no refusal counter in {metrics}"))
        .to_owned()
}

#[tokio::test]
async fn with_a_secret_too_every_delivery_needs_both() {
    let (_emulator, app) = app_with_entra(SECRET).await;
    let with_secret = app.events_url().to_string();
    let without_secret = format!("{}/api/events", app.base);

    let handshake = post(&app, &with_secret, Some(&token(AUDIENCE)), &validation()).await;
    assert_eq!(handshake.status(), 200);
    let body: Value = handshake.json().await.unwrap();
    assert_eq!(
        body["validationResponse"],
        "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    );

    let cases = [
        (
            post(&app, &with_secret, None, &validation()).await,
            "missing_bearer_token",
        ),
        (
            post(
                &app,
                &with_secret,
                Some(&token("api://another-app")),
                &validation(),
            )
            .await,
            "invalid_bearer_token",
        ),
        (
            post(&app, &without_secret, Some(&token(AUDIENCE)), &validation()).await,
            "unauthorized",
        ),
    ];
    for (response, expected) in cases {
        assert_eq!(code_of(response).await, expected);
    }
    assert_eq!(
        refused_count(&app).await,
        "callvault_webhook_unauthorized_total 3"
    );
}

#[tokio::test]
async fn entra_alone_admits_a_recording_event_and_guards_the_cloud_events_handshake() {
    let (_emulator, app) = app_with_entra("").await;
    let url = format!("{}/api/events", app.base);
    let event: Value =
        serde_json::from_slice(&fixture("recording-file-status-updated.ga.json")).unwrap();
    let response = post(&app, &url, Some(&token(AUDIENCE)), &event).await;
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    let judged = ["accepted", "quarantined", "ignored"]
        .iter()
        .map(|key| summary[key].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(judged, 1, "the event reached the intake: {summary}");
    let again = post(&app, &url, None, &event).await;
    assert_eq!(code_of(again).await, "missing_bearer_token");

    let options = |token: Option<String>| {
        let mut request = app
            .client
            .request(reqwest::Method::OPTIONS, &url)
            .header("WebHook-Request-Origin", "eventgrid.azure.net");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(options(None).await.unwrap().status(), 401);
    assert_eq!(options(Some(token(AUDIENCE))).await.unwrap().status(), 200);
}
