//! The started registry, and the sessions of one request.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue};
use sessionkit_core::revocation::RevocationWrite;
use sessionkit_core::{
    LoadResult, Outcome, SessionMachine, SessionName, SessionSpec, StoreKey, Timestamp, Write, WriteResult,
};
use tokio::sync::OnceCell;

use crate::clock::SharedClock;
use crate::driver::{DriverError, DynDriver, Lookup, LookupNow};
use crate::error::Error;
use crate::events;
use crate::handle::Session;
use crate::mapping::ErrorMapping;
use crate::metrics;
use crate::registry::SessionInfo;
use crate::secrets::SecretOrigin;

pub(crate) struct SessionEntry {
    pub(crate) spec: Arc<SessionSpec>,
    /// `None` for cookie sessions.
    pub(crate) driver: Option<Arc<dyn DynDriver>>,
    /// Cookie sessions: where bound sessions' revocation records live (`None`: none).
    pub(crate) revocation: Option<Arc<dyn DynDriver>>,
}

impl SessionEntry {
    /// The driver the machine's load requests go to: the store for server sessions,
    /// the revocation store for cookie sessions.
    fn load_driver(&self) -> Option<&Arc<dyn DynDriver>> {
        self.driver.as_ref().or(self.revocation.as_ref())
    }
}

struct Inner {
    /// A handful of sessions: a linear scan beats hashing the name.
    entries: Vec<(SessionName, SessionEntry)>,
    default: SessionName,
    /// The default session's index in `entries`.
    default_index: usize,
    clock: SharedClock,
    drivers: Vec<(String, Arc<dyn DynDriver>)>,
    info: Vec<SessionInfo>,
    secret_origin: SecretOrigin,
}

/// The started registry: every named session, ready to serve. Cheap to clone; share
/// one between all requests (the adapters take it).
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

impl Sessions {
    pub(crate) fn new(
        entries: Vec<(SessionName, SessionEntry)>,
        default: SessionName,
        clock: SharedClock,
        drivers: Vec<(String, Arc<dyn DynDriver>)>,
        info: Vec<SessionInfo>,
        secret_origin: SecretOrigin,
    ) -> Self {
        let default_index = entries.iter().position(|(n, _)| *n == default).unwrap_or(0);
        Sessions {
            inner: Arc::new(Inner {
                entries,
                default,
                default_index,
                clock,
                drivers,
                info,
                secret_origin,
            }),
        }
    }

    /// Every session, in name order.
    pub fn info(&self) -> &[SessionInfo] {
        &self.inner.info
    }

    /// The default session's name ([`RequestSessions::default_session`] loads it).
    pub fn default_name(&self) -> &SessionName {
        &self.inner.default
    }

    /// Where the primary secret came from.
    pub fn secret_origin(&self) -> SecretOrigin {
        self.inner.secret_origin
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The name a session is registered under, if it is.
    pub fn session_name(&self, name: &str) -> Option<&SessionName> {
        self.entry(name).map(|(k, _)| k)
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The name of the session at `index` in the registry's entries.
    pub(crate) fn name_at(&self, index: usize) -> &SessionName {
        &self.inner.entries[index].0
    }

    pub(crate) fn entry_or_error(&self, name: &str) -> Result<(&SessionName, &SessionEntry), Error> {
        self.entry(name)
            .map(|(name, entry)| (name, entry))
            .ok_or_else(|| self.unknown(name))
    }

    /// The error for a session name that is not registered, listing the registered ones.
    fn unknown(&self, name: &str) -> Error {
        let mut known: Vec<&str> = self.inner.entries.iter().map(|(n, _)| n.as_str()).collect();
        known.sort_unstable();
        Error::UnknownSession {
            name: name.to_owned(),
            known: known.join(", "),
        }
    }

    fn entry(&self, name: &str) -> Option<&(SessionName, SessionEntry)> {
        self.inner.entries.iter().find(|(n, _)| n.as_str() == name)
    }

    /// The registered driver called `name`.
    pub fn driver(&self, name: &str) -> Option<&Arc<dyn DynDriver>> {
        self.inner.drivers.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }

    /// The sessions of a request whose `Cookie` header values are `cookie_headers`.
    /// Nothing is parsed or loaded until a session is asked for.
    pub fn request<I, V>(&self, cookie_headers: I) -> RequestSessions
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        RequestSessions::new(self.clone(), CookieHeaders::from_bytes(cookie_headers), None)
    }

    /// Like [`request`](Self::request), limited to the sessions a route declared (see
    /// [`request_with_enabled`](Self::request_with_enabled)): for a framework whose
    /// header types are not `http`'s, which hands over the `Cookie` values as bytes.
    pub fn request_from_cookies_with_enabled<I, V>(
        &self,
        cookie_headers: I,
        enabled: Arc<[SessionName]>,
    ) -> RequestSessions
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        RequestSessions::new(
            self.clone(),
            CookieHeaders::from_bytes(cookie_headers),
            Some(enabled),
        )
    }

    /// The sessions of a request, from its headers.
    pub fn request_from_headers(&self, headers: &HeaderMap) -> RequestSessions {
        RequestSessions::new(
            self.clone(),
            headers.get_all(COOKIE).iter().cloned().collect(),
            None,
        )
    }

    /// Like [`request_from_headers`](Self::request_from_headers), limited to the
    /// sessions a route declared; asking for another is [`Error::SessionNotEnabled`].
    pub fn request_with_enabled(&self, headers: &HeaderMap, enabled: Arc<[SessionName]>) -> RequestSessions {
        RequestSessions::new(
            self.clone(),
            headers.get_all(COOKIE).iter().cloned().collect(),
            Some(enabled),
        )
    }

