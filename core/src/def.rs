//! Session definitions: what a named session is (cookie, driver, lifetimes), and the
//! resolved form the state machine runs on.
//!
//! A leaf of the crate: configuration text is turned into changes of a definition by
//! [`crate::config`], which depends on this module, never the other way round.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::codec::{Binding, IdKeys, SealKeys};
use crate::cookies::{CookieRuleError, CookieSettings, MAX_COOKIE_CHUNKS};
use crate::expiry::ExpiryPolicy;
use crate::id::{NameError, Namespace, validate_name};
use crate::keys::KeyRing;
use crate::placement::Placement;

/// The name of a session (`web`, `admin`, ...): 1 to 64 characters from
/// `A-Z a-z 0-9 _ -`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName(Arc<str>);

impl SessionName {
    /// Validates and wraps a session name.
    ///
    /// # Errors
    /// [`NameError`] for an empty, too long or oddly spelled name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        validate_name(name, 64, false)?;
        Ok(SessionName(Arc::from(name)))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SessionName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a session's record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed by nature: a record is either in a store or in the cookie; new stores are drivers"
)]
pub enum Storage {
    /// In a store (memory, Redis, PostgreSQL, ...); the cookie carries a signed id.
    Server,
    /// In the cookie itself, sealed with AES-256-GCM.
    Cookie,
}

/// The name of the built-in memory driver (`driver = "memory"`).
pub const MEMORY_DRIVER: &str = "memory";
/// The name of the built-in sealed-cookie driver (`driver = "cookie"`), which selects
/// [`Storage::Cookie`].
pub const COOKIE_DRIVER: &str = "cookie";

/// The default absolute lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_hours(24);
/// The default idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_mins(30);

/// Which driver stores a session: one of the two built-ins or a driver the application
/// registers by name. In TOML: `driver = "memory" | "cookie" | "<name>"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DriverChoice {
    /// The driver registered as `memory` (the built-in memory driver unless replaced).
    #[default]
    Memory,
    /// The built-in sealed-cookie driver: the record lives in the cookie.
    Cookie,
    /// A driver the application registers under this name.
    Registered(DriverName),
}

impl DriverChoice {
    /// The choice a driver name selects: `memory` and `cookie` are the built-ins, any
    /// other valid name a registered driver.
    ///
    /// # Errors
    /// [`NameError`] for a name no driver can be registered under (1 to 64 characters
    /// from `A-Z a-z 0-9 _ -`).
    pub fn named(name: &str) -> Result<Self, NameError> {
        Ok(match name {
            MEMORY_DRIVER => DriverChoice::Memory,
            COOKIE_DRIVER => DriverChoice::Cookie,
            _ => {
                validate_name(name, 64, false)?;
                DriverChoice::Registered(DriverName(Arc::from(name)))
            }
        })
    }

    /// The driver name, as written in TOML.
    pub fn as_str(&self) -> &str {
        match self {
            DriverChoice::Memory => MEMORY_DRIVER,
            DriverChoice::Cookie => COOKIE_DRIVER,
            DriverChoice::Registered(name) => name.as_str(),
        }
    }

    /// Where a session on this driver keeps its record.
    pub fn storage(&self) -> Storage {
        match self {
            DriverChoice::Cookie => Storage::Cookie,
            DriverChoice::Memory | DriverChoice::Registered(_) => Storage::Server,
        }
    }
}

impl fmt::Display for DriverChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of an application-registered driver: valid, and never `memory` or `cookie`
/// (those are [`DriverChoice::Memory`] and [`DriverChoice::Cookie`]). Made by
/// [`DriverChoice::named`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DriverName(Arc<str>);

impl DriverName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DriverName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session definition that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefError {
    /// The cookie attributes break a rule.
    #[error("session `{session}`: {source}")]
    Cookie {
        /// The session.
        session: SessionName,
        /// The rule.
        #[source]
        source: CookieRuleError,
    },
    /// `cookie_chunks` is 0 or above [`MAX_COOKIE_CHUNKS`].
    #[error("session `{session}`: cookie_chunks = {chunks} is out of range (1 to {MAX_COOKIE_CHUNKS})")]
    CookieChunks {
        /// The session.
        session: SessionName,
        /// The refused value.
        chunks: u8,
    },
}

