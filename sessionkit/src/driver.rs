//! The storage driver contract, and how to write a driver of your own.
//!
//! A driver stores session records under [`StoreKey`]s. It never sees a session id: a
//! store key is `SHA-256(id)` in an app namespace, so a dump of the store cannot be
//! replayed as cookies. Implement [`Driver`] with plain `async fn`s; the registry holds
//! drivers as `Arc<dyn DynDriver>`, which every `Driver` is automatically.
//!
//! # A complete driver
//!
//! Sessions in a `HashMap`, each kept as the bytes of [`Record::encode`] (the way a
//! blob store would keep them) beside its expiry. It implements the five required
//! calls as [the contract](#the-contract) says, decides expiry with the registry's
//! clock (see [Time](#time)), and passes the conformance suite; the optional
//! capabilities keep their defaults.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Mutex, MutexGuard, PoisonError};
//!
//! use sessionkit::driver::is_expired;
//! use sessionkit::{
//!     Driver, DriverError, LoadResult, Patch, Record, SharedClock, StoreKey, Timestamp,
//!     WriteResult,
//! };
//!
//! /// Sessions in process memory, with expiry decided by a shared clock.
//! #[derive(Debug)]
//! pub struct MapDriver {
//!     clock: SharedClock,
//!     entries: Mutex<HashMap<StoreKey, Entry>>,
//! }
//!
//! #[derive(Debug)]
//! struct Entry {
//!     /// What `Record::encode` wrote (or, from `put_raw`, anything at all).
//!     bytes: Vec<u8>,
//!     expires_at: Timestamp,
//! }
//!
//! impl MapDriver {
//!     /// An empty store. Give it the registry's clock: `registry.clock().clone()`.
//!     pub fn new(clock: SharedClock) -> Self {
//!         MapDriver { clock, entries: Mutex::default() }
//!     }
//!
//!     /// Stores raw bytes under `key` (the conformance suite's `corrupt` hook uses it).
//!     pub fn put_raw(&self, key: &StoreKey, bytes: &[u8], expires_at: Timestamp) {
//!         let entry = Entry { bytes: bytes.to_vec(), expires_at };
//!         self.lock(key).insert(key.clone(), entry);
//!     }
//!
//!     /// Removes every expired record and says how many went. Nothing else in this
//!     /// driver forgets an expired record it is never asked about again; run this on
//!     /// an interval (see `sessionkit::cleanup`).
//!     pub fn purge_expired(&self) -> u64 {
//!         let now = self.clock.now();
//!         let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
//!         let before = entries.len();
//!         entries.retain(|_, entry| !is_expired(entry.expires_at, now));
//!         u64::try_from(before - entries.len()).unwrap_or(u64::MAX)
//!     }
//!
//!     /// The map, locked, with an expired entry under `key` already removed: every
//!     /// call then sees only a live record (or none) under its key.
//!     fn lock(&self, key: &StoreKey) -> MutexGuard<'_, HashMap<StoreKey, Entry>> {
//!         let now = self.clock.now();
//!         let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
//!         if entries.get(key).is_some_and(|entry| is_expired(entry.expires_at, now)) {
//!             entries.remove(key);
//!         }
//!         entries
//!     }
//!
//!     /// Patch and touch: change the live record under `key` and give it a new
//!     /// expiry, all under one lock (atomic per session).
//!     fn modify(
//!         &self,
//!         key: &StoreKey,
//!         expires_at: Timestamp,
//!         change: impl FnOnce(&mut Record),
//!     ) -> WriteResult {
//!         let mut entries = self.lock(key);
//!         let Some(entry) = entries.get_mut(key) else {
//!             // Never created, deleted, or expired: nothing is written (no resurrection).
//!             return WriteResult::Gone;
//!         };
//!         let Ok(mut record) = Record::decode(&entry.bytes) else {
//!             // Undecodable: the session layer treats it as missing, so does this.
//!             return WriteResult::Gone;
//!         };
//!         change(&mut record);
//!         *entry = Entry { bytes: record.encode(), expires_at };
//!         WriteResult::Applied
//!     }
//! }
//!
//! impl Driver for MapDriver {
//!     async fn load(&self, key: &StoreKey) -> Result<LoadResult, DriverError> {
//!         Ok(match self.lock(key).get(key) {
//!             None => LoadResult::Missing,
//!             // Bad bytes are `Corrupt`, never an error: the request goes on.
//!             Some(entry) => Record::decode(&entry.bytes).map_or(LoadResult::Corrupt, LoadResult::Found),
//!         })
//!     }
//!
//!     async fn create(&self, key: &StoreKey, record: &Record, expires_at: Timestamp) -> Result<(), DriverError> {
//!         let mut entries = self.lock(key);
//!         if entries.contains_key(key) {
//!             return Err(DriverError::Duplicate); // insert-if-absent
//!         }
//!         entries.insert(key.clone(), Entry { bytes: record.encode(), expires_at });
//!         Ok(())
//!     }
//!
//!     async fn patch(&self, key: &StoreKey, patch: &Patch, expires_at: Timestamp) -> Result<WriteResult, DriverError> {
//!         Ok(self.modify(key, expires_at, |record| patch.apply_to(record)))
//!     }
//!
//!     async fn touch(
//!         &self,
//!         key: &StoreKey,
//!         last_seen: Timestamp,
//!         expires_at: Timestamp,
//!     ) -> Result<WriteResult, DriverError> {
//!         Ok(self.modify(key, expires_at, |record| record.last_seen = last_seen))
//!     }
//!
//!     async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
//!         self.lock(key).remove(key); // a missing key is fine
//!         Ok(())
//!     }
//! }
//!
//! use std::time::Duration;
//! use http::HeaderMap;
//! use sessionkit::core::Namespace;
//! use sessionkit::{Clock as _, ManualClock, Registry, Secret};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // One clock for the registry and the driver (a manual one, to move time here).
//! let clock = ManualClock::starting_now();
//! let mut registry = Registry::with_clock(clock.shared());
//! registry.register_driver("map", MapDriver::new(registry.clock().clone()))?;
//! registry.set_secret(Secret::new(*b"a development secret of 32 bytes")?);
//! registry.apply_toml("[session.sessions.web]\ndriver = \"map\"")?;
//! let sessions = registry.build()?;
//!
//! let request = sessions.request_from_headers(&HeaderMap::new());
//! request.default_session().await?.insert("user", "ada")?;
//! let mut headers = HeaderMap::new();
//! request.save(200).await?.apply_to(&mut headers);
//! assert!(headers.contains_key("set-cookie"));
//!
//! // The rule at work, call by call: live until the instant of expiry, gone at it.
//! let driver = MapDriver::new(clock.shared());
//! let key = StoreKey::from_digest(Namespace::new("app")?, [7; 32]);
//! let expires_at = clock.now().saturating_add(Duration::from_secs(60));
//! driver.create(&key, &Record::new(clock.now(), Default::default()), expires_at).await?;
//! clock.advance(Duration::from_millis(59_999));
//! assert!(matches!(driver.load(&key).await?, LoadResult::Found(_)));
//! clock.advance(Duration::from_millis(1)); // now == expires_at
//! assert_eq!(driver.load(&key).await?, LoadResult::Missing);
//! assert_eq!(driver.touch(&key, clock.now(), Timestamp::MAX).await?, WriteResult::Gone);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! #
//! # // The example passes the whole driver suite (sessionkit-conformance is a
//! # // dev-dependency of sessionkit, so this doctest can run it).
//! # struct Factory;
//! # impl sessionkit_conformance::DriverFactory for Factory {
//! #     type Driver = MapDriver;
//! #     async fn build(&self, clock: &ManualClock) -> MapDriver {
//! #         MapDriver::new(clock.shared())
//! #     }
//! #     async fn corrupt(&self, driver: &MapDriver, key: &StoreKey) -> bool {
//! #         driver.put_raw(key, b"not a record", Timestamp::MAX);
//! #         true
//! #     }
//! # }
//! # sessionkit_conformance::block_on(async {
//! #     use sessionkit_conformance::driver::*;
//! #     let f = &Factory;
//! #     load_missing_is_missing(f).await;
//! #     create_then_load_round_trips(f).await;
//! #     create_is_insert_if_absent(f).await;
//! #     create_after_expiry_succeeds(f).await;
//! #     concurrent_creates_of_one_key_admit_one(f).await;
//! #     patch_applies_clear_remove_set_and_last_seen(f).await;
//! #     patch_of_missing_is_gone_and_creates_nothing(f).await;
//! #     touch_moves_last_seen_only(f).await;
//! #     touch_of_missing_is_gone_and_creates_nothing(f).await;
//! #     patch_and_touch_after_delete_are_gone(f).await;
//! #     delete_is_idempotent(f).await;
//! #     load_never_returns_expired(f).await;
//! #     expired_at_the_expiry_instant(f).await;
//! #     patch_and_touch_extend_expiry(f).await;
//! #     patch_after_expiry_is_gone(f).await;
//! #     never_expiring_records_are_kept(f).await;
//! #     large_values_round_trip(f).await;
//! #     accepted_values_round_trip(f).await;
//! #     unicode_keys_and_values_round_trip(f).await;
//! #     ten_thousand_sessions(f).await;
//! #     concurrent_patches_of_different_keys_all_survive(f).await;
//! #     namespaces_are_separate(f).await;
//! #     corrupt_record_is_not_an_error(f).await;
//! #     rotate_moves_the_record(f).await;
//! #     close_is_clean(f).await;
//! # });
//! ```
//!
//! Register it, point sessions at it (`driver = "map"` in TOML, or
//! [`SessionDef::driver`](sessionkit_core::SessionDef::driver) in code), and test it
//! with the public conformance suite: put this in `tests/conformance.rs` of your crate,
//! with the suite as a dev-dependency
//! (`[dev-dependencies] sessionkit-conformance = "0.1"`):
//!
//! ```rust,ignore
//! use sessionkit::{ManualClock, StoreKey, Timestamp};
//! use sessionkit_conformance::{DriverBackend, DriverFactory, driver_suite, session_suite};
//! use my_driver::MapDriver;
//!
//! struct Factory;
//!
//! impl DriverFactory for Factory {
//!     type Driver = MapDriver;
//!
//!     // The driver decides expiry with the clock it is given, so the suite moves
//!     // this clock instead of sleeping (`TimeSource::Manual`, the default).
//!     async fn build(&self, clock: &ManualClock) -> MapDriver {
//!         MapDriver::new(clock.shared())
//!     }
//!
//!     // Bytes that are not a record, for the corrupt-record case.
//!     async fn corrupt(&self, driver: &MapDriver, key: &StoreKey) -> bool {
//!         driver.put_raw(key, b"not a record", Timestamp::MAX);
//!         true
//!     }
//! }
//!
//! driver_suite!(Factory);
//! session_suite!(DriverBackend(Factory));
//! ```
//!
//! Each case becomes a `#[test]`; `cargo test` runs them. A driver whose store keeps
//! its own time (a database server's clock) declares
//! [`TimeSource::Real`](https://docs.rs/sessionkit-conformance) in
//! `DriverFactory::time` instead, and the expiry cases then sleep for a few seconds.
//!
//! # The contract
//!
//! Every driver must behave like this, atomically per session (the conformance suite in
//! `sessionkit-conformance` checks each point). *Live* means stored and not expired
//! ([Time](#time) defines expired).
//!
//! | call | behaviour |
//! |---|---|
//! | [`load`](Driver::load) | the live record, or [`LoadResult::Missing`]; **never** an expired record. Bytes that do not decode are [`LoadResult::Corrupt`], never an error: the session layer logs them (a `warn` event, and the `sessionkit_records_corrupt_total` counter) and treats the session as missing. |
//! | [`create`](Driver::create) | insert-if-absent; an existing live record is [`DriverError::Duplicate`] and is left untouched. An expired record under the key does not count: it is replaced. |
//! | [`patch`](Driver::patch) | if the key holds a live record: apply [`Patch::apply_to`] and set the new expiry, return [`WriteResult::Applied`]; otherwise (never written, deleted, expired, a forward) [`WriteResult::Gone`] and write nothing (no resurrection) |
//! | [`touch`](Driver::touch) | the same, moving only `last_seen` and the expiry |
//! | [`delete`](Driver::delete) | remove the record; deleting a missing key is not an error |
//! | [`rotate`](Driver::rotate) | renew an id (optional, see below) |
//! | [`close`](Driver::close) | release connections and memory; later calls may fail with [`DriverError::Closed`] |
//!
//! **Undecodable records on write.** The session layer never patches or touches a
//! record it loaded as `Corrupt` (it starts a new session under a new id), so a write
//! meets one only when the record went bad after the request loaded it. Such a
//! `patch` or `touch` answers [`WriteResult::Gone`] and writes nothing: that is what a
//! driver that decodes before writing does (the example above, the file driver of the
//! examples; the memory driver holds decoded records and never meets one). A store
//! that applies a change without reading the record back (the Redis and PostgreSQL
//! drivers) may instead apply it to what is stored and answer
//! [`WriteResult::Applied`]; the record then still loads as `Corrupt`. Either way it is
//! never an error, and `delete` removes the record.
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
//! ## Stores that never wait
//!
//! A store in the process (the memory driver, a cache in front of another store) can
//! answer [`lookup_now`](Driver::lookup_now) and [`write_now`](Driver::write_now):
//! the same answers as `lookup` and the writes, given at once. The session layer then
//! makes no boxed future for the request's load and save, and a lookup may lend the
//! stored record (`LookupNow::Shared`, an `Arc` the store copies on its next write)
//! instead of copying it. A driver that answers one write answers every write, and
//! answers what the async calls would: the suite's `lookup_now_answers_as_lookup` and
//! `write_now_answers_as_the_calls` compare them. A networked driver keeps the
//! defaults (`None`).
//!
//! # Time
//!
//! Each write gives the record an absolute expiry, `expires_at`, which the driver
//! keeps beside it. **A record is expired when `now >= expires_at`**: live up to the
//! millisecond before `expires_at`, expired at that instant and after
//! ([`is_expired`] is this rule). From then on the store may forget the record, and
//! it must behave as if it had: `load` says `Missing`, `patch` and `touch` say `Gone`,
//! `create` succeeds. The memory driver, the PostgreSQL driver, the file driver of the
//! examples and the session layer's own deadlines all use this rule, and the
//! conformance suite checks it at the exact instant for drivers that follow its clock.
//!
//! `now` must come from the registry's clock, the one that also dates the records
//! and computes every `expires_at`; a driver reading a clock of its own would expire
//! sessions early or late, and tests that move a [`ManualClock`](crate::ManualClock)
//! would not move it. The registry's clock is a [`SharedClock`](crate::SharedClock)
//! (`Arc<dyn Clock>`): [`SystemClock`](crate::SystemClock) for
//! [`Registry::new`](crate::Registry::new), or whatever you passed to
//! [`Registry::with_clock`](crate::Registry::with_clock). Hand the same one to your
//! driver, as the built-in memory driver gets it:
//!
//! ```
//! # use sessionkit::{Driver, DriverError, LoadResult, Patch, Record, SharedClock, StoreKey, Timestamp, WriteResult};
//! # struct MyDriver { _clock: SharedClock }
//! # impl MyDriver { fn new(clock: SharedClock) -> Self { MyDriver { _clock: clock } } }
//! # impl Driver for MyDriver {
//! #     async fn load(&self, _: &StoreKey) -> Result<LoadResult, DriverError> { Ok(LoadResult::Missing) }
//! #     async fn create(&self, _: &StoreKey, _: &Record, _: Timestamp) -> Result<(), DriverError> { Ok(()) }
//! #     async fn patch(&self, _: &StoreKey, _: &Patch, _: Timestamp) -> Result<WriteResult, DriverError> { Ok(WriteResult::Gone) }
//! #     async fn touch(&self, _: &StoreKey, _: Timestamp, _: Timestamp) -> Result<WriteResult, DriverError> { Ok(WriteResult::Gone) }
//! #     async fn delete(&self, _: &StoreKey) -> Result<(), DriverError> { Ok(()) }
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sessionkit::{ManualClock, Registry};
//!
//! // In production: the registry's own clock (the system clock).
//! let mut registry = Registry::new();
//! let clock = registry.clock().clone();
//! registry.register_driver("mine", MyDriver::new(clock))?;
//!
//! // In tests: one manual clock for both; clones of it share the time.
//! let clock = ManualClock::starting_now();
//! let mut registry = Registry::with_clock(clock.shared());
//! registry.register_driver("mine", MyDriver::new(clock.shared()))?;
//! # Ok(()) }
//! ```
//!
//! A store that decides expiry with its own clock (PostgreSQL's `now()`, Redis key
//! expiry) applies the rule with that clock, which must agree with the application
//! servers' (keep them in sync with NTP); its conformance tests declare
//! `TimeSource::Real`. Such a store may be off by its clock's precision: Redis, for
//! one, still serves a key during the millisecond of its `PEXPIREAT`. That is
//! harmless only because the session layer checks a loaded record's deadlines again,
//! with the registry's clock and the same rule; a driver that decides expiry itself
//! follows the rule exactly.
//!
//! **The range of `expires_at`.** Any [`Timestamp`] may arrive, up to and including
//! [`Timestamp::MAX`], which stands for "never" (deadlines are computed with
//! saturating arithmetic). A store whose expiry type is narrower clamps to its
//! latest instant rather than fail or wrap: Redis keeps signed 64-bit milliseconds,
//! so the Redis driver sends at most `i64::MAX` (`u64` to `i64` with `as` would turn
//! `Timestamp::MAX` into -1, an expiry in the past); PostgreSQL's `timestamptz` ends
//! in the year 294276 and its driver clamps to 9999-12-31T23:59:59.999Z. A clamped
//! expiry is still thousands of years away. An `expires_at` that has already passed
//! is valid too: the record is expired as soon as it is written.
//!
//! A store that does not forget expired entries by itself (a map, files, a plain
//! SQL table) must still never return them, as above, and should delete them now
//! and then: [`cleanup::purge_every`](crate::cleanup::purge_every) runs your purge
//! function on an interval, as the PostgreSQL driver's cleanup task does.
//!
//! # Errors and networked stores
//!
//! A store that is unreachable reports [`DriverError::Unavailable`]; the adapters turn
//! that into a 503 and the next request tries again.
//!
//! A driver for a networked store bounds each call and retries on dead connections
//! with the helpers in [`timeouts`](crate::timeouts), as the Redis and PostgreSQL
//! drivers do.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sessionkit_core::{
    KeyUpdate, LoadResult, Namespace, Patch, Placement, Record, Rotation, StoreKey, Timestamp, UpdateResult,
    UserKey, Write, WriteResult,
};

