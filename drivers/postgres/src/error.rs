//! Errors: setting the driver up, errors of our own inside [`DriverError`], and the
//! mapping of PostgreSQL errors onto the driver contract.

use deadpool_postgres::PoolError;
use sessionkit::DriverError;

/// Why a [`PostgresDriver`](crate::PostgresDriver) could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The connection string is neither a `postgres://` URL nor `key=value` pairs. The
    /// message never repeats the string, which may hold a password.
    #[error("the PostgreSQL connection string is invalid")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The table name is not `name` or `schema.name` made of ASCII letters, digits and
    /// `_` (not starting with a digit), each part at most 48 characters.
    #[error("invalid session table name: {0}")]
    InvalidTableName(&'static str),
    /// A setting is out of range.
    #[error("invalid PostgreSQL driver setting: {0}")]
    Setting(&'static str),
    /// The connection pool could not be built.
    #[error("could not build the PostgreSQL connection pool")]
    Pool(#[source] deadpool_postgres::BuildError),
    /// The first connection failed: the server could not be reached in time
    /// ([`DriverError::Unavailable`]) or refused the connection (a wrong password, for
    /// instance).
    #[error("could not connect to PostgreSQL")]
    Connect(#[source] DriverError),
    /// The call needs a Tokio runtime (it spawns a task) and none is running.
    #[error("no Tokio runtime is running")]
    NoRuntime,
}

/// Errors of this driver's own, found as the source of a [`DriverError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database does not use the UTF-8 encoding, which the session data needs
    /// ([`DriverError::Backend`], from `migrate`).
    #[error("the database encoding is {0}, but sessionkit needs UTF8")]
    Encoding(String),
    /// A [`rotate`](sessionkit::Driver::rotate) whose two keys are in different
    /// namespaces ([`DriverError::Backend`]): a forward keeps only the new key's
    /// digest, in the old key's namespace. The session layer never asks for one.
    #[error("a rotation must keep its namespace")]
    CrossNamespaceRotation,
}

/// Whether a SQLSTATE means "the server cannot serve us right now".
fn unavailable_state(code: &str) -> bool {
    // 08: connection exception; 53: insufficient resources (too many connections, out
    // of memory or disk); 57: operator intervention (shutdown, cancelled statement,
    // "the database system is starting up").
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57")
}

/// Whether `err` means the store cannot be reached (rather than that it refused us).
pub(crate) fn is_unavailable(err: &tokio_postgres::Error) -> bool {
    if let Some(db) = err.as_db_error() {
        return unavailable_state(db.code().code());
    }
    if err.is_closed() {
        return true;
    }
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        if inner.is::<std::io::Error>() {
            return true;
        }
        source = inner.source();
    }
    // tokio-postgres reports its own connect timeout only through its message.
    err.to_string() == "timeout waiting for server"
}

/// Maps a client error onto the driver contract.
pub(crate) fn driver_error(err: tokio_postgres::Error) -> DriverError {
    if is_unavailable(&err) {
        DriverError::unavailable(err)
    } else {
        DriverError::backend(err)
    }
}

/// Maps a pool error onto the driver contract.
pub(crate) fn pool_error(err: PoolError) -> DriverError {
    match err {
        PoolError::Backend(err) => driver_error(err),
        PoolError::Closed => DriverError::Closed,
        timeout @ PoolError::Timeout(_) => DriverError::unavailable(timeout),
        other => DriverError::backend(other),
    }
}
