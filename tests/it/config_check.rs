//! Configuration as an operator meets it: the real binary, a config file and `CALLVAULT__…`
//! variables, its exit code and its one-sentence message.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use callvault_emulator::events::subscription_validation;
use serde_json::json;

use crate::support::eventually;

const CONNECTION: &str = "endpoint=https://x.communication.azure.com/;accesskey=aGVsbG8=";

/// `callvault ARGS` with only `vars` in its environment, so the machine's own cannot interfere.
fn callvault(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callvault"));
    command.args(args).env_clear().envs(vars.iter().copied());
    command
}

fn run(args: &[&str], vars: &[(&str, &str)]) -> Output {
    callvault(args, vars).output().unwrap()
}

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("callvault.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn config_check_stops_at_a_misspelt_key_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "[worker]\nconcurency = 16");
    let output = run(&["config", "check", "--config", &file], &[]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.starts_with("callvault: unknown configuration key `worker.concurency` in ")
            && message.contains("did you mean worker.concurrency?"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "one sentence: {message}");
    assert!(output.stdout.is_empty());
}

#[test]
fn config_check_prints_the_effective_configuration_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "[log]\nlevel = \"callvault=debug,info\"\n");
    let output = run(
        &["config", "check", "--config", &file],
        &[
            ("CALLVAULT__ACS__CONNECTION_STRING", CONNECTION),
            ("CALLVAULT__INGEST__SECRET", "007123"),
            ("CALLVAULT__ADMIN__TOKEN", "TRUE"),
            ("CALLVAULT__WORKER__CONCURRENCY", "16"),
            (
                "CALLVAULT__ACS__ALLOWED_DOWNLOAD_HOSTS",
                ".asm.skype.com,.asyncgw.teams.microsoft.com",
            ),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let shown = String::from_utf8(output.stdout).unwrap();
    for secret in ["007123", "aGVsbG8=", "TRUE"] {
        assert!(!shown.contains(secret), "{secret} is shown:\n{shown}");
    }
    let effective: toml::Table = toml::from_str(&shown).unwrap();
    assert_eq!(effective["ingest"]["secret"].as_str(), Some("<redacted>"));
    assert_eq!(effective["admin"]["token"].as_str(), Some("<redacted>"));
    assert_eq!(effective["acs"]["access_key"].as_str(), Some("<empty>"));
    assert_eq!(effective["worker"]["concurrency"].as_integer(), Some(16));
    assert_eq!(effective["acs"]["retention_hours"].as_integer(), Some(24));
    assert_eq!(
        effective["log"]["level"].as_str(),
        Some("callvault=debug,info")
    );
    assert_eq!(
        effective["acs"]["allowed_download_hosts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn config_check_refuses_a_webhook_secret_that_a_query_string_would_change() {
    let output = run(
        &["config", "check"],
        &[
            ("CALLVAULT__ACS__CONNECTION_STRING", CONNECTION),
            ("CALLVAULT__INGEST__SECRET", "abc+def"),
        ],
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("`ingest.secret`")
            && message.contains("`+`")
            && message.contains("A-Z a-z 0-9 - . _ ~"),
        "{message}"
    );
    assert!(
        !message.contains("abc+def"),
        "the secret stays out: {message}"
    );
}

#[test]
fn serve_stops_at_a_misspelt_environment_variable_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/callvault.db", dir.path().display());
    let archive = dir.path().join("archive").display().to_string();
    let mut child = callvault(
        &["serve", "--role", "ingest"],
        &[
            ("CALLVAULT__SERVER__BIND", "127.0.0.1:0"),
            ("CALLVAULT__DATABASE__URL", &database),
            ("CALLVAULT__STORAGE__PATH", &archive),
            ("CALLVAULT__ACS__CONNECTION_STRING", CONNECTION),
            ("CALLVAULT__INGEST__SECRET", "s3cret"),
            ("CALLVAULT__WORKER__CONCURENCY", "16"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // A serve that accepted the typo would run until killed.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve started despite the unknown key");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains(
            "`worker.concurency` (from environment variable CALLVAULT__WORKER__CONCURENCY)"
        ) && message.contains("did you mean worker.concurrency?"),
        "{message}"
    );
}

/// Kills the child even when an assertion fails first.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_numeric_webhook_secret_from_the_environment_is_compared_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let database = format!("sqlite://{}/callvault.db", dir.path().display());
    let archive = dir.path().join("archive").display().to_string();
    let _serving = Serving(
        callvault(
            &["serve", "--role", "ingest"],
            &[
                ("CALLVAULT__SERVER__BIND", &bind),
                ("CALLVAULT__DATABASE__URL", &database),
                ("CALLVAULT__STORAGE__PATH", &archive),
                ("CALLVAULT__ACS__CONNECTION_STRING", CONNECTION),
                ("CALLVAULT__INGEST__SECRET", "007123"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let client = reqwest::Client::new();
    let base = format!("http://{bind}");
    eventually(
        "callvault to answer /healthz",
        Duration::from_secs(30),
        || async {
            client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        },
    )
    .await;
    let handshake = json!([subscription_validation(
        "code-1",
        "https://example.invalid/"
    )]);
    let deliver = |code: &'static str| {
        client
            .post(format!("{base}/api/events?code={code}"))
            .json(&handshake)
            .send()
    };
    assert_eq!(deliver("007123").await.unwrap().status(), 200);
    assert_eq!(deliver("7123").await.unwrap().status(), 401);
}