    /// Closes every registered driver.
    ///
    /// # Errors
    /// The first driver error.
    pub async fn close(&self) -> Result<(), DriverError> {
        let mut result = Ok(());
        for (_, driver) in &self.inner.drivers {
            if let Err(err) = driver.close().await {
                result = result.and(Err(err));
            }
        }
        result
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.inner.entries.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        f.debug_struct("Sessions")
            .field("sessions", &names)
            .field("default", &self.inner.default)
            .finish_non_exhaustive()
    }
}

/// The sessions an adapter's layer (or filters, or middleware) carries for its routes:
/// the registry's default session plus those added by name. Asking a route for any
/// other session is [`Error::SessionNotEnabled`].
#[derive(Clone, Debug)]
pub struct EnabledSessions(Arc<[SessionName]>);

impl EnabledSessions {
    /// Just the default session of `sessions`.
    pub fn default_of(sessions: &Sessions) -> Self {
        EnabledSessions(Arc::from([sessions.default_name().clone()]))
    }

    /// Adds the session `name`. A name the registry does not know is kept (asking for it
    /// gives [`Error::UnknownSession`], naming the registered sessions) and logged now,
    /// on behalf of `adapter` (e.g. `"SessionLayer::with_session"`); an invalid name is
    /// logged and ignored.
    #[must_use]
    pub fn with(self, sessions: &Sessions, name: &str, adapter: &str) -> Self {
        let name = match sessions.session_name(name) {
            Some(name) => name.clone(),
            None => match SessionName::new(name) {
                Ok(name) => {
                    tracing::error!(target: "sessionkit", session = %name, "{adapter}: no such session is registered (register it with Registry::add_session or Registry::register_session)");
                    name
                }
                Err(err) => {
                    tracing::error!(target: "sessionkit", %err, "{adapter}: invalid session name ignored");
                    return self;
                }
            },
        };
        if self.0.contains(&name) {
            return self;
        }
        let mut names = self.0.to_vec();
        names.push(name);
        EnabledSessions(Arc::from(names))
    }

    /// The names, for [`Sessions::request_with_enabled`].
    pub fn names(&self) -> &Arc<[SessionName]> {
        &self.0
    }
}

/// `Clear-Site-Data`, which the `http` crate has no constant for.
const CLEAR_SITE_DATA: HeaderName = HeaderName::from_static("clear-site-data");

/// Where one session of one request lives once a handler asked for it: its machine,
/// until the save takes it.
pub(crate) type Slot = OnceCell<Mutex<Option<SessionMachine>>>;

pub(crate) struct RequestInner {
    sessions: Sessions,
    cookies: CookieHeaders,
    enabled: Option<Arc<[SessionName]>>,
    /// The default session's slot, inside the request's one allocation. Nothing is
    /// built in it until the session is asked for.
    default_slot: Slot,
    /// The other sessions' slots, by index into the registry's entries, allocated when
    /// the first of them is asked for.
    other_slots: OnceLock<Box<[Slot]>>,
    /// The request's `now`, read from the clock when a session is first loaded and used
    /// for the whole request.
    now: OnceLock<Timestamp>,
    saved: AtomicBool,
}

impl RequestInner {
    pub(crate) fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub(crate) fn slot(&self, index: usize) -> &Slot {
        if index == self.sessions.inner.default_index {
            return &self.default_slot;
        }
        let others = self.other_slots.get_or_init(|| {
            (0..self.sessions.inner.entries.len())
                .map(|_| OnceCell::new())
                .collect()
        });
        &others[index]
    }

    /// The slots of the sessions a handler asked for, with their indexes.
    /// The slots of the sessions a handler asked for, in the registry's order (the order
    /// they are saved in and their cookies are sent in).
    fn loaded_slots(&self) -> impl Iterator<Item = (usize, &Slot)> {
        let default = self.sessions.inner.default_index;
        let others = self.other_slots.get();
        (0..self.sessions.inner.entries.len())
            .filter_map(move |index| {
                if index == default {
                    Some((index, &self.default_slot))
                } else {
                    others
                        .and_then(|others| others.get(index))
                        .map(|slot| (index, slot))
                }
            })
            .filter(|(_, slot)| slot.initialized())
    }

    fn now(&self) -> Timestamp {
        *self.now.get_or_init(|| self.sessions.inner.clock.now())
    }
}

/// The request's `Cookie` header values; the usual single header needs no allocation.
enum CookieHeaders {
    None,
    One(HeaderValue),
    Many(Vec<HeaderValue>),
}

impl FromIterator<HeaderValue> for CookieHeaders {
    fn from_iter<I: IntoIterator<Item = HeaderValue>>(values: I) -> Self {
        let mut values = values.into_iter();
        let Some(first) = values.next() else {
            return CookieHeaders::None;
        };
        match values.next() {
            None => CookieHeaders::One(first),
            Some(second) => {
                let mut all = vec![first, second];
                all.extend(values);
                CookieHeaders::Many(all)
            }
        }
    }
}

impl CookieHeaders {
    fn from_bytes<I, V>(values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        values
            .into_iter()
            // Bytes that cannot be in a header value cannot be in a real request either.
            .filter_map(|v| HeaderValue::from_bytes(v.as_ref()).ok())
            .collect()
    }

    fn as_slice(&self) -> &[HeaderValue] {
        match self {
            CookieHeaders::None => &[],
            CookieHeaders::One(value) => std::slice::from_ref(value),
            CookieHeaders::Many(values) => values,
        }
    }
}

