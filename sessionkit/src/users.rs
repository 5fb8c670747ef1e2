//! A user's sessions as a whole: list them, end one, end all others, end all (log out
//! everywhere), and the per-user cap. Needs a driver that keeps per-user indexes (the
//! driver contract's "A user's sessions"); otherwise every call here is a typed
//! "not supported" store error.

use std::time::SystemTime;

use sessionkit_core::revocation::{self, RevocationWrite, Revocations, SignedIn, revocation_key};
use sessionkit_core::{
    LimitPolicy, LoadResult, Outcome, Record, SessionHandle, SessionLimit, SessionName, StoreKey, USER_KEY,
    UserBinding, UserKey,
};

use crate::driver::{DriverError, DynDriver};
use crate::error::Error;
use crate::handle::Session;
use crate::sessions::{SessionEntry, Sessions, apply_revocations};

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

/// A cookie session's user list: the revocation driver, the user's revocation record
/// key, and the signed-in sessions that are neither revoked nor expired.
struct CookieList<'a> {
    driver: &'a dyn DynDriver,
    key: StoreKey,
    signed_in: Vec<SignedIn>,
}

async fn cookie_list<'a>(
    sessions: &Sessions,
    name: &SessionName,
    entry: &'a SessionEntry,
    user: &str,
) -> Result<CookieList<'a>, Error> {
    let store_error = |source| Error::Store {
        session: name.clone(),
        operation: "user_sessions",
        source,
    };
    let driver = entry.revocation.as_deref().ok_or_else(|| {
        store_error(DriverError::Unsupported(
            "per-user session lists of cookie sessions without a revocation store (revocation = false)",
        ))
    })?;
    let key = revocation_key(&UserKey::new(entry.spec.store_namespace(), name, user));
    let signed_in = match driver.load(&key).await.map_err(store_error)? {
        LoadResult::Found(record) => Revocations::from_record(&record).signed_in(sessions.now()),
        LoadResult::Missing | LoadResult::Corrupt => Vec::new(),
    };
    Ok(CookieList {
        driver,
        key,
        signed_in,
    })
}

impl CookieList<'_> {
    fn describe(&self, current: Option<SessionHandle>) -> Vec<UserSession> {
        self.signed_in
            .iter()
            .map(|s| UserSession {
                handle: s.handle,
                created: s.created.to_system_time(),
                // A sealed cookie's uses are not recorded anywhere: its sign-in time.
                last_seen: s.created.to_system_time(),
                label: s.label.clone(),
                current: current == Some(s.handle),
            })
            .collect()
    }

    /// Revokes the given sessions (or all of the user's, with `None`).
    async fn revoke(
        &self,
        sessions: &Sessions,
        name: &SessionName,
        entry: &SessionEntry,
        which: Option<&[SignedIn]>,
    ) -> Result<usize, Error> {
        let now = sessions.now();
        let expires_at = revocation::horizon(&entry.spec.def().expiry, now);
        let writes: Vec<RevocationWrite> = match which {
            Some(list) => list
                .iter()
                .map(|s| RevocationWrite {
                    key: self.key.clone(),
                    patch: revocation::revoke(s.handle, s.until, now),
                    expires_at,
                })
                .collect(),
            // "Not valid before" now, and every listed session by handle too (one
            // signed in earlier within this same millisecond is not before `now`).
            None => std::iter::once(revocation::revoke_all(now))
                .chain(
                    self.signed_in
                        .iter()
                        .map(|s| revocation::revoke(s.handle, s.until, now)),
                )
                .map(|patch| RevocationWrite {
                    key: self.key.clone(),
                    patch,
                    expires_at,
                })
                .collect(),
        };
        apply_revocations(name, self.driver, &writes).await?;
        Ok(which.map_or(self.signed_in.len(), <[SignedIn]>::len))
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
        if entry.driver.is_none() {
            return Ok(cookie_list(self, name, entry, user).await?.describe(None));
        }
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
        if entry.driver.is_none() {
            let list = cookie_list(self, name, entry, user).await?;
            return list.revoke(self, name, entry, None).await;
        }
        let keys: Vec<StoreKey> = records(self, name, entry, user)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        delete_all(name, entry.driver.as_deref(), &keys).await
    }

    /// Ends every stored session of the app in `session`'s store: every named session
    /// of this app's namespace on that driver (an incident: "log everyone out"). Takes
    /// time proportional to the store. For cookie sessions there is nothing stored:
    /// rotate the secret instead (without keeping the old one as a previous secret),
    /// which invalidates every sealed cookie at once.
    ///
    /// # Errors
    /// [`Error::UnknownSession`]; [`Error::Store`] when the store fails, keeps no
    /// namespace deletion ([`DriverError::Unsupported`]), or the session is a cookie
    /// session.
    pub async fn end_every_session(&self, session: &str) -> Result<u64, Error> {
        let (name, entry) = self.entry_or_error(session)?;
        let store_error = |source| Error::Store {
            session: name.clone(),
            operation: "delete_namespace",
            source,
        };
        let driver = entry.driver.as_deref().ok_or_else(|| {
            store_error(DriverError::Unsupported(
                "ending every cookie session (rotate the secret instead)",
            ))
        })?;
        driver
            .delete_namespace(entry.spec.store_namespace())
            .await
            .map_err(store_error)
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
        let (Some(limit), Some(binding)) = (entry.spec.def().user_limit, outcome.bound_user()) else {
            return Ok(());
        };
        if entry.driver.is_none() {
            return self
                .enforce_cookie_limit(name, entry, binding, limit, written)
                .await;
        }
        let Some(key) = outcome.session_key() else {
            return Ok(());
        };
        let refuse = limit.policy == LimitPolicy::Refuse;
        if refuse == written {
            return Ok(());
        }
        let others: Vec<StoreKey> = records(self, name, entry, binding.id())
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != key && Some(k) != outcome.delete())
            .collect();
        let excess = to_end(name, limit, others.len())?;
        delete_all(name, entry.driver.as_deref(), &others[..excess]).await?;
        Ok(())
    }
}

