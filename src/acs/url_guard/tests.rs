use super::*;

const DOC: &str = "0-eus-d12-801b3f3fc462fe8a01e6810cbff729b8";
const ENDPOINT: &str = "https://contoso.communication.azure.com/";

fn endpoint() -> url::Url {
    url::Url::parse(ENDPOINT).unwrap()
}

fn guard(allow_http: bool) -> UrlGuard {
    let suffixes = vec![
        ".asm.skype.com".to_owned(),
        ".asyncgw.teams.microsoft.com".to_owned(),
    ];
    UrlGuard::new(&suffixes, &endpoint(), allow_http)
}

fn object(host: &str, rest: &str) -> String {
    format!("https://{host}/v1/objects/{DOC}{rest}")
}

#[test]
fn accepts_the_samples_ga_locations_on_storage_hosts_and_the_endpoint() {
    let guard = guard(false);
    for host in [
        "us-storage.asm.skype.com",
        "eu-storage.asm.skype.com",
        "contoso.communication.azure.com",
    ] {
        for (rest, fetch) in [
            ("/content/video", Fetch::Media),
            ("/content/audio", Fetch::Media),
            ("/content/acsmetadata", Fetch::Metadata),
        ] {
            let url = guard.ga_download(&object(host, rest), fetch, DOC).unwrap();
            assert_eq!((url.fetch(), url.document_id()), (fetch, DOC));
        }
        for rest in ["/content/deletedata", ""] {
            let url = guard.ga_delete(&object(host, rest), DOC).unwrap();
            assert_eq!(url.document_id(), DOC);
        }
    }
}

#[test]
fn acs_api_paths_on_the_endpoint_are_refused_naming_the_purpose() {
    let guard = guard(false);
    let phone_numbers = format!("{ENDPOINT}phoneNumbers?api-version=2022-12-01");
    let err = guard
        .ga_download(&phone_numbers, Fetch::Media, DOC)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("contentLocation `{phone_numbers}` is not /v1/objects/{{documentId}}[/…]")
    );
    let err = guard
        .ga_download(&phone_numbers, Fetch::Metadata, DOC)
        .unwrap_err();
    assert!(err.to_string().starts_with("metadataLocation `"), "{err}");

    let recordings = format!("{ENDPOINT}calling/recordings/ID?api-version=2025-06-15");
    let err = guard.ga_delete(&recordings, DOC).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("deleteLocation `{recordings}` is not /v1/objects/{{documentId}}[/…]")
    );
    assert!(guard.stored_delete(&recordings, DOC).is_err());
    assert!(
        guard
            .stored_download(&phone_numbers, Fetch::Media, DOC)
            .is_err()
    );
}

#[test]
fn a_location_of_another_document_is_refused() {
    let guard = guard(false);
    let other = "https://us-storage.asm.skype.com/v1/objects/0-eus-d12-9a1e77c0f1d34b8e8c2a50b6d1e4f001/content/deletedata";
    assert!(matches!(
        guard.ga_delete(other, DOC),
        Err(GuardError::WrongPath {
            purpose: Purpose::Delete,
            ..
        })
    ));
    // A prefix of the documentId is another document too.
    let prefix = format!("https://us-storage.asm.skype.com/v1/objects/{}", &DOC[..10]);
    assert!(guard.ga_delete(&prefix, DOC).is_err());
    assert!(guard.ga_download(other, Fetch::Media, DOC).is_err());
}

#[test]
fn encoded_slashes_cannot_widen_the_match() {
    let guard = guard(false);
    for raw in [
        format!("{ENDPOINT}v1/objects/{DOC}%2F..%2F..%2F..%2FphoneNumbers"),
        format!("{ENDPOINT}v1/objects/{DOC}/content%2F..%2F..%2F..%2F..%2FphoneNumbers"),
        format!("{ENDPOINT}v1/objects/{DOC}/..%5C..%5CphoneNumbers"),
        format!("{ENDPOINT}v1/objects/{DOC}/../../phoneNumbers"),
    ] {
        assert!(guard.ga_delete(&raw, DOC).is_err(), "{raw}");
        assert!(guard.ga_download(&raw, Fetch::Media, DOC).is_err(), "{raw}");
    }
    // A documentId that is itself a path is no document id.
    for id in ["a/../../phoneNumbers", "..", "a\\b", ""] {
        let encoded = format!("{ENDPOINT}v1/objects/{}", id.replace('/', "%2F"));
        assert!(
            matches!(
                guard.ga_delete(&encoded, id),
                Err(GuardError::BadDocumentId(_))
            ),
            "{id}"
        );
    }
}

