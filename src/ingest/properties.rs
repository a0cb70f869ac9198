//! Property tests of the webhook parsers: whatever a sender posts, every event ends accepted,
//! quarantined with a reason, or the body is refused; nothing panics, and every URL that is
//! accepted passes the worker's own re-check for its purpose and document.

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::Utc;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use super::Intake;
use super::envelope::parse_body;
use super::plan::{Action, Plan, Planned};
use super::recording_event::{MAX_CHUNKS_PER_EVENT, parse_subject};
use super::tests::intake_on;
use crate::acs::Fetch;
use crate::queue::Db;
use crate::queue::intake::MAX_STORED_PAYLOAD_BYTES;
use crate::recording::Announcement;

/// Strings an attacker would try in ids and URLs, and arbitrary ones.
fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-zA-Z0-9._-]{1,24}",
        2 => any::<String>(),
        1 => "[./%#?@:~ \\\\]{0,12}",
        1 => Just("..".to_owned()),
        1 => Just("%2F..%2F".to_owned()),
        1 => "x{190,260}",
    ]
    .boxed()
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("us-storage.asm.skype.com".to_owned()),
        Just("contoso-acs.communication.azure.com".to_owned()),
        Just("asm.skype.com".to_owned()),
        Just("evil.example".to_owned()),
        Just("us-storage.asm.skype.com.evil.example".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("169.254.169.254".to_owned()),
        Just("[::1]".to_owned()),
        Just("user:pw@us-storage.asm.skype.com".to_owned()),
        "[a-z0-9.-]{1,30}",
    ]
}

fn path_for(document_id: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("/v1/objects/{document_id}/content/video")),
        Just(format!("/v1/objects/{document_id}/content/acsmetadata")),
        Just(format!("/v1/objects/{document_id}/content/deletedata")),
        Just(format!("/v1/objects/{document_id}")),
        Just(format!("/recording/download/{document_id}")),
        Just(format!("/recording/download/{document_id}/metadata")),
        Just("/phoneNumbers?api-version=2022-12-01".to_owned()),
        Just("/calling/recordings/ID?api-version=2025-06-15".to_owned()),
        Just("/v1/objects/other-document/content/video".to_owned()),
        Just(format!("/v1/objects/{document_id}/../../admin")),
        Just(format!("/v1/objects/{document_id}%2F..%2Fx")),
        hostile_text().prop_map(|p| format!("/{p}")),
    ]
}

fn location(document_id: String) -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (prop_oneof![Just("https"), Just("http"), Just("ftp")], host(), path_for(document_id))
            .prop_map(|(scheme, host, path)| Value::String(format!("{scheme}://{host}{path}"))),
        1 => hostile_text().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<i64>().prop_map(Value::from),
    ]
}

fn index() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0u64..8).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| json!(f)),
        1 => Just(json!("0")),
        1 => Just(Value::Null),
    ]
}

fn chunk() -> impl Strategy<Value = Value> {
    hostile_text()
        .prop_flat_map(|document_id| {
            (
                Just(document_id.clone()),
                index(),
                prop::option::of(location(document_id.clone())),
                prop::option::of(location(document_id.clone())),
                prop::option::of(location(document_id)),
                prop::option::of(prop_oneof![
                    Just("SessionEnded".to_owned()),
                    Just("ChunkMaximumSizeExceeded".to_owned()),
                    hostile_text()
                ]),
            )
        })
        .prop_map(|(document_id, index, content, metadata, delete, end)| {
            let mut chunk = json!({ "documentId": document_id, "index": index });
            for (key, value) in [
                ("contentLocation", content),
                ("metadataLocation", metadata),
                ("deleteLocation", delete),
                ("endReason", end.map(Value::String)),
            ] {
                if let Some(value) = value {
                    chunk[key] = value;
                }
            }
            chunk
        })
}

fn subject() -> impl Strategy<Value = String> {
    let id = hostile_text();
    prop_oneof![
        id.clone().prop_map(|c| format!("/recording/call/{c}")),
        (id.clone(), id.clone()).prop_map(|(c, s)| format!("/recording/call/{c}/serverCallId/{s}")),
        (id.clone(), id.clone()).prop_map(|(c, r)| format!("/recording/call/{c}/recordingId/{r}")),
        (id.clone(), id.clone(), id.clone())
            .prop_map(|(c, s, r)| format!("/recording/call/{c}/serverCallId/{s}/recordingId/{r}")),
        (id.clone(), id.clone())
            .prop_map(|(c, r)| format!("/recording/call/{c}/recordingId/{r}/serverCallId/{r}")),
        id.prop_map(|s| format!("/{s}")),
    ]
}

fn start_time() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("2026-11-27T09:20:23.6089755Z")),
        Just(json!("2026-11-27T09:20:23Z")),
        Just(json!("2999-01-01T00:00:00Z")),
        Just(json!("0001-01-01T00:00:00Z")),
        Just(json!("+275760-09-13T00:00:00Z")),
        hostile_text().prop_map(Value::String),
        Just(Value::Null),
    ]
}

