//! Writing the tar, on a blocking thread: each entry's bytes are streamed from the store
//! through a reader that hashes them and holds them to the size and sha256 the index
//! expects, so a changed object stops the export at that object and never reaches the tar
//! unnoticed. Memory stays at one read buffer and one store chunk, whatever the sizes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::ExportError;
use super::entries::{Entry, Source};
use super::progress::Progress;
use super::record::{ExportPaths, ProgressRecord, sync_folder_of};
use crate::storage::StorageError;
use crate::storage::layout::object_key;

/// What the blocking writer needs.
pub struct Writing {
    pub handle: tokio::runtime::Handle,
    pub store: Arc<dyn ObjectStore>,
    pub paths: ExportPaths,
    pub record: ProgressRecord,
    pub entries: Vec<Entry>,
    pub progress: Arc<dyn Progress>,
    /// The modification time every entry carries (the export's planning time), so that a
    /// resumed tar is the same as an uninterrupted one.
    pub mtime: u64,
}

/// Entries found intact from an earlier run and kept, and entries written by this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub kept: usize,
    pub written: usize,
}

pub fn write(job: Writing) -> Result<Written, ExportError> {
    let Writing {
        handle,
        store,
        paths,
        mut record,
        entries,
        progress,
        mtime,
    } = job;
    let partial_error = |err| ExportError::io(&paths.partial, err);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&paths.partial)
        .map_err(partial_error)?;
    let kept = intact_prefix(&mut file, &entries, &record.written);
    if kept < record.written.len() {
        tracing::warn!(
            partial = %paths.partial.display(),
            kept,
            recorded = record.written.len(),
            "the partial export differs from its progress record after entry {kept}; writing again from there"
        );
        record.written.truncate(kept);
        record.save(&paths.record)?;
    }
    let offset = record.written.last().copied().unwrap_or(0);
    file.set_len(offset).map_err(partial_error)?;
    file.seek(SeekFrom::Start(offset)).map_err(partial_error)?;
    let total_bytes = entries.iter().map(|entry| entry.bytes).sum();
    let kept_bytes = entries[..kept].iter().map(|entry| entry.bytes).sum();
    progress.begin(entries.len() as u64, total_bytes, kept as u64, kept_bytes);

    let mut builder = tar::Builder::new(Closable { file, open: true });
    for entry in &entries[kept..] {
        if let Err(err) = append(
            &mut builder,
            entry,
            &handle,
            store.as_ref(),
            &*progress,
            mtime,
        ) {
            // Nothing more reaches the partial file: the tar builder's drop would write an end marker.
            builder.get_mut().open = false;
            return Err(err.unwrap_or_else(|err| ExportError::io(&paths.partial, err)));
        }
        let file = &mut builder.get_mut().file;
        let end = file
            .sync_data()
            .and_then(|()| file.stream_position())
            .map_err(partial_error)?;
        record.written.push(end);
        record.save(&paths.record)?;
        progress.file_done(&entry.path);
    }
    let finished = builder
        .into_inner()
        .and_then(|closable| closable.file.sync_all());
    finished.map_err(partial_error)?;
    std::fs::rename(&paths.partial, &paths.out).map_err(|err| ExportError::io(&paths.out, err))?;
    std::fs::remove_file(&paths.record).map_err(|err| ExportError::io(&paths.record, err))?;
    sync_folder_of(&paths.out).map_err(|err| ExportError::io(&paths.out, err))?;
    Ok(Written {
        kept,
        written: entries.len() - kept,
    })
}

/// Appends one entry. `Err(Ok(fault))` is the object's fault (missing, unreadable, not as
/// its manifest says), `Err(Err(io))` a failed write to the partial file.
fn append(
    builder: &mut tar::Builder<Closable>,
    entry: &Entry,
    handle: &tokio::runtime::Handle,
    store: &dyn ObjectStore,
    progress: &dyn Progress,
    mtime: u64,
) -> Result<(), Result<ExportError, io::Error>> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(entry.bytes);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    match &entry.source {
        Source::Made(body) => {
            let mut reader =
                Checked::new(io::Cursor::new(body.clone()), entry, &entry.path, progress);
            let appended = builder.append_data(&mut header, &entry.path, &mut reader);
            appended.map_err(|err| reader.fault.take().ok_or(err))
        }
        Source::Object { key } => {
            let got = handle
                .block_on(store.get(&object_key(key)))
                .map_err(|err| {
                    Ok(match err {
                        object_store::Error::NotFound { .. } => {
                            ExportError::Missing { key: key.clone() }
                        }
                        other => ExportError::Storage(StorageError::Store(other)),
                    })
                })?;
            let stream = got.into_stream().map_err(io::Error::other);
            let bridge = SyncIoBridge::new_with_handle(StreamReader::new(stream), handle.clone());
            let mut reader = Checked::new(bridge, entry, key, progress);
            let appended = builder.append_data(&mut header, &entry.path, &mut reader);
            appended.map_err(|err| reader.fault.take().ok_or(err))
        }
    }
}

