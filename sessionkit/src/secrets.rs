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
    /// The deployment environment. Unset, empty, or one of `development`, `dev`, `test`,
    /// `local` (any case) is development, where a missing secret means random keys for
    /// the process; any other value (`production`, `staging`, `prod-eu`, ...) is
    /// production, where a missing or placeholder secret is a startup error.
    pub const APP_ENV: &str = "APP_ENV";
}

/// The fewest distinct byte values a secret may hold in production: fewer means a
/// placeholder (`"aaaa..."`, a repeated word), not random bytes.
pub const MIN_DISTINCT_SECRET_BYTES: usize = 8;

/// Whether the value of `APP_ENV` names a development environment (see
/// [`env::APP_ENV`]).
pub fn is_development(app_env: Option<&str>) -> bool {
    match app_env.map(str::trim) {
        None | Some("") => true,
        Some(value) => ["development", "dev", "test", "local"]
            .iter()
            .any(|dev| value.eq_ignore_ascii_case(dev)),
    }
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

impl std::fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretOrigin::Explicit => "the secret set in code",
            SecretOrigin::SessionConfig => "`secret` in [session]",
            SecretOrigin::AppConfig => "`secret` in [app]",
            SecretOrigin::SessionkitEnv => env::SESSIONKIT_SECRET,
            SecretOrigin::AppEnv => env::APP_SECRET,
            SecretOrigin::Random => "a random per-process key",
        })
    }
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
    let production = !is_development(env(env::APP_ENV).as_deref());
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
        if production {
            return Err(SetupError::MissingSecret);
        }
        tracing::warn!(
            "no session secret configured: using a random key for this process; sessions will not survive a \
             restart (set SESSIONKIT_SECRET to at least 32 random bytes)"
        );
        (Secret::generate(&mut rand::rng()), SecretOrigin::Random)
    };
    let mut previous: Vec<(String, Secret)> = sources
        .explicit_previous
        .into_iter()
        .chain(sources.config_previous)
        .map(|secret| ("a previous secret set in code or config".to_owned(), secret))
        .collect();
    if let Some(list) = env(env::SESSIONKIT_PREVIOUS_SECRETS) {
        for (index, part) in list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let origin = format!("{} (entry {})", env::SESSIONKIT_PREVIOUS_SECRETS, index + 1);
            match Secret::new(part.as_bytes()) {
                Ok(secret) => previous.push((origin, secret)),
                Err(source) => return Err(SetupError::Secret { origin, source }),
            }
        }
    }
    if production {
        let primary_origin = origin.to_string();
        for (origin, secret) in std::iter::once((primary_origin.as_str(), &primary))
            .chain(previous.iter().map(|(o, s)| (o.as_str(), s)))
        {
            let distinct = secret.distinct_bytes();
            if distinct < MIN_DISTINCT_SECRET_BYTES {
                return Err(SetupError::WeakSecret {
                    origin: origin.to_owned(),
                    distinct,
                });
            }
        }
    }
    let mut ring = KeyRing::new(&primary);
    for (_, secret) in &previous {
        ring = ring.with_previous(secret);
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
        for prod in ["production", "prod", " Production ", "staging", "prod-eu", "qa"] {
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

    #[test]
    fn only_named_development_environments_get_random_keys() {
        for dev in [
            None,
            Some(""),
            Some("development"),
            Some("dev"),
            Some("TEST"),
            Some(" local "),
        ] {
            assert!(is_development(dev), "{dev:?}");
            let env = env_of(&dev.map(|v| vec![(env::APP_ENV, v)]).unwrap_or_default());
            assert_eq!(
                resolve(SecretSources::default(), &env).expect("dev").1,
                SecretOrigin::Random
            );
        }
        for prod in ["production", "staging", "prod-eu", "developments", "qa"] {
            assert!(!is_development(Some(prod)), "{prod}");
        }
    }

    #[test]
    fn production_refuses_placeholder_secrets() {
        let repeated = "x".repeat(40);
        let seven = "abcdefgabcdefgabcdefgabcdefgabcdefg";
        let eight = "abcdefghabcdefghabcdefghabcdefgh";
        for (secret, ok) in [
            (repeated.as_str(), false),
            (seven, false),
            (eight, true),
            (LONG_A, false),
        ] {
            let env = env_of(&[(env::APP_ENV, "production"), (env::SESSIONKIT_SECRET, secret)]);
            let result = resolve(SecretSources::default(), &env);
            assert_eq!(result.is_ok(), ok, "{secret}");
            if let Err(err) = result {
                let text = err.to_string();
                assert!(
                    text.contains("SESSIONKIT_SECRET") && text.contains("32"),
                    "{text}"
                );
                assert!(!text.contains(secret), "the secret is never shown: {text}");
            }
            // Development accepts it: placeholder secrets are for local use.
            let env = env_of(&[(env::SESSIONKIT_SECRET, secret)]);
            assert!(resolve(SecretSources::default(), &env).is_ok());
        }
        let env = env_of(&[
            (env::APP_ENV, "staging"),
            (env::SESSIONKIT_SECRET, eight),
            (env::SESSIONKIT_PREVIOUS_SECRETS, &repeated),
        ]);
        let err = resolve(SecretSources::default(), &env).expect_err("weak previous secret");
        assert!(err.to_string().contains("entry 1"), "{err}");
    }
}
