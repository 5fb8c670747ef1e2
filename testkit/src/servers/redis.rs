//! A throwaway `redis-server` for tests.
//!
//! Each test binary starts at most one shared server (on a spare loopback port, with no
//! persistence) the first time a test needs it ([`shared_url`]). A watchdog shell holds
//! the read end of a pipe whose write end lives in the test process: however the
//! process ends, the pipe closes and the watchdog kills the server and removes its
//! directory. [`Factory`] runs the conformance suites over it. With `REDIS_URL` set, tests use that server instead. When no server can
//! be had, tests skip with a message, except under `CI`, where they fail
//! ([`unavailable`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sessionkit::{ManualClock, StoreKey};
use sessionkit_conformance::{DriverFactory, TimeSource};
use sessionkit_redis::RedisDriver;

use super::{spare_port, unavailable};

/// A `redis-server` process owned by the test process.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    /// More `redis-server` arguments (a cluster node's).
    args: Vec<String>,
    watchdog: Option<(Child, ChildStdin)>,
}

impl RedisServer {
    /// Starts a server on a spare loopback port.
    ///
    /// # Errors
    /// Why no server could be started (not installed, no port, did not answer).
    pub fn start() -> Result<Self, String> {
        Self::start_with(&[])
    }

    /// Starts a server on a spare loopback port with more `redis-server` arguments
    /// (paths in them may use `{dir}`, the server's own directory).
    ///
    /// # Errors
    /// As [`RedisServer::start`].
    pub fn start_with(args: &[&str]) -> Result<Self, String> {
        let version = Command::new("redis-server")
            .arg("--version")
            .output()
            .map_err(|e| format!("redis-server is not installed ({e}); `apt-get install -y redis-server`"))?;
        if !version.status.success() {
            return Err("`redis-server --version` failed".to_owned());
        }
        let mut last = String::new();
        for _ in 0..5 {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("sessionkit-redis-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            // A cluster node also listens on its port + 10000 (the cluster bus).
            let mut port = spare_port()?;
            if args.contains(&"--cluster-enabled") {
                for _ in 0..100 {
                    if port <= 55_535 {
                        break;
                    }
                    port = spare_port()?;
                }
            }
            let mut server = RedisServer {
                port,
                args: args
                    .iter()
                    .map(|arg| arg.replace("{dir}", &dir.display().to_string()))
                    .collect(),
                dir,
                watchdog: None,
            };
            server.arm_watchdog()?;
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.join("redis.pid")
    }

    fn arm_watchdog(&mut self) -> Result<(), String> {
        let script = format!(
            "read _; kill -9 \"$(cat '{pid}' 2>/dev/null)\" 2>/dev/null; rm -rf '{dir}'",
            pid = self.pidfile().display(),
            dir = self.dir.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog shell: {e}"))?;
        let stdin = child.stdin.take().ok_or("watchdog without stdin")?;
        self.watchdog = Some((child, stdin));
        Ok(())
    }

    /// Starts (or restarts) the server process on this server's port and waits until
    /// it answers `PING`.
    ///
    /// # Errors
    /// Why the server did not start, with its log.
    pub fn launch(&mut self) -> Result<(), String> {
        let _ = std::fs::remove_file(self.pidfile());
        let status = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(self.pidfile())
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .args(&self.args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        if !status.success() {
            return Err(format!("redis-server exited with {status}"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        self.kill();
        Err(format!(
            "redis-server on port {} did not answer:\n{log}",
            self.port
        ))
    }

    fn pid(&self) -> Option<String> {
        let pid = std::fs::read_to_string(self.pidfile()).ok()?;
        let pid = pid.trim();
        (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then(|| pid.to_owned())
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args([signal, &pid]).status();
        }
    }

    /// Kills the server abruptly (SIGKILL) and waits until the port is closed.
    pub fn kill(&mut self) {
        self.signal("-KILL");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen server.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin); // the watchdog reads EOF and cleans up
            let _ = child.wait();
        }
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// The URL of the server shared by this test binary: `REDIS_URL`, or a server started
/// on first use. `None` (after a message) when there is none and we are not in CI.
pub fn shared_url() -> Option<String> {
    static SERVER: OnceLock<Result<RedisServer, String>> = OnceLock::new();
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Some(url);
    }
    match SERVER.get_or_init(RedisServer::start) {
        Ok(server) => Some(server.url()),
        Err(why) => unavailable("Redis", why),
    }
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    let n: u64 = rand::random();
    format!("sessionkit-test:{n:016x}:")
}

/// A server of the test's own (for tests that stop it or read its statistics), or
/// `None` to skip.
pub fn own_server() -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(server) => Some(server),
        Err(why) => unavailable("Redis", &why),
    }
}

/// The conformance factory: a driver with a prefix of its own per test.
pub struct Factory {
    url: String,
}

impl Factory {
    /// The factory over the shared server, or `None` to skip.
    pub fn new() -> Option<Self> {
        shared_url().map(|url| Factory { url })
    }

    /// A plain client connection for poking at the store directly.
    ///
    /// # Panics
    /// When the test server cannot be reached.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection")
    }

    /// A driver with a key prefix of its own.
    ///
    /// # Panics
    /// When the driver cannot connect to the test server.
    pub async fn driver(&self) -> RedisDriver {
        RedisDriver::builder(&self.url)
            .prefix(unique_prefix())
            .connect()
            .await
            .expect("connect to the test server")
    }
}

impl DriverFactory for Factory {
    type Driver = RedisDriver;

    async fn build(&self, _clock: &ManualClock) -> RedisDriver {
        self.driver().await
    }

    fn time(&self) -> TimeSource {
        TimeSource::Real
    }

    /// The driver's `rotate` leaves forwards for the grace window.
    fn grace_window(&self) -> bool {
        true
    }

    /// The driver keeps per-user indexes (`user_sessions`).
    fn user_index(&self) -> bool {
        true
    }

    /// The driver deletes whole namespaces (`delete_namespace`).
    fn namespace_delete(&self) -> bool {
        true
    }

    async fn corrupt(&self, driver: &RedisDriver, key: &StoreKey) -> bool {
        corrupt(&mut self.raw().await, driver, key).await
    }
}

/// Writes a session hash under `key` whose data field is not JSON (the conformance
/// suite's corrupt record), over any connection (one server's or a cluster's).
///
/// # Panics
/// When the write fails.
pub async fn corrupt(
    raw: &mut impl redis::aio::ConnectionLike,
    driver: &RedisDriver,
    key: &StoreKey,
) -> bool {
    redis::cmd("HSET")
        .arg(driver.redis_key(key))
        .arg(&["v", "1", "created", "1", "seen", "1", "d:user", "{not json"])
        .exec_async(raw)
        .await
        .expect("HSET");
    true
}

/// The Redis [`Factory`](crate::servers::redis::Factory), or an early `return` from
/// the enclosing test (a skip) when there is no server and we are not in CI.
#[macro_export]
macro_rules! redis_factory {
    () => {{
        let Some(factory) = $crate::servers::redis::Factory::new() else {
            return;
        };
        factory
    }};
}
