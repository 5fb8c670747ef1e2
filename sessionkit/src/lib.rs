//! HTTP sessions for Rust: named sessions, signed and sealed cookies, pluggable async
//! storage drivers, TOML configuration and secrets with zero-downtime rotation.
//!
//! This is the crate applications depend on. It runs the decisions of
//! [`sessionkit_core`] (a pure, synchronous state machine) against async storage
//! drivers, with a clock it owns. Framework adapters (`sessionkit-axum`,
//! `sessionkit-actix`, `sessionkit-warp`, `sessionkit-poem`) are thin shims over [`RequestSessions`]; any
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
//! [`driver`] module (which walks through a complete driver, the expiry rule and how
//! a driver shares the registry's clock), register it with
//! [`Registry::register_driver`], and run the public conformance suite
//! (`sessionkit-conformance`) against it. A store that keeps expired records until
//! they are deleted can purge them on an interval with [`cleanup::purge_every`].
//!
//! # Named sessions
//!
//! Beside `web`, `admin` and `api` (see [`Registry`]), an application registers its
//! own sessions by name, each with its own cookie, lifetimes and driver. Register a
//! session in code first ([`Registry::add_session`], or [`Registry::register_session`]
//! with a whole [`SessionDef`]); configuration then adjusts it under
//! `[session.sessions.<name>]` (a section for an unregistered name is an error, as is
//! asking a request for one).
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use http::HeaderMap;
//! use sessionkit::{Registry, Secret};
//!
//! let mut registry = Registry::new();
//! registry.set_secret(Secret::new(*b"a development secret of 32 bytes")?);
//! registry.add_session("cart")?; // cookie `__Host-cart`, on the memory driver
//! registry.apply_toml(
//!     r#"
//!     [session.sessions.cart]
//!     ttl = "30d"
//!     idle_timeout = "7d"
//!     same_site = "strict"
//!     "#,
//! )?;
//! let sessions = registry.build()?;
//! let cart = sessions.info().iter().find(|s| s.name.as_str() == "cart").unwrap();
//! assert_eq!(cart.cookie_name, "__Host-cart");
//! assert_eq!(cart.idle_timeout, Some(Duration::from_secs(7 * 24 * 3600)));
//!
//! // Per request, by name (adapters do this part, see below).
//! let request = sessions.request_from_headers(&HeaderMap::new());
//! request.session("cart").await?.insert("items", &["tea"])?;
//! let mut headers = HeaderMap::new();
//! request.save(200).await?.apply_to(&mut headers);
//! assert!(headers["set-cookie"].to_str()?.starts_with("__Host-cart="));
//!
//! // A name that was never registered is an error that says how to register it.
//! let request = sessions.request_from_headers(&HeaderMap::new());
//! let err = request.session("wishlist").await.unwrap_err();
//! assert!(err.to_string().contains("Registry::add_session"));
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! An adapter carries the default session on every route; a named one only where its
//! layer (or filter, or middleware) adds it. With `sessionkit-axum`:
//!
//! ```rust,ignore
//! use axum::{Router, routing::post};
//! use sessionkit_axum::{NamedSessions, SessionLayer, SessionRejection};
//!
//! async fn add_to_cart(sessions: NamedSessions) -> Result<&'static str, SessionRejection> {
//!     let cart = sessions.get("cart").await?;
//!     let mut items: Vec<String> = cart.get("items")?.unwrap_or_default();
//!     items.push("tea".to_owned());
//!     cart.insert("items", &items)?;
//!     Ok("added")
//! }
//!
//! // `sessions` as built above.
//! let app: Router = Router::new()
//!     .route("/cart", post(add_to_cart))
//!     .layer(SessionLayer::new(sessions).with_session("cart"));
//! ```
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
//! # Logging and metrics
//!
//! `tracing` events under the `sessionkit` target: created, regenerated, destroyed,
//! expired (idle or absolute), cookie rejected (debug), re-issued after a key rotation,
//! corrupt record (warn). Sessions appear only as 8-hex-digit fingerprints of their
//! store key; ids, secrets and cookie values are never logged or shown by `Debug`.
//!
//! With the **`metrics` feature** (off by default) the same events, store errors and
//! dropped saves are also counted through the [`metrics`](https://docs.rs/metrics)
//! facade; install any recorder or exporter to collect them. Without the feature the
//! counting compiles to nothing.
//!
//! | counter | labels | counted when |
//! |---|---|---|
//! | `sessionkit_sessions_created_total` | `session`, `driver` | a response creates a session (a new record, or a new sealed cookie) and its write succeeded |
//! | `sessionkit_sessions_regenerated_total` | `session`, `driver` | a server-side session got a new id (cookie sessions have no id: their `regenerate` only reseals) |
//! | `sessionkit_sessions_destroyed_total` | `session`, `driver` | a session was destroyed (logout) |
//! | `sessionkit_sessions_expired_total` | `session`, `driver`, `reason` = `idle` / `absolute` / `unknown` | a request presented an expired session (once per such request); `unknown`: a validly signed id whose record the store no longer has and keeps no tombstone of (expired on a driver without tombstones, ended by another request, evicted, lost) |
//! | `sessionkit_cookies_rejected_total` | `session`, `driver`, `reason` = `malformed` / `unsupported_version` / `unknown_key` / `bad_tag` / `corrupt` / `chunk_set` | a cookie with the session's name was refused: not an envelope, another format version, made with a key no longer in the ring, a failed MAC or AEAD tag (tampered, or moved to another cookie name, session or app), an authentic but invalid sealed record, a chunked cookie session's set incomplete, mixed or out of order |
//! | `sessionkit_records_corrupt_total` | `session`, `driver` | a stored record did not decode (treated as missing) |
//! | `sessionkit_store_errors_total` | `session`, `driver`, `operation` = `load` / `create` / `patch` / `touch` / `delete`, `kind` = `unavailable` / `backend` / `duplicate` / `closed` | a driver call failed |
//! | `sessionkit_saves_dropped_total` | `session`, `driver` | a request's changes were dropped because its session ended or expired while it ran (no resurrection; also `SaveOutcome::dropped`) |
//!
//! Label values are only configured names (`session`: the session name, `driver`: the
//! driver name it is configured with) and the fixed words above, never request input,
//! ids or cookie values, so the number of series is bounded by the configuration.
//! Expired sessions on a store are told apart by the driver's tombstones
//! ([`Driver::lookup`], [`Lookup::Expired`]; the [`MemoryDriver`] keeps them): the
//! session's expiry policy decides idle or absolute from the expired record's
//! timestamps. A driver that keeps none reports `reason="unknown"`, as does an id the
//! store never had or that another request ended.

