//! The progress record beside a partial export (`FILE.tar.progress`): the index the export
//! was planned with and where each entry written so far ends. Replaced atomically after every
//! entry, so a killed export leaves a record that is true of the partial file up to its last
//! offset; what lies beyond was being written and is cut off when the export resumes.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ExportError;
use super::index::Index;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub index: Index,
    /// End offset in the partial file of each entry written and synced, in tar order.
    pub written: Vec<u64>,
}

/// The files of one export: the finished tar, the tar being written, and its record.
#[derive(Debug, Clone)]
pub struct ExportPaths {
    pub out: PathBuf,
    pub partial: PathBuf,
    pub record: PathBuf,
}

impl ExportPaths {
    pub fn new(out: &Path) -> Self {
        let with = |suffix: &str| {
            let mut name = out.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            out: out.to_owned(),
            partial: with(".partial"),
            record: with(".progress"),
        }
    }
}

impl ProgressRecord {
    /// The record at `path`, or None when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, ExportError> {
        let body = match std::fs::read(path) {
            Ok(body) => body,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(ExportError::io(path, err)),
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|err| ExportError::UnreadableRecord {
                path: path.to_owned(),
                detail: err.to_string(),
            })
    }

    /// Writes the record durably: a temporary file, synced, renamed over the old record.
    pub fn save(&self, path: &Path) -> Result<(), ExportError> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let body = serde_json::to_vec(self).expect("the record serialises");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temporary)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)?;
            sync_folder_of(path)
        };
        write().map_err(|err| ExportError::io(path, err))
    }
}

/// Makes a rename or removal in `path`'s folder durable.
pub fn sync_folder_of(path: &Path) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()
}
