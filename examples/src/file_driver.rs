//! A custom driver: one file per session in a directory.
//!
//! Written as a third-party crate would write it, using only the public API of
//! `sessionkit`: implement [`Driver`] with plain `async fn`s, keep records with
//! [`Record::encode`]/[`Record::decode`], report undecodable files as
//! [`LoadResult::Corrupt`], and never return an expired record. It passes the public
//! conformance suite (`tests/file_driver_conformance.rs`), grace-window cases included.
//!
//! Time: the driver decides expiry with the clock it is built with, which must be the
//! registry's (`FileDriver::new(dir, registry.clock().clone())`; in tests one
//! [`ManualClock`](sessionkit::ManualClock) for both), by the contract's rule: a file
//! whose expiry is `expires_at` is expired once `now >= expires_at`
//! ([`is_expired`]). Expired files are never returned, but nothing removes them as a
//! side effect; [`FileDriver::purge_expired`] does, run on an interval with
//! [`sessionkit::cleanup::purge_every`]:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sessionkit::Registry;
//! use sessionkit_examples::file_driver::FileDriver;
//!
//! let mut registry = Registry::new();
//! let files = Arc::new(FileDriver::new("/var/lib/myapp/sessions", registry.clock().clone()));
//! registry.register_shared_driver("files", files.clone())?;
//! let (purge, _purging) = sessionkit::cleanup::purge_every(Duration::from_secs(300), move || {
//!     let files = files.clone();
//!     async move { files.purge_expired().await }
//! });
//! tokio::spawn(purge); // runs until `_purging` is dropped
//! # Ok(()) }
//! ```
//!
//! An undecodable file is `Corrupt` to `load`; a `patch` or `touch` of it is `Gone`
//! and writes nothing, and `purge_expired` leaves it (its expiry cannot be read):
//! the session layer gives its client a new session under a new key.
//!
//! Layout: `<dir>/<namespace>/<store key hex>.session`, holding the expiry in
//! milliseconds on the first line and the encoded record after it. Writes go to a
//! temporary file that is renamed over the old one, so readers never see half a
//! record. One async lock serialises writes, which keeps every read-modify-write
//! atomic; that is fine for an example and for small sites on one machine.
//!
//! Renewal ([`Driver::rotate`]) keeps a grace window with a *forward file*: the old
//! key's file is replaced by one whose first line is the end of the grace window and
//! whose second is `forward:` and the new store key's 64 hex digits (never a session
//! id; an encoded record always starts with `{`, so the two cannot be confused). Under
//! the write lock, `rotate` reads the record as stored, applies the rotation's patch,
//! writes it under the new key, then renames the forward file over the old one (or
//! removes the old file when the window is already over). Readers never find neither
//! file: the new one exists before the old one changes. A load of a forward finds
//! nothing, a patch or touch of it is `Gone`, and [`lookup`](Driver::lookup) answers
//! [`Lookup::Forwarded`] until the window ends. A crash between the two renames leaves
//! the record under both keys, the old one expiring as usual: acceptable for an
//! example, where a real store would make the pair one transaction.
//!
//! A user's sessions ([`Driver::user_sessions`]) come from an *index file* per user:
//! `<dir>/<namespace>/users/<user key hex>.index`, one store key (64 hex digits) per
//! line. The file is named by the [`UserKey`] digest, never by a user id. Every write
//! that binds a record to a user adds the key to that user's file, under the same write
//! lock ([`UserKey::of_record`] on create and rotate, [`UserKey::of_patch`] on patch);
//! a rotation also drops the old key. Deletes and expiries do not touch index files:
//! listing reads the user's file and the session files it names (never the whole
//! directory), keeps the live records still bound to that user, and rewrites the file
//! without the other keys. The index write comes after the record's, so a crash in
//! between can leave a session out of its user's list until its next write: a real
//! store would make the two one transaction.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sessionkit::driver::is_expired;
use sessionkit::{
    Driver, DriverError, KeyUpdate, LoadResult, Lookup, Patch, Record, Rotation, SharedClock, StoreKey,
    Timestamp, UpdateResult, UserKey, WriteResult,
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
    /// A forward to this digest, in the same namespace, whose window has not ended.
    Forward([u8; 32]),
    Missing,
    Corrupt,
}

