//! `callvault verify`: re-read archived recordings and check sizes and sha256 against their
//! manifests.

use callvault::queue::{Db, recordings};
use callvault::storage::Archive;
use callvault::storage::layout::object_key;
use callvault::storage::verify::{Depth, Summary, verify_recording_to};

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
    /// One HEAD per object instead of reading it back: size and the store's own checksum
    /// (S3's SHA-256, Azure's sha256 metadata and Content-MD5; a local folder: size only).
    #[arg(long)]
    fast: bool,
}

pub async fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let settings = load_settings(&args.config)?;
    let storage = settings.storage_settings()?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(CliError::runtime)?;
    let archive = Archive::open(&storage).await.map_err(CliError::runtime)?;
    let manifests = manifest_keys(&db, args.recording).await?;
    let depth = if args.fast { Depth::Fast } else { Depth::Full };
    match depth {
        Depth::Full => {
            println!("mode: full: every object read back, size and sha256 against the manifest")
        }
        Depth::Fast => println!("mode: fast: {}", archive.fast_check_scope()),
    }

    let mut summary = Summary::default();
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
    }
    println!(
        "verified {} recording(s) in {}: {} ok, {} mismatched, {} missing",
        manifests.len(),
        archive.description(),
        summary.ok,
        summary.mismatched,
        summary.missing
    );
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