/// The named sessions of one request, loaded lazily.
///
/// Asking for a session ([`session`](Self::session)) parses the cookie and loads the
/// record on first use; a request that never asks causes no parsing and no driver call.
/// When the response is ready, [`save`](Self::save) carries out what the core decided
/// for every session that was asked for. Cheap to clone.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let sessions = sessionkit::Registry::new().build()?;
///
/// // First request: no cookie.
/// let request = sessions.request([""]);
/// let web = request.default_session().await?;
/// web.insert("user", "ada")?;
/// let saved = request.save(200).await?;
/// let set_cookie = saved.set_cookies().next().expect("a new session sets its cookie");
///
/// // Second request: the browser sends the cookie back.
/// let cookie = set_cookie.split(';').next().unwrap().to_owned();
/// let request = sessions.request([cookie]);
/// let web = request.default_session().await?;
/// assert_eq!(web.get::<String>("user")?.as_deref(), Some("ada"));
/// let saved = request.save(200).await?;
/// assert_eq!(saved.set_cookies().count(), 0, "a read sets no cookie");
/// assert_eq!(saved.vary(), Some("Cookie"), "but its response depends on the session");
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct RequestSessions {
    inner: Arc<RequestInner>,
}

impl RequestSessions {
    fn new(sessions: Sessions, cookies: CookieHeaders, enabled: Option<Arc<[SessionName]>>) -> Self {
        RequestSessions {
            inner: Arc::new(RequestInner {
                sessions,
                cookies,
                enabled,
                default_slot: OnceCell::new(),
                other_slots: OnceLock::new(),
                now: OnceLock::new(),
                saved: AtomicBool::new(false),
            }),
        }
    }

    /// The registry this request belongs to.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The default session, loaded.
    ///
    /// # Errors
    /// As [`session`](Self::session).
    pub async fn default_session(&self) -> Result<Session, Error> {
        self.session(self.inner.sessions.inner.default.as_str()).await
    }

