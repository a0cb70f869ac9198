//! Start-up checks of the `[storage]` section, without touching the network. Every message
//! names the key at fault, and a setting that does not apply to the chosen backend is refused
//! rather than silently ignored.

use super::settings::{
    AzureSettings, InvalidSetting, LocalSettings, LockMode, ObjectLock, S3Encryption, S3Settings,
    StorageBackend, StorageSettings,
};
use super::settings_section::StorageSection;

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

/// The longest retention accepted: a hundred years, well past any regulation's period.
pub const MAX_OBJECT_LOCK_DAYS: u64 = 36_500;
/// The longest holding period before objects are locked: a year.
pub const MAX_LOCK_AFTER_HOURS: u64 = 8_760;

/// The Azure Blob access tiers, spelled as the service expects.
pub const AZURE_ACCESS_TIERS: &[&str] = &["Hot", "Cool", "Cold", "Archive"];

/// Checks the storage section and keeps the keys of its backend; the backends rely on it.
pub fn validate(section: &StorageSection) -> Result<StorageSettings, InvalidSetting> {
    if section.part_size_bytes < MIN_PART_SIZE || section.part_size_bytes > MAX_PART_SIZE {
        return Err(InvalidSetting::new(
            "storage.part_size_bytes",
            "must be between 5 MiB (5242880) and 5 GiB (the S3 part size limits)",
        ));
    }
    if section.upload_concurrency == 0 {
        return Err(InvalidSetting::new(
            "storage.upload_concurrency",
            "must be at least 1",
        ));
    }
    if !(1..=3600).contains(&section.request_timeout_secs) {
        return Err(InvalidSetting::new(
            "storage.request_timeout_secs",
            "must be between 1 and 3600 seconds",
        ));
    }
    let backend = match section.kind.as_str() {
        "local" => validate_local(section)?,
        "s3" => validate_s3(section)?,
        "azure" => validate_azure(section)?,
        other => {
            return Err(InvalidSetting::new(
                "storage.kind",
                format!("`{other}` is not supported; use local, s3 or azure"),
            ));
        }
    };
    let object_lock = validate_object_lock(section)?;
    if object_lock.is_some() && matches!(backend, StorageBackend::Local(_)) {
        return Err(InvalidSetting::new(
            "storage.object_lock_mode",
            "a local folder has no store-enforced lock; use storage.kind = s3 or azure, or leave it empty",
        ));
    }
    Ok(StorageSettings {
        prefix: section.prefix.clone(),
        part_size_bytes: section.part_size_bytes,
        upload_concurrency: section.upload_concurrency,
        request_timeout_secs: section.request_timeout_secs,
        backend,
        object_lock,
        manifest_signer: manifest_signer(section)?,
    })
}

/// The manifest signing key, when one is set; a malformed one stops start-up.
fn manifest_signer(
    section: &StorageSection,
) -> Result<Option<super::signature::ManifestSigner>, InvalidSetting> {
    if section.manifest_signing_key.is_empty() {
        return Ok(None);
    }
    super::signature::ManifestSigner::from_setting(&section.manifest_signing_key).map(Some)
}

/// The lock keys: the days are required with a mode, and neither applies without one.
fn validate_object_lock(section: &StorageSection) -> Result<Option<ObjectLock>, InvalidSetting> {
    let mode = match section
        .object_lock_mode
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "" => None,
        "governance" => Some(LockMode::Governance),
        "compliance" => Some(LockMode::Compliance),
        _ => {
            return Err(InvalidSetting::new(
                "storage.object_lock_mode",
                format!(
                    "`{}` is not supported; use governance, compliance or leave it empty",
                    section.object_lock_mode
                ),
            ));
        }
    };
    let Some(mode) = mode else {
        for (key, value) in [
            ("storage.object_lock_days", section.object_lock_days),
            ("storage.lock_after_hours", section.lock_after_hours),
        ] {
            if value != 0 {
                return Err(InvalidSetting::new(
                    key,
                    "applies only with storage.object_lock_mode = governance or compliance",
                ));
            }
        }
        return Ok(None);
    };
    if !(1..=MAX_OBJECT_LOCK_DAYS).contains(&section.object_lock_days) {
        return Err(InvalidSetting::new(
            "storage.object_lock_days",
            format!(
                "must be between 1 and {MAX_OBJECT_LOCK_DAYS} when storage.object_lock_mode is set"
            ),
        ));
    }
    if section.lock_after_hours > MAX_LOCK_AFTER_HOURS {
        return Err(InvalidSetting::new(
            "storage.lock_after_hours",
            format!("must be between 0 (lock at write) and {MAX_LOCK_AFTER_HOURS} hours"),
        ));
    }
    // Both bounds fit in u32.
    Ok(Some(ObjectLock {
        mode,
        days: section.object_lock_days as u32,
        after_hours: section.lock_after_hours as u32,
    }))
}

