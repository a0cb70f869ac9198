//! The signature and hash-chain part of `callvault verify`: each manifest's signature against
//! the trusted public key, and the chain, from the database's record or, offline
//! (`--public-key`), from the manifests in the store alone.

use callvault::queue::{Db, manifest_chain};
use callvault::storage::chain::{self, RecordedLink, StoredLink};
use callvault::storage::layout::object_key;
use callvault::storage::signature::{self, PublicKey, Verdict};
use callvault::storage::verify::{Summary, verify_recording};
use callvault::storage::{Archive, StorageError};
use object_store::path::Path;

use super::{CliError, ConfigArgs, load_settings};

/// Verdicts and chain links gathered while the manifests are read.
pub struct SignatureAudit {
    trusted: PublicKey,
    stored: Vec<StoredLink>,
    /// Keys whose signature was checked.
    checked: Vec<String>,
    failures: usize,
}

impl SignatureAudit {
    pub fn new(trusted: PublicKey) -> Self {
        Self {
            trusted,
            stored: Vec::new(),
            checked: Vec::new(),
            failures: 0,
        }
    }

    /// Checks the signature of the manifest at `key` and prints its verdict. A manifest that
    /// is not there is left to the object check, which reports it MISSING.
    pub async fn check(&mut self, archive: &Archive, key: &Path) -> Result<(), CliError> {
        self.checked.push(key.to_string());
        let bytes = match archive.read(key).await {
            Ok(bytes) => bytes,
            Err(StorageError::Store(object_store::Error::NotFound { .. })) => return Ok(()),
            Err(err) => return Err(CliError::Runtime(format!("cannot read {key}: {err}"))),
        };
        let checked = signature::check(&bytes, &self.trusted);
        match &checked.verdict {
            Verdict::SignedOk => println!("signed ok          {key}"),
            Verdict::Invalid(reason) => {
                self.failures += 1;
                println!("SIGNATURE INVALID  {key}: {reason}");
            }
            Verdict::Unsigned => {
                self.failures += 1;
                println!("UNSIGNED           {key}");
            }
        }
        if let Some(signature) = checked.signature {
            self.stored.push(StoredLink {
                key: key.to_string(),
                sha256: checked.sha256,
                previous: signature.previous_manifest_sha256,
                earlier_versions: signature.earlier_versions,
            });
        }
        Ok(())
    }

    /// Checks the manifests of recorded links that were not read yet (a recording whose
    /// manifest was written while this run listed the recordings), so the comparison with the
    /// record sees every key the chain names.
    pub async fn check_recorded_keys(
        &mut self,
        archive: &Archive,
        recorded: &[RecordedLink],
    ) -> Result<(), CliError> {
        let mut unread: Vec<&str> = recorded
            .iter()
            .map(|link| link.key.as_str())
            .filter(|key| !self.checked.iter().any(|checked| checked == key))
            .collect();
        unread.sort_unstable();
        unread.dedup();
        for key in unread {
            self.check(archive, &object_key(key)).await?;
        }
        Ok(())
    }

    /// How many manifests were unsigned or failed their signature check so far.
    pub fn signature_failures(&self) -> usize {
        self.failures
    }

    /// Walks the chain (and compares it with the database's record, when given), prints what
    /// it found, and returns how many signatures and links failed.
    pub fn finish(self, recorded: Option<&[RecordedLink]>) -> usize {
        let mut problems = recorded
            .map(|recorded| chain::compare_with_record(recorded, &self.stored))
            .unwrap_or_default();
        let report = chain::walk(&self.stored);
        problems.extend(report.problems);
        for problem in &problems {
            println!("{problem}");
        }
        println!(
            "chain: {} link(s) walked from the first manifest, head sha256 {}",
            report.walked,
            report.head.as_deref().unwrap_or("none")
        );
        if let Some(head) = recorded.and_then(|recorded| recorded.last()) {
            println!(
                "chain: the database's head is link #{} sha256 {}",
                head.id, head.sha256
            );
        }
        self.failures + problems.len()
    }
}

/// The links the database recorded, in order.
pub async fn recorded_links(db: &Db) -> Result<Vec<RecordedLink>, CliError> {
    Ok(manifest_chain::links(db)
        .await
        .map_err(CliError::runtime)?
        .into_iter()
        .map(|link| RecordedLink {
            id: link.id,
            key: link.manifest_key,
            sha256: link.sha256,
            previous: link.previous_sha256,
        })
        .collect())
}

/// `callvault verify --public-key KEY`: every manifest under the prefix, its objects and its
/// signature, and the chain they form, with the store and the key alone (no database).
pub async fn verify_offline(config: &ConfigArgs, trusted: PublicKey) -> Result<(), CliError> {
    let settings = load_settings(config)?;
    let storage = settings.storage_settings()?;
    let archive = Archive::open(&storage).await.map_err(CliError::runtime)?;
    let keys = chain::manifest_keys(&archive)
        .await
        .map_err(|err| CliError::Runtime(format!("cannot list the manifests: {err}")))?;
    let mut audit = SignatureAudit::new(trusted);
    let mut summary = Summary::default();
    for key in &keys {
        let checks = verify_recording(&archive, key)
            .await
            .map_err(|err| CliError::Runtime(format!("cannot verify {key}: {err}")))?;
        for check in &checks {
            println!("{check}");
            summary.add(check);
        }
        audit.check(&archive, key).await?;
    }
    let failures = audit.finish(None);
    println!(
        "verified {} manifest(s) in {} with public key {trusted}: {} object(s) ok, {} mismatched, {} missing; {failures} signature or chain failure(s)",
        keys.len(),
        archive.description(),
        summary.ok,
        summary.mismatched,
        summary.missing
    );
    outcome(&summary, failures)
}

/// Exit status of a run: a failure when any object or signature or link failed.
pub fn outcome(summary: &Summary, signature_failures: usize) -> Result<(), CliError> {
    if summary.all_ok() && signature_failures == 0 {
        return Ok(());
    }
    Err(CliError::Runtime(format!(
        "{} object(s) do not match their manifest, {} are missing, and {signature_failures} signature or chain check(s) failed; see the lines above",
        summary.mismatched, summary.missing
    )))
}