    /// The session called `name`, loaded on first use. Repeated calls return handles
    /// to the same session.
    ///
    /// # Errors
    /// [`Error::UnknownSession`], [`Error::SessionNotEnabled`], [`Error::AlreadySaved`]
    /// after [`save`](Self::save), or [`Error::Store`] when the store fails (asking
    /// again retries).
    pub async fn session(&self, name: &str) -> Result<Session, Error> {
        let sessions = &self.inner.sessions.inner;
        let Some(index) = sessions.entries.iter().position(|(n, _)| n.as_str() == name) else {
            return Err(self.inner.sessions.unknown(name));
        };
        let (session_name, entry) = &sessions.entries[index];
        if let Some(enabled) = &self.inner.enabled
            && !enabled.iter().any(|n| n == session_name)
        {
            return Err(Error::SessionNotEnabled {
                name: name.to_owned(),
                enabled: enabled
                    .iter()
                    .map(SessionName::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if self.inner.saved.load(Ordering::Acquire) {
            return Err(Error::AlreadySaved {
                session: session_name.clone(),
            });
        }
        self.inner
            .slot(index)
            .get_or_try_init(|| async {
                Ok::<_, Error>(Mutex::new(Some(self.load(session_name, entry).await?)))
            })
            .await?;
        Ok(Session::new(self.inner.clone(), index))
    }

    async fn load(&self, name: &SessionName, entry: &SessionEntry) -> Result<SessionMachine, Error> {
        let now = self.inner.now();
        let mut machine = SessionMachine::begin(
            entry.spec.clone(),
            self.inner.cookies.as_slice().iter().map(HeaderValue::as_bytes),
            now,
        );
        if let (Some(key), Some(driver)) = (machine.load_request(), entry.load_driver()) {
            let store_error = |source| {
                metrics::store_error(name, &entry.spec, "load", &source);
                Error::Store {
                    session: name.clone(),
                    operation: "load",
                    source,
                }
            };
            // A store in this process answers at once and lends the record; any other
            // is asked through its future.
            let found = match driver.lookup_now(key) {
                Some(Ok(LookupNow::Shared(record))) => {
                    machine.handle_load_shared(record, now)?;
                    None
                }
                Some(Ok(LookupNow::Lookup(found))) => Some(found),
                Some(Err(source)) => return Err(store_error(source)),
                None => Some(driver.lookup(key).await.map_err(store_error)?),
            };
            match found {
                None => {}
                Some(Lookup::Loaded(result)) => machine.handle_load(result, now)?,
                Some(Lookup::Expired {
                    created_at,
                    last_seen,
                }) => machine.handle_expired(created_at, last_seen, now)?,
                Some(Lookup::Forwarded { to }) => {
                    // The id was renewed by a request of the same session a moment ago:
                    // one more round trip, only within the grace window. One hop only:
                    // a forward to a forward is not followed.
                    let result = match driver.lookup(&to).await.map_err(store_error)? {
                        Lookup::Loaded(result) => result,
                        Lookup::Expired { .. } | Lookup::Forwarded { .. } => LoadResult::Missing,
                    };
                    machine.handle_forwarded(to, result, now)?;
                }
            }
        }
        while let Some(event) = machine.poll_event() {
            events::emit(name, &event);
            metrics::event(name, &entry.spec, &event);
        }
        Ok(machine)
    }

    /// Whether a handler asked for (and so loaded) any session of this request.
    pub fn any_loaded(&self) -> bool {
        self.inner.loaded_slots().next().is_some()
    }

    /// Saves every session that was asked for, given the response status (a 5xx drops
    /// the changes), and returns the headers to add to the response. Handles are
    /// finished afterwards.
    ///
    /// # Errors
    /// [`Error::Save`] when a cookie session is too large for its cookie (nothing is
    /// written), or [`Error::Store`] when the store fails. Either way the response must
    /// not go out as a success.
    pub async fn save(&self, status: u16) -> Result<SaveOutcome, Error> {
        match self.start_save(status) {
            SaveStep::Done(result) => result,
            SaveStep::Store(pending) => pending.run().await,
        }
    }

    /// The synchronous first half of [`save`](Self::save): decides every session's
    /// outcome and, when none needs the store (a route that loaded nothing, a read, a
    /// cookie session's write), finishes at once. Otherwise the store calls are left to
    /// [`PendingSave::run`]. For adapters that want no future on the common path;
    /// `save` is both halves.
    pub fn start_save(&self, status: u16) -> SaveStep {
        self.inner.saved.store(true, Ordering::Release);
        let decided = match self.finish_all(status) {
            Ok(decided) => decided,
            Err(error) => return SaveStep::Done(Err(error)),
        };
        let entries = &self.inner.sessions.inner.entries;
        // One session with store work (the usual write) on a driver that answers at
        // once is stored here; anything else goes to the store calls' future.
        let (first, second) = {
            let mut needing = decided
                .iter()
                .filter(|(_, outcome)| outcome.needs_store())
                .map(|(index, _)| *index);
            (needing.next(), needing.next())
        };
        let stored_now = match (first, second) {
            (None, _) => None,
            (Some(_), Some(_)) => return self.pending(decided),
            (Some(index), None) => {
                let (name, entry) = &entries[index];
                let now = {
                    let mut outcomes = decided.iter();
                    outcomes
                        .find(|(i, _)| *i == index)
                        .and_then(|(_, outcome)| store_now(name, entry, outcome))
                };
                match now {
                    Some(Ok(stored)) => Some((index, stored)),
                    Some(Err(error)) => return self.failed(decided, index, error),
                    None => return self.pending(decided),
                }
            }
        };
        let mut saved = SaveOutcome {
            // The response depends on a session exactly when a handler loaded one.
            depends_on_session: !decided.is_empty(),
            ..SaveOutcome::default()
        };
        let mut decided = decided;
        for (index, outcome) in decided.iter_mut() {
            let (name, entry) = &entries[*index];
            for event in outcome.events() {
                events::emit(name, event);
            }
            let stored = match stored_now {
                Some((stored_index, stored)) if stored_index == *index => stored,
                _ => Stored::APPLIED,
            };
            saved.record(name, entry, outcome, stored);
        }
        SaveStep::Done(Ok(saved))
    }

    /// The end of a save whose immediate write for session `failed` failed: what the
    /// store calls' future reports in that case (each session's events up to the
    /// failing one, the metrics of those before it), then the error.
    fn failed(&self, mut decided: Decided, failed: usize, error: Error) -> SaveStep {
        let entries = &self.inner.sessions.inner.entries;
        let mut discarded = SaveOutcome::default();
        for (index, outcome) in decided.iter_mut() {
            let (name, entry) = &entries[*index];
            for event in outcome.events() {
                events::emit(name, event);
            }
            if *index == failed {
                break;
            }
            discarded.record(name, entry, outcome, Stored::APPLIED);
        }
        SaveStep::Done(Err(error))
    }

    fn pending(&self, decided: Decided) -> SaveStep {
        SaveStep::Store(PendingSave {
            request: self.clone(),
            decided,
        })
    }

    async fn run_save(&self, decided: Decided) -> Result<SaveOutcome, Error> {
        let entries = &self.inner.sessions.inner.entries;
        let mut saved = SaveOutcome {
            depends_on_session: !decided.is_empty(),
            ..SaveOutcome::default()
        };
        // A refused sign-in (per-user cap) refuses the whole save, before any write.
        for (index, outcome) in decided.iter() {
            let (name, entry) = &entries[*index];
            self.inner
                .sessions
                .enforce_limit(name, entry, outcome, false)
                .await?;
        }
        let mut decided = decided;
        for (index, outcome) in decided.iter_mut() {
            let (name, entry) = &entries[*index];
            for event in outcome.events() {
                events::emit(name, event);
            }
            let result = run_store_ops(name, entry.driver.as_deref(), outcome)
                .await
                .inspect_err(|error| {
                    if let Error::Store {
                        operation, source, ..
                    } = error
                    {
                        metrics::store_error(name, &entry.spec, operation, source);
                    }
                })?;
            if let Some(revocation) = &entry.revocation {
                apply_revocations(name, revocation.as_ref(), outcome.revocation_writes()).await?;
            }
            if result.result == WriteResult::Applied {
                self.inner
                    .sessions
                    .enforce_limit(name, entry, outcome, true)
                    .await?;
            }
            saved.record(name, entry, outcome, result);
        }
        Ok(saved)
    }

    /// Finishes every session that was asked for, deciding everything before anything
    /// is written: if one session cannot be saved, none is. A request that never asked
    /// for a session costs no clock read and no RNG.
    fn finish_all(&self, status: u16) -> Result<Decided, Error> {
        let mut decided = Decided::default();
        let mut failed = None;
        // Both only once a session was asked for. The thread RNG (OS-seeded ChaCha) is
        // not reseeded after `fork`: fork before building the Registry, or reseed in
        // the child (README, security model).
        let mut now = None;
        let mut rng = None;
        for (index, slot) in self.inner.loaded_slots() {
            let Some(machine) = slot.get().and_then(take_machine) else {
                continue;
            };
            let now = *now.get_or_insert_with(|| self.inner.now());
            match machine.finish(status, now, rng.get_or_insert_with(rand::rng)) {
                Ok(outcome) => decided.push(index, outcome),
                Err(error) => {
                    // Nothing is written; the sessions after it keep their machines.
                    failed = Some(error);
                    break;
                }
            }
        }
        match failed {
            Some(error) => Err(error.into()),
            None => Ok(decided),
        }
    }

    /// [`save`](Self::save), then [`SaveOutcome::apply_to`] on the response headers.
    ///
    /// # Errors
    /// As [`save`](Self::save); the headers are untouched then.
    pub async fn save_to(&self, status: u16, headers: &mut HeaderMap) -> Result<(), Error> {
        self.save(status).await?.apply_to(headers);
        Ok(())
    }

    /// The rule every adapter runs once the handler's response is ready: save with its
    /// `status` and add the headers with `apply` (normally [`SaveOutcome::apply_to`] on
    /// the response's headers); when the save fails, the response is replaced by the
    /// mapped error (logged first), so it never goes out as a success.
    ///
    /// `status` is any status code that converts to its number (`http`'s
    /// [`StatusCode`](http::StatusCode), of either major version, or a `u16`).
    pub async fn finish_response<R>(
        &self,
        response: R,
        status: impl Into<u16>,
        mapping: &ErrorMapping<R>,
        apply: impl FnOnce(&mut R, SaveOutcome),
    ) -> R {
        match self.start_save(status.into()) {
            SaveStep::Done(result) => finish_with(response, result, mapping, apply),
            SaveStep::Store(pending) => finish_with(response, pending.run().await, mapping, apply),
        }
    }

    /// [`finish_response`](Self::finish_response) without a future when the save needs
    /// no store call (nothing loaded, a read, a cookie session's write): the finished
    /// response, or the store calls still to make ([`FinishPending::run`] ends the
    /// same way). An adapter's own future then needs no allocation for most requests.
    pub fn finish_now<R>(
        &self,
        response: R,
        status: impl Into<u16>,
        mapping: &ErrorMapping<R>,
        apply: fn(&mut R, SaveOutcome),
    ) -> Finish<R> {
        match self.start_save(status.into()) {
            SaveStep::Done(result) => Finish::Ready(finish_with(response, result, mapping, apply)),
            SaveStep::Store(pending) => Finish::Pending(FinishPending {
                pending,
                response,
                mapping: mapping.clone(),
                apply,
            }),
        }
    }

    /// [`finish_response`](Self::finish_response) for an `http::Response`.
    pub async fn finish_http<B>(
        &self,
        response: http::Response<B>,
        mapping: &ErrorMapping<http::Response<B>>,
    ) -> http::Response<B> {
        let status = response.status();
        self.finish_response(response, status, mapping, apply_to_http)
            .await
    }

    /// [`finish_now`](Self::finish_now) for an `http::Response`.
    pub fn finish_http_now<B>(
        &self,
        response: http::Response<B>,
        mapping: &ErrorMapping<http::Response<B>>,
    ) -> Finish<http::Response<B>> {
        let status = response.status();
        self.finish_now(response, status, mapping, apply_to_http)
    }
}

fn apply_to_http<B>(response: &mut http::Response<B>, saved: SaveOutcome) {
    saved.append_to(response.headers_mut());
}

/// Takes a slot's machine out for saving; its handles are finished afterwards.
pub(crate) fn take_machine(slot: &Mutex<Option<SessionMachine>>) -> Option<SessionMachine> {
    // The machine's methods do not panic on any input, so a poisoned lock only means a
    // handler panicked elsewhere while holding it; the state is still consistent.
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// The end of [`RequestSessions::finish_response`]: the headers on the response, or the
/// mapped error (logged first) in its place.
fn finish_with<R>(
    mut response: R,
    result: Result<SaveOutcome, Error>,
    mapping: &ErrorMapping<R>,
    apply: impl FnOnce(&mut R, SaveOutcome),
) -> R {
    match result {
        Ok(saved) => {
            apply(&mut response, saved);
            response
        }
        Err(error) => mapping.respond(&error),
    }
}

/// What [`RequestSessions::finish_now`] gives: the finished response, or the store
/// calls to make before it is.
#[derive(Debug)]
#[must_use = "the response is only finished once `FinishPending::run` completes"]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per response and consumed at once; boxing the pending save would add an allocation to every write"
)]
pub enum Finish<R> {
    /// The response, finished.
    Ready(R),
    /// The store calls still to make.
    Pending(FinishPending<R>),
}

/// A response waiting for its save's store calls.
pub struct FinishPending<R> {
    pending: PendingSave,
    response: R,
    mapping: ErrorMapping<R>,
    apply: fn(&mut R, SaveOutcome),
}

impl<R> FinishPending<R> {
    /// Makes the store calls and finishes the response, as
    /// [`RequestSessions::finish_response`].
    pub async fn run(self) -> R {
        let result = self.pending.run().await;
        finish_with(self.response, result, &self.mapping, self.apply)
    }
}

impl<R> fmt::Debug for FinishPending<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FinishPending")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

async fn run_store_ops(
    name: &SessionName,
    driver: Option<&dyn DynDriver>,
    outcome: &Outcome,
) -> Result<Stored, Error> {
    let Some(driver) = driver else {
        return Ok(Stored {
            result: WriteResult::Applied,
            forwarded: false,
        });
    };
    let store_err = |operation: &'static str| {
        move |source: DriverError| Error::Store {
            session: name.clone(),
            operation,
            source,
        }
    };
    let result = match outcome.write() {
        Some(write) => write_through(driver, write)
            .await
            .map_err(store_err(operation(write)))?,
        None => WriteResult::Applied,
    };
    let mut stored = Stored {
        result,
        forwarded: false,
    };
    if let Some(write) = outcome.write().filter(|_| result == WriteResult::Gone) {
        stored.forwarded = follow_forward(driver, write).await.map_err(store_err("patch"))?;
    }
    log_gone(name, outcome, stored);
    if let Some(key) = outcome.delete() {
        driver.delete(key).await.map_err(store_err("delete"))?;
    }
    Ok(stored)
}

/// Logs a write that found its session ended (and no forward to follow).
fn log_gone(name: &SessionName, outcome: &Outcome, stored: Stored) {
    if outcome.changes_dropped(stored.result) && !stored.forwarded {
        tracing::warn!(
            target: "sessionkit",
            session = name.as_str(),
            "session ended or expired while this request ran (a concurrent logout, regenerate or expiry); \
             its changes were dropped rather than bring the session back"
        );
    } else if stored.result == WriteResult::Gone && !stored.forwarded {
        tracing::debug!(target: "sessionkit", session = name.as_str(), "session ended before its idle refresh");
    }
}

/// The name a store error gives the operation of `write`.
fn operation(write: &Write) -> &'static str {
    match write {
        Write::Create { .. } => "create",
        Write::Patch { .. } => "patch",
        Write::Touch { .. } => "touch",
        Write::Rotate(_) => "rotate",
    }
}

/// The store work of `outcome` done at once, when it is a single write (no delete, no
/// revocation, no new binding) to a driver that answers writes without a future
/// ([`Driver::write_now`](crate::Driver::write_now)); `None` when it is not, with
/// nothing written. The same rules as [`run_store_ops`], forward included.
fn store_now(name: &SessionName, entry: &SessionEntry, outcome: &Outcome) -> Option<Result<Stored, Error>> {
    let driver = entry.driver.as_deref()?;
    let write = outcome.write()?;
    if outcome.delete().is_some() || !outcome.revocation_writes().is_empty() || outcome.bound_user().is_some()
    {
        return None;
    }
    let failed = |operation: &'static str, source: DriverError| {
        metrics::store_error(name, &entry.spec, operation, &source);
        Some(Err(Error::Store {
            session: name.clone(),
            operation,
            source,
        }))
    };
    let result = match driver.write_now(write)? {
        Ok(result) => result,
        Err(source) => return failed(operation(write), source),
    };
    let mut stored = Stored {
        result,
        forwarded: false,
    };
    if result == WriteResult::Gone && write.is_conditional() {
        match follow_forward_now(driver, write) {
            Ok(forwarded) => stored.forwarded = forwarded,
            Err(source) => return failed("patch", source),
        }
    }
    log_gone(name, outcome, stored);
    Some(Ok(stored))
}

