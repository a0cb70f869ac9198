//! Writing objects into a local folder: a staging file next to the final name (`NAME#N`, as
//! object_store names them, so `remove_abandoned_staging_files` knows them), its data synced
//! before the rename that publishes it. The rename becomes durable only once its folder is
//! synced; that sync is left to the caller's [`Publication`](super::Publication), so that
//! several objects renamed into one folder share it.

mod upload;

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path as FsPath, PathBuf};

use object_store::PutPayload;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::StorageError;
pub(super) use upload::LocalUpload;

/// The archive root, and how object keys map to files below it.
#[derive(Debug)]
pub(super) struct LocalFolder {
    /// Maps keys exactly as the reading side (object_store's local backend) does.
    paths: LocalFileSystem,
    root: PathBuf,
}

/// A staging file being written, and the folders whose sync makes its publication durable.
pub(super) struct Staged {
    file: File,
    staging: PathBuf,
    target: PathBuf,
    /// The object's own folder, plus the parent of every folder created for it.
    folders: Vec<PathBuf>,
}

impl LocalFolder {
    pub fn new(root: &FsPath) -> Result<Self, StorageError> {
        Ok(Self {
            paths: LocalFileSystem::new_with_prefix(root)?,
            root: std::fs::canonicalize(root)?,
        })
    }

    /// The folder holding `key`'s file.
    pub fn folder_of(&self, key: &Path) -> Result<PathBuf, StorageError> {
        let file = self.paths.path_to_filesystem(key)?;
        match file.parent() {
            Some(folder) => Ok(folder.to_path_buf()),
            None => Err(std::io::Error::other(format!("{} has no folder", file.display())).into()),
        }
    }

