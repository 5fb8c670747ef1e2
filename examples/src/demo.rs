//! The demo app, written once and served by `demo-axum`, `demo-warp` and `demo-poem`.
//!
//! Each binary only routes requests, extracts the `web` and `admin` sessions with its
//! adapter, hands the raw body to the functions here and turns the [`DemoResponse`]
//! into its framework's response. So the three demos behave identically, down to the
//! error messages.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde_json::{Value, json};
use sessionkit::{Registry, Session, Sessions};

/// The largest request body the demo accepts.
pub const MAX_BODY: usize = 16 * 1024;
const MAX_USER: usize = 64;
const MAX_KEY: usize = 64;
const DATA_PREFIX: &str = "data.";

/// What a demo handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`, if there is a body.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: String,
    /// A `Location` for redirects.
    pub location: Option<&'static str>,
}

impl DemoResponse {
    fn json(status: u16, value: &Value) -> Self {
        DemoResponse {
            status,
            content_type: Some("application/json"),
            body: value.to_string(),
            location: None,
        }
    }

    fn no_content() -> Self {
        DemoResponse {
            status: 204,
            content_type: None,
            body: String::new(),
            location: None,
        }
    }

    fn redirect_home() -> Self {
        DemoResponse {
            status: 303,
            content_type: None,
            body: String::new(),
            location: Some("/"),
        }
    }

    /// A 4xx with a JSON `{"error": message}` body.
    pub fn client_error(status: u16, message: &str) -> Self {
        Self::json(status, &json!({ "error": message }))
    }

    fn html(body: String) -> Self {
        DemoResponse {
            status: 200,
            content_type: Some("text/html; charset=utf-8"),
            body,
            location: None,
        }
    }
}

/// A failed demo handler: a bad request (4xx, answered by the demo) or a session error
/// (answered by the adapter's error mapping).
#[derive(Debug)]
pub enum DemoError {
    /// The client sent something wrong.
    BadRequest(DemoResponse),
    /// sessionkit failed (store down, ...).
    Session(sessionkit::Error),
}

impl From<sessionkit::Error> for DemoError {
    fn from(error: sessionkit::Error) -> Self {
        DemoError::Session(error)
    }
}

/// A demo handler's result.
pub type DemoResult = Result<DemoResponse, DemoError>;

fn bad(status: u16, message: &str) -> DemoError {
    DemoError::BadRequest(DemoResponse::client_error(status, message))
}

fn parse_json(body: &[u8]) -> Result<serde_json::Map<String, Value>, DemoError> {
    if body.len() > MAX_BODY {
        return Err(bad(413, &format!("request body over {MAX_BODY} bytes")));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad(400, "expected a JSON object")),
        Err(err) => Err(bad(400, &format!("malformed JSON: {err}"))),
    }
}

fn string_field(map: &serde_json::Map<String, Value>, field: &str) -> Result<String, DemoError> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(422, &format!("field `{field}` must be a string"))),
        None => Err(bad(422, &format!("missing field `{field}`"))),
    }
}

fn valid_user(user: &str) -> Result<String, DemoError> {
    let user = user.trim();
    if user.is_empty() || user.chars().count() > MAX_USER || user.chars().any(char::is_control) {
        return Err(bad(
            422,
            &format!("`user` must be 1 to {MAX_USER} printable characters"),
        ));
    }
    Ok(user.to_owned())
}

fn valid_key(key: &str) -> Result<String, DemoError> {
    if key.is_empty()
        || key.len() > MAX_KEY
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(bad(
            400,
            &format!("keys are 1 to {MAX_KEY} characters from A-Z a-z 0-9 - _ ."),
        ));
    }
    Ok(format!("{DATA_PREFIX}{key}"))
}

fn visits(web: &Session) -> Result<u64, sessionkit::Error> {
    Ok(web.get::<u64>("visits")?.unwrap_or(0))
}

fn admin_on(admin: &Session) -> Result<bool, sessionkit::Error> {
    Ok(admin.get::<bool>("admin")?.unwrap_or(false))
}

/// `GET /`: counts the visit, shows the page, consumes flash messages.
///
/// # Errors
/// Session errors.
pub fn page(web: &Session, admin: &Session) -> DemoResult {
    let visits = visits(web)? + 1;
    web.insert("visits", &visits)?;
    let user = web.get::<String>("user")?;
    let flashes: Vec<String> = web.take_flashes()?;
    Ok(DemoResponse::html(render(
        user.as_deref(),
        visits,
        admin_on(admin)?,
        &flashes,
    )))
}

