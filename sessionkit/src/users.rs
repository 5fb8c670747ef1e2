//! A user's sessions as a whole: list them, end one, end all others, end all (log out
//! everywhere), and the per-user cap. Needs a driver that keeps per-user indexes (the
//! driver contract's "A user's sessions"); otherwise every call here is a typed
//! "not supported" store error.

use std::time::SystemTime;

use sessionkit_core::{
    LimitPolicy, Outcome, Record, SessionHandle, SessionName, StoreKey, USER_KEY, UserBinding, UserKey,
};

use crate::driver::{DriverError, DynDriver};
use crate::error::Error;
use crate::handle::Session;
use crate::sessions::{SessionEntry, Sessions};

/// One session in a user's list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserSession {
    /// Its public handle: names it to [`Session::end_session`], and is never usable as
    /// a cookie or a store key.
    pub handle: SessionHandle,
    /// When it was created (signed in, or earlier for a session bound later).
    pub created: SystemTime,
    /// When it was last used, as last written (reads refresh it at most every
    /// `touch_share` of the idle timeout).
    pub last_seen: SystemTime,
    /// The label the app gave it ([`Session::set_label`]).
    pub label: Option<String>,
    /// Whether it is the session of the request that asked.
    pub current: bool,
}

/// The live records of `user`, oldest first, each re-checked here: still bound to that
/// user and unexpired by this registry's clock.
async fn records(
    sessions: &Sessions,
    name: &SessionName,
    entry: &SessionEntry,
    user: &str,
) -> Result<Vec<(StoreKey, Record)>, Error> {
    let store_error = |source| Error::Store {
        session: name.clone(),
        operation: "user_sessions",
        source,
    };
    let driver = entry.driver.as_deref().ok_or_else(|| {
        store_error(DriverError::Unsupported(
            "per-user session lists of cookie sessions",
        ))
    })?;
    let key = UserKey::new(entry.spec.store_namespace(), name, user);
    let found = driver.user_sessions(&key).await.map_err(store_error)?;
    let now = sessions.now();
    let expiry = &entry.spec.def().expiry;
    let mut live: Vec<(StoreKey, Record)> = found
        .into_iter()
        .filter(|(_, record)| {
            let bound = UserBinding::from_value(record.data.get(USER_KEY))
                .ok()
                .flatten()
                .is_some_and(|binding| binding.id() == user);
            let life =
                sessionkit_core::SessionLifetime::from_value(record.data.get(sessionkit_core::LIFETIME_KEY))
                    .unwrap_or_default();
            bound
                && expiry
                    .deadlines(record.created_at, record.last_seen, &life)
                    .check(now)
                    .is_none()
        })
        .collect();
    live.sort_by_key(|(_, record)| (record.created_at, record.last_seen));
    Ok(live)
}

fn describe(key: &StoreKey, record: &Record, current: Option<SessionHandle>) -> UserSession {
    let handle = SessionHandle::of(key);
    let label = UserBinding::from_value(record.data.get(USER_KEY))
        .ok()
        .flatten()
        .and_then(|binding| binding.label().map(str::to_owned));
    UserSession {
        handle,
        created: record.created_at.to_system_time(),
        last_seen: record.last_seen.to_system_time(),
        label,
        current: current == Some(handle),
    }
}

async fn delete_all(
    name: &SessionName,
    driver: Option<&dyn DynDriver>,
    keys: &[StoreKey],
) -> Result<usize, Error> {
    let Some(driver) = driver else {
        return Ok(0);
    };
    let mut ended = 0;
    for key in keys {
        driver.delete(key).await.map_err(|source| Error::Store {
            session: name.clone(),
            operation: "delete",
            source,
        })?;
        ended += 1;
    }
    Ok(ended)
}

impl Sessions {
    /// The live sessions of `user` in session `session`, oldest first (an admin view;
    /// none is marked current).
    ///
    /// # Errors
    /// [`Error::UnknownSession`]; [`Error::Store`] when the store fails or keeps no
    /// per-user index ([`DriverError::Unsupported`]).
    pub async fn user_sessions(&self, session: &str, user: &str) -> Result<Vec<UserSession>, Error> {
        let (name, entry) = self.entry_or_error(session)?;
        Ok(records(self, name, entry, user)
            .await?
            .iter()
            .map(|(key, record)| describe(key, record, None))
            .collect())
    }

    /// Ends every session of `user` in session `session` (an admin's "log this user
    /// out everywhere", e.g. after a password reset). Returns how many were ended.
    ///
    /// # Errors
    /// As [`user_sessions`](Self::user_sessions).
    pub async fn end_user_sessions(&self, session: &str, user: &str) -> Result<usize, Error> {
        let (name, entry) = self.entry_or_error(session)?;
        let keys: Vec<StoreKey> = records(self, name, entry, user)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        delete_all(name, entry.driver.as_deref(), &keys).await
    }

