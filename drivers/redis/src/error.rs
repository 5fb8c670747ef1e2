//! Errors: setting the driver up, and mapping Redis errors onto the driver contract.

use redis::{ErrorKind, RedisError, ServerErrorKind};
use sessionkit::DriverError;

/// Why a [`RedisDriver`](crate::RedisDriver) could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The connection URL is not a valid `redis://`, `rediss://` or `unix://` URL.
    /// The message never repeats the URL, which may hold a password.
    #[error("the Redis connection URL is invalid")]
    InvalidUrl(#[source] RedisError),
    /// A `rediss://` URL, but the crate was built without its `tls` feature.
    #[error("`rediss://` needs the `tls` feature of sessionkit-redis")]
    TlsNotEnabled,
    /// A setting is out of range.
    #[error("invalid Redis driver setting: {0}")]
    Setting(&'static str),
    /// The first connection failed: the server could not be reached in time
    /// ([`DriverError::Unavailable`], a [`TimedOut`](sessionkit::timeouts::TimedOut)
    /// source when the operation timeout ran out) or refused the connection (a wrong
    /// password, for instance).
    #[error("could not connect to Redis")]
    Connect(#[source] DriverError),
}

/// Errors of this driver's own, found as the source of a [`DriverError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A [`rotate`](sessionkit::Driver::rotate) whose two keys are in different
    /// namespaces ([`DriverError::Backend`]): a forward keeps only the new key's
    /// digest, in the old key's namespace. The session layer never asks for one.
    #[error("a rotation must keep its namespace")]
    CrossNamespaceRotation,
    /// A script answered something it never answers ([`DriverError::Backend`]): not
    /// the server this driver expects, or a script under our name replaced.
    #[error("Redis answered a script with an unexpected reply")]
    UnexpectedReply,
}

/// Whether `err` means "the store cannot be reached right now" rather than "the store
/// refused this request".
pub(crate) fn is_unavailable(err: &RedisError) -> bool {
    if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() || err.is_connection_refusal() {
        return true;
    }
    match err.kind() {
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            // A cluster redirection the client did not finish following within its
            // retries: the topology is changing (a failover), not a refusal.
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        )
        | ErrorKind::ClusterConnectionNotFound => true,
        // A long-running script on the server (BUSY) is an outage for our callers.
        _ => err.code() == Some("BUSY"),
    }
}

/// Maps a client error onto the driver contract.
pub(crate) fn driver_error(err: RedisError) -> DriverError {
    if is_unavailable(&err) {
        DriverError::unavailable(err)
    } else {
        DriverError::backend(err)
    }
}
