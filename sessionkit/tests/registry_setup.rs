//! Registry setup: built-in sessions, TOML config, drivers, secrets and startup errors.

use std::time::Duration;

use sessionkit::{Registry, Secret, SessionInfo, SetupError};

fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| {
        pairs
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

const SECRET_ENV: &[(&str, &str)] = &[("SESSIONKIT_SECRET", "0123456789abcdef0123456789abcdef")];

fn info(registry: &Registry, name: &str) -> SessionInfo {
    registry
        .info()
        .into_iter()
        .find(|i| i.name.as_str() == name)
        .expect("registered")
}

/// name, default, driver, cookie, ttl, idle timeout
type Row = (String, bool, String, String, Option<Duration>, Option<Duration>);

#[test]
fn new_registers_web_admin_api_with_host_prefixed_cookies() {
    let registry = Registry::new();
    let rows: Vec<Row> = registry
        .info()
        .into_iter()
        .map(|i| {
            (
                i.name.to_string(),
                i.default,
                i.driver,
                i.cookie_name,
                i.ttl,
                i.idle_timeout,
            )
        })
        .collect();
    let hours = |h: u64| Some(Duration::from_secs(h * 3600));
    let mins = |m: u64| Some(Duration::from_secs(m * 60));
    assert_eq!(
        rows,
        vec![
            (
                "admin".into(),
                false,
                "memory".into(),
                "__Host-admin".into(),
                hours(8),
                mins(15)
            ),
            (
                "api".into(),
                false,
                "memory".into(),
                "__Host-api".into(),
                hours(24),
                mins(60)
            ),
            (
                "web".into(),
                true,
                "memory".into(),
                "__Host-web".into(),
                hours(24),
                mins(30)
            ),
        ]
    );
    let sessions = registry.build_with_env(&env(SECRET_ENV)).expect("builds");
    assert_eq!(sessions.default_name().as_str(), "web");
    assert_eq!(sessions.secret_origin(), sessionkit::SecretOrigin::SessionkitEnv);
    assert!(
        format!("{}", sessions.info()[2])
            .starts_with("web (default) driver=memory cookie=__Host-web ttl=1d idle=30m")
    );
}

#[test]
fn toml_changes_registered_sessions_only() {
    let mut registry = Registry::new();
    registry
        .apply_toml(
            r#"
            [app]
            name = "not ours"
            [session]
            namespace = "shop"
            [session.sessions.web]
            cookie_name = "sid"
            secure = false
            ttl = "12h"
            idle_timeout = "0"
            shared = true
            [session.sessions.web.meta]
            area = "frontend"
            "#,
        )
        .expect("applies");
    let web = info(&registry, "web");
    assert_eq!(
        (web.cookie_name.as_str(), web.ttl, web.idle_timeout, web.shared),
        ("sid", Some(Duration::from_secs(43_200)), None, true)
    );
    assert_eq!(web.meta["area"], "frontend");

    let err = registry
        .apply_toml("[session.sessions.shop]\nttl = \"1h\"")
        .expect_err("unknown session");
    assert!(
        err.to_string().contains("session.sessions.shop") && err.to_string().contains("not registered"),
        "{err}"
    );
    registry.add_session("shop").expect("add");
    registry
        .apply_toml("[session.sessions.shop]\nttl = \"1h\"")
        .expect("now it applies");
    assert_eq!(info(&registry, "shop").ttl, Some(Duration::from_secs(3600)));
}

#[test]
fn config_errors_name_session_and_key_and_change_nothing() {
    let mut registry = Registry::new();
    let before = registry.info();
    let err = registry
        .apply_toml("[session.sessions.web]\nttl = \"2h\"\n[session.sessions.admin]\nidle_timeout = \"soon\"")
        .expect_err("invalid");
    assert!(
        err.to_string()
            .contains("`idle_timeout` in [session.sessions.admin]"),
        "{err}"
    );
    assert_eq!(registry.info(), before, "all or nothing");
    let err = registry
        .apply_toml("[session.sessions.web]\ncookie_path = \"/app\"")
        .expect_err("__Host- rule");
    assert!(
        err.to_string().contains("session `web`") && err.to_string().contains("__Host-"),
        "{err}"
    );
    let err = registry
        .apply_toml("[session.sessions.web]\ncookie_name = \"sid\"\nsame_site = \"none\"\nsecure = false")
        .expect_err("rule");
    assert!(err.to_string().contains("same_site"), "{err}");
}

#[test]
fn config_files_are_read_and_missing_files_reported() {
    let dir = std::env::temp_dir().join(format!("sessionkit-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("sessions.toml");
    std::fs::write(&path, "[session.sessions.api]\nidle_timeout = \"5m\"\n").expect("write");
    let mut registry = Registry::new();
    registry.apply_toml_file(&path).expect("applies");
    assert_eq!(
        info(&registry, "api").idle_timeout,
        Some(Duration::from_secs(300))
    );
    let err = registry
        .apply_toml_file(dir.join("missing.toml"))
        .expect_err("missing");
    assert!(
        matches!(err, SetupError::ReadConfig { .. }) && err.to_string().contains("missing.toml"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn drivers_are_checked_at_build() {
    let mut registry = Registry::new();
    assert!(matches!(
        registry.register_driver("cookie", sessionkit::MemoryDriver::new()),
        Err(SetupError::ReservedDriverName { .. })
    ));
    registry
        .apply_toml("[session.sessions.api]\ndriver = \"redis\"")
        .expect("config may name a driver registered later");
    let err = registry
        .build_with_env(&env(SECRET_ENV))
        .expect_err("redis is not registered");
    assert!(
        err.to_string().contains("session `api` uses driver `redis`"),
        "{err}"
    );

    let mut registry = Registry::new();
    registry
        .apply_toml("[session.sessions.api]\ndriver = \"redis\"")
        .expect("applies");
    registry
        .register_driver("redis", sessionkit::MemoryDriver::new())
        .expect("register");
    registry
        .build_with_env(&env(SECRET_ENV))
        .expect("builds once registered");
}

#[test]
fn duplicate_cookie_names_are_refused() {
    let mut registry = Registry::new();
    registry
        .apply_toml("[session.sessions.admin]\ncookie_name = \"__Host-web\"")
        .expect("applies");
    let err = registry.build_with_env(&env(SECRET_ENV)).expect_err("clash");
    assert!(matches!(err, SetupError::DuplicateCookieName { .. }), "{err}");
}

#[test]
fn chunk_cookie_names_count_as_cookie_names() {
    let toml = "[session.sessions.web]\ndriver = \"cookie\"\ncookie_chunks = 3\n\
                [session.sessions.admin]\ncookie_name = \"__Host-web.2\"";
    let mut registry = Registry::new();
    registry.apply_toml(toml).expect("applies");
    let err = registry.build_with_env(&env(SECRET_ENV)).expect_err("clash");
    assert!(
        matches!(&err, SetupError::DuplicateCookieName { cookie, .. } if cookie == "__Host-web.2"),
        "{err}"
    );
    // The same names on a session kept in a store, or within the cap, are fine.
    for toml in [
        "[session.sessions.web]\ncookie_chunks = 3\n[session.sessions.admin]\ncookie_name = \"__Host-web.2\"",
        "[session.sessions.web]\ndriver = \"cookie\"\ncookie_chunks = 2\n\
         [session.sessions.admin]\ncookie_name = \"__Host-web.2\"",
    ] {
        let mut registry = Registry::new();
        registry.apply_toml(toml).expect("applies");
        registry.build_with_env(&env(SECRET_ENV)).expect("no clash");
    }
}

#[test]
fn secrets_follow_the_documented_order() {
    use sessionkit::SecretOrigin::*;
    const BOTH_ENV: &[(&str, &str)] = &[
        ("SESSIONKIT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("APP_SECRET", "fedcba9876543210fedcba9876543210"),
    ];
    const APP_ENV_ONLY: &[(&str, &str)] = &[("APP_SECRET", "fedcba9876543210fedcba9876543210")];
    const PROD: &[(&str, &str)] = &[("APP_ENV", "production")];
    const SHORT: &[(&str, &str)] = &[("SESSIONKIT_SECRET", "too-short")];
    let build = |toml: &str, explicit: bool, vars: &'static [(&'static str, &'static str)]| {
        let mut registry = Registry::new();
        registry.apply_toml(toml).expect("applies");
        if explicit {
            registry.set_secret(Secret::new(*b"explicit secret, thirty-two byte").expect("long"));
        }
        registry.build_with_env(&env(vars)).map(|s| s.secret_origin())
    };
    let long = "[session]\nsecret = \"a session secret of at least 32 bytes\"\n[app]\nsecret = \"an app secret of at least 32 bytes!!\"";
    let app_only = "[app]\nsecret = \"an app secret of at least 32 bytes!!\"";
    assert_eq!(build(long, true, BOTH_ENV).expect("ok"), Explicit);
    assert_eq!(build(long, false, BOTH_ENV).expect("ok"), SessionConfig);
    assert_eq!(build(app_only, false, BOTH_ENV).expect("ok"), AppConfig);
    assert_eq!(build("", false, BOTH_ENV).expect("ok"), SessionkitEnv);
    assert_eq!(build("", false, APP_ENV_ONLY).expect("ok"), AppEnv);
    assert_eq!(build("", false, &[]).expect("ok"), Random);
    assert!(matches!(build("", false, PROD), Err(SetupError::MissingSecret)));
    let err = build("", false, SHORT).expect_err("short");
    assert!(
        err.to_string().contains("SESSIONKIT_SECRET") && !format!("{err:?}").contains("too-short"),
        "{err:?}"
    );
    let err = Registry::new()
        .apply_toml("[session]\nsecret = \"short\"")
        .map(|_| ())
        .expect_err("short in config");
    assert!(err.to_string().contains("`secret` in [session]"), "{err}");
}

#[test]
fn default_session_and_namespace_can_change() {
    let mut registry = Registry::new();
    registry.set_default_session("api").expect("known");
    assert!(matches!(
        registry.set_default_session("nope"),
        Err(SetupError::UnknownSession { .. })
    ));
    assert!(registry.set_namespace("_bad").is_err());
    registry.set_namespace("shop").expect("valid");
    let sessions = registry.build_with_env(&env(SECRET_ENV)).expect("builds");
    assert_eq!(sessions.default_name().as_str(), "api");
    assert!(format!("{sessions:?}").contains("default: \"api\""));
}
