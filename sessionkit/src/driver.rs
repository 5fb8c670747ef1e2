//! The storage driver contract.
//!
//! A driver stores session records under [`StoreKey`]s. It never sees a session id: a
//! store key is `SHA-256(id)` in an app namespace, so a dump of the store cannot be
//! replayed as cookies. Implement [`Driver`] with plain `async fn`s; the registry holds
//! drivers as `Arc<dyn DynDriver>`, which every `Driver` is automatically.
//!
//! # The contract
//!
//! Every driver must behave like this, atomically per session (the conformance suite in
//! `sessionkit-conformance` checks each point):
//!
//! | call | behaviour |
//! |---|---|
//! | [`load`](Driver::load) | the record, or [`LoadResult::Missing`]; **never** a record whose `expires_at` has passed. Bytes that do not decode are [`LoadResult::Corrupt`] (logged by the session layer, treated as missing), never an error. |
//! | [`create`](Driver::create) | insert-if-absent; an existing live record is [`DriverError::Duplicate`] and is left untouched |
//! | [`patch`](Driver::patch) | if the record exists: apply [`Patch::apply_to`] and set the new expiry, return [`WriteResult::Applied`]; otherwise [`WriteResult::Gone`] and write nothing (no resurrection) |
//! | [`touch`](Driver::touch) | the same, moving only `last_seen` and the expiry |
//! | [`delete`](Driver::delete) | remove the record; deleting a missing key is not an error |
//! | [`rotate`](Driver::rotate) | renew an id (optional, see below) |
//! | [`close`](Driver::close) | release connections and memory; later calls may fail with [`DriverError::Closed`] |
//!
//! A driver may also remember, for a while, that a record expired (a *tombstone*: the
//! key and the record's creation and last-seen times, no data) and say so from
//! [`lookup`](Driver::lookup), in the same round trip as a load. Sessions then count
//! an expired session with its reason (idle or absolute) rather than as an unknown one.
//! This is optional: the default `lookup` is `load`.
//!
//! ## Renewal and its grace window
//!
//! A session with `renew_after` changes its id once the id is that old, keeping the
//! data. Requests of that session already in flight still carry the old id. A driver
//! that implements [`rotate`](Driver::rotate) keeps them working for the grace window:
//!
//! - `rotate` is atomic per call: if `from` holds a live record, apply the rotation's
//!   patch to it *as stored now*, store the result under `to` (with `expires_at`), and
//!   replace `from` with a **forward** to `to` that expires at `grace_until`; return
//!   [`WriteResult::Applied`]. If `from` holds no live record (or already a forward),
//!   write nothing and return [`WriteResult::Gone`].
//! - A forward is not a record: [`load`](Driver::load) of `from` says
//!   [`LoadResult::Missing`], [`patch`](Driver::patch) and [`touch`](Driver::touch) of
//!   `from` say [`WriteResult::Gone`] and write nothing, and
//!   [`lookup`](Driver::lookup) says [`Lookup::Forwarded`] until `grace_until` (and
//!   `Missing` after). [`delete`](Driver::delete) of `from` removes the forward.
//!
//! The session layer follows one forward per load (a second round trip, only for a
//! request with a just-renewed id) and sends such a request's changes to `to`; a patch
//! that meets a forward (it loaded just before the renewal) is re-applied at `to`. So
//! no write of a request in flight is lost and none resurrects the old id. Forwards
//! hold a store key, never an id. The default `rotate` has no grace window: it creates
//! `to` with this request's view of the record and deletes `from`, as `regenerate()`
//! does; requests in flight with the old id then find nothing (their changes are
//! dropped, never resurrected).
//!
//! ## A user's sessions
//!
//! A session bound to a user (`set_user`) carries the binding in its record, under the
//! reserved key [`USER_KEY`](sessionkit_core::USER_KEY), with the digest of the user's
//! index key. A driver that implements [`user_sessions`](Driver::user_sessions) keeps,
//! per [`UserKey`], the store keys of the records bound to that user, maintained by the
//! same calls that write the records ([`UserKey::of_record`] on create and rotate,
//! [`UserKey::of_patch`] on patch), and answers with the live records still bound to that
//! user: an index entry whose record is gone, expired or bound to someone else is
//! skipped (and may be pruned). It costs O(that user's sessions), never a scan of the
//! store. Ending sessions is [`delete`](Driver::delete) of their keys. Without the
//! capability the listing API answers a typed "not supported" error; everything else
//! works as before.
//!
//! Each call gets an absolute expiry (`expires_at`): the store may forget the record
//! from that instant on, and must not return it after. A store that is unreachable
//! reports [`DriverError::Unavailable`]; the adapters turn that into a 503 and the next
//! request tries again.
//!
//! A driver for a networked store bounds each call and retries on dead connections
//! with the helpers in [`timeouts`](crate::timeouts), as the Redis and PostgreSQL
//! drivers do.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;

