//! The demo app, written once and served by `demo-axum`, `demo-warp`, `demo-poem` and
//! `demo-actix`.
//!
//! Each binary only routes requests, extracts the `web` and `admin` sessions with its
//! adapter, hands the raw body to the functions here and turns the [`DemoResponse`]
//! into its framework's response. So the four demos behave identically, down to the
//! error messages. Start-up (command line, driver, listening) is in [`run`], shared too.

mod cli;
mod page;

use serde_json::{Value, json};
use sessionkit::{Session, Timestamp, UserSession};

pub use cli::{Driver, Options, StartupError, WEB_SESSIONS_PER_USER, build_sessions, report, run, shutdown};
pub use page::render;

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

/// `GET /`: counts the visit, shows the page (with the signed-in user's devices),
/// consumes flash messages.
///
/// # Errors
/// Session errors.
pub async fn page(web: &Session, admin: &Session) -> DemoResult {
    let visits = visits(web)? + 1;
    web.insert("visits", &visits)?;
    let user = web.get::<String>("user")?;
    let devices = if user.is_some() && web.user()?.is_some() {
        match web.user_sessions().await {
            Ok(list) => list.iter().map(Device::from).collect(),
            // A driver without per-user lists (cookie sessions): no device list.
            Err(error) if unsupported(&error) => Vec::new(),
            Err(error) => return Err(error.into()),
        }
    } else {
        Vec::new()
    };
    let flashes: Vec<String> = web.take_flashes()?;
    Ok(DemoResponse::html(render(
        user.as_deref(),
        visits,
        admin_on(admin)?,
        &flashes,
        &devices,
    )))
}

/// One of the signed-in user's sessions, as the page and the JSON API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The session's public handle.
    pub handle: String,
    /// Its label (the `User-Agent` it signed in with).
    pub label: Option<String>,
    /// Created, in milliseconds since the Unix epoch.
    pub created: u64,
    /// Last used, in milliseconds since the Unix epoch.
    pub last_seen: u64,
    /// Whether it is the session of this request.
    pub current: bool,
}

impl From<&UserSession> for Device {
    fn from(session: &UserSession) -> Self {
        let millis = |t: std::time::SystemTime| Timestamp::from_system_time(t).as_millis();
        Device {
            handle: session.handle.to_string(),
            label: session.label.clone(),
            created: millis(session.created),
            last_seen: millis(session.last_seen),
            current: session.current,
        }
    }
}

/// The label of a session: the request's `User-Agent`, cut to 120 characters, or
/// "unknown device".
fn device_label(user_agent: Option<&str>) -> String {
    let label: String = user_agent
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    if label.trim().is_empty() {
        "unknown device".to_owned()
    } else {
        label
    }
}

fn unsupported(error: &sessionkit::Error) -> bool {
    matches!(
        error,
        sessionkit::Error::Store {
            source: sessionkit::driver::DriverError::Unsupported(_),
            ..
        }
    )
}

/// A user-sessions call on a driver that keeps no per-user list answers 501.
fn or_unsupported<T>(result: Result<T, sessionkit::Error>) -> Result<T, DemoError> {
    result.map_err(|error| {
        if unsupported(&error) {
            bad(
                501,
                &format!("{error}: this driver keeps no per-user session list"),
            )
        } else {
            error.into()
        }
    })
}

fn signed_in_user(web: &Session) -> Result<String, DemoError> {
    match web.user()? {
        Some(user) => Ok(user),
        None => Err(bad(401, "sign in first")),
    }
}

/// `POST /login` with form field `user` (and the `remember` checkbox): regenerates
/// the id and signs in.
///
/// # Errors
/// 422 for a missing or invalid name; session errors.
pub fn form_login(web: &Session, form: &[u8], user_agent: Option<&str>) -> DemoResult {
    let user = form_field(form, "user").ok_or_else(|| bad(422, "missing form field `user`"))?;
    let user = valid_user(&user)?;
    // A checked box sends `remember=on`; an unchecked one sends nothing.
    let remember = form_field(form, "remember").is_some();
    sign_in(web, &user, remember, user_agent)?;
    web.flash(&format!("Signed in as {user}."))?;
    Ok(DemoResponse::redirect_home())
}

fn sign_in(
    web: &Session,
    user: &str,
    remember: bool,
    user_agent: Option<&str>,
) -> Result<(), sessionkit::Error> {
    // A privilege change: a new id against session fixation.
    web.regenerate()?;
    web.insert("user", user)?;
    // The user's sessions as a whole: listed, ended one by one or all at once.
    web.set_user(user)?;
    web.set_label(&device_label(user_agent))?;
    // Remember me: a persistent cookie; otherwise one the browser drops when it closes.
    web.set_persistent(remember)
}

/// `POST /devices/{handle}/end`: signs one of the user's devices out.
///
/// # Errors
/// Session errors.
pub async fn form_end_device(web: &Session, handle: &str) -> DemoResult {
    if web.user()?.is_some() && web.end_session(handle).await? {
        web.flash("Signed that device out.")?;
    }
    Ok(DemoResponse::redirect_home())
}

