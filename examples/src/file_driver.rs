//! A custom driver: one file per session in a directory.
//!
//! Written as a third-party crate would write it, using only the public API of
//! `sessionkit`: implement [`Driver`] with plain `async fn`s, keep records with
//! [`Record::encode`]/[`Record::decode`], report undecodable files as
//! [`LoadResult::Corrupt`], and never return an expired record. It passes the public
//! conformance suite (`tests/file_driver_conformance.rs`).
//!
//! Layout: `<dir>/<namespace>/<store key hex>.session`, holding the expiry in
//! milliseconds on the first line and the encoded record after it. Writes go to a
//! temporary file that is renamed over the old one, so readers never see half a
//! record. One async lock serialises writes, which keeps every read-modify-write
//! atomic; that is fine for an example and for small sites on one machine.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sessionkit::{
    Driver, DriverError, LoadResult, Patch, Record, SharedClock, StoreKey, Timestamp, WriteResult,
};
use tokio::sync::Mutex;

/// Sessions as files in a directory.
#[derive(Debug)]
pub struct FileDriver {
    dir: PathBuf,
    clock: SharedClock,
    writes: Mutex<()>,
    temp_counter: AtomicU64,
    remove_on_drop: bool,
}

enum Stored {
    Live(Record),
    Missing,
    Corrupt,
}

impl FileDriver {
    /// Sessions under `dir` (created on first write), with expiry decided by `clock`.
    pub fn new(dir: impl Into<PathBuf>, clock: SharedClock) -> Self {
        FileDriver {
            dir: dir.into(),
            clock,
            writes: Mutex::new(()),
            temp_counter: AtomicU64::new(0),
            remove_on_drop: false,
        }
    }

    /// A driver whose directory (with every session in it) is deleted when the driver
    /// is dropped: for tests and throwaway demos.
    pub fn temporary(dir: impl Into<PathBuf>, clock: SharedClock) -> Self {
        let mut driver = Self::new(dir, clock);
        driver.remove_on_drop = true;
        driver
    }

    /// The file that holds `key`.
    pub fn path(&self, key: &StoreKey) -> PathBuf {
        self.dir
            .join(key.namespace().as_str())
            .join(format!("{}.session", key.to_hex()))
    }

    async fn read(&self, key: &StoreKey) -> Result<Stored, DriverError> {
        let bytes = match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Stored::Missing),
            Err(err) => return Err(DriverError::unavailable(err)),
        };
        let Some(newline) = bytes.iter().position(|b| *b == b'\n') else {
            return Ok(Stored::Corrupt);
        };
        let expires = std::str::from_utf8(&bytes[..newline])
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        let (Some(expires), Ok(record)) = (expires, Record::decode(&bytes[newline + 1..])) else {
            return Ok(Stored::Corrupt);
        };
        if Timestamp::from_millis(expires) <= self.clock.now() {
            return Ok(Stored::Missing);
        }
        Ok(Stored::Live(record))
    }

    async fn write(&self, key: &StoreKey, record: &Record, expires_at: Timestamp) -> Result<(), DriverError> {
        let path = self.path(key);
        let parent = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(DriverError::unavailable)?;
        let mut bytes = format!("{}\n", expires_at.as_millis()).into_bytes();
        bytes.extend_from_slice(&record.encode());
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = parent.join(format!(".{}.{}.{n}.tmp", key.to_hex(), std::process::id()));
        tokio::fs::write(&temp, bytes)
            .await
            .map_err(DriverError::unavailable)?;
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(DriverError::unavailable)
    }

    async fn update(
        &self,
        key: &StoreKey,
        expires_at: Timestamp,
        change: impl FnOnce(&mut Record),
    ) -> Result<WriteResult, DriverError> {
        let _guard = self.writes.lock().await;
        let Stored::Live(mut record) = self.read(key).await? else {
            return Ok(WriteResult::Gone);
        };
        change(&mut record);
        self.write(key, &record, expires_at).await?;
        Ok(WriteResult::Applied)
    }
}

impl Drop for FileDriver {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Driver for FileDriver {
    async fn load(&self, key: &StoreKey) -> Result<LoadResult, DriverError> {
        Ok(match self.read(key).await? {
            Stored::Live(record) => LoadResult::Found(record),
            Stored::Missing => LoadResult::Missing,
            Stored::Corrupt => LoadResult::Corrupt,
        })
    }

    async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        let _guard = self.writes.lock().await;
        if let Stored::Live(_) = self.read(key).await? {
            return Err(DriverError::Duplicate);
        }
        self.write(key, record, expires_at).await
    }

    async fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        self.update(key, expires_at, |record| patch.apply_to(record))
            .await
    }

    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        self.update(key, expires_at, |record| record.last_seen = last_seen)
            .await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        let _guard = self.writes.lock().await;
        match tokio::fs::remove_file(self.path(key)).await {
            Err(err) if err.kind() != ErrorKind::NotFound => Err(DriverError::unavailable(err)),
            _ => Ok(()),
        }
    }
}
