//! The per-request session state machine.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand_core::CryptoRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::codec::{self, Rejection, SealedRecord};
use crate::cookies::{SetCookie, SetCookieTooLarge, visit_cookie_values};
use crate::def::{SessionName, SessionSpec, Storage};
use crate::delta::Delta;
use crate::expiry::ExpiredBy;
use crate::id::{Fingerprint, SessionId, StoreKey};
use crate::keys::KeyUse;
use crate::record::{Patch, Record};
use crate::time::Timestamp;

/// Keys starting with this prefix are sessionkit's own and refused by `insert`/`remove`.
pub const RESERVED_PREFIX: &str = "__sessionkit.";
/// Where flash messages are kept.
pub const FLASH_KEY: &str = "__sessionkit.flash";

/// What the store returned for a load request.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadResult {
    /// The record (the driver has already dropped expired ones; the core checks again).
    Found(Record),
    /// No record under that key.
    Missing,
    /// Something was stored but could not be decoded. Treated as missing and reported
    /// as [`Event::CorruptRecord`]; never an error.
    Corrupt,
}

/// The store write a finished request needs. Every variant carries the absolute instant
/// at which the store may forget the record.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert a new record; must not overwrite an existing one.
    Create {
        /// Where.
        key: StoreKey,
        /// What.
        record: Record,
        /// Until when.
        expires_at: Timestamp,
    },
    /// Apply a per-key patch, only if the record still exists.
    Patch {
        /// Where.
        key: StoreKey,
        /// The change.
        patch: Patch,
        /// The new expiry.
        expires_at: Timestamp,
    },
    /// Move last-seen (an idle refresh), only if the record still exists.
    Touch {
        /// Where.
        key: StoreKey,
        /// The new last-seen.
        last_seen: Timestamp,
        /// The new expiry.
        expires_at: Timestamp,
    },
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &StoreKey {
        match self {
            Write::Create { key, .. } | Write::Patch { key, .. } | Write::Touch { key, .. } => key,
        }
    }
}

/// What the store said about a [`Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    /// Done.
    Applied,
    /// A patch or touch found no record: the session was destroyed, regenerated or
    /// expired by a concurrent request. Nothing was written, and nothing must be
    /// resurrected.
    Gone,
}

/// Something worth logging. Sessions appear only as [`Fingerprint`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A cookie with the session's name was presented and refused.
    CookieRejected {
        /// Why (of the first refused candidate).
        reason: Rejection,
    },
    /// A presented session had expired.
    Expired {
        /// The session (`None` for cookie sessions, which have no id).
        session: Option<Fingerprint>,
        /// Absolute or idle.
        by: ExpiredBy,
    },
    /// A validly signed id that the store does not know.
    Unknown {
        /// The session.
        session: Fingerprint,
    },
    /// The store held bytes it could not decode under the session's key.
    CorruptRecord {
        /// The session.
        session: Fingerprint,
    },
    /// A new session is created by this response.
    Created {
        /// The new session.
        session: Fingerprint,
    },
    /// The session id was replaced.
    Regenerated {
        /// The old id.
        from: Fingerprint,
        /// The new id.
        to: Fingerprint,
    },
    /// The session was destroyed.
    Destroyed {
        /// The session.
        session: Option<Fingerprint>,
    },
    /// The cookie was verified with a previous key and is re-issued with the primary.
    Reissued {
        /// The session.
        session: Option<Fingerprint>,
    },
    /// The response was a server error, so the request's changes were dropped.
    ChangesDropped {
        /// The response status.
        status: u16,
    },
}

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

/// Errors from [`SessionMachine::finish`]. Nothing has been written when one occurs; the
/// response must not go out as a success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FinishError {
    /// The session does not fit in a cookie.
    #[error("session `{session}` does not fit in its cookie: {source}")]
    CookieTooLarge {
        /// The session.
        session: SessionName,
        /// The cookie and its size.
        #[source]
        source: SetCookieTooLarge,
    },
    /// The data could not be sealed.
    #[error("session `{session}` could not be sealed")]
    Seal {
        /// The session.
        session: SessionName,
        /// Why.
        #[source]
        source: codec::SealError,
    },
}

