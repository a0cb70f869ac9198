//! A sink whose receiver answered 410 Gone stays disabled across a restart (the state is in
//! the database), its events stay pending, and once an operator enables it they arrive.

use callvault_emulator::EmulatorConfig;
use serde_json::{Value, json};

use super::receiver::Receiver;
use super::{TOKEN, WAIT, admin_get, announce, event_settings, webhook};
use crate::pipeline::start_time;
use crate::support::{TestApp, TestDatabase, eventually, start_emulator};

async fn sink_rows(app: &TestApp, sink: &str) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT state, attempts FROM event_outbox WHERE sink = $1 ORDER BY id")
        .bind(sink)
        .fetch_all(app.queue().pool())
        .await
        .unwrap()
}

async fn sink_view(app: &TestApp, name: &str) -> Value {
    let (status, body) = admin_get(app, "/admin/events/sinks").await;
    assert_eq!(status, 200, "{body}");
    let all: Value = serde_json::from_str(&body).unwrap();
    all["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sink| sink["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no sink {name} in {all}"))
}

async fn disabled_gauge(app: &TestApp, sink: &str) -> String {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("callvault_event_sink_disabled{{sink=\"{sink}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
        .to_owned()
}

async fn a_sink_disabled_by_410_stays_disabled_across_a_restart(db: TestDatabase) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let gone = Receiver::start(&[410], None);
    let healthy = Receiver::start(&[], None);
    let settings = event_settings(
        json!([
            webhook("gone", &gone, &["archived"]),
            webhook("healthy", &healthy, &["archived"])
        ]),
        &[],
    );
    let app = TestApp::spawn_on(&emulator, db, &settings).await;
    announce(&app, &emulator, "call-before", start_time(), 0).await;
    eventually("the sink disabled", WAIT, || async {
        (sink_view(&app, "gone").await["state"] == "disabled").then_some(())
    })
    .await;
    let view = sink_view(&app, "gone").await;
    assert_eq!(view["disabled_status"], 410, "{view}");
    assert!(
        view["disabled_reason"].as_str().unwrap().contains("410"),
        "{view}"
    );
    assert_eq!(sink_view(&app, "healthy").await["state"], "enabled");
    assert_eq!(disabled_gauge(&app, "gone").await, "1");
    assert_eq!(disabled_gauge(&app, "healthy").await, "0");

    // A new process on the same database: the sink is still disabled.
    let app = app.restart(callvault::app::Role::All, &settings).await;
    announce(&app, &emulator, "call-after", start_time(), 0).await;
    eventually(
        "the healthy sink served after the restart",
        WAIT,
        || async { (healthy.accepted().len() == 2).then_some(()) },
    )
    .await;
    // Ten poll intervals in which a sink wrongly enabled would have sent its two events.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        gone.received().len(),
        1,
        "only the 410: {:?}",
        gone.received()
    );
    assert_eq!(
        sink_rows(&app, "gone").await,
        [("pending".to_owned(), 0), ("pending".to_owned(), 0)],
        "pending, not failed, and the 410 not counted as an attempt"
    );
    assert_eq!(sink_view(&app, "gone").await["pending"], 2);

    // Refusals: an unknown sink, and a viewer.
    let unknown = app
        .client
        .post(format!("{}/admin/events/sinks/nope/enable", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["code"], "sink_not_found");

    // Enabled from the command line (another process): the pending events arrive, in order.
    let cli: Vec<(&str, String)> = settings
        .iter()
        .filter(|(key, _)| key.starts_with("events."))
        .map(|(key, value)| (*key, value.clone()))
        .collect();
    let (code, output) = app
        .run_callvault(&cli, &["events", "enable-sink", "gone"])
        .await;
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("enabled"), "{output}");
    let delivered = eventually("the pending events delivered", WAIT, || async {
        let accepted = gone.accepted();
        (accepted.len() == 2).then_some(accepted)
    })
    .await;
    let calls: Vec<&str> = delivered
        .iter()
        .map(|r| r.event["data"]["callId"].as_str().unwrap())
        .collect();
    assert_eq!(calls, ["call-before", "call-after"]);
    assert!(delivered.iter().all(|r| r.signature_ok));
    assert_eq!(sink_view(&app, "gone").await["state"], "enabled");
    assert_eq!(disabled_gauge(&app, "gone").await, "0");

    // The admin API answers for a sink that is enabled already.
    let again = app
        .client
        .post(format!("{}/admin/events/sinks/gone/enable", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["was_disabled"], false);
    gone.stop().await;
    healthy.stop().await;
    app.close().await;
}

#[tokio::test]
async fn a_sink_disabled_by_410_stays_disabled_across_a_restart_on_sqlite() {
    a_sink_disabled_by_410_stays_disabled_across_a_restart(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn a_sink_disabled_by_410_stays_disabled_across_a_restart_on_postgresql() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    a_sink_disabled_by_410_stays_disabled_across_a_restart(db).await;
}
