use super::*;
use crate::storage::manifest::{ManifestChunk, ObjectDigest, SCHEMA};

/// The test vector's private key: the 32 bytes 0x00, 0x01, … 0x1f.
fn vector_signer() -> ManifestSigner {
    let mut seed = [0u8; 32];
    for (at, byte) in seed.iter_mut().enumerate() {
        *byte = at as u8;
    }
    ManifestSigner::from_seed(seed)
}

fn vector_manifest() -> Manifest {
    Manifest {
        schema: SCHEMA.to_owned(),
        call_id: "call-1".into(),
        recording_id: Some("rec-1".into()),
        server_call_id: None,
        recording_start_time: Some("2026-01-02T03:04:05Z".into()),
        recording_duration_ms: Some(61000),
        content_type: Some("audio".into()),
        channel_type: Some("mixed".into()),
        format: Some("wav".into()),
        session_end_reason: Some("CallEnded".into()),
        participants: vec!["8:acs:é".into()],
        pause_resume_intervals: None,
        chunks: vec![ManifestChunk {
            index: 0,
            document_id: "doc-1".into(),
            end_reason: Some("SessionEnded".into()),
            media: ObjectDigest {
                key: "call-1/rec-1/chunk-0000.wav".into(),
                bytes: 3,
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            },
            metadata: ObjectDigest {
                key: "call-1/rec-1/chunk-0000.metadata.json".into(),
                bytes: 2,
                sha256: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".into(),
            },
            start_time: None,
            duration_ms: None,
            archived_at: "2026-01-02T03:05:00+00:00".into(),
        }],
        event_ids: vec!["evt-1".into()],
        archived_at: "2026-01-02T03:05:01+00:00".into(),
    }
}

fn vector_position() -> ChainPosition {
    ChainPosition {
        previous: Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()),
        earlier_versions: Vec::new(),
    }
}

/// The canonical bytes of the vector (docs/storage.md, "Signed manifests").
const VECTOR_CANONICAL: &str = r#"{"archivedAt":"2026-01-02T03:05:01+00:00","callId":"call-1","channelType":"mixed","chunks":[{"archivedAt":"2026-01-02T03:05:00+00:00","documentId":"doc-1","endReason":"SessionEnded","index":0,"media":{"bytes":3,"key":"call-1/rec-1/chunk-0000.wav","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},"metadata":{"bytes":2,"key":"call-1/rec-1/chunk-0000.metadata.json","sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}}],"contentType":"audio","eventIds":["evt-1"],"format":"wav","participants":["8:acs:é"],"recordingDurationMs":61000,"recordingId":"rec-1","recordingStartTime":"2026-01-02T03:04:05Z","schema":"callvault.manifest/v1","serverCallId":null,"sessionEndReason":"CallEnded","signature":{"algorithm":"Ed25519","earlierVersions":[],"previousManifestSha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","publicKey":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="}}"#;
const VECTOR_PUBLIC_KEY: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
const VECTOR_SIGNATURE: &str =
    "ck7BwS5GgAwXJr88jMyRwkU+XydS9XByAMrHYqeKNFd9DXGWSsYu3ocouNcjdkHvXsvBZ2/ffZrv5OkbgpzjBA==";

fn stored_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn the_test_vector_signs_to_its_published_signature() {
    let signer = vector_signer();
    assert_eq!(signer.public_key().to_string(), VECTOR_PUBLIC_KEY);
    let bytes = signer.sign(&vector_manifest(), vector_position());
    let mut value = stored_value(&bytes);
    let signature = value["signature"]["value"].as_str().unwrap().to_owned();
    value["signature"].as_object_mut().unwrap().remove("value");
    assert_eq!(
        String::from_utf8(canonical_bytes(&value).unwrap()).unwrap(),
        VECTOR_CANONICAL
    );
    assert_eq!(signature, VECTOR_SIGNATURE);
    // Ed25519 is deterministic: the signature is that of the canonical bytes, by any library.
    let again = BASE64.encode(signer.key.sign(VECTOR_CANONICAL.as_bytes()).to_bytes());
    assert_eq!(again, VECTOR_SIGNATURE);
}