use sessionkit_core::{
    LoadResult, Namespace, Patch, Placement, Record, Rotation, StoreKey, Timestamp, UserKey, WriteResult,
};

/// A boxed error from a store client.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failed driver call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The store could not be reached or did not answer in time. Requests fail with 503
    /// and succeed again once the store is back.
    #[error("the session store is unavailable")]
    Unavailable(#[source] BoxError),
    /// `create` found a record under the key already.
    #[error("a session record already exists under this key")]
    Duplicate,
    /// The store refused the operation for another reason.
    #[error("the session store failed")]
    Backend(#[source] BoxError),
    /// The driver has been closed.
    #[error("the session driver is closed")]
    Closed,
    /// The driver does not implement an optional capability (see the module docs).
    #[error("the session driver does not support {0}")]
    Unsupported(&'static str),
}

impl DriverError {
    /// Wraps a client error as [`DriverError::Unavailable`].
    pub fn unavailable(err: impl Into<BoxError>) -> Self {
        DriverError::Unavailable(err.into())
    }

    /// Wraps a client error as [`DriverError::Backend`].
    pub fn backend(err: impl Into<BoxError>) -> Self {
        DriverError::Backend(err.into())
    }
}

/// What [`Driver::lookup`] found under a key.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Lookup {
    /// What [`Driver::load`] returns.
    Loaded(LoadResult),
    /// The id of this key was renewed a moment ago: its record moved to `to`, and the
    /// grace window ([`Driver::rotate`]) has not ended. Treated as the session under
    /// `to`.
    Forwarded {
        /// Where the record now lives.
        to: StoreKey,
    },
    /// No live record, but the store remembers that the record under this key expired.
    /// Treated as [`LoadResult::Missing`]; the session's expiry policy decides from
    /// these times whether it expired idle or absolutely.
    Expired {
        /// When the expired session was created.
        created_at: Timestamp,
        /// When it was last used, as last written.
        last_seen: Timestamp,
    },
}

/// A session store. See the [module documentation](self) for the contract.
///
/// ```
/// use sessionkit::{Driver, DriverError};
/// use sessionkit_core::{LoadResult, Patch, Record, StoreKey, Timestamp, WriteResult};
///
/// struct Nothing;
///
/// impl Driver for Nothing {
///     async fn load(&self, _key: &StoreKey) -> Result<LoadResult, DriverError> {
///         Ok(LoadResult::Missing)
///     }
///     async fn create(&self, _: &StoreKey, _: &Record, _: Timestamp) -> Result<(), DriverError> {
///         Err(DriverError::backend("read-only store"))
///     }
///     async fn patch(&self, _: &StoreKey, _: &Patch, _: Timestamp) -> Result<WriteResult, DriverError> {
///         Ok(WriteResult::Gone)
///     }
///     async fn touch(&self, _: &StoreKey, _: Timestamp, _: Timestamp) -> Result<WriteResult, DriverError> {
///         Ok(WriteResult::Gone)
///     }
///     async fn delete(&self, _: &StoreKey) -> Result<(), DriverError> {
///         Ok(())
///     }
/// }
/// ```
pub trait Driver: Send + Sync + 'static {
    /// Loads the record under `key`.
    fn load(&self, key: &StoreKey) -> impl Future<Output = Result<LoadResult, DriverError>> + Send;

    /// Loads the record under `key` like [`load`](Self::load); a store that keeps
    /// tombstones of expired records answers [`Lookup::Expired`] where `load` would say
    /// [`LoadResult::Missing`]. Must cost no more round trips than `load`. The session
    /// layer calls this rather than `load`; the default is `load`.
    fn lookup(&self, key: &StoreKey) -> impl Future<Output = Result<Lookup, DriverError>> + Send {
        async move { self.load(key).await.map(Lookup::Loaded) }
    }

    /// Inserts a new record, if none exists.
    fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Applies a per-key patch, if the record exists.
    fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<WriteResult, DriverError>> + Send;

    /// Moves `last_seen` and the expiry, if the record exists.
    fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<WriteResult, DriverError>> + Send;

    /// Deletes the record; a missing one is fine.
    fn delete(&self, key: &StoreKey) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Renews an id: moves the record from `rotation.from` to `rotation.to` with the
    /// rotation's patch applied, leaving a forward for the grace window (see the
    /// [module documentation](self#renewal-and-its-grace-window)). The default, for
    /// drivers without forwards, creates `to` from `rotation.record` and deletes
    /// `from`: correct, with no grace window.
    fn rotate(&self, rotation: &Rotation) -> impl Future<Output = Result<WriteResult, DriverError>> + Send {
        async move {
            self.create(&rotation.to, &rotation.record, rotation.expires_at)
                .await?;
            self.delete(&rotation.from).await?;
            Ok(WriteResult::Applied)
        }
    }

    /// The live records bound to the user of `user` (optional capability: per-user
    /// indexes, see the [module documentation](self#a-users-sessions)). The default
    /// answers [`DriverError::Unsupported`].
    fn user_sessions(
        &self,
        user: &UserKey,
    ) -> impl Future<Output = Result<Vec<(StoreKey, Record)>, DriverError>> + Send {
        let _ = user;
        async { Err(DriverError::Unsupported("per-user session lists")) }
    }

    /// Deletes every session record in `namespace` (optional capability, for incidents:
    /// "end every session of this app"; every named session of the app on this driver).
    /// May take time proportional to the store's size; never on a request path. Returns
    /// how many keys or rows went (the sessions, with their forwards and indexes), or 0
    /// when the store cannot tell. The default answers
    /// [`DriverError::Unsupported`].
    fn delete_namespace(
        &self,
        namespace: &Namespace,
    ) -> impl Future<Output = Result<u64, DriverError>> + Send {
        let _ = namespace;
        async { Err(DriverError::Unsupported("ending every session of a namespace")) }
    }

    /// How new ids should be placed (optional capability, for sharded stores whose
    /// atomic writes cannot span shards, such as Redis Cluster): the state machine then
    /// draws a renewal's new id in the old id's group and a bound session's in its
    /// user's, see [`Placement`]. The default, [`Placement::NONE`], places nothing.
    ///
    /// The placement is read once, when the registry is built. A driver that declares
    /// one still gets keys outside their group now and then (a session bound without
    /// a new id, a draw that gave up) and must handle them correctly, if more slowly;
    /// the conformance suite's rotations keep the group, as the session layer's do.
    fn placement(&self) -> Placement {
        Placement::NONE
    }

    /// Releases the driver's resources.
    fn close(&self) -> impl Future<Output = Result<(), DriverError>> + Send {
        async { Ok(()) }
    }
}

