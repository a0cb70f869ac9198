//! The tar's entries in the order they are written: `index.json`, every recording's files,
//! then `SHA256SUMS`. Derived from the index alone, so a resumed export lists the same.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::index::Index;

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An archived object, streamed from the store.
    Object { key: String },
    /// A file the export itself makes (`index.json`, `SHA256SUMS`).
    Made(Bytes),
}

/// One file of the tar, with the size and sha256 its bytes must have.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    pub source: Source,
}

impl Entry {
    fn made(path: &str, body: Vec<u8>) -> Self {
        Self {
            path: path.to_owned(),
            bytes: body.len() as u64,
            sha256: hex::encode(Sha256::digest(&body)),
            source: Source::Made(Bytes::from(body)),
        }
    }
}

pub const INDEX_PATH: &str = "index.json";
pub const SUMS_PATH: &str = "SHA256SUMS";

/// Every entry of the export `index` describes.
pub fn entries(index: &Index) -> Vec<Entry> {
    let mut body = serde_json::to_vec_pretty(index).expect("the index serialises");
    body.push(b'\n');
    let mut entries = vec![Entry::made(INDEX_PATH, body)];
    for recording in &index.recordings {
        for file in &recording.files {
            entries.push(Entry {
                path: file.path.clone(),
                bytes: file.bytes,
                sha256: file.sha256.clone(),
                source: Source::Object {
                    key: file.key.clone(),
                },
            });
        }
    }
    let sums = sha256sums(&entries);
    entries.push(Entry::made(SUMS_PATH, sums.into_bytes()));
    entries
}

/// `sha256sum -c` input: one `HASH  PATH` line per file (two spaces: text mode, as
/// `sha256sum` itself writes). Paths are sanitised key segments, so none needs escaping.
fn sha256sums(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|entry| format!("{}  {}\n", entry.sha256, entry.path))
        .collect()
}