/// A boxed error from a store client.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A renewal in three calls, for drivers without forwards (the default
/// [`Driver::rotate`]): loads the record under `rotation.from` ([`WriteResult::Gone`],
/// writing nothing, when there is no live one: a session ended meanwhile is never
/// revived), creates `rotation.to` from it with the rotation's patch applied, and
/// deletes `from`.
///
/// # Errors
/// The driver's errors; [`DriverError::Duplicate`] when `to` exists already.
pub async fn rotate_by_copy<D: Driver + ?Sized>(
    driver: &D,
    rotation: &Rotation,
) -> Result<WriteResult, DriverError> {
    let LoadResult::Found(mut record) = driver.load(&rotation.from).await? else {
        return Ok(WriteResult::Gone);
    };
    rotation.patch.apply_to(&mut record);
    driver.create(&rotation.to, &record, rotation.expires_at).await?;
    driver.delete(&rotation.from).await?;
    Ok(WriteResult::Applied)
}

/// Whether a record (or forward) that expires at `expires_at` has expired at `now`:
/// `now >= expires_at`. The rule of the [contract](self#time): a record is live up to
/// the millisecond before its expiry and expired at that instant.
///
/// ```
/// use sessionkit::Timestamp;
/// use sessionkit::driver::is_expired;
///
/// let expires_at = Timestamp::from_millis(1_000);
/// assert!(!is_expired(expires_at, Timestamp::from_millis(999)));
/// assert!(is_expired(expires_at, Timestamp::from_millis(1_000)));
/// assert!(!is_expired(Timestamp::MAX, Timestamp::from_millis(u64::MAX - 1)));
/// ```
pub fn is_expired(expires_at: Timestamp, now: Timestamp) -> bool {
    now >= expires_at
}

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