/// A boxed, `Send` future, as returned by [`DynDriver`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`Driver`], implemented for every `Driver`. The registry
/// stores drivers as `Arc<dyn DynDriver>`; you never implement this yourself.
#[allow(missing_docs)] // each method is the `Driver` method of the same name
pub trait DynDriver: Send + Sync + 'static {
    fn load<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<LoadResult, DriverError>>;
    fn lookup<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<Lookup, DriverError>>;
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expires_at: Timestamp,
    ) -> BoxFuture<'a, Result<(), DriverError>>;
    fn patch<'a>(
        &'a self,
        key: &'a StoreKey,
        patch: &'a Patch,
        expires_at: Timestamp,
    ) -> BoxFuture<'a, Result<WriteResult, DriverError>>;
    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> BoxFuture<'a, Result<WriteResult, DriverError>>;
    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<(), DriverError>>;
    fn rotate<'a>(&'a self, rotation: &'a Rotation) -> BoxFuture<'a, Result<WriteResult, DriverError>>;
    fn user_sessions<'a>(
        &'a self,
        user: &'a UserKey,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, Record)>, DriverError>>;
    fn delete_namespace<'a>(&'a self, namespace: &'a Namespace) -> BoxFuture<'a, Result<u64, DriverError>>;
    fn placement(&self) -> Placement;
    fn close(&self) -> BoxFuture<'_, Result<(), DriverError>>;
}

