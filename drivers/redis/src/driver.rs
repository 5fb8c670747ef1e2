//! The driver: connection, key layout, and the contract calls.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use sessionkit::timeouts;
use sessionkit::{
    Driver, DriverError, LoadResult, Lookup, Patch, Record, Rotation, StoreKey, Timestamp, WriteResult,
};

use crate::codec::{self, DecodeError, Entry};
use crate::error::{SetupError, StoreError, driver_error, is_unavailable};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "sessionkit:";
/// How the driver names its store in errors
/// ([`TimedOut`](sessionkit::timeouts::TimedOut)).
const STORE: &str = "Redis";

/// The default timeout for opening a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default timeout for one command's answer.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on one driver call, reconnecting included.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Redis keeps key expiries as signed 64-bit milliseconds.
const MAX_EXPIRY_MILLIS: u64 = i64::MAX as u64;

/// Sessions in Redis: one hash per session, expiring on its own.
///
/// Build one with [`RedisDriver::connect`] or [`RedisDriver::builder`]. The driver is
/// cheap to share (`Arc`) and safe to use from many tasks: all calls go over one
/// multiplexed connection that reconnects by itself. See the [crate documentation](crate)
/// for the key layout and the behaviour during outages.
pub struct RedisDriver {
    connection: Mutex<Option<ConnectionManager>>,
    script: Script,
    prefix: Arc<str>,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection (and its URL, which may hold a password) is never shown.
        f.debug_struct("RedisDriver")
            .field("prefix", &self.prefix)
            .field("operation_timeout", &self.operation_timeout)
            .field("closed", &self.manager().is_err())
            .finish_non_exhaustive()
    }
}

/// Settings for a [`RedisDriver`]; see [`RedisDriver::builder`].
#[derive(Clone)]
pub struct RedisDriverBuilder {
    url: String,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisDriverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDriverBuilder")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

impl RedisDriverBuilder {
    /// The key prefix (default [`DEFAULT_PREFIX`], `sessionkit:`). Sessions live under
    /// `{prefix}{namespace}:{store key hex}`; give each application or environment
    /// sharing a Redis its own prefix if they must not see each other's sessions.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long opening a connection may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command may wait for its answer (default 2 s). Specific to Redis:
    /// the client bounds each command on the shared connection.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The bound on one driver call, including waiting for a reconnection (default
    /// 5 s). A call that takes longer fails with
    /// [`DriverError::Unavailable`]; the command may still run on the server.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Connects (waiting at most the operation timeout) and returns the driver.
    ///
    /// # Errors
    /// [`SetupError::InvalidUrl`] for a URL that does not parse,
    /// [`SetupError::TlsNotEnabled`] for `rediss://` without the `tls` feature,
    /// [`SetupError::Setting`] for a zero timeout, [`SetupError::Connect`] when
    /// the server cannot be reached or refuses the connection (wrong password, for
    /// instance).
    pub async fn connect(self) -> Result<RedisDriver, SetupError> {
        for (timeout, name) in [
            (self.connect_timeout, "the connect timeout must not be zero"),
            (self.response_timeout, "the response timeout must not be zero"),
            (self.operation_timeout, "the operation timeout must not be zero"),
        ] {
            if timeout.is_zero() {
                return Err(SetupError::Setting(name));
            }
        }
        let scheme = self.url.trim_start().get(..9).map(str::to_ascii_lowercase);
        if !cfg!(feature = "tls") && scheme.as_deref() == Some("rediss://") {
            return Err(SetupError::TlsNotEnabled);
        }
        let client = redis::Client::open(self.url.as_str()).map_err(SetupError::InvalidUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            // Reconnect quickly and give up soon: callers during an outage get an
            // error fast, and the next call starts a fresh attempt.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(250));
        let connect = ConnectionManager::new_with_config(client, config);
        let manager =
            match timeouts::bounded(STORE, self.operation_timeout, async { Ok(connect.await) }).await {
                Ok(Ok(manager)) => manager,
                Ok(Err(err)) if err.kind() == redis::ErrorKind::InvalidClientConfig => {
                    return Err(SetupError::InvalidUrl(err));
                }
                Ok(Err(err)) => return Err(SetupError::Connect(driver_error(err))),
                Err(timed_out) => return Err(SetupError::Connect(timed_out)),
            };
        Ok(RedisDriver {
            connection: Mutex::new(Some(manager)),
            script: Script::new(include_str!("save.lua")),
            prefix: Arc::from(self.prefix),
            operation_timeout: self.operation_timeout,
        })
    }
}

/// How a failed attempt may be retried on a fresh connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// The call is idempotent: retry after any connection failure.
    Idempotent,
    /// Retry only when the command surely never reached the server.
    IfNotSent,
}

impl RedisDriver {
    /// Connects to `url` with the default settings; see [`RedisDriver::builder`].
    ///
    /// # Errors
    /// As [`RedisDriverBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, SetupError> {
        Self::builder(url).connect().await
    }

