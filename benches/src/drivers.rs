//! Store round trips per request, counted on the server, and requests/s through the
//! axum router, for the Redis and PostgreSQL drivers. Run by `cargo bench --bench
//! drivers` when `REDIS_URL` / `DATABASE_URL` are set; `scripts/drivers.sh` starts
//! throwaway servers and runs it.

use std::sync::Arc;
use std::time::Instant;

use crate::{SECRET, request, sessionkit_routes};
use http::{HeaderValue, header};
use sessionkit::{Registry, Secret, Sessions};
use tower::ServiceExt;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// A Redis URL, or `None` to skip Redis.
    pub redis: Option<String>,
    /// Redis Cluster node URLs, or none to skip the cluster.
    pub redis_cluster: Vec<String>,
    /// A PostgreSQL URL, or `None` to skip PostgreSQL.
    pub postgres: Option<String>,
    /// Requests per throughput measurement.
    pub requests: usize,
    /// Requests in flight.
    pub concurrency: usize,
}

impl Options {
    /// `REDIS_URL`, `REDIS_CLUSTER_NODES`, `DATABASE_URL`, 5,000 requests, 16 in
    /// flight; then `--redis URL`, `--redis-cluster URL,URL,...`, `--postgres URL`,
    /// `--requests N`, `--concurrency C` from `args` (anything else, such as cargo
    /// bench's `--bench`, is ignored).
    pub fn from_env_and_args(args: impl IntoIterator<Item = String>) -> Self {
        let mut options = Options {
            redis: std::env::var("REDIS_URL").ok(),
            redis_cluster: std::env::var("REDIS_CLUSTER_NODES")
                .map(|nodes| split_nodes(&nodes))
                .unwrap_or_default(),
            postgres: std::env::var("DATABASE_URL").ok(),
            requests: 5_000,
            concurrency: 16,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let target = match flag.as_str() {
                "--redis" | "--redis-cluster" | "--postgres" | "--requests" | "--concurrency" => flag,
                _ => continue,
            };
            let value = args.next().unwrap_or_else(|| panic!("{target} needs a value"));
            match target.as_str() {
                "--redis" => options.redis = Some(value),
                "--redis-cluster" => options.redis_cluster = split_nodes(&value),
                "--postgres" => options.postgres = Some(value),
                "--requests" => options.requests = value.parse().expect("--requests N"),
                _ => options.concurrency = value.parse().expect("--concurrency C"),
            }
        }
        options
    }
}

fn split_nodes(nodes: &str) -> Vec<String> {
    nodes
        .split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .map(str::to_owned)
        .collect()
}

fn sessions_on(driver: impl sessionkit::Driver) -> Sessions {
    let mut registry = Registry::new();
    registry.set_secret(Secret::new(*SECRET).expect("32 bytes"));
    registry.register_driver("store", driver).expect("register");
    registry.session_mut("web").expect("built in").driver =
        sessionkit::DriverChoice::named("store").expect("a valid driver name");
    registry.build_with_env(&|_| None).expect("registry builds")
}

