//! The driver: pool, settings, migration, and the contract calls.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use sessionkit::core::Namespace;
use sessionkit::timeouts;
use sessionkit::{
    Driver, DriverError, KeyUpdate, LoadResult, Lookup, Patch, Record, Rotation, StoreKey, Timestamp,
    UpdateResult, UserKey, WriteResult,
};
use tokio_postgres::error::Severity;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Statement};

use crate::codec::{self, PgTime, Raw};
use crate::error::{SetupError, StoreError, driver_error, is_unavailable, pool_error};
use crate::escape;
use crate::sql::{DEFAULT_TABLE, Statements};

/// How the driver names its store in errors
/// ([`TimedOut`](sessionkit::timeouts::TimedOut)).
const STORE: &str = "PostgreSQL";

/// The default pool size.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// The default bound on opening a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The default bound on one driver call, waiting for a pooled connection included.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

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
    operation_timeout: Duration,
}

impl fmt::Debug for PostgresDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection settings (and their password) are never shown.
        let status = self.inner.pool.status();
        f.debug_struct("PostgresDriver")
            .field("table", &self.inner.sql.table)
            .field("pool_size", &status.max_size)
            .field("connections", &status.size)
            .field("operation_timeout", &self.inner.operation_timeout)
            .field("closed", &self.inner.pool.is_closed())
            .finish()
    }
}

/// Settings for a [`PostgresDriver`]; see [`PostgresDriver::builder`].
#[derive(Clone)]
pub struct PostgresDriverBuilder {
    target: Target,
    table: String,
    pool_size: usize,
    connect_timeout: Duration,
    operation_timeout: Duration,
}

/// Where a [`PostgresDriverBuilder`] connects to.
#[derive(Clone)]
enum Target {
    /// A connection string, parsed by [`PostgresDriverBuilder::connect`].
    Url(String),
    /// A parsed configuration.
    Config(Box<tokio_postgres::Config>),
}

