//! The driver: connection, key layout, and the contract calls.

use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};
use sessionkit::core::Namespace;
use sessionkit::core::placement::Group;
use sessionkit::timeouts;
use sessionkit::{
    Driver, DriverError, KeyUpdate, LoadResult, Lookup, Patch, Placement, Record, Rotation, StoreKey,
    Timestamp, UpdateResult, UserKey, WriteResult,
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

/// How ids are placed on a cluster: 1024 groups, each a hash tag (see the [crate
/// documentation](crate#redis-cluster)).
pub const CLUSTER_PLACEMENT_BITS: u8 = 10;

/// One connection to one server, or the cluster client's connection to all nodes.
/// Both reconnect by themselves and are cheap to clone.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    /// Two cluster connections: one whose client retries (redirections, reconnection,
    /// resending), and one whose client sends each command once, for the one call that
    /// must not run twice (update: see [`Retry::NeverResend`]). `once` says which this
    /// handle uses.
    Cluster {
        retrying: ClusterConnection,
        single_shot: ClusterConnection,
        once: bool,
    },
}

impl Connection {
    /// This connection, for calls retried as `retry` says.
    fn for_calls(mut self, retry: Retry) -> Self {
        if let Connection::Cluster { once, .. } = &mut self {
            *once = retry == Retry::NeverResend;
        }
        self
    }

    fn cluster(&mut self) -> Option<&mut ClusterConnection> {
        match self {
            Connection::Single(_) => None,
            Connection::Cluster {
                retrying,
                single_shot,
                once,
            } => Some(if *once { single_shot } else { retrying }),
        }
    }
}

/// The answer of a `Connection` that is neither single nor cluster: none exists.
fn unreachable_connection<T: Send + 'static>() -> RedisFuture<'static, T> {
    Box::pin(async {
        Err(RedisError::from((
            redis::ErrorKind::Client,
            "sessionkit-redis: no connection",
        )))
    })
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if let Connection::Single(c) = self {
            return c.req_packed_command(cmd);
        }
        match self.cluster() {
            Some(c) => c.req_packed_command(cmd),
            None => unreachable_connection(),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if let Connection::Single(c) = self {
            return c.req_packed_commands(pipeline, offset, count);
        }
        match self.cluster() {
            Some(c) => c.req_packed_commands(pipeline, offset, count),
            None => unreachable_connection(),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster { retrying, .. } => retrying.get_db(),
        }
    }
}

/// Sessions in Redis: one hash per session, expiring on its own.
///
/// Build one with [`RedisDriver::connect`] or [`RedisDriver::builder`]. The driver is
/// cheap to share (`Arc`) and safe to use from many tasks: all calls go over one
/// multiplexed connection that reconnects by itself. See the [crate documentation](crate)
/// for the key layout and the behaviour during outages.
pub struct RedisDriver {
    connection: Mutex<Option<Connection>>,
    /// [`Placement::NONE`] on one server; [`CLUSTER_PLACEMENT_BITS`] on a cluster.
    placement: Placement,
    script: Script,
    /// `list.lua`: a user's sessions, in one round trip.
    list_script: Script,
    prefix: Arc<str>,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection (and its URL, which may hold a password) is never shown.
        f.debug_struct("RedisDriver")
            .field("prefix", &self.prefix)
            .field("cluster", &!self.placement.is_none())
            .field("operation_timeout", &self.operation_timeout)
            .field("closed", &self.manager().is_err())
            .finish_non_exhaustive()
    }
}

