//! The MD5 that an Azure blob's Content-MD5 property carries, so that Azure's own tools
//! (AzCopy `--check-md5`) can check a blob. It is computed on a blocking thread fed the same
//! `Bytes` as the sha256 (a clone shares the buffer), so it stays off the writer's critical
//! path; the writer waits only when more than `lag_bytes` are still unhashed, which bounds
//! the memory it may hold on to.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::storage::StorageError;

/// An MD5 being computed beside the stream.
pub struct ContentMd5 {
    pieces: mpsc::UnboundedSender<(Bytes, OwnedSemaphorePermit)>,
    /// One permit per byte sent and not yet hashed.
    unhashed: Arc<Semaphore>,
    lag_bytes: u32,
    hashed: JoinHandle<[u8; 16]>,
}

impl ContentMd5 {
    /// Starts the hashing thread; at most `lag_bytes` (at least 1) wait to be hashed.
    pub fn start(lag_bytes: usize) -> Self {
        let lag_bytes = u32::try_from(lag_bytes).unwrap_or(u32::MAX).max(1);
        let (pieces, mut received) = mpsc::unbounded_channel::<(Bytes, OwnedSemaphorePermit)>();
        let hashed = tokio::task::spawn_blocking(move || {
            let mut md5 = Md5::new();
            while let Some((piece, permit)) = received.blocking_recv() {
                md5.update(&piece);
                drop(permit);
            }
            md5.finalize().into()
        });
        Self {
            pieces,
            unhashed: Arc::new(Semaphore::new(lag_bytes as usize)),
            lag_bytes,
            hashed,
        }
    }

    /// Hands `piece` to the hashing thread, first waiting while too many bytes are unhashed.
    pub async fn update(&mut self, piece: Bytes) -> Result<(), StorageError> {
        if piece.is_empty() {
            return Ok(());
        }
        // A piece larger than the lag waits until everything before it is hashed.
        let weight = u32::try_from(piece.len())
            .unwrap_or(u32::MAX)
            .min(self.lag_bytes);
        let permit = self
            .unhashed
            .clone()
            .acquire_many_owned(weight)
            .await
            .map_err(|_| hashing_stopped())?;
        self.pieces
            .send((piece, permit))
            .map_err(|_| hashing_stopped())
    }

    /// Waits for the last bytes to be hashed; the digest as Content-MD5 spells it (base64).
    pub async fn finish(self) -> Result<String, StorageError> {
        drop(self.pieces);
        let digest = self.hashed.await.map_err(|_| hashing_stopped())?;
        Ok(BASE64.encode(digest))
    }
}

fn hashing_stopped() -> StorageError {
    StorageError::Io(std::io::Error::other("the MD5 hashing thread stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_md5_of_pieces_equals_the_md5_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        // A lag smaller than some pieces, so that `update` must wait for the thread.
        let mut md5 = ContentMd5::start(1000);
        for piece in data.chunks(3001) {
            md5.update(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        md5.update(Bytes::new()).await.unwrap();
        let expected = BASE64.encode(Md5::digest(&data));
        assert_eq!(md5.finish().await.unwrap(), expected);
    }

    #[tokio::test]
    async fn the_md5_of_nothing_is_the_empty_md5() {
        let md5 = ContentMd5::start(16);
        assert_eq!(md5.finish().await.unwrap(), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