/// A chunk as ACS writes it, with its index given by its position.
fn well_formed_chunk() -> impl Strategy<Value = Value> {
    ("[0-9a-f-]{8,40}", any::<bool>(), any::<bool>()).prop_map(|(document_id, ga, bare_delete)| {
        if !ga {
            return json!({ "documentId": document_id, "endReason": "SessionEnded" });
        }
        let object = format!("https://us-storage.asm.skype.com/v1/objects/{document_id}");
        let delete = if bare_delete {
            object.clone()
        } else {
            format!("{object}/content/deletedata")
        };
        json!({
            "documentId": document_id,
            "endReason": "ChunkMaximumSizeExceeded",
            "contentLocation": format!("{object}/content/video"),
            "metadataLocation": format!("{object}/content/acsmetadata"),
            "deleteLocation": delete,
        })
    })
}

/// Chunks: mostly well formed (indices by position), some with one hostile chunk among them,
/// some entirely hostile.
fn chunks() -> impl Strategy<Value = Vec<Value>> {
    prop_oneof![
        3 => prop::collection::vec(well_formed_chunk(), 1..5).prop_map(|mut chunks| {
            for (index, chunk) in chunks.iter_mut().enumerate() {
                chunk["index"] = index.into();
            }
            chunks
        }),
        2 => (prop::collection::vec(well_formed_chunk(), 1..4), chunk()).prop_map(|(mut chunks, bad)| {
            for (index, chunk) in chunks.iter_mut().enumerate() {
                chunk["index"] = index.into();
            }
            chunks.push(bad);
            chunks
        }),
        2 => prop::collection::vec(chunk(), 0..6),
    ]
}

fn well_formed_subject() -> impl Strategy<Value = String> {
    ("[a-zA-Z0-9-]{1,36}", "[a-zA-Z0-9_=-]{1,60}", 0..3u8).prop_map(|(call, id, form)| match form {
        0 => format!("/recording/call/{call}/serverCallId/{id}"),
        1 => format!("/recording/call/{call}/serverCallId/{id}/recordingId/{id}"),
        _ => format!("/recording/call/{call}"),
    })
}

fn event() -> impl Strategy<Value = Value> {
    (
        prop_oneof![6 => "[a-f0-9-]{8,36}".prop_map(Some), 1 => prop::option::of(hostile_text())],
        prop_oneof![
            6 => Just("Microsoft.Communication.RecordingFileStatusUpdated".to_owned()),
            1 => Just("Microsoft.Communication.RecordingStateChanged".to_owned()),
            1 => hostile_text(),
        ],
        prop_oneof![3 => well_formed_subject(), 1 => subject()],
        chunks(),
        prop_oneof![3 => Just(json!("2026-11-27T09:20:23.6089755Z")), 1 => start_time()],
        any::<bool>(),
        prop::option::of(prop_oneof![Just("Mp4"), Just("Wav"), Just("Mp3")]),
    )
        .prop_map(|(id, event_type, subject, chunks, start, cloud, format)| {
            let data = json!({
                "recordingStorageInfo": { "recordingChunks": chunks },
                "recordingStartTime": start,
                "recordingDurationMs": 1000,
                "recordingFormatType": format,
            });
            if cloud {
                json!({"specversion": "1.0", "id": id, "type": event_type, "subject": subject,
                       "source": "/s", "time": "2026-11-27T13:23:47Z", "data": data})
            } else {
                json!({"id": id, "eventType": event_type, "subject": subject,
                       "eventTime": "2026-11-27T13:23:47Z", "data": data, "dataVersion": "1.0"})
            }
        })
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(hostile_text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A delivery body: mostly well-shaped events, sometimes arbitrary JSON, sometimes mangled bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(event(), 0..4).prop_map(|events| serde_json::to_vec(&events).unwrap()),
        1 => event().prop_map(|e| serde_json::to_vec(&e).unwrap()),
        1 => arbitrary_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => (prop::collection::vec(event(), 1..3), any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(events, at, byte)| {
                let mut bytes = serde_json::to_vec(&events).unwrap();
                let at = at.index(bytes.len());
                bytes[at] = byte;
                bytes
            }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// An intake whose database is never touched: judging is pure.
fn intake() -> &'static Intake {
    static INTAKE: OnceLock<(tokio::runtime::Runtime, Intake)> = OnceLock::new();
    &INTAKE
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let db = runtime.block_on(Db::connect("sqlite::memory:", 1)).unwrap();
            let intake = intake_on(db);
            (runtime, intake)
        })
        .1
}

/// The longest reason any refusal may carry: a few quotes of at most 200 characters.
const MAX_REASON_CHARS: usize = 1_024;

