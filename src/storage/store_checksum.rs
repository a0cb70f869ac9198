//! `verify --fast`: what the store itself says about an object, from one HEAD and without
//! reading its bytes, judged against the manifest.

use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::azure::BlobProperties;
use super::backend::Finisher;
use super::s3::{ObjectChecksum, StoreSha256};
use super::verify::Status;
use super::{Archive, ObjectDigest, StorageError};

/// One HEAD's worth of facts about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFacts {
    S3(ObjectChecksum),
    Azure(BlobProperties),
    /// A local folder keeps no checksum: the size is all there is without reading the file.
    Local {
        bytes: u64,
    },
}

impl Archive {
    /// HEADs `key` for its size and the store's own checksum; `None` when absent.
    pub async fn store_facts(&self, key: &Path) -> Result<Option<StoreFacts>, StorageError> {
        Ok(match self.finisher.as_ref() {
            Finisher::S3(s3) => s3.checksum(key).await?.map(StoreFacts::S3),
            Finisher::Azure(azure) => azure.properties(key).await?.map(StoreFacts::Azure),
            Finisher::Local(_) => match self.store.head(key).await {
                Ok(meta) => Some(StoreFacts::Local { bytes: meta.size }),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(err) => return Err(err.into()),
            },
        })
    }

    /// What `verify --fast` compares on this backend, for its output.
    pub fn fast_check_scope(&self) -> &'static str {
        match self.finisher.as_ref() {
            Finisher::S3(_) => {
                "size and S3's own whole-object SHA-256 checksum (and the sha256 metadata) against the manifest, one HEAD per object, nothing downloaded"
            }
            Finisher::Azure(_) => {
                "size and the sha256 metadata against the manifest, and that Content-MD5 is set, one HEAD per object, nothing downloaded"
            }
            Finisher::Local(_) => {
                "size only (a local folder keeps no checksum of its own; full verify re-reads the bytes)"
            }
        }
    }
}

/// Judges what the store says against what the manifest recorded.
pub fn judge(expected: &ObjectDigest, facts: &StoreFacts) -> Status {
    let bytes = match facts {
        StoreFacts::S3(found) => found.bytes,
        StoreFacts::Azure(found) => found.bytes,
        StoreFacts::Local { bytes } => *bytes,
    };
    if bytes != expected.bytes {
        return Status::Mismatch(format!(
            "{bytes} bytes, the manifest says {}",
            expected.bytes
        ));
    }
    let metadata = match facts {
        StoreFacts::S3(found) => found.metadata_sha256.as_deref(),
        StoreFacts::Azure(found) => found.sha256.as_deref(),
        StoreFacts::Local { .. } => None,
    };
    if let Some(stamped) = metadata
        && stamped != expected.sha256
    {
        return Status::Mismatch(format!(
            "its sha256 metadata says {stamped}, the manifest says {}",
            expected.sha256
        ));
    }
    match facts {
        StoreFacts::S3(found) => match &found.sha256 {
            StoreSha256::Whole(sha256) if *sha256 == expected.sha256 => Status::Ok,
            StoreSha256::Whole(sha256) => Status::Mismatch(format!(
                "S3's checksum is sha256 {sha256}, the manifest says {}",
                expected.sha256
            )),
            StoreSha256::Composite(value) => Status::Unchecked(format!(
                "no whole-object checksum: S3 has only the parts' composite checksum {value} (a multipart object over 5 GiB); run full verify"
            )),
            StoreSha256::Absent => Status::Unchecked(
                "no whole-object checksum: S3 keeps no SHA-256 checksum for it; run full verify"
                    .into(),
            ),
            StoreSha256::Unreadable(value) => Status::Unchecked(format!(
                "no whole-object checksum: S3 reports an unreadable SHA-256 checksum {value:?}"
            )),
        },
        StoreFacts::Azure(found) => match (&found.sha256, &found.content_md5) {
            (None, _) => {
                Status::Unchecked("no sha256 metadata on the blob; run full verify".into())
            }
            (Some(_), None) => Status::Unchecked(
                "no Content-MD5 on the blob, so Azure's own tools cannot check it".into(),
            ),
            (Some(_), Some(_)) => Status::Ok,
        },
        StoreFacts::Local { .. } => Status::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn expected() -> ObjectDigest {
        ObjectDigest {
            key: "call/rec/chunk-0000.wav".into(),
            bytes: 3,
            sha256: SHA.into(),
        }
    }

    fn s3(bytes: u64, sha256: StoreSha256, metadata: Option<&str>) -> StoreFacts {
        StoreFacts::S3(ObjectChecksum {
            bytes,
            sha256,
            metadata_sha256: metadata.map(str::to_owned),
        })
    }

    #[test]
    fn an_s3_object_is_ok_only_with_a_matching_whole_object_checksum() {
        let whole = || StoreSha256::Whole(SHA.into());
        assert_eq!(judge(&expected(), &s3(3, whole(), Some(SHA))), Status::Ok);
        assert!(
            matches!(judge(&expected(), &s3(4, whole(), Some(SHA))), Status::Mismatch(m) if m.contains("4 bytes"))
        );
        let other = StoreSha256::Whole("00".repeat(32));
        assert!(
            matches!(judge(&expected(), &s3(3, other, Some(SHA))), Status::Mismatch(m) if m.contains("S3's checksum"))
        );
        assert!(
            matches!(judge(&expected(), &s3(3, whole(), Some(&"11".repeat(32)))), Status::Mismatch(m) if m.contains("metadata"))
        );
        let composite = StoreSha256::Composite("abc=-3".into());
        assert!(
            matches!(judge(&expected(), &s3(3, composite, Some(SHA))), Status::Unchecked(m) if m.contains("no whole-object checksum"))
        );
        assert!(matches!(
            judge(&expected(), &s3(3, StoreSha256::Absent, None)),
            Status::Unchecked(_)
        ));
    }

    #[test]
    fn an_azure_blob_needs_matching_sha256_metadata_and_a_content_md5() {
        let blob = |sha256: Option<&str>, md5: Option<&str>| {
            StoreFacts::Azure(BlobProperties {
                bytes: 3,
                sha256: sha256.map(str::to_owned),
                content_md5: md5.map(str::to_owned),
            })
        };
        assert_eq!(
            judge(&expected(), &blob(Some(SHA), Some("kAFQ=="))),
            Status::Ok
        );
        assert!(
            matches!(judge(&expected(), &blob(Some(SHA), None)), Status::Unchecked(m) if m.contains("Content-MD5"))
        );
        assert!(matches!(
            judge(&expected(), &blob(None, Some("kAFQ=="))),
            Status::Unchecked(_)
        ));
        assert!(matches!(
            judge(&expected(), &blob(Some(&"22".repeat(32)), Some("kAFQ=="))),
            Status::Mismatch(_)
        ));
    }

    #[test]
    fn a_local_file_is_judged_by_its_size_alone() {
        assert_eq!(
            judge(&expected(), &StoreFacts::Local { bytes: 3 }),
            Status::Ok
        );
        assert!(matches!(
            judge(&expected(), &StoreFacts::Local { bytes: 2 }),
            Status::Mismatch(_)
        ));
    }
}
