//! Writing a signed manifest as the next link of the hash chain.

use bytes::Bytes;
use object_store::path::Path;
use sha2::{Digest, Sha256};

use super::manifest::ManifestError;
use crate::queue::manifest_chain::{self, NewLink};
use crate::queue::{Db, now_millis};
use crate::storage::Archive;
use crate::storage::manifest::Manifest;
use crate::storage::signature::{ChainPosition, EarlierVersion, ManifestSigner};

/// Signs `manifest` as the successor of the chain's head and writes it at `key`, holding the
/// chain's turn from reading the head until the link is recorded, so no other writer can
/// name the same predecessor. The link is recorded only after the put succeeded: a failed
/// put leaves the chain as it was (and the store keeps the manifest it had at `key`). Should
/// the database fail after the put, the store holds a manifest that no link records; the
/// manifest sweep writes that recording's manifest again as a new link, and until then
/// `callvault verify` reports the stored manifest as not the one the chain recorded.
/// Answers the sha256 of the bytes written.
pub async fn write(
    db: &Db,
    archive: &Archive,
    signer: &ManifestSigner,
    recording_id: i64,
    key: &Path,
    manifest: &Manifest,
) -> Result<String, ManifestError> {
    let mut turn = manifest_chain::take_turn(db).await?;
    let written = sign_and_put(&mut turn, archive, signer, key, manifest).await;
    let (sha256, previous) = match written {
        Ok(written) => written,
        Err(err) => {
            turn.give_up().await;
            return Err(err);
        }
    };
    turn.append(NewLink {
        sha256: &sha256,
        manifest_key: key.as_ref(),
        recording_id,
        previous_sha256: previous.as_deref(),
        written_at: now_millis(),
    })
    .await?;
    tracing::debug!(recording = recording_id, key = %key, sha256 = %sha256, "signed manifest chained");
    Ok(sha256)
}

/// Within the turn: signs `manifest` as the head's successor and puts it at `key`. Returns
/// the sha256 of the bytes written and the predecessor they name.
async fn sign_and_put(
    turn: &mut manifest_chain::ChainTurn<'_>,
    archive: &Archive,
    signer: &ManifestSigner,
    key: &Path,
    manifest: &Manifest,
) -> Result<(String, Option<String>), ManifestError> {
    let previous = turn.head().await?;
    let earlier_versions = turn
        .links_at(key.as_ref())
        .await?
        .into_iter()
        .map(|link| EarlierVersion {
            sha256: link.sha256,
            previous_manifest_sha256: link.previous_sha256,
        })
        .collect();
    let body = signer.sign(
        manifest,
        ChainPosition {
            previous: previous.clone(),
            earlier_versions,
        },
    );
    let sha256 = hex::encode(Sha256::digest(&body));
    archive.put_bytes(key, Bytes::from(body)).await?;
    Ok((sha256, previous))
}
