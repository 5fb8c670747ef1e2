//! Starts each demo binary and exercises the JSON API over HTTP: sign-in, data, flash,
//! admin mode, sign-out and the old cookie being rejected afterwards, and bad input.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::{Value, json};
use sessionkit_conformance::Jar;
use sessionkit_conformance::http::{Response, request, request_with};

struct Demo {
    child: Child,
    addr: SocketAddr,
    // Kept open: the demo prints more after its URL, and a closed pipe would make that
    // `println!` panic and take the server down mid-test.
    _stdout: BufReader<ChildStdout>,
}

impl Demo {
    fn start(binary: &str, driver: &str) -> Demo {
        Demo::start_with(binary, driver, &[])
    }

    /// Starts a demo with extra environment variables (`REDIS_URL`, `DATABASE_URL`).
    fn start_with(binary: &str, driver: &str, env: &[(&str, String)]) -> Demo {
        let mut child = Command::new(binary)
            .args(["--addr", "127.0.0.1:0", "--driver", driver])
            .env("SESSIONKIT_SECRET", "demo test secret, at least 32 bytes long")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the demo prints its URL");
        let url = line
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        let addr = url
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad address in {line:?}"));
        Demo {
            child,
            addr,
            _stdout: stdout,
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Browser {
    addr: SocketAddr,
    jar: Jar,
}

impl Browser {
    async fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> Response {
        let response = request(self.addr, method, path, Some(&self.jar.header()), body).await;
        for cookie in response.set_cookies() {
            self.jar.apply(cookie);
        }
        response
    }

    async fn json(&mut self, method: &str, path: &str, body: Option<&str>) -> Value {
        let response = self.send(method, path, body).await;
        assert_eq!(response.status, 200, "{method} {path}: {response:?}");
        serde_json::from_str(&response.body).expect("JSON")
    }
}

async fn exercise(binary: &str, driver: &str) {
    let demo = Demo::start(binary, driver);
    let mut b = Browser {
        addr: demo.addr,
        jar: Jar::default(),
    };

    let fresh = b.send("GET", "/api/session", None).await;
    assert!(
        fresh.set_cookies().is_empty(),
        "reading a new session sets nothing"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&fresh.body).expect("JSON"),
        json!({"user": null, "visits": 0, "admin": false})
    );

    assert_eq!(b.json("POST", "/api/visit", None).await, json!({"visits": 1}));
    assert_eq!(b.json("POST", "/api/visit", None).await, json!({"visits": 2}));
    let before_login = b.jar.get("__Host-web").expect("web cookie").to_owned();

    // Remember me: a persistent cookie with `true`, a browser-session cookie otherwise.
    for (body, persistent) in [
        (r#"{"user": "ada", "remember": true}"#, true),
        (r#"{"user": "ada", "remember": false}"#, false),
    ] {
        let mut other = Browser {
            addr: demo.addr,
            jar: Jar::default(),
        };
        let login = other.send("POST", "/api/login", Some(body)).await;
        assert_eq!(login.status, 200, "{login:?}");
        let web = login
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("__Host-web="))
            .expect("a web cookie");
        assert_eq!(web.contains("Max-Age="), persistent, "{body}: {web}");
    }
    let login = b.send("POST", "/api/login", Some(r#"{"user": "ada"}"#)).await;
    assert_eq!(
        serde_json::from_str::<Value>(&login.body).expect("JSON"),
        json!({"user": "ada", "remember": false})
    );
    assert!(
        login.set_cookies().iter().all(|c| !c.contains("Max-Age=")),
        "without remember: a browser-session cookie: {login:?}"
    );
    let signed_in = b.jar.get("__Host-web").expect("web cookie").to_owned();
    assert_ne!(before_login, signed_in, "sign-in regenerates the id");
    assert_eq!(
        b.json("GET", "/api/session", None).await,
        json!({"user": "ada", "visits": 2, "admin": false})
    );
    let mut pre_login = Jar::default();
    pre_login.set("__Host-web", &before_login);
    if driver != "cookie" {
        let old = request(b.addr, "GET", "/api/session", Some(&pre_login.header()), None).await;
        assert_eq!(
            serde_json::from_str::<Value>(&old.body).expect("JSON")["user"],
            Value::Null,
            "the pre-login id is dead"
        );
    }

    assert_eq!(
        b.send("PUT", "/api/data/color", Some(r#"{"name": "blue"}"#))
            .await
            .status,
        204
    );
    assert_eq!(
        b.json("GET", "/api/data/color", None).await,
        json!({"name": "blue"})
    );
    assert_eq!(b.send("DELETE", "/api/data/color", None).await.status, 204);
    assert_eq!(b.send("GET", "/api/data/color", None).await.status, 404);

    assert_eq!(
        b.send("POST", "/api/flash", Some(r#"{"message": "hello"}"#))
            .await
            .status,
        204
    );
    assert_eq!(
        b.json("GET", "/api/flash", None).await,
        json!({"messages": ["hello"]})
    );
    assert_eq!(b.json("GET", "/api/flash", None).await, json!({"messages": []}));

    assert_eq!(
        b.json("POST", "/api/admin/enter", None).await,
        json!({"admin": true})
    );
    assert!(b.jar.get("__Host-admin").is_some());
    assert_eq!(b.json("GET", "/api/session", None).await["admin"], true);
    assert_eq!(
        b.json("POST", "/api/admin/leave", None).await,
        json!({"admin": false})
    );
    assert!(
        b.jar.get("__Host-admin").is_none(),
        "leaving admin mode removes its cookie"
    );

    let old = b.jar.clone();
    let logout = b.send("POST", "/api/logout", None).await;
    assert_eq!(logout.status, 204);
    assert!(
        logout
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-web=;") && c.contains("Max-Age=0")),
        "{logout:?}"
    );
    assert!(b.jar.get("__Host-web").is_none());
    // On every driver: cookie sessions through the revocation store.
    let replay = request(b.addr, "GET", "/api/session", Some(&old.header()), None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&replay.body).expect("JSON")["user"],
        Value::Null,
        "the old cookie is rejected after sign-out"
    );

    // Bad input: a 4xx with a message, and the server carries on.
    let cases: [(&str, &str, Option<&str>, u16); 7] = [
        ("POST", "/api/login", Some("{not json"), 400),
        ("POST", "/api/login", Some(r#"{"name": "x"}"#), 422),
        ("POST", "/api/login", Some(r#"{"user": ""}"#), 422),
        (
            "POST",
            "/api/login",
            Some(r#"{"user": "ada", "remember": "yes"}"#),
            422,
        ),
        ("POST", "/api/flash", Some("[1, 2]"), 400),
        ("PUT", "/api/data/bad%20key", Some("1"), 400),
        ("GET", "/nowhere", None, 404),
    ];
    for (method, path, body, status) in cases {
        let r = b.send(method, path, body).await;
        assert_eq!(r.status, status, "{method} {path}: {r:?}");
        assert!(r.body.contains("error"), "{method} {path} explains itself: {r:?}");
    }
    let huge = format!(r#"{{"message": "{}"}}"#, "x".repeat(20_000));
    let r = b.send("POST", "/api/flash", Some(&huge)).await;
    assert_eq!(r.status, 413, "oversize body: {r:?}");
    // Values the session refuses (nested deeper than sessionkit's limit) are the
    // client's error, and what is accepted loads back, NUL included.
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let r = b.send("PUT", "/api/data/deep", Some(&deep)).await;
    assert_eq!(r.status, 422, "too deep: {r:?}");
    assert!(r.body.contains("nest"), "{r:?}");
    let r = b.send("PUT", "/api/data/nul", Some(r#""a\u0000b""#)).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(b.json("GET", "/api/data/nul", None).await, json!("a\u{0}b"));

    // The HTML side.
    let page = b.send("GET", "/", None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("sessionkit demo") && page.body.contains("visits in this session"));
    let login = b.send("POST", "/login", Some("user=Grace+Hopper")).await;
    assert_eq!((login.status, login.header("location")), (303, Some("/")));
    let page = b.send("GET", "/", None).await;
    assert!(
        page.body.contains("Signed in as <strong>Grace Hopper</strong>")
            && page.body.contains("Signed in as Grace Hopper."),
        "{}",
        page.body
    );
}

/// One browser of a user: its own cookie jar and `User-Agent`.
struct Device {
    addr: SocketAddr,
    jar: Jar,
    agent: &'static str,
}

impl Device {
    async fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> Response {
        let headers = [("User-Agent", self.agent)];
        let response = request_with(self.addr, method, path, Some(&self.jar.header()), &headers, body).await;
        for cookie in response.set_cookies() {
            self.jar.apply(cookie);
        }
        response
    }

    async fn sign_in(addr: SocketAddr, user: &str, agent: &'static str) -> Device {
        let mut device = Device {
            addr,
            jar: Jar::default(),
            agent,
        };
        let body = format!(r#"{{"user": "{user}"}}"#);
        let r = device.send("POST", "/api/login", Some(&body)).await;
        assert_eq!(r.status, 200, "{r:?}");
        device
    }

    async fn user(&mut self) -> Value {
        let r = self.send("GET", "/api/session", None).await;
        serde_json::from_str::<Value>(&r.body).expect("JSON")["user"].clone()
    }

    async fn sessions(&mut self) -> Vec<Value> {
        let r = self.send("GET", "/api/sessions", None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let body: Value = serde_json::from_str(&r.body).expect("JSON");
        body["sessions"].as_array().expect("a list").clone()
    }
}

/// A user's devices over HTTP: two devices list each other with labels; another
/// user's handle is 404; ending the other device, all others, and every device each
/// work; a sixth sign-in ends the oldest; anonymous is 401.
async fn devices(binary: &str, driver: &str) {
    let demo = Demo::start(binary, driver);
    devices_on(&demo, "").await;
}

/// The device flow on a running demo; `tag` makes the user names unique when demos
/// share a store.
async fn devices_on(demo: &Demo, tag: &str) {
    let (ada, bob_name, grace) = (format!("ada{tag}"), format!("bob{tag}"), format!("grace{tag}"));
    let mut anonymous = Device {
        addr: demo.addr,
        jar: Jar::default(),
        agent: "curl",
    };
    assert_eq!(anonymous.send("GET", "/api/sessions", None).await.status, 401);
    assert_eq!(
        anonymous
            .send("POST", "/api/logout-everywhere", None)
            .await
            .status,
        401
    );

    let mut laptop = Device::sign_in(demo.addr, &ada, "Firefox on Linux").await;
    let mut phone = Device::sign_in(demo.addr, &ada, "Safari on iOS").await;
    let mut bob = Device::sign_in(demo.addr, &bob_name, "Chrome").await;
    let list = laptop.sessions().await;
    assert_eq!(list.len(), 2, "{list:?}");
    let labels: Vec<&str> = list.iter().map(|s| s["label"].as_str().expect("label")).collect();
    assert_eq!(labels, ["Firefox on Linux", "Safari on iOS"]);
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[1]["current"], false);
    for field in ["handle", "created", "last_seen"] {
        assert!(!list[1][field].is_null(), "{field}: {list:?}");
    }
    let phone_handle = list[1]["handle"].as_str().expect("handle").to_owned();
    let phone_view = phone.sessions().await;
    assert_eq!(phone_view.len(), 2, "the phone lists the laptop too");

    let r = bob
        .send("DELETE", &format!("/api/sessions/{phone_handle}"), None)
        .await;
    assert_eq!(r.status, 404, "another user's handle: {r:?}");
    assert_eq!(
        bob.send("DELETE", "/api/sessions/garbage", None).await.status,
        404
    );
    assert_eq!(phone.user().await, ada.as_str());

    let r = laptop
        .send("DELETE", &format!("/api/sessions/{phone_handle}"), None)
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(phone.user().await, Value::Null, "the ended device is signed out");
    assert_eq!(laptop.user().await, ada.as_str());

    let mut phone = Device::sign_in(demo.addr, &ada, "Safari on iOS").await;
    let mut tablet = Device::sign_in(demo.addr, &ada, "Tablet").await;
    assert_eq!(
        laptop
            .send("POST", "/api/sessions/revoke-others", None)
            .await
            .status,
        204
    );
    assert_eq!(phone.user().await, Value::Null);
    assert_eq!(tablet.user().await, Value::Null);
    assert_eq!(laptop.sessions().await.len(), 1);

    let mut phone = Device::sign_in(demo.addr, &ada, "Safari on iOS").await;
    let copied = laptop.jar.clone();
    let r = phone.send("POST", "/api/logout-everywhere", None).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(phone.user().await, Value::Null);
    assert_eq!(laptop.user().await, Value::Null);
    let replay = request(demo.addr, "GET", "/api/session", Some(&copied.header()), None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&replay.body).expect("JSON")["user"],
        Value::Null,
        "a copied pre-logout cookie loads nothing"
    );
    assert_eq!(bob.user().await, bob_name.as_str(), "other users are untouched");

    // A sixth sign-in ends the oldest of five.
    let mut first = Device::sign_in(demo.addr, &grace, "device 1").await;
    let mut others = Vec::new();
    for _ in 1..sessionkit_examples::demo::WEB_SESSIONS_PER_USER {
        others.push(Device::sign_in(demo.addr, &grace, "another").await);
    }
    assert_eq!(first.user().await, grace.as_str());
    let mut sixth = Device::sign_in(demo.addr, &grace, "device 6").await;
    assert_eq!(first.user().await, Value::Null, "the oldest was ended");
    assert_eq!(sixth.sessions().await.len(), 5);
    for device in &mut others {
        assert_eq!(device.user().await, grace.as_str());
    }

    // The page lists the devices with sign-out buttons.
    let page = sixth.send("GET", "/", None).await;
    assert!(
        page.body.contains("Your devices")
            && page.body.contains("device 6")
            && page.body.contains("/logout-everywhere"),
        "{}",
        page.body
    );
}

/// The device flow through every adapter's demo on a store several demos share
/// (one after the other, each with user names of its own).
async fn devices_on_shared_store(driver: &str, url_var: &str, url: Option<String>) {
    let Some(url) = url else {
        return; // not in CI and no server: the testkit said why
    };
    let binaries = [
        env!("CARGO_BIN_EXE_demo-axum"),
        env!("CARGO_BIN_EXE_demo-warp"),
        env!("CARGO_BIN_EXE_demo-poem"),
        env!("CARGO_BIN_EXE_demo-actix"),
    ];
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (n, binary) in binaries.into_iter().enumerate() {
        let demo = Demo::start_with(binary, driver, &[(url_var, url.clone())]);
        devices_on(&demo, &format!("-{run:x}-{n}")).await;
    }
}

#[tokio::test]
async fn every_demo_devices_on_redis() {
    devices_on_shared_store(
        "redis",
        "REDIS_URL",
        sessionkit_testkit::servers::redis::shared_url(),
    )
    .await;
}

#[tokio::test]
async fn every_demo_devices_on_redis_cluster() {
    devices_on_shared_store(
        "redis-cluster",
        "REDIS_CLUSTER_NODES",
        sessionkit_testkit::servers::redis_cluster::shared_nodes().map(|nodes| nodes.join(",")),
    )
    .await;
}

#[tokio::test]
async fn every_demo_devices_on_postgres() {
    devices_on_shared_store(
        "postgres",
        "DATABASE_URL",
        sessionkit_testkit::servers::postgres::shared_url(),
    )
    .await;
}

macro_rules! device_tests {
    ($($name:ident: $bin:literal, $driver:literal;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                devices(env!(concat!("CARGO_BIN_EXE_", $bin)), $driver).await;
            }
        )*
    };
}

device_tests! {
    axum_memory_devices: "demo-axum", "memory";
    warp_memory_devices: "demo-warp", "memory";
    poem_memory_devices: "demo-poem", "memory";
    axum_cookie_devices: "demo-axum", "cookie";
    warp_cookie_devices: "demo-warp", "cookie";
    poem_cookie_devices: "demo-poem", "cookie";
}

macro_rules! demo_tests {
    ($($name:ident: $bin:literal, $driver:literal;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                exercise(env!(concat!("CARGO_BIN_EXE_", $bin)), $driver).await;
            }
        )*
    };
}

demo_tests! {
    axum_memory: "demo-axum", "memory";
    axum_cookie: "demo-axum", "cookie";
    warp_memory: "demo-warp", "memory";
    warp_cookie: "demo-warp", "cookie";
    poem_memory: "demo-poem", "memory";
    poem_cookie: "demo-poem", "cookie";
    actix_memory: "demo-actix", "memory";
    actix_cookie: "demo-actix", "cookie";
}

/// Start-up errors are printed with their message and causes (what to set, the 32-byte
/// minimum), not as a `Debug` dump, and the demo exits with status 1.
#[test]
fn production_start_up_errors_say_what_to_set() {
    for bin in [
        env!("CARGO_BIN_EXE_demo-axum"),
        env!("CARGO_BIN_EXE_demo-warp"),
        env!("CARGO_BIN_EXE_demo-poem"),
        env!("CARGO_BIN_EXE_demo-actix"),
    ] {
        for (app_env, secret) in [
            ("production", None),
            ("staging", None),
            ("production", Some("too short")),
            ("prod-eu", Some("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")),
        ] {
            let mut command = Command::new(bin);
            command
                .args(["--addr", "127.0.0.1:0"])
                .env("APP_ENV", app_env)
                .env_remove("SESSIONKIT_SECRET")
                .env_remove("APP_SECRET")
                .env_remove("SESSIONKIT_PREVIOUS_SECRETS");
            if let Some(secret) = secret {
                command.env("SESSIONKIT_SECRET", secret);
            }
            let output = command.output().unwrap_or_else(|e| panic!("start {bin}: {e}"));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{bin} {app_env} {secret:?}: {stderr}"
            );
            assert!(
                stderr.contains("SESSIONKIT_SECRET") && stderr.contains("32"),
                "{bin} {app_env} {secret:?}: {stderr}"
            );
            assert!(
                !stderr.contains("MissingSecret") && !stderr.contains("WeakSecret"),
                "Display, not Debug: {stderr}"
            );
            if let Some(secret) = secret {
                assert!(!stderr.contains(secret), "the secret is never printed: {stderr}");
            }
        }
    }
}
