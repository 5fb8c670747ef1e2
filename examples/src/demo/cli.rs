//! Start-up, shared by the four binaries: the command line, the registry on the chosen
//! driver, listening, and reporting what went wrong.

use std::error::Error;
use std::fmt;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sessionkit::{LimitPolicy, Registry, SessionLimit, Sessions};
use tokio::net::TcpListener;

/// The demo's command line.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    about = "The sessionkit demo: an HTML page and a JSON API on two named sessions.",
    long_about = None,
    after_help = "The secret comes from SESSIONKIT_SECRET (random per process in development)."
)]
pub struct Options {
    /// Where to listen.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Where the web and admin sessions live.
    #[arg(long, value_enum, default_value_t = Driver::Memory)]
    pub driver: Driver,
}

/// The session stores the demo can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Driver {
    /// In the server's memory.
    Memory,
    /// Sealed into the cookie itself.
    Cookie,
    /// Redis, at `REDIS_URL`.
    #[value(help = "Redis at REDIS_URL (default redis://127.0.0.1:6379)")]
    Redis,
    /// A Redis Cluster, through the nodes in `REDIS_CLUSTER_NODES`.
    #[value(help = "Redis Cluster through REDIS_CLUSTER_NODES (comma-separated redis:// URLs)")]
    RedisCluster,
    /// PostgreSQL, at `DATABASE_URL`.
    #[value(help = "PostgreSQL at DATABASE_URL")]
    Postgres,
}

impl Driver {
    /// The name the driver is registered under.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Memory => "memory",
            Driver::Cookie => "cookie",
            Driver::Redis => "redis",
            Driver::RedisCluster => "redis-cluster",
            Driver::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A start-up step that failed, with the error that made it fail.
#[derive(Debug, thiserror::Error)]
#[error("{step}")]
pub struct StartupError {
    step: String,
    #[source]
    source: Box<dyn Error>,
}

impl StartupError {
    fn new(step: impl Into<String>, source: impl Into<Box<dyn Error>>) -> Self {
        StartupError {
            step: step.into(),
            source: source.into(),
        }
    }
}

/// How many `web` sessions one user may have in the demo.
pub const WEB_SESSIONS_PER_USER: u32 = 5;

/// Builds the demo's registry on `driver`: the built-in `web` and `admin` sessions,
/// moved to that driver.
///
/// # Errors
/// A missing `DATABASE_URL`, an unreachable store, or a registry that does not build
/// (such as a missing secret in production).
pub async fn build_sessions(driver: Driver) -> Result<Sessions, Box<dyn Error>> {
    let mut registry = Registry::new();
    match driver {
        Driver::Memory | Driver::Cookie => {}
        Driver::Redis => {
            let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
            let store = sessionkit_redis::RedisDriver::connect(&url)
                .await
                .map_err(|err| StartupError::new("cannot connect to Redis (REDIS_URL)", err))?;
            registry.register_driver("redis", store)?;
        }
        Driver::RedisCluster => {
            let nodes = std::env::var("REDIS_CLUSTER_NODES")
                .map_err(|err| StartupError::new("--driver redis-cluster needs REDIS_CLUSTER_NODES", err))?;
            // Any subset of the nodes is enough: the client discovers the rest.
            let nodes: Vec<&str> = nodes
                .split(',')
                .map(str::trim)
                .filter(|node| !node.is_empty())
                .collect();
            let store = sessionkit_redis::RedisDriver::connect_cluster(nodes)
                .await
                .map_err(|err| {
                    StartupError::new("cannot connect to the Redis Cluster (REDIS_CLUSTER_NODES)", err)
                })?;
            registry.register_driver("redis-cluster", store)?;
        }
        Driver::Postgres => {
            let url = std::env::var("DATABASE_URL")
                .map_err(|err| StartupError::new("--driver postgres needs DATABASE_URL", err))?;
            let store = sessionkit_postgres::PostgresDriver::connect(&url)
                .await
                .map_err(|err| StartupError::new("cannot connect to PostgreSQL (DATABASE_URL)", err))?;
            store
                .migrate()
                .await
                .map_err(|err| StartupError::new("cannot create the sessions table", err))?;
            registry.register_driver("postgres", store)?;
        }
    }
    for name in ["web", "admin"] {
        if let Some(def) = registry.session_mut(name) {
            def.driver = sessionkit::DriverChoice::named(driver.name())?;
            if name == "web" {
                // At most 5 signed-in devices per user; a sixth sign-in ends the oldest.
                def.user_limit = Some(SessionLimit::new(
                    NonZeroU32::new(WEB_SESSIONS_PER_USER).unwrap_or(NonZeroU32::MIN),
                    LimitPolicy::EvictOldest,
                ));
            }
        }
    }
    Ok(registry.build()?)
}

/// Runs a demo binary: reads the command line (exiting with status 2 and a usage
/// message on a bad one), builds the sessions, listens, says where, then hands the
/// listener and the sessions to `serve` until it returns. Every failure is
/// [reported](report) and ends the process with status 1.
pub async fn run<F, Fut>(framework: &str, serve: F) -> ExitCode
where
    F: FnOnce(TcpListener, Sessions) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    tracing_subscriber::fmt().with_writer(io::stderr).init();
    let options = Options::parse();
    let started = async {
        let sessions = build_sessions(options.driver).await?;
        let listener = TcpListener::bind(options.addr)
            .await
            .map_err(|err| StartupError::new(format!("cannot listen on {}", options.addr), err))?;
        announce(framework, listener.local_addr()?, options.driver);
        serve(listener, sessions).await?;
        Ok::<_, Box<dyn Error>>(())
    };
    match started.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&*err);
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C: the servers' graceful shutdown.
pub async fn shutdown() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handler: run until killed rather than stop at once.
        std::future::pending::<()>().await;
    }
}

