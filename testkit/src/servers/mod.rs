//! Real servers for the driver tests, started on loopback ports by the test process
//! itself and removed however it ends.
//!
//! A test that cannot get a server skips (after a message on stderr), except in CI
//! (`CI` set and not empty), where it fails: CI must never pass by skipping.

use std::net::TcpListener;

pub mod postgres;
pub mod redis;
pub mod redis_cluster;

/// Whether a test that cannot get a server must fail rather than skip: `CI` is set and
/// not empty.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Fails (in CI) or reports a skip of a test that has no `store` server (`"Redis"`,
/// `"PostgreSQL"`) because of `why`; returns `None` for the caller to return early.
///
/// # Panics
/// In CI (see [`in_ci`]).
pub fn unavailable<T>(store: &str, why: &str) -> Option<T> {
    assert!(!in_ci(), "no {store} server for the tests: {why}");
    eprintln!("skipping: no {store} server for the tests: {why}");
    None
}

/// A loopback port that was free a moment ago.
pub(crate) fn spare_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no spare port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no spare port: {e}"))
}