/// A digest as 64 lowercase hex digits (index file names).
fn hex(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// A session or forward file's expiry (its first line) and what follows it; `None`
/// when the first line is not a number of milliseconds.
fn split_expiry(bytes: &[u8]) -> Option<(Timestamp, &[u8])> {
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let millis = std::str::from_utf8(&bytes[..newline]).ok()?.parse::<u64>().ok()?;
    Some((Timestamp::from_millis(millis), &bytes[newline + 1..]))
}

/// Whether the file at `path` holds an expired session or forward (a missing file or
/// one whose expiry cannot be read: no).
async fn expired_file(path: &Path, now: Timestamp) -> Result<bool, DriverError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(split_expiry(&bytes).is_some_and(|(expires_at, _)| is_expired(expires_at, now))),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
        Err(err) => Err(DriverError::unavailable(err)),
    }
}

/// The entries of the directory `dir`, or `None` when it does not exist or is not a
/// directory.
async fn read_dir(dir: &Path) -> Result<Option<tokio::fs::ReadDir>, DriverError> {
    match tokio::fs::read_dir(dir).await {
        Ok(entries) => Ok(Some(entries)),
        Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        Err(err) => Err(DriverError::unavailable(err)),
    }
}

/// What starts the second line of a forward file.
const FORWARD: &[u8] = b"forward:";

/// The digest in a forward file: exactly 64 lowercase hex digits.
fn parse_digest(hex: &[u8]) -> Option<[u8; 32]> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(digest)
}

impl FileDriver {
    /// Sessions under `dir` (created on first write), with expiry decided by `clock`:
    /// pass the registry's ([`Registry::clock`](sessionkit::Registry::clock)).
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

    /// The index file of `user`'s sessions.
    pub fn index_path(&self, user: &UserKey) -> PathBuf {
        self.dir
            .join(user.namespace().as_str())
            .join("users")
            .join(format!("{}.index", hex(user.digest())))
    }

    /// The store keys listed in `user`'s index file (lines that are not a store key
    /// are left out).
    async fn read_index(&self, user: &UserKey) -> Result<Vec<StoreKey>, DriverError> {
        let bytes = match tokio::fs::read(self.index_path(user)).await {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(DriverError::unavailable(err)),
        };
        Ok(bytes
            .split(|b| *b == b'\n')
            .filter_map(parse_digest)
            .map(|digest| StoreKey::from_digest(user.namespace().clone(), digest))
            .collect())
    }

    /// Replaces `user`'s index file with `keys` (removes it when there are none).
    /// Call with the write lock held.
    async fn write_index(&self, user: &UserKey, keys: &[StoreKey]) -> Result<(), DriverError> {
        let path = self.index_path(user);
        if keys.is_empty() {
            return match tokio::fs::remove_file(&path).await {
                Err(err) if err.kind() != ErrorKind::NotFound => Err(DriverError::unavailable(err)),
                _ => Ok(()),
            };
        }
        let mut body = String::with_capacity(65 * keys.len());
        for key in keys {
            body.push_str(&key.to_hex());
            body.push('\n');
        }
        self.replace_file(&path, body.as_bytes()).await
    }

    /// Adds `key` to `user`'s index (and drops `old`, a key the record left). Call
    /// with the write lock held.
    async fn index(&self, user: &UserKey, key: &StoreKey, old: Option<&StoreKey>) -> Result<(), DriverError> {
        let mut keys = self.read_index(user).await?;
        let before = keys.len();
        if let Some(old) = old {
            keys.retain(|k| k != old);
        }
        let mut changed = keys.len() != before;
        if !keys.contains(key) {
            keys.push(key.clone());
            changed = true;
        }
        if changed {
            self.write_index(user, &keys).await
        } else {
            Ok(())
        }
    }

