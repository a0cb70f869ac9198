//! Building the configured object_store backend.

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, PutMultipartOptions, PutOptions};

use crate::config::{ConfigError, StorageSettings, invalid_key};

use super::StorageError;

/// Local parts are small: the local store needs no minimum part size, and memory stays flat.
const LOCAL_PART_SIZE: usize = 1024 * 1024;

pub(super) struct OpenedStore {
    pub store: Arc<dyn ObjectStore>,
    pub part_size: usize,
    pub description: String,
    pub options: WriteOptions,
}

/// Per-object options every write carries (storage class, encryption, tier, checksum metadata).
#[derive(Debug, Clone, Default)]
pub(super) struct WriteOptions {}

impl WriteOptions {
    pub fn put_options(&self, _sha256_hex: &str) -> PutOptions {
        PutOptions::default()
    }
    pub fn multipart_options(&self) -> PutMultipartOptions {
        PutMultipartOptions::default()
    }
}

/// Checks the storage section without touching the network.
pub fn validate(settings: &StorageSettings) -> Result<(), ConfigError> {
    if settings.part_size_bytes < 5 * 1024 * 1024 {
        return Err(invalid_key(
            "storage.part_size_bytes",
            "must be at least 5 MiB (the S3 minimum part size)",
        ));
    }
    if settings.upload_concurrency == 0 {
        return Err(invalid_key(
            "storage.upload_concurrency",
            "must be at least 1",
        ));
    }
    match settings.kind.as_str() {
        "local" => {
            if settings.path.as_os_str().is_empty() {
                return Err(invalid_key(
                    "storage.path",
                    "is required when storage.kind = local",
                ));
            }
            Ok(())
        }
        other => Err(invalid_key(
            "storage.kind",
            format!("`{other}` is not supported; use local"),
        )),
    }
}

pub(super) async fn open(settings: &StorageSettings) -> Result<OpenedStore, StorageError> {
    validate(settings)?;
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