/// What a finished request must do, decided entirely from the delta, the status and
/// `now`. Run [`Outcome::write`] first, then [`Outcome::delete`], then send
/// [`Outcome::set_cookie`] with the write's result.
#[derive(Debug, Default)]
#[must_use = "an outcome does nothing until its write, delete and cookie are carried out"]
pub struct Outcome {
    write: Option<Write>,
    delete: Option<StoreKey>,
    set_cookie: Option<SetCookie>,
    events: Vec<Event>,
}

impl Outcome {
    /// The store write to run first, if any.
    pub fn write(&self) -> Option<&Write> {
        self.write.as_ref()
    }

    /// The record to delete after the write, if any (regenerate, destroy).
    pub fn delete(&self) -> Option<&StoreKey> {
        self.delete.as_ref()
    }

    /// The Set-Cookie value to send once the write returned `result` (pass
    /// [`WriteResult::Applied`] when there was no write). When a patch or touch found
    /// the session gone, no cookie is sent: re-sending the old id could overwrite the
    /// cookie of the request that replaced it.
    pub fn set_cookie(&self, result: WriteResult) -> Option<&SetCookie> {
        if self.write_gone(result) {
            None
        } else {
            self.set_cookie.as_ref()
        }
    }

    /// [`set_cookie`](Self::set_cookie), by value.
    pub fn into_set_cookie(self, result: WriteResult) -> Option<SetCookie> {
        if self.write_gone(result) {
            None
        } else {
            self.set_cookie
        }
    }

    fn write_gone(&self, result: WriteResult) -> bool {
        result == WriteResult::Gone && matches!(self.write, Some(Write::Patch { .. } | Write::Touch { .. }))
    }

    /// The `Cache-Control` value the response needs once the write returned `result`:
    /// `no-store` when a cookie is set or cleared, unless the handler set its own.
    pub fn cache_control(&self, result: WriteResult) -> Option<&'static str> {
        self.set_cookie(result).map(|_| "no-store")
    }

    /// Events to log.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Whether the outcome does nothing at all.
    pub fn is_noop(&self) -> bool {
        self.write.is_none() && self.delete.is_none() && self.set_cookie.is_none()
    }
}

#[derive(Debug)]
enum State {
    Loading {
        id: SessionId,
        key: StoreKey,
        key_use: KeyUse,
    },
    Ready(Live),
}