    /// Enforces the per-user cap for a response that binds a session to a user:
    /// `Refuse` before anything is written (an error), `EvictOldest` after the write
    /// (ends the oldest others). One listing, only on the request that binds.
    pub(crate) async fn enforce_limit(
        &self,
        name: &SessionName,
        entry: &SessionEntry,
        outcome: &Outcome,
        written: bool,
    ) -> Result<(), Error> {
        let (Some(limit), Some(binding), Some(key), Some(_)) = (
            entry.spec.def().user_limit,
            outcome.bound_user(),
            outcome.session_key(),
            &entry.driver,
        ) else {
            // No cap, no new binding, nothing written, or a cookie session (no server
            // state to count; see the revocation store).
            return Ok(());
        };
        let refuse = limit.policy == LimitPolicy::Refuse;
        if refuse == written {
            return Ok(());
        }
        let max = usize::try_from(limit.max.get()).unwrap_or(usize::MAX);
        let others: Vec<StoreKey> = records(self, name, entry, binding.id())
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != key && Some(k) != outcome.delete())
            .collect();
        if refuse {
            if others.len() >= max {
                return Err(Error::SessionLimit {
                    session: name.clone(),
                    max: limit.max.get(),
                });
            }
            return Ok(());
        }
        // Oldest first; the new session counts as one.
        let excess = (others.len() + 1).saturating_sub(max);
        delete_all(name, entry.driver.as_deref(), &others[..excess.min(others.len())]).await?;
        Ok(())
    }
}

impl Session {
    fn bound_user(&self) -> Result<(String, Option<SessionHandle>), Error> {
        let (user, handle) =
            self.with_machine(|m| Ok((m.user()?.map(|b| b.id().to_owned()), m.handle()?)))?;
        let user = user.ok_or_else(|| Error::NotBound {
            session: self.name().clone(),
        })?;
        Ok((user, handle))
    }

    /// The live sessions of this session's user, oldest first, this one marked
    /// `current` ("where am I signed in"). Changes of this request are not saved yet:
    /// a session bound by this very request appears from the next request on.
    ///
    /// # Errors
    /// [`Error::NotBound`] before [`set_user`](Self::set_user); [`Error::Store`] when
    /// the store fails or keeps no per-user index.
    pub async fn user_sessions(&self) -> Result<Vec<UserSession>, Error> {
        let (user, current) = self.bound_user()?;
        let (name, entry) = self.sessions().entry_or_error(self.name().as_str())?;
        Ok(records(self.sessions(), name, entry, &user)
            .await?
            .iter()
            .map(|(key, record)| describe(key, record, current))
            .collect())
    }

    /// Ends one session of this session's user by its handle (`handle` as text, e.g.
    /// from a URL). `Ok(false)` when the handle is malformed or names no session of
    /// this user (another user's handle included): callers answer 404. Ending the
    /// current session destroys it, as [`destroy`](Self::destroy) does.
    ///
    /// # Errors
    /// As [`user_sessions`](Self::user_sessions).
    pub async fn end_session(&self, handle: &str) -> Result<bool, Error> {
        let Some(handle) = SessionHandle::parse(handle) else {
            return Ok(false);
        };
        let (user, current) = self.bound_user()?;
        let (name, entry) = self.sessions().entry_or_error(self.name().as_str())?;
        let found = records(self.sessions(), name, entry, &user).await?;
        let Some(key) = found
            .into_iter()
            .map(|(key, _)| key)
            .find(|key| SessionHandle::of(key) == handle)
        else {
            return Ok(false);
        };
        if current == Some(handle) {
            self.destroy()?;
        }
        delete_all(name, entry.driver.as_deref(), &[key]).await?;
        Ok(true)
    }

    /// Ends every other session of this session's user ("sign out my other devices").
    /// Returns how many were ended.
    ///
    /// # Errors
    /// As [`user_sessions`](Self::user_sessions).
    pub async fn end_other_sessions(&self) -> Result<usize, Error> {
        let (user, current) = self.bound_user()?;
        let (name, entry) = self.sessions().entry_or_error(self.name().as_str())?;
        let others: Vec<StoreKey> = records(self.sessions(), name, entry, &user)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| Some(SessionHandle::of(key)) != current)
            .collect();
        delete_all(name, entry.driver.as_deref(), &others).await
    }

    /// Ends every session of this session's user, this one included ("log out
    /// everywhere"): the others are deleted now, this one is destroyed with the
    /// response (its cookie removed). Returns how many others were ended.
    ///
    /// # Errors
    /// As [`user_sessions`](Self::user_sessions).
    pub async fn end_all_sessions(&self) -> Result<usize, Error> {
        let ended = self.end_other_sessions().await?;
        self.destroy()?;
        Ok(ended)
    }
}
