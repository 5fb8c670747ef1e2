//! The TOML configuration schema.
//!
//! ```toml
//! [session]
//! namespace = "shop"               # app namespace (default "app")
//! secret = "..."                   # prefer SESSIONKIT_SECRET in the environment
//! previous_secrets = ["..."]       # verify-only keys during a rotation
//!
//! [session.sessions.web]
//! driver = "memory"                # memory, cookie, or a registered driver name
//! cookie_name = "__Host-sid"
//! cookie_domain = ""               # empty: host-only cookie
//! cookie_path = "/"
//! secure = true
//! http_only = true
//! same_site = "lax"                # lax, strict or none
//! partitioned = false
//! persistent = true                # false: browser-session cookie (no Max-Age)
//! ttl = "24h"                      # absolute lifetime; "none": idle timeout only
//! idle_timeout = "30m"             # "0" disables (not with ttl = "none")
//! touch_share = 0.2                # share of idle_timeout before a read refreshes
//! renew_after = "1h"               # renew the id once older (default: never)
//! renew_grace = "5s"               # old id still works this long (at most 60s)
//! shared = false
//! max_sessions_per_user = 5        # cap per user (default: none)
//! revocation = "memory"            # cookie sessions: revocation store driver, or false
//! on_session_limit = "evict_oldest" # or "refuse"
//! clear_site_data = false          # true: logout sends Clear-Site-Data: "cookies";
//!                                  # or a list, e.g. ["cookies", "storage"]
//! cookie_chunks = 1                # cookie driver: split a sealed session over up to
//!                                  # this many cookies (1 to 8; 1: over 4 KB is an error)
//! [session.sessions.web.meta]
//! area = "frontend"
//! ```
//!
//! Only `[session]` and `app.secret` are read; other tables belong to the application
//! and are ignored. Inside `[session]`, an unknown key is an error that names it.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::cookies::{MAX_COOKIE_CHUNKS, SameSite};
use crate::def::{ClearSiteData, DefError, DriverChoice, LimitPolicy, SessionDef, SessionLimit};
use crate::duration::parse_duration;
use crate::expiry::{ExpiryError, ExpiryPolicy};
use crate::id::{NameError, Namespace};
use crate::keys::Secret;

