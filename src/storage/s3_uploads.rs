//! S3 ListMultipartUploads (`GET /?uploads&prefix=`), which object_store has no method for:
//! one signed request per page of at most 1,000 uploads. The answer is read as hostile input:
//! each page is bounded in bytes, the pages in number, and every field is checked.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AwsAuthorizer};
use object_store::path::Path;
use object_store::signer::Signer;
use serde::Deserialize;

use super::StorageError;
use super::client;
use super::uploads::IncompleteUpload;

/// A page of 1,000 uploads with 1 KiB keys is about 1.5 MiB.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// A million incomplete uploads is far past anything a working archive leaves.
const MAX_PAGES: usize = 1000;
/// S3 keys are at most 1,024 bytes; upload ids are opaque but a few hundred at most.
const MAX_FIELD_BYTES: usize = 1024;

/// What listing needs of the S3 client.
pub(super) struct S3Uploads<'a> {
    pub store: &'a Arc<AmazonS3>,
    pub region: &'a str,
    pub client: &'a reqwest::Client,
}

impl S3Uploads<'_> {
    /// Every incomplete upload whose key starts with `prefix`, in the store's order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<IncompleteUpload>, StorageError> {
        // The bucket's URL (path or virtual-hosted style) is a presigned URL without its query.
        let mut bucket = self
            .store
            .signed_url(http::Method::GET, &Path::from(""), Duration::from_secs(60))
            .await?;
        bucket.set_query(None);
        let mut uploads = Vec::new();
        let mut marker: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            let mut url = bucket.clone();
            url.set_query(Some(&page_query(prefix, marker.as_ref())));
            let page = parse_page(&self.get(&url).await?)?;
            uploads.extend(page.uploads);
            match page.next {
                None => return Ok(uploads),
                Some(next) if marker.as_ref() == Some(&next) => {
                    return Err(StorageError::Request(format!(
                        "ListMultipartUploads repeated its page marker {:?}; stopped",
                        next.0
                    )));
                }
                next => marker = next,
            }
        }
        Err(StorageError::Request(format!(
            "ListMultipartUploads returned more than {MAX_PAGES} pages; stopped"
        )))
    }

    /// One signed GET, its answer read up to [`MAX_PAGE_BYTES`].
    async fn get(&self, url: &url::Url) -> Result<String, StorageError> {
        let mut request = client::request(http::Method::GET, url, &[])?;
        let credential = self.store.credentials().get_credential().await?;
        AwsAuthorizer::new(&credential, "s3", self.region).try_authorize(&mut request, None)?;
        let failed = |err: reqwest::Error| {
            StorageError::Request(format!("listing incomplete uploads: {}", err.without_url()))
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
                    "a ListMultipartUploads page is larger than {MAX_PAGE_BYTES} bytes; refused"
                )));
            }
            body.extend_from_slice(&piece);
        }
        let body = String::from_utf8(body).map_err(|_| {
            StorageError::Request("a ListMultipartUploads answer is not UTF-8".into())
        })?;
        if !status.is_success() {
            let first: String = body.chars().take(300).collect();
            return Err(StorageError::Request(format!(
                "listing incomplete uploads: {status}: {first}"
            )));
        }
        Ok(body)
    }
}

/// `uploads&prefix=…[&key-marker=…&upload-id-marker=…]`.
fn page_query(prefix: &str, marker: Option<&(String, String)>) -> String {
    listing_query("uploads", "upload-id-marker", prefix, marker)
}

/// The query of one page of an S3 listing sub-resource (`uploads`, `versions`): `resource`,
/// then `prefix` and the (key, id) marker of the page before, every value percent-encoded as
/// SigV4 canonicalises it, so what is signed is what is sent.
pub(crate) fn listing_query(
    resource: &str,
    id_marker: &str,
    prefix: &str,
    marker: Option<&(String, String)>,
) -> String {
    let mut query = String::from(resource);
    let mut pair = |name: &str, value: &str| {
        query.push('&');
        query.push_str(name);
        query.push('=');
        query.push_str(&strict_encode(value));
    };
    if !prefix.is_empty() {
        pair("prefix", prefix);
    }
    if let Some((key, id)) = marker {
        pair("key-marker", key);
        pair(id_marker, id);
    }
    query
}