pub mod cleanup;
mod clock;
pub mod driver;
mod error;
mod events;
mod handle;
mod mapping;
mod memory;
mod metrics;
mod registry;
mod secrets;
mod sessions;
pub mod timeouts;
mod users;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use driver::{BoxError, Driver, DriverError, DynDriver, Lookup, LookupNow};
pub use error::{ERROR_CONTENT_TYPE, Error, SetupError};
pub use handle::{MAX_UPDATE_ATTEMPTS, Session};
pub use mapping::{AdapterState, ErrorMapping};
pub use memory::{DEFAULT_MAX_SESSIONS, DEFAULT_SHARDS, MemoryDriver, MemoryDriverBuilder};
pub use registry::{DEFAULT_NAMESPACE, MEMORY_DRIVER, Registry, SessionInfo};
pub use secrets::{MIN_DISTINCT_SECRET_BYTES, SecretOrigin, env, is_development};
pub use sessions::{
    EnabledSessions, Finish, FinishPending, HeaderLines, PendingSave, RequestSessions, SaveOutcome, SaveStep,
    Sessions,
};
pub use users::UserSession;

pub use sessionkit_core as core;
pub use sessionkit_core::{
    ClearSiteData, CookieSettings, Deadlines, DefError, DriverChoice, DriverName, ExpiryPolicy, KeyUpdate,
    LifetimeError, LimitPolicy, LoadResult, Patch, Placement, Record, Rotation, SameSite, Secret, SessionDef,
    SessionHandle, SessionLifetime, SessionLimit, SessionName, StoreKey, Timestamp, UpdateResult, UserKey,
    Write, WriteResult,
};
