//! The per-request session state machine.
//!
//! This module holds the machine and its data API; [`output`] the vocabulary it answers
//! in; [`server`] and [`cookie`] the begin and finish rules of each kind of storage.

use std::collections::VecDeque;
use std::sync::Arc;

use rand_core::CryptoRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cookies::visit_cookie_values;
use crate::def::{SessionSpec, Storage};
use crate::delta::Delta;
use crate::expiry::{Deadlines, LifetimeError, SessionLifetime};
use crate::id::{SessionId, StoreKey};
use crate::keys::KeyUse;
use crate::record::Record;
use crate::time::Timestamp;
use crate::user::{SessionHandle, UserBinding, UserError};

mod cookie;
mod output;
mod server;

pub use output::{Event, FinishError, LoadResult, Outcome, Write, WriteResult};

/// Keys starting with this prefix are sessionkit's own and refused by `insert`/`remove`.
pub const RESERVED_PREFIX: &str = "__sessionkit.";
/// Where flash messages are kept.
pub const FLASH_KEY: &str = "__sessionkit.flash";
/// Where a session's own lifetime choices are kept ([`SessionLifetime`]).
pub const LIFETIME_KEY: &str = "__sessionkit.life";
/// Where a session's user binding is kept ([`UserBinding`]).
pub const USER_KEY: &str = "__sessionkit.user";

