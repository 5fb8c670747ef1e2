//! Driver wrappers the suites use: one counts calls, one can be switched off to play a
//! store that is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use sessionkit::core::Namespace;
use sessionkit::{
    Driver, DriverError, DynDriver, LoadResult, Lookup, LookupNow, Patch, Record, Rotation, StoreKey,
    Timestamp, UserKey, Write, WriteResult,
};

/// Counts the calls made to the driver it wraps. The immediate calls
/// ([`Driver::lookup_now`], [`Driver::write_now`]) are passed on too and counted when
/// the wrapped driver answers them, so the suites exercise the path the session layer
/// takes for that driver.
#[derive(Clone)]
pub struct CountingDriver {
    inner: Arc<dyn DynDriver>,
    counts: Arc<Counts>,
}

/// Call counters of a [`CountingDriver`].
#[derive(Debug, Default)]
pub struct Counts {
    /// `load`, `lookup` (and `user_sessions`) calls, and answered `lookup_now` calls.
    pub loads: AtomicUsize,
    /// `create`, `patch`, `touch`, `delete` and `rotate` calls, and answered
    /// `write_now` calls.
    pub writes: AtomicUsize,
}

impl Counts {
    /// Loads so far.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
    /// Writes so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
    /// All calls so far.
    pub fn total(&self) -> usize {
        self.loads() + self.writes()
    }
}

impl CountingDriver {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn DynDriver>) -> Self {
        CountingDriver {
            inner,
            counts: Arc::default(),
        }
    }

    /// The counters (shared with clones).
    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    fn write(&self) {
        self.counts.writes.fetch_add(1, Ordering::SeqCst);
    }
}

impl Driver for CountingDriver {
    async fn load(&self, key: &StoreKey) -> Result<LoadResult, DriverError> {
        self.counts.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key).await
    }
    async fn lookup(&self, key: &StoreKey) -> Result<Lookup, DriverError> {
        self.counts.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.lookup(key).await
    }
    fn lookup_now(&self, key: &StoreKey) -> Option<Result<LookupNow, DriverError>> {
        let answer = self.inner.lookup_now(key);
        if answer.is_some() {
            self.counts.loads.fetch_add(1, Ordering::SeqCst);
        }
        answer
    }
    fn write_now(&self, write: &Write) -> Option<Result<WriteResult, DriverError>> {
        let answer = self.inner.write_now(write);
        if answer.is_some() {
            self.write();
        }
        answer
    }
    async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        self.write();
        self.inner.create(key, record, expires_at).await
    }
    async fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        self.write();
        self.inner.patch(key, patch, expires_at).await
    }
    async fn update(
        &self,
        key: &StoreKey,
        update: &sessionkit::KeyUpdate,
        expires_at: Timestamp,
    ) -> Result<sessionkit::UpdateResult, DriverError> {
        self.write();
        self.inner.update(key, update, expires_at).await
    }
    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        self.write();
        self.inner.touch(key, last_seen, expires_at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        self.write();
        self.inner.delete(key).await
    }
    async fn rotate(&self, rotation: &Rotation) -> Result<WriteResult, DriverError> {
        self.write();
        self.inner.rotate(rotation).await
    }
    async fn user_sessions(&self, user: &UserKey) -> Result<Vec<(StoreKey, Record)>, DriverError> {
        self.counts.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.user_sessions(user).await
    }
    async fn delete_namespace(&self, namespace: &Namespace) -> Result<u64, DriverError> {
        self.write();
        self.inner.delete_namespace(namespace).await
    }
    fn placement(&self) -> sessionkit::core::Placement {
        self.inner.placement()
    }
    async fn close(&self) -> Result<(), DriverError> {
        self.inner.close().await
    }
}

/// A driver that can be switched off: while down, every call fails with
/// [`DriverError::Unavailable`], as a real store does when it is unreachable; while
/// failing, every call fails with [`DriverError::Backend`], as a store that answers with
/// an error does (a missing table, a refused value).
#[derive(Clone)]
pub struct SwitchableDriver {
    inner: Arc<dyn DynDriver>,
    state: Arc<AtomicU8>,
}

