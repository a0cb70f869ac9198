//! Tokens minted here with the test keys of `tests/fixtures/entra/`, checked against a key set
//! served on loopback, the way Entra serves a tenant's keys.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::{EVENT_GRID_ROLE, EntraPolicy, EntraVerifier, KeySet, Refusal};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "api://callvault-webhook";
const FIRST_PEM: &[u8] = include_bytes!("../../../tests/fixtures/entra/first.pem");
const SECOND_PEM: &[u8] = include_bytes!("../../../tests/fixtures/entra/second.pem");
const FIRST_PUBLIC_PEM: &[u8] = include_bytes!("../../../tests/fixtures/entra/first.public.pem");
const FIRST_JWK: &str = include_str!("../../../tests/fixtures/entra/first.jwk.json");
const SECOND_JWK: &str = include_str!("../../../tests/fixtures/entra/second.jwk.json");

/// A JWKS endpoint whose key set the test can change, counting its fetches.
struct KeyServer {
    url: String,
    served: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    fn start(jwks: &[&str]) -> Self {
        let served = Arc::new(Mutex::new(key_set(jwks)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (document, count) = (served.clone(), fetches.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let (document, count) = (document.clone(), count.clone());
            App::new().route(
                "/discovery/v2.0/keys",
                web::get().to(move || {
                    count.fetch_add(1, Ordering::SeqCst);
                    let body = document.lock().unwrap().clone();
                    async move { HttpResponse::Ok().json(body) }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/discovery/v2.0/keys"),
            served,
            fetches,
        }
    }

    fn serve(&self, jwks: &[&str]) {
        *self.served.lock().unwrap() = key_set(jwks);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn key_set(jwks: &[&str]) -> Value {
    let keys: Vec<Value> = jwks
        .iter()
        .map(|jwk| serde_json::from_str(jwk).unwrap())
        .collect();
    json!({ "keys": keys })
}

fn verifier(server: &KeyServer, require_role: bool, min_refresh: Duration) -> EntraVerifier {
    EntraVerifier::new(
        EntraPolicy {
            tenant_id: TENANT.into(),
            audience: AUDIENCE.into(),
            require_role,
        },
        KeySet::new(server.url.clone(), min_refresh),
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a v2 token Event Grid would send.
fn claims() -> Value {
    json!({
        "aud": AUDIENCE,
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "tid": TENANT,
        "iat": now() - 10,
        "nbf": now() - 10,
        "exp": now() + 3600,
        "roles": [EVENT_GRID_ROLE],
    })
}

fn signed(claims: &Value, pem: &[u8], kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

async fn refusal(verifier: &EntraVerifier, token: &str) -> String {
    match verifier.check(Some(&bearer(token))).await {
        Err(Refusal::Invalid(reason)) => reason,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_of_the_tenant_for_the_audience_passes_in_both_issuer_forms() {
    let server = KeyServer::start(&[FIRST_JWK]);
    let verifier = verifier(&server, true, Duration::from_secs(60));
    let v2 = signed(&claims(), FIRST_PEM, "test-first");
    verifier.check(Some(&bearer(&v2))).await.unwrap();
    let v1 = with(
        claims(),
        "iss",
        json!(format!("https://sts.windows.net/{TENANT}/")),
    );
    verifier
        .check(Some(&format!(
            "bearer {}",
            signed(&v1, FIRST_PEM, "test-first")
        )))
        .await
        .unwrap();
    assert_eq!(server.fetches(), 1, "the key set is fetched once and kept");
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_is_refused() {
    let server = KeyServer::start(&[FIRST_JWK]);
    let verifier = verifier(&server, false, Duration::from_secs(60));
    for header in [None, Some(""), Some("Bearer "), Some("Basic abc")] {
        let refused = verifier.check(header).await.unwrap_err();
        assert_eq!(refused, Refusal::Missing, "{header:?}");
        assert_eq!(refused.code(), "missing_bearer_token");
    }
    assert!(
        refusal(&verifier, "not.a.token")
            .await
            .contains("unreadable")
    );
    let huge = "a".repeat(20 * 1024);
    assert!(refusal(&verifier, &huge).await.contains("more than"));
    assert_eq!(
        server.fetches(),
        0,
        "nothing unreadable reaches the key set"
    );
}

#[tokio::test]
async fn each_wrong_claim_is_refused_naming_it() {
    let server = KeyServer::start(&[FIRST_JWK]);
    let verifier = verifier(&server, true, Duration::from_secs(60));
    let cases = [
        (
            with(claims(), "aud", json!("api://someone-else")),
            "audience",
        ),
        (
            with(
                claims(),
                "iss",
                json!(
                    "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"
                ),
            ),
            "issuer",
        ),
        (
            with(
                claims(),
                "tid",
                json!("00000000-0000-0000-0000-000000000000"),
            ),
            "tenant",
        ),
        // Beyond the minute of skew either way.
        (with(claims(), "exp", json!(now() - 120)), "expired"),
        (with(claims(), "nbf", json!(now() + 120)), "not valid yet"),
        (
            with(claims(), "roles", json!(["SomethingElse"])),
            EVENT_GRID_ROLE,
        ),
    ];
    for (claims, expected) in cases {
        let reason = refusal(&verifier, &signed(&claims, FIRST_PEM, "test-first")).await;
        assert!(reason.contains(expected), "{expected}: {reason}");
    }
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let reason = refusal(&verifier, &signed(&no_exp, FIRST_PEM, "test-first")).await;
    assert!(reason.contains("`exp`"), "{reason}");
}

#[tokio::test]
async fn within_a_minute_of_skew_a_token_still_passes() {
    let server = KeyServer::start(&[FIRST_JWK]);
    let verifier = verifier(&server, false, Duration::from_secs(60));
    let just_expired = with(claims(), "exp", json!(now() - 30));
    let almost_valid = with(claims(), "nbf", json!(now() + 30));
    for claims in [just_expired, almost_valid] {
        verifier
            .check(Some(&bearer(&signed(&claims, FIRST_PEM, "test-first"))))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_role_is_required_only_when_configured() {
    let server = KeyServer::start(&[FIRST_JWK]);
    let without_role = with(claims(), "roles", json!([]));
    let token = signed(&without_role, FIRST_PEM, "test-first");
    verifier(&server, false, Duration::from_secs(60))
        .check(Some(&bearer(&token)))
        .await
        .unwrap();
    let strict = verifier(&server, true, Duration::from_secs(60));
    assert!(refusal(&strict, &token).await.contains(EVENT_GRID_ROLE));
}

#[tokio::test]
async fn forged_signatures_and_algorithms_are_refused() {
    let server = KeyServer::start(&[FIRST_JWK]);
    let verifier = verifier(&server, false, Duration::from_secs(60));
    // Signed by another key under the first key's name.
    let forged = signed(&claims(), SECOND_PEM, "test-first");
    assert!(refusal(&verifier, &forged).await.contains("signature"));

    // `alg: none`, no signature.
    let b64 = |value: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "test-first"})),
        b64(&claims())
    );
    assert!(refusal(&verifier, &none).await.contains("unreadable"));

    // HS256 "signed" with the public key's PEM as the shared secret: the classic key confusion.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-first".into());
    let confused = encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(FIRST_PUBLIC_PEM),
    )
    .unwrap();
    assert!(refusal(&verifier, &confused).await.contains("RS256"));

    // No `kid`: nothing says which key to check with.
    let anonymous = encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(FIRST_PEM).unwrap(),
    )
    .unwrap();
    assert!(refusal(&verifier, &anonymous).await.contains("`kid`"));
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_first_names_it() {
    let server = KeyServer::start(&[FIRST_JWK]);
    let verifier = verifier(&server, false, Duration::ZERO);
    let first = signed(&claims(), FIRST_PEM, "test-first");
    verifier.check(Some(&bearer(&first))).await.unwrap();

    // A key nobody published: refused after one more look at the set.
    let unknown = signed(&claims(), SECOND_PEM, "test-second");
    assert!(
        refusal(&verifier, &unknown)
            .await
            .contains("not among the tenant's signing keys")
    );
    assert_eq!(server.fetches(), 2);

    // Entra rotates: the new key appears, the old one goes.
    server.serve(&[SECOND_JWK]);
    verifier.check(Some(&bearer(&unknown))).await.unwrap();
    assert_eq!(server.fetches(), 3);
    // Still cached: the old key's tokens keep passing until the set is fetched again.
    verifier.check(Some(&bearer(&unknown))).await.unwrap();
    assert_eq!(server.fetches(), 3);
}

#[tokio::test]
async fn unknown_keys_force_at_most_one_fetch_per_interval() {
    let server = KeyServer::start(&[FIRST_JWK]);
    let verifier = verifier(&server, false, Duration::from_secs(3600));
    verifier
        .check(Some(&bearer(&signed(&claims(), FIRST_PEM, "test-first"))))
        .await
        .unwrap();
    for n in 0..20 {
        let made_up = signed(&claims(), SECOND_PEM, &format!("made-up-{n}"));
        assert!(refusal(&verifier, &made_up).await.contains("not among"));
    }
    assert_eq!(
        server.fetches(),
        1,
        "made-up key ids cause no fetch within the interval"
    );
}

#[tokio::test]
async fn a_key_set_that_cannot_be_read_refuses_with_its_own_code() {
    let server = KeyServer::start(&[]);
    let verifier = verifier(&server, false, Duration::ZERO);
    let token = signed(&claims(), FIRST_PEM, "test-first");
    let refused = verifier.check(Some(&bearer(&token))).await.unwrap_err();
    assert_eq!(refused.code(), "signing_keys_unavailable", "{refused}");
    assert!(
        refused.to_string().contains("no RSA signing key"),
        "{refused}"
    );
}