impl fmt::Debug for PostgresDriverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDriverBuilder")
            .field("target", &"<redacted>")
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
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
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Builds the pool and opens one connection (waiting at most the operation
    /// timeout) to check the settings.
    ///
    /// # Errors
    /// [`SetupError::InvalidUrl`] for a connection string that does not parse,
    /// [`SetupError::InvalidTableName`], [`SetupError::Setting`] (a zero size or
    /// timeout), [`SetupError::Pool`], or [`SetupError::Connect`] when the server cannot
    /// be reached or refuses the connection.
    pub async fn connect(self) -> Result<PostgresDriver, SetupError> {
        if self.pool_size == 0 {
            return Err(SetupError::Setting("the pool size must not be zero"));
        }
        for (timeout, name) in [
            (self.connect_timeout, "the connect timeout must not be zero"),
            (self.operation_timeout, "the operation timeout must not be zero"),
        ] {
            if timeout.is_zero() {
                return Err(SetupError::Setting(name));
            }
        }
        let mut config = match self.target {
            Target::Url(url) => url.parse().map_err(SetupError::InvalidUrl)?,
            Target::Config(config) => *config,
        };
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
            .wait_timeout(Some(self.operation_timeout))
            .create_timeout(Some(self.connect_timeout))
            .recycle_timeout(Some(self.connect_timeout))
            .build()
            .map_err(SetupError::Pool)?;
        let driver = PostgresDriver::with_pool(pool, &self.table, self.operation_timeout)?;
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
    /// As [`PostgresDriverBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, SetupError> {
        Self::builder(url).connect().await
    }

    /// Settings for a driver connecting with a connection string: a
    /// `postgres://[user[:password]@]host[:port][/dbname][?...]` URL or `key=value`
    /// pairs. The string is parsed by [`connect`](PostgresDriverBuilder::connect).
    pub fn builder(url: &str) -> PostgresDriverBuilder {
        Self::builder_with_target(Target::Url(url.to_owned()))
    }

    /// Settings for a driver over a parsed `tokio_postgres` configuration.
    pub fn builder_with_config(config: tokio_postgres::Config) -> PostgresDriverBuilder {
        Self::builder_with_target(Target::Config(Box::new(config)))
    }

    fn builder_with_target(target: Target) -> PostgresDriverBuilder {
        PostgresDriverBuilder {
            target,
            table: DEFAULT_TABLE.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// A driver over a pool you built (for TLS, or settings this crate does not
    /// expose). The pool should have a runtime and timeouts set.
    ///
    /// # Errors
    /// [`SetupError::InvalidTableName`], [`SetupError::Setting`] for a zero timeout.
    pub fn from_pool(pool: Pool, table: &str, operation_timeout: Duration) -> Result<Self, SetupError> {
        if operation_timeout.is_zero() {
            return Err(SetupError::Setting("the operation timeout must not be zero"));
        }
        Self::with_pool(pool, table, operation_timeout)
    }

    fn with_pool(pool: Pool, table: &str, operation_timeout: Duration) -> Result<Self, SetupError> {
        Ok(PostgresDriver {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(table)?,
                operation_timeout,
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

    /// Bounds `work` by the operation timeout.
    async fn bounded<T>(&self, work: impl Future<Output = Result<T, DriverError>>) -> Result<T, DriverError> {
        timeouts::bounded(STORE, self.inner.operation_timeout, work).await
    }

    /// Runs `statement` with the prepared `sql` on a pooled connection, bounded by the
    /// operation timeout, retrying on another connection when it met a dead one.
    async fn run<T, F, Fut>(&self, sql: &str, retry: Retry, statement: F) -> Result<T, DriverError>
    where
        F: Fn(Object, Statement) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let statement = &statement;
        let attempt = move || async move {
            let client = self.client().await.map_err(Failure::Pool)?;
            let prepared = client.prepare_cached(sql).await.map_err(Failure::Statement)?;
            statement(client, prepared).await.map_err(Failure::Statement)
        };
        let retryable =
            |failure: &Failure| matches!(failure, Failure::Statement(err) if should_retry(retry, err));
        self.bounded(async {
            timeouts::retry(self.retries(), attempt, retryable)
                .await
                .map_err(DriverError::from)
        })
        .await
    }

    /// Runs one prepared statement that changes rows; returns how many it changed.
    async fn execute(
        &self,
        sql: &str,
        retry: Retry,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, DriverError> {
        self.run(sql, retry, move |client, statement| async move {
            client.execute(&statement, params).await
        })
        .await
    }
}

/// Why one attempt at a statement failed.
enum Failure {
    /// No connection from the pool: not retried (the pool waits and creates on its own).
    Pool(DriverError),
    /// The statement failed: retried when [`should_retry`] says so.
    Statement(tokio_postgres::Error),
}

impl From<Failure> for DriverError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Pool(err) => err,
            Failure::Statement(err) => driver_error(err),
        }
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

/// The `data` column's JSON text for `entries`, as [`codec::data_text`].
fn object_text<'a>(
    entries: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> Result<String, DriverError> {
    codec::data_text(entries).map_err(DriverError::backend)
}

/// A patch's removed keys (in their stored form, as `set` writes them) and the JSON
/// text of its set keys.
fn patch_params(patch: &Patch) -> Result<(Vec<String>, String), DriverError> {
    let remove = patch
        .remove
        .iter()
        .map(|k| escape::escape(k).into_owned())
        .collect();
    Ok((remove, object_text(&patch.set)?))
}

/// What a patch does to the record's `user_key`: whether it changes it, and to what
/// (the digest, or NULL), from [`UserKey::of_patch`].
fn user_key_params(key: &StoreKey, patch: &Patch) -> (bool, Option<Vec<u8>>) {
    match UserKey::of_patch(key, patch) {
        Some(user) => (true, user.map(|user| user.digest().to_vec())),
        None => (false, None),
    }
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
        Ok(match self.lookup(key).await? {
            Lookup::Loaded(loaded) => loaded,
            // A forward is not a record.
            _ => LoadResult::Missing,
        })
    }

    /// `load`, with the forward left by a renewal: the same single `SELECT`.
    async fn lookup(&self, key: &StoreKey) -> Result<Lookup, DriverError> {
        let (namespace, digest) = (key.namespace().as_str(), &key.digest()[..]);
        let sql = &self.inner.sql.load;
        let row = self
            .run(sql, Retry::Idempotent, move |client, statement| async move {
                client.query_opt(&statement, &[&namespace, &digest]).await
            })
            .await?;
        let Some(row) = row else {
            return Ok(Lookup::Loaded(LoadResult::Missing));
        };
        // The table's columns have other types than ours: a schema problem.
        let forward = row.try_get::<_, Option<&[u8]>>(3).map_err(driver_error)?;
        if let Some(forward) = forward {
            return Ok(match codec::decode_forward(forward) {
                Ok(to) => Lookup::Forwarded {
                    to: StoreKey::from_digest(key.namespace().clone(), to),
                },
                Err(_) => Lookup::Loaded(LoadResult::Corrupt),
            });
        }
        let column = |i: usize| row.try_get::<_, Option<Raw<'_>>>(i).map(|raw| raw.map(|r| r.0));
        let (data, created, seen) = match (column(0), column(1), column(2)) {
            (Ok(data), Ok(created), Ok(seen)) => (data, created, seen),
            (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => return Err(driver_error(err)),
        };
        Ok(Lookup::Loaded(codec::load_result(codec::decode_row(
            data, created, seen,
        ))))
    }

    async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        let data = object_text(&record.data)?;
        let user = UserKey::of_record(key, record).map(|user| user.digest().to_vec());
        let params: [&(dyn ToSql + Sync); 7] = [
            &key.namespace().as_str(),
            &&key.digest()[..],
            &data.as_str(),
            &PgTime::new(record.created_at),
            &PgTime::new(record.last_seen),
            &PgTime::new(expires_at),
            &user,
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
        let (remove, set) = patch_params(patch)?;
        let (rebinds, user) = user_key_params(key, patch);
        let params: [&(dyn ToSql + Sync); 9] = [
            &key.namespace().as_str(),
            &&key.digest()[..],
            &patch.clear,
            &remove,
            &set.as_str(),
            &PgTime::new(patch.last_seen),
            &PgTime::new(expires_at),
            &rebinds,
            &user,
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

    /// One `UPDATE` that compares and sets; when it changes no row, one `SELECT` (the
    /// load) tells a conflict, with the value now stored, from a session that is gone.
    async fn update(
        &self,
        key: &StoreKey,
        update: &KeyUpdate,
        expires_at: Timestamp,
    ) -> Result<UpdateResult, DriverError> {
        let stored_key = escape::escape(&update.key).into_owned();
        let expected = update
            .expected
            .as_ref()
            .map(|value| object_text([(&update.key, value)]))
            .transpose()?;
        let new = match &update.new {
            Some(value) => object_text([(&update.key, value)])?,
            None => "{}".to_owned(),
        };
        let params: [&(dyn ToSql + Sync); 8] = [
            &key.namespace().as_str(),
            &&key.digest()[..],
            &stored_key,
            &expected,
            &update.new.is_some(),
            &new,
            &PgTime::new(update.last_seen),
            &PgTime::new(expires_at),
        ];
        // Not idempotent (a second run compares with what the first wrote): retried
        // only when surely never sent.
        if self
            .execute(&self.inner.sql.update, Retry::IfNotSent, &params)
            .await?
            > 0
        {
            return Ok(UpdateResult::Applied);
        }
        Ok(match self.load(key).await? {
            LoadResult::Found(record) => UpdateResult::Conflict(record.data.get(&update.key).cloned()),
            _ => UpdateResult::Gone,
        })
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        let params: [&(dyn ToSql + Sync); 2] = [&key.namespace().as_str(), &&key.digest()[..]];
        self.execute(&self.inner.sql.delete, Retry::Idempotent, &params)
            .await
            .map(drop)
    }

    /// One statement: deletes every row of the namespace (records, forwards).
    async fn delete_namespace(&self, namespace: &Namespace) -> Result<u64, DriverError> {
        let params: [&(dyn ToSql + Sync); 1] = [&namespace.as_str()];
        self.execute(&self.inner.sql.delete_namespace, Retry::Idempotent, &params)
            .await
    }

    /// One statement: moves the record to the new key with the patch applied and
    /// turns the old row into a forward until the end of the grace window. See the
    /// [crate documentation](crate).
    async fn rotate(&self, rotation: &Rotation) -> Result<WriteResult, DriverError> {
        let (from, to) = (&rotation.from, &rotation.to);
        if from.namespace() != to.namespace() {
            // A forward keeps only the digest, in the old key's namespace.
            return Err(DriverError::backend(StoreError::CrossNamespaceRotation));
        }
        let (remove, set) = patch_params(&rotation.patch)?;
        // The stored record's binding moves with it, unless the patch changes it.
        let (rebinds, user) = user_key_params(to, &rotation.patch);
        let params: [&(dyn ToSql + Sync); 11] = [
            &from.namespace().as_str(),
            &&from.digest()[..],
            &&to.digest()[..],
            &rotation.patch.clear,
            &remove,
            &set.as_str(),
            &PgTime::new(rotation.patch.last_seen),
            &PgTime::new(rotation.expires_at),
            &PgTime::new(rotation.grace_until),
            &rebinds,
            &user,
        ];
        let sql = &self.inner.sql.rotate;
        let params = &params;
        // Not idempotent (a second run finds the forward): retried only when surely
        // never sent.
        let row = self
            .run(sql, Retry::IfNotSent, move |client, statement| async move {
                client.query_one(&statement, params).await
            })
            .await?;
        let found = row.try_get::<_, bool>(0).map_err(driver_error)?;
        let moved = row.try_get::<_, bool>(1).map_err(driver_error)?;
        match (found, moved) {
            (false, _) => Ok(WriteResult::Gone),
            (true, true) => Ok(WriteResult::Applied),
            // The new key holds a live row: as for a create, never overwritten.
            (true, false) => Err(DriverError::Duplicate),
        }
    }

    /// One `SELECT` of the rows whose `user_key` is the user's (an index scan); each
    /// row is decoded and its binding checked. A row that does not decode, or whose
    /// data is bound to someone else, is skipped (the first loads as corrupt, the
    /// second cannot be written by this driver).
    async fn user_sessions(&self, user: &UserKey) -> Result<Vec<(StoreKey, Record)>, DriverError> {
        let (namespace, digest) = (user.namespace().as_str(), &user.digest()[..]);
        let sql = &self.inner.sql.user_sessions;
        let rows = self
            .run(sql, Retry::Idempotent, move |client, statement| async move {
                client.query(&statement, &[&namespace, &digest]).await
            })
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let store_key = row.try_get::<_, &[u8]>(0).map_err(driver_error)?;
            let Ok(digest) = <[u8; 32]>::try_from(store_key) else {
                // Not a key this driver writes: nothing to list.
                continue;
            };
            let key = StoreKey::from_digest(user.namespace().clone(), digest);
            let column = |i: usize| row.try_get::<_, Option<Raw<'_>>>(i).map(|raw| raw.map(|r| r.0));
            let (data, created, seen) = match (column(1), column(2), column(3)) {
                (Ok(data), Ok(created), Ok(seen)) => (data, created, seen),
                (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => return Err(driver_error(err)),
            };
            if let Ok(record) = codec::decode_row(data, created, seen)
                && UserKey::of_record(&key, &record).as_ref() == Some(user)
            {
                found.push((key, record));
            }
        }
        Ok(found)
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
        let builder = PostgresDriver::builder("postgres://app:hunter2@db.invalid/app");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("db.invalid"),
            "{shown}"
        );
        let connect = PostgresDriver::builder("postgres://app:hunter2@db.invalid:notaport/app").connect();
        // The string is parsed before anything touches the network.
        let err = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(connect)
            .expect_err("bad port");
        assert!(!err.to_string().contains("hunter2"));
        assert!(matches!(err, SetupError::InvalidUrl(_)));
    }

    #[test]
    fn data_text_escapes_nul_and_keeps_floats_floats() {
        let data: serde_json::Map<String, Value> = [
            ("a".to_owned(), Value::from("b")),
            ("n\0".to_owned(), Value::from("\0")),
            ("f".to_owned(), Value::from(1e18)),
            ("i".to_owned(), Value::from(u64::MAX)),
        ]
        .into_iter()
        .collect();
        let text = object_text(&data).expect("text");
        assert!(!text.contains("\\u0000"), "{text}");
        let stored: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(stored["a"], "b");
        assert!(stored["f"].is_f64());
        assert!(text.contains(r#""f":1000000000000000000.0"#), "{text}");
        assert!(text.contains(r#""i":18446744073709551615"#), "{text}");
    }
}
