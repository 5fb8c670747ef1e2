//! The session handle handlers use.

use std::fmt;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sessionkit_core::{Deadlines, SessionHandle, SessionLifetime, SessionMachine, SessionName, Timestamp};

use crate::error::Error;
use crate::sessions::{RequestInner, Sessions};

/// How many times [`Session::update`] tries before it gives up with
/// [`Error::UpdateContended`].
pub const MAX_UPDATE_ATTEMPTS: u32 = 64;

/// One named session of one request: cheap to clone, `Send + Sync`, and synchronous.
///
/// A handle is handed out already loaded (loading is what extracting it does), so every
/// method is a plain function call. Changes are kept as a delta and saved, as one
/// per-key patch, when the response is ready. After that the handle answers
/// [`Error::AlreadySaved`].
#[derive(Clone)]
pub struct Session {
    /// The request, whose slot `index` holds this session's machine (and whose registry
    /// serves the calls that reach beyond this session, such as its user's sessions).
    request: Arc<RequestInner>,
    index: usize,
}

impl Session {
    pub(crate) fn new(request: Arc<RequestInner>, index: usize) -> Self {
        Session { request, index }
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        self.request.sessions()
    }

    pub(crate) fn with_machine<T>(
        &self,
        f: impl FnOnce(&mut SessionMachine) -> Result<T, sessionkit_core::SessionError>,
    ) -> Result<T, Error> {
        self.with(f)
    }

