//! The `[retention]` section: off by default, bounded when on.

use super::Settings;

fn check(extra: &[(&'static str, &str)]) -> Result<Settings, String> {
    let mut overrides = vec![
        (
            "acs.connection_string",
            "endpoint=https://x.communication.azure.com/;accesskey=aGVsbG8=".to_owned(),
        ),
        ("ingest.secret", "s3cret".to_owned()),
    ];
    overrides.extend(extra.iter().map(|(key, value)| (*key, value.to_string())));
    let settings = Settings::defaults_with(&overrides).map_err(|err| err.to_string())?;
    settings.validate().map_err(|err| err.to_string())?;
    Ok(settings)
}

#[test]
fn retention_is_off_by_default_with_bounded_batches() {
    let settings = check(&[]).unwrap();
    assert_eq!(settings.retention.delete_after_days, 0);
    assert_eq!(settings.retention.batch_size, 100);
    assert_eq!(settings.retention.interval_minutes, 60);
}

#[test]
fn out_of_range_values_name_their_key() {
    for (key, value) in [
        ("retention.delete_after_days", "36501"),
        ("retention.batch_size", "0"),
        ("retention.batch_size", "10001"),
        ("retention.interval_minutes", "0"),
    ] {
        let message = check(&[(key, value)]).unwrap_err();
        assert!(
            message.contains(&format!("`{key}`")),
            "{key}={value}: {message}"
        );
    }
    let message = check(&[("retention.delete_after_days", "-1")]).unwrap_err();
    assert!(message.contains("retention.delete_after_days"), "{message}");
    check(&[("retention.delete_after_days", "2555")]).unwrap();
}
