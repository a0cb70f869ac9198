//! Start-up refusals of values that parse but cannot be run safely.

use super::Settings;

const CONNECTION: &str = "endpoint=https://x.communication.azure.com/;accesskey=aGVsbG8=";

fn check(extra: &[(&'static str, &str)]) -> Result<(), String> {
    let mut overrides = vec![
        ("acs.connection_string", CONNECTION.to_owned()),
        ("ingest.secret", "s3cret".to_owned()),
    ];
    overrides.extend(extra.iter().map(|(key, value)| (*key, value.to_string())));
    Settings::defaults_with(&overrides)
        .map_err(|err| err.to_string())?
        .validate()
        .map_err(|err| err.to_string())
}

fn refused(extra: &[(&'static str, &str)], key: &str) -> String {
    let message = check(extra).expect_err("should be refused");
    assert!(message.contains(&format!("`{key}`")), "{message}");
    message
}

#[test]
fn a_webhook_secret_with_a_plus_is_refused_with_the_safe_characters() {
    let message = refused(&[("ingest.secret", "abc+def")], "ingest.secret");
    assert!(
        message.contains("`+`")
            && message.contains("A-Z a-z 0-9 - . _ ~")
            && message.contains("decodes as a space")
            && !message.contains("abc"),
        "{message}"
    );
    refused(&[("ingest.secret", "with space")], "ingest.secret");
    refused(&[("ingest.secret", "a&code=b")], "ingest.secret");
    check(&[("ingest.secret", "007123")]).unwrap();
    check(&[("ingest.secret", "TRUE")]).unwrap();
    check(&[("ingest.secret", "Az09-._~")]).unwrap();
}

#[test]
fn retention_is_bounded_so_deadlines_cannot_overflow() {
    for hours in ["0", "721", "9223372036854775807"] {
        let message = refused(&[("acs.retention_hours", hours)], "acs.retention_hours");
        assert!(message.contains("between 1 and 720 hours"), "{message}");
    }
    check(&[("acs.retention_hours", "1")]).unwrap();
    check(&[("acs.retention_hours", "720")]).unwrap();
}

#[test]
fn other_durations_are_bounded_too() {
    let huge = "9223372036854775807";
    for key in [
        "admin.deadline_warning_hours",
        "acs.request_timeout_secs",
        "worker.lease_secs",
        "worker.backoff_initial_ms",
        "worker.backoff_max_ms",
        "worker.poll_interval_ms",
        "storage.request_timeout_secs",
        "admin.quarantine_retention_days",
    ] {
        refused(&[(key, huge)], key);
    }
    refused(
        &[("admin.quarantine_retention_days", "0")],
        "admin.quarantine_retention_days",
    );
    refused(&[("worker.lease_secs", "0")], "worker.lease_secs");
    refused(
        &[
            ("worker.backoff_initial_ms", "5000"),
            ("worker.backoff_max_ms", "1000"),
        ],
        "worker.backoff_max_ms",
    );
    check(&[("worker.poll_interval_ms", "3600000")]).unwrap();
}

#[test]
fn a_plain_http_acs_endpoint_needs_allow_http() {
    let http = "endpoint=http://x.communication.azure.com/;accesskey=aGVsbG8=";
    let message = refused(&[("acs.connection_string", http)], "acs.connection_string");
    assert!(
        message.contains("http://x.communication.azure.com/"),
        "{message}"
    );
    assert!(
        !message.contains("aGVsbG8="),
        "the key stays out: {message}"
    );
    refused(
        &[
            ("acs.connection_string", ""),
            ("acs.endpoint", "http://x.communication.azure.com/"),
            ("acs.access_key", "aGVsbG8="),
        ],
        "acs.endpoint",
    );
    check(&[("acs.connection_string", http), ("acs.allow_http", "true")]).unwrap();
}

#[test]
fn download_host_suffixes_must_be_narrow_and_single_tenant() {
    for suffix in [
        ".skype.com",
        ".com",
        ".blob.core.windows.net",
        ".cloudapp.azure.com",
    ] {
        let message = refused(
            &[("acs.allowed_download_hosts", suffix)],
            "acs.allowed_download_hosts",
        );
        assert!(message.contains(suffix), "{message}");
    }
    check(&[(
        "acs.allowed_download_hosts",
        ".asm.skype.com,.asyncgw.teams.microsoft.com",
    )])
    .unwrap();
}

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

#[test]
fn entra_id_alone_stands_in_for_the_secret() {
    let entra = [
        ("ingest.secret", ""),
        ("ingest.entra.tenant_id", TENANT),
        ("ingest.entra.audience", "api://callvault"),
    ];
    check(&entra).unwrap();
    let message = refused(&[("ingest.secret", "")], "ingest.secret");
    assert!(message.contains("ingest.entra.tenant_id"), "{message}");
}

#[test]
fn entra_settings_that_cannot_work_are_refused_naming_the_key() {
    let on = |extra: &[(&'static str, &'static str)]| {
        let mut all = vec![
            ("ingest.entra.tenant_id", TENANT),
            ("ingest.entra.audience", "api://callvault"),
        ];
        all.extend_from_slice(extra);
        all
    };
    let message = refused(
        &on(&[("ingest.entra.tenant_id", "contoso.onmicrosoft.com")]),
        "ingest.entra.tenant_id",
    );
    assert!(message.contains("GUID"), "{message}");
    refused(
        &on(&[("ingest.entra.audience", " ")]),
        "ingest.entra.audience",
    );
    let message = refused(
        &on(&[(
            "ingest.entra.keys_url",
            "http://keys.example.com/{tenant}/keys",
        )]),
        "ingest.entra.keys_url",
    );
    assert!(message.contains("https"), "{message}");
    check(&on(&[(
        "ingest.entra.keys_url",
        "http://127.0.0.1:8080/{tenant}/discovery/v2.0/keys",
    )]))
    .unwrap();
    check(&on(&[(
        "ingest.entra.keys_url",
        "https://login.microsoftonline.us/{tenant}/discovery/v2.0/keys",
    )]))
    .unwrap();
    refused(
        &[("ingest.entra.audience", "api://callvault")],
        "ingest.entra.audience",
    );
}

#[test]
fn the_keys_url_defaults_to_the_public_cloud_with_the_tenant_filled_in() {
    let settings = Settings::defaults_with(&[
        ("ingest.entra.tenant_id", TENANT.to_uppercase()),
        ("ingest.entra.audience", "api://callvault".into()),
    ])
    .unwrap();
    let (policy, url) = settings.ingest.entra.policy().unwrap();
    assert_eq!(policy.tenant_id, TENANT);
    assert_eq!(
        url,
        format!("https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys")
    );
}

#[test]
fn eventgrid_pull_needs_its_subscription_and_key_but_no_webhook_secret() {
    let pull = [
        ("ingest.secret", ""),
        ("ingest.mode", "eventgrid_pull"),
        (
            "ingest.pull.endpoint",
            "https://ns.westeurope-1.eventgrid.azure.net",
        ),
        ("ingest.pull.topic", "recordings"),
        ("ingest.pull.subscription", "callvault"),
        ("ingest.pull.access_key", "a2V5"),
    ];
    check(&pull).unwrap();
    let with = |key: &'static str, value: &'static str| {
        let mut settings: Vec<(&'static str, &str)> =
            pull.iter().copied().filter(|(k, _)| *k != key).collect();
        settings.push((key, value));
        settings
    };
    refused(&with("ingest.mode", "push"), "ingest.mode");
    refused(
        &with("ingest.pull.access_key", ""),
        "ingest.pull.access_key",
    );
    refused(&with("ingest.pull.topic", "a/b"), "ingest.pull.topic");
    refused(
        &with("ingest.pull.max_wait_secs", "5"),
        "ingest.pull.max_wait_secs",
    );
    refused(
        &with("ingest.pull.release_delay_secs", "30"),
        "ingest.pull.release_delay_secs",
    );
    let message = refused(
        &with("ingest.pull.endpoint", "http://ns.example"),
        "ingest.pull.endpoint",
    );
    assert!(message.contains("https"), "{message}");
}

#[test]
fn storage_queue_delivery_needs_a_queue_url_and_a_credential() {
    let queue = [
        ("ingest.secret", ""),
        ("ingest.mode", "storage_queue"),
        (
            "ingest.queue.url",
            "https://acct.queue.core.windows.net/recordings",
        ),
        ("ingest.queue.account_key", "a2V5"),
    ];
    check(&queue).unwrap();
    let with = |key: &'static str, value: &'static str| {
        let mut settings: Vec<(&'static str, &str)> =
            queue.iter().copied().filter(|(k, _)| *k != key).collect();
        settings.push((key, value));
        settings
    };
    refused(
        &with(
            "ingest.queue.url",
            "https://acct.queue.core.windows.net/q?sig=x",
        ),
        "ingest.queue.url",
    );
    refused(
        &with("ingest.queue.account_key", "not base64!"),
        "ingest.queue.account_key",
    );
    refused(&with("ingest.queue.batch", "33"), "ingest.queue.batch");
    refused(
        &with("ingest.queue.max_dequeue", "0"),
        "ingest.queue.max_dequeue",
    );
}