/// RFC 3986 unreserved characters as they are, every other byte as `%XX`.
pub(crate) fn strict_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResult {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<UploadEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadEntry {
    key: String,
    upload_id: String,
    initiated: String,
}

/// One page: its uploads and, when truncated, the markers of the next.
#[derive(Debug)]
struct Page {
    uploads: Vec<IncompleteUpload>,
    next: Option<(String, String)>,
}

fn parse_page(body: &str) -> Result<Page, StorageError> {
    let invalid = |what: String| StorageError::Request(format!("ListMultipartUploads: {what}"));
    let result: ListResult = quick_xml::de::from_str(body)
        .map_err(|err| invalid(format!("unreadable answer: {err}")))?;
    let mut uploads = Vec::with_capacity(result.uploads.len());
    for entry in result.uploads {
        if entry.key.is_empty() || entry.key.len() > MAX_FIELD_BYTES {
            return Err(invalid(format!(
                "a key of {} bytes (1 to {MAX_FIELD_BYTES} allowed)",
                entry.key.len()
            )));
        }
        if entry.upload_id.is_empty()
            || entry.upload_id.len() > MAX_FIELD_BYTES
            || entry.upload_id.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "an unusable upload id for key {:?}",
                entry.key
            )));
        }
        let initiated = chrono::DateTime::parse_from_rfc3339(entry.initiated.trim())
            .map_err(|err| {
                invalid(format!(
                    "upload {} has an unreadable Initiated time {:?}: {err}",
                    entry.upload_id, entry.initiated
                ))
            })?
            .to_utc();
        uploads.push(IncompleteUpload {
            key: entry.key,
            upload_id: entry.upload_id,
            initiated,
        });
    }
    let next = if result.is_truncated {
        let key = result.next_key_marker.unwrap_or_default();
        let upload_id = result.next_upload_id_marker.unwrap_or_default();
        if key.is_empty() && upload_id.is_empty() {
            return Err(invalid("truncated without a next marker".into()));
        }
        if key.len() > MAX_FIELD_BYTES || upload_id.len() > MAX_FIELD_BYTES {
            return Err(invalid("a next marker longer than 1,024 bytes".into()));
        }
        Some((key, upload_id))
    } else {
        None
    };
    Ok(Page { uploads, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>calls/b/chunk-0001.mp4</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>calls/a/chunk-0000.mp4</Key><UploadId>id-1</UploadId>
    <Initiator><ID>x</ID></Initiator><StorageClass>STANDARD</StorageClass>
    <Initiated>2026-12-01T10:00:00.000Z</Initiated></Upload>
  <Upload><Key>calls/b/chunk-0001.mp4</Key><UploadId>id-2</UploadId>
    <Initiated>2026-12-02T11:30:00Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;

    #[test]
    fn reads_a_page_its_uploads_and_the_next_marker() {
        let page = parse_page(PAGE).unwrap();
        let found: Vec<_> = page
            .uploads
            .iter()
            .map(|u| {
                (
                    u.key.as_str(),
                    u.upload_id.as_str(),
                    u.initiated.to_rfc3339(),
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "calls/a/chunk-0000.mp4",
                    "id-1",
                    "2026-12-01T10:00:00+00:00".to_owned()
                ),
                (
                    "calls/b/chunk-0001.mp4",
                    "id-2",
                    "2026-12-02T11:30:00+00:00".to_owned()
                ),
            ]
        );
        assert_eq!(
            page.next,
            Some(("calls/b/chunk-0001.mp4".into(), "id-2".into()))
        );
    }

    #[test]
    fn an_empty_listing_has_no_uploads_and_no_next_page() {
        let page = parse_page(
            "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert!(page.uploads.is_empty());
        assert!(page.next.is_none());
    }

    #[test]
    fn hostile_answers_are_refused_with_the_reason() {
        let cases = [
            ("not xml at all <", "unreadable answer"),
            (
                "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>i</UploadId><Initiated>yesterday</Initiated></Upload></ListMultipartUploadsResult>",
                "unreadable Initiated time",
            ),
            (
                "<ListMultipartUploadsResult><Upload><Key></Key><UploadId>i</UploadId><Initiated>2026-01-01T00:00:00Z</Initiated></Upload></ListMultipartUploadsResult>",
                "a key of 0 bytes",
            ),
            (
                "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>i</UploadId></Upload></ListMultipartUploadsResult>",
                "unreadable answer",
            ),
            (
                "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated></ListMultipartUploadsResult>",
                "truncated without a next marker",
            ),
        ];
        for (body, reason) in cases {
            let err = parse_page(body).unwrap_err().to_string();
            assert!(err.contains(reason), "{body}: {err}");
        }
        let long_key = format!(
            "<ListMultipartUploadsResult><Upload><Key>{}</Key><UploadId>i</UploadId><Initiated>2026-01-01T00:00:00Z</Initiated></Upload></ListMultipartUploadsResult>",
            "k".repeat(MAX_FIELD_BYTES + 1)
        );
        assert!(
            parse_page(&long_key)
                .unwrap_err()
                .to_string()
                .contains("a key of 1025 bytes")
        );
    }

    #[test]
    fn the_query_is_encoded_as_sigv4_signs_it() {
        assert_eq!(page_query("", None), "uploads");
        assert_eq!(
            page_query("rec+a=b/", Some(&("rec+a=b/x y".into(), "id/1".into()))),
            "uploads&prefix=rec%2Ba%3Db%2F&key-marker=rec%2Ba%3Db%2Fx%20y&upload-id-marker=id%2F1"
        );
    }
}
