#![doc = include_str!("../README.md")]
//!
//! # Panics
//!
//! None: no stored row, server reply or setting makes the driver panic. Bad stored data
//! is a corrupt record; a failing store is a [`DriverError`](sessionkit::DriverError).

mod cleanup;
mod codec;
mod driver;
mod error;
mod escape;
mod sql;

pub use cleanup::{CleanupConfig, CleanupHandle, DEFAULT_CLEANUP_BATCH, DEFAULT_CLEANUP_INTERVAL};
pub use codec::{DecodeError, MAX_MILLIS, decode_forward, decode_row};
#[cfg(feature = "internal")]
pub use codec::{decode_stored, encode_data};
/// The pool crate, re-exported so [`PostgresDriver::from_pool`] gets a matching version.
pub use deadpool_postgres;
pub use driver::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_OPERATION_TIMEOUT, DEFAULT_POOL_SIZE, PostgresDriver,
    PostgresDriverBuilder,
};
pub use error::{SetupError, StoreError};
pub use sql::{DEFAULT_TABLE, migration_sql};
/// The client crate, re-exported for [`PostgresDriver::builder`]'s `Config`.
pub use tokio_postgres;