/// The per-user cap's decision, given the user's other live sessions (oldest first):
/// how many of the oldest to end (`EvictOldest`, the new session counting as one), or
/// the refusal (`Refuse`, when they already fill the cap).
fn to_end(name: &SessionName, limit: SessionLimit, others: usize) -> Result<usize, Error> {
    let max = usize::try_from(limit.max.get()).unwrap_or(usize::MAX);
    if limit.policy == LimitPolicy::Refuse {
        if others >= max {
            return Err(Error::SessionLimit {
                session: name.clone(),
                max: limit.max.get(),
            });
        }
        return Ok(0);
    }
    Ok((others + 1).saturating_sub(max).min(others))
}

impl Sessions {
    /// The cap for cookie sessions, counted in the user's revocation record (the new
    /// session is listed by the save itself): `Refuse` before, `EvictOldest` revokes
    /// the oldest after.
    async fn enforce_cookie_limit(
        &self,
        name: &SessionName,
        entry: &SessionEntry,
        binding: &sessionkit_core::UserBinding,
        limit: SessionLimit,
        written: bool,
    ) -> Result<(), Error> {
        let refuse = limit.policy == LimitPolicy::Refuse;
        if refuse == written || entry.revocation.is_none() {
            return Ok(());
        }
        let list = cookie_list(self, name, entry, binding.id()).await?;
        let others: Vec<SignedIn> = list
            .signed_in
            .iter()
            .filter(|s| Some(s.handle) != binding.handle())
            .cloned()
            .collect();
        let excess = to_end(name, limit, others.len())?;
        if excess > 0 {
            list.revoke(self, name, entry, Some(&others[..excess])).await?;
        }
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
        if entry.driver.is_none() {
            return Ok(cookie_list(self.sessions(), name, entry, &user)
                .await?
                .describe(current));
        }
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
        if entry.driver.is_none() {
            let list = cookie_list(self.sessions(), name, entry, &user).await?;
            let Some(found) = list.signed_in.iter().find(|s| s.handle == handle).cloned() else {
                return Ok(false);
            };
            if current == Some(handle) {
                self.destroy()?;
            }
            list.revoke(self.sessions(), name, entry, Some(&[found])).await?;
            return Ok(true);
        }
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
        if entry.driver.is_none() {
            let list = cookie_list(self.sessions(), name, entry, &user).await?;
            let others: Vec<SignedIn> = list
                .signed_in
                .iter()
                .filter(|s| Some(s.handle) != current)
                .cloned()
                .collect();
            return list.revoke(self.sessions(), name, entry, Some(&others)).await;
        }
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
        let (name, entry) = self.sessions().entry_or_error(self.name().as_str())?;
        if entry.driver.is_none() {
            // Cookie sessions: one "not valid before" for the user revokes every
            // cookie signed in earlier, copies included.
            let (user, current) = self.bound_user()?;
            let list = cookie_list(self.sessions(), name, entry, &user).await?;
            let others = list
                .signed_in
                .iter()
                .filter(|s| Some(s.handle) != current)
                .count();
            list.revoke(self.sessions(), name, entry, None).await?;
            self.destroy()?;
            return Ok(others);
        }
        let ended = self.end_other_sessions().await?;
        self.destroy()?;
        Ok(ended)
    }
}
