//! Amazon S3 and S3-compatible stores: building the client from `AWS_*` and the storage
//! settings, and setting the sha256 metadata once a multipart upload is complete.

mod head;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer, Checksum};
use object_store::path::Path;
use object_store::signer::Signer;

use super::backend::{Finisher, OpenedStore};
use super::client::{self, client_config, http_client, is_plain_http, retry_config};
use super::options::{SHA256_METADATA, WriteOptions};
use super::settings::{ObjectLock, S3Encryption, S3Settings};
use super::{StorageError, StorageSettings};
pub use head::{ObjectChecksum, StoreSha256};

mod lock;
mod versions;

/// CopyObject, which rewrites metadata in place, takes objects up to 5 GiB.
pub const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Classes whose objects cannot be copied without a restore: they are applied by the copy.
const ARCHIVAL_CLASSES: &[&str] = &["GLACIER", "DEEP_ARCHIVE"];

/// Builds the S3 client; `extra` are object_store config pairs applied last (tests).
pub(super) fn open(
    settings: &StorageSettings,
    s3: &S3Settings,
    extra: &[(&str, &str)],
) -> Result<OpenedStore, StorageError> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&s3.bucket)
        // S3 then verifies every part and every single put against a sha256 we send.
        .with_checksum_algorithm(Checksum::SHA256)
        .with_retry(retry_config());
    for (key, value) in client_config(settings.request_timeout_secs) {
        builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
    }
    if let Some(region) = &s3.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint);
        if is_plain_http(endpoint) {
            builder = builder.with_allow_http(true);
        }
    }
    let mut sse_headers = Vec::new();
    match &s3.encryption {
        S3Encryption::SseS3 => {
            // S3EncryptionConfigKey is not exported by object_store 0.14; its string name is.
            builder = builder.with_config("aws_server_side_encryption".parse()?, "AES256");
            sse_headers.push(("x-amz-server-side-encryption", "AES256".to_owned()));
        }
        S3Encryption::SseKms { key_id } => {
            builder = builder.with_sse_kms_encryption(key_id.clone().unwrap_or_default());
            sse_headers.push(("x-amz-server-side-encryption", "aws:kms".to_owned()));
            if let Some(key_id) = key_id {
                sse_headers.push((
                    "x-amz-server-side-encryption-aws-kms-key-id",
                    key_id.clone(),
                ));
            }
        }
        S3Encryption::BucketDefault => {}
    }
    for (key, value) in extra {
        let key: AmazonS3ConfigKey = key.parse()?;
        builder = builder.with_config(key, *value);
    }
    // The region object_store signs with, which our own signed request must use too.
    let region = [AmazonS3ConfigKey::Region, AmazonS3ConfigKey::DefaultRegion]
        .iter()
        .find_map(|key| builder.get_config_value(key).filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .unwrap_or_default();
    let store = Arc::new(builder.build()?);
    let storage_class = s3.storage_class.clone();
    let class_after_metadata = storage_class
        .as_deref()
        .is_some_and(|class| ARCHIVAL_CLASSES.contains(&class));
    let where_ = if endpoint.is_empty() {
        format!("region {region}")
    } else {
        endpoint
    };
    Ok(OpenedStore {
        store: store.clone() as Arc<dyn ObjectStore>,
        part_size: settings.part_size_bytes,
        description: format!("s3://{} ({where_})", s3.bucket),
        options: WriteOptions {
            metadata: true,
            storage_class: storage_class.clone(),
            class_after_metadata,
        },
        finisher: Finisher::S3(S3Finisher {
            store,
            bucket: s3.bucket.clone(),
            region,
            storage_class,
            sse_headers,
            lock: settings.object_lock,
            client: http_client(settings.request_timeout_secs)?,
        }),
    })
}