/// Prints `err` and each error in its source chain to stderr, one line each.
pub fn report(err: &dyn Error) {
    let mut out = io::stderr().lock();
    let _ = writeln!(out, "error: {err}");
    for cause in std::iter::successors(err.source(), |&cause| cause.source()) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
}

/// Prints where the demo listens.
fn announce(framework: &str, addr: SocketAddr, driver: Driver) {
    // A closed stdout (`demo-axum | head -1`) must not take the server down, so write
    // errors are ignored rather than panicking as `println!` would.
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "sessionkit demo ({framework}, {driver} driver) listening on http://{addr}"
    );
    if addr.ip().is_loopback() {
        let _ = writeln!(
            out,
            "open http://localhost:{} in a browser (Secure cookies are allowed on localhost)",
            addr.port()
        );
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))
    }

    #[test]
    fn options() {
        Options::command().debug_assert();
        let defaults = parse(&[]).expect("defaults");
        assert_eq!(
            (defaults.addr.to_string().as_str(), defaults.driver),
            ("127.0.0.1:3000", Driver::Memory)
        );
        let o = parse(&["--addr", "127.0.0.1:0", "--driver=cookie"]).expect("ok");
        assert_eq!((o.addr.port(), o.driver.name()), (0, "cookie"));
        assert_eq!(
            parse(&["--driver", "postgres"]).expect("ok").driver,
            Driver::Postgres
        );
        assert_eq!(
            parse(&["--driver", "redis-cluster"]).expect("ok").driver,
            Driver::RedisCluster
        );
        assert!(parse(&["--driver", "mongo"]).is_err());
        assert!(parse(&["--addr", "localhost"]).is_err());
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--nope"]).is_err());
    }

    #[test]
    fn driver_names_are_the_flag_values() {
        for driver in Driver::value_variants() {
            let value = driver.to_possible_value().expect("no variant is skipped");
            assert_eq!(value.get_name(), driver.name());
        }
    }

    #[test]
    fn a_startup_error_keeps_its_source() {
        let err = StartupError::new("cannot listen on 127.0.0.1:1", io::Error::other("in use"));
        assert_eq!(err.to_string(), "cannot listen on 127.0.0.1:1");
        assert_eq!(err.source().map(ToString::to_string).as_deref(), Some("in use"));
    }
}
