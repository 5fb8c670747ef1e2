#![doc = include_str!("../README.md")]
//!
//! # Panics
//!
//! None: no stored data, reply or setting makes the driver panic. Bad stored data is a
//! corrupt record; a failing store is a [`DriverError`](sessionkit::DriverError).

pub mod codec;
mod driver;
mod error;

#[cfg(feature = "internal")]
pub use codec::decode_stored;
pub use driver::{
    CLUSTER_PLACEMENT_BITS, DEFAULT_CONNECT_TIMEOUT, DEFAULT_OPERATION_TIMEOUT, DEFAULT_PREFIX,
    DEFAULT_RESPONSE_TIMEOUT, RedisDriver, RedisDriverBuilder,
};
pub use error::{SetupError, StoreError};