fn validate_local(section: &StorageSection) -> Result<StorageBackend, InvalidSetting> {
    if section.path.as_os_str().is_empty() {
        return Err(InvalidSetting::new(
            "storage.path",
            "is required when storage.kind = local",
        ));
    }
    not_for("local", "storage.bucket", &section.bucket)?;
    not_for("local", "storage.container", &section.container)?;
    not_for("local", "storage.endpoint", &section.endpoint)?;
    not_for("local", "storage.region", &section.region)?;
    not_for("local", "storage.storage_class", &section.storage_class)?;
    not_for(
        "local",
        "storage.server_side_encryption",
        &section.server_side_encryption,
    )?;
    not_for("local", "storage.sse_kms_key_id", &section.sse_kms_key_id)?;
    not_for("local", "storage.access_tier", &section.access_tier)?;
    Ok(StorageBackend::Local(LocalSettings {
        path: section.path.clone(),
    }))
}

fn validate_s3(section: &StorageSection) -> Result<StorageBackend, InvalidSetting> {
    if section.bucket.trim().is_empty() {
        return Err(InvalidSetting::new(
            "storage.bucket",
            "is required when storage.kind = s3",
        ));
    }
    if !is_s3_bucket_name(&section.bucket) {
        return Err(InvalidSetting::new(
            "storage.bucket",
            format!(
                "`{}` is not an S3 bucket name (3-63 characters: lowercase letters, digits, `.` and `-`)",
                section.bucket
            ),
        ));
    }
    check_endpoint(&section.endpoint)?;
    not_for("s3", "storage.container", &section.container)?;
    not_for("s3", "storage.access_tier", &section.access_tier)?;
    if !section.storage_class.is_empty()
        && !S3_STORAGE_CLASSES.contains(&section.storage_class.as_str())
    {
        return Err(InvalidSetting::new(
            "storage.storage_class",
            format!(
                "`{}` is not an S3 storage class; use one of {}",
                section.storage_class,
                S3_STORAGE_CLASSES.join(", ")
            ),
        ));
    }
    let encryption = match section.server_side_encryption.as_str() {
        "" => not_for_sse(section).map(|()| S3Encryption::BucketDefault)?,
        "sse-s3" => not_for_sse(section).map(|()| S3Encryption::SseS3)?,
        "sse-kms" => S3Encryption::SseKms {
            key_id: given(&section.sse_kms_key_id),
        },
        other => {
            return Err(InvalidSetting::new(
                "storage.server_side_encryption",
                format!("`{other}` is not supported; use sse-s3, sse-kms or leave it empty"),
            ));
        }
    };
    Ok(StorageBackend::S3(S3Settings {
        bucket: section.bucket.clone(),
        endpoint: given(&section.endpoint),
        region: given(&section.region),
        storage_class: given(&section.storage_class),
        encryption,
    }))
}

/// A KMS key without SSE-KMS would be ignored, which hides a mistake.
fn not_for_sse(section: &StorageSection) -> Result<(), InvalidSetting> {
    if section.sse_kms_key_id.is_empty() {
        Ok(())
    } else {
        Err(InvalidSetting::new(
            "storage.sse_kms_key_id",
            "applies only with storage.server_side_encryption = sse-kms",
        ))
    }
}