    async fn read(&self, key: &StoreKey) -> Result<Stored, DriverError> {
        let bytes = match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Stored::Missing),
            Err(err) => return Err(DriverError::unavailable(err)),
        };
        let Some((expires_at, body)) = split_expiry(&bytes) else {
            return Ok(Stored::Corrupt);
        };
        let stored = match body.strip_prefix(FORWARD) {
            Some(hex) => match parse_digest(hex) {
                Some(digest) => Stored::Forward(digest),
                None => return Ok(Stored::Corrupt),
            },
            None => match Record::decode(body) {
                Ok(record) => Stored::Live(record),
                Err(_) => return Ok(Stored::Corrupt),
            },
        };
        if is_expired(expires_at, self.clock.now()) {
            return Ok(Stored::Missing);
        }
        Ok(stored)
    }

    /// Deletes the session and forward files that have expired by the driver's clock
    /// and answers how many went. It reads every session file of every namespace (a
    /// scan: run it in the background, never on a request path), and takes the write
    /// lock per expired file, re-checking it there, so a record written meanwhile under
    /// the same key stays. Files whose expiry cannot be read stay too; index files are
    /// left to [`user_sessions`](Driver::user_sessions), which prunes them.
    ///
    /// # Errors
    /// [`DriverError::Unavailable`] when the directory cannot be read or a file cannot
    /// be removed.
    pub async fn purge_expired(&self) -> Result<u64, DriverError> {
        let now = self.clock.now();
        let mut purged = 0;
        let Some(mut namespaces) = read_dir(&self.dir).await? else {
            return Ok(0);
        };
        while let Some(namespace) = namespaces.next_entry().await.map_err(DriverError::unavailable)? {
            let Some(mut files) = read_dir(&namespace.path()).await? else {
                continue;
            };
            while let Some(file) = files.next_entry().await.map_err(DriverError::unavailable)? {
                let path = file.path();
                if path.extension().is_none_or(|ext| ext != "session") {
                    continue;
                }
                if !expired_file(&path, now).await? {
                    continue;
                }
                let _guard = self.writes.lock().await;
                if expired_file(&path, now).await? {
                    match tokio::fs::remove_file(&path).await {
                        Ok(()) => purged += 1,
                        Err(err) if err.kind() == ErrorKind::NotFound => {}
                        Err(err) => return Err(DriverError::unavailable(err)),
                    }
                }
            }
        }
        Ok(purged)
    }

    async fn write(&self, key: &StoreKey, record: &Record, expires_at: Timestamp) -> Result<(), DriverError> {
        self.write_body(key, &record.encode(), expires_at).await
    }

    /// Writes a forward to `to` under `key`, ending at `until`.
    async fn write_forward(
        &self,
        key: &StoreKey,
        to: &StoreKey,
        until: Timestamp,
    ) -> Result<(), DriverError> {
        let mut body = FORWARD.to_vec();
        body.extend_from_slice(to.to_hex().as_bytes());
        self.write_body(key, &body, until).await
    }

    async fn write_body(
        &self,
        key: &StoreKey,
        body: &[u8],
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        let mut bytes = format!("{}\n", expires_at.as_millis()).into_bytes();
        bytes.extend_from_slice(body);
        self.replace_file(&self.path(key), &bytes).await
    }

    /// Writes `bytes` to a temporary file renamed over `path`.
    async fn replace_file(&self, path: &Path, bytes: &[u8]) -> Result<(), DriverError> {
        let parent = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(DriverError::unavailable)?;
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("file");
        let temp = parent.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        tokio::fs::write(&temp, bytes)
            .await
            .map_err(DriverError::unavailable)?;
        tokio::fs::rename(&temp, path)
            .await
            .map_err(DriverError::unavailable)
    }

    /// Changes the live record under `key` with `change` (which says whether to write
    /// it), holding the write lock, so that the read and the write are one step for
    /// every other writer of this driver; `None` when there is no live record.
    async fn modify<T>(
        &self,
        key: &StoreKey,
        expires_at: Timestamp,
        change: impl FnOnce(&mut Record) -> (bool, T),
    ) -> Result<Option<T>, DriverError> {
        let _guard = self.writes.lock().await;
        let Stored::Live(mut record) = self.read(key).await? else {
            return Ok(None);
        };
        let (write, answer) = change(&mut record);
        if write {
            self.write(key, &record, expires_at).await?;
        }
        Ok(Some(answer))
    }

    async fn remove(&self, key: &StoreKey) -> Result<(), DriverError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(err) if err.kind() != ErrorKind::NotFound => Err(DriverError::unavailable(err)),
            _ => Ok(()),
        }
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
            // A forward is not a record.
            Stored::Forward(_) | Stored::Missing => LoadResult::Missing,
            Stored::Corrupt => LoadResult::Corrupt,
        })
    }

    async fn lookup(&self, key: &StoreKey) -> Result<Lookup, DriverError> {
        Ok(match self.read(key).await? {
            Stored::Forward(digest) => Lookup::Forwarded {
                to: StoreKey::from_digest(key.namespace().clone(), digest),
            },
            Stored::Live(record) => Lookup::Loaded(LoadResult::Found(record)),
            Stored::Missing => Lookup::Loaded(LoadResult::Missing),
            Stored::Corrupt => Lookup::Loaded(LoadResult::Corrupt),
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
        self.write(key, record, expires_at).await?;
        if let Some(user) = UserKey::of_record(key, record) {
            self.index(&user, key, None).await?;
        }
        Ok(())
    }

    async fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let _guard = self.writes.lock().await;
        let Stored::Live(mut record) = self.read(key).await? else {
            return Ok(WriteResult::Gone);
        };
        patch.apply_to(&mut record);
        self.write(key, &record, expires_at).await?;
        if let Some(Some(user)) = UserKey::of_patch(key, patch) {
            self.index(&user, key, None).await?;
        }
        Ok(WriteResult::Applied)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let touched = self
            .modify(key, expires_at, |record| {
                record.last_seen = last_seen;
                (true, ())
            })
            .await?;
        Ok(touched.map_or(WriteResult::Gone, |()| WriteResult::Applied))
    }

    /// A compare-and-set under the driver's write lock (one process: the lock is what
    /// makes it atomic; several processes sharing a directory would need file locks).
    async fn update(
        &self,
        key: &StoreKey,
        update: &KeyUpdate,
        expires_at: Timestamp,
    ) -> Result<UpdateResult, DriverError> {
        let result = self
            .modify(key, expires_at, |record| {
                let result = update.apply_to(record);
                (result == UpdateResult::Applied, result)
            })
            .await?;
        Ok(result.unwrap_or(UpdateResult::Gone))
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        let _guard = self.writes.lock().await;
        self.remove(key).await
    }

    /// Moves the record and leaves a forward file; see the [module docs](self).
    async fn rotate(&self, rotation: &Rotation) -> Result<WriteResult, DriverError> {
        let (from, to) = (&rotation.from, &rotation.to);
        if from.namespace() != to.namespace() {
            // A forward file keeps only the digest, in the old key's namespace.
            return Err(DriverError::backend("a rotation must keep its namespace"));
        }
        let _guard = self.writes.lock().await;
        let Stored::Live(mut record) = self.read(from).await? else {
            return Ok(WriteResult::Gone);
        };
        if let Stored::Live(_) = self.read(to).await? {
            return Err(DriverError::Duplicate);
        }
        rotation.patch.apply_to(&mut record);
        self.write(to, &record, rotation.expires_at).await?;
        if is_expired(rotation.grace_until, self.clock.now()) {
            // A window that is already over leaves no forward.
            self.remove(from).await?;
        } else {
            self.write_forward(from, to, rotation.grace_until).await?;
        }
        if let Some(user) = UserKey::of_record(to, &record) {
            self.index(&user, to, Some(from)).await?;
        }
        Ok(WriteResult::Applied)
    }

    /// Reads the user's index file and the session files it names; rewrites the index
    /// without the keys whose record is gone, expired, a forward, corrupt or bound to
    /// someone else.
    async fn user_sessions(&self, user: &UserKey) -> Result<Vec<(StoreKey, Record)>, DriverError> {
        let _guard = self.writes.lock().await;
        let keys = self.read_index(user).await?;
        let mut found = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Stored::Live(record) = self.read(key).await?
                && UserKey::of_record(key, &record).as_ref() == Some(user)
            {
                found.push((key.clone(), record));
            }
        }
        if found.len() < keys.len() {
            let live: Vec<StoreKey> = found.iter().map(|(key, _)| key.clone()).collect();
            self.write_index(user, &live).await?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use serde_json::Map;
    use sessionkit::core::Namespace;
    use sessionkit::{Clock, ManualClock};

    use super::*;

    fn scratch_dir() -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("sessionkit-file-purge-{}-{n}", std::process::id()))
    }

    fn key(namespace: &str, n: u8) -> StoreKey {
        StoreKey::from_digest(Namespace::new(namespace).expect("namespace"), [n; 32])
    }

    #[tokio::test]
    async fn purge_deletes_the_expired_files_and_only_those() {
        let clock = ManualClock::starting_now();
        let driver = FileDriver::temporary(scratch_dir(), clock.shared());
        assert_eq!(driver.purge_expired().await.expect("purge of nothing"), 0);
        let record = Record::new(clock.now(), Map::new());
        let at = |secs| clock.now().saturating_add(Duration::from_secs(secs));
        let (short, exact, long, other_app) = (key("a", 1), key("a", 2), key("a", 3), key("b", 1));
        driver.create(&short, &record, at(10)).await.expect("create");
        driver.create(&exact, &record, at(60)).await.expect("create");
        driver.create(&long, &record, at(3_600)).await.expect("create");
        driver.create(&other_app, &record, at(10)).await.expect("create");
        std::fs::write(driver.dir.join("a").join("stray.txt"), b"not a session").expect("write");
        let corrupt = key("a", 4);
        std::fs::write(driver.path(&corrupt), b"no expiry line").expect("write");

        clock.advance(Duration::from_secs(59));
        assert_eq!(driver.purge_expired().await.expect("purge"), 2);
        assert!(!driver.path(&short).exists() && !driver.path(&other_app).exists());
        assert!(
            driver.path(&exact).exists(),
            "one second before its expiry the file is live"
        );

        clock.advance(Duration::from_secs(1)); // now == the expiry of `exact`
        assert_eq!(driver.purge_expired().await.expect("purge"), 1);
        assert!(!driver.path(&exact).exists());
        assert!(driver.path(&long).exists());
        assert!(
            driver.path(&corrupt).exists(),
            "an unreadable expiry is left alone"
        );
        assert!(matches!(driver.load(&long).await, Ok(LoadResult::Found(_))));
    }

    #[tokio::test]
    async fn purge_every_removes_expired_files_in_the_background() {
        let clock = ManualClock::starting_now();
        let driver = Arc::new(FileDriver::temporary(scratch_dir(), clock.shared()));
        let key = key("a", 9);
        let expires_at = clock.now().saturating_add(Duration::from_secs(1));
        let record = Record::new(clock.now(), Map::new());
        driver.create(&key, &record, expires_at).await.expect("create");
        let purging = driver.clone();
        let (task, handle) = sessionkit::cleanup::purge_every(Duration::from_millis(5), move || {
            let driver = purging.clone();
            async move { driver.purge_expired().await }
        });
        let task = tokio::spawn(task);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(driver.path(&key).exists(), "not expired yet");
        clock.advance(Duration::from_secs(1));
        let start = std::time::Instant::now();
        while driver.path(&key).exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the file was never purged"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        handle.stop().await;
        task.await.expect("the loop ended cleanly");
    }
}