/// A configuration problem. Messages name the session and the key; they never quote a
/// secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not valid TOML. Only the parser's message and position are kept, not
    /// its error value: that one quotes the offending line, which may hold a secret.
    #[error("invalid TOML at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A key sessionkit does not know.
    #[error("unknown key `{key}` in [{table}]")]
    UnknownKey {
        /// The table, e.g. `session.sessions.web`.
        table: String,
        /// The key.
        key: String,
    },
    /// A known key with a value of the wrong type or out of range.
    #[error("invalid value for `{key}` in [{table}]: {reason}")]
    InvalidValue {
        /// The table, e.g. `session.sessions.web`.
        table: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The definition the overrides give breaks a rule.
    #[error(transparent)]
    Definition(#[from] DefError),
}

fn invalid(table: &str, key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        table: table.to_owned(),
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Parsed configuration: what the file says, before it is applied to a registry.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Config {
    /// `session.secret`.
    pub secret: Option<Secret>,
    /// `app.secret`.
    pub app_secret: Option<Secret>,
    /// `session.previous_secrets`.
    pub previous_secrets: Vec<Secret>,
    /// `session.namespace`.
    pub namespace: Option<Namespace>,
    /// `[session.sessions.<name>]`, in file order.
    pub sessions: Vec<(String, SessionOverrides)>,
}

/// The settings one `[session.sessions.<name>]` table changes; `None` leaves a setting
/// as it is.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SessionOverrides {
    /// `driver`.
    pub driver: Option<DriverChoice>,
    /// `cookie_name`.
    pub cookie_name: Option<String>,
    /// `cookie_domain` (`Some(None)` for an empty string: host-only).
    pub cookie_domain: Option<Option<String>>,
    /// `cookie_path`.
    pub cookie_path: Option<String>,
    /// `secure`.
    pub secure: Option<bool>,
    /// `http_only`.
    pub http_only: Option<bool>,
    /// `same_site`.
    pub same_site: Option<SameSite>,
    /// `partitioned`.
    pub partitioned: Option<bool>,
    /// `persistent`.
    pub persistent: Option<bool>,
    /// `ttl` (`Some(None)` for `"none"`: no absolute lifetime, idle timeout only).
    pub ttl: Option<Option<Duration>>,
    /// `idle_timeout` (zero disables).
    pub idle_timeout: Option<Duration>,
    /// `touch_share`.
    pub touch_share: Option<f64>,
    /// `renew_after` (`Some(None)` for `"never"`).
    pub renew_after: Option<Option<Duration>>,
    /// `renew_grace`.
    pub renew_grace: Option<Duration>,
    /// `max_sessions_per_user` (`Some(None)` for 0: no cap).
    pub max_sessions_per_user: Option<Option<std::num::NonZeroU32>>,
    /// `on_session_limit`.
    pub on_session_limit: Option<LimitPolicy>,
    /// `revocation` (`Some(None)` for `false`).
    pub revocation: Option<Option<DriverChoice>>,
    /// `shared`.
    pub shared: Option<bool>,
    /// `meta` (replaces the whole map).
    pub meta: Option<Map<String, Value>>,
    /// `clear_site_data` (`Some(None)` for `false`).
    pub clear_site_data: Option<Option<ClearSiteData>>,
    /// `cookie_chunks`: how many cookies a sealed cookie session may be split over, 1
    /// (the default: one cookie, a session over 4096 bytes fails to save) to
    /// [`MAX_COOKIE_CHUNKS`]. See [`SessionDef::cookie_chunks`] for the format and the
    /// limits.
    pub cookie_chunks: Option<u8>,
    table: String,
}

impl SessionOverrides {
    /// Applies these overrides to `def`, then validates the result. All or nothing: on
    /// error `def` is left unchanged.
    ///
    /// # Errors
    /// The first invalid value or broken rule, naming the session and the key.
    pub fn apply_to(&self, def: &mut SessionDef) -> Result<(), ConfigError> {
        let mut next = def.clone();
        self.change(&mut next)?;
        next.validate()?;
        *def = next;
        Ok(())
    }

    fn change(&self, def: &mut SessionDef) -> Result<(), ConfigError> {
        let table = &self.table;
        if let Some(driver) = &self.driver {
            def.driver = driver.clone();
        }
        if let Some(name) = &self.cookie_name {
            def.cookie.name.clone_from(name);
        }
        if let Some(domain) = &self.cookie_domain {
            def.cookie.domain.clone_from(domain);
        }
        if let Some(path) = &self.cookie_path {
            def.cookie.path.clone_from(path);
        }
        let cookie = &mut def.cookie;
        for (value, field) in [
            (self.secure, &mut cookie.secure),
            (self.http_only, &mut cookie.http_only),
            (self.partitioned, &mut cookie.partitioned),
            (self.persistent, &mut cookie.persistent),
        ] {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(same_site) = self.same_site {
            cookie.same_site = same_site;
        }
        if let Some(shared) = self.shared {
            def.shared = shared;
        }
        if let Some(meta) = &self.meta {
            def.meta.clone_from(meta);
        }
        if let Some(clear) = &self.clear_site_data {
            def.clear_site_data.clone_from(clear);
        }
        if let Some(revocation) = &self.revocation {
            def.revocation.clone_from(revocation);
        }
        if let Some(chunks) = self.cookie_chunks {
            def.cookie_chunks = chunks;
        }
        let max = match self.max_sessions_per_user {
            Some(max) => max,
            None => def.user_limit.map(|limit| limit.max),
        };
        let policy = self
            .on_session_limit
            .or(def.user_limit.map(|limit| limit.policy))
            .unwrap_or(LimitPolicy::EvictOldest);
        def.user_limit = max.map(|max| SessionLimit::new(max, policy));
        let old = &def.expiry;
        let ttl = self.ttl.unwrap_or(old.ttl());
        let idle = match self.idle_timeout {
            Some(idle) => Some(idle),
            None => old.idle_timeout(),
        };
        let share = self.touch_share.unwrap_or(old.touch_share());
        let renew_after = self.renew_after.unwrap_or(old.renew_after());
        let grace = self.renew_grace.unwrap_or(old.renew_grace());
        let policy = match ttl {
            Some(ttl) => ExpiryPolicy::new(ttl, idle),
            None => ExpiryPolicy::idle_only(idle.unwrap_or_default()),
        };
        def.expiry = policy
            .and_then(|p| p.with_touch_share(share))
            .and_then(|p| p.with_renewal(renew_after, grace))
            .map_err(|err| match err {
                ExpiryError::ZeroTtl => invalid(table, "ttl", "must be longer than zero"),
                ExpiryError::NoLifetime => invalid(
                    table,
                    "idle_timeout",
                    "ttl = \"none\" (no absolute lifetime) needs a non-zero idle_timeout, or sessions would never end",
                ),
                ExpiryError::ZeroRenewAfter => invalid(table, "renew_after", err.to_string()),
                ExpiryError::GraceTooLong(_) => invalid(table, "renew_grace", err.to_string()),
                other => invalid(table, "touch_share", other.to_string()),
            })?;
        Ok(())
    }
}

/// Parses configuration text.
///
/// # Errors
/// [`ConfigError`] for invalid TOML, unknown keys under `[session]`, and values of the
/// wrong type or out of range, naming the table and the key.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let root: toml::Table = text.parse().map_err(|err: toml::de::Error| {
        let (line, column) = err.span().map_or((0, 0), |span| line_column(text, span.start));
        ConfigError::Syntax {
            line,
            column,
            message: err.message().to_owned(),
        }
    })?;
    let mut config = Config::default();
    if let Some(app) = root.get("app") {
        let app = as_table(app, "", "app")?;
        if let Some(secret) = app.get("secret") {
            config.app_secret = Some(secret_value(secret, "app", "secret")?);
        }
    }
    let Some(session) = root.get("session") else {
        return Ok(config);
    };
    let session = as_table(session, "", "session")?;
    for (key, value) in session {
        match key.as_str() {
            "secret" => config.secret = Some(secret_value(value, "session", key)?),
            "previous_secrets" => {
                let toml::Value::Array(items) = value else {
                    return Err(invalid("session", key, "expected an array of strings"));
                };
                for item in items {
                    config.previous_secrets.push(secret_value(item, "session", key)?);
                }
            }
            "namespace" => {
                let name = as_str(value, "session", key)?;
                config.namespace = Some(
                    Namespace::new(name)
                        .map_err(|err: NameError| invalid("session", key, err.to_string()))?,
                );
            }
            "sessions" => {
                for (name, body) in as_table(value, "session", key)? {
                    let table = format!("session.sessions.{name}");
                    let overrides = parse_session(as_table(body, "session.sessions", name)?, table)?;
                    config.sessions.push((name.clone(), overrides));
                }
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    table: "session".to_owned(),
                    key: key.clone(),
                });
            }
        }
    }
    Ok(config)
}

