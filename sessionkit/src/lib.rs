//! HTTP sessions for Rust: named sessions, signed and sealed cookies, pluggable async
//! storage drivers, TOML configuration and secrets with zero-downtime rotation.
//!
//! This is the crate applications depend on. It runs the decisions of
//! [`sessionkit_core`] (a pure, synchronous state machine) against async storage
//! drivers, with a clock it owns. Framework adapters (`sessionkit-axum`,
//! `sessionkit-warp`, `sessionkit-poem`) are thin shims over [`RequestSessions`]; any
//! other framework, or a plain hyper service, can use it directly.
//!
//! # The lifecycle
//!
//! 1. At startup: a [`Registry`] with drivers and named sessions, configured (TOML,
//!    environment) and [built](Registry::build) into [`Sessions`].
//! 2. Per request: [`Sessions::request_from_headers`] gives the request's
//!    [`RequestSessions`]. Nothing happens until a handler asks for a session.
//! 3. [`RequestSessions::session`] parses and verifies the cookie and loads the record
//!    (one driver call), giving a [`Session`] handle whose methods are synchronous.
//! 4. [`RequestSessions::save`] with the response status: the core decides the store
//!    write (none, create, per-key patch, throttled touch, regenerate, delete) and the
//!    `Set-Cookie`/`Cache-Control` headers; this crate runs the driver call and returns
//!    the headers ([`SaveOutcome::apply_to`]).
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use http::HeaderMap;
//! use sessionkit::{ManualClock, Registry, Secret};
//!
//! let clock = ManualClock::starting_now();
//! let mut registry = Registry::with_clock(clock.shared());
//! registry.set_secret(Secret::new(*b"a development secret of 32 bytes")?);
//! let sessions = registry.build()?;
//!
//! // A sign-in request.
//! let request = sessions.request_from_headers(&HeaderMap::new());
//! let web = request.default_session().await?;
//! web.insert("user", "ada")?;
//! web.regenerate()?; // new id on privilege change
//! let mut response_headers = HeaderMap::new();
//! request.save(303).await?.apply_to(&mut response_headers);
//! assert_eq!(response_headers["cache-control"], "no-store");
//! let cookie = response_headers["set-cookie"].to_str()?.split(';').next().unwrap().to_owned();
//!
//! // 31 idle minutes later the session is gone (`web` has a 30 minute idle timeout).
//! clock.advance(std::time::Duration::from_secs(31 * 60));
//! let mut headers = HeaderMap::new();
//! headers.insert("cookie", cookie.parse()?);
//! let request = sessions.request_from_headers(&headers);
//! assert!(request.default_session().await?.is_new()?);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! # Drivers
//!
//! `memory` ([`MemoryDriver`], the default: sharded, bounded, expiring) and `cookie`
//! (the record sealed with AES-256-GCM in the cookie itself) are built in; Redis and
//! PostgreSQL live in `sessionkit-redis` and `sessionkit-postgres`. To write your own,
//! implement [`Driver`] with plain `async fn`s, following the contract in the
//! [`driver`] module, register it with [`Registry::register_driver`], and run the
//! public conformance suite (`sessionkit-conformance`) against it.
//!
//! # Configuration and secrets
//!
//! See [`Registry`] for the built-in sessions and [`sessionkit_core::config`] for the
//! TOML schema. The primary secret comes from, in order: [`Registry::set_secret`],
//! `session.secret`, `app.secret`, `SESSIONKIT_SECRET`, `APP_SECRET`.
//! `SESSIONKIT_PREVIOUS_SECRETS` (comma-separated) adds verify-only secrets for
//! rotation: cookies made with them keep working and are re-issued with the primary.
//! Secrets shorter than 32 bytes are always an error. Without any secret, development
//! (`APP_ENV` unset or `development`, `dev`, `test`, `local`) runs with a random
//! per-process key (and a warning); any other `APP_ENV` is production, which refuses to
//! start without a secret, or with a placeholder one (fewer than 8 distinct bytes).
//!
//! # Logging
//!
//! `tracing` events under the `sessionkit` target: created, regenerated, destroyed,
//! expired (idle or absolute), cookie rejected (debug), re-issued after a key rotation,
//! corrupt record (warn). Sessions appear only as 8-hex-digit fingerprints of their
//! store key; ids, secrets and cookie values are never logged or shown by `Debug`.

mod clock;
pub mod driver;
mod error;
mod events;
mod handle;
mod mapping;
mod memory;
mod registry;
mod secrets;
mod sessions;
pub mod timeouts;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use driver::{BoxError, Driver, DriverError, DynDriver};
pub use error::{ERROR_CONTENT_TYPE, Error, SetupError};
pub use handle::Session;
pub use mapping::{AdapterState, ErrorMapping};
pub use memory::{DEFAULT_MAX_SESSIONS, DEFAULT_SHARDS, MemoryDriver, MemoryDriverBuilder};
pub use registry::{DEFAULT_NAMESPACE, MEMORY_DRIVER, Registry, SessionInfo};
pub use secrets::{MIN_DISTINCT_SECRET_BYTES, SecretOrigin, env, is_development};
pub use sessions::{EnabledSessions, RequestSessions, SaveOutcome, Sessions};

pub use sessionkit_core as core;
pub use sessionkit_core::{
    ClearSiteData, CookieSettings, DefError, DriverChoice, DriverName, ExpiryPolicy, LoadResult, Patch,
    Record, SameSite, Secret, SessionDef, SessionName, StoreKey, Timestamp, WriteResult,
};
