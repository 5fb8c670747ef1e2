//! Where the key ring comes from: an explicit key, the config, or the environment.

use sessionkit_core::{KeyRing, Secret};

use crate::error::SetupError;

/// The environment variables read at startup.
pub mod env {
    /// The primary secret (at least 32 bytes).
    pub const SESSIONKIT_SECRET: &str = "SESSIONKIT_SECRET";
    /// The app-wide secret, used when `SESSIONKIT_SECRET` is not set.
    pub const APP_SECRET: &str = "APP_SECRET";
    /// Verify-only previous secrets, comma-separated, during a rotation.
    pub const SESSIONKIT_PREVIOUS_SECRETS: &str = "SESSIONKIT_PREVIOUS_SECRETS";
    /// `production` or `prod` makes a missing secret a startup error.
    pub const APP_ENV: &str = "APP_ENV";
}

/// Secrets known before the environment is consulted.
#[derive(Debug, Default)]
pub(crate) struct SecretSources {
    pub(crate) explicit: Option<Secret>,
    pub(crate) explicit_previous: Vec<Secret>,
    pub(crate) config_session: Option<Secret>,
    pub(crate) config_app: Option<Secret>,
    pub(crate) config_previous: Vec<Secret>,
}

/// How the primary secret was found, for the startup log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    /// Set in code.
    Explicit,
    /// `session.secret` in the config.
    SessionConfig,
    /// `app.secret` in the config.
    AppConfig,
    /// The `SESSIONKIT_SECRET` variable.
    SessionkitEnv,
    /// The `APP_SECRET` variable.
    AppEnv,
    /// None was set: random keys for this process only (development).
    Random,
}

fn from_env(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<Secret>, SetupError> {
    match env(name) {
        Some(value) if !value.is_empty() => {
            Secret::new(value.into_bytes())
                .map(Some)
                .map_err(|source| SetupError::Secret {
                    origin: name.to_owned(),
                    source,
                })
        }
        _ => Ok(None),
    }
}

/// Resolves the key ring: explicit key, then `session.secret`, then `app.secret`, then
/// `SESSIONKIT_SECRET`, then `APP_SECRET`; previous secrets from code, config and
/// `SESSIONKIT_PREVIOUS_SECRETS`. With none, production is an error and development
/// gets a random secret (and a warning).
pub(crate) fn resolve(
    sources: SecretSources,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(KeyRing, SecretOrigin), SetupError> {
    let (primary, origin) = if let Some(secret) = sources.explicit {
        (secret, SecretOrigin::Explicit)
    } else if let Some(secret) = sources.config_session {
        (secret, SecretOrigin::SessionConfig)
    } else if let Some(secret) = sources.config_app {
        (secret, SecretOrigin::AppConfig)
    } else if let Some(secret) = from_env(env, env::SESSIONKIT_SECRET)? {
        (secret, SecretOrigin::SessionkitEnv)
    } else if let Some(secret) = from_env(env, env::APP_SECRET)? {
        (secret, SecretOrigin::AppEnv)
    } else {
        let production = env(env::APP_ENV)
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "production" | "prod"));
        if production {
            return Err(SetupError::MissingSecret);
        }
        tracing::warn!(
            "no session secret configured: using a random key for this process; sessions will not survive a \
             restart (set SESSIONKIT_SECRET to at least 32 random bytes)"
        );
        (Secret::generate(&mut rand::rng()), SecretOrigin::Random)
    };
    let mut ring = KeyRing::new(&primary);
    for secret in sources.explicit_previous.iter().chain(&sources.config_previous) {
        ring = ring.with_previous(secret);
    }
    if let Some(list) = env(env::SESSIONKIT_PREVIOUS_SECRETS) {
        for (index, part) in list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let secret = Secret::new(part.as_bytes()).map_err(|source| SetupError::Secret {
                origin: format!("{} (entry {})", env::SESSIONKIT_PREVIOUS_SECRETS, index + 1),
                source,
            })?;
            ring = ring.with_previous(&secret);
        }
    }
    Ok((ring, origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const LONG_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const LONG_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes()).expect("long")
    }

    #[test]
    fn precedence_is_explicit_config_then_env() {
        let env = env_of(&[(env::SESSIONKIT_SECRET, LONG_A), (env::APP_SECRET, LONG_B)]);
        let cases: Vec<(SecretSources, SecretOrigin)> = vec![
            (
                SecretSources {
                    explicit: Some(secret(LONG_B)),
                    config_session: Some(secret(LONG_A)),
                    ..Default::default()
                },
                SecretOrigin::Explicit,
            ),
            (
                SecretSources {
                    config_session: Some(secret(LONG_A)),
                    config_app: Some(secret(LONG_B)),
                    ..Default::default()
                },
                SecretOrigin::SessionConfig,
            ),
            (
                SecretSources {
                    config_app: Some(secret(LONG_B)),
                    ..Default::default()
                },
                SecretOrigin::AppConfig,
            ),
            (SecretSources::default(), SecretOrigin::SessionkitEnv),
        ];
        for (sources, expected) in cases {
            assert_eq!(resolve(sources, &env).expect("resolves").1, expected);
        }
        let only_app = env_of(&[(env::APP_SECRET, LONG_B)]);
        assert_eq!(
            resolve(SecretSources::default(), &only_app).expect("resolves").1,
            SecretOrigin::AppEnv
        );
    }

    #[test]
    fn the_same_secret_gives_the_same_keys() {
        let env = env_of(&[(env::SESSIONKIT_SECRET, LONG_A)]);
        let (a, _) = resolve(SecretSources::default(), &env).expect("resolves");
        let (b, _) = resolve(
            SecretSources {
                explicit: Some(secret(LONG_A)),
                ..Default::default()
            },
            &env_of(&[]),
        )
        .expect("resolves");
        assert_eq!(a.primary_id(), b.primary_id());
    }

    #[test]
    fn previous_secrets_come_from_everywhere() {
        let env = env_of(&[(
            env::SESSIONKIT_PREVIOUS_SECRETS,
            &format!(" {LONG_B} ,, cccccccccccccccccccccccccccccccccccc"),
        )]);
        let sources = SecretSources {
            explicit: Some(secret(LONG_A)),
            config_previous: vec![secret("dddddddddddddddddddddddddddddddddddd")],
            ..Default::default()
        };
        let (ring, _) = resolve(sources, &env).expect("resolves");
        assert_eq!(ring.previous_ids().count(), 3);
    }

    #[test]
    fn short_or_missing_secrets() {
        let err = resolve(
            SecretSources::default(),
            &env_of(&[(env::SESSIONKIT_SECRET, "short")]),
        )
        .expect_err("short");
        assert!(
            err.to_string().contains("SESSIONKIT_SECRET") && !format!("{err:?}").contains("short\""),
            "{err:?}"
        );
        let err = resolve(
            SecretSources {
                explicit: Some(secret(LONG_A)),
                ..Default::default()
            },
            &env_of(&[(env::SESSIONKIT_PREVIOUS_SECRETS, &format!("{LONG_B},tiny"))]),
        )
        .expect_err("short previous");
        assert!(err.to_string().contains("entry 2"), "{err}");
        for prod in ["production", "prod", " Production "] {
            assert!(matches!(
                resolve(SecretSources::default(), &env_of(&[(env::APP_ENV, prod)])),
                Err(SetupError::MissingSecret)
            ));
        }
        let (_, origin) = resolve(
            SecretSources::default(),
            &env_of(&[(env::APP_ENV, "development")]),
        )
        .expect("dev");
        assert_eq!(origin, SecretOrigin::Random);
    }
}
