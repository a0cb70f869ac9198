//! Entra tokens on the wire: every webhook request of a delivery, the handshake first, carries
//! a bearer token that verifies against the key set the emulator serves; the OpenID
//! configuration points at that key set; the control routes turn tokens on, change and off.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation as JwtValidation, decode, decode_header};
use serde_json::{Value, json};

use super::subscriber::{Received, Subscriber, Validation};
use super::*;
use crate::{DeliveryOptions, EVENT_GRID_ROLE, EntraOptions, Schema};

const TENANT: &str = "contoso.onmicrosoft.com";
const AUDIENCE: &str = "api://callvault-webhook";

async fn get_json(url: url::Url) -> (u16, Value) {
    let response = http().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The claims of the bearer token `received` carries, verified against `key_set`.
fn claims(received: &Received, key_set: &JwkSet) -> Value {
    let token = received
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_else(|| panic!("no bearer token on {received:?}"));
    let kid = decode_header(token).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(key_set.find(&kid).unwrap()).unwrap();
    let mut validation = JwtValidation::new(Algorithm::RS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[format!("https://login.microsoftonline.com/{TENANT}/v2.0")]);
    decode::<Value>(token, &key, &validation).unwrap().claims
}

#[tokio::test]
async fn every_webhook_request_carries_a_token_the_served_keys_verify() {
    let emulator = start_with(EmulatorConfig {
        entra: Some(EntraOptions::new(TENANT, AUDIENCE)),
        ..config()
    })
    .await;
    let keys_url = emulator.entra_keys_url().unwrap();
    assert_eq!(keys_url.path(), format!("/{TENANT}/discovery/v2.0/keys"));
    let (status, served) = get_json(keys_url.clone()).await;
    assert_eq!(status, 200);
    let key_set: JwkSet = serde_json::from_value(served).unwrap();

    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        let subscriber = Subscriber::start(Validation::Echo, &[], Some("*")).await;
        let options = DeliveryOptions {
            schema,
            ..DeliveryOptions::default()
        };
        let report = emulator
            .deliver(&subscriber.url, vec![json!({ "id": "e-1" })], options)
            .await;
        assert!(report.validated, "{schema:?}");
        assert_eq!(report.delivered, 1);
        let received = subscriber.received();
        assert_eq!(received.len(), 2, "the handshake and the event");
        for request in &received {
            let claims = claims(request, &key_set);
            assert_eq!(claims["tid"], TENANT);
            assert_eq!(claims["roles"], json!([EVENT_GRID_ROLE]));
        }
        subscriber.stop().await;
    }

    let configuration = emulator
        .endpoint()
        .join(&format!("{TENANT}/v2.0/.well-known/openid-configuration"))
        .unwrap();
    let (status, document) = get_json(configuration).await;
    assert_eq!(status, 200);
    assert_eq!(document["jwks_uri"], keys_url.as_str());
    assert_eq!(
        document["issuer"],
        format!("https://login.microsoftonline.com/{TENANT}/v2.0")
    );
    assert!(
        emulator.requests().is_empty(),
        "key set fetches are not ACS requests"
    );
    emulator.stop().await;
}

#[tokio::test]
async fn without_entra_no_token_is_sent_and_no_keys_are_served() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Echo, &[], None).await;
    emulator
        .deliver(
            &subscriber.url,
            vec![json!({ "id": "e" })],
            DeliveryOptions::default(),
        )
        .await;
    assert!(
        subscriber
            .received()
            .iter()
            .all(|request| request.header("authorization").is_none())
    );
    assert!(emulator.entra_keys_url().is_none());
    let keys = emulator
        .endpoint()
        .join(&format!("{TENANT}/discovery/v2.0/keys"))
        .unwrap();
    let (status, body) = get_json(keys).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_tenant");
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn tokens_are_turned_on_changed_and_off_over_http() {
    let emulator = start().await;
    let entra = emulator.endpoint().join("emulator/entra").unwrap();
    let (status, _) = get_json(entra.clone()).await;
    assert_eq!(status, 404);

    let refused = http()
        .put(entra.clone())
        .json(&json!({ "tenantId": "not/a/tenant", "audience": AUDIENCE }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "invalid_entra");

    let set: Value = http()
        .put(entra.clone())
        .json(&json!({ "tenantId": TENANT, "audience": AUDIENCE, "tokenVersion": "1.0" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["issuer"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(set["keysUrl"], emulator.entra_keys_url().unwrap().as_str());
    let (status, key_set) = get_json(emulator.entra_keys_url().unwrap()).await;
    assert_eq!(status, 200);
    let (status, other_tenant) = get_json(
        emulator
            .endpoint()
            .join("another-tenant/discovery/v2.0/keys")
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &other_tenant["error"]),
        (400, &json!("invalid_tenant"))
    );

    http()
        .put(entra.clone())
        .json(&json!({ "tenantId": TENANT, "audience": "api://another-app" }))
        .send()
        .await
        .unwrap();
    let (_, same_keys) = get_json(emulator.entra_keys_url().unwrap()).await;
    assert_eq!(same_keys, key_set, "changing the claims keeps the key");

    let cleared = http().delete(entra.clone()).send().await.unwrap();
    assert_eq!(cleared.status(), 204);
    assert!(emulator.entra_keys_url().is_none());
    emulator.stop().await;
}
