//! The layers as an operator writes them: a file, `CALLVAULT__…` variables, and what they add
//! up to.

use std::ffi::OsString;
use std::io::Write;

use super::{ConfigError, Settings};

const CONNECTION: &str = "endpoint=https://x.communication.azure.com/;accesskey=aGVsbG8=";

fn env(vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    vars.iter()
        .map(|(name, value)| (OsString::from(name), OsString::from(value)))
        .collect()
}

fn from_env(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let mut all = vec![
        ("CALLVAULT__ACS__CONNECTION_STRING", CONNECTION),
        ("CALLVAULT__INGEST__SECRET", "s3cret"),
    ];
    all.extend_from_slice(vars);
    Settings::load_from(None, env(&all), &[])
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn from_file(text: &str) -> Result<Settings, ConfigError> {
    let file = file(text);
    Settings::load_from(Some(file.path()), env(&[]), &[])
}

#[test]
fn a_numeric_secret_from_the_environment_keeps_its_leading_zeros() {
    let settings = from_env(&[("CALLVAULT__INGEST__SECRET", "007123")]).unwrap();
    assert_eq!(settings.ingest.secret.expose(), "007123");
    settings.validate().unwrap();
}

#[test]
fn a_boolean_looking_secret_from_the_environment_keeps_its_case() {
    let settings = from_env(&[
        ("CALLVAULT__INGEST__SECRET", "TRUE"),
        ("CALLVAULT__ADMIN__TOKEN", "False"),
    ])
    .unwrap();
    assert_eq!(settings.ingest.secret.expose(), "TRUE");
    assert_eq!(settings.admin.token.expose(), "False");
}

#[test]
fn secrets_and_text_with_commas_are_not_split_into_lists() {
    let settings = from_env(&[
        ("CALLVAULT__ADMIN__TOKEN", "tok,en"),
        ("CALLVAULT__ACS__ACCESS_KEY", "a,b"),
        (
            "CALLVAULT__DATABASE__URL",
            "postgres://u:p,w@db/callvault?options=a,b",
        ),
        ("CALLVAULT__LOG__LEVEL", "callvault=debug,info"),
    ])
    .unwrap();
    assert_eq!(settings.admin.token.expose(), "tok,en");
    assert_eq!(settings.acs.access_key.expose(), "a,b");
    assert_eq!(
        settings.database.url.expose(),
        "postgres://u:p,w@db/callvault?options=a,b"
    );
    assert_eq!(settings.log.level, "callvault=debug,info");
}

#[test]
fn every_kind_of_key_is_read_from_the_environment_as_its_own_type() {
    let settings = from_env(&[
        ("CALLVAULT__WORKER__CONCURRENCY", "16"),
        ("CALLVAULT__ACS__ALLOW_HTTP", "TRUE"),
        ("CALLVAULT__WORKER__DELETE_SOURCE_AFTER_ARCHIVE", "false"),
        (
            "CALLVAULT__ACS__ALLOWED_DOWNLOAD_HOSTS",
            ".asm.skype.com, .asyncgw.teams.microsoft.com",
        ),
        ("CALLVAULT__STORAGE__PATH", "/var/lib/callvault/archive"),
        ("CALLVAULT__SERVER__BIND", "127.0.0.1:9000"),
    ])
    .unwrap();
    assert_eq!(settings.worker.concurrency, 16);
    assert!(settings.acs.allow_http);
    assert!(!settings.worker.delete_source_after_archive);
    assert_eq!(
        settings.acs.allowed_download_hosts,
        [".asm.skype.com", ".asyncgw.teams.microsoft.com"]
    );
    assert_eq!(
        settings.storage.path,
        std::path::Path::new("/var/lib/callvault/archive")
    );
    assert_eq!(settings.server.bind, "127.0.0.1:9000");
}

#[test]
fn a_value_of_the_wrong_type_in_the_environment_names_the_variable() {
    for (name, value, expected) in [
        (
            "CALLVAULT__WORKER__CONCURRENCY",
            "sixteen",
            "a whole number",
        ),
        ("CALLVAULT__WORKER__CONCURRENCY", "true", "a whole number"),
        ("CALLVAULT__ACS__ALLOW_HTTP", "yes", "true or false"),
        ("CALLVAULT__ACS__ALLOW_HTTP", "1", "true or false"),
    ] {
        let message = from_env(&[(name, value)]).unwrap_err().to_string();
        assert!(
            message.contains(name) && message.contains(expected) && message.contains(value),
            "{message}"
        );
    }
}

#[test]
fn a_misspelt_key_in_the_file_stops_loading_with_the_nearest_key() {
    let message = from_file("[worker]\nconcurency = 16")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("unknown configuration key `worker.concurency`")
            && message.contains("did you mean worker.concurrency?"),
        "{message}"
    );
}