/// [`follow_forward`] through the driver's immediate calls. A driver that answers
/// writes at once answers lookups too; one that does not is treated as keeping no
/// forwards.
fn follow_forward_now(driver: &dyn DynDriver, write: &Write) -> Result<bool, DriverError> {
    let Some(LookupNow::Lookup(Lookup::Forwarded { to })) = driver.lookup_now(write.key()).transpose()?
    else {
        return Ok(false);
    };
    let Some(moved) = forwarded(write, to) else {
        return Ok(false);
    };
    Ok(driver.write_now(&moved).transpose()? == Some(WriteResult::Applied))
}

/// Applies writes to revocation records: a patch, or a create when the record does not
/// exist yet (and the patch again if a concurrent request created it first).
pub(crate) async fn apply_revocations(
    name: &SessionName,
    driver: &dyn DynDriver,
    writes: &[RevocationWrite],
) -> Result<(), Error> {
    let store_err = |source| Error::Store {
        session: name.clone(),
        operation: "revoke",
        source,
    };
    for write in writes {
        if driver
            .patch(&write.key, &write.patch, write.expires_at)
            .await
            .map_err(store_err)?
            == WriteResult::Applied
        {
            continue;
        }
        match driver
            .create(&write.key, &write.initial_record(), write.expires_at)
            .await
        {
            Ok(()) => {}
            Err(DriverError::Duplicate) => {
                driver
                    .patch(&write.key, &write.patch, write.expires_at)
                    .await
                    .map_err(store_err)?;
            }
            Err(source) => return Err(store_err(source)),
        }
    }
    Ok(())
}