/// What a named session is: driver, cookie, lifetimes, sharing and metadata.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionDef {
    /// The session name.
    pub name: SessionName,
    /// The driver that stores it.
    pub driver: DriverChoice,
    /// Its cookie.
    pub cookie: CookieSettings,
    /// Its lifetimes.
    pub expiry: ExpiryPolicy,
    /// `true`: no app namespace in store keys and cookie binding, so apps that share the
    /// secret share the session.
    pub shared: bool,
    /// Free metadata, readable through the registry.
    pub meta: Map<String, Value>,
    /// The `Clear-Site-Data` header a response that destroys this session carries
    /// (logout), telling the browser to drop the site's cookies (and, if configured,
    /// storage and cache). `None` (the default): no such header.
    pub clear_site_data: Option<ClearSiteData>,
    /// How many cookies a sealed cookie session (`driver = "cookie"`) may be split over
    /// (`cookie_chunks` in TOML), from 1 to [`MAX_COOKIE_CHUNKS`]; ignored by sessions
    /// kept in a store, whose cookie is a short signed id.
    ///
    /// `1` (the default): the sealed record is one cookie, and a session whose
    /// `Set-Cookie` line would exceed 4096 bytes fails to save with
    /// [`FinishError::CookieTooLarge`](crate::FinishError::CookieTooLarge).
    ///
    /// `n > 1`: a session that fits one cookie is still sent as one; a larger one is
    /// sealed once and cut into chunk cookies `<name>`, `<name>.1`, ... `<name>.{n-1}`,
    /// each `Set-Cookie` line (attributes included) at most 4096 bytes and all with the
    /// same attributes. Each chunk carries the set's random 96-bit generation id, its
    /// index and the chunk count, all covered by the one authentication tag; a missing,
    /// duplicated, reordered or mixed chunk makes the request anonymous. Chunk cookies
    /// the request carried that the new value does not use are removed on the same
    /// response. More than `n` chunks' worth fails to save with
    /// [`FinishError::TooManyChunks`](crate::FinishError::TooManyChunks). Mind the
    /// request side: browsers send every chunk on every request, and many servers and
    /// proxies refuse `Cookie` headers over 8 KiB by default.
    pub cookie_chunks: u8,
    /// A cap on one user's concurrent sessions of this session (`None`, the default:
    /// no cap). Enforced when a response binds a session to a user (sign-in), on
    /// drivers that keep per-user indexes.
    pub user_limit: Option<SessionLimit>,
    /// Cookie sessions only: where the revocation records of bound sessions live
    /// (see [`revocation`](crate::revocation)), `None` for none (fully stateless: a
    /// copied cookie lives until it expires, even after logout). Default: the `memory`
    /// driver, which revokes on one machine; name a shared driver (Redis, PostgreSQL)
    /// when several machines serve the app. In TOML: `revocation = "memory" | "<driver>"
    /// | false`.
    pub revocation: Option<DriverChoice>,
}

/// What to do when a sign-in would give a user more sessions than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitPolicy {
    /// Sign in, and end the user's sessions that were created first until the cap holds.
    EvictOldest,
    /// Refuse the sign-in: nothing is written and the request fails with
    /// `sessionkit::Error::SessionLimit` (409).
    Refuse,
}

/// A cap on concurrent sessions per user. In TOML: `max_sessions_per_user = 5` and
/// `on_session_limit = "evict_oldest" | "refuse"` (default `evict_oldest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionLimit {
    /// The most sessions one user may have at once (at least 1).
    pub max: std::num::NonZeroU32,
    /// What happens past it.
    pub policy: LimitPolicy,
}

impl SessionLimit {
    /// A cap of `max` sessions with `policy`.
    pub fn new(max: std::num::NonZeroU32, policy: LimitPolicy) -> Self {
        SessionLimit { max, policy }
    }
}

/// A validated `Clear-Site-Data` header value: a list of quoted directives, e.g.
/// `"cookies", "storage"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearSiteData(String);

impl ClearSiteData {
    /// The directives browsers know.
    pub const DIRECTIVES: [&'static str; 8] = [
        "cookies",
        "storage",
        "cache",
        "executionContexts",
        "clientHints",
        "prefetchCache",
        "prerenderCache",
        "*",
    ];

    /// `"cookies"`: the browser drops every cookie of the site (all sessions, and the
    /// application's other cookies).
    pub fn cookies() -> Self {
        ClearSiteData("\"cookies\"".to_owned())
    }

