//! Start-up checks of the `[storage]` section, without touching the network. Every message
//! names the key at fault, and a setting that does not apply to the chosen backend is refused
//! rather than silently ignored.

use crate::config::{ConfigError, StorageSettings, invalid_key};

/// S3 rejects parts below 5 MiB (except the last), so smaller parts cannot work anywhere.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest part; a bigger part would be refused at upload time.
pub const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;

/// The S3 storage classes a PUT may ask for.
pub const S3_STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "EXPRESS_ONEZONE",
];

/// The Azure Blob access tiers, spelled as the service expects.
pub const AZURE_ACCESS_TIERS: &[&str] = &["Hot", "Cool", "Cold", "Archive"];

/// Checks the storage section; the backends rely on it having passed.
pub fn validate(settings: &StorageSettings) -> Result<(), ConfigError> {
    if settings.part_size_bytes < MIN_PART_SIZE || settings.part_size_bytes > MAX_PART_SIZE {
        return Err(invalid_key(
            "storage.part_size_bytes",
            "must be between 5 MiB (5242880) and 5 GiB (the S3 part size limits)",
        ));
    }
    if settings.upload_concurrency == 0 {
        return Err(invalid_key(
            "storage.upload_concurrency",
            "must be at least 1",
        ));
    }
    if !(1..=3600).contains(&settings.request_timeout_secs) {
        return Err(invalid_key(
            "storage.request_timeout_secs",
            "must be between 1 and 3600 seconds",
        ));
    }
    match settings.kind.as_str() {
        "local" => validate_local(settings),
        "s3" => validate_s3(settings),
        "azure" => validate_azure(settings),
        other => Err(invalid_key(
            "storage.kind",
            format!("`{other}` is not supported; use local, s3 or azure"),
        )),
    }
}

fn validate_local(settings: &StorageSettings) -> Result<(), ConfigError> {
    if settings.path.as_os_str().is_empty() {
        return Err(invalid_key(
            "storage.path",
            "is required when storage.kind = local",
        ));
    }
    not_for("local", "storage.bucket", &settings.bucket)?;
    not_for("local", "storage.container", &settings.container)?;
    not_for("local", "storage.endpoint", &settings.endpoint)?;
    not_for("local", "storage.region", &settings.region)?;
    not_for("local", "storage.storage_class", &settings.storage_class)?;
    not_for(
        "local",
        "storage.server_side_encryption",
        &settings.server_side_encryption,
    )?;
    not_for("local", "storage.sse_kms_key_id", &settings.sse_kms_key_id)?;
    not_for("local", "storage.access_tier", &settings.access_tier)
}

fn validate_s3(settings: &StorageSettings) -> Result<(), ConfigError> {
    if settings.bucket.trim().is_empty() {
        return Err(invalid_key(
            "storage.bucket",
            "is required when storage.kind = s3",
        ));
    }
    if !is_s3_bucket_name(&settings.bucket) {
        return Err(invalid_key(
            "storage.bucket",
            format!(
                "`{}` is not an S3 bucket name (3-63 characters: lowercase letters, digits, `.` and `-`)",
                settings.bucket
            ),
        ));
    }
    check_endpoint(&settings.endpoint)?;
    not_for("s3", "storage.container", &settings.container)?;
    not_for("s3", "storage.access_tier", &settings.access_tier)?;
    if !settings.storage_class.is_empty()
        && !S3_STORAGE_CLASSES.contains(&settings.storage_class.as_str())
    {
        return Err(invalid_key(
            "storage.storage_class",
            format!(
                "`{}` is not an S3 storage class; use one of {}",
                settings.storage_class,
                S3_STORAGE_CLASSES.join(", ")
            ),
        ));
    }
    match settings.server_side_encryption.as_str() {
        "" | "sse-s3" => not_for_sse(settings),
        "sse-kms" => Ok(()),
        other => Err(invalid_key(
            "storage.server_side_encryption",
            format!("`{other}` is not supported; use sse-s3, sse-kms or leave it empty"),
        )),
    }
}

/// A KMS key without SSE-KMS would be ignored, which hides a mistake.
fn not_for_sse(settings: &StorageSettings) -> Result<(), ConfigError> {
    if settings.sse_kms_key_id.is_empty() {
        Ok(())
    } else {
        Err(invalid_key(
            "storage.sse_kms_key_id",
            "applies only with storage.server_side_encryption = sse-kms",
        ))
    }
}

