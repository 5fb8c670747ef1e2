//! A throwaway Redis Cluster for tests: six `redis-server` nodes on spare loopback
//! ports (three primaries with one replica each), joined by `redis-cli --cluster
//! create`, with a short node timeout (1 s) so that a replica takes over from a dead
//! primary within seconds.
//!
//! Each node is a [`RedisServer`] with its own watchdog, so the nodes go however the
//! test process ends. Each test binary shares one cluster ([`shared_nodes`]); a test
//! that kills nodes starts its own ([`own_cluster`]). With `REDIS_CLUSTER_NODES` set
//! (comma-separated `redis://host:port` URLs), tests use that cluster instead. As for
//! a single server, tests skip without a cluster except under `CI`, where they fail.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sessionkit::{ManualClock, StoreKey};
use sessionkit_conformance::{DriverFactory, TimeSource};
use sessionkit_redis::RedisDriver;

use super::redis::{RedisServer, unique_prefix};
use super::unavailable;

/// The cluster's node timeout, in milliseconds: how long a silent primary takes to be
/// declared failed.
pub const NODE_TIMEOUT_MS: u64 = 1_000;

/// A Redis Cluster owned by the test process.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts six nodes and joins them: three primaries, one replica each. Returns
    /// once every slot is served and every replica is in sync.
    ///
    /// # Errors
    /// Why no cluster could be started (not installed, a node did not start, `redis-cli
    /// --cluster create` failed, the cluster never became healthy).
    pub fn start() -> Result<Self, String> {
        let timeout = NODE_TIMEOUT_MS.to_string();
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "{dir}/nodes.conf",
            "--cluster-node-timeout",
            &timeout,
            // A replica takes over however long it was out of touch.
            "--cluster-replica-validity-factor",
            "0",
        ];
        let mut nodes = Vec::with_capacity(6);
        for _ in 0..6 {
            nodes.push(RedisServer::start_with(&args)?);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .map_err(|e| {
                format!("cannot run redis-cli ({e}); it comes with `apt-get install -y redis-server`")
            })?;
        if !created.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&created.stdout),
                String::from_utf8_lossy(&created.stderr)
            ));
        }
        let cluster = RedisCluster { nodes };
        cluster.wait_until_healthy(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// The `redis://` URLs of the nodes still running.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The ports of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .map(RedisServer::port)
            .filter(|&port| cli(port, &["ROLE"]).is_ok_and(|role| role.starts_with("master")))
            .collect()
    }

    /// Kills the node on `port` (SIGKILL) and forgets it.
    pub fn kill(&mut self, port: u16) {
        if let Some(at) = self.nodes.iter().position(|node| node.port() == port) {
            let mut node = self.nodes.remove(at);
            node.kill();
        }
    }

    /// Waits until every running node sees all 16384 slots served (`cluster_state:ok`)
    /// and every replica's link to its primary is up.
    ///
    /// # Errors
    /// What was still wrong when `within` ran out.
    pub fn wait_until_healthy(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let problem = self.nodes.iter().find_map(|node| {
                let port = node.port();
                let info = match cli(port, &["CLUSTER", "INFO"]) {
                    Ok(info) => info,
                    Err(why) => return Some(why),
                };
                if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                    return Some(format!("node {port}: {info}"));
                }
                let replication = cli(port, &["INFO", "replication"]).unwrap_or_default();
                (replication.contains("role:slave") && !replication.contains("master_link_status:up"))
                    .then(|| format!("replica {port} not in sync"))
            });
            match problem {
                None => return Ok(()),
                Some(why) if Instant::now() >= deadline => return Err(why),
                Some(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Waits until every replica has received everything its primary had when this
    /// was called (replication is asynchronous: a write acknowledged by a primary that
    /// dies before this may be lost).
    ///
    /// # Errors
    /// Which replica was behind when `within` ran out.
    pub fn wait_until_replicated(&self, within: Duration) -> Result<(), String> {
        let targets: Vec<(u16, u64)> = self
            .primaries()
            .into_iter()
            .filter_map(|port| {
                let info = cli(port, &["INFO", "replication"]).ok()?;
                Some((port, field(&info, "master_repl_offset")?))
            })
            .collect();
        let deadline = Instant::now() + within;
        for node in &self.nodes {
            let port = node.port();
            loop {
                let info = cli(port, &["INFO", "replication"]).unwrap_or_default();
                if !info.contains("role:slave") {
                    break;
                }
                let master_port = field(&info, "master_port").and_then(|p| u16::try_from(p).ok());
                let wanted = targets
                    .iter()
                    .find(|(primary, _)| Some(*primary) == master_port)
                    .map_or(0, |(_, offset)| *offset);
                if field(&info, "slave_repl_offset").is_some_and(|offset| offset >= wanted) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!("replica {port} is behind its primary"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

/// A numeric `name:value` line of an `INFO` answer.
fn field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

/// Runs `redis-cli -p port args...` and returns its output.
fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "redis-cli on {port}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The node URLs of the cluster shared by this test binary: `REDIS_CLUSTER_NODES`,
/// or a cluster started on first use. `None` (after a message) when there is none and
/// we are not in CI.
pub fn shared_nodes() -> Option<Vec<String>> {
    static CLUSTER: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
    if let Ok(nodes) = std::env::var("REDIS_CLUSTER_NODES") {
        return Some(nodes.split(',').map(|n| n.trim().to_owned()).collect());
    }
    match CLUSTER.get_or_init(RedisCluster::start) {
        Ok(cluster) => Some(cluster.urls()),
        Err(why) => unavailable("Redis Cluster", why),
    }
}

/// A cluster of the test's own (for tests that kill nodes), or `None` to skip.
pub fn own_cluster() -> Option<RedisCluster> {
    match RedisCluster::start() {
        Ok(cluster) => Some(cluster),
        Err(why) => unavailable("Redis Cluster", &why),
    }
}

/// The conformance factory on a cluster: a driver with a prefix of its own per test.
pub struct ClusterFactory {
    nodes: Vec<String>,
}

impl ClusterFactory {
    /// The factory over the shared cluster, or `None` to skip.
    pub fn new() -> Option<Self> {
        shared_nodes().map(|nodes| ClusterFactory { nodes })
    }

    /// The factory over the nodes `nodes`.
    pub fn with_nodes(nodes: Vec<String>) -> Self {
        ClusterFactory { nodes }
    }

    /// The node URLs.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// A plain cluster client connection for poking at the store directly.
    ///
    /// # Panics
    /// When the cluster cannot be reached.
    pub async fn raw(&self) -> redis::cluster_async::ClusterConnection {
        redis::cluster::ClusterClient::new(self.nodes.clone())
            .expect("node URLs")
            .get_async_connection()
            .await
            .expect("raw cluster connection")
    }

    /// A driver with a key prefix of its own.
    ///
    /// # Panics
    /// When the driver cannot connect to the cluster.
    pub async fn driver(&self) -> RedisDriver {
        RedisDriver::cluster_builder(self.nodes.clone())
            .prefix(unique_prefix())
            .connect()
            .await
            .expect("connect to the test cluster")
    }
}

impl DriverFactory for ClusterFactory {
    type Driver = RedisDriver;

    async fn build(&self, _clock: &ManualClock) -> RedisDriver {
        self.driver().await
    }

    fn time(&self) -> TimeSource {
        TimeSource::Real
    }

    /// Renewals leave forwards (the new key shares the old one's slot).
    fn grace_window(&self) -> bool {
        true
    }

    /// Per-user indexes (`user_sessions`), each beside its users' sessions.
    fn user_index(&self) -> bool {
        true
    }

    /// Whole namespaces deleted slot by slot (`delete_namespace`).
    fn namespace_delete(&self) -> bool {
        true
    }

    async fn corrupt(&self, driver: &RedisDriver, key: &StoreKey) -> bool {
        super::redis::corrupt(&mut self.raw().await, driver, key).await
    }
}

/// The Redis Cluster [`ClusterFactory`], or an early `return` from the enclosing test
/// (a skip) when there is no cluster and we are not in CI.
#[macro_export]
macro_rules! redis_cluster_factory {
    () => {{
        let Some(factory) = $crate::servers::redis_cluster::ClusterFactory::new() else {
            return;
        };
        factory
    }};
}
