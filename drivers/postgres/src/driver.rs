//! The driver: pool, settings, migration, and the five contract calls.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde_json::{Map, Value};
use sessionkit::{Driver, DriverError, LoadResult, Patch, Record, StoreKey, Timestamp, WriteResult};
use tokio_postgres::NoTls;
use tokio_postgres::error::Severity;
use tokio_postgres::types::ToSql;

use crate::codec::{self, PgTime, Raw};
use crate::error::{SetupError, StoreError, driver_error, is_unavailable, pool_error};
use crate::sql::{DEFAULT_TABLE, Statements};

/// The default pool size.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// The default bound on opening a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The default bound on one driver call, waiting for a pooled connection included.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions in a PostgreSQL table, through a connection pool.
///
/// Build one with [`PostgresDriver::connect`], [`PostgresDriver::builder`] or
/// [`PostgresDriver::from_pool`], create the table once with
/// [`migrate`](PostgresDriver::migrate), and start the
/// [cleanup task](PostgresDriver::start_cleanup). See the [crate documentation](crate).
#[derive(Clone)]
pub struct PostgresDriver {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    sql: Statements,
    query_timeout: Duration,
}

impl fmt::Debug for PostgresDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection settings (and their password) are never shown.
        let status = self.inner.pool.status();
        f.debug_struct("PostgresDriver")
            .field("table", &self.inner.sql.table)
            .field("pool_size", &status.max_size)
            .field("connections", &status.size)
            .field("query_timeout", &self.inner.query_timeout)
            .field("closed", &self.inner.pool.is_closed())
            .finish()
    }
}

/// Settings for a [`PostgresDriver`]; see [`PostgresDriver::builder`].
#[derive(Clone)]
pub struct PostgresDriverBuilder {
    config: tokio_postgres::Config,
    table: String,
    pool_size: usize,
    connect_timeout: Duration,
    query_timeout: Duration,
}

impl fmt::Debug for PostgresDriverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDriverBuilder")
            .field("config", &"<redacted>")
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .finish()
    }
}

impl PostgresDriverBuilder {
    /// The table (default `sessionkit_sessions`): `name` or `schema.name`, ASCII
    /// letters, digits and `_`, each part at most 48 characters. The schema must exist.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The most connections the pool opens (default 16).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// How long opening a connection may take (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The bound on one driver call, including waiting for a free connection (default
    /// 5 s). A call that takes longer fails with [`DriverError::Unavailable`].
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Builds the pool and opens one connection to check the settings.
    ///
    /// # Errors
    /// [`SetupError::InvalidTableName`], [`SetupError::Setting`] (a zero size or
    /// timeout), [`SetupError::Pool`], or [`SetupError::Connect`] when the server cannot
    /// be reached or refuses the connection.
    pub async fn build(self) -> Result<PostgresDriver, SetupError> {
        if self.pool_size == 0 {
            return Err(SetupError::Setting("the pool size must not be zero"));
        }
        if self.connect_timeout.is_zero() || self.query_timeout.is_zero() {
            return Err(SetupError::Setting("timeouts must not be zero"));
        }
        let mut config = self.config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A closed connection is dropped at checkout; no extra query per call.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.query_timeout))
            .create_timeout(Some(self.connect_timeout))
            .recycle_timeout(Some(self.connect_timeout))
            .build()
            .map_err(SetupError::Pool)?;
        let driver = PostgresDriver::with_pool(pool, &self.table, self.query_timeout)?;
        drop(driver.client().await.map_err(SetupError::Connect)?);
        Ok(driver)
    }
}

/// How a failed attempt may be retried on another connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// The statement is idempotent: retry after any connection failure.
    Idempotent,
    /// Retry only when the statement surely never reached the server.
    IfNotSent,
}

impl PostgresDriver {
    /// Connects with a connection string (a `postgres://` URL or `key=value` pairs) and
    /// the default settings; see [`PostgresDriver::builder`].
    ///
    /// # Errors
    /// [`SetupError::InvalidUrl`], or as [`PostgresDriverBuilder::build`].
    pub async fn connect(url: &str) -> Result<Self, SetupError> {
        Self::builder_from_url(url)?.build().await
    }

    /// Settings for a driver over `config`.
    pub fn builder(config: tokio_postgres::Config) -> PostgresDriverBuilder {
        PostgresDriverBuilder {
            config,
            table: DEFAULT_TABLE.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
        }
    }

    /// Settings for a driver over a connection string (a `postgres://` URL or
    /// `key=value` pairs).
    ///
    /// # Errors
    /// [`SetupError::InvalidUrl`].
    pub fn builder_from_url(url: &str) -> Result<PostgresDriverBuilder, SetupError> {
        let config = url.parse().map_err(SetupError::InvalidUrl)?;
        Ok(Self::builder(config))
    }

