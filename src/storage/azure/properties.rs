//! A blob's system properties: reading them with one HEAD (for `verify --fast`), and setting
//! the Content-MD5 of a committed block list, which the service computes only for Put Blob.

use object_store::azure::AzureAuthorizer;
use object_store::path::Path;

use super::AzureFinisher;
use crate::storage::StorageError;
use crate::storage::client::{self, Answer};
use crate::storage::options::SHA256_METADATA;

/// The x-ms-blob-content-* properties Set Blob Properties clears when it is not given them,
/// each with the response header that reports it.
const KEPT_PROPERTIES: &[(&str, &str)] = &[
    ("x-ms-blob-content-type", "content-type"),
    ("x-ms-blob-content-encoding", "content-encoding"),
    ("x-ms-blob-content-language", "content-language"),
    ("x-ms-blob-content-disposition", "content-disposition"),
    ("x-ms-blob-cache-control", "cache-control"),
];

/// What one HEAD of a blob says about its integrity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobProperties {
    pub bytes: u64,
    /// `x-ms-meta-sha256`, lowercase.
    pub sha256: Option<String>,
    /// `Content-MD5`, base64 as the service reports it.
    pub content_md5: Option<String>,
}

impl AzureFinisher {
    /// Sets `Content-MD5` on the committed blob, keeping its other content properties;
    /// `e_tag` guards against a concurrent replacement. Returns the blob's new ETag.
    pub async fn set_content_md5(
        &self,
        key: &Path,
        md5_base64: &str,
        e_tag: Option<&str>,
    ) -> Result<Option<String>, StorageError> {
        let guard: Vec<(&str, &str)> = e_tag.map(|e_tag| ("If-Match", e_tag)).into_iter().collect();
        let current = self
            .signed(
                http::Method::HEAD,
                key,
                None,
                &guard,
                "reading the blob's properties",
            )
            .await?
            .ok_or_else(|| {
                StorageError::Request(format!("{key} vanished before its Content-MD5 was set"))
            })?;
        let mut headers = guard.clone();
        headers.push(("x-ms-blob-content-md5", md5_base64));
        for (property, reported) in KEPT_PROPERTIES {
            if let Some(value) = header(&current, reported) {
                headers.push((property, value));
            }
        }
        let answer = self
            .signed(
                http::Method::PUT,
                key,
                Some("properties"),
                &headers,
                "setting the Content-MD5",
            )
            .await?
            .ok_or_else(|| {
                StorageError::Request(format!("{key} vanished before its Content-MD5 was set"))
            })?;
        Ok(header(&answer, "etag").map(str::to_owned))
    }

    /// One HEAD: size, sha256 metadata and Content-MD5; `None` when there is no blob.
    pub async fn properties(&self, key: &Path) -> Result<Option<BlobProperties>, StorageError> {
        let Some(answer) = self
            .signed(
                http::Method::HEAD,
                key,
                None,
                &[],
                "reading the blob's properties",
            )
            .await?
        else {
            return Ok(None);
        };
        let bytes = header(&answer, "content-length")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| {
                StorageError::Request(format!("the HEAD of {key} has no readable Content-Length"))
            })?;
        Ok(Some(BlobProperties {
            bytes,
            sha256: header(&answer, &format!("x-ms-meta-{SHA256_METADATA}"))
                .map(str::to_ascii_lowercase),
            content_md5: header(&answer, "content-md5").map(str::to_owned),
        }))
    }

    async fn signed(
        &self,
        method: http::Method,
        key: &Path,
        comp: Option<&str>,
        headers: &[(&str, &str)],
        what: &str,
    ) -> Result<Option<Answer>, StorageError> {
        let mut url = self.blob_url(key);
        if let Some(comp) = comp {
            url.query_pairs_mut().append_pair("comp", comp);
        }
        let mut request = client::request(method, &url, headers)?;
        let credential = self.store.credentials().get_credential().await?;
        AzureAuthorizer::new(&credential, &self.account).try_authorize(&mut request)?;
        client::send_for_headers(&self.client, &request, what).await
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}