/// Settings for a [`RedisDriver`]; see [`RedisDriver::builder`].
#[derive(Clone)]
pub struct RedisDriverBuilder {
    target: Target,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisDriverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDriverBuilder")
            .field(
                "urls",
                &match &self.target {
                    Target::Single(_) => 1,
                    Target::Cluster(urls) => urls.len(),
                },
            )
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
        let urls: &[String] = match &self.target {
            Target::Single(url) => std::slice::from_ref(url),
            Target::Cluster(urls) => urls,
        };
        if urls.is_empty() {
            return Err(SetupError::Setting("a cluster needs at least one node URL"));
        }
        for url in urls {
            let scheme = url.trim_start().get(..9).map(str::to_ascii_lowercase);
            if !cfg!(feature = "tls") && scheme.as_deref() == Some("rediss://") {
                return Err(SetupError::TlsNotEnabled);
            }
        }
        let (connect, placement) = match &self.target {
            Target::Single(url) => (self.connect_single(url).await?, Placement::NONE),
            Target::Cluster(urls) => {
                if self.prefix.contains(['{', '}']) {
                    // Redis would take the hash tag from the prefix: every key in one slot.
                    return Err(SetupError::Setting(
                        "on a cluster the key prefix must not contain '{' or '}'",
                    ));
                }
                let placement = Placement::groups(CLUSTER_PLACEMENT_BITS).unwrap_or(Placement::NONE);
                (self.connect_cluster(urls).await?, placement)
            }
        };
        Ok(RedisDriver {
            connection: Mutex::new(Some(connect)),
            placement,
            script: Script::new(include_str!("save.lua")),
            list_script: Script::new(include_str!("list.lua")),
            prefix: Arc::from(self.prefix),
            operation_timeout: self.operation_timeout,
        })
    }

    async fn connect_single(&self, url: &str) -> Result<Connection, SetupError> {
        let client = redis::Client::open(url).map_err(SetupError::InvalidUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            // Reconnect quickly and give up soon: callers during an outage get an
            // error fast, and the next call starts a fresh attempt.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(250));
        let connect = ConnectionManager::new_with_config(client, config);
        self.bounded_connect(async { connect.await.map(Connection::Single) })
            .await
    }

    /// The cluster client: it learns the topology from any reachable node, follows
    /// `MOVED`/`ASK` redirections, and refreshes the topology after a failover.
    async fn connect_cluster(&self, urls: &[String]) -> Result<Connection, SetupError> {
        let client = |retries: u32| {
            ClusterClient::builder(urls.iter().map(String::as_str))
                .connection_timeout(self.connect_timeout)
                .response_timeout(self.response_timeout)
                .retries(retries)
                .min_retry_wait(20)
                .max_retry_wait(250)
                .build()
                .map_err(SetupError::InvalidUrl)
        };
        // The operation timeout bounds a call anyway; within it, calls retry quickly (a
        // redirection, a primary being replaced), and the scripts recognise their own
        // earlier run. Updates are sent once: a compare-and-set whose answer was lost
        // may have run, and must not run again (the driver retries it itself only
        // when it surely never ran). That client learns a new topology from its own
        // failures, so the first update after a failover may answer 503.
        let (retrying, single_shot) = (client(6)?, client(0)?);
        self.bounded_connect(async {
            Ok(Connection::Cluster {
                retrying: retrying.get_async_connection().await?,
                single_shot: single_shot.get_async_connection().await?,
                once: false,
            })
        })
        .await
    }

    /// Opens a connection within the operation timeout.
    async fn bounded_connect(
        &self,
        connect: impl Future<Output = Result<Connection, RedisError>>,
    ) -> Result<Connection, SetupError> {
        match timeouts::bounded(STORE, self.operation_timeout, async { Ok(connect.await) }).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(err)) if err.kind() == redis::ErrorKind::InvalidClientConfig => {
                Err(SetupError::InvalidUrl(err))
            }
            Ok(Err(err)) => Err(SetupError::Connect(driver_error(err))),
            Err(timed_out) => Err(SetupError::Connect(timed_out)),
        }
    }
}

/// Where a builder connects.
#[derive(Clone)]
enum Target {
    Single(String),
    Cluster(Vec<String>),
}

/// The first arguments of every call of the save script.
#[derive(Clone, Copy)]
struct Head {
    mode: &'static str,
    expires_at: Timestamp,
    last_seen: Timestamp,
}

