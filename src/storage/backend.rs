//! Building the configured object_store backend.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::azure::AzureFinisher;
use super::options::WriteOptions;
use super::s3::S3Finisher;
use super::validate::validate;
use super::{StorageError, StorageSettings};

/// Local parts are small: the local store needs no minimum part size, and memory stays flat.
const LOCAL_PART_SIZE: usize = 1024 * 1024;

/// A backend ready for use.
pub(super) struct OpenedStore {
    pub store: Arc<dyn ObjectStore>,
    /// Bytes per multipart part.
    pub part_size: usize,
    /// Human description for logs; never holds a credential.
    pub description: String,
    pub options: WriteOptions,
    pub finisher: Finisher,
}

/// The step after a multipart upload completes: object_store fixes attributes when the upload
/// starts, before the hash is known, so the sha256 metadata is set with the service's own call.
pub(super) enum Finisher {
    /// A local folder keeps no metadata.
    Local,
    S3(S3Finisher),
    Azure(AzureFinisher),
}

impl Finisher {
    /// Records `sha256_hex` in the complete object's metadata.
    pub async fn set_sha256(
        &self,
        key: &Path,
        sha256_hex: &str,
        e_tag: Option<&str>,
        size: u64,
    ) -> Result<(), StorageError> {
        match self {
            Finisher::Local => Ok(()),
            Finisher::S3(s3) => s3.set_sha256(key, sha256_hex, e_tag, size).await,
            Finisher::Azure(azure) => azure.set_sha256(key, sha256_hex, e_tag).await,
        }
    }
}

/// Opens the configured backend; `extra` are object_store config pairs (`aws_access_key_id`,
/// `azure_storage_account_key`, …) applied after the environment, for tests.
pub(super) async fn open(
    settings: &StorageSettings,
    extra: &[(&str, &str)],
) -> Result<OpenedStore, StorageError> {
    validate(settings)?;
    match settings.kind.as_str() {
        "s3" => super::s3::open(settings, extra),
        "azure" => super::azure::open(settings, extra),
        _ => open_local(settings).await,
    }
}

async fn open_local(settings: &StorageSettings) -> Result<OpenedStore, StorageError> {
    let root = &settings.path;
    tokio::fs::create_dir_all(root).await?;
    let removed = remove_staging_files(root).await?;
    if removed > 0 {
        tracing::warn!(count = removed, root = %root.display(), "removed staging files left by an interrupted write");
    }
    let store = LocalFileSystem::new_with_prefix(root)?.with_fsync(true);
    Ok(OpenedStore {
        store: Arc::new(store),
        part_size: LOCAL_PART_SIZE,
        description: format!("local:{}", root.display()),
        options: WriteOptions::default(),
        finisher: Finisher::Local,
    })
}

/// object_store's local backend stages writes as `NAME#N`; a crash leaves them behind.
async fn remove_staging_files(root: &std::path::Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let mut entries = tokio::fs::read_dir(&folder).await?;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            if entry.file_type().await?.is_dir() {
                folders.push(path);
            } else if is_staging_name(&entry.file_name().to_string_lossy()) {
                tokio::fs::remove_file(&path).await?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn is_staging_name(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, suffix)| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_staging_names() {
        assert!(is_staging_name("chunk-0000.mp4#1"));
        assert!(is_staging_name("chunk-0000.mp4#12"));
        assert!(!is_staging_name("chunk-0000.mp4"));
        assert!(!is_staging_name("a#b"));
        assert!(!is_staging_name("a#"));
    }

    #[tokio::test]
    async fn open_removes_leftover_staging_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("call/rec");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(nested.join("chunk-0000.mp4#3"), b"partial").unwrap();
        std::fs::write(nested.join("chunk-0000.metadata.json"), b"{}").unwrap();
        assert_eq!(remove_staging_files(dir.path()).await.unwrap(), 1);
        assert!(!nested.join("chunk-0000.mp4#3").exists());
        assert!(nested.join("chunk-0000.metadata.json").exists());
    }
}