#[derive(Debug)]
struct Live {
    /// The live server session that was loaded (`None` for new and cookie sessions).
    loaded: Option<(SessionId, StoreKey)>,
    /// The data as loaded (empty for a new session).
    original: Record,
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
            original: Record::default(),
            is_new: true,
            delta: Delta::default(),
            regenerate: false,
            destroyed: false,
            destroyed_key: None,
            reissue: false,
        }
    }

    fn existing(loaded: Option<(SessionId, StoreKey)>, original: Record, reissue: bool) -> Self {
        Live {
            loaded,
            original,
            is_new: false,
            reissue,
            ..Live::new_session()
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
    events: VecDeque<Event>,
}

impl SessionMachine {
    /// Starts a session from the request's `Cookie` header values.
    pub fn begin<'h, I>(spec: Arc<SessionSpec>, cookie_headers: I, now: Timestamp) -> Self
    where
        I: IntoIterator<Item = &'h [u8]>,
    {
        let mut events = VecDeque::new();
        let mut first_rejection = None;
        let mut state = None;
        let cookie_name = spec.def().cookie.name.as_str();
        let seen = visit_cookie_values(cookie_headers, cookie_name, |value| {
            match spec.storage() {
                Storage::Server => match codec::verify_id(spec.id_keys(), value) {
                    Ok(verified) => {
                        let key = verified.id.store_key(spec.store_namespace());
                        state = Some(State::Loading {
                            id: verified.id,
                            key,
                            key_use: verified.key,
                        });
                    }
                    Err(reason) => {
                        first_rejection.get_or_insert(reason);
                    }
                },
                Storage::Cookie => match codec::open(spec.seal_keys(), value) {
                    Ok(opened) => {
                        let SealedRecord {
                            created_at,
                            last_seen,
                            data,
                        } = opened.record;
                        let live = match spec.def().expiry.check(created_at, last_seen, now) {
                            Some(by) => {
                                events.push_back(Event::Expired { session: None, by });
                                Live::new_session()
                            }
                            None => Live::existing(
                                None,
                                Record {
                                    created_at,
                                    last_seen,
                                    data,
                                },
                                opened.key == KeyUse::Previous,
                            ),
                        };
                        state = Some(State::Ready(live));
                    }
                    Err(reason) => {
                        first_rejection.get_or_insert(reason);
                    }
                },
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
            events,
        }
    }

    /// The session's spec.
    pub fn spec(&self) -> &Arc<SessionSpec> {
        &self.spec
    }

    /// The store key to load, while the machine waits for one.
    pub fn load_request(&self) -> Option<&StoreKey> {
        match &self.state {
            State::Loading { key, .. } => Some(key),
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
        let State::Loading { .. } = &self.state else {
            return Err(SessionError::UnexpectedLoad);
        };
        let State::Loading { id, key, key_use } =
            std::mem::replace(&mut self.state, State::Ready(Live::new_session()))
        else {
            return Err(SessionError::UnexpectedLoad);
        };
        let session = key.fingerprint();
        match result {
            LoadResult::Found(record) => {
                match self
                    .spec
                    .def()
                    .expiry
                    .check(record.created_at, record.last_seen, now)
                {
                    Some(by) => self.events.push_back(Event::Expired {
                        session: Some(session),
                        by,
                    }),
                    None => {
                        let reissue = key_use == KeyUse::Previous;
                        self.state = State::Ready(Live::existing(Some((id, key)), record, reissue));
                    }
                }
            }
            LoadResult::Missing => self.events.push_back(Event::Unknown { session }),
            LoadResult::Corrupt => self.events.push_back(Event::CorruptRecord { session }),
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
            State::Loading { .. } => Err(SessionError::NotLoaded),
        }
    }

    fn live_mut(&mut self) -> Result<&mut Live, SessionError> {
        match &mut self.state {
            State::Ready(live) => Ok(live),
            State::Loading { .. } => Err(SessionError::NotLoaded),
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
    /// `None` for a new session.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`] before the load result is handed over.
    pub fn expires_at(&self) -> Result<Option<Timestamp>, SessionError> {
        let live = self.live()?;
        Ok((!live.is_new).then(|| {
            self.spec
                .def()
                .expiry
                .expires_at(live.original.created_at, live.original.last_seen)
        }))
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
            .map(|value| {
                T::deserialize(value).map_err(|source| SessionError::Deserialize {
                    key: key.to_owned(),
                    source,
                })
            })
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

    /// Sets `key` to a raw JSON value.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`], or [`SessionError::ReservedKey`].
    pub fn insert_value(&mut self, key: impl Into<String>, value: Value) -> Result<(), SessionError> {
        let key = key.into();
        check_key(&key)?;
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
        let value = serde_json::to_value(value).map_err(|source| SessionError::Serialize {
            key: key.clone(),
            source,
        })?;
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

    /// Removes every key (flash messages included). The session itself lives on.
    ///
    /// # Errors
    /// [`SessionError::NotLoaded`].
    pub fn clear(&mut self) -> Result<(), SessionError> {
        self.live_mut()?.delta.clear();
        Ok(())
    }

    /// Adds a flash message: kept in the session until [`take_flashes`](Self::take_flashes)
    /// reads it, exactly once.
    ///
    /// # Errors
    /// [`SessionError::Serialize`], or [`SessionError::NotLoaded`].
    pub fn flash<T: Serialize + ?Sized>(&mut self, message: &T) -> Result<(), SessionError> {
        let message = serde_json::to_value(message).map_err(|source| SessionError::Serialize {
            key: FLASH_KEY.to_owned(),
            source,
        })?;
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
        *live = Live::new_session();
        live.destroyed = true;
        live.destroyed_key = destroyed_key;
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
        match self.spec.storage() {
            Storage::Server => finish_server(&self.spec, live, self.cookie_present, now, rng, &mut outcome),
            Storage::Cookie => finish_cookie(&self.spec, &live, self.cookie_present, now, rng, &mut outcome)?,
        }
        Ok(outcome)
    }
}

fn check_key(key: &str) -> Result<(), SessionError> {
    if key.starts_with(RESERVED_PREFIX) {
        return Err(SessionError::ReservedKey { key: key.to_owned() });
    }
    Ok(())
}

fn finish_server<R: CryptoRng + ?Sized>(
    spec: &SessionSpec,
    live: Live,
    cookie_present: bool,
    now: Timestamp,
    rng: &mut R,
    outcome: &mut Outcome,
) {
    let expiry = &spec.def().expiry;
    let new_cookie = |id: &SessionId, created: Timestamp| {
        let value = codec::sign_id(spec.id_keys(), id);
        let max_age = created.saturating_add(expiry.ttl()).saturating_since(now);
        // A signed id is 92 characters; with the validated attributes the header is far
        // below 4096 bytes, so this cannot fail for any valid configuration.
        spec.def().cookie.render(&value, max_age).ok()
    };
    match live.loaded {
        Some((id, key)) => {
            let created = live.original.created_at;
            let expires_at = expiry.expires_at(created, now);
            if expires_at <= now {
                // The absolute lifetime ran out during the request.
                outcome.events.push(Event::Expired {
                    session: Some(key.fingerprint()),
                    by: ExpiredBy::Absolute,
                });
                return;
            }
            if live.regenerate {
                let new_id = SessionId::generate(rng);
                let new_key = new_id.store_key(spec.store_namespace());
                outcome.events.push(Event::Regenerated {
                    from: key.fingerprint(),
                    to: new_key.fingerprint(),
                });
                outcome.write = Some(Write::Create {
                    key: new_key,
                    record: Record {
                        created_at: created,
                        last_seen: now,
                        data: live.delta.view(&live.original.data),
                    },
                    expires_at,
                });
                outcome.delete = Some(key);
                outcome.set_cookie = new_cookie(&new_id, created);
                return;
            }
            if let Some(patch) = live.delta.patch(&live.original.data, now) {
                outcome.write = Some(Write::Patch {
                    key: key.clone(),
                    patch,
                    expires_at,
                });
            } else if expiry.touch_due(live.original.last_seen, now) {
                outcome.write = Some(Write::Touch {
                    key: key.clone(),
                    last_seen: now,
                    expires_at,
                });
            }
            if live.reissue {
                outcome.events.push(Event::Reissued {
                    session: Some(key.fingerprint()),
                });
                outcome.set_cookie = new_cookie(&id, created);
            }
        }
        None => {
            if live.destroyed {
                outcome.events.push(Event::Destroyed {
                    session: live.destroyed_key.as_ref().map(StoreKey::fingerprint),
                });
                outcome.delete = live.destroyed_key;
            }
            if !live.delta.view_is_empty(&live.original.data) {
                let id = SessionId::generate(rng);
                let key = id.store_key(spec.store_namespace());
                outcome.events.push(Event::Created {
                    session: key.fingerprint(),
                });
                outcome.write = Some(Write::Create {
                    key,
                    record: Record::new(now, live.delta.view(&live.original.data)),
                    expires_at: expiry.expires_at(now, now),
                });
                outcome.set_cookie = new_cookie(&id, now);
            } else if live.destroyed && cookie_present {
                outcome.set_cookie = Some(spec.def().cookie.render_removal());
            }
        }
    }
}

fn finish_cookie<R: CryptoRng + ?Sized>(
    spec: &SessionSpec,
    live: &Live,
    cookie_present: bool,
    now: Timestamp,
    rng: &mut R,
    outcome: &mut Outcome,
) -> Result<(), FinishError> {
    let expiry = &spec.def().expiry;
    let data_changed = live.delta.changes(&live.original.data);
    if live.destroyed {
        outcome.events.push(Event::Destroyed { session: None });
    }
    let (created, reseal) = if live.is_new {
        (now, !live.delta.view_is_empty(&live.original.data))
    } else {
        let due = expiry.touch_due(live.original.last_seen, now);
        (
            live.original.created_at,
            data_changed || live.regenerate || due || live.reissue,
        )
    };
    if !reseal {
        if live.destroyed && cookie_present {
            outcome.set_cookie = Some(spec.def().cookie.render_removal());
        }
        return Ok(());
    }
    let expires_at = expiry.expires_at(created, now);
    if expires_at <= now {
        return Ok(());
    }
    let record = SealedRecord {
        created_at: created,
        last_seen: now,
        data: live.delta.view(&live.original.data),
    };
    let value = codec::seal(spec.seal_keys(), &record, rng).map_err(|source| FinishError::Seal {
        session: spec.name().clone(),
        source,
    })?;
    let max_age: Duration = expires_at.saturating_since(now);
    let cookie = spec
        .def()
        .cookie
        .render(&value, max_age)
        .map_err(|source| FinishError::CookieTooLarge {
            session: spec.name().clone(),
            source,
        })?;
    if live.reissue && !live.is_new {
        outcome.events.push(Event::Reissued { session: None });
    }
    outcome.set_cookie = Some(cookie);
    Ok(())
}