    /// A driver over a pool you built (for TLS, or settings this crate does not
    /// expose). The pool should have a runtime and timeouts set.
    ///
    /// # Errors
    /// [`SetupError::InvalidTableName`], [`SetupError::Setting`] for a zero timeout.
    pub fn from_pool(pool: Pool, table: &str, query_timeout: Duration) -> Result<Self, SetupError> {
        if query_timeout.is_zero() {
            return Err(SetupError::Setting("timeouts must not be zero"));
        }
        Self::with_pool(pool, table, query_timeout)
    }

    fn with_pool(pool: Pool, table: &str, query_timeout: Duration) -> Result<Self, SetupError> {
        Ok(PostgresDriver {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(table)?,
                query_timeout,
            }),
        })
    }

    /// The table name, as configured.
    pub fn table(&self) -> &str {
        &self.inner.sql.table
    }

    /// The migration [`migrate`](Self::migrate) runs (the same SQL as in the README,
    /// for this table).
    pub fn migration_sql(&self) -> &str {
        &self.inner.sql.migrate
    }

    /// Creates the table and its index if they do not exist. Idempotent, and safe to
    /// run from several instances at once (they take turns on an advisory lock).
    ///
    /// # Errors
    /// [`DriverError::Unavailable`] when the database cannot be reached,
    /// [`DriverError::Backend`] when it refuses (no privilege, missing schema, or a
    /// database encoding other than UTF-8: [`StoreError::Encoding`]).
    pub async fn migrate(&self) -> Result<(), DriverError> {
        let sql = &self.inner.sql;
        let work = async {
            let mut client = self.client().await?;
            let encoding: String = client
                .query_one("SELECT current_setting('server_encoding')", &[])
                .await
                .map_err(driver_error)?
                .try_get(0)
                .map_err(driver_error)?;
            if encoding != "UTF8" {
                return Err(DriverError::backend(StoreError::Encoding(encoding)));
            }
            let tx = client.transaction().await.map_err(driver_error)?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&sql.table])
                .await
                .map_err(driver_error)?;
            tx.batch_execute(&sql.migrate).await.map_err(driver_error)?;
            tx.commit().await.map_err(driver_error)
        };
        self.bounded(work).await
    }

    /// Deletes expired rows in batches of at most `batch_size` (each its own short
    /// statement, locking only the rows it deletes) until none is left; returns how
    /// many were deleted. The [cleanup task](Self::start_cleanup) calls this.
    ///
    /// # Errors
    /// As any driver call; rows deleted before the error stay deleted.
    pub async fn delete_expired(&self, batch_size: u32) -> Result<u64, DriverError> {
        self.delete_expired_while(batch_size, || true).await
    }

    /// [`delete_expired`](Self::delete_expired), checking `keep_going` before each
    /// batch.
    pub(crate) async fn delete_expired_while(
        &self,
        batch_size: u32,
        mut keep_going: impl FnMut() -> bool,
    ) -> Result<u64, DriverError> {
        let batch = i64::from(batch_size.max(1));
        let mut deleted = 0;
        while keep_going() {
            let n = self
                .execute(&self.inner.sql.delete_expired, Retry::Idempotent, &[&batch])
                .await?;
            deleted += n;
            if n < batch.unsigned_abs() {
                return Ok(deleted);
            }
            // Leave room for requests between batches.
            tokio::task::yield_now().await;
        }
        Ok(deleted)
    }

    /// How many times a statement that met a dead connection is retried: every pooled
    /// connection may have died at once (a database restart), and each dead one
    /// fails at once, so try them all, and a new one.
    fn retries(&self) -> usize {
        self.inner.pool.status().max_size + 1
    }

    async fn client(&self) -> Result<Object, DriverError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    /// Bounds `work` by the query timeout.
    async fn bounded<T>(&self, work: impl Future<Output = Result<T, DriverError>>) -> Result<T, DriverError> {
        let timeout = self.inner.query_timeout;
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(DriverError::unavailable(StoreError::TimedOut(timeout))))
    }

    /// Runs one prepared statement, retrying on another connection when it met a dead
    /// one.
    async fn execute(
        &self,
        sql: &str,
        retry: Retry,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, DriverError> {
        self.bounded(async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let client = self.client().await?;
                let result = match client.prepare_cached(sql).await {
                    Ok(statement) => client.execute(&statement, params).await,
                    Err(err) => Err(err),
                };
                match result {
                    Err(err) if attempt <= self.retries() && should_retry(retry, &err) => {}
                    other => return other.map_err(driver_error),
                }
            }
        })
        .await
    }
}

fn should_retry(retry: Retry, err: &tokio_postgres::Error) -> bool {
    // A FATAL error ends the connection and aborts what it was running; a closed
    // client never sent the statement. Either way nothing was applied.
    let not_applied = err.is_closed()
        || err
            .as_db_error()
            .is_some_and(|db| matches!(db.parsed_severity(), Some(Severity::Fatal | Severity::Panic)));
    match retry {
        Retry::Idempotent => not_applied || (is_unavailable(err) && err.as_db_error().is_none()),
        Retry::IfNotSent => not_applied,
    }
}

