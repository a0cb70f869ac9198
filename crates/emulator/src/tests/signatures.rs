//! Request signing: what the emulator refuses. That callvault's own client passes is tested
//! with that client, in callvault's tests.

use super::*;

#[tokio::test]
async fn unsigned_and_badly_signed_requests_are_401_denied() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-auth", synthetic(10)));
    let host = signing::authority(&emulator.endpoint());
    let now = signing::rfc1123(chrono::Utc::now());
    let stale = signing::rfc1123(chrono::Utc::now() - chrono::Duration::minutes(20));
    let good = signing::sign("GET", &urls.content, b"", &host, KEY, &now);
    let other_host = signing::sign(
        "GET",
        &urls.content,
        b"",
        "us-storage.asm.skype.com",
        KEY,
        &now,
    );
    let old = signing::sign("GET", &urls.content, b"", &host, KEY, &stale);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no headers", vec![]),
        (
            "signed for the storage host",
            vec![
                ("x-ms-date", now.clone()),
                ("x-ms-content-sha256", other_host.content_sha256.clone()),
                ("authorization", other_host.authorization.clone()),
            ],
        ),
        (
            "hash of another body",
            vec![
                ("x-ms-date", now.clone()),
                ("x-ms-content-sha256", signing::content_hash(b"x")),
                ("authorization", good.authorization.clone()),
            ],
        ),
        (
            "tampered signature",
            vec![
                ("x-ms-date", now.clone()),
                ("x-ms-content-sha256", good.content_sha256.clone()),
                (
                    "authorization",
                    good.authorization.replace("Signature=", "Signature=AA"),
                ),
            ],
        ),
        (
            "date 20 minutes old",
            vec![
                ("x-ms-date", stale.clone()),
                ("x-ms-content-sha256", old.content_sha256.clone()),
                ("authorization", old.authorization.clone()),
            ],
        ),
    ];
    for (case, headers) in cases {
        let mut request = http().get(urls.content.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "Denied", "{case}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let requests = emulator.requests();
    assert_eq!(requests.len(), 5);
    assert!(requests.iter().all(|r| !r.signed_ok && r.status == 401));
    emulator.stop().await;
}
