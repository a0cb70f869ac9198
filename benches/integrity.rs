//! The two costs of the store's own checksums, each printed as a ratio of medians:
//!
//! - `integrity verify [RECORDINGS]` (default 500) archives that many one-chunk recordings
//!   (media and metadata document: 2 objects each, plus the manifest) into the configured
//!   storage (`CALLVAULT__STORAGE__*`, `AWS_*`), then times `verify` full (every object read
//!   back and hashed) against `verify --fast` (one HEAD per object) over all of them, the
//!   way `callvault verify` walks them (one recording after another), in interleaved rounds.
//! - `integrity hashing [BYTES]` (default 1 GiB) hashes BYTES in 64 KiB pieces (a download's
//!   read) with sha256 alone, sha256 with the writer's `ContentMd5` (MD5 on a blocking
//!   thread, as the writer does for an Azure multipart blob), and sha256 with MD5 on the same
//!   thread, in interleaved rounds. No store is involved: this is the writer's hashing only.
//! - `integrity azure-stream [BYTES]` (default 1 GiB) streams one chunk of BYTES through the
//!   writer into Azure with `storage.content_md5` on and off: the whole cost of MD5 on a
//!   multipart blob, where the store's speed hides what the hashing thread does in parallel.
//!
//! `CALLVAULT_BENCH_ROUNDS` (default 3) sets the rounds, `CALLVAULT_BENCH_MEDIA_BYTES` (default 16 KiB)
//! the seeded media objects of `verify`. `benches/integrity.sh` runs all three.

use std::time::{Duration, Instant};

use bytes::Bytes;
use callvault::config::Settings;
use callvault::storage::manifest::{Manifest, ManifestChunk, SCHEMA};
use callvault::storage::verify::{Depth, Summary, verify_recording_to};
use callvault::storage::{Archive, ContentMd5};
use futures_util::{StreamExt, TryStreamExt};
use md5::{Digest as _, Md5};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use sha2::{Digest as _, Sha256};

/// Size of each seeded media object, unless `CALLVAULT_BENCH_MEDIA_BYTES` says otherwise.
const MEDIA_BYTES: usize = 16 * 1024;
const PIECE: usize = 64 * 1024;
/// The writer's default part size, which bounds how far MD5 may lag behind.
const LAG: usize = 16 * 1024 * 1024;

