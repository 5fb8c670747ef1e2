//! The sans-IO core of [sessionkit](https://docs.rs/sessionkit): everything a session
//! library decides, and nothing it does.
//!
//! This crate parses and verifies session cookies, seals cookie sessions, derives keys,
//! checks expiry, tracks what a request changed and decides, when the response is
//! ready, which store write, which Set-Cookie and which cache header it needs. It never
//! touches a socket, never reads a clock and never draws randomness on its own: `now`
//! and an RNG are arguments. The async layer (`sessionkit`), the drivers and the
//! framework adapters only carry out what this crate decides, so every framework gets
//! exactly the same behaviour.
//!
//! # The lifecycle, driven by hand
//!
//! A request that signs in (first request), then a request that reads the session with
//! the cookie the first response set. A `HashMap` stands in for the store; a fixed
//! clock and a seeded RNG make the run reproducible.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use sessionkit_core::{
//!     KeyRing, LoadResult, Namespace, Record, Secret, SessionDef, SessionMachine,
//!     SessionName, SessionSpec, Timestamp, Write, WriteResult,
//! };
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(7);
//! let keys = KeyRing::new(&Secret::new(*b"an example secret of 32+ bytes!!")?);
//! let def = SessionDef::new(SessionName::new("web")?);
//! let spec = Arc::new(SessionSpec::new(def, &Namespace::new("demo")?, &keys)?);
//! let mut store: HashMap<_, Record> = HashMap::new();
//! let now = Timestamp::from_millis(1_700_000_000_000);
//!
//! // Request 1: no cookie, so a new session; the handler signs in.
//! let mut session = SessionMachine::begin(spec.clone(), [], now);
//! assert!(session.load_request().is_none());
//! session.insert("user", "ada")?;
//! session.regenerate()?; // privilege change: new id (a new session gets one anyway)
//! let outcome = session.finish(200, now, &mut rng)?;
//! let Some(Write::Create { key, record, .. }) = outcome.write() else { unreachable!() };
//! store.insert(key.clone(), record.clone());
//! let set_cookie = outcome.set_cookie(WriteResult::Applied).expect("a new session sets a cookie");
//! assert_eq!(outcome.cache_control(WriteResult::Applied), Some("no-store"));
//!
//! // The browser sends the cookie back.
//! let cookie = set_cookie.as_str().split(';').next().unwrap().to_owned();
//!
//! // Request 2, a minute later: read only.
//! let later = Timestamp::from_millis(now.as_millis() + 60_000);
//! let mut session = SessionMachine::begin(spec.clone(), [cookie.as_bytes()], later);
//! let key = session.load_request().expect("a valid cookie asks for a load").clone();
//! let loaded = store.get(&key).cloned().map_or(LoadResult::Missing, LoadResult::Found);
//! session.handle_load(loaded, later)?;
//! assert_eq!(session.get::<String>("user")?.as_deref(), Some("ada"));
//! let outcome = session.finish(200, later, &mut rng)?;
//! assert!(outcome.is_noop(), "reading writes nothing and sets no cookie");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security model
//!
//! - Session ids are 256 bits from the caller's CSPRNG. Stores see only
//!   [`StoreKey`] = SHA-256(id), so a store dump cannot be replayed as cookies.
//! - Id cookies are HMAC-SHA256 signed; cookie sessions are sealed with AES-256-GCM.
//!   Both bind the format version, the key id, the app namespace, the session name and
//!   the cookie name. Tags are verified in constant time before anything is parsed.
//! - Keys are derived per purpose with HKDF-SHA256 from secrets of at least 32 bytes. A
//!   [`KeyRing`] verifies with previous secrets and the machine re-issues such cookies
//!   with the primary, so rotation logs nobody out.
//! - Expiry (absolute `ttl` and `idle_timeout`) is enforced from authenticated
//!   timestamps, whatever the cookie's `Max-Age` says. Idle refreshes are throttled.
//! - A client-chosen id is never adopted: unknown, expired and corrupt sessions give a
//!   fresh session with a fresh id.
//! - `Debug` never shows an id, a key, a secret or a cookie value.
//!
//! # Panic policy
//!
//! A panic is a bug. No request bytes, configuration text or stored data can make this
//! crate panic: bad input gives a typed error or, for cookies, an anonymous request. The
//! fuzz targets in `fuzz/` check it. The few `expect`s state the local invariant that
//! makes them unreachable.
//!
//! # Feature flags
//!
//! - `internal`: **unstable, not covered by semver**, for sessionkit's own fuzzing,
//!   benchmarks and tests. Exposes the envelope codecs and the cookie parser as free
//!   functions in `internal`. Applications do not need it and must not enable it.
//!
//! # Time and randomness
//!
//! Every operation that needs the time takes `now: Timestamp`; every one that needs
//! randomness takes `rng: &mut impl CryptoRng`. Tests drive a manual clock and a seeded
//! RNG, so expiry is tested in simulated time without sleeping.
//!
//! The RNG must never repeat itself: session ids and the salts of sealed cookies (see
//! [`codec`]) are only as unique as its output. A user-space CSPRNG copied by `fork`
//! (such as `rand`'s thread RNG, which does not reseed on fork) repeats the parent's
//! output in the child; reseed it in the child before the first request.

#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

pub mod codec;
pub mod config;
pub mod cookies;
mod def;
mod delta;
pub mod duration;
mod expiry;
mod id;
#[cfg(feature = "internal")]
pub mod internal;
mod keys;
mod machine;
pub mod placement;
mod record;
pub mod revocation;
mod time;
mod update;
mod user;
mod value;

pub use codec::{Binding, IdKeys, Rejection, SealKeys};
pub use config::{Config, ConfigError, SessionOverrides};
pub use cookies::{CookieRuleError, CookieSettings, SameSite, SetCookie, SetCookieTooLarge};
pub use def::{
    COOKIE_DRIVER, ClearSiteData, DEFAULT_IDLE_TIMEOUT, DEFAULT_TTL, DefError, DriverChoice, DriverName,
    LimitPolicy, MEMORY_DRIVER, SessionDef, SessionLimit, SessionName, SessionSpec, Storage,
    UnknownClearSiteDirective,
};
pub use expiry::{
    DEFAULT_RENEW_GRACE, DEFAULT_TOUCH_SHARE, Deadlines, ExpiredBy, ExpiryError, ExpiryPolicy,
    IDLE_ONLY_COOKIE_AGE, LifetimeDecodeError, LifetimeError, MAX_RENEW_GRACE, SessionLifetime,
};
pub use id::{Fingerprint, NameError, Namespace, SessionId, StoreKey};
pub use keys::{KeyError, KeyId, KeyRing, KeyUse, MIN_SECRET_LEN, Secret};
pub use machine::{
    Event, FLASH_KEY, FinishError, LIFETIME_KEY, LoadResult, Outcome, RESERVED_PREFIX, SessionError,
    SessionMachine, USER_KEY, UpdateTarget, Write, WriteResult, decode_value, encode_value,
};
pub use placement::Placement;
pub use record::{Patch, RECORD_VERSION, Record, RecordError, Rotation};
pub use time::Timestamp;
pub use update::{KeyUpdate, UpdateResult};
pub use user::{
    MAX_LABEL_LEN, MAX_USER_ID_LEN, SessionHandle, UserBinding, UserDecodeError, UserError, UserKey,
};
pub use value::{MAX_VALUE_DEPTH, MAX_VALUE_LEN};

/// The RNG traits the core takes, re-exported so callers name the same version.
pub use rand_core;