/// What the store did with a finished request's write.
#[derive(Debug, Clone, Copy)]
struct Stored {
    /// The write's own result. `Gone` also when the write then went through a forward:
    /// the request's cookie (the old id) must not be sent either way.
    result: WriteResult,
    /// The write found its session renewed by a concurrent request and was applied to
    /// the renewed record instead: nothing was dropped.
    forwarded: bool,
}

impl Stored {
    /// What a session with no store work gets: nothing written, nothing dropped.
    const APPLIED: Stored = Stored {
        result: WriteResult::Applied,
        forwarded: false,
    };

    fn dropped(self, outcome: &Outcome) -> bool {
        !self.forwarded && outcome.changes_dropped(self.result)
    }
}

/// The outcomes a save decided, by session index. One session, the usual case, is
/// kept inline: no allocation.
#[derive(Default)]
struct Decided {
    first: Option<(usize, Outcome)>,
    rest: Vec<(usize, Outcome)>,
}

impl Decided {
    fn push(&mut self, index: usize, outcome: Outcome) {
        if self.first.is_none() {
            self.first = Some((index, outcome));
        } else {
            self.rest.push((index, outcome));
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn iter(&self) -> impl Iterator<Item = &(usize, Outcome)> {
        self.first.iter().chain(&self.rest)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut (usize, Outcome)> {
        self.first.iter_mut().chain(&mut self.rest)
    }
}

/// What [`RequestSessions::start_save`] decided.
#[derive(Debug)]
#[must_use = "a save that needs the store is only done once `PendingSave::run` completes"]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per response and consumed at once; boxing would add the allocation this type exists to avoid"
)]
pub enum SaveStep {
    /// The save is done (nothing needed the store), or failed before any write.
    Done(Result<SaveOutcome, Error>),
    /// The store calls still to make.
    Store(PendingSave),
}

/// The store calls of a save, decided: run them with [`run`](Self::run).
pub struct PendingSave {
    request: RequestSessions,
    decided: Decided,
}

impl PendingSave {
    /// Makes the store calls and returns the headers, as [`RequestSessions::save`].
    ///
    /// # Errors
    /// As [`RequestSessions::save`].
    pub async fn run(self) -> Result<SaveOutcome, Error> {
        self.request.run_save(self.decided).await
    }
}

impl fmt::Debug for PendingSave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSave")
            .field("sessions", &self.decided.iter().count())
            .finish_non_exhaustive()
    }
}