/// Errors from the session API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The machine is waiting for a load result; call [`SessionMachine::handle_load`]
    /// with what the store returned for [`SessionMachine::load_request`].
    #[error("the session is not loaded yet: hand the store's answer to handle_load first")]
    NotLoaded,
    /// `handle_load` was called when no load was requested.
    #[error("no load was requested for this session")]
    UnexpectedLoad,
    /// The key is reserved for sessionkit.
    #[error("session key {key:?} is reserved (keys starting with {RESERVED_PREFIX:?} are sessionkit's)")]
    ReservedKey {
        /// The key.
        key: String,
    },
    /// A value could not be encoded as JSON.
    #[error("the value for session key {key:?} could not be encoded as JSON")]
    Serialize {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The value is nested deeper than [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) or
    /// is longer than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN) encoded; nothing was
    /// changed. Refusing it here means every accepted value loads back on every driver.
    #[error(
        "the value for session key {key:?} is too {what}: session values may nest at most {} levels deep and take at most {} bytes as JSON",
        crate::MAX_VALUE_DEPTH,
        crate::MAX_VALUE_LEN
    )]
    ValueTooLarge {
        /// The key.
        key: String,
        /// `deeply nested` or `large`.
        what: &'static str,
    },
    /// A user id or label that cannot be bound.
    #[error("session user binding refused: {0}")]
    User(#[from] UserError),
    /// A per-session lifetime outside what the session's configuration allows.
    #[error("session lifetime refused: {0}")]
    Lifetime(#[from] LifetimeError),
    /// A stored value does not have the requested type.
    #[error("the value of session key {key:?} does not have the requested type")]
    Deserialize {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a machine is built once per loaded session and moves rarely; boxing the live state would add an allocation to every request"
)]
enum State {
    Loading {
        id: SessionId,
        key: StoreKey,
        key_use: KeyUse,
    },
    /// A cookie session bound to a user, waiting for that user's revocation record.
    Checking {
        live: Box<Live>,
        key: StoreKey,
    },
    Ready(Live),
}

#[derive(Debug)]
struct Live {
    /// The live server session that was loaded (`None` for new and cookie sessions).
    loaded: Option<(SessionId, StoreKey)>,
    /// The record was reached through the forward of a renewed id: the store key is
    /// the new one, the cookie's id the old one, so no cookie is ever sent for it.
    forwarded: bool,
    /// The session's own lifetime choices, as they stand (also kept in the delta when
    /// changed).
    life: SessionLifetime,
    /// The cookie's attributes changed (persistence, absolute deadline): re-send it.
    cookie_refresh: bool,
    /// Who the session belongs to, as it stands.
    user: Option<UserBinding>,
    /// This request bound the session to a (different) user.
    user_changed: bool,
    /// The bound session `destroy` ended (its binding, creation time and lifetimes),
    /// whose cookie is to be revoked.
    /// Boxed: rare, and every request moves the live state a few times.
    revoke: Option<Box<(UserBinding, Timestamp, SessionLifetime)>>,
    /// The data as loaded (empty for a new session).
    original: Original,
    is_new: bool,
    delta: Delta,
    regenerate: bool,
    destroyed: bool,
    /// The stored session `destroy` removed.
    destroyed_key: Option<StoreKey>,
    reissue: bool,
}

impl Live {
    fn new_session() -> Self {
        Live {
            loaded: None,
            forwarded: false,
            life: SessionLifetime::default(),
            cookie_refresh: false,
            user: None,
            user_changed: false,
            revoke: None,
            original: Original::default(),
            is_new: true,
            delta: Delta::default(),
            regenerate: false,
            destroyed: false,
            destroyed_key: None,
            reissue: false,
        }
    }

    fn existing(
        loaded: Option<(SessionId, StoreKey)>,
        original: Original,
        (life, user): (SessionLifetime, Option<UserBinding>),
        reissue: bool,
    ) -> Self {
        Live {
            loaded,
            life,
            user,
            original,
            is_new: false,
            reissue,
            ..Live::new_session()
        }
    }
}

/// A loaded record: owned (decoded from a store's bytes), or lent by a store in this
/// process ([`SessionMachine::handle_load_shared`]) and copied only if this request
/// changes it in place (an atomic update it takes in). Reads are the same either way.
#[derive(Debug, Clone)]
enum Original {
    Owned(Record),
    Shared(Arc<Record>),
}

impl Default for Original {
    fn default() -> Self {
        Original::Owned(Record::default())
    }
}

impl std::ops::Deref for Original {
    type Target = Record;

    fn deref(&self) -> &Record {
        match self {
            Original::Owned(record) => record,
            Original::Shared(record) => record,
        }
    }
}

impl Original {
    fn to_mut(&mut self) -> &mut Record {
        if let Original::Shared(shared) = self {
            *self = Original::Owned(Record::clone(shared));
        }
        match self {
            Original::Owned(record) => record,
            Original::Shared(shared) => Arc::make_mut(shared),
        }
    }
}

/// What a store answered for a load, the record owned or lent.
enum Found {
    Record(Original),
    Missing,
    Corrupt,
}

impl From<LoadResult> for Found {
    fn from(result: LoadResult) -> Self {
        match result {
            LoadResult::Found(record) => Found::Record(Original::Owned(record)),
            LoadResult::Missing => Found::Missing,
            LoadResult::Corrupt => Found::Corrupt,
        }
    }
}

/// The state of one named session during one request.
///
/// A `SessionMachine` never does I/O, never reads a clock and never draws randomness on
/// its own: the caller passes `now` and an RNG, runs the store calls it asks for, and
/// writes the headers it returns. Call order:
///
/// 1. [`begin`](Self::begin) with the session's spec, the request's `Cookie` headers and
///    `now`. Parses and verifies the cookie (a bad cookie means an anonymous request).
/// 2. While [`load_request`](Self::load_request) returns a key (server sessions with a
///    valid signed id), load that key from the store and pass the answer to
///    [`handle_load`](Self::handle_load). Cookie sessions are ready at once.
/// 3. Read and write with [`get`](Self::get), [`insert`](Self::insert),
///    [`remove`](Self::remove), [`clear`](Self::clear), [`flash`](Self::flash),
///    [`take_flashes`](Self::take_flashes), [`regenerate`](Self::regenerate),
///    [`destroy`](Self::destroy). Drain [`poll_event`](Self::poll_event) for logging.
/// 4. [`finish`](Self::finish) with the response status, `now` and an RNG, and carry out
///    the [`Outcome`].
///
/// A machine that is dropped, or finished while still loading, writes nothing.
#[derive(Debug)]
pub struct SessionMachine {
    spec: Arc<SessionSpec>,
    state: State,
    cookie_present: bool,
    /// Which chunk cookies (`name.k`, bit `k`) the request carried (chunked cookie
    /// sessions only).
    chunks_present: u8,
    events: VecDeque<Event>,
    /// The `now` of [`begin`](Self::begin): a new session's deadlines count from here.
    began: Timestamp,
}

impl SessionMachine {
    /// Starts a session from the request's `Cookie` header values.
    pub fn begin<'h, I>(spec: Arc<SessionSpec>, cookie_headers: I, now: Timestamp) -> Self
    where
        I: IntoIterator<Item = &'h [u8]>,
    {
        let mut events = VecDeque::new();
        if spec.storage() == Storage::Cookie && spec.def().cookie_chunks > 1 {
            let (state, cookie_present, chunks_present) =
                cookie::accept_chunked(&spec, cookie_headers, now, &mut events);
            return SessionMachine {
                spec,
                state,
                cookie_present,
                chunks_present,
                events,
                began: now,
            };
        }
        let mut first_rejection = None;
        let mut state = None;
        let cookie_name = spec.def().cookie.name.as_str();
        let seen = visit_cookie_values(cookie_headers, cookie_name, |value| {
            let accepted = match spec.storage() {
                Storage::Server => server::accept(&spec, value),
                Storage::Cookie => cookie::accept(&spec, value, now, &mut events),
            };
            match accepted {
                Ok(found) => state = Some(found),
                Err(reason) => {
                    first_rejection.get_or_insert(reason);
                }
            }
            state.is_some()
        });
        if state.is_none()
            && let Some(reason) = first_rejection
        {
            events.push_back(Event::CookieRejected { reason });
        }
        SessionMachine {
            spec,
            state: state.unwrap_or_else(|| State::Ready(Live::new_session())),
            cookie_present: seen > 0,
            chunks_present: 0,
            events,
            began: now,
        }
    }

    /// The session's spec.
    pub fn spec(&self) -> &Arc<SessionSpec> {
        &self.spec
    }

    /// The store key to load, while the machine waits for one.
    pub fn load_request(&self) -> Option<&StoreKey> {
        match &self.state {
            State::Loading { key, .. } | State::Checking { key, .. } => Some(key),
            State::Ready(_) => None,
        }
    }

    /// Hands over what the store returned for [`load_request`](Self::load_request).
    /// Expired, missing and corrupt records all give a fresh session (with an event);
    /// the presented id is never adopted for it.
    ///
    /// # Errors
    /// [`SessionError::UnexpectedLoad`] when no load was requested.
    pub fn handle_load(&mut self, result: LoadResult, now: Timestamp) -> Result<(), SessionError> {
        self.handle_found(Found::from(result), now)
    }

    /// [`handle_load`](Self::handle_load) with a record the store lends rather than
    /// copies (a store in this process keeps its records behind an `Arc`): the same
    /// rules, without copying the data. The record is copied only if this request
    /// changes it in place.
    ///
    /// # Errors
    /// [`SessionError::UnexpectedLoad`] when no load was requested.
    pub fn handle_load_shared(&mut self, record: Arc<Record>, now: Timestamp) -> Result<(), SessionError> {
        self.handle_found(Found::Record(Original::Shared(record)), now)
    }

    fn handle_found(&mut self, result: Found, now: Timestamp) -> Result<(), SessionError> {
        if let State::Checking { .. } = &self.state {
            return self.handle_revocations(&result);
        }
        let State::Loading { .. } = &self.state else {
            return Err(SessionError::UnexpectedLoad);
        };
        let State::Loading { id, key, key_use } =
            std::mem::replace(&mut self.state, State::Ready(Live::new_session()))
        else {
            return Err(SessionError::UnexpectedLoad);
        };
        let live = server::load(&self.spec, (id, key, key_use), result, now, &mut self.events);
        self.state = State::Ready(live);
        Ok(())
    }

    /// Hands over what the store returned for the key that
    /// [`load_request`](Self::load_request)'s key forwards to: the presented id was
    /// renewed by a concurrent request a moment ago and is within its grace window (the
    /// driver answered a lookup with a forward). The session is the renewed one; this
    /// request's changes go to `to`, and it never sends a cookie (the renewing response
    /// carries the new id).
    ///
    /// # Errors
    /// [`SessionError::UnexpectedLoad`] when no load was requested.
    pub fn handle_forwarded(
        &mut self,
        to: StoreKey,
        result: LoadResult,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        if let State::Checking { .. } = &self.state {
            // A revocation record never moves; whatever a store says, it is not there.
            return self.handle_revocations(&Found::Missing);
        }
        let State::Loading { .. } = &self.state else {
            return Err(SessionError::UnexpectedLoad);
        };
        let State::Loading { id, key_use, key } =
            std::mem::replace(&mut self.state, State::Ready(Live::new_session()))
        else {
            return Err(SessionError::UnexpectedLoad);
        };
        let from = key.fingerprint();
        let mut live = server::load(
            &self.spec,
            (id, to, key_use),
            Found::from(result),
            now,
            &mut self.events,
        );
        // The window is decided here too, by this clock: the renewed record says when
        // its id was issued, and a store may keep a forward past the window it was
        // given (its own clock, coarse expiry).
        let grace = self.spec.def().expiry.renew_grace();
        let in_window = live
            .life
            .id_issued()
            .is_some_and(|issued| now < issued.saturating_add(grace));
        if live.loaded.is_some() && !in_window {
            self.events.push_back(Event::Unknown { session: from });
            live = Live::new_session();
        }
        if live.loaded.is_some() {
            live.forwarded = true;
            live.reissue = false;
        }
        self.state = State::Ready(live);
        Ok(())
    }

    /// Hands over that the store holds no live record for
    /// [`load_request`](Self::load_request) but remembers that one expired there, with
    /// its creation and last-seen times (a driver's tombstone). Like
    /// [`LoadResult::Missing`] this gives a fresh session and never adopts the presented
    /// id; the event is [`Event::Expired`] with the reason the session's policy gives for
    /// those times, or [`Event::Unknown`] if the policy says it would still be live.
    ///
    /// # Errors
    /// [`SessionError::UnexpectedLoad`] when no load was requested.
    pub fn handle_expired(
        &mut self,
        created_at: Timestamp,
        last_seen: Timestamp,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        if let State::Checking { .. } = &self.state {
            return self.handle_revocations(&Found::Missing);
        }
        let State::Loading { key, .. } = &self.state else {
            return Err(SessionError::UnexpectedLoad);
        };
        let live = server::load_expired(&self.spec, key, (created_at, last_seen), now, &mut self.events);
        self.state = State::Ready(live);
        Ok(())
    }

    /// A bound cookie session's revocation record (or its absence): a revoked session
    /// is an anonymous request, with [`Event::Revoked`]. A record that does not decode
    /// revokes too (fail closed: it is only ever written by sessionkit).
    fn handle_revocations(&mut self, result: &Found) -> Result<(), SessionError> {
        let State::Checking { live, .. } =
            std::mem::replace(&mut self.state, State::Ready(Live::new_session()))
        else {
            return Err(SessionError::UnexpectedLoad);
        };
        let handle = live.user.as_ref().and_then(UserBinding::handle);
        let revoked = match (result, handle) {
            (Found::Record(record), Some(handle)) => {
                crate::revocation::revokes(record, handle, live.original.created_at)
            }
            (Found::Missing, _) => false,
            (Found::Corrupt, _) | (Found::Record(_), None) => true,
        };
        if revoked {
            self.events.push_back(Event::Revoked { session: None });
        } else {
            self.state = State::Ready(*live);
        }
        Ok(())
    }

    /// The next event to log, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn live(&self) -> Result<&Live, SessionError> {
        match &self.state {
            State::Ready(live) => Ok(live),
            State::Loading { .. } | State::Checking { .. } => Err(SessionError::NotLoaded),
        }
    }

    fn live_mut(&mut self) -> Result<&mut Live, SessionError> {
        match &mut self.state {
            State::Ready(live) => Ok(live),
            State::Loading { .. } | State::Checking { .. } => Err(SessionError::NotLoaded),
        }
    }

    /// Whether no live session was presented (or it was destroyed).
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`] before the load result is handed over.
    pub fn is_new(&self) -> Result<bool, SessionError> {
        Ok(self.live()?.is_new)
    }

    /// When the loaded session expires as things stand (before this request's save);
    /// `None` for a new session. See [`deadlines`](Self::deadlines) for both deadlines,
    /// new sessions included.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`] before the load result is handed over.
    pub fn expires_at(&self) -> Result<Option<Timestamp>, SessionError> {
        let live = self.live()?;
        Ok((!live.is_new).then(|| self.deadlines_of(live).expires_at()))
    }

    /// The session's absolute and idle deadlines, with its own lifetime choices: as
    /// loaded (before this request's save), or for a new session as if it were saved at
    /// the request's start.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`] before the load result is handed over.
    pub fn deadlines(&self) -> Result<Deadlines, SessionError> {
        Ok(self.deadlines_of(self.live()?))
    }

    fn deadlines_of(&self, live: &Live) -> Deadlines {
        let (created, seen) = if live.is_new {
            (self.began, self.began)
        } else {
            (live.original.created_at, live.original.last_seen)
        };
        self.spec.def().expiry.deadlines(created, seen, &live.life)
    }

    /// The session's own lifetime choices (persistence, shorter lifetimes, deadline).
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`] before the load result is handed over.
    pub fn lifetime(&self) -> Result<SessionLifetime, SessionError> {
        Ok(self.live()?.life)
    }

    /// Whether the cookie is persistent (`Max-Age`) or a browser-session cookie: the
    /// session's own choice, else its configuration's `persistent`.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`] before the load result is handed over.
    pub fn is_persistent(&self) -> Result<bool, SessionError> {
        Ok(self.live()?.life.persistent_or(self.spec.def().cookie.persistent))
    }

    /// Whether this request changed the session: data, flash messages, lifetimes, a
    /// regenerate or a destroy. A due idle refresh or renewal does not count.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`] before the load result is handed over.
    pub fn is_modified(&self) -> Result<bool, SessionError> {
        let live = self.live()?;
        Ok(live.regenerate || live.destroyed || live.delta.changes(&live.original.data))
    }

    fn change_life(
        &mut self,
        change: impl FnOnce(&mut SessionLifetime),
        refresh_cookie: bool,
    ) -> Result<(), SessionError> {
        let live = self.live_mut()?;
        let before = live.life;
        change(&mut live.life);
        if live.life != before {
            live.delta.set(LIFETIME_KEY.to_owned(), live.life.to_value());
            live.cookie_refresh |= refresh_cookie;
        }
        Ok(())
    }

    /// Chooses a persistent cookie (`true`: `Max-Age` until the absolute deadline, it
    /// survives a browser restart) or a browser-session cookie (`false`: no `Max-Age`,
    /// the browser drops it when it closes) for this session; typically at sign-in,
    /// from a "remember me" box. The server-side lifetimes apply either way. The
    /// default comes from the session's `persistent` setting. An existing session gets
    /// its cookie re-sent with the new attributes.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn set_persistent(&mut self, persistent: bool) -> Result<(), SessionError> {
        self.change_life(|life| life.set_persistent(persistent), true)
    }

    /// Gives this session a shorter absolute lifetime than configured, counted from its
    /// creation. Kept in the record and enforced like the configured one.
    ///
    /// # Errors
    /// [`SessionError::Lifetime`] for zero or more than the configured `ttl`;
    /// [`SessionError::NotLoaded`].
    pub fn set_ttl(&mut self, ttl: std::time::Duration) -> Result<(), SessionError> {
        self.spec.def().expiry.check_ttl(ttl)?;
        self.change_life(|life| life.set_ttl(ttl), true)
    }

    /// Gives this session a shorter idle timeout than configured (or one, when none is
    /// configured).
    ///
    /// # Errors
    /// [`SessionError::Lifetime`] for zero or more than the configured idle timeout;
    /// [`SessionError::NotLoaded`].
    pub fn set_idle_timeout(&mut self, idle: std::time::Duration) -> Result<(), SessionError> {
        self.spec.def().expiry.check_idle_timeout(idle)?;
        self.change_life(|life| life.set_idle_timeout(idle), false)
    }

    /// Ends this session at `deadline` at the latest (e.g. when a federated login's
    /// assertion expires). A later deadline than one already set, or than the
    /// configured `ttl` allows, changes nothing: deadlines only ever come closer.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn set_deadline(&mut self, deadline: Timestamp) -> Result<(), SessionError> {
        self.change_life(|life| life.set_deadline(deadline), true)
    }

    /// The raw JSON value under `key`.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`], or [`SessionError::ReservedKey`].
    pub fn get_value(&self, key: &str) -> Result<Option<&Value>, SessionError> {
        check_key(key)?;
        let live = self.live()?;
        Ok(live.delta.get(&live.original.data, key))
    }

    /// The value under `key`, decoded as `T`.
    ///
    /// # Errors
    /// [`SessionError::Deserialize`] when the stored value is not a `T`; see also
    /// [`get_value`](Self::get_value).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.get_value(key)?
            .map(|value| decode_value(key, value))
            .transpose()
    }

    /// Whether `key` is set.
    ///
    /// # Errors
    /// As [`get_value`](Self::get_value).
    pub fn contains(&self, key: &str) -> Result<bool, SessionError> {
        Ok(self.get_value(key)?.is_some())
    }

    /// The keys set, sorted, without sessionkit's own.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn keys(&self) -> Result<Vec<String>, SessionError> {
        let live = self.live()?;
        Ok(live
            .delta
            .keys(&live.original.data)
            .filter(|k| !k.starts_with(RESERVED_PREFIX))
            .map(str::to_owned)
            .collect())
    }

    /// Sets `key` to a raw JSON value: any JSON value within
    /// [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) and
    /// [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN), strings with NUL and every other
    /// character included. What this accepts loads back identically on every driver
    /// (the conformance suite checks it).
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`], [`SessionError::ReservedKey`], or
    /// [`SessionError::ValueTooLarge`].
    pub fn insert_value(&mut self, key: impl Into<String>, value: Value) -> Result<(), SessionError> {
        let key = key.into();
        self.check_value(&key, &value)?;
        self.live_mut()?.delta.set(key, value);
        Ok(())
    }

    /// Sets `key` to `value` encoded as JSON.
    ///
    /// # Errors
    /// [`SessionError::Serialize`] when `value` cannot be encoded; see also
    /// [`insert_value`](Self::insert_value).
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), SessionError> {
        let key = key.into();
        let value = encode_value(&key, value)?;
        self.insert_value(key, value)
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`], or [`SessionError::ReservedKey`].
    pub fn remove(&mut self, key: &str) -> Result<Option<Value>, SessionError> {
        check_key(key)?;
        let live = self.live_mut()?;
        let old = live.delta.get(&live.original.data, key).cloned();
        if old.is_some() {
            live.delta.remove(key);
        }
        Ok(old)
    }

    /// Where an atomic update of `key` ([`KeyUpdate`](crate::KeyUpdate)) goes: the
    /// stored session's key, the key's value as stored when this request loaded it (or
    /// last updated it), and the expiry the write sets (the session seen at `now`, with
    /// its lifetime choices as stored: this request's unsaved ones are not written by
    /// an update). `None` when the update is a change of this request instead: there is
    /// no stored record (a new or destroyed session, a cookie session), or this request
    /// already changed `key` or cleared the data (its own change is what the update
    /// must build on, and its save writes it).
    ///
    /// # Errors
    /// [`SessionError::ReservedKey`], [`SessionError::NotLoaded`].
    pub fn update_target(&self, key: &str, now: Timestamp) -> Result<Option<UpdateTarget>, SessionError> {
        check_key(key)?;
        let live = self.live()?;
        let Some((_, store_key)) = &live.loaded else {
            return Ok(None);
        };
        if live.delta.is_cleared() || live.delta.changes_key(key) {
            return Ok(None);
        }
        let stored_life = own_metadata(&live.original.data)
            .map(|(life, _)| life)
            .unwrap_or_default();
        let expires_at = self
            .spec
            .def()
            .expiry
            .deadlines(live.original.created_at, now, &stored_life)
            .expires_at();
        Ok(Some(UpdateTarget {
            key: store_key.clone(),
            current: live.original.data.get(key).cloned(),
            expires_at,
        }))
    }

    /// Checks that `value` may be stored under `key` (not reserved, within the value
    /// limits), as [`insert_value`](Self::insert_value) does.
    ///
    /// # Errors
    /// [`SessionError::ReservedKey`], [`SessionError::ValueTooLarge`].
    pub fn check_value(&self, key: &str, value: &Value) -> Result<(), SessionError> {
        check_key(key)?;
        crate::value::check(value).map_err(|limit| SessionError::ValueTooLarge {
            key: key.to_owned(),
            what: match limit {
                crate::value::ValueLimit::Depth => "deeply nested",
                crate::value::ValueLimit::Len => "large",
            },
        })
    }

    /// Takes in an atomic update the store applied at `now`: the key holds `value`
    /// (`None`: absent) as stored, so this request reads it (unless it changed the key
    /// or cleared the data since, which then wins with its save) and its save does not
    /// write it again. Nothing happens when the session was destroyed meanwhile (by a
    /// clone of the handle): the update belongs to the ended session, never to a new
    /// one.
    ///
    /// # Errors
    /// [`SessionError::ReservedKey`], [`SessionError::NotLoaded`].
    pub fn absorb_update(
        &mut self,
        key: &str,
        value: Option<Value>,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        check_key(key)?;
        let live = self.live_mut()?;
        if live.loaded.is_none() {
            return Ok(());
        }
        let original = live.original.to_mut();
        original.last_seen = original.last_seen.max(now);
        match value {
            Some(value) => {
                original.data.insert(key.to_owned(), value);
            }
            None => {
                original.data.remove(key);
            }
        }
        Ok(())
    }

    /// Removes every key (flash messages included). The session itself lives on.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn clear(&mut self) -> Result<(), SessionError> {
        let live = self.live_mut()?;
        live.delta.clear();
        // The lifetime choices and the user binding are the session's, not data: they
        // survive a clear (a sign-out is `destroy`).
        if !live.life.is_default() {
            live.delta.set(LIFETIME_KEY.to_owned(), live.life.to_value());
        }
        if let Some(user) = &live.user {
            live.delta.set(USER_KEY.to_owned(), user.to_value());
        }
        Ok(())
    }

    /// Binds the session to a user (typically right after [`regenerate`](Self::regenerate)
    /// at sign-in), so that it appears in that user's list of sessions and ends with
    /// "log out everywhere". Binding another user drops the label. The id is stored as
    /// given, inside the record; indexes use a hash of it ([`UserKey`](crate::UserKey)).
    ///
    /// # Errors
    /// [`SessionError::User`] for an empty or over-long id; [`SessionError::NotLoaded`].
    pub fn set_user(&mut self, user: &str) -> Result<(), SessionError> {
        let binding = UserBinding::new(self.spec.store_namespace(), self.spec.name(), user)?;
        let live = self.live_mut()?;
        if live.user.as_ref().is_some_and(|b| b.id() == user) {
            return Ok(());
        }
        live.delta.set(USER_KEY.to_owned(), binding.to_value());
        live.user = Some(binding);
        live.user_changed = true;
        Ok(())
    }

    /// Labels the session in its user's list (e.g. "Firefox on Linux"); cut to
    /// [`MAX_LABEL_LEN`](crate::MAX_LABEL_LEN) bytes.
    ///
    /// # Errors
    /// [`SessionError::User`] ([`UserError::NoUser`]) before [`set_user`](Self::set_user);
    /// [`SessionError::NotLoaded`].
    pub fn set_label(&mut self, label: &str) -> Result<(), SessionError> {
        let live = self.live_mut()?;
        let binding = live.user.as_mut().ok_or(UserError::NoUser)?;
        if binding.label() == Some(label) {
            return Ok(());
        }
        binding.set_label(label);
        let value = binding.to_value();
        live.delta.set(USER_KEY.to_owned(), value);
        Ok(())
    }

    /// The user the session is bound to, if any.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn user(&self) -> Result<Option<&UserBinding>, SessionError> {
        Ok(self.live()?.user.as_ref())
    }

    /// The public handle of this session in its user's list: for a stored session that
    /// was loaded (a new one gets its handle when saved; cookie sessions have none).
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn handle(&self) -> Result<Option<SessionHandle>, SessionError> {
        let live = self.live()?;
        Ok(match &live.loaded {
            Some((_, key)) => Some(SessionHandle::of(key)),
            None => live.user.as_ref().and_then(UserBinding::handle),
        })
    }

    /// Adds a flash message: kept in the session until [`take_flashes`](Self::take_flashes)
    /// reads it, exactly once.
    ///
    /// # Errors
    /// [`SessionError::Serialize`], or [`SessionError::NotLoaded`].
    pub fn flash<T: Serialize + ?Sized>(&mut self, message: &T) -> Result<(), SessionError> {
        let message = encode_value(FLASH_KEY, message)?;
        let live = self.live_mut()?;
        let mut list = match live.delta.get(&live.original.data, FLASH_KEY) {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        list.push(message);
        live.delta.set(FLASH_KEY.to_owned(), Value::Array(list));
        Ok(())
    }

    /// Returns and removes every flash message. Messages that do not decode as `T` are
    /// dropped with the rest.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn take_flashes<T: DeserializeOwned>(&mut self) -> Result<Vec<T>, SessionError> {
        let live = self.live_mut()?;
        let Some(value) = live.delta.get(&live.original.data, FLASH_KEY) else {
            return Ok(Vec::new());
        };
        let messages = match value {
            Value::Array(items) => items.iter().filter_map(|v| T::deserialize(v).ok()).collect(),
            _ => Vec::new(),
        };
        live.delta.remove(FLASH_KEY);
        Ok(messages)
    }

    /// Replaces the session id (keeping the data and the creation time) when the
    /// response is saved, and deletes the old record. Call it on every privilege change
    /// (sign-in) against session fixation. A new session gets a fresh id anyway.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn regenerate(&mut self) -> Result<(), SessionError> {
        self.live_mut()?.regenerate = true;
        Ok(())
    }

    /// Ends the session: the stored record is deleted and the cookie removed (with its
    /// exact `Path` and `Domain`). Writes made afterwards start a new session with a new
    /// id.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn destroy(&mut self) -> Result<(), SessionError> {
        let live = self.live_mut()?;
        let destroyed_key = live
            .loaded
            .take()
            .map(|(_, key)| key)
            .or(live.destroyed_key.take());
        // A bound cookie session's cookie is revoked when it is destroyed (logout).
        let revoke = if live.is_new {
            live.revoke.take()
        } else {
            live.user
                .take()
                .map(|user| Box::new((user, live.original.created_at, live.life)))
        };
        *live = Live::new_session();
        live.destroyed = true;
        live.destroyed_key = destroyed_key;
        live.revoke = revoke;
        Ok(())
    }

    /// Decides what the response must do. A server-error status (5xx) drops the
    /// request's changes, like a rolled-back transaction.
    ///
    /// # Errors
    /// [`FinishError`] when the session does not fit its cookie; nothing must be written
    /// and the response must not go out as a success.
    pub fn finish<R: CryptoRng + ?Sized>(
        mut self,
        status: u16,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Outcome, FinishError> {
        let mut outcome = Outcome {
            events: self.events.drain(..).collect(),
            ..Outcome::default()
        };
        let State::Ready(live) = self.state else {
            return Ok(outcome);
        };
        if status >= 500 {
            if !live.delta.is_empty() || live.regenerate || live.destroyed {
                outcome.events.push(Event::ChangesDropped { status });
            }
            return Ok(outcome);
        }
        if live.destroyed {
            outcome
                .clear_site_data
                .clone_from(&self.spec.def().clear_site_data);
        }
        match self.spec.storage() {
            Storage::Server => server::finish(&self.spec, live, self.cookie_present, now, rng, &mut outcome),
            Storage::Cookie => {
                let present = (self.cookie_present, self.chunks_present);
                cookie::finish(&self.spec, live, present, now, rng, &mut outcome)?;
            }
        }
        Ok(outcome)
    }
}