/// `POST /logout-everywhere`: signs every device of the user out, this one included.
///
/// # Errors
/// Session errors.
pub async fn form_logout_everywhere(web: &Session) -> DemoResult {
    if web.user()?.is_some() {
        web.end_all_sessions().await?;
        web.flash("Signed out everywhere.")?;
    }
    Ok(DemoResponse::redirect_home())
}

/// `GET /api/sessions`: `{"sessions": [{"handle", "created", "last_seen", "current",
/// "label"}]}` for the signed-in user (times in milliseconds since the Unix epoch),
/// 401 when anonymous.
///
/// # Errors
/// 401; session errors.
pub async fn api_sessions(web: &Session) -> DemoResult {
    signed_in_user(web)?;
    let sessions: Vec<Value> = or_unsupported(web.user_sessions().await)?
        .iter()
        .map(Device::from)
        .map(|d| {
            json!({
                "handle": d.handle,
                "created": d.created,
                "last_seen": d.last_seen,
                "current": d.current,
                "label": d.label,
            })
        })
        .collect();
    Ok(DemoResponse::json(200, &json!({ "sessions": sessions })))
}

/// `DELETE /api/sessions/{handle}`: 204, or 404 when the handle is not one of the
/// caller's sessions; 401 when anonymous.
///
/// # Errors
/// 401, 404; session errors.
pub async fn api_end_session(web: &Session, handle: &str) -> DemoResult {
    signed_in_user(web)?;
    if or_unsupported(web.end_session(handle).await)? {
        Ok(DemoResponse::no_content())
    } else {
        Err(bad(404, "no such session of yours"))
    }
}

/// `POST /api/sessions/revoke-others`: ends every other session of the user (204).
///
/// # Errors
/// 401; session errors.
pub async fn api_revoke_others(web: &Session) -> DemoResult {
    signed_in_user(web)?;
    or_unsupported(web.end_other_sessions().await)?;
    Ok(DemoResponse::no_content())
}

/// `POST /api/logout-everywhere`: ends every session of the user, this one included
/// (204).
///
/// # Errors
/// 401; session errors.
pub async fn api_logout_everywhere(web: &Session) -> DemoResult {
    signed_in_user(web)?;
    or_unsupported(web.end_all_sessions().await)?;
    Ok(DemoResponse::no_content())
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

/// `POST /api/login` with `{"user": "<name>", "remember": bool}`: regenerates the id
/// and signs in. Without `remember` (or with `false`) the cookie is a browser-session
/// cookie, with `true` a persistent one. Answers `{"user", "remember"}`.
///
/// # Errors
/// 4xx for bad input; session errors.
pub fn api_login(web: &Session, body: &[u8], user_agent: Option<&str>) -> DemoResult {
    let body = parse_json(body)?;
    let user = valid_user(&string_field(&body, "user")?)?;
    let remember = match body.get("remember") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(remember)) => *remember,
        Some(_) => return Err(bad(422, "field `remember` must be true or false")),
    };
    sign_in(web, &user, remember, user_agent)?;
    Ok(DemoResponse::json(
        200,
        &json!({ "user": user, "remember": remember }),
    ))
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
/// 4xx for a bad key or body (422 for a value sessionkit refuses: nested deeper than
/// 64 levels); session errors.
pub fn api_data_put(web: &Session, key: &str, body: &[u8]) -> DemoResult {
    let key = valid_key(key)?;
    if body.len() > MAX_BODY {
        return Err(bad(413, &format!("request body over {MAX_BODY} bytes")));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|err| bad(400, &format!("malformed JSON: {err}")))?;
    web.insert(&key, &value).map_err(|err| match err {
        // sessionkit refuses values nested too deep or too large: the client's fault here.
        sessionkit::Error::Session(sessionkit::core::SessionError::ValueTooLarge { .. }) => {
            bad(422, &err.to_string())
        }
        other => other.into(),
    })?;
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

/// The first value of `field` in an `application/x-www-form-urlencoded` body, decoded
/// the way browsers encode it.
fn form_field(form: &[u8], field: &str) -> Option<String> {
    form_urlencoded::parse(form).find_map(|(name, value)| (name == field).then(|| value.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields() {
        let field = |form: &str| form_field(form.as_bytes(), "user");
        assert_eq!(
            field("user=Ada+Lovelace%21&x=1").as_deref(),
            Some("Ada Lovelace!")
        );
        assert_eq!(field("x=1&user=%C3%A9&user=second").as_deref(), Some("é"));
        assert_eq!(field("user=").as_deref(), Some(""));
        assert_eq!(field("other=1&users=2"), None);
    }

    #[test]
    fn keys_are_checked_and_namespaced() {
        assert_eq!(valid_key("color-1.x_y").ok().as_deref(), Some("data.color-1.x_y"));
        for key in ["", "bad key", "a/b", "%20", &"k".repeat(MAX_KEY + 1)] {
            assert!(valid_key(key).is_err(), "{key:?}");
        }
    }
}