/// Runs `requests` requests of one kind, `concurrency` at a time; returns requests/s.
async fn load(
    app: &axum::Router,
    cookie: &HeaderValue,
    method: &'static str,
    path: &'static str,
    requests: usize,
    concurrency: usize,
) -> f64 {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (app, cookie, next) = (app.clone(), cookie.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                    let response = app
                        .clone()
                        .oneshot(request(method, path, Some(cookie.clone())))
                        .await
                        .expect("infallible");
                    assert!(
                        response.status().is_success(),
                        "{method} {path}: {}",
                        response.status()
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    #[allow(clippy::cast_precision_loss)] // a report
    let rate = requests as f64 / start.elapsed().as_secs_f64();
    rate
}

async fn new_session(app: &axum::Router) -> HeaderValue {
    let response = app
        .clone()
        .oneshot(request("POST", "/write", None))
        .await
        .expect("infallible");
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .expect("a first write sets a cookie");
    HeaderValue::from_str(set.to_str().expect("ascii").split(';').next().expect("pair")).expect("header")
}

/// Commands the clients sent, from `INFO commandstats`. Commands a server-side script
/// runs are counted there too, so the script's own calls are subtracted: what is left
/// is one per network round trip.
async fn redis_round_trips(client: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(client)
        .await
        .expect("INFO");
    let calls = |name: &str| -> u64 {
        info.lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    // What the driver sends: HGETALL to load, EVALSHA (EVAL, SCRIPT LOAD after a
    // restart) to save, DEL to delete. HSET, HDEL, EXISTS, TYPE, HKEYS and PEXPIREAT
    // only ever run inside the script.
    ["hgetall", "evalsha", "eval", "script", "del"]
        .iter()
        .map(|c| calls(c))
        .sum()
}

async fn redis(url: &str, o: &Options) {
    let driver = sessionkit_redis::RedisDriver::connect(url)
        .await
        .expect("connect to Redis");
    redis_cases("redis", driver, &[url.to_owned()], o).await;
}

/// On a cluster, round trips are summed over the primaries (replicas replay writes;
/// they answer no client here).
async fn redis_cluster(nodes: &[String], o: &Options) {
    let driver = sessionkit_redis::RedisDriver::connect_cluster(nodes.iter().map(String::as_str))
        .await
        .expect("connect to the Redis Cluster");
    let mut primaries = Vec::new();
    for node in nodes {
        let mut client = plain_client(node).await;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut client).await.expect("ROLE");
        if matches!(role.first(), Some(redis::Value::BulkString(kind)) if kind == b"master") {
            primaries.push(node.clone());
        }
    }
    redis_cases("cluster", driver, &primaries, o).await;
}

async fn plain_client(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// The read and read-write cases through axum, with round trips counted on `servers`.
async fn redis_cases(label: &str, driver: sessionkit_redis::RedisDriver, servers: &[String], o: &Options) {
    let app = sessionkit_routes(sessions_on(driver));
    let cookie = new_session(&app).await;
    let mut clients = Vec::new();
    for url in servers {
        clients.push(plain_client(url).await);
    }
    for (case, method, path) in [("read", "GET", "/read"), ("read-write", "POST", "/write")] {
        for client in &mut clients {
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(client)
                .await
                .expect("RESETSTAT");
        }
        let sample = 200;
        load(&app, &cookie, method, path, sample, 1).await;
        let mut calls = 0;
        for client in &mut clients {
            calls += redis_round_trips(client).await;
        }
        #[allow(clippy::cast_precision_loss)]
        let per_request = calls as f64 / sample as f64;
        let rate = load(&app, &cookie, method, path, o.requests, o.concurrency).await;
        println!("{label:<10} {case:<11} round trips/request {per_request:>5.2}   requests/s {rate:>9.0}");
    }
}

async fn postgres(url: &str, o: &Options) {
    let driver = sessionkit_postgres::PostgresDriver::connect(url)
        .await
        .expect("connect to PostgreSQL");
    driver.migrate().await.expect("migrate");
    let app = sessionkit_routes(sessions_on(driver));
    let cookie = new_session(&app).await;
    let (client, connection) =
        sessionkit_postgres::tokio_postgres::connect(url, sessionkit_postgres::tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    // Statements counted by pg_stat_statements (updated as each statement ends). The
    // extension needs `shared_preload_libraries`; scripts/drivers.sh starts PostgreSQL
    // with it. Without it the count is reported as unavailable.
    let counting = client
        .simple_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .is_ok()
        && client
            .simple_query("SELECT pg_stat_statements_reset()")
            .await
            .is_ok();
    let count = async || -> Option<i64> {
        if !counting {
            return None;
        }
        let row = client
            .query_one(
                "SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements \
                 WHERE query NOT ILIKE '%pg_stat_statements%' AND query NOT ILIKE 'SELECT pg_stat%'",
                &[],
            )
            .await
            .ok()?;
        Some(row.get::<_, i64>(0))
    };
    for (case, method, path) in [("read", "GET", "/read"), ("read-write", "POST", "/write")] {
        let sample = 200;
        let before = count().await;
        load(&app, &cookie, method, path, sample, 1).await;
        let after = count().await;
        #[allow(clippy::cast_precision_loss)]
        let per_request = match (before, after) {
            (Some(b), Some(a)) => format!("{:>5.2}", (a - b) as f64 / sample as f64),
            _ => "  n/a".to_owned(),
        };
        let rate = load(&app, &cookie, method, path, o.requests, o.concurrency).await;
        println!("postgres   {case:<11} round trips/request {per_request}   requests/s {rate:>9.0}");
    }
}

/// Runs the measurements `o` asks for and prints one line per (driver, case).
pub fn run(o: &Options) {
    if o.redis.is_none() && o.redis_cluster.is_empty() && o.postgres.is_none() {
        println!(
            "drivers: set REDIS_URL, REDIS_CLUSTER_NODES and/or DATABASE_URL, or run benches/scripts/drivers.sh"
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if let Some(url) = &o.redis {
            redis(url, o).await;
        }
        if !o.redis_cluster.is_empty() {
            redis_cluster(&o.redis_cluster, o).await;
        }
        if let Some(url) = &o.postgres {
            postgres(url, o).await;
        }
    });
}
