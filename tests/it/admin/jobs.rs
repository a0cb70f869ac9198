use serde_json::json;

use super::support::*;
use callvault::queue::jobs::Finish;

async fn only_failed_or_expired_jobs_can_be_replayed(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    announce(&app, "bad", 1, &[(0, "SessionEnded")]).await;
    let bad = job_id(db, "bad", 0).await;
    drive(
        db,
        bad,
        failed("gave up after 12 attempts: ACS answered 500"),
    )
    .await;
    announce(&app, "waiting", 1, &[(0, "SessionEnded")]).await;
    let waiting = job_id(db, "waiting", 0).await;

    let (status, body) = app
        .post(&format!("/admin/jobs/{waiting}/replay"), &json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "job_not_replayable");
    assert!(body["message"].as_str().unwrap().contains("pending"));
    for unknown in ["999999", "abc"] {
        let (status, body) = app
            .post(&format!("/admin/jobs/{unknown}/replay"), &json!({}))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("job_not_found"))
        );
    }

    let (status, body) = app
        .post(&format!("/admin/jobs/{bad}/replay"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replayed"], 1);
    assert_eq!(body["job"]["state"], "pending");
    assert_eq!(body["job"]["attempts"], 0);
    assert!(body["job"]["last_error"].is_null());
    let (_, again) = app.get(&format!("/admin/jobs/{bad}")).await;
    assert_eq!(again["state"], "pending");
    app.close().await;
}

async fn bulk_replay_by_state_or_ids_answers_the_count(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    let mut failed_jobs = Vec::new();
    for name in ["f1", "f2"] {
        announce(&app, name, 1, &[(0, "SessionEnded")]).await;
        let id = job_id(db, name, 0).await;
        drive(db, id, failed("boom")).await;
        failed_jobs.push(id);
    }
    announce(&app, "gone", 1, &[(0, "SessionEnded")]).await;
    let gone = job_id(db, "gone", 0).await;
    drive(
        db,
        gone,
        Finish::Expired {
            error: "404 after the deadline".into(),
        },
    )
    .await;
    announce(&app, "fine", 1, &[(0, "SessionEnded")]).await;
    let pending = job_id(db, "fine", 0).await;

    let (status, body) = app
        .post("/admin/jobs/replay", &json!({"state": "failed"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replayed"], 2);
    let (_, body) = app
        .post(
            "/admin/jobs/replay",
            &json!({"ids": [gone, pending, 424242]}),
        )
        .await;
    assert_eq!(body["replayed"], 1);
    assert_eq!(body["skipped"], json!([pending, 424242]));
    let (_, jobs) = app.get("/admin/jobs?state=pending").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 4);

    let bad_bodies = [
        (json!({"state": "running"}), "invalid_state"),
        (json!({}), "invalid_body"),
        (json!({"state": "failed", "ids": [1]}), "invalid_body"),
        (json!({"status": "failed"}), "invalid_json"),
    ];
    for (body, code) in bad_bodies {
        let (status, answer) = app.post("/admin/jobs/replay", &body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    app.close().await;
}

async fn jobs_are_filtered_by_state_and_expired_ones_keep_their_reason(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    announce(&app, "late", 49, &[(0, "SessionEnded")]).await;
    let late = job_id(db, "late", 0).await;
    let reason = "ACS answered 404; the ACS retention deadline has passed";
    drive(
        db,
        late,
        Finish::Expired {
            error: reason.into(),
        },
    )
    .await;
    announce(&app, "soon", 1, &[(0, "SessionEnded")]).await;

    let (status, body) = app.get("/admin/jobs?state=expired").await;
    assert_eq!(status, 200, "{body}");
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], late);
    assert_eq!(jobs[0]["last_error"], reason);
    assert!(jobs[0]["time_left_seconds"].as_i64().unwrap() < 0);
    let (_, both) = app.get("/admin/jobs?state=expired,pending").await;
    assert_eq!(both["jobs"].as_array().unwrap().len(), 2);
    let (_, all) = app.get("/admin/jobs").await;
    assert_eq!(all["jobs"][0]["id"], late, "most urgent deadline first");
    let (status, body) = app.get("/admin/jobs?state=stuck").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_state"))
    );
    app.close().await;
}

on_every_store!(only_failed_or_expired_jobs_can_be_replayed);
on_every_store!(bulk_replay_by_state_or_ids_answers_the_count);
on_every_store!(jobs_are_filtered_by_state_and_expired_ones_keep_their_reason);