/// A record's own metadata, kept under reserved keys: its lifetime choices and its
/// user binding. `None` when either is malformed (the record is corrupt).
fn own_metadata(data: &serde_json::Map<String, Value>) -> Option<(SessionLifetime, Option<UserBinding>)> {
    let life = SessionLifetime::from_value(data.get(LIFETIME_KEY)).ok()?;
    let user = UserBinding::from_value(data.get(USER_KEY)).ok()?;
    Some((life, user))
}

/// Where an atomic update goes; see [`SessionMachine::update_target`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UpdateTarget {
    /// The stored session's key.
    pub key: StoreKey,
    /// The key's value as stored when last seen by this request.
    pub current: Option<Value>,
    /// The expiry an update written now sets.
    pub expires_at: Timestamp,
}

/// Decodes the value of data key `key` as `T` ([`SessionError::Deserialize`] when it
/// is not one): the one decoding of every typed read.
///
/// # Errors
/// [`SessionError::Deserialize`].
pub fn decode_value<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, SessionError> {
    T::deserialize(value).map_err(|source| SessionError::Deserialize {
        key: key.to_owned(),
        source,
    })
}

/// Encodes `value` for data key `key` ([`SessionError::Serialize`] when it cannot be):
/// the one encoding of every typed write.
///
/// # Errors
/// [`SessionError::Serialize`].
pub fn encode_value<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Value, SessionError> {
    serde_json::to_value(value).map_err(|source| SessionError::Serialize {
        key: key.to_owned(),
        source,
    })
}