    /// Settings for a driver connecting to `url`:
    /// `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (with the `tls`
    /// feature) or `unix:///path/to/redis.sock[?db=N]`.
    pub fn builder(url: &str) -> RedisDriverBuilder {
        RedisDriverBuilder {
            url: url.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key of a session: `{prefix}{namespace}:{store key hex}`.
    pub fn redis_key(&self, key: &StoreKey) -> String {
        let namespace = key.namespace().as_str();
        let mut out = String::with_capacity(self.prefix.len() + namespace.len() + 65);
        out.push_str(&self.prefix);
        out.push_str(namespace);
        out.push(':');
        out.push_str(&key.to_hex());
        out
    }

    fn manager(&self) -> Result<ConnectionManager, DriverError> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(DriverError::Closed)
    }

    /// Runs `call` on the connection, bounded by the operation timeout, retrying once
    /// on a fresh connection when the first attempt met a dead one.
    async fn run<T, F, Fut>(&self, retry: Retry, call: F) -> Result<T, DriverError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let manager = self.manager()?;
        timeouts::bounded(STORE, self.operation_timeout, async {
            timeouts::retry(1, || call(manager.clone()), |err| should_retry(retry, err))
                .await
                .map_err(driver_error)
        })
        .await
    }

    async fn save(&self, key: &StoreKey, retry: Retry, args: Vec<Vec<u8>>) -> Result<bool, DriverError> {
        self.run_script(&[self.redis_key(key)], retry, args)
            .await
            .map(|applied| applied == 1)
    }

    /// Runs the save script (`save.lua`) on `keys` with `args`; returns its answer.
    async fn run_script(
        &self,
        keys: &[String],
        retry: Retry,
        args: Vec<Vec<u8>>,
    ) -> Result<i64, DriverError> {
        self.run(retry, |mut manager| {
            let mut invocation = self.script.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            for arg in &args {
                invocation.arg(arg.as_slice());
            }
            async move { invocation.invoke_async(&mut manager).await }
        })
        .await
    }

    /// One `HGETALL` of `key`, decoded: a record, a forward, nothing, or why the
    /// stored value is neither.
    async fn fetch(&self, key: &StoreKey) -> Result<Result<Option<Entry>, DecodeError>, DriverError> {
        let redis_key = self.redis_key(key);
        let reply = self
            .run(Retry::Idempotent, |mut manager| {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(&redis_key);
                async move { cmd.query_async::<redis::Value>(&mut manager).await }
            })
            .await;
        match reply {
            Ok(redis::Value::ServerError(err)) => {
                if err.code() == "WRONGTYPE" {
                    Ok(Err(DecodeError::NotAHash))
                } else {
                    Err(driver_error(err.into()))
                }
            }
            Ok(reply) => Ok(codec::decode_entry(&reply)),
            Err(DriverError::Backend(source))
                if source
                    .downcast_ref::<RedisError>()
                    .is_some_and(|err| err.code() == Some("WRONGTYPE")) =>
            {
                // A key of another type under our name: a foreign record.
                Ok(Err(DecodeError::NotAHash))
            }
            Err(err) => Err(err),
        }
    }
}

/// The patch arguments of the save script: clear flag, removed fields, set pairs.
fn push_patch_args(args: &mut Vec<Vec<u8>>, patch: &Patch) {
    args.push(if patch.clear { b"1".to_vec() } else { b"0".to_vec() });
    args.push(patch.remove.len().to_string().into_bytes());
    args.extend(patch.remove.iter().map(|name| codec::data_field(name)));
    for (name, value) in &patch.set {
        args.push(codec::data_field(name));
        args.push(codec::json(value));
    }
}

fn should_retry(retry: Retry, err: &RedisError) -> bool {
    match retry {
        Retry::Idempotent => is_unavailable(err) && (err.is_io_error() || err.is_connection_dropped()),
        Retry::IfNotSent => err.is_connection_refusal(),
    }
}

fn expiry_arg(expires_at: Timestamp) -> Vec<u8> {
    expires_at
        .as_millis()
        .min(MAX_EXPIRY_MILLIS)
        .to_string()
        .into_bytes()
}

