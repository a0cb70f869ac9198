//! `callvault verify`: re-read archived recordings and check sizes and sha256 against their
//! manifests.

use callvault::audit::Actor;
use callvault::queue::integrity::record_failed_verification;
use callvault::queue::now_millis;
use callvault::queue::outbox::VerifyFailure;
use callvault::queue::{Db, recordings};
use callvault::storage::Archive;
use callvault::storage::completeness::{Verdict, assess_archived};
use callvault::storage::layout::object_key;
use callvault::storage::signature::PublicKey;
use callvault::storage::verify::{Depth, Status, Summary, verify_recording_to};
use callvault::worker::verifier::{failed_objects, record_failure};

use super::verify_signatures::{self, SignatureAudit};
use super::{CliError, ConfigArgs, load_settings};

/// Recordings fetched from the database per page.
const PAGE: i64 = 200;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only this recording (its database id, as `callvault recordings list` shows).
    #[arg(long, value_name = "ID")]
    recording: Option<i64>,
    /// Verify offline with this Ed25519 public key (base64) and the store alone, no database:
    /// every manifest under the prefix, its signature, its objects and the hash chain.
    #[arg(long, value_name = "KEY", conflicts_with = "recording")]
    public_key: Option<PublicKey>,
    /// One HEAD per object instead of reading it back: size and the store's own checksum
    /// (S3's SHA-256, Azure's sha256 metadata and Content-MD5; a local folder: size only).
    #[arg(long)]
    fast: bool,
}

pub async fn verify(args: VerifyArgs) -> Result<(), CliError> {
    if let Some(trusted) = args.public_key {
        return verify_signatures::verify_offline(&args.config, trusted).await;
    }
    let settings = load_settings(&args.config)?;
    let storage = settings.storage_settings()?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(CliError::runtime)?;
    db.migrate().await.map_err(CliError::runtime)?;
    // A failure found here is announced like one the scheduled verifier finds.
    let db = db.with_event_routes(callvault::events::routes(&settings.events));
    let archive = Archive::open(&storage).await.map_err(CliError::runtime)?;
    let manifests = manifest_keys(&db, args.recording).await?;
    // With signing configured, every manifest's signature and the chain are checked too.
    let mut audit = archive
        .manifest_signer()
        .map(|signer| SignatureAudit::new(signer.public_key()));
    let depth = if args.fast { Depth::Fast } else { Depth::Full };
    match depth {
        Depth::Full => {
            println!("mode: full: every object read back, size and sha256 against the manifest")
        }
        Depth::Fast => println!("mode: fast: {}", archive.fast_check_scope()),
    }

    let mut summary = Summary::default();
    let (mut short, tolerance_ms) = (0usize, settings.verify.duration_tolerance_ms);
    for (recording, manifest_key) in &manifests {
        let checks = verify_recording_to(&archive, &object_key(manifest_key), depth)
            .await
            .map_err(|err| {
                CliError::Runtime(format!("cannot verify recording {recording}: {err}"))
            })?;
        for check in &checks {
            println!("{check}");
            summary.add(check);
        }
        let found: Vec<String> = checks
            .iter()
            .filter(|check| matches!(check.status, Status::Mismatch(_) | Status::Missing))
            .map(ToString::to_string)
            .collect();
        if !found.is_empty() {
            let detail = callvault::worker::verifier::bounded(found.join("; "));
            let failed = failed_objects(&checks);
            let failure = VerifyFailure {
                manifest_key,
                verified_by: "cli",
                depth: if args.fast { "fast" } else { "full" },
                objects: &failed,
            };
            // Kept with the recording and announced, as the scheduled verifier does.
            if let Err(err) =
                record_failed_verification(&db, *recording, Some(&detail), &failure, now_millis())
                    .await
            {
                eprintln!("callvault: the failure could not be recorded with the recording: {err}");
            }
            if let Err(err) =
                record_failure(&db, &Actor::cli(), *recording, manifest_key, Some(&detail)).await
            {
                eprintln!("callvault: the failure could not be recorded in the audit trail: {err}");
            }
            // Chained before the command ends, so the trail shows it at once.
            if let Err(err) = callvault::audit::chain_pending(&db).await {
                eprintln!("callvault: the audit inbox could not be chained: {err}");
            }
        }
        short +=
            usize::from(report_duration(&archive, recording, manifest_key, tolerance_ms).await?);
        if let Some(audit) = &mut audit {
            audit.check(&archive, &object_key(manifest_key)).await?;
        }
    }
    let signature_failures = match audit {
        // The whole chain is checked only when every manifest was read.
        Some(mut audit) if args.recording.is_none() => {
            let recorded = verify_signatures::recorded_links(&db).await?;
            audit.check_recorded_keys(&archive, &recorded).await?;
            audit.finish(Some(&recorded))
        }
        // One recording's manifest says nothing about the chain: its signature only.
        Some(audit) => audit.signature_failures(),
        None => 0,
    };
    println!(
        "verified {} recording(s) in {}: {} ok, {} mismatched, {} missing",
        manifests.len(),
        archive.description(),
        summary.ok,
        summary.mismatched,
        summary.missing
    );
    if short > 0 {
        println!(
            "{short} recording(s) fall short of their announced duration by more than {tolerance_ms} ms"
        );
        if summary.all_ok() {
            return Err(CliError::Runtime(format!(
                "{short} recording(s) may be missing a chunk; see the SHORT lines above"
            )));
        }
    }
    if signature_failures > 0 {
        return verify_signatures::outcome(&summary, signature_failures);
    }
    if summary.unchecked > 0 {
        println!(
            "{} object(s) have nothing a fast check can compare; run verify without --fast",
            summary.unchecked
        );
    }
    if summary.unchecked > 0 && summary.mismatched == 0 && summary.missing == 0 {
        return Err(CliError::Runtime(format!(
            "{} object(s) could not be checked without reading them; see the lines above",
            summary.unchecked
        )));
    }
    if summary.all_ok() {
        Ok(())
    } else {
        Err(CliError::Runtime(format!(
            "{} object(s) do not match their manifest and {} are missing; see the lines above",
            summary.mismatched, summary.missing
        )))
    }
}