/// What judging one body must satisfy, whatever the body: the body is refused (400/413), or
/// every event is accepted with URLs that pass the worker's own re-check, quarantined with a
/// bounded non-empty reason and a bounded stored payload, or ignored.
fn check_body(body: &[u8]) -> Result<(), TestCaseError> {
    let events = match parse_body(body) {
        Ok(events) => events,
        Err(refused) => {
            prop_assert!(!refused.to_string().is_empty());
            return Ok(());
        }
    };
    let intake = intake();
    for event in events {
        let planned = Planned::new(event, intake, Utc::now());
        let reason = match &planned.plan {
            Plan::Unidentified(reason) => Some(reason.to_string()),
            Plan::Identified(Action::Invalid(reason)) => Some(reason.clone()),
            Plan::Identified(Action::Files(work)) => {
                check_accepted(intake, work)?;
                None
            }
            Plan::Identified(Action::Ignored | Action::StateChange(_) | Action::CallLeg(_)) => None,
        };
        if let Some(reason) = reason {
            prop_assert!(!reason.trim().is_empty());
            prop_assert!(
                reason.chars().count() <= MAX_REASON_CHARS,
                "reason of {} characters",
                reason.chars().count()
            );
            let stored = planned.stored_payload();
            prop_assert!(stored.text.len() <= MAX_STORED_PAYLOAD_BYTES);
            prop_assert_eq!(stored.truncated, stored.text.len() < stored.bytes as usize);
        }
    }
    Ok(())
}

fn check_accepted(intake: &Intake, work: &Announcement) -> Result<(), TestCaseError> {
    let guard = &intake.guard;
    prop_assert!(!work.chunks.is_empty() && work.chunks.len() <= MAX_CHUNKS_PER_EVENT);
    prop_assert!(!work.call_id.is_empty() && !work.recording_key.is_empty());
    let mut indices = HashSet::new();
    for chunk in &work.chunks {
        prop_assert!(indices.insert(chunk.index), "index {} twice", chunk.index);
        let document = &chunk.document_id;
        let content = guard.stored_download(&chunk.content_url, Fetch::Media, document);
        prop_assert!(
            content.is_ok(),
            "{}: {:?}",
            chunk.content_url,
            content.err()
        );
        let metadata = guard.stored_download(&chunk.metadata_url, Fetch::Metadata, document);
        prop_assert!(
            metadata.is_ok(),
            "{}: {:?}",
            chunk.metadata_url,
            metadata.err()
        );
        if let Some(delete) = &chunk.delete_url {
            let checked = guard.stored_delete(delete, document);
            prop_assert!(checked.is_ok(), "{}: {:?}", delete, checked.err());
        }
        for url in [chunk.content_url.as_str(), chunk.metadata_url.as_str()] {
            let host = url::Url::parse(url)
                .unwrap()
                .host_str()
                .unwrap_or("")
                .to_owned();
            prop_assert!(
                host == "contoso-acs.communication.azure.com" || host.ends_with(".asm.skype.com"),
                "accepted host {}",
                host
            );
        }
    }
    Ok(())
}

/// The case count: a few thousand in `cargo test`; `PROPTEST_CASES` raises it for the long
/// run in benches/parser_properties.sh.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs a property on a thread with a large stack: the nested strategies build deep value
/// trees, which a debug build keeps on the stack.
fn run<S: Strategy>(strategy: fn() -> S, property: fn(&S::Value) -> Result<(), TestCaseError>) {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(64 * 1024 * 1024)
            .spawn_scoped(scope, || {
                let mut runner = TestRunner::new(config());
                if let Err(failure) = runner.run(&strategy(), |value| property(&value)) {
                    panic!("{failure}");
                }
            })
            .unwrap()
            .join()
            .unwrap();
    });
}

#[test]
fn every_delivery_is_judged_without_panicking() {
    run(body, |body| check_body(body));
}

#[test]
fn every_subject_parses_or_is_refused() {
    run(subject, |subject| {
        if let Some(parsed) = parse_subject(subject) {
            prop_assert!(!parsed.call_id.is_empty());
            prop_assert!(subject.starts_with("/recording/call/"));
            prop_assert!(subject.contains(&parsed.call_id));
            for id in [&parsed.server_call_id, &parsed.recording_id]
                .into_iter()
                .flatten()
            {
                prop_assert!(!id.is_empty() && subject.contains(id.as_str()));
            }
        }
        Ok(())
    });
}

#[test]
fn the_generators_reach_every_verdict() {
    // Guards the property test itself: a generator that only ever produced refusals would
    // pass vacuously.
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(count_verdicts)
        .unwrap()
        .join()
        .unwrap();
}

fn count_verdicts() {
    let mut runner = TestRunner::deterministic();
    let (mut accepted, mut quarantined, mut refused) = (0, 0, 0);
    for _ in 0..2_000 {
        let body = body().new_tree(&mut runner).unwrap().current();
        match parse_body(&body) {
            Err(_) => refused += 1,
            Ok(events) => {
                for event in events {
                    match Planned::new(event, intake(), Utc::now()).plan {
                        Plan::Identified(Action::Files(_)) => accepted += 1,
                        Plan::Unidentified(_) | Plan::Identified(Action::Invalid(_)) => {
                            quarantined += 1
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    assert!(accepted > 20, "accepted {accepted}");
    assert!(quarantined > 100, "quarantined {quarantined}");
    assert!(refused > 20, "refused {refused}");
}
