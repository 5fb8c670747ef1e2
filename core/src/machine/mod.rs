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
use crate::id::{SessionId, StoreKey};
use crate::keys::KeyUse;
use crate::record::Record;
use crate::time::Timestamp;

mod cookie;
mod output;
mod server;

pub use output::{Event, FinishError, LoadResult, Outcome, Write, WriteResult};

/// Keys starting with this prefix are sessionkit's own and refused by `insert`/`remove`.
pub const RESERVED_PREFIX: &str = "__sessionkit.";
/// Where flash messages are kept.
pub const FLASH_KEY: &str = "__sessionkit.flash";

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
    /// Which chunk cookies (`name.k`, bit `k`) the request carried (chunked cookie
    /// sessions only).
    chunks_present: u8,
    events: VecDeque<Event>,
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
        let live = server::load(&self.spec, (id, key, key_use), result, now, &mut self.events);
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
        let State::Loading { key, .. } = &self.state else {
            return Err(SessionError::UnexpectedLoad);
        };
        let live = server::load_expired(&self.spec, key, (created_at, last_seen), now, &mut self.events);
        self.state = State::Ready(live);
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
        check_key(&key)?;
        if let Err(limit) = crate::value::check(&value) {
            return Err(SessionError::ValueTooLarge {
                key,
                what: match limit {
                    crate::value::ValueLimit::Depth => "deeply nested",
                    crate::value::ValueLimit::Len => "large",
                },
            });
        }
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
        if live.destroyed {
            outcome
                .clear_site_data
                .clone_from(&self.spec.def().clear_site_data);
        }
        match self.spec.storage() {
            Storage::Server => server::finish(&self.spec, live, self.cookie_present, now, rng, &mut outcome),
            Storage::Cookie => {
                let present = (self.cookie_present, self.chunks_present);
                cookie::finish(&self.spec, &live, present, now, rng, &mut outcome)?;
            }
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