    /// A header value listing `directives` (at least one, each one of
    /// [`DIRECTIVES`](Self::DIRECTIVES)).
    ///
    /// # Errors
    /// [`UnknownClearSiteDirective`] for an empty list or an unknown directive.
    pub fn new<'a>(directives: impl IntoIterator<Item = &'a str>) -> Result<Self, UnknownClearSiteDirective> {
        let mut value = String::new();
        for directive in directives {
            if !Self::DIRECTIVES.contains(&directive) {
                return Err(UnknownClearSiteDirective(directive.to_owned()));
            }
            if !value.is_empty() {
                value.push_str(", ");
            }
            value.push('"');
            value.push_str(directive);
            value.push('"');
        }
        if value.is_empty() {
            return Err(UnknownClearSiteDirective(String::new()));
        }
        Ok(ClearSiteData(value))
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `Clear-Site-Data` directive that browsers do not know (or none at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a Clear-Site-Data directive (use one or more of \"cookies\", \"storage\", \"cache\", \
     \"executionContexts\", \"clientHints\", \"prefetchCache\", \"prerenderCache\", \"*\")"
)]
pub struct UnknownClearSiteDirective(String);

impl UnknownClearSiteDirective {
    /// The refused directive (empty for an empty list).
    pub fn directive(&self) -> &str {
        &self.0
    }
}

impl SessionDef {
    /// A session on the `memory` driver with cookie `__Host-<name>`, a 24 h lifetime and
    /// a 30 min idle timeout. Adjust the public fields from there.
    pub fn new(name: SessionName) -> Self {
        let cookie = CookieSettings::new(format!("__Host-{name}"));
        SessionDef {
            name,
            driver: DriverChoice::Memory,
            cookie,
            // Both durations are positive constants.
            expiry: ExpiryPolicy::new(DEFAULT_TTL, Some(DEFAULT_IDLE_TIMEOUT))
                .expect("default lifetimes are valid"),
            shared: false,
            meta: Map::new(),
            clear_site_data: None,
            cookie_chunks: 1,
            user_limit: None,
            revocation: Some(DriverChoice::Memory),
        }
    }

    /// Checks the cookie attribute rules and the range of
    /// [`cookie_chunks`](Self::cookie_chunks).
    ///
    /// # Errors
    /// [`DefError::Cookie`] or [`DefError::CookieChunks`] naming this session.
    pub fn validate(&self) -> Result<(), DefError> {
        self.cookie.validate().map_err(|source| DefError::Cookie {
            session: self.name.clone(),
            source,
        })?;
        if !(1..=MAX_COOKIE_CHUNKS).contains(&self.cookie_chunks) {
            return Err(DefError::CookieChunks {
                session: self.name.clone(),
                chunks: self.cookie_chunks,
            });
        }
        Ok(())
    }

    /// Where this session's record lives, from its driver.
    pub fn storage(&self) -> Storage {
        self.driver.storage()
    }
}

/// A session definition resolved for running: validated, with its namespace and key
/// ring. The state machine runs on `Arc<SessionSpec>`; building one per session at
/// startup keeps per-request work free of lookups and derivations.
#[derive(Debug)]
pub struct SessionSpec {
    def: SessionDef,
    storage: Storage,
    app_namespace: Namespace,
    store_namespace: Namespace,
    id_keys: IdKeys,
    seal_keys: SealKeys,
    placement: Placement,
}

impl SessionSpec {
    /// Resolves `def` for an app whose namespace is `namespace`.
    ///
    /// # Errors
    /// [`DefError::Cookie`] when the cookie attributes break a rule.
    pub fn new(def: SessionDef, namespace: &Namespace, keys: &KeyRing) -> Result<Self, DefError> {
        def.validate()?;
        let store_namespace = if def.shared {
            Namespace::shared()
        } else {
            namespace.clone()
        };
        let binding = binding_of(&def, namespace);
        let id_keys = IdKeys::new(keys, &binding);
        let seal_keys = SealKeys::new(keys, &binding);
        Ok(SessionSpec {
            storage: def.storage(),
            def,
            app_namespace: namespace.clone(),
            store_namespace,
            id_keys,
            seal_keys,
            placement: Placement::NONE,
        })
    }

    /// The same spec, with new ids placed for a sharded store (see [`Placement`]); the
    /// registry sets its driver's.
    #[must_use]
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// How new ids are placed ([`Placement::NONE`] unless the driver asked).
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// Whether bound sessions are checked against a revocation record (cookie sessions
    /// with a revocation store).
    pub fn checks_revocation(&self) -> bool {
        self.storage == Storage::Cookie && self.def.revocation.is_some()
    }

    /// The definition.
    pub fn def(&self) -> &SessionDef {
        &self.def
    }

    /// The session name.
    pub fn name(&self) -> &SessionName {
        &self.def.name
    }

    /// Where the record lives.
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// The namespace of this session's store keys (`_shared` for shared sessions).
    pub fn store_namespace(&self) -> &Namespace {
        &self.store_namespace
    }

    /// The signing keys of this session's id cookies (bound to its name and cookie).
    pub fn id_keys(&self) -> &IdKeys {
        &self.id_keys
    }

    /// The sealing keys of this session's sealed cookies.
    pub fn seal_keys(&self) -> &SealKeys {
        &self.seal_keys
    }

    /// What this session's cookies are bound to.
    pub fn binding(&self) -> Binding<'_> {
        binding_of(&self.def, &self.app_namespace)
    }
}