fn validate_azure(settings: &StorageSettings) -> Result<(), ConfigError> {
    if settings.container.trim().is_empty() {
        return Err(invalid_key(
            "storage.container",
            "is required when storage.kind = azure",
        ));
    }
    if !is_azure_container_name(&settings.container) {
        return Err(invalid_key(
            "storage.container",
            format!(
                "`{}` is not an Azure container name (3-63 characters: lowercase letters, digits and single `-`)",
                settings.container
            ),
        ));
    }
    check_endpoint(&settings.endpoint)?;
    not_for("azure", "storage.bucket", &settings.bucket)?;
    not_for("azure", "storage.region", &settings.region)?;
    not_for("azure", "storage.storage_class", &settings.storage_class)?;
    not_for(
        "azure",
        "storage.server_side_encryption",
        &settings.server_side_encryption,
    )?;
    not_for("azure", "storage.sse_kms_key_id", &settings.sse_kms_key_id)?;
    if !settings.access_tier.is_empty() && azure_access_tier(&settings.access_tier).is_none() {
        return Err(invalid_key(
            "storage.access_tier",
            format!(
                "`{}` is not an Azure access tier; use one of {}",
                settings.access_tier,
                AZURE_ACCESS_TIERS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The access tier as Azure spells it, accepting any case.
pub fn azure_access_tier(raw: &str) -> Option<&'static str> {
    AZURE_ACCESS_TIERS
        .iter()
        .copied()
        .find(|tier| tier.eq_ignore_ascii_case(raw.trim()))
}

fn not_for(kind: &str, key: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Ok(())
    } else {
        Err(invalid_key(
            key,
            format!("does not apply when storage.kind = {kind}; remove it"),
        ))
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    if endpoint.is_empty() {
        return Ok(());
    }
    match url::Url::parse(endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(invalid_key(
            "storage.endpoint",
            format!("`{endpoint}` is not an http:// or https:// URL"),
        )),
    }
}

fn is_s3_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

fn is_azure_container_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.contains("--")
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn check(overrides: &[(&str, &str)]) -> Result<(), String> {
        let overrides: Vec<_> = overrides
            .iter()
            .map(|(key, value)| (*key, value.to_string()))
            .collect();
        let settings = Settings::defaults_with(&overrides).unwrap();
        super::validate(&settings.storage).map_err(|err| err.to_string())
    }

    #[test]
    fn s3_needs_a_bucket() {
        let err = check(&[("storage.kind", "s3")]).unwrap_err();
        assert!(
            err.contains("`storage.bucket`: is required when storage.kind = s3"),
            "{err}"
        );
        check(&[("storage.kind", "s3"), ("storage.bucket", "calls")]).unwrap();
    }

    #[test]
    fn azure_needs_a_container() {
        let err = check(&[("storage.kind", "azure")]).unwrap_err();
        assert!(err.contains("storage.container"), "{err}");
        check(&[
            ("storage.kind", "azure"),
            ("storage.container", "calls"),
            ("storage.access_tier", "cool"),
        ])
        .unwrap();
    }

    #[test]
    fn settings_of_another_backend_are_refused_by_name() {
        let err = check(&[
            ("storage.kind", "s3"),
            ("storage.bucket", "calls"),
            ("storage.access_tier", "Cool"),
        ])
        .unwrap_err();
        assert!(
            err.contains("storage.access_tier") && err.contains("storage.kind = s3"),
            "{err}"
        );
        let err = check(&[
            ("storage.kind", "azure"),
            ("storage.container", "calls"),
            ("storage.storage_class", "GLACIER"),
        ])
        .unwrap_err();
        assert!(err.contains("storage.storage_class"), "{err}");
        let err = check(&[("storage.server_side_encryption", "sse-s3")]).unwrap_err();
        assert!(err.contains("storage.kind = local"), "{err}");
    }

    #[test]
    fn unknown_option_values_are_refused() {
        let s3 = [("storage.kind", "s3"), ("storage.bucket", "calls")];
        let with = |extra: (&'static str, &'static str)| {
            let mut all = s3.to_vec();
            all.push(extra);
            check(&all)
        };
        assert!(
            with(("storage.storage_class", "COLD"))
                .unwrap_err()
                .contains("storage.storage_class")
        );
        assert!(
            with(("storage.server_side_encryption", "aes"))
                .unwrap_err()
                .contains("storage.server_side_encryption")
        );
        assert!(
            with(("storage.sse_kms_key_id", "key"))
                .unwrap_err()
                .contains("sse-kms")
        );
        assert!(
            with(("storage.endpoint", "localhost:9000"))
                .unwrap_err()
                .contains("storage.endpoint")
        );
        with(("storage.storage_class", "GLACIER_IR")).unwrap();
        with(("storage.endpoint", "http://127.0.0.1:9000")).unwrap();
    }

    #[test]
    fn names_must_be_valid_for_the_service() {
        assert!(check(&[("storage.kind", "s3"), ("storage.bucket", "Calls_2026")]).is_err());
        assert!(check(&[("storage.kind", "azure"), ("storage.container", "a--b")]).is_err());
    }

    #[test]
    fn parts_must_respect_the_s3_limits() {
        assert!(
            check(&[("storage.part_size_bytes", "1048576")])
                .unwrap_err()
                .contains("storage.part_size_bytes")
        );
    }
}