/// `POST /login` with form field `user`: regenerates the id and signs in.
///
/// # Errors
/// 422 for a missing or invalid name; session errors.
pub fn form_login(web: &Session, form: &[u8]) -> DemoResult {
    let user = form_field(form, "user").ok_or_else(|| bad(422, "missing form field `user`"))?;
    let user = valid_user(&user)?;
    sign_in(web, &user)?;
    web.flash(&format!("Signed in as {user}."))?;
    Ok(DemoResponse::redirect_home())
}

fn sign_in(web: &Session, user: &str) -> Result<(), sessionkit::Error> {
    // A privilege change: a new id against session fixation.
    web.regenerate()?;
    web.insert("user", user)
}

/// `POST /logout`: ends the `web` session, then leaves a flash in a fresh one.
///
/// # Errors
/// Session errors.
pub fn form_logout(web: &Session) -> DemoResult {
    web.destroy()?;
    web.flash("Signed out.")?;
    Ok(DemoResponse::redirect_home())
}

/// `POST /admin/enter`.
///
/// # Errors
/// Session errors.
pub fn form_admin_enter(web: &Session, admin: &Session) -> DemoResult {
    admin.insert("admin", &true)?;
    web.flash("Admin mode on (its own session, with a 15 minute idle timeout).")?;
    Ok(DemoResponse::redirect_home())
}

/// `POST /admin/leave`.
///
/// # Errors
/// Session errors.
pub fn form_admin_leave(web: &Session, admin: &Session) -> DemoResult {
    admin.destroy()?;
    web.flash("Admin mode off.")?;
    Ok(DemoResponse::redirect_home())
}

/// `GET /api/session`: `{"user", "visits", "admin"}`; changes nothing.
///
/// # Errors
/// Session errors.
pub fn api_session(web: &Session, admin: &Session) -> DemoResult {
    Ok(DemoResponse::json(
        200,
        &json!({ "user": web.get::<String>("user")?, "visits": visits(web)?, "admin": admin_on(admin)? }),
    ))
}

/// `POST /api/visit`: `{"visits": n}`.
///
/// # Errors
/// Session errors.
pub fn api_visit(web: &Session) -> DemoResult {
    let visits = visits(web)? + 1;
    web.insert("visits", &visits)?;
    Ok(DemoResponse::json(200, &json!({ "visits": visits })))
}

/// `POST /api/login` with `{"user": "<name>"}`: regenerates the id and signs in.
///
/// # Errors
/// 4xx for bad input; session errors.
pub fn api_login(web: &Session, body: &[u8]) -> DemoResult {
    let user = valid_user(&string_field(&parse_json(body)?, "user")?)?;
    sign_in(web, &user)?;
    Ok(DemoResponse::json(200, &json!({ "user": user })))
}

/// `POST /api/logout`: destroys the `web` session (204).
///
/// # Errors
/// Session errors.
pub fn api_logout(web: &Session) -> DemoResult {
    web.destroy()?;
    Ok(DemoResponse::no_content())
}

/// `POST /api/admin/enter`.
///
/// # Errors
/// Session errors.
pub fn api_admin_enter(admin: &Session) -> DemoResult {
    admin.insert("admin", &true)?;
    Ok(DemoResponse::json(200, &json!({ "admin": true })))
}

/// `POST /api/admin/leave`: destroys the `admin` session.
///
/// # Errors
/// Session errors.
pub fn api_admin_leave(admin: &Session) -> DemoResult {
    admin.destroy()?;
    Ok(DemoResponse::json(200, &json!({ "admin": false })))
}

/// `PUT /api/data/{key}` with any JSON body.
///
/// # Errors
/// 4xx for a bad key or body; session errors.
pub fn api_data_put(web: &Session, key: &str, body: &[u8]) -> DemoResult {
    let key = valid_key(key)?;
    if body.len() > MAX_BODY {
        return Err(bad(413, &format!("request body over {MAX_BODY} bytes")));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|err| bad(400, &format!("malformed JSON: {err}")))?;
    web.insert(&key, &value)?;
    Ok(DemoResponse::no_content())
}

/// `GET /api/data/{key}`: the stored JSON, or 404.
///
/// # Errors
/// 4xx for a bad key; session errors.
pub fn api_data_get(web: &Session, key: &str) -> DemoResult {
    let key = valid_key(key)?;
    match web.get_value(&key)? {
        Some(value) => Ok(DemoResponse::json(200, &value)),
        None => Err(bad(404, "no value under that key")),
    }
}