fn parse_session(body: &toml::Table, table: String) -> Result<SessionOverrides, ConfigError> {
    let mut out = SessionOverrides::default();
    let t = table.as_str();
    for (key, value) in body {
        let k = key.as_str();
        match k {
            "driver" => {
                let name = as_str(value, t, k)?;
                let driver = DriverChoice::named(name).map_err(|err| invalid(t, k, err.to_string()))?;
                out.driver = Some(driver);
            }
            "cookie_name" => out.cookie_name = Some(as_str(value, t, k)?.to_owned()),
            "cookie_domain" => {
                let domain = as_str(value, t, k)?;
                out.cookie_domain = Some((!domain.is_empty()).then(|| domain.to_owned()));
            }
            "cookie_path" => out.cookie_path = Some(as_str(value, t, k)?.to_owned()),
            "secure" => out.secure = Some(as_bool(value, t, k)?),
            "http_only" => out.http_only = Some(as_bool(value, t, k)?),
            "partitioned" => out.partitioned = Some(as_bool(value, t, k)?),
            "persistent" => out.persistent = Some(as_bool(value, t, k)?),
            "shared" => out.shared = Some(as_bool(value, t, k)?),
            "same_site" => {
                let text = as_str(value, t, k)?;
                out.same_site = Some(SameSite::parse(text).ok_or_else(|| {
                    invalid(
                        t,
                        k,
                        format!("{text:?} is not one of \"lax\", \"strict\", \"none\""),
                    )
                })?);
            }
            "ttl" => {
                out.ttl = Some(if value.as_str() == Some("none") {
                    None
                } else {
                    Some(duration_value(value, t, k)?)
                });
            }
            "renew_after" => {
                out.renew_after = Some(if value.as_str() == Some("never") {
                    None
                } else {
                    Some(duration_value(value, t, k)?)
                });
            }
            "renew_grace" => out.renew_grace = Some(duration_value(value, t, k)?),
            "revocation" => {
                out.revocation = Some(match value {
                    toml::Value::Boolean(false) => None,
                    toml::Value::Boolean(true) => Some(DriverChoice::Memory),
                    toml::Value::String(name) if name != "cookie" => {
                        Some(DriverChoice::named(name).map_err(|err| invalid(t, k, err.to_string()))?)
                    }
                    _ => return Err(invalid(t, k, "expected false or the name of a store driver")),
                });
            }
            "max_sessions_per_user" => {
                let max = value
                    .as_integer()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| invalid(t, k, "expected a whole number from 0 (no cap) up"))?;
                out.max_sessions_per_user = Some(std::num::NonZeroU32::new(max));
            }
            "on_session_limit" => {
                out.on_session_limit = Some(match as_str(value, t, k)? {
                    "evict_oldest" => LimitPolicy::EvictOldest,
                    "refuse" => LimitPolicy::Refuse,
                    other => {
                        return Err(invalid(
                            t,
                            k,
                            format!("{other:?} is not one of \"evict_oldest\", \"refuse\""),
                        ));
                    }
                });
            }
            "idle_timeout" => out.idle_timeout = Some(duration_value(value, t, k)?),
            "touch_share" => {
                let share = match value {
                    toml::Value::Float(f) => *f,
                    #[allow(clippy::cast_precision_loss)] // only 0 and 1 are in range
                    toml::Value::Integer(i) => *i as f64,
                    _ => return Err(invalid(t, k, "expected a number between 0.0 and 1.0")),
                };
                if !(0.0..=1.0).contains(&share) {
                    return Err(invalid(t, k, format!("{share} is not between 0.0 and 1.0")));
                }
                out.touch_share = Some(share);
            }
            "clear_site_data" => {
                out.clear_site_data = Some(match value {
                    toml::Value::Boolean(on) => on.then(ClearSiteData::cookies),
                    toml::Value::Array(items) => {
                        let names = items
                            .iter()
                            .map(|item| item.as_str().ok_or_else(|| invalid(t, k, "expected strings")))
                            .collect::<Result<Vec<_>, _>>()?;
                        Some(ClearSiteData::new(names).map_err(|err| invalid(t, k, err.to_string()))?)
                    }
                    _ => return Err(invalid(t, k, "expected true, false or a list of directives")),
                });
            }
            "cookie_chunks" => {
                let chunks = value
                    .as_integer()
                    .and_then(|n| u8::try_from(n).ok())
                    .filter(|n| (1..=MAX_COOKIE_CHUNKS).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            t,
                            k,
                            format!("expected a whole number from 1 to {MAX_COOKIE_CHUNKS}"),
                        )
                    })?;
                out.cookie_chunks = Some(chunks);
            }
            "meta" => {
                let meta = as_table(value, t, k)?;
                let json = serde_json::to_value(meta).map_err(|err| invalid(t, k, err.to_string()))?;
                let Value::Object(map) = json else {
                    return Err(invalid(t, k, "expected a table"));
                };
                out.meta = Some(map);
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    table,
                    key: key.clone(),
                });
            }
        }
    }
    out.table = table;
    Ok(out)
}

