use super::support::*;
use callvault::admin::deadline;
use callvault::app::Role;
use callvault::queue::jobs::Finish;

/// Every metric name the contract and the operations guide promise.
const CONTRACT_METRICS: [&str; 13] = [
    "callvault_events_received_total",
    "callvault_events_accepted_total",
    "callvault_events_duplicate_total",
    "callvault_events_quarantined_total",
    "callvault_events_unknown_type_total",
    "callvault_jobs",
    "callvault_attempts_total",
    "callvault_archived_bytes_total",
    "callvault_transfer_duration_seconds",
    "callvault_oldest_pending_job_age_seconds",
    "callvault_deadline_slack_seconds",
    "callvault_jobs_at_risk",
    "callvault_database_up",
];

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

fn sample(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|line| line.rsplit_once(' ').is_some_and(|(s, _)| s == series))
        .unwrap_or_else(|| panic!("{series} missing from\n{text}"));
    let value = line.rsplit_once(' ').unwrap().1;
    if value == "+Inf" {
        f64::INFINITY
    } else {
        value.parse().unwrap()
    }
}

/// Three pending recordings, with the default 24 h retention: deadline passed, within the 6 h
/// margin, far off.
async fn urgent_queue(app: &TestApp) {
    announce(app, "late", 25, &[(0, "SessionEnded")]).await;
    announce(app, "risky", 21, &[(0, "SessionEnded")]).await;
    announce(app, "calm", 1, &[(0, "SessionEnded")]).await;
}

async fn metrics_name_every_contract_metric_without_a_token(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    urgent_queue(&app).await;
    let text = scrape(&app).await;
    for name in CONTRACT_METRICS {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
    for state in ["pending", "running", "archived", "failed", "expired"] {
        let expected = if state == "pending" { 3.0 } else { 0.0 };
        assert_eq!(
            sample(&text, &format!("callvault_jobs{{state=\"{state}\"}}")),
            expected
        );
    }
    assert_eq!(sample(&text, "callvault_events_received_total"), 3.0);
    assert_eq!(sample(&text, "callvault_events_accepted_total"), 3.0);
    assert_eq!(sample(&text, "callvault_jobs_at_risk"), 2.0);
    let slack = sample(&text, "callvault_deadline_slack_seconds");
    assert!(
        (-3700.0..-3500.0).contains(&slack),
        "one hour past: {slack}"
    );
    assert!(sample(&text, "callvault_oldest_pending_job_age_seconds") >= 0.0);
    assert_eq!(
        sample(&text, "callvault_transfer_duration_seconds_count"),
        0.0
    );
    app.close().await;
}

async fn a_worker_only_process_serves_metrics_but_no_admin_api(store: Store) {
    let Some(app) = start(store, Role::Worker, DEAD_ACS, &[]).await else {
        return;
    };
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "callvault_database_up"), 1.0);
    assert_eq!(
        sample(&text, "callvault_deadline_slack_seconds"),
        f64::INFINITY
    );
    let (status, _) = app.get("/admin/stats").await;
    assert_eq!(status, 404);
    app.close().await;
}

async fn stats_count_jobs_recordings_bytes_and_deadline_slack(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    announce(&app, "kept", 1, &[(0, "SessionEnded")]).await;
    drive(
        db,
        job_id(db, "kept", 0).await,
        Finish::Archived(archived_chunk("kept", 0)),
    )
    .await;
    announce(&app, "lost", 1, &[(0, "SessionEnded")]).await;
    drive(db, job_id(db, "lost", 0).await, failed("boom")).await;
    // 21 h into the default 24 h retention: 3 h of slack.
    announce(&app, "risky", 21, &[(0, "SessionEnded")]).await;

    let (status, stats) = app.get("/admin/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["jobs"]["archived"], 1);
    assert_eq!(stats["jobs"]["failed"], 1);
    assert_eq!(stats["jobs"]["pending"], 1);
    assert_eq!(stats["jobs"]["expired"], 0);
    assert_eq!(stats["recordings"]["incomplete"], 1);
    assert_eq!(stats["recordings"]["failed"], 1);
    assert_eq!(stats["recordings"]["archiving"], 1);
    assert_eq!(stats["archived_bytes"], 1024);
    assert_eq!(stats["jobs_at_risk"], 1);
    let slack = stats["deadline_slack_seconds"].as_i64().unwrap();
    assert!((3 * 3600 - 120..=3 * 3600).contains(&slack), "{slack}");
    assert!(stats["oldest_pending_age_seconds"].as_i64().unwrap() >= 0);
    assert_eq!(stats["quarantine_open"], 0);
    app.close().await;
}

async fn the_deadline_watch_names_jobs_within_the_margin_most_urgent_first(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    urgent_queue(&app).await;
    let found = deadline::check_once(db, chrono::Duration::hours(6))
        .await
        .unwrap();
    assert_eq!(found.count, 2);
    let named: Vec<_> = found.most_urgent.iter().map(|row| row.job.id).collect();
    assert_eq!(
        named,
        [job_id(db, "late", 0).await, job_id(db, "risky", 0).await]
    );
    let none = deadline::check_once(db, chrono::Duration::hours(0))
        .await
        .unwrap();
    assert_eq!(none.count, 1, "only the job already past its deadline");
    app.close().await;
}

on_every_store!(metrics_name_every_contract_metric_without_a_token);
on_every_store!(a_worker_only_process_serves_metrics_but_no_admin_api);
on_every_store!(stats_count_jobs_recordings_bytes_and_deadline_slack);
on_every_store!(the_deadline_watch_names_jobs_within_the_margin_most_urgent_first);
