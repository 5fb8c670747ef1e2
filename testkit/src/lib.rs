//! Test support for the sessionkit workspace; not published, not a public API.
//!
//! - [`servers`]: throwaway Redis and PostgreSQL servers for the driver tests, on
//!   loopback ports, removed however the test process ends. Without a server a test
//!   skips, except in CI (`CI` set), where it fails.
//! - [`fuzz`]: the bodies of the fuzz targets. The `fuzz/` workspace's targets are
//!   one-line shims over them, and this crate's own tests replay the committed corpus
//!   (`fuzz/corpus/<target>`) through them with [`replay`], so a plain `cargo test`
//!   catches regressions a fuzzer once found.
//! - [`MemoryFactory`]: the memory driver for the conformance suites.
//!
//! It enables the driver crates' unstable `internal` feature (their `decode_stored`
//! fuzz entry points). The core fuzz bodies use the core's public API of today.

pub mod fuzz;
pub mod replay;
pub mod servers;

/// The memory driver on the harness clock, for the suites that run on it.
pub struct MemoryFactory;

impl sessionkit_conformance::DriverFactory for MemoryFactory {
    type Driver = sessionkit::MemoryDriver;
    async fn build(&self, clock: &sessionkit::ManualClock) -> sessionkit::MemoryDriver {
        sessionkit::MemoryDriver::builder().clock(clock.shared()).build()
    }
}
