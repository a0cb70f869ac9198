//! Azure version-level immutability on its success path. Azurite does not implement it, so a
//! stand-in sits in front of Azurite: it forwards every request unchanged (the Shared Key
//! signature does not cover the host), reports the container as immutable with versioning,
//! and answers Set Blob Immutability Policy and Set Blob Legal Hold itself, recording each.
//! The tests check what callvault asks Azure for, and that it proceeds when Azure agrees.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};

use super::servers::{PART, azure_endpoint, create_container, pattern, storage_settings};
use crate::storage::Archive;

/// One Set Blob Immutability Policy or Set Blob Legal Hold that reached the stand-in.
#[derive(Debug, Clone)]
struct PolicyRequest {
    comp: String,
    /// The blob's path below the container.
    blob: String,
    headers: http::HeaderMap,
}

impl PolicyRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

struct StandIn {
    upstream: String,
    container: String,
    client: reqwest::Client,
    policies: Mutex<Vec<PolicyRequest>>,
}

/// Starts the stand-in before `upstream` (Azurite's `http://host:port`); answers its
/// endpoint (`http://127.0.0.1:PORT/devstoreaccount1`) and what it records.
fn start(upstream: &str, container: &str) -> (String, Arc<StandIn>) {
    let url = url::Url::parse(upstream).unwrap();
    let stand_in = Arc::new(StandIn {
        upstream: format!("{}://{}", url.scheme(), url.authority()),
        container: container.to_owned(),
        client: reqwest::Client::new(),
        policies: Mutex::new(Vec::new()),
    });
    let state = web::Data::from(stand_in.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .default_service(web::to(answer))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (
        format!(
            "http://127.0.0.1:{port}{}",
            url.path().trim_end_matches('/')
        ),
        stand_in,
    )
}

async fn answer(request: HttpRequest, body: Bytes, stand_in: web::Data<StandIn>) -> HttpResponse {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.query_string().as_bytes())
            .into_owned()
            .collect();
    let comp = query
        .iter()
        .find(|(name, _)| name == "comp")
        .map(|(_, value)| value.clone());
    if let Some(comp) = comp
        .clone()
        .filter(|c| c == "immutabilityPolicies" || c == "legalhold")
    {
        let prefix = format!("/{}/", stand_in.container);
        let path = request.path();
        let blob = path
            .find(&prefix)
            .map(|at| path[at + prefix.len()..].to_owned())
            .unwrap_or_default();
        // actix speaks another version of `http` than reqwest: headers cross as bytes.
        let mut headers = http::HeaderMap::new();
        for (name, value) in request.headers() {
            headers.insert(
                http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        stand_in.policies.lock().unwrap().push(PolicyRequest {
            comp,
            blob,
            headers,
        });
        return HttpResponse::Ok().finish();
    }
    let target = format!("{}{}", stand_in.upstream, request.uri());
    let method = http::Method::from_bytes(request.method().as_str().as_bytes()).unwrap();
    let mut forwarded = stand_in.client.request(method.clone(), &target);
    for (name, value) in request.headers() {
        if name.as_str() != "host" {
            forwarded = forwarded.header(name.as_str(), value.as_bytes());
        }
    }
    let upstream = forwarded.body(body).send().await.expect("Azurite answers");
    let container_properties = method == http::Method::GET
        && query
            .iter()
            .any(|(n, v)| n == "restype" && v == "container")
        && comp.is_none();
    let status = actix_web::http::StatusCode::from_u16(upstream.status().as_u16()).unwrap();
    let mut response = HttpResponse::build(status);
    for (name, value) in upstream.headers() {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response.insert_header((name.as_str(), value.as_bytes()));
        }
    }
    if container_properties {
        response.insert_header(("x-ms-immutable-storage-with-versioning-enabled", "true"));
    }
    response.body(upstream.bytes().await.expect("Azurite's body"))
}

/// An archive locking through the stand-in (at write when `after_hours` is 0), on a fresh
/// container.
async fn locking_archive(
    mode: &str,
    days: u32,
    after_hours: u32,
) -> Option<(Archive, Arc<StandIn>)> {
    let endpoint = azure_endpoint()?;
    let container = super::servers::unique_name();
    create_container(&endpoint, &container).await;
    let (stand_in_endpoint, stand_in) = start(&endpoint, &container);
    let settings = storage_settings(&[
        ("storage.kind", "azure".to_owned()),
        ("storage.container", container),
        ("storage.endpoint", stand_in_endpoint),
        ("storage.object_lock_mode", mode.to_owned()),
        ("storage.object_lock_days", days.to_string()),
        ("storage.lock_after_hours", after_hours.to_string()),
    ]);
    let archive = Archive::open(&settings)
        .await
        .expect("a container reporting version-level immutability passes the start-up check");
    Some((archive, stand_in))
}

fn until_of(request: &PolicyRequest) -> DateTime<Utc> {
    let raw = request
        .header("x-ms-immutability-policy-until-date")
        .expect("the policy names its end");
    DateTime::parse_from_rfc2822(raw)
        .or_else(|_| DateTime::parse_from_rfc3339(raw))
        .unwrap_or_else(|err| panic!("until date {raw:?}: {err}"))
        .with_timezone(&Utc)
}

#[tokio::test]
async fn every_committed_blob_gets_its_retention_policy_when_locked_at_write() {
    let Some((archive, stand_in)) = locking_archive("compliance", 7, 0).await else {
        return;
    };
    let before = Utc::now();
    let layout = archive.layout("call", "rec");
    let small = layout.media(0, "wav");
    let large = layout.media(1, "wav");
    let mut writer = archive.writer(&small).await.unwrap();
    writer.write(Bytes::from_static(b"media")).await.unwrap();
    writer.finish().await.unwrap();
    let mut writer = archive.writer(&large).await.unwrap();
    writer.write(pattern(PART + 7, 3)).await.unwrap();
    writer.finish().await.unwrap();
    archive
        .put_bytes_once(&layout.metadata(0), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    archive
        .put_bytes(&layout.manifest(), Bytes::from_static(b"{\"chunks\":2}"))
        .await
        .unwrap();

    let policies = stand_in.policies.lock().unwrap().clone();
    let blobs: Vec<&str> = policies.iter().map(|p| p.blob.as_str()).collect();
    let expected: Vec<String> = [&small, &large, &layout.metadata(0), &layout.manifest()]
        .iter()
        .map(|key| key.to_string())
        .collect();
    assert_eq!(blobs, expected, "one policy per object, after its commit");
    for policy in &policies {
        assert_eq!(policy.comp, "immutabilityPolicies");
        // Compliance mode is Azure's locked policy, which nobody can shorten.
        assert_eq!(
            policy.header("x-ms-immutability-policy-mode"),
            Some("Locked")
        );
        let until = until_of(policy);
        assert!(
            until >= before + Duration::days(7) - Duration::seconds(1)
                && until <= Utc::now() + Duration::days(7) + Duration::seconds(1),
            "{until} is not 7 days from the write"
        );
        // Set Blob Immutability Policy exists from service version 2020-06-12.
        let version = policy.header("x-ms-version").expect("a service version");
        assert!(version >= "2020-06-12", "{version}");
        assert!(policy.header("authorization").is_some(), "signed");
    }
}

#[tokio::test]
async fn a_legal_hold_reaches_every_object_of_the_recording_and_is_released() {
    let Some((archive, stand_in)) = locking_archive("governance", 1, 0).await else {
        return;
    };
    let layout = archive.layout("call", "held");
    let media = layout.media(0, "wav");
    let mut writer = archive.writer(&media).await.unwrap();
    writer.write(Bytes::from_static(b"media")).await.unwrap();
    writer.finish().await.unwrap();
    archive
        .put_bytes_once(&layout.metadata(0), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    archive
        .put_bytes(&layout.manifest(), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let written = stand_in.policies.lock().unwrap().len();
    assert!(
        stand_in.policies.lock().unwrap()[..written]
            .iter()
            .all(|p| p.header("x-ms-immutability-policy-mode") == Some("Unlocked")),
        "governance mode is Azure's unlocked policy"
    );

    for on in [true, false] {
        let before = stand_in.policies.lock().unwrap().len();
        archive.set_legal_hold(&layout, on).await.unwrap();
        let holds: Vec<PolicyRequest> = stand_in.policies.lock().unwrap()[before..].to_vec();
        let mut blobs: Vec<&str> = holds.iter().map(|p| p.blob.as_str()).collect();
        blobs.sort();
        let mut expected = vec![
            media.to_string(),
            layout.metadata(0).to_string(),
            layout.manifest().to_string(),
        ];
        expected.sort();
        assert_eq!(blobs, expected, "hold {on}: every object of the recording");
        for hold in &holds {
            assert_eq!(hold.comp, "legalhold");
            assert_eq!(
                hold.header("x-ms-legal-hold"),
                Some(if on { "true" } else { "false" })
            );
        }
    }
}

#[tokio::test]
async fn locking_after_a_holding_period_writes_unlocked_then_locks_every_object() {
    let Some((archive, stand_in)) = locking_archive("compliance", 30, 24).await else {
        return;
    };
    let layout = archive.layout("call", "later");
    let mut writer = archive.writer(&layout.media(0, "wav")).await.unwrap();
    writer.write(pattern(PART + 1, 4)).await.unwrap();
    writer.finish().await.unwrap();
    archive
        .put_bytes(&layout.manifest(), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert!(
        stand_in.policies.lock().unwrap().is_empty(),
        "nothing is locked before the holding period ends"
    );
    let now = Utc::now();
    assert_eq!(archive.lock_recording(&layout, now).await.unwrap(), 2);
    let policies = stand_in.policies.lock().unwrap().clone();
    assert_eq!(policies.len(), 2);
    for policy in &policies {
        assert_eq!(policy.comp, "immutabilityPolicies");
        assert_eq!(
            policy.header("x-ms-immutability-policy-mode"),
            Some("Locked")
        );
        let until = until_of(policy);
        // RFC 1123 keeps whole seconds.
        let expected = now + Duration::days(30);
        assert!(
            (until - expected).num_seconds().abs() <= 1,
            "{until} against {expected}"
        );
    }
}
