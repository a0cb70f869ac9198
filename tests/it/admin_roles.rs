//! Named admin tokens with roles: a viewer reads and is refused every action with 403
//! `operator_role_required`, an operator acts and is named in the audit trail, and tokens
//! come from a configuration file's tables or the environment's compact form.

use std::ffi::OsString;

use callvault::app::Role;
use callvault::config::Settings;
use serde_json::{Value, json};

use crate::admin::support::*;

const OPERATOR: &str = "alice-operator-token-0001";
const VIEWER: &str = "victor-viewer-token-00001";

fn tokens() -> Vec<(&'static str, String)> {
    vec![(
        "admin.tokens",
        format!("alice:operator:{OPERATOR},victor:viewer:{VIEWER}"),
    )]
}

async fn call(app: &TestApp, method: &str, path: &str, token: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&json!({"state": "failed"}))
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

async fn a_viewer_reads_but_every_action_needs_an_operator(store: Store) {
    let Some(app) = start(store, Role::Ingest, DEAD_ACS, &tokens()).await else {
        return;
    };
    let db = app.queue();
    announce(&app, "roles", 1, &[(0, "SessionEnded")]).await;
    let job = job_id(db, "roles", 0).await;
    drive(db, job, failed("ACS answered 500")).await;
    let (_, recording) = call(&app, "GET", &format!("/admin/jobs/{job}"), VIEWER).await;
    let recording = recording["recording"].as_i64().unwrap();

    for path in [
        "/admin/recordings".to_owned(),
        format!("/admin/recordings/{recording}"),
        "/admin/jobs".to_owned(),
        "/admin/quarantine".to_owned(),
        "/admin/stats".to_owned(),
        "/admin/audit".to_owned(),
    ] {
        let (status, body) = call(&app, "GET", &path, VIEWER).await;
        assert_eq!(status, 200, "viewer GET {path}: {body}");
    }
    let actions = [
        ("POST", format!("/admin/jobs/{job}/replay")),
        ("POST", "/admin/jobs/replay".to_owned()),
        ("POST", format!("/admin/recordings/{recording}/hold")),
        ("DELETE", format!("/admin/recordings/{recording}/hold")),
        ("POST", "/admin/quarantine/1/replay".to_owned()),
        // A route that does not exist yet is refused the same way: the check is not per route.
        ("POST", format!("/admin/recordings/{recording}/erase")),
    ];
    for (method, path) in &actions {
        let (status, body) = call(&app, method, path, VIEWER).await;
        assert_eq!(status, 403, "viewer {method} {path}: {body}");
        assert_eq!(body["code"], "operator_role_required", "{method} {path}");
        assert!(
            body["message"].as_str().unwrap().contains("victor"),
            "{body}"
        );
        assert!(!body.to_string().contains(VIEWER), "{body}");
    }
    let (_, still) = call(&app, "GET", &format!("/admin/jobs/{job}"), VIEWER).await;
    assert_eq!(
        still["state"], "failed",
        "the viewer's replay changed nothing"
    );

    let (status, body) = call(&app, "POST", &format!("/admin/jobs/{job}/replay"), OPERATOR).await;
    assert_eq!(status, 200, "{body}");
    let (_, trail) = call(
        &app,
        "GET",
        &format!("/admin/audit?recording={recording}"),
        VIEWER,
    )
    .await;
    let replays: Vec<&Value> = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["action"] == "replayed")
        .collect();
    assert_eq!(replays.len(), 1, "{trail}");
    assert_eq!(replays[0]["actor"], "alice");
    assert_eq!(replays[0]["recording_id"], recording);
    let name = replays[0]["recording_key"].as_str().unwrap();
    assert!(name.ends_with("/roles"), "{name}");
    assert_eq!(replays[0]["detail"]["job"], job);
    assert_eq!(replays[0]["detail"]["from_state"], "failed");
    let (status, _) = call(&app, "GET", "/admin/stats", "alice").await;
    assert_eq!(status, 401, "a token's name is not a token");
    app.close().await;
}
on_every_store!(a_viewer_reads_but_every_action_needs_an_operator);

