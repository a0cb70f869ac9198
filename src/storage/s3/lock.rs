//! S3 Object Lock: the start-up check that the bucket has it, a single put that carries its
//! retention (so the object never exists unlocked), and the retention and legal hold of an
//! object already written.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use bytes::Bytes;
use chrono::Utc;
use object_store::aws::AwsAuthorizer;
use object_store::path::Path;
use object_store::signer::Signer;
use sha2::{Digest, Sha256};

use super::S3Finisher;
use crate::storage::client;
use crate::storage::lock::{Retention, s3_legal_hold_xml};
use crate::storage::options::SHA256_METADATA;
use crate::storage::{StorageError, layout};

impl S3Finisher {
    /// The retention an object written now gets, when objects are locked at write.
    pub(crate) fn retention_at_write(&self) -> Option<Retention> {
        self.lock
            .filter(|lock| lock.at_write())
            .map(|lock| Retention::from(&lock, Utc::now()))
    }

    /// Refuses a bucket without Object Lock: every locked write would fail, or worse, a
    /// store that ignored the headers would keep objects that anyone can delete.
    pub async fn check_object_lock(&self) -> Result<(), StorageError> {
        let mut url = self
            .url_of(&layout::object_key("callvault-object-lock-probe"))
            .await?;
        // The bucket's URL: path style ends in `/bucket`, virtual-hosted style is `/`.
        let bucket_path = url
            .path()
            .rsplit_once('/')
            .map_or("", |(bucket, _)| bucket)
            .to_owned();
        url.set_path(if bucket_path.is_empty() {
            "/"
        } else {
            &bucket_path
        });
        url.set_query(Some("object-lock"));
        let what = format!(
            "reading the Object Lock configuration of bucket {}",
            self.bucket
        );
        let enable = format!(
            "storage.object_lock_mode needs S3 Object Lock on bucket {bucket}: create the bucket with it (`aws s3api create-bucket --bucket {bucket} --object-lock-enabled-for-bucket`), or on AWS enable versioning and then Object Lock on the existing bucket (`aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration ObjectLockEnabled=Enabled`; some S3-compatible stores allow it only at creation); or leave storage.object_lock_mode empty",
            bucket = self.bucket
        );
        match self
            .send_signed(http::Method::GET, &url, &[], Bytes::new(), &what)
            .await
        {
            Ok(body) if body.contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>") => Ok(()),
            Ok(_) => Err(StorageError::Request(format!(
                "bucket {} does not have Object Lock enabled; {enable}",
                self.bucket
            ))),
            Err(StorageError::Request(failure))
                if failure.contains("ObjectLockConfigurationNotFound") =>
            {
                Err(StorageError::Request(format!(
                    "bucket {} has no Object Lock configuration; {enable}",
                    self.bucket
                )))
            }
            Err(err) => Err(err),
        }
    }

    /// One PutObject carrying the sha256 checksum that the store keeps as the object's own
    /// `ChecksumSHA256` (`x-amz-sdk-checksum-algorithm` asks for it to be kept; some
    /// S3-compatible stores verify but drop a bare `x-amz-checksum-sha256`), the sha256
    /// metadata, storage class, encryption and, when objects are locked at write, `retention`
    /// (S3 refuses a locked put without a checksum).
    pub async fn put_checksummed(
        &self,
        key: &Path,
        body: Bytes,
        sha256_hex: &str,
        retention: Option<&Retention>,
    ) -> Result<(), StorageError> {
        let url = self.url_of(key).await?;
        let digest = hex::decode(sha256_hex)
            .map_err(|err| StorageError::Request(format!("sha256 of {key}: {err}")))?;
        let checksum = BASE64_STANDARD.encode(&digest);
        let metadata_header = format!("x-amz-meta-{SHA256_METADATA}");
        let lock = retention.map(|retention| (retention.s3_mode(), retention.s3_until()));
        let mut headers: Vec<(&str, &str)> = vec![
            ("x-amz-sdk-checksum-algorithm", "SHA256"),
            ("x-amz-checksum-sha256", &checksum),
            (&metadata_header, sha256_hex),
        ];
        if let Some((mode, until)) = &lock {
            headers.push(("x-amz-object-lock-mode", mode));
            headers.push(("x-amz-object-lock-retain-until-date", until));
        }
        if let Some(class) = &self.storage_class {
            headers.push(("x-amz-storage-class", class));
        }
        for (name, value) in &self.sse_headers {
            headers.push((name, value));
        }
        let what = match lock {
            Some(_) => format!("writing {key} with its Object Lock retention"),
            None => format!("writing {key}"),
        };
        self.send_signed(http::Method::PUT, &url, &headers, body, &what)
            .await?;
        Ok(())
    }

    /// Sets `retention` on the current version of `key` (PutObjectRetention).
    pub async fn set_retention(
        &self,
        key: &Path,
        retention: &Retention,
    ) -> Result<(), StorageError> {
        let what = format!("setting the Object Lock retention of {key}");
        self.put_subresource(key, "retention", retention.s3_retention_xml(), &what)
            .await
    }

    /// Turns the legal hold of the current version of `key` on or off (PutObjectLegalHold).
    pub async fn set_legal_hold(&self, key: &Path, on: bool) -> Result<(), StorageError> {
        let what = format!("setting the legal hold of {key}");
        self.put_subresource(key, "legal-hold", s3_legal_hold_xml(on), &what)
            .await
    }

    /// A `PUT key?sub` with an XML body; S3 wants a checksum of such bodies.
    async fn put_subresource(
        &self,
        key: &Path,
        sub: &str,
        xml: String,
        what: &str,
    ) -> Result<(), StorageError> {
        let mut url = self.url_of(key).await?;
        url.set_query(Some(sub));
        let checksum = BASE64_STANDARD.encode(Sha256::digest(xml.as_bytes()));
        let headers = [
            ("x-amz-sdk-checksum-algorithm", "SHA256"),
            ("x-amz-checksum-sha256", checksum.as_str()),
            ("content-type", "application/xml"),
        ];
        self.send_signed(http::Method::PUT, &url, &headers, Bytes::from(xml), what)
            .await
            .map_err(|err| self.explain_lock_refusal(err))?;
        Ok(())
    }

    /// A store's refusal of a lock, with what to enable.
    fn explain_lock_refusal(&self, err: StorageError) -> StorageError {
        match err {
            StorageError::Request(failure)
                if failure.contains("InvalidRequest") && failure.contains("Object Lock") =>
            {
                StorageError::Request(format!(
                    "{failure} (bucket {} needs Object Lock enabled)",
                    self.bucket
                ))
            }
            other => other,
        }
    }

    /// The object's URL without a query, as object_store addresses it.
    async fn url_of(&self, key: &Path) -> Result<url::Url, StorageError> {
        let mut url = self
            .store
            .signed_url(http::Method::PUT, key, std::time::Duration::from_secs(60))
            .await?;
        url.set_query(None);
        Ok(url)
    }

    /// Signs with the store's credentials and sends; returns the answer's body.
    async fn send_signed(
        &self,
        method: http::Method,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: Bytes,
        what: &str,
    ) -> Result<String, StorageError> {
        let payload_sha256 = Sha256::digest(&body);
        let mut request = client::request(method, url, headers)?;
        *request.body_mut() = body.into();
        let credential = self.store.credentials().get_credential().await?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, Some(payload_sha256.as_slice()))?;
        let answer = client::send(&self.client, &request, what).await?;
        if answer.contains("<Error>") {
            return Err(StorageError::Request(format!("{what}: {answer}")));
        }
        Ok(answer)
    }
}