/// How a failed attempt may be retried on a fresh connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// The call is idempotent: retry after any connection failure.
    Idempotent,
    /// Retry only when the command surely never reached the server. The script
    /// recognises its own earlier run (create, rotate), so the cluster client may
    /// re-send it.
    IfNotSent,
    /// As `IfNotSent`, and a second run would do harm (a compare-and-set would compare
    /// with its own first write): on a cluster, sent by the client that never re-sends.
    NeverResend,
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
        Self::builder_for(Target::Single(url.to_owned()))
    }

    /// Settings for a driver on a Redis Cluster, discovered from `nodes` (`redis://` or,
    /// with the `tls` feature, `rediss://` URLs; any reachable subset of the nodes is
    /// enough). Keys then carry hash tags so that each call stays in one slot; see the
    /// [crate documentation](crate#redis-cluster).
    pub fn cluster_builder<I, S>(nodes: I) -> RedisDriverBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::builder_for(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    /// Connects to a Redis Cluster through `nodes` with the default settings; see
    /// [`RedisDriver::cluster_builder`].
    ///
    /// # Errors
    /// As [`RedisDriverBuilder::connect`].
    pub async fn connect_cluster<I, S>(nodes: I) -> Result<Self, SetupError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::cluster_builder(nodes).connect().await
    }

    fn builder_for(target: Target) -> RedisDriverBuilder {
        RedisDriverBuilder {
            target,
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

    /// Whether the driver talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        !self.placement.is_none()
    }

    /// The start every key of `namespace` in placement group `group` shares:
    /// `{prefix}{namespace}:` on one server, `{prefix}{namespace}:{{namespace}.{group}}:`
    /// on a cluster (the hash tag in braces decides the slot).
    fn key_base(&self, namespace: &Namespace, group: Group) -> String {
        let namespace = namespace.as_str();
        let mut out = String::with_capacity(self.prefix.len() + 2 * namespace.len() + 80 + 8);
        out.push_str(&self.prefix);
        out.push_str(namespace);
        out.push(':');
        if self.is_cluster() {
            // Writing to a String cannot fail.
            let _ = write!(out, "{{{namespace}.{group}}}:");
        }
        out
    }

    /// The Redis key of a session: `{prefix}{namespace}:{store key hex}` on one server,
    /// `{prefix}{namespace}:{{namespace}.{group}}:{store key hex}` on a cluster.
    pub fn redis_key(&self, key: &StoreKey) -> String {
        let mut out = self.key_base(key.namespace(), self.placement.group_of_key(key));
        out.push_str(&key.to_hex());
        out
    }

    /// The Redis key of a user's index of sessions (a set of store keys, see the
    /// [crate documentation](crate)): `{prefix}{namespace}:u:{user key hex}` on one
    /// server, with the hash tag of the user key's group after the namespace on a
    /// cluster. It holds the digest of the user's index key, never a user id. No
    /// namespace has a `:`, so it never collides with a session's key.
    pub fn user_index_key(&self, user: &UserKey) -> String {
        let mut out = self.key_base(user.namespace(), self.placement.group_of_user(user));
        out.push_str("u:");
        out.push_str(&codec::hex(user.digest()));
        out
    }

    fn manager(&self) -> Result<Connection, DriverError> {
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
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let manager = self.manager()?.for_calls(retry);
        timeouts::bounded(STORE, self.operation_timeout, async {
            timeouts::retry(1, || call(manager.clone()), |err| should_retry(retry, err))
                .await
                .map_err(driver_error)
        })
        .await
    }

    /// Runs the save script on `keys` (`args` from `ARGV[5]` on); its answer: `Int(1)`
    /// when applied, `Int(0)` when not (and `Int(2)`, see the script). A binding whose
    /// index is in another slot (the script answers its digest) is indexed here with a
    /// second call.
    async fn save(
        &self,
        keys: &[String],
        namespace: &Namespace,
        retry: Retry,
        head: Head,
        args: Vec<Vec<u8>>,
    ) -> Result<i64, DriverError> {
        match self.save_value(keys, namespace, retry, head, args).await? {
            redis::Value::Int(answer) => Ok(answer),
            _ => Err(DriverError::backend(StoreError::UnexpectedReply)),
        }
    }

    /// [`save`](Self::save), answering the script's reply as it is (after the index
    /// step, which answers `Int(1)`).
    async fn save_value(
        &self,
        keys: &[String],
        namespace: &Namespace,
        retry: Retry,
        head: Head,
        args: Vec<Vec<u8>>,
    ) -> Result<redis::Value, DriverError> {
        let Head {
            mode,
            expires_at,
            last_seen,
        } = head;
        let mut all = Vec::with_capacity(4 + args.len());
        all.push(mode.as_bytes().to_vec());
        all.push(expiry_arg(expires_at));
        all.push(codec::millis(last_seen).into_bytes());
        all.push(self.placement.bits().to_string().into_bytes());
        all.extend(args);
        match self.run_script(&self.script, keys, retry, &all).await? {
            redis::Value::BulkString(digest) => {
                let digest = codec::parse_digest(&digest)
                    .ok_or_else(|| DriverError::backend(StoreError::UnexpectedReply))?;
                let user = UserKey::from_digest(namespace.clone(), digest);
                // The session written last: its key is the last of `keys`.
                let session = keys.last().map_or("", |key| &key[key.len().saturating_sub(64)..]);
                let index_args = vec![
                    b"index".to_vec(),
                    expiry_arg(expires_at),
                    session.as_bytes().to_vec(),
                    self.placement.bits().to_string().into_bytes(),
                ];
                // Adding a member again changes nothing, so a retry is safe. The write
                // itself is done: a failure here is logged, not returned (the caller
                // would report a stored write as failed), and the next write of the
                // session indexes it again.
                if let Err(err) = self
                    .run_script(
                        &self.script,
                        &[self.user_index_key(&user)],
                        Retry::Idempotent,
                        &index_args,
                    )
                    .await
                {
                    tracing::warn!(error = %err, "sessionkit-redis: a session was written but its user index (in another slot) was not updated");
                }
                Ok(redis::Value::Int(1))
            }
            other => Ok(other),
        }
    }

    /// Runs `script` (`save.lua` or `list.lua`) on `keys` with `args`; returns its
    /// answer.
    async fn run_script(
        &self,
        script: &Script,
        keys: &[String],
        retry: Retry,
        args: &[Vec<u8>],
    ) -> Result<redis::Value, DriverError> {
        self.run(retry, |mut manager| {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            for arg in args {
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
        // Refused connections, and a cluster node that did not run the command because
        // the slot is elsewhere or in flux (the client has rebuilt its slot map since).
        Retry::IfNotSent | Retry::NeverResend => {
            err.is_connection_refusal()
                || matches!(
                    err.kind(),
                    redis::ErrorKind::Server(
                        redis::ServerErrorKind::Moved
                            | redis::ServerErrorKind::Ask
                            | redis::ServerErrorKind::TryAgain
                            | redis::ServerErrorKind::ClusterDown
                    )
                )
        }
    }
}

fn expiry_arg(expires_at: Timestamp) -> Vec<u8> {
    expires_at
        .as_millis()
        .min(MAX_EXPIRY_MILLIS)
        .to_string()
        .into_bytes()
}

/// The save script's answer to a patch or touch: 1 applied, 0 gone.
fn wrap(answer: i64) -> WriteResult {
    if answer == 1 {
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
        let mut args = Vec::with_capacity(2 + 2 * record.data.len());
        args.push(codec::millis(record.created_at).into_bytes());
        args.push(codec::hex(&rand::random::<[u8; 16]>()).into_bytes());
        for (name, value) in &record.data {
            args.push(codec::data_field(name));
            args.push(codec::json(value));
        }
        let keys = [self.redis_key(key)];
        let answer = self
            .save(
                &keys,
                key.namespace(),
                Retry::IfNotSent,
                Head {
                    mode: "create",
                    expires_at,
                    last_seen: record.last_seen,
                },
                args,
            )
            .await?;
        if answer == 1 {
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
        let mut args = Vec::with_capacity(2 + patch.remove.len() + 2 * patch.set.len());
        push_patch_args(&mut args, patch);
        let keys = [self.redis_key(key)];
        // Applying the same patch twice gives the same record, so a retry is safe.
        self.save(
            &keys,
            key.namespace(),
            Retry::Idempotent,
            Head {
                mode: "patch",
                expires_at,
                last_seen: patch.last_seen,
            },
            args,
        )
        .await
        .map(wrap)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let keys = [self.redis_key(key)];
        self.save(
            &keys,
            key.namespace(),
            Retry::Idempotent,
            Head {
                mode: "touch",
                expires_at,
                last_seen,
            },
            Vec::new(),
        )
        .await
        .map(wrap)
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

    /// Every session, forward and user index of the namespace. On one server:
    /// `SCAN MATCH {prefix}{namespace}:*` in batches, each batch `UNLINK`ed. On a
    /// cluster: the keys of each slot the namespace's placement groups hash to
    /// (`CLUSTER GETKEYSINSLOT`, on the slot's primary), filtered by the same prefix and
    /// `UNLINK`ed. Round trips grow with the keyspace: an admin's incident tool, never a
    /// request path.
    async fn delete_namespace(&self, namespace: &Namespace) -> Result<u64, DriverError> {
        let prefix = format!("{}{}:", self.prefix, namespace.as_str());
        if self.is_cluster() {
            return self.delete_namespace_on_cluster(namespace, &prefix).await;
        }
        let mut pattern = String::with_capacity(prefix.len() + 2);
        for c in prefix.chars() {
            // The prefix is free text: its glob characters must match literally.
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let mut cursor: u64 = 0;
        let mut deleted: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .run(Retry::Idempotent, |mut manager| {
                    let mut cmd = redis::cmd("SCAN");
                    cmd.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000);
                    async move { cmd.query_async(&mut manager).await }
                })
                .await?;
            deleted += self.unlink(keys).await?;
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// One `EVALSHA` of the save script: atomically renames the record to the new key,
    /// applies the patch there, leaves a forward under the old key that expires at
    /// the end of the grace window, and moves the session in its user's index. See the
    /// [crate documentation](crate).
    ///
    /// On a cluster the two keys share a slot (the new id was drawn in the old id's
    /// placement group). Should they not (an id drawn without placement), the renewal
    /// falls back to what drivers without forwards do
    /// ([`rotate_by_copy`](sessionkit::driver::rotate_by_copy)), with no grace window.
    async fn rotate(&self, rotation: &Rotation) -> Result<WriteResult, DriverError> {
        if rotation.from.namespace() != rotation.to.namespace() {
            // A forward keeps only the digest, in the old key's namespace.
            return Err(DriverError::backend(StoreError::CrossNamespaceRotation));
        }
        if self.placement.group_of_key(&rotation.from) != self.placement.group_of_key(&rotation.to) {
            return sessionkit::driver::rotate_by_copy(self, rotation).await;
        }
        let patch = &rotation.patch;
        let mut args = Vec::with_capacity(4 + patch.remove.len() + 2 * patch.set.len());
        args.push(expiry_arg(rotation.grace_until));
        args.push(codec::forward_value(&rotation.to));
        push_patch_args(&mut args, patch);
        let keys = [self.redis_key(&rotation.from), self.redis_key(&rotation.to)];
        // Not idempotent (a second run finds the forward): retried only when surely
        // never sent.
        match self
            .save(
                &keys,
                rotation.to.namespace(),
                Retry::IfNotSent,
                Head {
                    mode: "rotate",
                    expires_at: rotation.expires_at,
                    last_seen: patch.last_seen,
                },
                args,
            )
            .await?
        {
            1 => Ok(WriteResult::Applied),
            // The new key is taken: as for a create, never overwritten.
            2 => Err(DriverError::Duplicate),
            _ => Ok(WriteResult::Gone),
        }
    }

    /// One `EVALSHA` of the listing script (`list.lua`): the user's index set, each
    /// member's session hash, and the removal of the members whose session is gone,
    /// a forward or bound to someone else. Each hash is decoded and its binding
    /// checked here as well; one that does not decode is skipped (it loads as corrupt).
    /// On a cluster, members in another slot than the index (sessions bound without a
    /// new id) are read one `HGETALL` each and pruned with one `SREM`.
    async fn user_sessions(&self, user: &UserKey) -> Result<Vec<(StoreKey, Record)>, DriverError> {
        let index = self.user_index_key(user);
        let args = [
            codec::hex(user.digest()).into_bytes(),
            self.placement.bits().to_string().into_bytes(),
        ];
        // Listing twice gives the same answer, so a retry is safe.
        let reply = self
            .run_script(
                &self.list_script,
                std::slice::from_ref(&index),
                Retry::Idempotent,
                &args,
            )
            .await?;
        let redis::Value::Array(items) = reply else {
            return Err(DriverError::backend(StoreError::UnexpectedReply));
        };
        if !items.len().is_multiple_of(2) {
            return Err(DriverError::backend(StoreError::UnexpectedReply));
        }
        let mut found = Vec::with_capacity(items.len() / 2);
        let mut dead = Vec::new();
        for pair in items.chunks_exact(2) {
            let redis::Value::BulkString(member) = &pair[0] else {
                return Err(DriverError::backend(StoreError::UnexpectedReply));
            };
            let Some(digest) = codec::parse_digest(member) else {
                continue;
            };
            let key = StoreKey::from_digest(user.namespace().clone(), digest);
            let decoded = match &pair[1] {
                redis::Value::Int(0) => {
                    let fetched = self.fetch(&key).await?;
                    // Pruned only when it can never come back (ids are never reused):
                    // gone, a forward, or not a hash. A session bound to someone else
                    // now may be rebound meanwhile, and its index entry must stay.
                    if matches!(
                        &fetched,
                        Ok(None | Some(Entry::Forward(_))) | Err(DecodeError::NotAHash)
                    ) {
                        dead.push(member.clone());
                    }
                    fetched
                }
                hash => codec::decode_entry(hash),
            };
            if let Ok(Some(Entry::Record(record))) = decoded
                && UserKey::of_record(&key, &record).as_ref() == Some(user)
            {
                found.push((key, record));
            }
        }
        if !dead.is_empty() {
            self.run(Retry::Idempotent, |mut manager| {
                let mut cmd = redis::cmd("SREM");
                cmd.arg(&index).arg(&dead);
                async move { cmd.query_async::<i64>(&mut manager).await }
            })
            .await?;
        }
        Ok(found)
    }

    /// One `EVALSHA`: the script compares the field's stored JSON text with the
    /// expected value's and writes only when they match. Should they differ in text
    /// only (a value written with other number formatting), the update is sent once
    /// more with the stored text.
    async fn update(
        &self,
        key: &StoreKey,
        update: &KeyUpdate,
        expires_at: Timestamp,
    ) -> Result<UpdateResult, DriverError> {
        let keys = [self.redis_key(key)];
        let mut expected = update.expected.as_ref().map(codec::json);
        let mut last = None;
        for _ in 0..2 {
            let args = vec![
                codec::data_field(&update.key),
                if expected.is_some() {
                    b"1".to_vec()
                } else {
                    b"0".to_vec()
                },
                expected.clone().unwrap_or_default(),
                if update.new.is_some() {
                    b"1".to_vec()
                } else {
                    b"0".to_vec()
                },
                update.new.as_ref().map(codec::json).unwrap_or_default(),
            ];
            let head = Head {
                mode: "update",
                expires_at,
                last_seen: update.last_seen,
            };
            // Not idempotent (a second run compares with what the first wrote): retried
            // only when surely never sent.
            let reply = self
                .save_value(&keys, key.namespace(), Retry::NeverResend, head, args)
                .await?;
            let current = match reply {
                redis::Value::Int(1) => return Ok(UpdateResult::Applied),
                redis::Value::Int(0) => return Ok(UpdateResult::Gone),
                redis::Value::Array(items) => match items.get(1) {
                    None => None,
                    Some(redis::Value::BulkString(text)) => Some(text.clone()),
                    Some(_) => return Err(DriverError::backend(StoreError::UnexpectedReply)),
                },
                _ => return Err(DriverError::backend(StoreError::UnexpectedReply)),
            };
            let Some(text) = current else {
                return Ok(UpdateResult::Conflict(None));
            };
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) else {
                // A field that is not JSON: the record is corrupt, as a load would say.
                return Ok(UpdateResult::Gone);
            };
            if update.expected.as_ref() != Some(&value) {
                return Ok(UpdateResult::Conflict(Some(value)));
            }
            expected = Some(text.clone());
            last = Some(value);
        }
        // The stored text changed again between the two calls: a conflict like any
        // other, which the session layer retries.
        Ok(UpdateResult::Conflict(last))
    }

    fn placement(&self) -> Placement {
        self.placement
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

impl RedisDriver {
    /// `UNLINK`s `keys` (none: no call); how many went.
    async fn unlink(&self, keys: Vec<String>) -> Result<u64, DriverError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.run(Retry::Idempotent, |mut manager| {
            let mut cmd = redis::cmd("UNLINK");
            cmd.arg(&keys);
            async move { cmd.query_async(&mut manager).await }
        })
        .await
    }

    /// [`Driver::delete_namespace`] on a cluster: slot by slot.
    async fn delete_namespace_on_cluster(
        &self,
        namespace: &Namespace,
        prefix: &str,
    ) -> Result<u64, DriverError> {
        let mut slots: Vec<u16> = (0..self.placement.group_count())
            .filter_map(|group| Group::try_from(group).ok())
            .map(|group| codec::key_slot(self.key_base(namespace, group).as_bytes()))
            .collect();
        slots.sort_unstable();
        slots.dedup();
        let mut deleted = 0;
        for slot in slots {
            let Some(routed) = Slot::new(slot) else {
                continue;
            };
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_slot(
                routed,
                SlotAddr::Master,
            )));
            // Every key of the slot at once (other namespaces' may share it), ours
            // unlinked: what is written meanwhile may stay, as with SCAN.
            let count: u64 = self
                .in_slot(&route, &["COUNTKEYSINSLOT", &slot.to_string()])
                .await?;
            if count == 0 {
                continue;
            }
            let keys: Vec<String> = self
                .in_slot(&route, &["GETKEYSINSLOT", &slot.to_string(), &count.to_string()])
                .await?;
            let ours: Vec<String> = keys.into_iter().filter(|key| key.starts_with(prefix)).collect();
            deleted += self.unlink(ours).await?;
        }
        Ok(deleted)
    }

    /// `CLUSTER <args>` on the primary of `route`'s slot, decoded as `T`.
    async fn in_slot<T: redis::FromRedisValue>(
        &self,
        route: &RoutingInfo,
        args: &[&str],
    ) -> Result<T, DriverError> {
        let value = self
            .run(Retry::Idempotent, |manager| {
                let mut cmd = redis::cmd("CLUSTER");
                for arg in args {
                    cmd.arg(*arg);
                }
                let route = route.clone();
                async move {
                    let mut manager = manager;
                    match manager.cluster() {
                        Some(cluster) => cluster.route_command(cmd, route).await,
                        None => cmd.query_async(&mut manager).await,
                    }
                }
            })
            .await?;
        redis::from_redis_value(value).map_err(|_| DriverError::backend(StoreError::UnexpectedReply))
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