fn no_nul<'a>(values: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Result<(), DriverError> {
    for (key, value) in values {
        if key.contains('\0') || codec::has_nul(value) {
            return Err(DriverError::backend(StoreError::NulCharacter));
        }
    }
    Ok(())
}

fn object_text<'a>(entries: impl IntoIterator<Item = (&'a String, &'a Value)>) -> String {
    let map: Map<String, Value> = entries.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // `Display` of a JSON value is its compact JSON text and cannot fail.
    Value::Object(map).to_string()
}

fn applied(rows: u64) -> WriteResult {
    if rows == 0 {
        WriteResult::Gone
    } else {
        WriteResult::Applied
    }
}

impl Driver for PostgresDriver {
    async fn load(&self, key: &StoreKey) -> Result<LoadResult, DriverError> {
        let (namespace, digest) = (key.namespace().as_str(), &key.digest()[..]);
        let sql = &self.inner.sql.load;
        self.bounded(async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let client = self.client().await?;
                let result = match client.prepare_cached(sql).await {
                    Ok(statement) => client.query_opt(&statement, &[&namespace, &digest]).await,
                    Err(err) => Err(err),
                };
                let row = match result {
                    Err(err) if attempt <= self.retries() && should_retry(Retry::Idempotent, &err) => {
                        continue;
                    }
                    other => other.map_err(driver_error)?,
                };
                let Some(row) = row else {
                    return Ok(LoadResult::Missing);
                };
                let column = |i: usize| row.try_get::<_, Option<Raw<'_>>>(i).map(|raw| raw.map(|r| r.0));
                let (data, created, seen) = match (column(0), column(1), column(2)) {
                    (Ok(data), Ok(created), Ok(seen)) => (data, created, seen),
                    // The table's columns have other types than ours: a schema problem.
                    (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => return Err(driver_error(err)),
                };
                return Ok(codec::load_result(codec::decode_row(data, created, seen)));
            }
        })
        .await
    }

    async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        no_nul(&record.data)?;
        let data = object_text(&record.data);
        let params: [&(dyn ToSql + Sync); 6] = [
            &key.namespace().as_str(),
            &&key.digest()[..],
            &data.as_str(),
            &PgTime::new(record.created_at),
            &PgTime::new(record.last_seen),
            &PgTime::new(expires_at),
        ];
        match self
            .execute(&self.inner.sql.create, Retry::IfNotSent, &params)
            .await?
        {
            0 => Err(DriverError::Duplicate),
            _ => Ok(()),
        }
    }

    async fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        no_nul(&patch.set)?;
        // A key holding NUL cannot be stored, so removing it is a no-op; PostgreSQL
        // text cannot even carry it as a parameter.
        let remove: Vec<&str> = patch
            .remove
            .iter()
            .map(String::as_str)
            .filter(|k| !k.contains('\0'))
            .collect();
        let set = object_text(&patch.set);
        let params: [&(dyn ToSql + Sync); 7] = [
            &key.namespace().as_str(),
            &&key.digest()[..],
            &patch.clear,
            &remove,
            &set.as_str(),
            &PgTime::new(patch.last_seen),
            &PgTime::new(expires_at),
        ];
        // Applying the same patch twice gives the same row, so a retry is safe.
        self.execute(&self.inner.sql.patch, Retry::Idempotent, &params)
            .await
            .map(applied)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let params: [&(dyn ToSql + Sync); 4] = [
            &key.namespace().as_str(),
            &&key.digest()[..],
            &PgTime::new(last_seen),
            &PgTime::new(expires_at),
        ];
        self.execute(&self.inner.sql.touch, Retry::Idempotent, &params)
            .await
            .map(applied)
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        let params: [&(dyn ToSql + Sync); 2] = [&key.namespace().as_str(), &&key.digest()[..]];
        self.execute(&self.inner.sql.delete, Retry::Idempotent, &params)
            .await
            .map(drop)
    }

    async fn close(&self) -> Result<(), DriverError> {
        self.inner.pool.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_never_show_the_password() {
        let builder =
            PostgresDriver::builder_from_url("postgres://app:hunter2@db.invalid/app").expect("parses");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("db.invalid"),
            "{shown}"
        );
        let err = PostgresDriver::builder_from_url("postgres://app:hunter2@db.invalid:notaport/app")
            .expect_err("bad port");
        assert!(!err.to_string().contains("hunter2"));
        assert!(matches!(err, SetupError::InvalidUrl(_)));
    }

    #[test]
    fn nul_is_refused_in_keys_and_values() {
        let ok: Map<String, Value> = [("a".to_owned(), Value::from("b"))].into_iter().collect();
        assert!(no_nul(&ok).is_ok());
        let bad: Map<String, Value> = [("a\0".to_owned(), Value::from(1))].into_iter().collect();
        assert!(matches!(no_nul(&bad), Err(DriverError::Backend(_))));
        assert_eq!(object_text(&ok), r#"{"a":"b"}"#);
    }
}