#[tokio::test]
async fn the_single_admin_token_is_an_operator_named_admin() {
    let Some(app) = start(Store::Sqlite, Role::Ingest, DEAD_ACS, &tokens()).await else {
        return;
    };
    let db = app.queue();
    announce(&app, "legacy", 1, &[(0, "SessionEnded")]).await;
    let job = job_id(db, "legacy", 0).await;
    drive(db, job, failed("ACS answered 500")).await;
    // The suite's own token is admin.token.
    let (status, body) = app
        .post(&format!("/admin/jobs/{job}/replay"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, trail) = app.get("/admin/audit").await;
    let last = trail["records"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["actor"].as_str()),
        (Some("replayed"), Some("admin"))
    );
    app.close().await;
}

fn valid_base() -> Vec<(&'static str, String)> {
    vec![
        (
            "acs.connection_string",
            "endpoint=https://x.communication.azure.com/;accesskey=aGVsbG8=".into(),
        ),
        ("ingest.secret", "s3cret".into()),
    ]
}

#[test]
fn tokens_come_from_a_file_as_tables_and_from_the_environment_compactly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("callvault.toml");
    std::fs::write(
        &file,
        format!(
            "[[admin.tokens]]\nname = \"alice\"\nrole = \"operator\"\ntoken = \"{OPERATOR}\"\n\n[[admin.tokens]]\nname = \"victor\"\nrole = \"viewer\"\ntoken = \"{VIEWER}\"\n"
        ),
    )
    .unwrap();
    let from_file = Settings::load_from(Some(&file), std::iter::empty(), &valid_base()).unwrap();
    from_file.validate().unwrap();
    let named: Vec<(&str, &str, &str)> = from_file
        .admin
        .tokens
        .iter()
        .map(|t| (t.name.as_str(), t.role.as_str(), t.token.expose()))
        .collect();
    assert_eq!(
        named,
        [
            ("alice", "operator", OPERATOR),
            ("victor", "viewer", VIEWER)
        ]
    );

    let env: Vec<(OsString, OsString)> = vec![(
        "CALLVAULT__ADMIN__TOKENS".into(),
        format!("ops:operator:{OPERATOR}:with:colons, reader:viewer:{VIEWER}").into(),
    )];
    let from_env = Settings::load_from(None, env, &valid_base()).unwrap();
    from_env.validate().unwrap();
    assert_eq!(from_env.admin.tokens.len(), 2);
    assert_eq!(
        from_env.admin.tokens[0].token.expose(),
        format!("{OPERATOR}:with:colons")
    );
    assert_eq!(from_env.admin.tokens[1].role, "viewer");
    let shown = callvault::config::effective_toml(&from_env);
    assert!(
        !shown.contains(OPERATOR) && shown.contains("reader"),
        "{shown}"
    );

    let malformed: Vec<(OsString, OsString)> = vec![(
        "CALLVAULT__ADMIN__TOKENS".into(),
        format!("ops:{OPERATOR}").into(),
    )];
    let message = Settings::load_from(None, malformed, &valid_base())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("admin.tokens") && !message.contains(OPERATOR),
        "{message}"
    );

    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        format!(
            "[[admin.tokens]]\nnmae = \"alice\"\nrole = \"operator\"\ntoken = \"{OPERATOR}\"\n"
        ),
    )
    .unwrap();
    let message = Settings::load_from(Some(&typo), std::iter::empty(), &valid_base())
        .unwrap_err()
        .to_string();
    assert!(message.contains("nmae"), "{message}");

    let short: Vec<(OsString, OsString)> = vec![(
        "CALLVAULT__ADMIN__TOKENS".into(),
        "ops:operator:short".into(),
    )];
    let message = Settings::load_from(None, short, &valid_base())
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("at least 16") && !message.contains("short`"),
        "{message}"
    );
}
