//! A throwaway PostgreSQL cluster for tests.
//!
//! Each test binary creates at most one shared cluster (`initdb` into a temporary
//! directory, `pg_ctl start` on a spare loopback port, Unix socket in the same
//! directory) the first time a test needs it ([`shared_url`]). `initdb` refuses to run
//! as root, so as root the cluster belongs to the `postgres` system user. A watchdog
//! shell holds the read end of a pipe whose write end lives in the test process:
//! however the process ends, the pipe closes and the watchdog stops the server and
//! removes its directory. [`Factory`] runs the conformance suites over it. With
//! `DATABASE_URL` set, tests use that database instead
//! (creating uniquely named tables in it). When no server can be had, tests skip with
//! a message, except under `CI`, where they fail ([`unavailable`]).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sessionkit::{ManualClock, StoreKey};
use sessionkit_conformance::{DriverFactory, TimeSource};
use sessionkit_postgres::PostgresDriver;
use sessionkit_postgres::tokio_postgres::{self, NoTls};

use super::{spare_port, unavailable};

/// A PostgreSQL cluster owned by the test process.
pub struct PgServer {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    watchdog: Option<(Child, ChildStdin)>,
}

/// The directory holding `initdb` and `pg_ctl`: `PG_BIN`, the newest
/// `/usr/lib/postgresql/*/bin`, or the `PATH`.
fn find_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let path = String::from_utf8_lossy(&on_path.stdout).trim().to_owned();
    match Path::new(&path).parent() {
        Some(dir) if on_path.status.success() && !path.is_empty() => Ok(dir.to_owned()),
        _ => Err("PostgreSQL is not installed (no initdb); `apt-get install -y postgresql`".to_owned()),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

impl PgServer {
    /// Creates and starts a cluster on a spare loopback port.
    ///
    /// # Errors
    /// Why no cluster could be had (not installed, `initdb` or `pg_ctl` failed).
    pub fn start() -> Result<Self, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let bin = find_bin()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sessionkit-pg-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("sock")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut server = PgServer {
            port: spare_port()?,
            dir,
            bin,
            as_postgres: is_root(),
            watchdog: None,
        };
        server.arm_watchdog()?;
        if server.as_postgres {
            Self::run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&server.dir),
            )?;
        }
        let mut initdb = server.tool("initdb");
        Self::run(
            initdb
                .arg("-D")
                .arg(server.dir.join("data"))
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"])
                .args(["--no-sync", "--no-instructions"]),
        )?;
        let mut last = String::new();
        for _ in 0..5 {
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(why) => {
                    last = why;
                    server.port = spare_port()?;
                }
            }
        }
        Err(last)
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn run(cmd: &mut Command) -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed with {}:\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn arm_watchdog(&mut self) -> Result<(), String> {
        let runuser = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "read _; {runuser}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.dir.join("data").display(),
            dir = self.dir.display(),
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

    /// Starts (or restarts) the server on this server's port; returns once it accepts
    /// connections.
    ///
    /// # Errors
    /// Why `pg_ctl start` failed, with the server log.
    pub fn launch(&mut self) -> Result<(), String> {
        let options = format!(
            // No fsync (the machine does not crash under the tests), but commits reach
            // the WAL at once, so an immediate stop (a crash) keeps them.
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200 -c fsync=off \
             -c full_page_writes=off",
            self.port,
            self.dir.join("sock").display()
        );
        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "30", "-o", &options, "start"]);
        Self::run(&mut pg_ctl).map_err(|why| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            format!("{why}\n{log}")
        })
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no clean shutdown).
    pub fn stop(&mut self) {
        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"]);
        let _ = Self::run(&mut pg_ctl);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A connection string for the `postgres` database.
    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin); // the watchdog reads EOF and cleans up
            let _ = child.wait();
        }
    }
}

/// The connection string of the database shared by this test binary: `DATABASE_URL`,
/// or a cluster started on first use. `None` (after a message) when there is none and
/// we are not in CI.
pub fn shared_url() -> Option<String> {
    static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Some(url);
    }
    match SERVER.get_or_init(PgServer::start) {
        Ok(server) => Some(server.url()),
        Err(why) => unavailable("PostgreSQL", why),
    }
}

/// A cluster of the test's own (for tests that stop it), or `None` to skip.
pub fn own_server() -> Option<PgServer> {
    match PgServer::start() {
        Ok(server) => Some(server),
        Err(why) => unavailable("PostgreSQL", &why),
    }
}

/// A table name no other test uses.
pub fn unique_table() -> String {
    let n: u64 = rand::random();
    format!("sessionkit_test_{n:016x}")
}

/// A plain client, for poking at the database directly. Needs a Tokio runtime (the
/// connection runs on a spawned task).
pub async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("raw connection");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The conformance factory: a driver over a fresh table per test.
pub struct Factory {
    /// The connection string of the database.
    pub url: String,
}

impl Factory {
    /// The factory over the shared database, or `None` to skip.
    pub fn new() -> Option<Self> {
        shared_url().map(|url| Factory { url })
    }

    /// A migrated driver over a fresh table.
    ///
    /// # Panics
    /// When the driver cannot connect to or migrate the test database.
    pub async fn driver(&self) -> PostgresDriver {
        let driver = PostgresDriver::builder(&self.url)
            .table(unique_table())
            .pool_size(8)
            .connect()
            .await
            .expect("connect to the test database");
        driver.migrate().await.expect("migrate");
        driver
    }
}

impl DriverFactory for Factory {
    type Driver = PostgresDriver;

    async fn build(&self, _clock: &ManualClock) -> PostgresDriver {
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

    async fn corrupt(&self, driver: &PostgresDriver, key: &StoreKey) -> bool {
        let client = raw(&self.url).await;
        let sql = format!(
            "INSERT INTO \"{}\" (namespace, store_key, data, created_at, last_seen, expires_at) \
             VALUES ($1, $2, '[\"not\", \"an object\"]'::jsonb, now(), now(), now() + interval '1 hour')",
            driver.table()
        );
        client
            .execute(&sql, &[&key.namespace().as_str(), &&key.digest()[..]])
            .await
            .expect("insert a corrupt row");
        true
    }
}

/// The PostgreSQL [`Factory`](crate::servers::postgres::Factory), or an early
/// `return` from the enclosing test (a skip) when there is no database and we are not
/// in CI.
#[macro_export]
macro_rules! postgres_factory {
    () => {{
        let Some(factory) = $crate::servers::postgres::Factory::new() else {
            return;
        };
        factory
    }};
}