fn type_name(value: &toml::Value) -> &'static str {
    value.type_str()
}

fn as_table<'a>(value: &'a toml::Value, table: &str, key: &str) -> Result<&'a toml::Table, ConfigError> {
    value.as_table().ok_or_else(|| {
        invalid(
            table,
            key,
            format!("expected a table, found {}", type_name(value)),
        )
    })
}

fn as_str<'a>(value: &'a toml::Value, table: &str, key: &str) -> Result<&'a str, ConfigError> {
    value.as_str().ok_or_else(|| {
        invalid(
            table,
            key,
            format!("expected a string, found {}", type_name(value)),
        )
    })
}

fn as_bool(value: &toml::Value, table: &str, key: &str) -> Result<bool, ConfigError> {
    value.as_bool().ok_or_else(|| {
        invalid(
            table,
            key,
            format!("expected true or false, found {}", type_name(value)),
        )
    })
}

fn duration_value(value: &toml::Value, table: &str, key: &str) -> Result<Duration, ConfigError> {
    match value {
        toml::Value::String(text) => parse_duration(text).map_err(|reason| invalid(table, key, reason)),
        toml::Value::Integer(secs) => u64::try_from(*secs)
            .map(Duration::from_secs)
            .map_err(|_| invalid(table, key, "a duration cannot be negative")),
        other => Err(invalid(
            table,
            key,
            format!("expected a duration such as \"30m\", found {}", type_name(other)),
        )),
    }
}

