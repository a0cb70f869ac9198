//! Every version of the objects under a prefix, deleted: on a versioned bucket (Object Lock
//! needs one) a plain DELETE only adds a delete marker and keeps the bytes, so an erasure lists
//! the versions (`GET /?versions&prefix=`) and deletes each by its id. The answer is read as
//! hostile input: pages bounded in bytes and number, fields in length.

use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AwsAuthorizer;
use object_store::path::Path;
use object_store::signer::Signer;
use serde::Deserialize;

use super::S3Finisher;
use crate::storage::StorageError;
use crate::storage::client;

/// A page of 1,000 versions with 1 KiB keys is about 1.5 MiB.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// One recording's folder holds a few dozen objects and a manifest rewritten a few times.
const MAX_PAGES: usize = 100;
/// S3 keys are at most 1,024 bytes; version ids are opaque but short.
const MAX_FIELD_BYTES: usize = 1024;

/// One version (or delete marker) of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    pub version_id: String,
}

impl S3Finisher {
    /// Deletes every version and delete marker of every key below `prefix` but `keep`, and
    /// returns how many it deleted. An unversioned bucket lists each object once with the
    /// version id `null`, which S3 accepts.
    pub async fn delete_versions(&self, prefix: &str, keep: &Path) -> Result<usize, StorageError> {
        let versions = self.list_versions(prefix).await?;
        let mut deleted = 0;
        for version in versions.iter().filter(|v| v.key != keep.as_ref()) {
            let mut url = self.object_url(&object_key_of(&version.key)).await?;
            url.set_query(Some(&format!(
                "versionId={}",
                crate::storage::s3_uploads::strict_encode(&version.version_id)
            )));
            let what = format!("deleting version {} of {}", version.version_id, version.key);
            self.send_signed_delete(&url, &what).await?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Every version and delete marker below `prefix`, in the store's order.
    pub async fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>, StorageError> {
        let mut bucket = self
            .store
            .signed_url(http::Method::GET, &Path::from(""), Duration::from_secs(60))
            .await?;
        bucket.set_query(None);
        let mut versions = Vec::new();
        let mut marker: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            let mut url = bucket.clone();
            url.set_query(Some(&page_query(prefix, marker.as_ref())));
            let page = parse_page(&self.get_listing(&url).await?)?;
            versions.extend(page.versions);
            match page.next {
                None => return Ok(versions),
                Some(next) if marker.as_ref() == Some(&next) => {
                    return Err(StorageError::Request(format!(
                        "ListObjectVersions repeated its page marker {:?}; stopped",
                        next.0
                    )));
                }
                next => marker = next,
            }
        }
        Err(StorageError::Request(format!(
            "ListObjectVersions returned more than {MAX_PAGES} pages under {prefix}; stopped"
        )))
    }

    async fn object_url(&self, key: &Path) -> Result<url::Url, StorageError> {
        let mut url = self
            .store
            .signed_url(http::Method::DELETE, key, Duration::from_secs(60))
            .await?;
        url.set_query(None);
        Ok(url)
    }

    async fn send_signed_delete(&self, url: &url::Url, what: &str) -> Result<(), StorageError> {
        let mut request = client::request(http::Method::DELETE, url, &[])?;
        let credential = self.store.credentials().get_credential().await?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, Some(&sha2_empty()))?;
        *request.body_mut() = Bytes::new().into();
        client::send(&self.client, &request, what).await?;
        Ok(())
    }

    /// One signed GET, its answer read up to [`MAX_PAGE_BYTES`].
    async fn get_listing(&self, url: &url::Url) -> Result<String, StorageError> {
        let mut request = client::request(http::Method::GET, url, &[])?;
        let credential = self.store.credentials().get_credential().await?;
        AwsAuthorizer::new(&credential, "s3", &self.region).try_authorize(&mut request, None)?;
        let failed = |err: reqwest::Error| {
            StorageError::Request(format!("listing object versions: {}", err.without_url()))
        };
        let mut response = self
            .client
            .get(url.as_str())
            .headers(request.headers().clone())
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(piece) = response.chunk().await.map_err(failed)? {
            if body.len() + piece.len() > MAX_PAGE_BYTES {
                return Err(StorageError::Request(format!(
                    "a ListObjectVersions page is larger than {MAX_PAGE_BYTES} bytes; refused"
                )));
            }
            body.extend_from_slice(&piece);
        }
        let body = String::from_utf8(body).map_err(|_| {
            StorageError::Request("a ListObjectVersions answer is not UTF-8".into())
        })?;
        if !status.is_success() {
            let first: String = body.chars().take(300).collect();
            return Err(StorageError::Request(format!(
                "listing object versions: {status}: {first}"
            )));
        }
        Ok(body)
    }
}