/// A conditional write that found its record gone may have met a renewal's forward (the
/// request loaded just before a concurrent request renewed the id): apply its changes
/// at the renewed key instead, so they are not lost. Only a driver that keeps forwards
/// answers one, and only within the grace window; costs nothing otherwise but this one
/// lookup on an already rare path.
async fn follow_forward(driver: &dyn DynDriver, write: &Write) -> Result<bool, DriverError> {
    if !write.is_conditional() {
        return Ok(false);
    }
    let Lookup::Forwarded { to } = driver.lookup(write.key()).await? else {
        return Ok(false);
    };
    let Some(moved) = forwarded(write, to) else {
        return Ok(false);
    };
    Ok(write_through(driver, &moved).await? == WriteResult::Applied)
}

/// Carries out `write` through the driver's future (a create that succeeds is
/// [`WriteResult::Applied`]).
async fn write_through(driver: &dyn DynDriver, write: &Write) -> Result<WriteResult, DriverError> {
    match write {
        Write::Create {
            key,
            record,
            expires_at,
        } => driver
            .create(key, record, *expires_at)
            .await
            .map(|()| WriteResult::Applied),
        Write::Patch {
            key,
            patch,
            expires_at,
        } => driver.patch(key, patch, *expires_at).await,
        Write::Touch {
            key,
            last_seen,
            expires_at,
        } => driver.touch(key, *last_seen, *expires_at).await,
        Write::Rotate(rotation) => driver.rotate(rotation).await,
    }
}

/// What a write that met a renewal's forward becomes at the renewed key `to`: its
/// changes (a patch, a rotation's patch) or its idle refresh; a create never follows.
fn forwarded(write: &Write, to: StoreKey) -> Option<Write> {
    match write {
        Write::Patch {
            patch, expires_at, ..
        } => Some(Write::Patch {
            key: to,
            patch: patch.clone(),
            expires_at: *expires_at,
        }),
        Write::Rotate(rotation) => Some(Write::Patch {
            key: to,
            patch: rotation.patch.clone(),
            expires_at: rotation.expires_at,
        }),
        Write::Touch {
            last_seen,
            expires_at,
            ..
        } => Some(Write::Touch {
            key: to,
            last_seen: *last_seen,
            expires_at: *expires_at,
        }),
        Write::Create { .. } => None,
    }
}

impl fmt::Debug for RequestSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSessions")
            .field("cookie_headers", &self.inner.cookies.as_slice().len())
            .field("enabled", &self.inner.enabled)
            .field("saved", &self.inner.saved.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The response headers a save produced.
///
/// A response whose handler loaded a session depends on that session, so it must not be
/// cached by a shared cache nor served to another user: it gets `Vary: Cookie` (added to
/// any `Vary` the handler set) and `Cache-Control: no-store` (unless the handler set its
/// own `Cache-Control`), whether or not a cookie is set. A response whose handler never
/// loaded a session keeps its headers untouched.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct SaveOutcome {
    set_cookies: Lines,
    depends_on_session: bool,
    clear_site_data: Vec<HeaderValue>,
    dropped: Vec<SessionName>,
}

impl SaveOutcome {
    /// Adds what session `name` contributes once its store work (if any) gave
    /// `stored`: its metrics, a dropped change, its `Clear-Site-Data` and its cookies.
    fn record(&mut self, name: &SessionName, entry: &SessionEntry, outcome: &mut Outcome, stored: Stored) {
        // Counted once written: a create that failed created nothing.
        for event in outcome.events() {
            metrics::event(name, &entry.spec, event);
        }
        if stored.dropped(outcome) {
            metrics::save_dropped(name, &entry.spec);
            self.dropped.push(name.clone());
        }
        if let Some(value) = outcome.clear_site_data()
            && let Ok(value) = HeaderValue::from_str(value)
            && !self.clear_site_data.contains(&value)
        {
            self.clear_site_data.push(value);
        }
        // Rendered cookies are visible ASCII (validated names and attributes, base64
        // values), so this conversion takes the String without a copy and cannot fail.
        // A chunked cookie session gives several lines.
        for cookie in outcome.take_set_cookies(stored.result) {
            if let Ok(value) = HeaderValue::try_from(cookie.into_string()) {
                self.set_cookies.push(value);
            }
        }
    }

    /// The `Set-Cookie` header values: one per session that set or cleared its cookie,
    /// and for a chunked cookie session one per chunk cookie set or removed.
    pub fn set_cookies(&self) -> impl Iterator<Item = &str> {
        self.set_cookies.iter().filter_map(|v| v.to_str().ok())
    }