fn secret_value(value: &toml::Value, table: &str, key: &str) -> Result<Secret, ConfigError> {
    let text = value.as_str().ok_or_else(|| {
        invalid(
            table,
            key,
            format!("expected a string, found {}", type_name(value)),
        )
    })?;
    Secret::new(text.as_bytes()).map_err(|err| invalid(table, key, err.to_string()))
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::def::SessionName;

    const FULL: &str = r#"
        [app]
        secret = "an-app-secret-that-is-at-least-32-bytes"
        name = "ignored: the app table belongs to the application"

        [session]
        namespace = "shop"
        previous_secrets = ["an-old-secret-that-is-at-least-32-bytes!"]

        [session.sessions.web]
        driver = "memory"
        cookie_name = "sid"
        cookie_domain = ""
        cookie_path = "/"
        ttl = "24h"
        idle_timeout = "30m"
        shared = false
        secure = false
        same_site = "strict"
        touch_share = 0.5
        persistent = false
        clear_site_data = ["cookies", "storage"]
        cookie_chunks = 2
        [session.sessions.web.meta]
        area = "frontend"
        level = 3
    "#;

    #[test]
    fn parses_the_full_schema() {
        let config = parse(FULL).expect("valid");
        assert!(config.app_secret.is_some() && config.secret.is_none());
        assert_eq!(config.previous_secrets.len(), 1);
        assert_eq!(config.namespace.as_ref().map(Namespace::as_str), Some("shop"));
        let (name, web) = &config.sessions[0];
        assert_eq!(name, "web");
        let mut def = SessionDef::new(SessionName::new("web").expect("valid"));
        web.apply_to(&mut def).expect("applies");
        assert_eq!(def.cookie.name, "sid");
        assert_eq!(def.cookie.same_site, SameSite::Strict);
        assert!(!def.cookie.secure && !def.cookie.persistent);
        assert_eq!(def.expiry.idle_timeout(), Some(Duration::from_secs(1800)));
        assert!((def.expiry.touch_share() - 0.5).abs() < f64::EPSILON);
        assert_eq!(def.cookie_chunks, 2);
        assert_eq!(def.meta["area"], "frontend");
        assert_eq!(def.meta["level"], 3);
        assert_eq!(
            def.clear_site_data.as_ref().map(ClearSiteData::as_str),
            Some("\"cookies\", \"storage\"")
        );
    }

    #[test]
    fn clear_site_data_is_a_bool_or_a_list_of_directives() {
        let def_of = |value: &str| {
            let config = parse(&format!("[session.sessions.web]\nclear_site_data = {value}"))?;
            let mut def = SessionDef::new(SessionName::new("web").expect("valid"));
            def.clear_site_data = Some(ClearSiteData::cookies());
            config.sessions[0].1.apply_to(&mut def)?;
            Ok::<_, ConfigError>(def.clear_site_data.map(|c| c.as_str().to_owned()))
        };
        assert_eq!(def_of("true").expect("valid").as_deref(), Some("\"cookies\""));
        assert_eq!(def_of("false").expect("valid"), None);
        assert_eq!(
            def_of("[\"cache\"]").expect("valid").as_deref(),
            Some("\"cache\"")
        );
        for bad in ["[\"cookie\"]", "[]", "\"cookies\"", "[1]"] {
            let err = def_of(bad).expect_err(bad).to_string();
            assert!(
                err.contains("clear_site_data") && err.contains("session.sessions.web"),
                "{err}"
            );
        }
    }

    #[test]
    fn cookie_chunks_is_a_small_whole_number() {
        let config = parse("[session.sessions.web]\ncookie_chunks = 4").expect("valid");
        let mut def = SessionDef::new(SessionName::new("web").expect("valid"));
        assert_eq!(def.cookie_chunks, 1, "one cookie by default");
        config.sessions[0].1.apply_to(&mut def).expect("applies");
        assert_eq!(def.cookie_chunks, 4);
        let max = format!("[session.sessions.web]\ncookie_chunks = {MAX_COOKIE_CHUNKS}");
        assert!(parse(&max).is_ok());
        for bad in ["0", "9", "-1", "256", "\"2\"", "2.5", "true"] {
            let message = error_of(&format!("[session.sessions.web]\ncookie_chunks = {bad}"));
            assert!(
                message.contains("invalid value for `cookie_chunks` in [session.sessions.web]")
                    && message.contains("from 1 to 8"),
                "{bad}: {message}"
            );
        }
    }

    fn error_of(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    #[test]
    fn errors_name_the_table_and_key() {
        let cases = [
            (
                "[session.sessions.web]\ncookie_nmae = \"x\"",
                "unknown key `cookie_nmae` in [session.sessions.web]",
            ),
            ("[session]\nsecrett = \"x\"", "unknown key `secrett` in [session]"),
            (
                "[session.sessions.web]\nttl = \"forever\"",
                "invalid value for `ttl` in [session.sessions.web]",
            ),
            (
                "[session.sessions.web]\nttl = -5",
                "invalid value for `ttl` in [session.sessions.web]: a duration cannot be negative",
            ),
            (
                "[session.sessions.api]\nsame_site = \"sometimes\"",
                "invalid value for `same_site` in [session.sessions.api]",
            ),
            (
                "[session.sessions.api]\nsecure = \"yes\"",
                "invalid value for `secure` in [session.sessions.api]: expected true or false, found string",
            ),
            (
                "[session.sessions.api]\ntouch_share = 2.0",
                "invalid value for `touch_share`",
            ),
            (
                "[session]\nnamespace = \"_x\"",
                "invalid value for `namespace` in [session]",
            ),
            (
                "[session]\nsessions = 3",
                "invalid value for `sessions` in [session]",
            ),
            ("[session\n", "invalid TOML at line 1"),
        ];
        for (text, expected) in cases {
            let message = error_of(text);
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn errors_never_quote_secrets() {
        let short = "[session]\nsecret = \"hunter2-short\"";
        let message = error_of(short);
        assert!(
            message.contains("`secret`") && !message.contains("hunter2"),
            "{message}"
        );
        let broken = "[session]\nsecret = \"hunter2-this-is-a-long-enough-secret-value\" x";
        let message = error_of(broken);
        assert!(
            message.contains("line 2") && !message.contains("hunter2"),
            "{message}"
        );
    }

    #[test]
    fn session_limits_are_configured_per_session() {
        let apply = |text: &str| {
            let config = parse(&format!("[session.sessions.web]\n{text}")).expect("parses");
            let mut def = SessionDef::new(SessionName::new("web").expect("valid"));
            config.sessions[0].1.apply_to(&mut def).map(|()| def.user_limit)
        };
        let limit = apply("max_sessions_per_user = 5").expect("valid").expect("a cap");
        assert_eq!((limit.max.get(), limit.policy), (5, LimitPolicy::EvictOldest));
        let limit = apply("max_sessions_per_user = 2\non_session_limit = \"refuse\"")
            .expect("valid")
            .expect("a cap");
        assert_eq!((limit.max.get(), limit.policy), (2, LimitPolicy::Refuse));
        assert_eq!(apply("max_sessions_per_user = 0").expect("valid"), None);
        for bad in [
            "max_sessions_per_user = -1",
            "max_sessions_per_user = \"5\"",
            "on_session_limit = \"drop\"",
        ] {
            let err = parse(&format!("[session.sessions.web]\n{bad}")).expect_err(bad);
            assert!(err.to_string().contains("[session.sessions.web]"), "{err}");
        }
    }

    #[test]
    fn idle_only_and_renewal_are_said_explicitly() {
        let apply = |text: &str| {
            let config = parse(&format!("[session.sessions.web]\n{text}")).expect("parses");
            let mut def = SessionDef::new(SessionName::new("web").expect("valid"));
            config.sessions[0].1.apply_to(&mut def).map(|()| def.expiry)
        };
        let policy = apply("ttl = \"none\"\nidle_timeout = \"2h\"").expect("valid");
        assert_eq!(policy.ttl(), None);
        assert_eq!(policy.idle_timeout(), Some(Duration::from_hours(2)));
        // The default idle timeout is kept when only the ttl goes.
        assert_eq!(
            apply("ttl = \"none\"").expect("valid").idle_timeout(),
            Some(Duration::from_mins(30))
        );
        for (text, key) in [
            ("ttl = \"none\"\nidle_timeout = \"0\"", "`idle_timeout`"),
            ("renew_after = \"0\"", "`renew_after`"),
            ("renew_grace = \"61s\"", "`renew_grace`"),
        ] {
            let err = apply(text).expect_err(text);
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        let policy = apply("renew_after = \"15m\"\nrenew_grace = \"2s\"").expect("valid");
        assert_eq!(policy.renew_after(), Some(Duration::from_mins(15)));
        assert_eq!(policy.renew_grace(), Duration::from_secs(2));
        let policy = apply("renew_after = \"never\"").expect("valid");
        assert_eq!(policy.renew_after(), None);
        assert_eq!(policy.renew_grace(), crate::expiry::DEFAULT_RENEW_GRACE);
    }

    #[test]
    fn zero_ttl_and_rules_are_reported_against_the_session() {
        let config = parse("[session.sessions.web]\nttl = \"0\"").expect("parses");
        let mut def = SessionDef::new(SessionName::new("web").expect("valid"));
        let err = config.sessions[0].1.apply_to(&mut def).expect_err("zero ttl");
        assert!(
            err.to_string().contains("`ttl` in [session.sessions.web]"),
            "{err}"
        );
        let config = parse("[session.sessions.web]\nsecure = false").expect("parses");
        let err = config.sessions[0]
            .1
            .apply_to(&mut def)
            .expect_err("__Host- needs secure");
        assert!(
            err.to_string()
                .starts_with("session `web`: cookie name \"__Host-web\""),
            "{err}"
        );
        assert!(
            def.cookie.secure,
            "a failed apply leaves the definition unchanged"
        );
    }

    #[test]
    fn no_session_table_is_fine() {
        let config = parse("[database]\nurl = \"x\"").expect("other tables are ignored");
        assert!(config.sessions.is_empty());
    }
}