fn check_key(key: &str) -> Result<(), SessionError> {
    if key.starts_with(RESERVED_PREFIX) {
        return Err(SessionError::ReservedKey { key: key.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::def::{ClearSiteData, SessionDef, SessionName};
    use crate::id::Namespace;
    use crate::keys::{KeyRing, Secret};

    pub(crate) const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    pub(crate) fn spec(cookie_storage: bool) -> Arc<SessionSpec> {
        let mut def = SessionDef::new(SessionName::new("web").expect("valid"));
        if cookie_storage {
            def.driver = crate::def::DriverChoice::Cookie;
        }
        let keys = KeyRing::new(&Secret::new(vec![9u8; 32]).expect("long"));
        Arc::new(SessionSpec::new(def, &Namespace::new("app").expect("valid"), &keys).expect("valid"))
    }

    pub(crate) fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(1)
    }

    /// The `name=value` pair of a Set-Cookie value, as a browser sends it back.
    pub(crate) fn cookie_pair(outcome: &Outcome) -> String {
        let set = outcome.set_cookie(WriteResult::Applied).expect("a cookie");
        set.as_str()
            .split(';')
            .next()
            .expect("split yields one item")
            .to_owned()
    }

    #[test]
    fn reserved_keys_are_refused() {
        let mut machine = SessionMachine::begin(spec(false), [], T0);
        assert!(matches!(
            machine.insert("__sessionkit.x", &1),
            Err(SessionError::ReservedKey { .. })
        ));
        assert!(matches!(
            machine.get_value(FLASH_KEY),
            Err(SessionError::ReservedKey { .. })
        ));
        machine.flash("hi").expect("flash");
        assert_eq!(machine.keys().expect("ready"), Vec::<String>::new());
        assert_eq!(machine.take_flashes::<String>().expect("ready"), ["hi"]);
        assert!(machine.take_flashes::<String>().expect("ready").is_empty());
    }

    #[test]
    fn a_new_machine_is_ready_and_refuses_a_load() {
        let mut machine = SessionMachine::begin(spec(false), [], T0);
        assert!(machine.is_new().expect("ready"));
        assert_eq!(machine.expires_at().expect("ready"), None);
        assert!(matches!(
            machine.handle_load(LoadResult::Missing, T0),
            Err(SessionError::UnexpectedLoad)
        ));
    }

    #[test]
    fn a_server_error_drops_the_changes() {
        let mut machine = SessionMachine::begin(spec(false), [], T0);
        machine.insert("user", "ada").expect("ready");
        let outcome = machine.finish(503, T0, &mut rng()).expect("finishes");
        assert!(outcome.is_noop());
        assert_eq!(outcome.events(), [Event::ChangesDropped { status: 503 }]);
    }

    #[test]
    fn destroy_sends_clear_site_data_only_when_configured() {
        for cookie_storage in [false, true] {
            let configured = {
                let mut def = spec(cookie_storage).def().clone();
                def.clear_site_data = Some(ClearSiteData::cookies());
                let keys = KeyRing::new(&Secret::new(vec![9u8; 32]).expect("long"));
                Arc::new(SessionSpec::new(def, &Namespace::new("app").expect("valid"), &keys).expect("valid"))
            };
            for (spec, status, expected) in [
                (spec(cookie_storage), 200, None),
                (configured.clone(), 200, Some("\"cookies\"")),
                (configured.clone(), 500, None),
            ] {
                let mut machine = SessionMachine::begin(spec, std::iter::empty::<&[u8]>(), T0);
                machine.destroy().expect("ready");
                let outcome = machine.finish(status, T0, &mut rng()).expect("finishes");
                assert_eq!(outcome.clear_site_data(), expected, "{cookie_storage} {status}");
            }
            let mut machine = SessionMachine::begin(configured, std::iter::empty::<&[u8]>(), T0);
            machine.insert_value("a", serde_json::json!(1)).expect("insert");
            let outcome = machine.finish(200, T0, &mut rng()).expect("finishes");
            assert_eq!(outcome.clear_site_data(), None, "only a destroy clears site data");
        }
    }
}