    /// `Some("no-store")` when the response depends on a session. Adapters add it
    /// unless the handler set its own `Cache-Control`.
    pub fn cache_control(&self) -> Option<&'static str> {
        self.depends_on_session.then_some("no-store")
    }

    /// `Some("Cookie")` when the response depends on a session. Adapters add it to any
    /// `Vary` the handler set.
    pub fn vary(&self) -> Option<&'static str> {
        self.depends_on_session.then_some("Cookie")
    }

    /// The `Clear-Site-Data` values of the sessions this request destroyed whose
    /// definition asks for one (`clear_site_data` in the config; off by default).
    pub fn clear_site_data(&self) -> impl Iterator<Item = &str> {
        self.clear_site_data.iter().filter_map(|v| v.to_str().ok())
    }

    /// The sessions whose changes were dropped because the session ended or expired
    /// while this request ran (a concurrent logout, regenerate or expiry): sessionkit
    /// never brings an ended session back. Each is also a `warn` event naming the
    /// session. An application that must tell the user can check this (framework-free
    /// use) or watch that event.
    pub fn dropped(&self) -> &[SessionName] {
        &self.dropped
    }

    /// Whether the response needs no header at all: no handler loaded a session.
    pub fn is_empty(&self) -> bool {
        self.set_cookies.is_empty() && self.clear_site_data.is_empty() && !self.depends_on_session
    }

    /// Adds the `Set-Cookie` and `Clear-Site-Data` headers, `Vary: Cookie` (unless a
    /// `Vary` already names `Cookie` or is `*`) and, unless one is present,
    /// `Cache-Control: no-store`.
    pub fn apply_to(&self, headers: &mut HeaderMap) {
        let lines = self.header_lines(
            headers.contains_key(CACHE_CONTROL),
            headers.get_all(VARY).iter().map(HeaderValue::as_bytes),
        );
        for (name, value) in lines {
            headers.append(name, value.clone());
        }
    }

    /// [`apply_to`](Self::apply_to), consuming the outcome: its header values move into
    /// the map instead of being copied.
    pub fn append_to(self, headers: &mut HeaderMap) {
        let (cache_control, vary) = {
            let lines = self.header_lines(
                headers.contains_key(CACHE_CONTROL),
                headers.get_all(VARY).iter().map(HeaderValue::as_bytes),
            );
            (lines.cache_control, lines.vary)
        };
        for value in self.set_cookies.into_values() {
            headers.append(SET_COOKIE, value);
        }
        for value in self.clear_site_data {
            headers.append(CLEAR_SITE_DATA, value);
        }
        if cache_control {
            headers.append(CACHE_CONTROL, NO_STORE.clone());
        }
        if vary {
            headers.append(VARY, VARY_COOKIE.clone());
        }
    }

    /// The header lines [`apply_to`](Self::apply_to) appends, in order, for a framework
    /// whose header map is not `http`'s: given whether the response has its own
    /// `Cache-Control` and the values of its `Vary` headers, as bytes.
    pub fn header_lines<'v>(
        &self,
        has_cache_control: bool,
        vary: impl IntoIterator<Item = &'v [u8]>,
    ) -> HeaderLines<'_> {
        let varies = || {
            vary.into_iter().any(|list| {
                list.split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .any(|name| name == b"*" || name.eq_ignore_ascii_case(b"cookie"))
            })
        };
        HeaderLines {
            set_cookies: self.set_cookies.iter(),
            clear_site_data: self.clear_site_data.iter(),
            cache_control: self.depends_on_session && !has_cache_control,
            vary: self.depends_on_session && !varies(),
        }
    }
}

/// Header values, the first kept inline: a response usually sets one cookie or none.
#[derive(Default, Clone, PartialEq, Eq)]
struct Lines {
    first: Option<HeaderValue>,
    more: Vec<HeaderValue>,
}

impl Lines {
    fn push(&mut self, value: HeaderValue) {
        if self.first.is_none() {
            self.first = Some(value);
        } else {
            self.more.push(value);
        }
    }

    fn iter(
        &self,
    ) -> std::iter::Chain<std::option::Iter<'_, HeaderValue>, std::slice::Iter<'_, HeaderValue>> {
        self.first.iter().chain(self.more.iter())
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn into_values(self) -> impl Iterator<Item = HeaderValue> {
        self.first.into_iter().chain(self.more)
    }
}

/// The header lines a save adds to a response: `(name, value)` pairs to append, from
/// [`SaveOutcome::header_lines`].
#[derive(Debug, Clone)]
pub struct HeaderLines<'a> {
    set_cookies: std::iter::Chain<std::option::Iter<'a, HeaderValue>, std::slice::Iter<'a, HeaderValue>>,
    clear_site_data: std::slice::Iter<'a, HeaderValue>,
    cache_control: bool,
    vary: bool,
}

static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
static VARY_COOKIE: HeaderValue = HeaderValue::from_static("Cookie");

impl<'a> Iterator for HeaderLines<'a> {
    type Item = (HeaderName, &'a HeaderValue);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(cookie) = self.set_cookies.next() {
            return Some((SET_COOKIE, cookie));
        }
        if let Some(value) = self.clear_site_data.next() {
            return Some((CLEAR_SITE_DATA, value));
        }
        if std::mem::take(&mut self.cache_control) {
            return Some((CACHE_CONTROL, &NO_STORE));
        }
        if std::mem::take(&mut self.vary) {
            return Some((VARY, &VARY_COOKIE));
        }
        None
    }
}

impl fmt::Debug for SaveOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .set_cookies()
            .map(|c| c.split('=').next().unwrap_or_default())
            .collect();
        f.debug_struct("SaveOutcome")
            .field("set_cookies", &names)
            .field("depends_on_session", &self.depends_on_session)
            .field("clear_site_data", &self.clear_site_data)
            .field("dropped", &self.dropped)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depending() -> SaveOutcome {
        SaveOutcome {
            depends_on_session: true,
            ..SaveOutcome::default()
        }
    }

    fn vary_lines(headers: &HeaderMap) -> Vec<&str> {
        headers
            .get_all(VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    #[test]
    fn vary_cookie_is_added_to_the_handlers_own() {
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding, Origin"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        depending().apply_to(&mut headers);
        assert_eq!(vary_lines(&headers), ["Accept-Encoding, Origin", "Cookie"]);
        assert_eq!(
            headers[CACHE_CONTROL], "private",
            "the handler's own Cache-Control wins"
        );
        for own in ["cookie", "Origin, Cookie", "*"] {
            let mut headers = HeaderMap::new();
            headers.insert(VARY, HeaderValue::from_static(own));
            depending().apply_to(&mut headers);
            assert_eq!(vary_lines(&headers), [own], "already varies on cookies");
            assert_eq!(headers[CACHE_CONTROL], "no-store");
        }
    }

    #[test]
    fn a_response_without_a_session_is_left_alone() {
        let mut headers = HeaderMap::new();
        SaveOutcome::default().apply_to(&mut headers);
        assert!(headers.is_empty());
        assert!(SaveOutcome::default().is_empty() && !depending().is_empty());
    }
}