fn media_bytes() -> usize {
    std::env::var("CALLVAULT_BENCH_MEDIA_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MEDIA_BYTES)
}

fn rounds() -> usize {
    std::env::var("CALLVAULT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo test --all-targets` runs bench binaries too, without `--bench`: nothing to do then.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let number = args.get(1).and_then(|n| n.parse().ok());
    match args.first().map(String::as_str) {
        Some("verify") => verify(number.unwrap_or(500)).await,
        Some("hashing") => hashing(number.unwrap_or(1024 * 1024 * 1024)).await,
        Some("azure-stream") => azure_stream(number.unwrap_or(1024 * 1024 * 1024)).await,
        other => Err(format!("unknown mode {other:?}: verify, hashing or azure-stream").into()),
    }
}

async fn verify(recordings: usize) -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::load(None, &[])?;
    let archive = Archive::open(&settings.storage_settings()?).await?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let seeding = Instant::now();
    let manifests: Vec<Path> = futures_util::stream::iter(0..recordings)
        .map(|n| seed(&archive, &run, n))
        .buffer_unordered(16)
        .try_collect()
        .await?;
    println!(
        "seeded {recordings} recordings ({} objects checked by verify, media of {} bytes) in {} in {:.1} s",
        recordings * 2,
        media_bytes(),
        archive.description(),
        seeding.elapsed().as_secs_f64()
    );
    let (mut full, mut fast) = (Vec::new(), Vec::new());
    for round in 0..rounds() {
        for depth in [Depth::Full, Depth::Fast] {
            let started = Instant::now();
            let mut summary = Summary::default();
            for manifest in &manifests {
                for check in verify_recording_to(&archive, manifest, depth).await? {
                    summary.add(&check);
                }
            }
            let took = started.elapsed();
            println!(
                "round {round} {depth:?}: {:.2} s ({} ok, {} mismatched, {} missing, {} unchecked)",
                took.as_secs_f64(),
                summary.ok,
                summary.mismatched,
                summary.missing,
                summary.unchecked
            );
            match depth {
                Depth::Full => full.push(took),
                Depth::Fast => fast.push(took),
            }
        }
    }
    let (full, fast) = (median(full), median(fast));
    println!(
        "verify of {} objects: full median {:.2} s, fast median {:.2} s: fast takes {:.2}x the time of full ({:.1}x faster)",
        recordings * 2,
        full.as_secs_f64(),
        fast.as_secs_f64(),
        fast.as_secs_f64() / full.as_secs_f64(),
        full.as_secs_f64() / fast.as_secs_f64()
    );
    Ok(())
}

/// One recording: a small media object, its metadata document and the manifest.
async fn seed(archive: &Archive, run: &str, n: usize) -> Result<Path, Box<dyn std::error::Error>> {
    let layout = archive.layout(&format!("bench-{run}"), &format!("rec-{n}"));
    let mut writer = archive.writer(&layout.media(0, "wav")).await?;
    writer
        .write(Bytes::from(vec![(n % 251) as u8; media_bytes()]))
        .await?;
    let media = writer.finish().await?;
    let metadata = archive
        .put_bytes_once(
            &layout.metadata(0),
            Bytes::from(format!("{{\"chunk\":0,\"recording\":{n}}}")),
        )
        .await?;
    let manifest = Manifest {
        schema: SCHEMA.to_owned(),
        call_id: format!("bench-{run}"),
        recording_id: Some(format!("rec-{n}")),
        server_call_id: None,
        recording_start_time: None,
        recording_duration_ms: None,
        content_type: None,
        channel_type: None,
        format: None,
        session_end_reason: None,
        participants: vec![],
        pause_resume_intervals: None,
        chunks: vec![ManifestChunk {
            index: 0,
            document_id: format!("doc-{n}"),
            end_reason: Some("SessionEnded".into()),
            media,
            metadata,
            start_time: None,
            duration_ms: None,
            archived_at: "2026-12-02T00:00:00Z".into(),
        }],
        event_ids: vec![],
        archived_at: "2026-12-02T00:00:00Z".into(),
    };
    archive
        .put_bytes(
            &layout.manifest(),
            Bytes::from(serde_json::to_vec(&manifest)?),
        )
        .await?;
    Ok(layout.manifest())
}

/// The three ways of hashing a stream.
#[derive(Debug, Clone, Copy)]
enum Hashing {
    Sha256,
    Sha256AndContentMd5,
    Sha256AndMd5SameThread,
}

async fn hashing(total: usize) -> Result<(), Box<dyn std::error::Error>> {
    // One buffer sliced into pieces: cheap clones, as the writer hands MD5 the same Bytes.
    let block = Bytes::from((0..LAG).map(|i| (i * 131 % 251) as u8).collect::<Vec<_>>());
    let pieces: Vec<Bytes> = (0..total / PIECE)
        .map(|i| {
            let start = (i * PIECE) % LAG;
            block.slice(start..start + PIECE)
        })
        .collect();
    let kinds = [
        Hashing::Sha256,
        Hashing::Sha256AndContentMd5,
        Hashing::Sha256AndMd5SameThread,
    ];
    let mut samples = vec![Vec::new(); kinds.len()];
    for round in 0..rounds() {
        for (kind, times) in kinds.iter().zip(samples.iter_mut()) {
            let started = Instant::now();
            hash(*kind, &pieces).await?;
            let took = started.elapsed();
            println!("round {round} {kind:?}: {:.3} s", took.as_secs_f64());
            times.push(took);
        }
    }
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    let base = medians[0].as_secs_f64();
    let mib = (pieces.len() * PIECE) as f64 / (1024.0 * 1024.0);
    for (kind, took) in kinds.iter().zip(&medians) {
        println!(
            "{kind:?}: median {:.3} s ({:.0} MiB/s), {:.2}x sha256 alone",
            took.as_secs_f64(),
            mib / took.as_secs_f64(),
            took.as_secs_f64() / base
        );
    }
    Ok(())
}

async fn hash(kind: Hashing, pieces: &[Bytes]) -> Result<(), Box<dyn std::error::Error>> {
    let mut sha256 = Sha256::new();
    match kind {
        Hashing::Sha256 => pieces.iter().for_each(|piece| sha256.update(piece)),
        Hashing::Sha256AndContentMd5 => {
            let mut md5 = ContentMd5::start(LAG);
            for piece in pieces {
                sha256.update(piece);
                md5.update(piece.clone()).await?;
            }
            std::hint::black_box(md5.finish().await?);
        }
        Hashing::Sha256AndMd5SameThread => {
            let mut md5 = Md5::new();
            for piece in pieces {
                sha256.update(piece);
                md5.update(piece);
            }
            std::hint::black_box(md5.finalize());
        }
    }
    std::hint::black_box(sha256.finalize());
    Ok(())
}

/// One chunk of `total` bytes streamed through the archive's writer into Azure (the store of
/// `CALLVAULT__STORAGE__*`), as a download feeds it: 64 KiB pieces. Interleaved rounds with
/// `storage.content_md5` on and off, each object deleted after its round.
async fn azure_stream(total: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = Settings::load(None, &[])?;
    create_azurite_container(&settings.storage.endpoint, &settings.storage.container).await?;
    settings.storage.content_md5 = true;
    let with_md5 = Archive::open(&settings.storage_settings()?).await?;
    settings.storage.content_md5 = false;
    let without_md5 = Archive::open(&settings.storage_settings()?).await?;
    let block = Bytes::from((0..LAG).map(|i| (i * 131 % 251) as u8).collect::<Vec<_>>());
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds() {
        for (md5, archive) in [(true, &with_md5), (false, &without_md5)] {
            let key = Path::from(format!("bench-{run}/stream-{round}-{md5}.wav"));
            let started = Instant::now();
            let mut writer = archive.writer(&key).await?;
            for i in 0..total / PIECE {
                let start = (i * PIECE) % LAG;
                writer.write(block.slice(start..start + PIECE)).await?;
            }
            writer.finish().await?;
            let took = started.elapsed();
            archive.store().delete(&key).await?;
            println!(
                "round {round} content_md5 = {md5}: {:.2} s",
                took.as_secs_f64()
            );
            if md5 { on.push(took) } else { off.push(took) }
        }
    }
    let (on, off) = (median(on), median(off));
    let mib = (total / PIECE * PIECE) as f64 / (1024.0 * 1024.0);
    println!(
        "{mib:.0} MiB into {}: with Content-MD5 median {:.2} s ({:.0} MiB/s), without {:.2} s ({:.0} MiB/s): {:.3}x",
        with_md5.description(),
        on.as_secs_f64(),
        mib / on.as_secs_f64(),
        off.as_secs_f64(),
        mib / off.as_secs_f64(),
        on.as_secs_f64() / off.as_secs_f64()
    );
    Ok(())
}

/// Azurite's development account key, published in its documentation (not a secret).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates `container` on the Azurite at `endpoint` (`…/devstoreaccount1`), Shared Key signed.
async fn create_azurite_container(
    endpoint: &str,
    container: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
    let url = format!("{endpoint}/{container}?restype=container");
    let mut request = http::Request::builder()
        .method(http::Method::PUT)
        .uri(&url)
        .body(Vec::<u8>::new().into())?;
    let credential = AzureCredential::AccessKey(AzureAccessKey::try_new(AZURITE_KEY)?);
    AzureAuthorizer::new(&credential, "devstoreaccount1").try_authorize(&mut request)?;
    let answer = reqwest::Client::new()
        .put(&url)
        .headers(request.headers().clone())
        .send()
        .await?;
    if !answer.status().is_success() {
        return Err(format!("creating container {container}: {}", answer.status()).into());
    }
    Ok(())
}