/// (recording id, manifest key) of one recording or of every recording with a manifest.
async fn manifest_keys(db: &Db, only: Option<i64>) -> Result<Vec<(i64, String)>, CliError> {
    if let Some(id) = only {
        let recording = recordings::get(db, id)
            .await
            .map_err(CliError::runtime)?
            .ok_or_else(|| CliError::Runtime(format!("recording {id} does not exist")))?;
        let key = recording.manifest_key.ok_or_else(|| {
            CliError::Runtime(format!(
                "recording {id} has no manifest yet: it is not completely archived"
            ))
        })?;
        return Ok(vec![(id, key)]);
    }
    let mut keys = Vec::new();
    let mut before = None;
    loop {
        let page = recordings::list(db, PAGE, before)
            .await
            .map_err(CliError::runtime)?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        keys.extend(
            page.into_iter()
                .filter_map(|recording| Some((recording.id, recording.manifest_key?))),
        );
    }
    keys.reverse();
    Ok(keys)
}

/// Prints the duration check of one manifest when it is not plainly complete; true when the
/// recording is short.
async fn report_duration(
    archive: &Archive,
    recording: &i64,
    manifest_key: &str,
    tolerance_ms: u64,
) -> Result<bool, CliError> {
    let found = assess_archived(archive, &object_key(manifest_key), tolerance_ms)
        .await
        .map_err(|err| {
            CliError::Runtime(format!(
                "cannot read recording {recording}'s manifest: {err}"
            ))
        })?;
    match found {
        Some(found) if found.verdict == Verdict::Short => {
            println!("SHORT     {manifest_key}: {found}");
            Ok(true)
        }
        Some(found) if found.verdict == Verdict::Unknown => {
            println!("unchecked {manifest_key}: {found}");
            Ok(false)
        }
        _ => Ok(false),
    }
}
