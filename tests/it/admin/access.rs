use serde_json::json;

use super::support::*;
use callvault::app::Role;

#[tokio::test]
async fn every_admin_path_answers_404_when_no_token_is_configured() {
    let Some(app) = start(
        Store::Sqlite,
        Role::All,
        DEAD_ACS,
        &[("admin.token", String::new())],
    )
    .await
    else {
        return;
    };
    for path in [
        "/admin/recordings",
        "/admin/stats",
        "/admin/ui",
        "/admin/jobs/1",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth("")
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
    let (status, _) = app
        .post("/admin/jobs/replay", &json!({"state": "failed"}))
        .await;
    assert_eq!(status, 404);
    app.close().await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_gets_401_with_a_json_error() {
    let Some(app) = ingest(Store::Sqlite).await else {
        return;
    };
    let cases: [(&str, Option<&str>); 3] = [
        ("/admin/stats", None),
        ("/admin/recordings", Some("Bearer wrong")),
        ("/admin/jobs", Some("Basic dDp0")),
    ];
    for (path, header) in cases {
        let mut request = app.client.get(app.url(path));
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(body["code"], "unauthorized", "{path}");
    }
    let (status, body) = app.get("/admin/stats").await;
    assert_eq!(status, 200, "{body}");
    app.close().await;
}

#[tokio::test]
async fn the_operator_page_is_served_without_the_token_and_unknown_paths_are_json_404s() {
    let Some(app) = ingest(Store::Sqlite).await else {
        return;
    };
    let response = app.client.get(app.url("/admin/ui")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains("sessionStorage"),
        "the page keeps the token per tab"
    );
    let (status, body) = app.get("/admin/nothing-here").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    app.close().await;
}