/// `DELETE /api/data/{key}` (204 whether or not it existed).
///
/// # Errors
/// 4xx for a bad key; session errors.
pub fn api_data_delete(web: &Session, key: &str) -> DemoResult {
    web.remove(&valid_key(key)?)?;
    Ok(DemoResponse::no_content())
}

/// `POST /api/flash` with `{"message": "..."}`.
///
/// # Errors
/// 4xx for bad input; session errors.
pub fn api_flash_add(web: &Session, body: &[u8]) -> DemoResult {
    let message = string_field(&parse_json(body)?, "message")?;
    if message.chars().count() > 500 {
        return Err(bad(422, "`message` is longer than 500 characters"));
    }
    web.flash(&message)?;
    Ok(DemoResponse::no_content())
}

/// `GET /api/flash`: `{"messages": [...]}`, consuming them.
///
/// # Errors
/// Session errors.
pub fn api_flash_take(web: &Session) -> DemoResult {
    let messages: Vec<String> = web.take_flashes()?;
    Ok(DemoResponse::json(200, &json!({ "messages": messages })))
}

/// The value of `field` in an `application/x-www-form-urlencoded` body.
pub fn form_field(form: &[u8], field: &str) -> Option<String> {
    let text = std::str::from_utf8(form).ok()?;
    text.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (percent_decode(name)? == field)
            .then(|| percent_decode(value))
            .flatten()
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML page.
pub fn render(user: Option<&str>, visits: u64, admin: bool, flashes: &[String]) -> String {
    let mut flash_html = String::new();
    for message in flashes {
        let _ = write!(flash_html, r#"<p class="flash">{}</p>"#, escape(message));
    }
    let account = match user {
        Some(user) => format!(
            r#"<p>Signed in as <strong>{}</strong>.</p>
      <form method="post" action="/logout"><button>Sign out</button></form>"#,
            escape(user)
        ),
        None => r#"<form method="post" action="/login" class="row">
        <input name="user" placeholder="Your name" maxlength="64" required autofocus>
        <button>Sign in</button>
      </form>"#
            .to_owned(),
    };
    let admin_html = if admin {
        r#"<p><span class="badge on">admin mode</span></p>
      <form method="post" action="/admin/leave"><button class="secondary">Leave admin mode</button></form>"#
    } else {
        r#"<p><span class="badge">not in admin mode</span></p>
      <form method="post" action="/admin/enter"><button class="secondary">Enter admin mode</button></form>"#
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>sessionkit demo</title>
  <style>
    :root {{ color-scheme: light dark; --accent: #4f46e5; }}
    body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0; min-height: 100vh; display: grid;
            place-items: center; background: linear-gradient(135deg, #eef2ff, #fdf2f8); }}
    @media (prefers-color-scheme: dark) {{ body {{ background: linear-gradient(135deg, #1e1b4b, #312e81); }} }}
    main {{ background: Canvas; border-radius: 16px; padding: 2rem 2.5rem; width: min(28rem, 90vw);
            box-shadow: 0 10px 40px rgba(0,0,0,.15); }}
    h1 {{ margin: 0 0 .25rem; font-size: 1.5rem; }}
    .muted {{ opacity: .7; margin-top: 0; }}
    .count {{ font-size: 3rem; font-weight: 700; color: var(--accent); margin: .5rem 0 0; }}
    .flash {{ background: #ecfdf5; color: #065f46; border-left: 4px solid #10b981; padding: .5rem .75rem;
              border-radius: 6px; }}
    section {{ border-top: 1px solid rgba(127,127,127,.25); padding-top: 1rem; margin-top: 1rem; }}
    .row {{ display: flex; gap: .5rem; }}
    input {{ flex: 1; padding: .5rem .75rem; border-radius: 8px; border: 1px solid rgba(127,127,127,.5);
             font: inherit; }}
    button {{ background: var(--accent); color: white; border: 0; border-radius: 8px; padding: .5rem 1rem;
              font: inherit; cursor: pointer; }}
    button.secondary {{ background: transparent; color: var(--accent); border: 1px solid var(--accent); }}
    .badge {{ display: inline-block; padding: .1rem .6rem; border-radius: 999px; background: rgba(127,127,127,.2);
              font-size: .85rem; }}
    .badge.on {{ background: #fef3c7; color: #92400e; }}
    footer {{ font-size: .8rem; opacity: .6; margin-top: 1.5rem; }}
  </style>
</head>
<body>
  <main>
    <h1>sessionkit demo</h1>
    <p class="muted">Two named sessions: <code>web</code> and <code>admin</code>.</p>
    {flash_html}
    <p class="count">{visits}</p>
    <p class="muted">visits in this session</p>
    <section>{account}</section>
    <section>{admin_html}</section>
    <footer>Signing in regenerates the session id. Try the JSON API at <code>/api/session</code>.</footer>
  </main>
</body>
</html>
"#
    )
}

/// Command-line options shared by the demo binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
    /// `memory`, `cookie`, `redis` or `postgres`.
    pub driver: String,
}

/// The usage text.
pub const USAGE: &str = "usage: demo-<framework> [--addr 127.0.0.1:3000] [--driver memory|cookie|redis|postgres]\n\
    redis reads REDIS_URL (default redis://127.0.0.1:6379), postgres reads DATABASE_URL";

impl Options {
    /// Parses `--addr` and `--driver`.
    ///
    /// # Errors
    /// A message for unknown flags or bad values.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            driver: "memory".to_owned(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--addr" => {
                    let text = value()?;
                    options.addr = text
                        .parse()
                        .map_err(|_| format!("--addr: {text:?} is not an address like 127.0.0.1:3000"))?;
                }
                "--driver" => {
                    let driver = value()?;
                    if !["memory", "cookie", "redis", "postgres"].contains(&driver.as_str()) {
                        return Err(format!(
                            "--driver: {driver:?} is not one of memory, cookie, redis, postgres"
                        ));
                    }
                    options.driver = driver;
                }
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(options)
    }

    /// Parses the process arguments, or prints the problem and exits with status 2.
    pub fn from_env() -> Self {
        match Self::parse(std::env::args().skip(1)) {
            Ok(options) => options,
            Err(message) => {
                eprintln!("{message}");
                std::process::exit(2);
            }
        }
    }
}

/// Builds the demo's registry on the chosen driver: `web` and `admin` (the built-in
/// definitions) on memory, sealed cookies, Redis (`REDIS_URL`) or PostgreSQL
/// (`DATABASE_URL`).
///
/// # Errors
/// Setup or connection failures.
pub async fn build_sessions(driver: &str) -> Result<Sessions, Box<dyn std::error::Error>> {
    let mut registry = Registry::new();
    match driver {
        "memory" | "cookie" => {}
        "redis" => {
            let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
            let store = sessionkit_redis::RedisDriver::connect(&url)
                .await
                .map_err(|err| format!("cannot connect to Redis (REDIS_URL): {err}"))?;
            registry.register_driver("redis", store)?;
        }
        "postgres" => {
            let url = std::env::var("DATABASE_URL").map_err(|_| "--driver postgres needs DATABASE_URL")?;
            let store = sessionkit_postgres::PostgresDriver::connect(&url)
                .await
                .map_err(|err| format!("cannot connect to PostgreSQL (DATABASE_URL): {err}"))?;
            store.migrate().await?;
            registry.register_driver("postgres", store)?;
        }
        other => return Err(format!("unknown driver {other:?}").into()),
    }
    for name in ["web", "admin"] {
        if let Some(def) = registry.session_mut(name) {
            def.driver = sessionkit::DriverChoice::named(driver)?;
        }
    }
    Ok(registry.build()?)
}

/// Prints where the demo listens.
pub fn announce(framework: &str, addr: SocketAddr, driver: &str) {
    use std::io::Write as _;
    // A closed stdout (`demo-axum | head -1`) must not take the server down, so write
    // errors are ignored rather than panicking as `println!` would.
    let mut out = std::io::stdout().lock();
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
    use super::*;

    #[test]
    fn options() {
        let parse = |args: &[&str]| Options::parse(args.iter().map(|s| (*s).to_owned()));
        assert_eq!(parse(&[]).expect("defaults").addr.port(), 3000);
        let o = parse(&["--addr", "127.0.0.1:0", "--driver=cookie"]).expect("ok");
        assert_eq!((o.addr.port(), o.driver.as_str()), (0, "cookie"));
        assert!(parse(&["--driver", "mongo"]).is_err());
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--nope"]).is_err());
    }

    #[test]
    fn forms_and_escaping() {
        assert_eq!(
            form_field(b"user=Ada+Lovelace%21&x=1", "user").as_deref(),
            Some("Ada Lovelace!")
        );
        assert_eq!(form_field(b"user=%zz", "user"), None);
        assert_eq!(form_field(b"other=1", "user"), None);
        let html = render(Some("<script>"), 3, true, &["a & b".to_owned()]);
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>") && html.contains("a &amp; b"));
    }
}