impl<D: Driver> DynDriver for D {
    fn load<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<LoadResult, DriverError>> {
        Box::pin(Driver::load(self, key))
    }
    fn lookup<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<Lookup, DriverError>> {
        Box::pin(Driver::lookup(self, key))
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expires_at: Timestamp,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(Driver::create(self, key, record, expires_at))
    }
    fn patch<'a>(
        &'a self,
        key: &'a StoreKey,
        patch: &'a Patch,
        expires_at: Timestamp,
    ) -> BoxFuture<'a, Result<WriteResult, DriverError>> {
        Box::pin(Driver::patch(self, key, patch, expires_at))
    }
    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> BoxFuture<'a, Result<WriteResult, DriverError>> {
        Box::pin(Driver::touch(self, key, last_seen, expires_at))
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(Driver::delete(self, key))
    }
    fn rotate<'a>(&'a self, rotation: &'a Rotation) -> BoxFuture<'a, Result<WriteResult, DriverError>> {
        Box::pin(Driver::rotate(self, rotation))
    }
    fn user_sessions<'a>(
        &'a self,
        user: &'a UserKey,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, Record)>, DriverError>> {
        Box::pin(Driver::user_sessions(self, user))
    }
    fn delete_namespace<'a>(&'a self, namespace: &'a Namespace) -> BoxFuture<'a, Result<u64, DriverError>> {
        Box::pin(Driver::delete_namespace(self, namespace))
    }
    fn placement(&self) -> Placement {
        Driver::placement(self)
    }
    fn close(&self) -> BoxFuture<'_, Result<(), DriverError>> {
        Box::pin(Driver::close(self))
    }
}

/// Lets a shared driver be registered and still be used directly (tests, admin tools).
impl<D: Driver> Driver for std::sync::Arc<D> {
    fn load(&self, key: &StoreKey) -> impl Future<Output = Result<LoadResult, DriverError>> + Send {
        D::load(self, key)
    }
    fn lookup(&self, key: &StoreKey) -> impl Future<Output = Result<Lookup, DriverError>> + Send {
        D::lookup(self, key)
    }
    fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<(), DriverError>> + Send {
        D::create(self, key, record, expires_at)
    }
    fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<WriteResult, DriverError>> + Send {
        D::patch(self, key, patch, expires_at)
    }
    fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<WriteResult, DriverError>> + Send {
        D::touch(self, key, last_seen, expires_at)
    }
    fn delete(&self, key: &StoreKey) -> impl Future<Output = Result<(), DriverError>> + Send {
        D::delete(self, key)
    }
    fn rotate(&self, rotation: &Rotation) -> impl Future<Output = Result<WriteResult, DriverError>> + Send {
        D::rotate(self, rotation)
    }
    fn user_sessions(
        &self,
        user: &UserKey,
    ) -> impl Future<Output = Result<Vec<(StoreKey, Record)>, DriverError>> + Send {
        D::user_sessions(self, user)
    }
    fn delete_namespace(
        &self,
        namespace: &Namespace,
    ) -> impl Future<Output = Result<u64, DriverError>> + Send {
        D::delete_namespace(self, namespace)
    }
    fn placement(&self) -> Placement {
        D::placement(self)
    }
    fn close(&self) -> impl Future<Output = Result<(), DriverError>> + Send {
        D::close(self)
    }
}