/// The sha256 of an empty body, which a signed DELETE carries.
fn sha2_empty() -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest([]).into()
}

fn object_key_of(key: &str) -> Path {
    crate::storage::layout::object_key(key)
}

/// `versions&prefix=…[&key-marker=…&version-id-marker=…]`.
fn page_query(prefix: &str, marker: Option<&(String, String)>) -> String {
    crate::storage::s3_uploads::listing_query("versions", "version-id-marker", prefix, marker)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResult {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_version_id_marker: Option<String>,
    #[serde(default, rename = "Version")]
    versions: Vec<Entry>,
    #[serde(default, rename = "DeleteMarker")]
    delete_markers: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    key: String,
    version_id: String,
}

/// One page: its versions and delete markers and, when truncated, the markers of the next.
#[derive(Debug)]
struct Page {
    versions: Vec<ObjectVersion>,
    next: Option<(String, String)>,
}

fn parse_page(body: &str) -> Result<Page, StorageError> {
    let invalid = |what: String| StorageError::Request(format!("ListObjectVersions: {what}"));
    let result: ListResult = quick_xml::de::from_str(body)
        .map_err(|err| invalid(format!("unreadable answer: {err}")))?;
    let mut versions = Vec::new();
    for entry in result.versions.into_iter().chain(result.delete_markers) {
        if entry.key.is_empty() || entry.key.len() > MAX_FIELD_BYTES {
            return Err(invalid(format!(
                "a key of {} bytes (1 to {MAX_FIELD_BYTES} allowed)",
                entry.key.len()
            )));
        }
        if entry.version_id.is_empty()
            || entry.version_id.len() > MAX_FIELD_BYTES
            || entry.version_id.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "an unusable version id for key {:?}",
                entry.key
            )));
        }
        versions.push(ObjectVersion {
            key: entry.key,
            version_id: entry.version_id,
        });
    }
    let next = if result.is_truncated {
        let key = result.next_key_marker.unwrap_or_default();
        let version_id = result.next_version_id_marker.unwrap_or_default();
        if key.is_empty() && version_id.is_empty() {
            return Err(invalid("truncated without a next marker".into()));
        }
        if key.len() > MAX_FIELD_BYTES || version_id.len() > MAX_FIELD_BYTES {
            return Err(invalid("a next marker longer than 1,024 bytes".into()));
        }
        Some((key, version_id))
    } else {
        None
    };
    Ok(Page { versions, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>c/r/</Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>
  <NextKeyMarker>c/r/manifest.json</NextKeyMarker><NextVersionIdMarker>v3</NextVersionIdMarker>
  <MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>
  <Version><Key>c/r/chunk-0000.mp3</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest>
    <Size>10</Size></Version>
  <DeleteMarker><Key>c/r/manifest.json</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest></DeleteMarker>
  <Version><Key>c/r/manifest.json</Key><VersionId>v3</VersionId><IsLatest>false</IsLatest></Version>
</ListVersionsResult>"#;

    #[test]
    fn reads_versions_and_delete_markers_in_any_order_and_the_next_marker() {
        let page = parse_page(PAGE).unwrap();
        let mut found: Vec<_> = page
            .versions
            .iter()
            .map(|v| (v.key.as_str(), v.version_id.as_str()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("c/r/chunk-0000.mp3", "v1"),
                ("c/r/manifest.json", "v2"),
                ("c/r/manifest.json", "v3")
            ]
        );
        assert_eq!(
            page.next,
            Some(("c/r/manifest.json".to_owned(), "v3".to_owned()))
        );
    }

    #[test]
    fn refuses_a_truncated_page_without_a_marker_and_unusable_fields() {
        let truncated =
            r#"<ListVersionsResult><IsTruncated>true</IsTruncated></ListVersionsResult>"#;
        assert!(parse_page(truncated).is_err());
        let empty_id = r#"<ListVersionsResult><Version><Key>k</Key><VersionId></VersionId></Version></ListVersionsResult>"#;
        assert!(parse_page(empty_id).is_err());
        let last = r#"<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>"#;
        let page = parse_page(last).unwrap();
        assert!(page.versions.is_empty() && page.next.is_none());
    }

    #[test]
    fn markers_are_percent_encoded_as_signed() {
        assert_eq!(
            page_query("c/r a/", Some(&("c/k".into(), "v+1".into()))),
            "versions&prefix=c%2Fr%20a%2F&key-marker=c%2Fk&version-id-marker=v%2B1"
        );
    }
}
