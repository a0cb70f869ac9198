//! One HEAD of an object with `x-amz-checksum-mode: ENABLED`, which object_store's `head`
//! does not send: S3 then reports the object's own checksum (for `verify --fast`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use object_store::aws::AwsAuthorizer;
use object_store::path::Path;
use object_store::signer::Signer;

use super::S3Finisher;
use crate::storage::StorageError;
use crate::storage::client;
use crate::storage::options::SHA256_METADATA;

/// The SHA-256 checksum S3 keeps for an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSha256 {
    /// Of the whole object, lowercase hex: comparable with the manifest.
    Whole(String),
    /// A checksum of the parts' checksums (`…-N`, N parts): not the object's SHA-256.
    Composite(String),
    /// None: the object was written without a SHA-256 checksum.
    Absent,
    /// A value that is not base64 of 32 bytes.
    Unreadable(String),
}

impl StoreSha256 {
    /// Reads `x-amz-checksum-sha256` (base64 of the digest; a composite one ends in `-N`).
    pub fn parse(header: Option<&str>) -> Self {
        let Some(value) = header else {
            return Self::Absent;
        };
        if value.rsplit_once('-').is_some_and(|(_, parts)| {
            !parts.is_empty() && parts.bytes().all(|b| b.is_ascii_digit())
        }) {
            return Self::Composite(value.to_owned());
        }
        match BASE64.decode(value) {
            Ok(digest) if digest.len() == 32 => Self::Whole(hex::encode(digest)),
            _ => Self::Unreadable(value.to_owned()),
        }
    }
}

/// What one checksum HEAD says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChecksum {
    pub bytes: u64,
    pub sha256: StoreSha256,
    /// `x-amz-meta-sha256`, lowercase, which the same HEAD reports.
    pub metadata_sha256: Option<String>,
}

impl S3Finisher {
    /// HEADs `key` asking for its checksum; `None` when there is no object.
    pub async fn checksum(&self, key: &Path) -> Result<Option<ObjectChecksum>, StorageError> {
        let mut url = self
            .store
            .signed_url(http::Method::HEAD, key, Duration::from_secs(60))
            .await?;
        url.set_query(None);
        let mut request = client::request(
            http::Method::HEAD,
            &url,
            &[("x-amz-checksum-mode", "ENABLED")],
        )?;
        let credential = self.store.credentials().get_credential().await?;
        AwsAuthorizer::new(&credential, "s3", &self.region).try_authorize(&mut request, None)?;
        let Some(answer) =
            client::send_for_headers(&self.client, &request, "reading the object's checksum")
                .await?
        else {
            return Ok(None);
        };
        let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok());
        let bytes = header("content-length")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| {
                StorageError::Request(format!("the HEAD of {key} has no readable Content-Length"))
            })?;
        Ok(Some(ObjectChecksum {
            bytes,
            sha256: StoreSha256::parse(header("x-amz-checksum-sha256")),
            metadata_sha256: header(&format!("x-amz-meta-{SHA256_METADATA}"))
                .map(str::to_ascii_lowercase),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_composite_absent_and_unreadable_checksums() {
        // sha256("abc")
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let base64 = BASE64.encode(hex::decode(hex).unwrap());
        assert_eq!(
            StoreSha256::parse(Some(&base64)),
            StoreSha256::Whole(hex.into())
        );
        let composite = format!("{base64}-3");
        assert_eq!(
            StoreSha256::parse(Some(&composite)),
            StoreSha256::Composite(composite.clone())
        );
        assert_eq!(StoreSha256::parse(None), StoreSha256::Absent);
        assert!(matches!(
            StoreSha256::parse(Some("not base64!")),
            StoreSha256::Unreadable(_)
        ));
        // base64 of 16 bytes: an MD5 is not a SHA-256.
        assert!(matches!(
            StoreSha256::parse(Some("1B2M2Y8AsgTpgAmY7PhCfg==")),
            StoreSha256::Unreadable(_)
        ));
    }
}