/// Sets metadata on a complete object by copying it onto itself (S3 has no other way).
pub(super) struct S3Finisher {
    store: Arc<AmazonS3>,
    bucket: String,
    region: String,
    storage_class: Option<String>,
    /// The copy is a new write: encryption must be asked for again.
    sse_headers: Vec<(&'static str, String)>,
    /// Object Lock: the copy carries the retention when objects are locked at write.
    lock: Option<ObjectLock>,
    client: reqwest::Client,
}

impl S3Finisher {
    /// The low-level multipart API, whose upload ids we keep (see `uploads`).
    pub(super) fn multipart(&self) -> Arc<dyn object_store::multipart::MultipartStore> {
        self.store.clone()
    }

    /// What ListMultipartUploads signs its requests with.
    pub(super) fn uploads(&self) -> super::s3_uploads::S3Uploads<'_> {
        super::s3_uploads::S3Uploads {
            store: &self.store,
            region: &self.region,
            client: &self.client,
        }
    }

    /// Rewrites `key`'s metadata to carry `sha256`, keeping class and encryption. `e_tag` makes
    /// the copy apply only to the object this upload completed.
    pub async fn set_sha256(
        &self,
        key: &Path,
        sha256_hex: &str,
        e_tag: Option<&str>,
        size: u64,
    ) -> Result<(), StorageError> {
        if size > MAX_COPY_BYTES {
            tracing::warn!(key = %key, bytes = size, "object larger than 5 GiB: S3 cannot copy it in place, so it has no sha256 metadata and no whole-object ChecksumSHA256, only the parts' composite checksum (the manifest has the hash)");
            // The lock needs no copy.
            if let Some(retention) = self.retention_at_write() {
                return self.set_retention(key, &retention).await;
            }
            return Ok(());
        }
        // object_store knows the object's URL (path or virtual-hosted style); a presigned URL
        // without its query is exactly that.
        let mut url = self
            .store
            .signed_url(http::Method::PUT, key, Duration::from_secs(60))
            .await?;
        url.set_query(None);
        let copy_source = format!("/{}/{}", self.bucket, encode_key(key.as_ref()));
        let mut headers: Vec<(&str, &str)> = vec![
            ("x-amz-copy-source", &copy_source),
            ("x-amz-metadata-directive", "REPLACE"),
            // The copy then carries the whole object's SHA-256, computed by S3, instead of
            // the parts' composite checksum: the store's own checksum equals the manifest's.
            ("x-amz-checksum-algorithm", "SHA256"),
        ];
        let metadata_header = format!("x-amz-meta-{SHA256_METADATA}");
        headers.push((&metadata_header, sha256_hex));
        if let Some(class) = &self.storage_class {
            headers.push(("x-amz-storage-class", class));
        }
        if let Some(e_tag) = e_tag {
            headers.push(("x-amz-copy-source-if-match", e_tag));
        }
        for (name, value) in &self.sse_headers {
            headers.push((name, value));
        }
        let retention = self.retention_at_write();
        let retain_until = retention.as_ref().map(|retention| retention.s3_until());
        if let (Some(retention), Some(until)) = (&retention, &retain_until) {
            headers.push(("x-amz-object-lock-mode", retention.s3_mode()));
            headers.push(("x-amz-object-lock-retain-until-date", until));
            // A locked write must declare a checksum (moto refuses the copy without it).
            headers.push(("x-amz-sdk-checksum-algorithm", "SHA256"));
        }
        let mut request = client::request(http::Method::PUT, &url, &headers)?;
        let credential = self.store.credentials().get_credential().await?;
        AwsAuthorizer::new(&credential, "s3", &self.region).try_authorize(&mut request, None)?;
        let body = client::send(&self.client, &request, "setting the sha256 metadata").await?;
        // CopyObject can answer 200 and report its failure in the body.
        if body.contains("<Error>") {
            return Err(StorageError::Request(format!(
                "setting the sha256 metadata on {key}: {body}"
            )));
        }
        Ok(())
    }
}

/// `x-amz-copy-source` is URL-encoded; keys are already limited to `[A-Za-z0-9._=+-/]`.
fn encode_key(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'/' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_keys_are_url_encoded() {
        assert_eq!(
            encode_key("calls/a+b=c/chunk-0000.mp4"),
            "calls/a%2Bb%3Dc/chunk-0000.mp4"
        );
    }
}