/// What a session's cookies are bound to: the app namespace (none when shared), the
/// session name and the cookie name.
fn binding_of<'a>(def: &'a SessionDef, namespace: &'a Namespace) -> Binding<'a> {
    Binding {
        namespace: (!def.shared).then(|| namespace.as_str()),
        session: def.name.as_str(),
        cookie: &def.cookie.name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Secret;

    #[test]
    fn names_are_validated() {
        assert!(SessionName::new("web").is_ok());
        assert!(SessionName::new("my_session-2").is_ok());
        assert!(SessionName::new("a.b").is_err());
        assert!(SessionName::new("").is_err());
    }

    #[test]
    fn defaults_are_valid_and_host_prefixed() {
        let def = SessionDef::new(SessionName::new("web").expect("valid"));
        def.validate().expect("valid");
        assert_eq!(def.cookie.name, "__Host-web");
        assert_eq!(def.storage(), Storage::Server);
    }

    #[test]
    fn driver_names_select_one_choice_each() {
        assert_eq!(DriverChoice::named("memory"), Ok(DriverChoice::Memory));
        assert_eq!(DriverChoice::named("cookie"), Ok(DriverChoice::Cookie));
        let redis = DriverChoice::named("redis").expect("valid");
        assert!(matches!(&redis, DriverChoice::Registered(name) if name.as_str() == "redis"));
        for choice in [DriverChoice::Memory, DriverChoice::Cookie, redis] {
            assert_eq!(DriverChoice::named(choice.as_str()).as_ref(), Ok(&choice));
            assert_eq!(choice.to_string(), choice.as_str());
        }
        assert_eq!(DriverChoice::Cookie.storage(), Storage::Cookie);
        assert!(DriverChoice::named("a.b").is_err());
        assert!(DriverChoice::named("").is_err());
    }

    #[test]
    fn a_broken_cookie_rule_names_the_session() {
        let mut def = SessionDef::new(SessionName::new("web").expect("valid"));
        def.cookie.secure = false;
        let err = def.validate().expect_err("__Host- needs Secure");
        assert!(err.to_string().starts_with("session `web`: cookie name"), "{err}");
    }

    #[test]
    fn shared_sessions_drop_the_namespace() {
        let keys = KeyRing::new(&Secret::new(vec![0u8; 32]).expect("long"));
        let ns = Namespace::new("shop").expect("valid");
        let mut def = SessionDef::new(SessionName::new("sso").expect("valid"));
        let own = SessionSpec::new(def.clone(), &ns, &keys).expect("valid");
        assert_eq!(own.binding().namespace, Some("shop"));
        assert_eq!(own.store_namespace().as_str(), "shop");
        def.shared = true;
        let shared = SessionSpec::new(def, &ns, &keys).expect("valid");
        assert_eq!(shared.binding().namespace, None);
        assert_eq!(shared.store_namespace(), &Namespace::shared());
    }

    #[test]
    fn clear_site_data_values_are_validated() {
        assert_eq!(ClearSiteData::cookies().as_str(), "\"cookies\"");
        let both = ClearSiteData::new(["cookies", "storage"]).expect("known");
        assert_eq!(both.as_str(), "\"cookies\", \"storage\"");
        assert!(ClearSiteData::new(["cookie"]).is_err());
        assert!(ClearSiteData::new(["cookies\", \"x"]).is_err());
        assert!(ClearSiteData::new([]).is_err());
        let def = SessionDef::new(SessionName::new("web").expect("valid"));
        assert_eq!(def.clear_site_data, None, "off by default");
    }
}
