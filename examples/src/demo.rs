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
use sessionkit::Session;

pub use cli::{Driver, Options, StartupError, build_sessions, report, run, shutdown};
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
