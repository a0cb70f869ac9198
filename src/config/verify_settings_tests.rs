//! The `[verify]` section: the verifier's byte budget and the duration tolerance.

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
fn the_verifier_is_off_by_default_and_the_tolerance_is_five_seconds() {
    let settings = check(&[]).unwrap();
    assert_eq!(settings.verify.bytes_per_hour, 0);
    assert_eq!(settings.verify.duration_tolerance_ms, 5000);
    assert_eq!(
        settings.verify.duration_tolerance_ms,
        crate::worker::DEFAULT_DURATION_TOLERANCE_MS,
        "a worker built without the settings uses the same default"
    );
}

#[test]
fn a_byte_budget_is_zero_or_between_one_mebibyte_and_one_pebibyte() {
    for refused in ["1", "1048575", "1125899906842625", "9223372036854775807"] {
        let message = check(&[("verify.bytes_per_hour", refused)]).unwrap_err();
        assert!(
            message.contains("`verify.bytes_per_hour`") && message.contains("0 to turn"),
            "{refused}: {message}"
        );
    }
    for accepted in ["0", "1048576", "1125899906842624"] {
        let settings = check(&[("verify.bytes_per_hour", accepted)]).unwrap();
        assert_eq!(settings.verify.bytes_per_hour.to_string(), accepted);
    }
    for not_a_count in ["-1", "18446744073709551615"] {
        let message = check(&[("verify.bytes_per_hour", not_a_count)]).unwrap_err();
        assert!(message.contains("verify.bytes_per_hour"), "{message}");
    }
}

#[test]
fn the_tolerance_is_at_most_an_hour() {
    let message = check(&[("verify.duration_tolerance_ms", "3600001")]).unwrap_err();
    assert!(
        message.contains("`verify.duration_tolerance_ms`")
            && message.contains("between 0 and 3600000"),
        "{message}"
    );
    check(&[("verify.duration_tolerance_ms", "0")]).unwrap();
    check(&[("verify.duration_tolerance_ms", "3600000")]).unwrap();
}