/// What [`Driver::lookup_now`] answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LookupNow {
    /// The live record, lent: the store keeps it behind this `Arc` and changes its own
    /// copy when it is written (`Arc::make_mut`), so the caller's stays as loaded.
    Shared(Arc<Record>),
    /// Any other answer, as [`Driver::lookup`] gives it.
    Lookup(Lookup),
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
    /// Loads the live record under `key`: [`LoadResult::Missing`] when there is none
    /// (never written, deleted, expired: see [`is_expired`]), [`LoadResult::Corrupt`]
    /// when the stored bytes do not decode. An error only when the store fails.
    fn load(&self, key: &StoreKey) -> impl Future<Output = Result<LoadResult, DriverError>> + Send;

    /// Loads the record under `key` like [`load`](Self::load); a store that keeps
    /// tombstones of expired records answers [`Lookup::Expired`] where `load` would say
    /// [`LoadResult::Missing`]. Must cost no more round trips than `load`. The session
    /// layer calls this rather than `load`; the default is `load`.
    fn lookup(&self, key: &StoreKey) -> impl Future<Output = Result<Lookup, DriverError>> + Send {
        async move { self.load(key).await.map(Lookup::Loaded) }
    }

    /// Answers [`lookup`](Self::lookup) at once, without a future, lending the live
    /// record instead of copying it (optional capability, for stores in this process
    /// that never wait, such as the memory driver). `None`, the default, means "call
    /// `lookup`", and the session layer does. A driver that answers must answer what
    /// `lookup` would at that moment (the conformance suite compares the two); it
    /// saves the request a boxed future, the copy of the record and its drop.
    fn lookup_now(&self, key: &StoreKey) -> Option<Result<LookupNow, DriverError>> {
        let _ = key;
        None
    }

    /// Carries out a request's write at once, without a future (optional capability,
    /// like [`lookup_now`](Self::lookup_now), for stores in this process that never
    /// wait): what [`create`](Self::create) (`Ok(WriteResult::Applied)` for `Ok(())`),
    /// [`patch`](Self::patch), [`touch`](Self::touch) or [`rotate`](Self::rotate)
    /// would do and answer. `None`, the default, means "call those" and must mean that
    /// nothing was written. A driver that answers once answers every write (the session
    /// layer relies on it when it follows a renewal's forward).
    fn write_now(&self, write: &Write) -> Option<Result<WriteResult, DriverError>> {
        let _ = write;
        None
    }

    /// Inserts a new record that expires at `expires_at`, if no live record exists
    /// under `key` (an expired one is replaced); otherwise [`DriverError::Duplicate`],
    /// leaving the existing record as it is.
    fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Applies a per-key patch ([`Patch::apply_to`]) to the live record under `key`
    /// and moves its expiry to `expires_at`: [`WriteResult::Applied`]. When the key
    /// holds no live record (never written, deleted, expired, a forward), writes
    /// nothing and answers [`WriteResult::Gone`]; for an undecodable record see the
    /// [module documentation](self#the-contract).
    fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<WriteResult, DriverError>> + Send;

    /// Moves `last_seen` and the expiry of the live record under `key`, as
    /// [`patch`](Self::patch) does with an empty patch: [`WriteResult::Applied`], or
    /// [`WriteResult::Gone`] with nothing written when there is no live record.
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
    /// drivers without forwards, is [`rotate_by_copy`]: no grace window, and not
    /// atomic (a change another request makes between its steps can be lost), so a
    /// driver that offers [`update`](Self::update) should implement this too.
    fn rotate(&self, rotation: &Rotation) -> impl Future<Output = Result<WriteResult, DriverError>> + Send {
        rotate_by_copy(self, rotation)
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

    /// A compare-and-set of one key of the live record under `key` (optional
    /// capability, behind `Session::update`): applies `update` only if the key holds
    /// `update.expected`, then sets `last_seen` and the expiry to `expires_at` as a
    /// patch does, atomically. [`UpdateResult::Conflict`] carries the value stored
    /// instead (the session layer computes again from it and retries);
    /// [`UpdateResult::Gone`] when there is no live record (as for a patch: nothing is
    /// written, nothing created). The default answers [`DriverError::Unsupported`], and
    /// `Session::update` on such a driver is that error, never a lossy fallback.
    fn update(
        &self,
        key: &StoreKey,
        update: &KeyUpdate,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<UpdateResult, DriverError>> + Send {
        let _ = (key, update, expires_at);
        async { Err(DriverError::Unsupported("atomic updates of one key")) }
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
    fn lookup_now(&self, _key: &StoreKey) -> Option<Result<LookupNow, DriverError>> {
        None
    }
    fn write_now(&self, _write: &Write) -> Option<Result<WriteResult, DriverError>> {
        None
    }
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
    fn update<'a>(
        &'a self,
        key: &'a StoreKey,
        update: &'a KeyUpdate,
        expires_at: Timestamp,
    ) -> BoxFuture<'a, Result<UpdateResult, DriverError>>;
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
    fn lookup_now(&self, key: &StoreKey) -> Option<Result<LookupNow, DriverError>> {
        Driver::lookup_now(self, key)
    }
    fn write_now(&self, write: &Write) -> Option<Result<WriteResult, DriverError>> {
        Driver::write_now(self, write)
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
    fn update<'a>(
        &'a self,
        key: &'a StoreKey,
        update: &'a KeyUpdate,
        expires_at: Timestamp,
    ) -> BoxFuture<'a, Result<UpdateResult, DriverError>> {
        Box::pin(Driver::update(self, key, update, expires_at))
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
    fn lookup_now(&self, key: &StoreKey) -> Option<Result<LookupNow, DriverError>> {
        D::lookup_now(self, key)
    }
    fn write_now(&self, write: &Write) -> Option<Result<WriteResult, DriverError>> {
        D::write_now(self, write)
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
    fn update(
        &self,
        key: &StoreKey,
        update: &KeyUpdate,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<UpdateResult, DriverError>> + Send {
        D::update(self, key, update, expires_at)
    }
    fn placement(&self) -> Placement {
        D::placement(self)
    }
    fn close(&self) -> impl Future<Output = Result<(), DriverError>> + Send {
        D::close(self)
    }
}