const UP: u8 = 0;
const DOWN: u8 = 1;
const FAILING: u8 = 2;

/// The switch of a [`SwitchableDriver`].
#[derive(Clone, Debug)]
pub struct Switch(Arc<AtomicU8>);

impl Switch {
    /// Takes the store down: unreachable.
    pub fn down(&self) {
        self.0.store(DOWN, Ordering::SeqCst);
    }
    /// Makes the store answer every call with an error.
    pub fn fail(&self) {
        self.0.store(FAILING, Ordering::SeqCst);
    }
    /// Brings it back.
    pub fn up(&self) {
        self.0.store(UP, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused (switched off by the conformance suite)")
    }
}

impl std::error::Error for Down {}

/// The error text of a failing store, so tests can find it in the logs.
pub const FAILING_STORE_MESSAGE: &str =
    "relation \"sessions\" does not exist (failure injected by the conformance suite)";

#[derive(Debug)]
struct Failing;

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(FAILING_STORE_MESSAGE)
    }
}

impl std::error::Error for Failing {}

impl SwitchableDriver {
    /// Wraps `inner`, initially up.
    pub fn new(inner: Arc<dyn DynDriver>) -> (Self, Switch) {
        let state = Arc::new(AtomicU8::new(UP));
        (
            SwitchableDriver {
                inner,
                state: state.clone(),
            },
            Switch(state),
        )
    }

    fn check(&self) -> Result<(), DriverError> {
        match self.state.load(Ordering::SeqCst) {
            DOWN => Err(DriverError::unavailable(Down)),
            FAILING => Err(DriverError::backend(Failing)),
            _ => Ok(()),
        }
    }
}

impl Driver for SwitchableDriver {
    async fn load(&self, key: &StoreKey) -> Result<LoadResult, DriverError> {
        self.check()?;
        self.inner.load(key).await
    }
    // Up, the immediate calls pass through (so the suites run the path the session
    // layer takes for the wrapped driver); down or failing, they are left to the async
    // calls, which fail.
    fn lookup_now(&self, key: &StoreKey) -> Option<Result<LookupNow, DriverError>> {
        self.check().ok()?;
        self.inner.lookup_now(key)
    }
    fn write_now(&self, write: &Write) -> Option<Result<WriteResult, DriverError>> {
        self.check().ok()?;
        self.inner.write_now(write)
    }
    async fn lookup(&self, key: &StoreKey) -> Result<Lookup, DriverError> {
        self.check()?;
        self.inner.lookup(key).await
    }
    async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        self.check()?;
        self.inner.create(key, record, expires_at).await
    }
    async fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        self.check()?;
        self.inner.patch(key, patch, expires_at).await
    }
    async fn update(
        &self,
        key: &StoreKey,
        update: &sessionkit::KeyUpdate,
        expires_at: Timestamp,
    ) -> Result<sessionkit::UpdateResult, DriverError> {
        self.check()?;
        self.inner.update(key, update, expires_at).await
    }
    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        self.check()?;
        self.inner.touch(key, last_seen, expires_at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn rotate(&self, rotation: &Rotation) -> Result<WriteResult, DriverError> {
        self.check()?;
        self.inner.rotate(rotation).await
    }
    async fn user_sessions(&self, user: &UserKey) -> Result<Vec<(StoreKey, Record)>, DriverError> {
        self.check()?;
        self.inner.user_sessions(user).await
    }
    async fn delete_namespace(&self, namespace: &Namespace) -> Result<u64, DriverError> {
        self.check()?;
        self.inner.delete_namespace(namespace).await
    }
    fn placement(&self) -> sessionkit::core::Placement {
        self.inner.placement()
    }
    async fn close(&self) -> Result<(), DriverError> {
        self.inner.close().await
    }
}