/// A reader that hashes what passes and fails when the bytes are not the expected ones.
struct Checked<'a, R> {
    inner: R,
    entry: &'a Entry,
    /// The object key (or the made file's path), for messages.
    name: &'a str,
    hasher: Sha256,
    seen: u64,
    ended: bool,
    /// Why reading failed, when it was the object's fault rather than the tar's.
    fault: Option<ExportError>,
    progress: &'a dyn Progress,
}

impl<'a, R: Read> Checked<'a, R> {
    fn new(inner: R, entry: &'a Entry, name: &'a str, progress: &'a dyn Progress) -> Self {
        Self {
            inner,
            entry,
            name,
            hasher: Sha256::new(),
            seen: 0,
            ended: false,
            fault: None,
            progress,
        }
    }

    fn mismatch(&mut self, detail: String) -> io::Error {
        let fault = ExportError::Mismatch {
            key: self.name.to_owned(),
            detail,
        };
        let err = io::Error::new(io::ErrorKind::InvalidData, fault.to_string());
        self.fault = Some(fault);
        err
    }

    fn at_end(&mut self) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        self.ended = true;
        if self.seen != self.entry.bytes {
            let detail = format!(
                "{} bytes were read, the manifest records {}",
                self.seen, self.entry.bytes
            );
            return Err(self.mismatch(detail));
        }
        let sha256 = hex::encode(self.hasher.finalize_reset());
        if sha256 != self.entry.sha256 {
            let detail = format!(
                "its sha256 is {sha256}, the manifest records {}",
                self.entry.sha256
            );
            return Err(self.mismatch(detail));
        }
        Ok(0)
    }
}

impl<R: Read> Read for Checked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.progress.stopped() {
            self.fault = Some(ExportError::Stopped);
            return Err(io::Error::other("the export was asked to stop"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(err) => {
                self.fault = Some(ExportError::Read {
                    key: self.name.to_owned(),
                    detail: err.to_string(),
                });
                return Err(err);
            }
        };
        if n == 0 {
            return self.at_end();
        }
        self.seen += n as u64;
        if self.seen > self.entry.bytes {
            let detail = format!(
                "it holds more than the {} bytes the manifest records",
                self.entry.bytes
            );
            return Err(self.mismatch(detail));
        }
        self.hasher.update(&buf[..n]);
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// The partial file, closed for good after a failed entry.
struct Closable {
    file: File,
    open: bool,
}

impl Write for Closable {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.open {
            return Err(io::Error::other("the export stopped"));
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// How many of the entries the record says were written are in the partial file as they
/// should be: same path and size, same sha256, ending where the record says. An earlier run
/// wrote them; reading them back costs a local read, and a partial file that was changed or
/// cut since is written again from the first entry that differs.
fn intact_prefix(file: &mut File, entries: &[Entry], written: &[u64]) -> usize {
    let Some(&last) = written.last() else {
        return 0;
    };
    if file.seek(SeekFrom::Start(0)).is_err() {
        return 0;
    }
    let mut archive = tar::Archive::new(Read::by_ref(file).take(last));
    let Ok(found) = archive.entries() else {
        return 0;
    };
    let mut intact = 0;
    for ((found, expected), &end) in found.zip(entries).zip(written) {
        let Ok(mut found) = found else { break };
        if found.path_bytes().as_ref() != expected.path.as_bytes() || found.size() != expected.bytes
        {
            break;
        }
        let data_end = found.raw_file_position() + expected.bytes.div_ceil(512) * 512;
        let mut hasher = Sha256::new();
        if io::copy(&mut found, &mut hasher).is_err()
            || hex::encode(hasher.finalize()) != expected.sha256
            || data_end != end
        {
            break;
        }
        intact += 1;
    }
    intact
}