fn validate_azure(section: &StorageSection) -> Result<StorageBackend, InvalidSetting> {
    if section.container.trim().is_empty() {
        return Err(InvalidSetting::new(
            "storage.container",
            "is required when storage.kind = azure",
        ));
    }
    if !is_azure_container_name(&section.container) {
        return Err(InvalidSetting::new(
            "storage.container",
            format!(
                "`{}` is not an Azure container name (3-63 characters: lowercase letters, digits and single `-`)",
                section.container
            ),
        ));
    }
    check_endpoint(&section.endpoint)?;
    not_for("azure", "storage.bucket", &section.bucket)?;
    not_for("azure", "storage.region", &section.region)?;
    not_for("azure", "storage.storage_class", &section.storage_class)?;
    not_for(
        "azure",
        "storage.server_side_encryption",
        &section.server_side_encryption,
    )?;
    not_for("azure", "storage.sse_kms_key_id", &section.sse_kms_key_id)?;
    let access_tier = azure_access_tier(&section.access_tier);
    if !section.access_tier.is_empty() && access_tier.is_none() {
        return Err(InvalidSetting::new(
            "storage.access_tier",
            format!(
                "`{}` is not an Azure access tier; use one of {}",
                section.access_tier,
                AZURE_ACCESS_TIERS.join(", ")
            ),
        ));
    }
    Ok(StorageBackend::Azure(AzureSettings {
        container: section.container.clone(),
        endpoint: given(&section.endpoint),
        access_tier,
        content_md5: section.content_md5,
    }))
}

/// The access tier as Azure spells it, accepting any case.
pub fn azure_access_tier(raw: &str) -> Option<&'static str> {
    AZURE_ACCESS_TIERS
        .iter()
        .copied()
        .find(|tier| tier.eq_ignore_ascii_case(raw.trim()))
}

/// An optional key: empty means not given.
fn given(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn not_for(kind: &str, key: &'static str, value: &str) -> Result<(), InvalidSetting> {
    if value.trim().is_empty() {
        Ok(())
    } else {
        Err(InvalidSetting::new(
            key,
            format!("does not apply when storage.kind = {kind}; remove it"),
        ))
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), InvalidSetting> {
    if endpoint.is_empty() {
        return Ok(());
    }
    match url::Url::parse(endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(InvalidSetting::new(
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
        super::validate(&settings.storage)
            .map(drop)
            .map_err(|err| err.to_string())
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
    fn lock_settings_are_checked_by_name() {
        let s3 = [("storage.kind", "s3"), ("storage.bucket", "calls")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = s3.to_vec();
            all.extend_from_slice(extra);
            check(&all)
        };
        let err = with(&[("storage.object_lock_mode", "governance")]).unwrap_err();
        assert!(
            err.contains("`storage.object_lock_days`: must be between 1 and 36500"),
            "{err}"
        );
        let err = with(&[
            ("storage.object_lock_mode", "compliance"),
            ("storage.object_lock_days", "36501"),
        ])
        .unwrap_err();
        assert!(err.contains("storage.object_lock_days"), "{err}");
        let err = with(&[("storage.object_lock_mode", "legal")]).unwrap_err();
        assert!(err.contains("`storage.object_lock_mode`"), "{err}");
        let err = with(&[("storage.object_lock_days", "30")]).unwrap_err();
        assert!(
            err.contains("`storage.object_lock_days`: applies only with"),
            "{err}"
        );
        let err = with(&[("storage.lock_after_hours", "24")]).unwrap_err();
        assert!(err.contains("`storage.lock_after_hours`"), "{err}");
        let err = with(&[
            ("storage.object_lock_mode", "governance"),
            ("storage.object_lock_days", "30"),
            ("storage.lock_after_hours", "8761"),
        ])
        .unwrap_err();
        assert!(err.contains("`storage.lock_after_hours`"), "{err}");
        with(&[
            ("storage.object_lock_mode", "Compliance"),
            ("storage.object_lock_days", "2555"),
            ("storage.lock_after_hours", "72"),
        ])
        .unwrap();
    }

    #[test]
    fn a_local_folder_cannot_be_locked() {
        let err = check(&[
            ("storage.object_lock_mode", "governance"),
            ("storage.object_lock_days", "1"),
        ])
        .unwrap_err();
        assert!(
            err.contains("`storage.object_lock_mode`: a local folder"),
            "{err}"
        );
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