    /// Creates the staging file for `key`, and any folder it needs (blocking).
    pub fn stage(&self, key: &Path) -> Result<Staged, StorageError> {
        let target = self.paths.path_to_filesystem(key)?;
        let folder = self.folder_of(key)?;
        let mut folders = vec![folder.clone()];
        let mut created = false;
        let mut suffix = 1u32;
        loop {
            let staging = staging_path(&target, suffix);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&staging)
            {
                Ok(file) => {
                    if created {
                        folders.extend(self.ancestors_of(&folder));
                    }
                    return Ok(Staged {
                        file,
                        staging,
                        target,
                        folders,
                    });
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => suffix += 1,
                Err(err) if err.kind() == ErrorKind::NotFound && !created => {
                    std::fs::create_dir_all(&folder)?;
                    created = true;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Every folder from `folder`'s parent up to the root. A folder created here is durable
    /// only once its parent is synced, and a peer may have created (and not yet synced) the
    /// folders above it a moment ago, so all of them are synced: rarely more than two.
    fn ancestors_of(&self, folder: &FsPath) -> Vec<PathBuf> {
        folder
            .ancestors()
            .skip(1)
            .take_while(|dir| dir.starts_with(&self.root))
            .map(FsPath::to_path_buf)
            .collect()
    }

    /// Writes a small object in one go: staged, data synced, renamed (blocking). Returns the
    /// folders to sync for the rename to be durable.
    pub fn put(&self, key: &Path, payload: &PutPayload) -> Result<Vec<PathBuf>, StorageError> {
        let mut staged = self.stage(key)?;
        let written = payload
            .iter()
            .try_for_each(|piece| staged.file.write_all(piece));
        if let Err(err) = written {
            staged.discard();
            return Err(err.into());
        }
        staged.publish()
    }
}

impl Staged {
    /// Syncs the data, closes the file and renames it to its key. On failure the staging file
    /// is removed and the error that failed the publication returned.
    pub fn publish(self) -> Result<Vec<PathBuf>, StorageError> {
        let Self {
            file,
            staging,
            target,
            folders,
        } = self;
        // The bytes must be on disk before the rename makes them visible at the final key.
        if let Err(err) = file.sync_data() {
            let _ = std::fs::remove_file(&staging);
            return Err(err.into());
        }
        drop(file);
        std::fs::rename(&staging, &target).map_err(|source| {
            let _ = std::fs::remove_file(&staging);
            RenameFailed { source }
        })?;
        Ok(folders)
    }

    /// Removes the staging file (after a failed write).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.staging);
    }
}

/// A failed publishing rename, worded as object_store words it, so logs read the same.
#[derive(Debug, thiserror::Error)]
#[error("Unable to rename file: {source}")]
pub(super) struct RenameFailed {
    source: std::io::Error,
}

impl From<RenameFailed> for StorageError {
    fn from(err: RenameFailed) -> Self {
        StorageError::Store(object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(err),
        })
    }
}

fn staging_path(target: &FsPath, suffix: u32) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(format!("#{suffix}"));
    name.into()
}

/// Syncs each folder once, deepest first: `folders` come in ascending path order (blocking).
pub(super) fn sync_folders(folders: &[PathBuf]) -> std::io::Result<()> {
    for folder in folders.iter().rev() {
        File::open(folder)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::MultipartUpload;

    fn folder_in(dir: &tempfile::TempDir) -> LocalFolder {
        LocalFolder::new(dir.path()).unwrap()
    }

    fn root(dir: &tempfile::TempDir) -> PathBuf {
        std::fs::canonicalize(dir.path()).unwrap()
    }

    #[test]
    fn a_put_publishes_the_object_and_owes_every_folder_it_created_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let local = folder_in(&dir);
        let key = Path::parse("call/rec/chunk-0000.wav").unwrap();
        let owed = local.put(&key, &PutPayload::from_static(b"media")).unwrap();

        let root = root(&dir);
        assert_eq!(
            std::fs::read(root.join("call/rec/chunk-0000.wav")).unwrap(),
            b"media"
        );
        assert_eq!(
            std::fs::read_dir(root.join("call/rec")).unwrap().count(),
            1,
            "no staging file is left"
        );
        // Its folder for the rename; the call folder and the root for the new folders' entries.
        assert_eq!(
            owed,
            vec![root.join("call/rec"), root.join("call"), root.clone()]
        );

        let second = Path::parse("call/rec/chunk-0000.metadata.json").unwrap();
        let owed = local.put(&second, &PutPayload::from_static(b"{}")).unwrap();
        assert_eq!(owed, vec![root.join("call/rec")], "no folder was created");
    }

    #[test]
    fn a_staging_name_in_use_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let local = folder_in(&dir);
        let key = Path::parse("call/chunk-0000.wav").unwrap();
        let root = root(&dir);
        std::fs::create_dir(root.join("call")).unwrap();
        // A peer (or an abandoned write) holds the first staging name.
        std::fs::write(root.join("call/chunk-0000.wav#1"), b"peer").unwrap();

        let staged = local.stage(&key).unwrap();
        assert_eq!(staged.staging, root.join("call/chunk-0000.wav#2"));
        staged.publish().unwrap();
        assert_eq!(
            std::fs::read(root.join("call/chunk-0000.wav#1")).unwrap(),
            b"peer",
            "the peer's file is untouched"
        );
        assert!(root.join("call/chunk-0000.wav").exists());
    }

    #[test]
    fn a_staging_file_that_vanished_fails_the_publication_and_names_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let local = folder_in(&dir);
        let key = Path::parse("call/chunk-0001.wav").unwrap();
        let staged = local.stage(&key).unwrap();
        std::fs::remove_file(&staged.staging).unwrap();

        let err = staged.publish().unwrap_err().to_string();
        assert!(
            err.contains("Unable to rename file") && err.contains("No such file or directory"),
            "{err}"
        );
        assert!(!root(&dir).join("call/chunk-0001.wav").exists());
    }

    #[tokio::test]
    async fn an_aborted_or_dropped_upload_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let local = folder_in(&dir);
        let folder = root(&dir).join("call");

        let key = Path::parse("call/chunk-0002.wav").unwrap();
        let (mut upload, _) = LocalUpload::new(local.stage(&key).unwrap());
        upload
            .put_part(PutPayload::from_static(b"part"))
            .await
            .unwrap();
        upload.abort().await.unwrap();
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);

        let (mut upload, _) = LocalUpload::new(local.stage(&key).unwrap());
        upload
            .put_part(PutPayload::from_static(b"part"))
            .await
            .unwrap();
        drop(upload);
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    }
}
