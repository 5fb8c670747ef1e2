//! The registry: drivers and named sessions, configured at startup.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sessionkit_core::{
    COOKIE_DRIVER, DEFAULT_TTL, ExpiryPolicy, Namespace, Placement, SameSite, Secret, SessionDef,
    SessionName, SessionSpec, Storage,
};

use crate::clock::{SharedClock, SystemClock};
use crate::driver::{Driver, DynDriver};
use crate::error::SetupError;
use crate::memory::MemoryDriver;
use crate::secrets::{self, SecretSources};
use crate::sessions::{SessionEntry, Sessions};

pub use sessionkit_core::MEMORY_DRIVER;
/// The default app namespace.
pub const DEFAULT_NAMESPACE: &str = "app";

/// Drivers by name and session definitions by name, configured at startup and then
/// [built](Registry::build) into the [`Sessions`] every request uses.
///
/// [`Registry::new`] registers:
///
/// | session | cookie | ttl | idle timeout | notes |
/// |---|---|---|---|---|
/// | `web` (default) | `__Host-web` | 24h | 30m | `SameSite=Lax` |
/// | `admin` | `__Host-admin` | 8h | 15m | `SameSite=Strict` |
/// | `api` | `__Host-api` | 24h | 1h | `SameSite=Lax` |
///
/// all on the `memory` driver, plus the `cookie` driver (sealed cookie sessions). Then
/// register your drivers and sessions, apply TOML config (which only changes sessions
/// already registered), and build:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use sessionkit::Registry;
///
/// let mut registry = Registry::new();
/// registry.set_secret(sessionkit::Secret::new(*b"0123456789abcdef0123456789abcdef")?);
/// registry.apply_toml(r#"
///     [session.sessions.web]
///     idle_timeout = "2h"
///     [session.sessions.web.meta]
///     area = "frontend"
/// "#)?;
/// let sessions = registry.build()?;
/// let web = sessions.info().iter().find(|s| s.name.as_str() == "web").unwrap();
/// assert_eq!(web.idle_timeout, Some(std::time::Duration::from_secs(7200)));
/// assert_eq!(web.meta["area"], "frontend");
/// # Ok(()) }
/// ```
pub struct Registry {
    clock: SharedClock,
    drivers: BTreeMap<String, Arc<dyn DynDriver>>,
    sessions: BTreeMap<SessionName, SessionDef>,
    default_session: SessionName,
    namespace: Namespace,
    secrets: SecretSources,
}

/// What [`Registry::info`] and [`Sessions::info`] report about one session.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session name.
    pub name: SessionName,
    /// Whether it is the default session.
    pub default: bool,
    /// The driver name.
    pub driver: String,
    /// The cookie name.
    pub cookie_name: String,
    /// The absolute lifetime; `None` for an idle-only session (`ttl = "none"`).
    pub ttl: Option<Duration>,
    /// The idle timeout.
    pub idle_timeout: Option<Duration>,
    /// Whether the session is shared between apps.
    pub shared: bool,
    /// Free metadata.
    pub meta: Map<String, Value>,
}

impl SessionInfo {
    fn of(def: &SessionDef, default: bool) -> Self {
        SessionInfo {
            name: def.name.clone(),
            default,
            driver: def.driver.as_str().to_owned(),
            cookie_name: def.cookie.name.clone(),
            ttl: def.expiry.ttl(),
            idle_timeout: def.expiry.idle_timeout(),
            shared: def.shared,
            meta: def.meta.clone(),
        }
    }
}

impl fmt::Display for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use sessionkit_core::duration::format_duration;
        write!(
            f,
            "{}{} driver={} cookie={} ttl={} idle={} shared={}",
            self.name,
            if self.default { " (default)" } else { "" },
            self.driver,
            self.cookie_name,
            self.ttl.map_or_else(|| "none".to_owned(), format_duration),
            self.idle_timeout
                .map_or_else(|| "none".to_owned(), format_duration),
            self.shared,
        )
    }
}

fn name(text: &str) -> Result<SessionName, SetupError> {
    SessionName::new(text).map_err(|source| SetupError::Name {
        name: text.to_owned(),
        source,
    })
}