fn wrap(result: bool) -> WriteResult {
    if result {
        WriteResult::Applied
    } else {
        WriteResult::Gone
    }
}

impl Driver for RedisDriver {
    async fn load(&self, key: &StoreKey) -> Result<LoadResult, DriverError> {
        self.fetch(key).await.map(codec::load_result)
    }

    /// `load`, with the forward left by a renewal: the same single `HGETALL`.
    async fn lookup(&self, key: &StoreKey) -> Result<Lookup, DriverError> {
        Ok(match self.fetch(key).await? {
            Ok(Some(Entry::Forward(digest))) => Lookup::Forwarded {
                to: StoreKey::from_digest(key.namespace().clone(), digest),
            },
            decoded => Lookup::Loaded(codec::load_result(decoded)),
        })
    }

    async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        let mut args = Vec::with_capacity(4 + 2 * record.data.len());
        args.push(b"create".to_vec());
        args.push(expiry_arg(expires_at));
        args.push(codec::millis(record.last_seen).into_bytes());
        args.push(codec::millis(record.created_at).into_bytes());
        for (name, value) in &record.data {
            args.push(codec::data_field(name));
            args.push(codec::json(value));
        }
        if self.save(key, Retry::IfNotSent, args).await? {
            Ok(())
        } else {
            Err(DriverError::Duplicate)
        }
    }

    async fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let mut args = Vec::with_capacity(5 + patch.remove.len() + 2 * patch.set.len());
        args.push(b"patch".to_vec());
        args.push(expiry_arg(expires_at));
        args.push(codec::millis(patch.last_seen).into_bytes());
        push_patch_args(&mut args, patch);
        // Applying the same patch twice gives the same record, so a retry is safe.
        self.save(key, Retry::Idempotent, args).await.map(wrap)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let args = vec![
            b"touch".to_vec(),
            expiry_arg(expires_at),
            codec::millis(last_seen).into_bytes(),
        ];
        self.save(key, Retry::Idempotent, args).await.map(wrap)
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        let redis_key = self.redis_key(key);
        self.run(Retry::Idempotent, |mut manager| {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(&redis_key);
            async move { cmd.query_async::<i64>(&mut manager).await }
        })
        .await
        .map(drop)
    }

    /// One `EVALSHA` of the save script: atomically renames the record to the new key,
    /// applies the patch there, and leaves a forward under the old key that expires at
    /// the end of the grace window. See the [crate documentation](crate).
    async fn rotate(&self, rotation: &Rotation) -> Result<WriteResult, DriverError> {
        if rotation.from.namespace() != rotation.to.namespace() {
            // A forward keeps only the digest, in the old key's namespace.
            return Err(DriverError::backend(StoreError::CrossNamespaceRotation));
        }
        let patch = &rotation.patch;
        let mut args = Vec::with_capacity(7 + patch.remove.len() + 2 * patch.set.len());
        args.push(b"rotate".to_vec());
        args.push(expiry_arg(rotation.expires_at));
        args.push(codec::millis(patch.last_seen).into_bytes());
        args.push(expiry_arg(rotation.grace_until));
        args.push(codec::forward_value(&rotation.to));
        push_patch_args(&mut args, patch);
        let keys = [self.redis_key(&rotation.from), self.redis_key(&rotation.to)];
        // Not idempotent (a second run finds the forward): retried only when surely
        // never sent.
        match self.run_script(&keys, Retry::IfNotSent, args).await? {
            1 => Ok(WriteResult::Applied),
            // The new key is taken: as for a create, never overwritten.
            2 => Err(DriverError::Duplicate),
            _ => Ok(WriteResult::Gone),
        }
    }

    async fn close(&self) -> Result<(), DriverError> {
        // Dropping the last handle closes the connection; calls in flight finish on
        // their own clones.
        drop(
            self.connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_clears_by_the_data_prefix() {
        let script = include_str!("save.lua");
        assert!(script.contains(&format!("string.sub(field, 1, 2) == '{}'", codec::DATA_PREFIX)));
        assert_eq!(codec::DATA_PREFIX.len(), 2);
    }

    #[test]
    fn expiries_fit_redis() {
        assert_eq!(expiry_arg(Timestamp::MAX), i64::MAX.to_string().into_bytes());
        assert_eq!(expiry_arg(Timestamp::from_millis(5)), b"5");
    }

    #[test]
    fn builder_debug_hides_the_url() {
        let builder = RedisDriver::builder("redis://:hunter2@example.invalid/");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