#[test]
fn preview_paths_only_on_the_endpoint() {
    let guard = guard(false);
    let media = guard.preview(&endpoint(), DOC, Fetch::Media).unwrap();
    assert_eq!(
        media.as_str(),
        format!("{ENDPOINT}recording/download/{DOC}")
    );
    let metadata = guard.preview(&endpoint(), DOC, Fetch::Metadata).unwrap();
    assert_eq!(
        metadata.as_str(),
        format!("{ENDPOINT}recording/download/{DOC}/metadata")
    );
    // Read back from the queue, the preview shape is accepted for its own purpose only.
    assert!(
        guard
            .stored_download(media.as_str(), Fetch::Media, DOC)
            .is_ok()
    );
    assert!(
        guard
            .stored_download(media.as_str(), Fetch::Metadata, DOC)
            .is_err()
    );
    let on_storage = format!("https://us-storage.asm.skype.com/recording/download/{DOC}");
    assert!(matches!(
        guard.stored_download(&on_storage, Fetch::Media, DOC),
        Err(GuardError::HostNotAllowed { .. })
    ));
    // An event's GA location may not take the preview shape.
    assert!(
        guard
            .ga_download(media.as_str(), Fetch::Media, DOC)
            .is_err()
    );
    // Nor is a preview path a delete location.
    assert!(guard.stored_delete(media.as_str(), DOC).is_err());
}

#[test]
fn preview_url_escapes_an_odd_document_id() {
    let guard = guard(false);
    assert_eq!(
        guard
            .preview(&endpoint(), "a b?c", Fetch::Media)
            .unwrap()
            .as_str(),
        "https://contoso.communication.azure.com/recording/download/a%20b%3Fc"
    );
    assert!(guard.preview(&endpoint(), "a/../b", Fetch::Media).is_err());
}

#[test]
fn refuses_lookalike_hosts() {
    let guard = guard(false);
    for host in [
        "evilasm.skype.com",
        "asm.skype.com",
        "asm.skype.com.evil.example",
        "us-storage.asm.skype.com:8443",
        "contoso.communication.azure.com.evil.example",
        "user:pw@us-storage.asm.skype.com",
        "attacker.example",
    ] {
        let raw = object(host, "/content/video");
        assert!(
            guard.ga_download(&raw, Fetch::Media, DOC).is_err(),
            "{raw} should be refused"
        );
    }
}

#[test]
fn refuses_http_unless_allowed() {
    let endpoint = url::Url::parse("http://127.0.0.1:9000/").unwrap();
    let strict = UrlGuard::new(&[], &endpoint, false);
    let lax = UrlGuard::new(&[], &endpoint, true);
    let raw = format!("http://127.0.0.1:9000/v1/objects/{DOC}");
    assert!(matches!(
        strict.ga_delete(&raw, DOC),
        Err(GuardError::NotHttps { .. })
    ));
    assert!(lax.ga_delete(&raw, DOC).is_ok());
    assert!(matches!(
        lax.ga_delete(&format!("http://127.0.0.1:9001/v1/objects/{DOC}"), DOC),
        Err(GuardError::HostNotAllowed { .. })
    ));
}

#[test]
fn internal_ip_literals_are_refused_unless_allow_http() {
    for host in [
        "127.0.0.1",
        "2130706433",
        "10.0.0.1",
        "169.254.169.254",
        "[::1]",
        "[fd00:ec2::254]",
        "[fe80::1]",
    ] {
        let endpoint = url::Url::parse(&format!("https://{host}/")).unwrap();
        let raw = format!("https://{host}/v1/objects/{DOC}/content/video");
        let strict = UrlGuard::new(&[], &endpoint, false);
        assert!(
            matches!(
                strict.ga_download(&raw, Fetch::Media, DOC),
                Err(GuardError::RefusedAddress { .. })
            ),
            "{raw}"
        );
        let lax = UrlGuard::new(&[], &endpoint, true);
        assert!(lax.ga_download(&raw, Fetch::Media, DOC).is_ok(), "{raw}");
    }
}

#[test]
fn redirects_stay_on_the_same_document() {
    let guard = guard(false);
    let original = url::Url::parse(&object("us-storage.asm.skype.com", "/content/video")).unwrap();
    let same = url::Url::parse(&object("eu-storage.asm.skype.com", "/content/video")).unwrap();
    let other =
        url::Url::parse("https://eu-storage.asm.skype.com/v1/objects/0-other/content/video")
            .unwrap();
    let api = url::Url::parse(&format!("{ENDPOINT}phoneNumbers")).unwrap();
    assert!(guard.allows_redirect(&original, &same));
    assert!(!guard.allows_redirect(&original, &other));
    assert!(!guard.allows_redirect(&original, &api));
}

#[test]
fn refusals_quote_at_most_200_characters() {
    let guard = guard(false);
    let long = format!("{ENDPOINT}calling/recordings/{}", "x".repeat(10_000));
    let message = guard.ga_delete(&long, DOC).unwrap_err().to_string();
    assert!(message.len() < 400, "{} bytes", message.len());
    assert!(message.contains('…'));
    assert_eq!(quote("é".repeat(300).as_str()).chars().count(), 201);
    assert_eq!(quote("short"), "short");
}
