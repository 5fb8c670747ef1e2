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
//! Features (all on by default; `fuzz/` turns them off and picks per target):
//! `servers` ([`servers`] and [`MemoryFactory`]), and one per adapter or driver fuzz
//! body: `axum`, `warp`, `poem`, `actix`, `redis`, `postgres`. With none, the crate is
//! the core fuzz bodies and [`replay`] over sessionkit-core alone.
//!
//! It enables the core's and the driver crates' unstable `internal` feature (the
//! envelope codecs, and the drivers' `decode_stored` fuzz entry points).

pub mod fuzz;
pub mod replay;
#[cfg(feature = "servers")]
pub mod servers;

/// The memory driver on the harness clock, for the suites that run on it.
#[cfg(feature = "servers")]
pub struct MemoryFactory;

#[cfg(feature = "servers")]
impl sessionkit_conformance::DriverFactory for MemoryFactory {
    type Driver = sessionkit::MemoryDriver;
    async fn build(&self, clock: &sessionkit::ManualClock) -> sessionkit::MemoryDriver {
        sessionkit::MemoryDriver::builder().clock(clock.shared()).build()
    }
}
