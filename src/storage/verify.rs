//! Re-reading an archived recording and checking every object against its manifest.

use std::fmt;

use object_store::path::Path;

use super::manifest::{Manifest, ObjectDigest};
use super::{Archive, StorageError};

/// What was found at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Size and sha256 match the manifest.
    Ok,
    /// The object is there with other content; the text says what differs.
    Mismatch(String),
    /// Nothing at the key.
    Missing,
    /// There, with the right size, but the store holds nothing a fast check can compare
    /// with the manifest (e.g. no whole-object checksum); the text says what is lacking.
    Unchecked(String),
}

/// How deep a verification goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Depth {
    /// Every object is read back and hashed.
    #[default]
    Full,
    /// One HEAD per object: size and the store's own checksum, nothing downloaded (see
    /// `store_checksum`).
    Fast,
}

/// One object's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCheck {
    pub key: String,
    pub status: Status,
    /// What the manifest recorded of it (None for the manifest itself).
    pub expected: Option<ObjectDigest>,
    /// What the store holds, when the object was read back in full.
    pub found: Option<ObjectDigest>,
}

impl fmt::Display for ObjectCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            Status::Ok => write!(f, "ok        {}", self.key),
            Status::Mismatch(detail) => write!(f, "MISMATCH  {}: {detail}", self.key),
            Status::Missing => write!(f, "MISSING   {}", self.key),
            Status::Unchecked(detail) => write!(f, "UNCHECKED {}: {detail}", self.key),
        }
    }
}

/// Reads `manifest_key`, then streams back each chunk's media and metadata and compares size
/// and sha256 with the manifest (and with the object's own sha256 metadata, when it has one).
pub async fn verify_recording(
    archive: &Archive,
    manifest_key: &Path,
) -> Result<Vec<ObjectCheck>, StorageError> {
    verify_recording_to(archive, manifest_key, Depth::Full).await
}

/// Like `verify_recording`, to the given depth (the manifest itself is always read).
pub async fn verify_recording_to(
    archive: &Archive,
    manifest_key: &Path,
    depth: Depth,
) -> Result<Vec<ObjectCheck>, StorageError> {
    let manifest_check = |status| {
        vec![ObjectCheck {
            key: manifest_key.to_string(),
            status,
            expected: None,
            found: None,
        }]
    };
    let body = match archive.read(manifest_key).await {
        Ok(body) => body,
        Err(StorageError::Store(object_store::Error::NotFound { .. })) => {
            return Ok(manifest_check(Status::Missing));
        }
        Err(err) => return Err(err),
    };
    let manifest: Manifest = match serde_json::from_slice(&body) {
        Ok(manifest) => manifest,
        Err(err) => {
            return Ok(manifest_check(Status::Mismatch(format!(
                "not a readable manifest: {err}"
            ))));
        }
    };
    let mut checks = Vec::with_capacity(manifest.chunks.len() * 2);
    for chunk in &manifest.chunks {
        for expected in [&chunk.media, &chunk.metadata] {
            checks.push(match depth {
                Depth::Full => verify_object(archive, expected).await?,
                Depth::Fast => verify_object_fast(archive, expected).await?,
            });
        }
    }
    Ok(checks)
}

/// Streams one object back and compares it with what the manifest recorded.
pub async fn verify_object(
    archive: &Archive,
    expected: &ObjectDigest,
) -> Result<ObjectCheck, StorageError> {
    let key = super::layout::object_key(&expected.key);
    let check = |status, found: Option<&ObjectDigest>| ObjectCheck {
        key: expected.key.clone(),
        status,
        expected: Some(expected.clone()),
        found: found.cloned(),
    };
    let Some(found) = archive.digest_of(&key).await? else {
        return Ok(check(Status::Missing, None));
    };
    if found.bytes != expected.bytes {
        return Ok(check(
            Status::Mismatch(format!(
                "{} bytes, the manifest says {}",
                found.bytes, expected.bytes
            )),
            Some(&found),
        ));
    }
    if found.sha256 != expected.sha256 {
        return Ok(check(
            Status::Mismatch(format!(
                "sha256 {}, the manifest says {}",
                found.sha256, expected.sha256
            )),
            Some(&found),
        ));
    }
    if !archive.keeps_metadata() {
        return Ok(check(Status::Ok, Some(&found)));
    }
    if let Some(stamped) = archive.existing_digest(&key).await?
        && stamped.sha256 != expected.sha256
    {
        return Ok(check(
            Status::Mismatch(format!(
                "its sha256 metadata says {}, the manifest and the bytes say {}",
                stamped.sha256, expected.sha256
            )),
            Some(&found),
        ));
    }
    Ok(check(Status::Ok, Some(&found)))
}

/// Compares one object's size and the store's own checksum with the manifest, with one HEAD.
pub async fn verify_object_fast(
    archive: &Archive,
    expected: &ObjectDigest,
) -> Result<ObjectCheck, StorageError> {
    let key = super::layout::object_key(&expected.key);
    let status = match archive.store_facts(&key).await? {
        None => Status::Missing,
        Some(facts) => super::store_checksum::judge(expected, &facts),
    };
    Ok(ObjectCheck {
        key: expected.key.clone(),
        status,
        expected: Some(expected.clone()),
        found: None,
    })
}

/// Counts of a verification run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub ok: usize,
    pub mismatched: usize,
    pub missing: usize,
    /// Found, but not checkable by a fast verification.
    pub unchecked: usize,
}

impl Summary {
    /// Adds one verdict.
    pub fn add(&mut self, check: &ObjectCheck) {
        match check.status {
            Status::Ok => self.ok += 1,
            Status::Mismatch(_) => self.mismatched += 1,
            Status::Missing => self.missing += 1,
            Status::Unchecked(_) => self.unchecked += 1,
        }
    }

    /// True when every object was found intact.
    pub fn all_ok(&self) -> bool {
        self.mismatched == 0 && self.missing == 0 && self.unchecked == 0
    }
}