#[test]
fn a_signed_manifest_verifies_and_still_reads_as_a_manifest() {
    let signer = vector_signer();
    let bytes = signer.sign(&vector_manifest(), vector_position());
    let checked = check(&bytes, &signer.public_key());
    assert_eq!(checked.verdict, Verdict::SignedOk);
    let signature = checked.signature.unwrap();
    assert_eq!(
        signature.previous_manifest_sha256,
        vector_position().previous
    );
    assert_eq!(
        checked.sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    // Readers of the unsigned format ignore the new member.
    let read: Manifest = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(read, vector_manifest());
    // The signature covers the contents, not their layout: compact bytes verify as well.
    let compact = serde_json::to_vec(&stored_value(&bytes)).unwrap();
    assert_eq!(
        check(&compact, &signer.public_key()).verdict,
        Verdict::SignedOk
    );
}

#[test]
fn recomputed_hashes_after_changing_an_object_invalidate_the_signature() {
    let signer = vector_signer();
    let bytes = signer.sign(&vector_manifest(), vector_position());
    let mut value = stored_value(&bytes);
    // What someone who replaced the media without the key would write.
    value["chunks"][0]["media"]["bytes"] = 4.into();
    value["chunks"][0]["media"]["sha256"] =
        "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589".into();
    let forged = serde_json::to_vec_pretty(&value).unwrap();
    assert!(matches!(
        check(&forged, &signer.public_key()).verdict,
        Verdict::Invalid(reason) if reason.contains("changed after it was signed")
    ));
    // A changed chain link is a change too.
    let mut relinked = stored_value(&bytes);
    relinked["signature"]["previousManifestSha256"] = Value::Null;
    let relinked = serde_json::to_vec(&relinked).unwrap();
    assert!(matches!(
        check(&relinked, &signer.public_key()).verdict,
        Verdict::Invalid(_)
    ));
}

#[test]
fn a_manifest_signed_again_with_another_key_is_invalid() {
    let trusted = vector_signer().public_key();
    let other = ManifestSigner::from_seed([9; 32]);
    let bytes = other.sign(&vector_manifest(), vector_position());
    assert!(matches!(
        check(&bytes, &trusted).verdict,
        Verdict::Invalid(reason) if reason.contains("not the trusted")
    ));
    assert_eq!(
        check(&bytes, &other.public_key()).verdict,
        Verdict::SignedOk
    );
}

#[test]
fn unsigned_and_malformed_manifests_are_told_apart() {
    let key = vector_signer().public_key();
    let unsigned = serde_json::to_vec_pretty(&vector_manifest()).unwrap();
    assert_eq!(check(&unsigned, &key).verdict, Verdict::Unsigned);
    assert!(matches!(check(b"[1]", &key).verdict, Verdict::Invalid(_)));
    assert!(matches!(check(b"{", &key).verdict, Verdict::Invalid(_)));
    let mut no_value = stored_value(&vector_signer().sign(&vector_manifest(), vector_position()));
    no_value["signature"]
        .as_object_mut()
        .unwrap()
        .remove("value");
    assert_eq!(
        check(&serde_json::to_vec(&no_value).unwrap(), &key).verdict,
        Verdict::Invalid("the signature member has no value".into())
    );
}

#[test]
fn the_setting_takes_the_base64_seed_and_names_itself_when_malformed() {
    let signer = vector_signer();
    let setting = signer.private_key_setting();
    assert_eq!(ManifestSigner::from_setting(&setting).unwrap(), signer);
    for (value, says) in [
        ("not base64!", "is not standard base64"),
        ("AAEC", "decodes to 3 bytes"),
    ] {
        let err = ManifestSigner::from_setting(&Secret::new(value)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(SIGNING_KEY_SETTING) && message.contains(says),
            "{message}"
        );
        assert!(
            !message.contains(value),
            "the message repeats the key: {message}"
        );
    }
    assert!(!format!("{signer:?}").contains(setting.expose()));
}

#[test]
fn public_keys_parse_only_as_32_base64_bytes() {
    let key = vector_signer().public_key();
    assert_eq!(key.to_string().parse::<PublicKey>().unwrap(), key);
    assert!("AAEC".parse::<PublicKey>().unwrap_err().contains("3 bytes"));
    assert!("%%".parse::<PublicKey>().is_err());
}

#[test]
fn generated_keys_differ() {
    assert_ne!(ManifestSigner::generate(), ManifestSigner::generate());
}