#[test]
fn a_misspelt_variable_stops_loading_with_its_name() {
    let message = from_env(&[("CALLVAULT__WORKER__CONCURENCY", "16")])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`worker.concurency`")
            && message.contains("environment variable CALLVAULT__WORKER__CONCURENCY")
            && message.contains("did you mean worker.concurrency?"),
        "{message}"
    );
}

#[test]
fn every_unknown_key_is_named_at_once() {
    let err =
        from_file("[wroker]\nconcurrency = 2\n[telemetry]\nexporter = \"otlp\"\n").unwrap_err();
    let ConfigError::UnknownKeys(keys) = &err else {
        panic!("{err}");
    };
    let named: Vec<_> = keys
        .iter()
        .map(|key| (key.key.as_str(), key.suggestion.as_deref()))
        .collect();
    assert_eq!(
        named,
        [
            ("telemetry.exporter", None),
            ("wroker.concurrency", Some("worker.concurrency"))
        ]
    );
}

#[test]
fn a_section_set_to_a_value_is_refused() {
    let message = from_file("worker = 4").unwrap_err().to_string();
    assert!(
        message.contains("`worker`") && message.contains("section"),
        "{message}"
    );
    let message = from_env(&[("CALLVAULT__WORKER", "4")])
        .unwrap_err()
        .to_string();
    assert!(message.contains("CALLVAULT__WORKER"), "{message}");
}

#[test]
fn a_secret_written_as_a_number_in_the_file_must_be_quoted() {
    // TOML reads 0x7123 as 28963: a secret must be written as the string it is.
    let message = from_file("[ingest]\nsecret = 0x7123")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`ingest.secret`") && message.contains("a string in quotes"),
        "{message}"
    );
    let settings = from_file("[ingest]\nsecret = \"007123\"").unwrap();
    assert_eq!(settings.ingest.secret.expose(), "007123");
}

#[test]
fn values_of_the_wrong_type_in_the_file_are_refused_not_coerced() {
    for (text, key) in [
        ("[worker]\nconcurrency = \"16\"", "worker.concurrency"),
        ("[acs]\nallow_http = \"yes\"", "acs.allow_http"),
        (
            "[acs]\nallowed_download_hosts = \".asm.skype.com\"",
            "acs.allowed_download_hosts",
        ),
    ] {
        let message = from_file(text).unwrap_err().to_string();
        assert!(message.contains(&format!("`{key}`")), "{message}");
    }
}

#[test]
fn messages_name_the_file_as_it_was_given() {
    let file = file("[worker]\nconcurency = 16");
    let message = Settings::load_from(Some(file.path()), env(&[]), &[])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("in {}:", file.path().display())),
        "{message}"
    );
    let file = self::file("[worker\nconcurrency = 16");
    let message = Settings::load_from(Some(file.path()), env(&[]), &[])
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!(
            "cannot read configuration file {}: ",
            file.path().display()
        )),
        "{message}"
    );
}

#[test]
fn the_environment_overrides_the_file() {
    let file = file("[worker]\nconcurrency = 8\n");
    let settings = Settings::load_from(
        Some(file.path()),
        env(&[("CALLVAULT__WORKER__CONCURRENCY", "16")]),
        &[],
    )
    .unwrap();
    assert_eq!(settings.worker.concurrency, 16);
}

#[test]
fn the_defaults_file_documents_exactly_the_settings() {
    let settings = Settings::defaults_with(&[]).unwrap();
    let rendered = config::Config::try_from(&settings).unwrap();
    let from_structs =
        super::schema::Schema::from_defaults(&config::Source::collect(&rendered).unwrap());
    let documented = super::schema::Schema::from_defaults(&super::defaults_table().unwrap());
    let keys = |schema: &super::schema::Schema| -> Vec<String> {
        schema.keys().map(|(key, _)| key.to_owned()).collect()
    };
    assert_eq!(keys(&from_structs), keys(&documented));
}

#[test]
fn the_effective_configuration_redacts_every_secret() {
    let settings = from_env(&[
        ("CALLVAULT__INGEST__SECRET", "hook-secret-007"),
        ("CALLVAULT__ADMIN__TOKEN", "admin-token-42"),
        (
            "CALLVAULT__DATABASE__URL",
            "postgres://callvault:pw-99@db/callvault",
        ),
        ("CALLVAULT__WORKER__CONCURRENCY", "16"),
    ])
    .unwrap();
    let shown = super::effective_toml(&settings);
    for secret in ["hook-secret-007", "admin-token-42", "pw-99", "aGVsbG8="] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    let table: toml::Table = toml::from_str(&shown).unwrap();
    assert_eq!(table["ingest"]["secret"].as_str(), Some("<redacted>"));
    assert_eq!(table["acs"]["access_key"].as_str(), Some("<empty>"));
    assert_eq!(table["worker"]["concurrency"].as_integer(), Some(16));
}