    /// The machine, while the request is not saved (`None` after).
    fn lock(&self) -> Option<MutexGuard<'_, Option<SessionMachine>>> {
        // A handle exists only once its slot is filled. The machine's methods do not
        // panic on any input, so a poisoned lock only means a handler panicked
        // elsewhere while holding it; the state is still consistent.
        self.request
            .slot(self.index)
            .get()
            .map(|slot| slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut SessionMachine) -> Result<T, sessionkit_core::SessionError>,
    ) -> Result<T, Error> {
        let mut guard = self.lock();
        let machine = guard
            .as_mut()
            .and_then(|guard| guard.as_mut())
            .ok_or_else(|| Error::AlreadySaved {
                session: self.name().clone(),
            })?;
        Ok(f(machine)?)
    }

    /// The session name.
    pub fn name(&self) -> &SessionName {
        self.sessions().name_at(self.index)
    }

    /// Whether this request started without a live session (or destroyed it).
    ///
    /// # Errors
    /// [`Error::AlreadySaved`] after the response was saved.
    pub fn is_new(&self) -> Result<bool, Error> {
        self.with(|m| m.is_new())
    }

    /// When the session expires as loaded; `None` for a new session.
    ///
    /// # Errors
    /// [`Error::AlreadySaved`] after the response was saved.
    pub fn expires_at(&self) -> Result<Option<SystemTime>, Error> {
        self.with(|m| m.expires_at().map(|t| t.map(Timestamp::to_system_time)))
    }

    /// The value under `key`, decoded as `T`.
    ///
    /// # Errors
    /// When the stored value is not a `T`, the key is reserved, or after saving.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.with(|m| m.get(key))
    }

    /// The raw JSON value under `key`, cloned.
    ///
    /// # Errors
    /// When the key is reserved, or after saving.
    pub fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        self.with(|m| m.get_value(key).map(Option::<&Value>::cloned))
    }

    /// Sets `key` to `value` (encoded as JSON).
    ///
    /// # Errors
    /// When `value` cannot be encoded, the key is reserved, or after saving.
    pub fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        self.with(|m| m.insert(key, value))
    }

    /// Removes `key`, returning its old value.
    ///
    /// # Errors
    /// When the key is reserved, or after saving.
    pub fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        self.with(|m| m.remove(key))
    }

    /// Removes `key` and returns its old value decoded as `T` (the key is removed even
    /// when it does not decode).
    ///
    /// # Errors
    /// When the old value is not a `T`, the key is reserved, or after saving.
    pub fn remove_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let old = self.remove(key)?;
        Ok(old
            .map(|value| sessionkit_core::decode_value(key, &value))
            .transpose()?)
    }

    /// Sets `key` to `value` and returns the value it replaces, as JSON (`insert`
    /// returns nothing, which saves a clone when the old value is not wanted).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn replace<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Option<Value>, Error> {
        self.with(|m| {
            let old = m.get_value(key)?.cloned();
            m.insert(key, value)?;
            Ok(old)
        })
    }

    /// Reads, changes and writes one key atomically, against concurrent requests of
    /// the same session: `f` gets the key's current value (`None`: absent) and returns
    /// the new one (`None`: remove the key), which is stored at once, before the
    /// response, and only if nobody changed the key in between; otherwise `f` runs
    /// again on the newer value (at most [`MAX_UPDATE_ATTEMPTS`] times). So a thousand
    /// concurrent increments of a counter give a thousand. Returns the value stored.
    ///
    /// - A stored session is updated in the store by a compare-and-set
    ///   ([`Driver::update`](crate::Driver::update)), following the forward when a
    ///   concurrent request just renewed the id; the rest of this request's changes
    ///   are saved with the response as usual. The update is written even if the
    ///   response then fails (a 5xx drops only the request's other changes), and it
    ///   keeps the session's stored lifetime choices (this request's unsaved ones are
    ///   written with the response).
    /// - A new session (nothing stored yet), a cookie session, and a key this request
    ///   already changed (or data it cleared) are changed in this request, like
    ///   [`insert`](Self::insert): there is no shared state to race with, or this
    ///   request's own change is what the update builds on (two concurrent requests
    ///   with one cookie session each write their own cookie, and the last response
    ///   wins).
    ///
    /// `f` may run several times: keep it free of side effects.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails or its driver has no atomic updates
    /// ([`DriverError::Unsupported`](crate::DriverError::Unsupported)),
    /// [`Error::SessionEnded`] when the session ended meanwhile (nothing is written),
    /// [`Error::UpdateContended`] after too many lost races, and what
    /// [`get`](Self::get) and [`insert`](Self::insert) refuse.
    pub async fn update<T, F>(&self, key: &str, mut f: F) -> Result<Option<T>, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        let sessions = self.sessions().clone();
        let now = sessions.clock().now();
        let Some(target) = self.with(|m| m.update_target(key, now))? else {
            let new = f(self.get::<T>(key)?);
            match &new {
                Some(value) => self.insert(key, value)?,
                None => drop(self.remove(key)?),
            }
            return Ok(new);
        };
        let (name, entry) = sessions.entry_or_error(self.name().as_str())?;
        let store_error = |source: crate::DriverError| {
            crate::metrics::store_error(name, &entry.spec, "update", &source);
            Error::Store {
                session: name.clone(),
                operation: "update",
                source,
            }
        };
        let ended = || {
            tracing::debug!(session = %name, "update: the session ended meanwhile");
            Error::SessionEnded {
                session: name.clone(),
            }
        };
        if target.expires_at <= now {
            return Err(ended());
        }
        let driver = entry
            .driver
            .as_deref()
            .ok_or_else(|| store_error(crate::DriverError::Unsupported("atomic updates of one key")))?;
        let mut current = target.current;
        let mut store_key = target.key;
        let mut followed = false;
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let old = current
                .as_ref()
                .map(|value| sessionkit_core::decode_value(key, value))
                .transpose()?;
            let new = f(old);
            let new_value = new
                .as_ref()
                .map(|value| sessionkit_core::encode_value(key, value))
                .transpose()?;
            if let Some(value) = &new_value {
                self.with(|m| m.check_value(key, value))?;
            }
            let update = sessionkit_core::KeyUpdate {
                key: key.to_owned(),
                expected: current.clone(),
                new: new_value.clone(),
                last_seen: now,
            };
            match driver
                .update(&store_key, &update, target.expires_at)
                .await
                .map_err(store_error)?
            {
                sessionkit_core::UpdateResult::Applied => {
                    self.with(|m| m.absorb_update(key, new_value, now))?;
                    return Ok(new);
                }
                sessionkit_core::UpdateResult::Conflict(stored) => current = stored,
                sessionkit_core::UpdateResult::Gone => {
                    // A renewal by a concurrent request moved the session and left a
                    // forward for the grace window: the update follows it, once.
                    if !followed
                        && let crate::Lookup::Forwarded { to } =
                            driver.lookup(&store_key).await.map_err(store_error)?
                    {
                        store_key = to;
                        followed = true;
                        continue;
                    }
                    return Err(ended());
                }
            }
        }
        tracing::debug!(session = %name, "update: lost every race for its key");
        Err(Error::UpdateContended {
            session: name.clone(),
            key: key.to_owned(),
            attempts: MAX_UPDATE_ATTEMPTS,
        })
    }

    /// Whether `key` is set.
    ///
    /// # Errors
    /// When the key is reserved, or after saving.
    pub fn contains(&self, key: &str) -> Result<bool, Error> {
        self.with(|m| m.contains(key))
    }

    /// The keys, sorted.
    ///
    /// # Errors
    /// After saving.
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        self.with(|m| m.keys())
    }

    /// Removes every key; the session lives on.
    ///
    /// # Errors
    /// After saving.
    pub fn clear(&self) -> Result<(), Error> {
        self.with(SessionMachine::clear)
    }

    /// Adds a flash message, readable exactly once with [`take_flashes`](Self::take_flashes).
    ///
    /// # Errors
    /// When `message` cannot be encoded, or after saving.
    pub fn flash<T: Serialize + ?Sized>(&self, message: &T) -> Result<(), Error> {
        self.with(|m| m.flash(message))
    }

    /// Returns and removes every flash message.
    ///
    /// # Errors
    /// After saving.
    pub fn take_flashes<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        self.with(SessionMachine::take_flashes)
    }

    /// Gives the session a new id when saved (keeping its data); the old id stops
    /// working. Call it when a user signs in.
    ///
    /// # Errors
    /// After saving.
    pub fn regenerate(&self) -> Result<(), Error> {
        self.with(SessionMachine::regenerate)
    }

    /// Ends the session: its record is deleted and its cookie removed when saved.
    ///
    /// # Errors
    /// After saving.
    pub fn destroy(&self) -> Result<(), Error> {
        self.with(SessionMachine::destroy)
    }

    /// Binds the session to a user, typically right after [`regenerate`](Self::regenerate)
    /// at sign-in: it then appears in that user's [`user_sessions`](Self::user_sessions),
    /// ends with [`end_all_sessions`](Self::end_all_sessions), and counts against the
    /// session's per-user cap. The id is stored as given, inside the record; indexes
    /// use a hash of it.
    ///
    /// # Errors
    /// An empty or over-long id; after saving.
    pub fn set_user(&self, user: &str) -> Result<(), Error> {
        self.with(|m| m.set_user(user))
    }

    /// Labels the session in its user's list, e.g. a summary of the `User-Agent`.
    ///
    /// # Errors
    /// Before [`set_user`](Self::set_user); after saving.
    pub fn set_label(&self, label: &str) -> Result<(), Error> {
        self.with(|m| m.set_label(label))
    }

    /// The user the session is bound to, if any.
    ///
    /// # Errors
    /// After saving.
    pub fn user(&self) -> Result<Option<String>, Error> {
        self.with(|m| Ok(m.user()?.map(|b| b.id().to_owned())))
    }

    /// This session's public handle in its user's list (`None` for a session not yet
    /// stored, and for cookie sessions).
    ///
    /// # Errors
    /// After saving.
    pub fn handle(&self) -> Result<Option<SessionHandle>, Error> {
        self.with(|m| m.handle())
    }

    /// Whether this request changed the session (data, flash messages, lifetimes, a
    /// regenerate or a destroy); an idle refresh or a renewal does not count.
    ///
    /// # Errors
    /// After saving.
    pub fn is_modified(&self) -> Result<bool, Error> {
        self.with(|m| m.is_modified())
    }

    /// The absolute and idle deadlines, with the session's own lifetimes: as loaded, or
    /// for a new session as if saved now. `Deadlines::expires_at` is the earlier one.
    ///
    /// # Errors
    /// After saving.
    pub fn deadlines(&self) -> Result<Deadlines, Error> {
        self.with(|m| m.deadlines())
    }

    /// The session's own lifetime choices.
    ///
    /// # Errors
    /// After saving.
    pub fn lifetime(&self) -> Result<SessionLifetime, Error> {
        self.with(|m| m.lifetime())
    }

    /// Whether the cookie is persistent or a browser-session cookie.
    ///
    /// # Errors
    /// After saving.
    pub fn is_persistent(&self) -> Result<bool, Error> {
        self.with(|m| m.is_persistent())
    }

    /// Remember-me: a persistent cookie (`true`, it survives a browser restart until the
    /// session's absolute deadline) or a browser-session cookie (`false`) for this
    /// session; the default is the session's `persistent` setting. Typically at sign-in,
    /// after [`regenerate`](Self::regenerate). Server-side expiry applies either way.
    ///
    /// # Errors
    /// After saving.
    pub fn set_persistent(&self, persistent: bool) -> Result<(), Error> {
        self.with(|m| m.set_persistent(persistent))
    }

    /// A shorter absolute lifetime for this session than configured (from its creation).
    ///
    /// # Errors
    /// Zero or longer than the configured `ttl` ([`LifetimeError`](crate::LifetimeError)); after saving.
    pub fn set_ttl(&self, ttl: Duration) -> Result<(), Error> {
        self.with(|m| m.set_ttl(ttl))
    }

    /// A shorter idle timeout for this session than configured.
    ///
    /// # Errors
    /// Zero or longer than the configured idle timeout ([`LifetimeError`](crate::LifetimeError)); after saving.
    pub fn set_idle_timeout(&self, idle: Duration) -> Result<(), Error> {
        self.with(|m| m.set_idle_timeout(idle))
    }

    /// Ends the session at `deadline` at the latest (e.g. when a federated login's
    /// assertion expires); deadlines only ever come closer.
    ///
    /// # Errors
    /// After saving.
    pub fn set_deadline(&self, deadline: SystemTime) -> Result<(), Error> {
        self.with(|m| m.set_deadline(Timestamp::from_system_time(deadline)))
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let guard = self.lock();
        let state = match guard
            .as_ref()
            .and_then(|g| g.as_ref())
            .map(SessionMachine::is_new)
        {
            Some(Ok(true)) => "new",
            Some(Ok(false)) => "existing",
            Some(Err(_)) => "loading",
            None => "saved",
        };
        f.debug_struct("Session")
            .field("name", self.name())
            .field("state", &state)
            .finish()
    }
}