/// The built-in sessions: `web` is [`SessionDef::new`] as it is; `admin` and `api` differ
/// from it only where the table in [`Registry`]'s docs says.
fn builtin_sessions() -> [SessionDef; 3] {
    // The names and durations below are constants that satisfy every rule.
    let def = |session| SessionDef::new(SessionName::new(session).expect("built-in names are valid"));
    let lifetimes = |ttl, idle| ExpiryPolicy::new(ttl, Some(idle)).expect("built-in lifetimes are valid");
    let web = def("web");
    let mut admin = def("admin");
    admin.expiry = lifetimes(Duration::from_hours(8), Duration::from_mins(15));
    admin.cookie.same_site = SameSite::Strict;
    let mut api = def("api");
    api.expiry = lifetimes(DEFAULT_TTL, Duration::from_hours(1));
    [web, admin, api]
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry with the built-in drivers and sessions, on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// The same, on `clock` (a [`ManualClock`](crate::ManualClock) in tests). The
    /// built-in memory driver follows the same clock.
    pub fn with_clock(clock: SharedClock) -> Self {
        let mut drivers: BTreeMap<String, Arc<dyn DynDriver>> = BTreeMap::new();
        drivers.insert(
            MEMORY_DRIVER.to_owned(),
            Arc::new(MemoryDriver::builder().clock(clock.clone()).build()),
        );
        let sessions = builtin_sessions()
            .into_iter()
            .map(|def| (def.name.clone(), def))
            .collect();
        Registry {
            clock,
            drivers,
            sessions,
            default_session: SessionName::new("web").expect("built-in name is valid"),
            namespace: Namespace::new(DEFAULT_NAMESPACE).expect("built-in namespace is valid"),
            secrets: SecretSources::default(),
        }
    }

    /// The clock this registry (and its memory driver) uses.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Registers (or replaces) a driver under `name`. Sessions select it with
    /// `driver = "<name>"`. Replacing `memory` changes the default store.
    ///
    /// # Errors
    /// [`SetupError::ReservedDriverName`] for `cookie`; [`SetupError::Name`] for an
    /// invalid name.
    pub fn register_driver(
        &mut self,
        driver_name: &str,
        driver: impl Driver,
    ) -> Result<&mut Self, SetupError> {
        self.register_shared_driver(driver_name, Arc::new(driver))
    }

    /// Registers an already shared driver.
    ///
    /// # Errors
    /// As [`register_driver`](Self::register_driver).
    pub fn register_shared_driver(
        &mut self,
        driver_name: &str,
        driver: Arc<dyn DynDriver>,
    ) -> Result<&mut Self, SetupError> {
        if driver_name == COOKIE_DRIVER {
            return Err(SetupError::ReservedDriverName {
                name: driver_name.to_owned(),
            });
        }
        name(driver_name)?;
        self.drivers.insert(driver_name.to_owned(), driver);
        Ok(self)
    }

    /// Registers (or replaces) a session definition.
    ///
    /// # Errors
    /// [`SetupError::Definition`] when its cookie attributes break a rule.
    pub fn register_session(&mut self, def: SessionDef) -> Result<&mut Self, SetupError> {
        def.validate()?;
        self.sessions.insert(def.name.clone(), def);
        Ok(self)
    }

    /// A new session named `name` with the defaults of [`SessionDef::new`], registered
    /// and returned for adjusting.
    ///
    /// # Errors
    /// [`SetupError::Name`] for an invalid name.
    pub fn add_session(&mut self, session: &str) -> Result<&mut SessionDef, SetupError> {
        let session = name(session)?;
        let def = SessionDef::new(session.clone());
        Ok(self.sessions.entry(session).or_insert(def))
    }

    /// The definition of a registered session, for adjusting in code. Changes are
    /// validated by [`build`](Self::build).
    pub fn session_mut(&mut self, session: &str) -> Option<&mut SessionDef> {
        self.sessions.get_mut(session)
    }

    /// Makes `session` the default session (the one the plain extractors give).
    ///
    /// # Errors
    /// [`SetupError::UnknownSession`] if it is not registered.
    pub fn set_default_session(&mut self, session: &str) -> Result<&mut Self, SetupError> {
        let found = self
            .sessions
            .keys()
            .find(|n| n.as_str() == session)
            .cloned()
            .ok_or_else(|| SetupError::UnknownSession {
                name: session.to_owned(),
            })?;
        self.default_session = found;
        Ok(self)
    }

    /// Sets the app namespace (bound into every non-shared cookie and store key).
    ///
    /// # Errors
    /// [`SetupError::Name`] for an invalid namespace.
    pub fn set_namespace(&mut self, namespace: &str) -> Result<&mut Self, SetupError> {
        self.namespace = Namespace::new(namespace).map_err(|source| SetupError::Name {
            name: namespace.to_owned(),
            source,
        })?;
        Ok(self)
    }

    /// Sets the primary secret explicitly; it wins over config and environment.
    pub fn set_secret(&mut self, secret: Secret) -> &mut Self {
        self.secrets.explicit = Some(secret);
        self
    }

    /// Adds a verify-only previous secret.
    pub fn add_previous_secret(&mut self, secret: Secret) -> &mut Self {
        self.secrets.explicit_previous.push(secret);
        self
    }

    /// Applies TOML configuration text. All or nothing: on error nothing changes.
    ///
    /// # Errors
    /// [`SetupError::Config`]: invalid TOML, unknown keys or values (naming the session
    /// and the key) or a broken cookie rule; [`SetupError::UnregisteredSessionConfig`]
    /// for a section of a session that is not registered.
    pub fn apply_toml(&mut self, text: &str) -> Result<&mut Self, SetupError> {
        let config = sessionkit_core::config::parse(text)?;
        let mut updated = Vec::with_capacity(config.sessions.len());
        for (session, overrides) in &config.sessions {
            let Some(current) = self.sessions.get(session.as_str()) else {
                return Err(SetupError::UnregisteredSessionConfig {
                    name: session.clone(),
                });
            };
            let mut def = current.clone();
            overrides.apply_to(&mut def)?;
            updated.push(def);
        }
        for def in updated {
            self.sessions.insert(def.name.clone(), def);
        }
        if let Some(namespace) = config.namespace {
            self.namespace = namespace;
        }
        if config.secret.is_some() {
            self.secrets.config_session = config.secret;
        }
        if config.app_secret.is_some() {
            self.secrets.config_app = config.app_secret;
        }
        self.secrets.config_previous.extend(config.previous_secrets);
        Ok(self)
    }

    /// Reads and applies a TOML file.
    ///
    /// # Errors
    /// [`SetupError::ReadConfig`], or as [`apply_toml`](Self::apply_toml).
    pub fn apply_toml_file(&mut self, path: impl AsRef<Path>) -> Result<&mut Self, SetupError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SetupError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        self.apply_toml(&text)
    }

    /// Every registered session, in name order.
    pub fn info(&self) -> Vec<SessionInfo> {
        self.sessions
            .values()
            .map(|def| SessionInfo::of(def, def.name == self.default_session))
            .collect()
    }

    /// Checks everything and starts: resolves the secrets from the environment
    /// (`SESSIONKIT_SECRET`, `APP_SECRET`, `SESSIONKIT_PREVIOUS_SECRETS`, `APP_ENV`).
    ///
    /// # Errors
    /// A [`SetupError`]: an unknown driver, duplicate cookie names, a short secret, or
    /// no secret with `APP_ENV=production`.
    pub fn build(self) -> Result<Sessions, SetupError> {
        self.build_with_env(&|name| std::env::var(name).ok())
    }

    /// [`build`](Self::build) reading variables from `env` instead of the process
    /// environment (for tests and for apps with their own settings layer).
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub fn build_with_env(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Sessions, SetupError> {
        let mut cookies: BTreeMap<&str, &SessionName> = BTreeMap::new();
        for def in self.sessions.values() {
            def.validate()?;
            if def.storage() == Storage::Server && !self.drivers.contains_key(def.driver.as_str()) {
                return Err(SetupError::UnknownDriver {
                    session: def.name.clone(),
                    driver: def.driver.clone(),
                });
            }
            if def.storage() == Storage::Cookie
                && let Some(revocation) = &def.revocation
                && !self.drivers.contains_key(revocation.as_str())
            {
                return Err(SetupError::UnknownDriver {
                    session: def.name.clone(),
                    driver: revocation.clone(),
                });
            }
            if let Some(first) = cookies.insert(def.cookie.name.as_str(), &def.name) {
                return Err(SetupError::DuplicateCookieName {
                    first: first.clone(),
                    second: def.name.clone(),
                    cookie: def.cookie.name.clone(),
                });
            }
        }
        // A chunked cookie session also owns `name.1`, `name.2`, ...
        for def in self.sessions.values() {
            if def.storage() != Storage::Cookie {
                continue;
            }
            for index in 1..usize::from(def.cookie_chunks) {
                let chunk = def.cookie.chunk_name(index);
                if let Some(other) = cookies.get(chunk.as_ref()) {
                    return Err(SetupError::DuplicateCookieName {
                        first: def.name.clone(),
                        second: (*other).clone(),
                        cookie: chunk.into_owned(),
                    });
                }
            }
        }
        let info = self.info();
        let (keys, origin) = secrets::resolve(self.secrets, env)?;
        tracing::info!(
            secret = ?origin,
            previous_keys = keys.previous_ids().count(),
            namespace = %self.namespace,
            sessions = self.sessions.len(),
            "sessionkit started"
        );
        let mut entries = Vec::with_capacity(self.sessions.len());
        for (session, def) in self.sessions {
            let (driver, revocation) = match def.storage() {
                Storage::Server => (self.drivers.get(def.driver.as_str()).cloned(), None),
                Storage::Cookie => (
                    None,
                    def.revocation
                        .as_ref()
                        .and_then(|choice| self.drivers.get(choice.as_str()).cloned()),
                ),
            };
            let placement = driver
                .as_ref()
                .map_or(Placement::NONE, |driver| driver.placement());
            let spec = Arc::new(SessionSpec::new(def, &self.namespace, &keys)?.with_placement(placement));
            entries.push((
                session,
                SessionEntry {
                    spec,
                    driver,
                    revocation,
                },
            ));
        }
        Ok(Sessions::new(
            entries,
            self.default_session,
            self.clock,
            self.drivers.into_iter().collect(),
            info,
            origin,
        ))
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("drivers", &self.drivers.keys().collect::<Vec<_>>())
            .field("sessions", &self.sessions.keys().collect::<Vec<_>>())
            .field("default_session", &self.default_session)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}
