//! The table and the statements, for a configurable table name.

use crate::error::SetupError;

/// The default table name.
pub const DEFAULT_TABLE: &str = "sessionkit_sessions";

/// Longest table (or schema) name accepted: PostgreSQL names are at most 63 bytes and
/// the index name appends `_expires_at_idx`.
const MAX_NAME: usize = 48;

/// Every statement the driver runs, for one table.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// The table as written (for `Debug` and logs).
    pub(crate) table: String,
    pub(crate) migrate: String,
    pub(crate) load: String,
    pub(crate) create: String,
    pub(crate) patch: String,
    pub(crate) touch: String,
    pub(crate) delete: String,
    pub(crate) delete_expired: String,
}

/// Checks one part of a table name.
fn check_part(part: &str) -> Result<(), SetupError> {
    if part.is_empty() {
        return Err(SetupError::InvalidTableName("a name part is empty"));
    }
    if part.len() > MAX_NAME {
        return Err(SetupError::InvalidTableName(
            "a name part is longer than 48 characters",
        ));
    }
    if part.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(SetupError::InvalidTableName("a name part starts with a digit"));
    }
    if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(SetupError::InvalidTableName(
            "only ASCII letters, digits and '_' are allowed",
        ));
    }
    Ok(())
}

/// The migration for `table` (`name` or `schema.name`), as documented in the README.
///
/// # Errors
/// [`SetupError::InvalidTableName`].
pub fn migration_sql(table: &str) -> Result<String, SetupError> {
    Ok(Statements::new(table)?.migrate)
}

impl Statements {
    pub(crate) fn new(table: &str) -> Result<Self, SetupError> {
        let (schema, name) = match table.split_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, table),
        };
        if let Some(schema) = schema {
            check_part(schema)?;
        }
        check_part(name)?;
        // Quoted, so names keep their case and may be reserved words.
        let t = match schema {
            Some(schema) => format!("\"{schema}\".\"{name}\""),
            None => format!("\"{name}\""),
        };
        let index = format!("\"{name}_expires_at_idx\"");
        Ok(Statements {
            table: table.to_owned(),
            migrate: format!(
                "CREATE TABLE IF NOT EXISTS {t} (
    namespace  text        NOT NULL,
    store_key  bytea       NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (namespace, store_key)
);
CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at);
"
            ),
            load: format!(
                "SELECT data, created_at, last_seen FROM {t} \
                 WHERE namespace = $1 AND store_key = $2 AND expires_at > now()"
            ),
            // Insert-if-absent; an expired row under the key is replaced.
            create: format!(
                "INSERT INTO {t} AS s (namespace, store_key, data, created_at, last_seen, expires_at) \
                 VALUES ($1, $2, $3::text::jsonb, $4, $5, $6) \
                 ON CONFLICT (namespace, store_key) DO UPDATE SET \
                 data = EXCLUDED.data, created_at = EXCLUDED.created_at, \
                 last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at \
                 WHERE s.expires_at <= now()"
            ),
            // Clear, then remove, then set, as `Patch::apply_to`: in one statement that
            // touches no row when the session is gone or expired.
            patch: format!(
                "UPDATE {t} SET \
                 data = ((CASE WHEN $3 THEN '{{}}'::jsonb ELSE data END) - $4::text[]) || $5::text::jsonb, \
                 last_seen = $6, expires_at = $7 \
                 WHERE namespace = $1 AND store_key = $2 AND expires_at > now()"
            ),
            touch: format!(
                "UPDATE {t} SET last_seen = $3, expires_at = $4 \
                 WHERE namespace = $1 AND store_key = $2 AND expires_at > now()"
            ),
            delete: format!("DELETE FROM {t} WHERE namespace = $1 AND store_key = $2"),
            // A bounded batch, oldest first, skipping rows a request holds: row locks
            // only, never the whole table.
            delete_expired: format!(
                "DELETE FROM {t} WHERE (namespace, store_key) IN (\
                 SELECT namespace, store_key FROM {t} WHERE expires_at <= now() \
                 ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for good in ["sessions", "app.sessions", "_x", "A1_b", &"a".repeat(48)] {
            assert!(Statements::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".x",
            "x.",
            "a.b.c",
            "1x",
            "x-y",
            "x y",
            "x\"y",
            "sessions; DROP TABLE users",
            &"a".repeat(49),
        ] {
            assert!(Statements::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statements_name_the_quoted_table() {
        let s = Statements::new("app.sessions").expect("valid");
        assert!(
            s.migrate
                .contains("CREATE TABLE IF NOT EXISTS \"app\".\"sessions\"")
        );
        assert!(
            s.migrate
                .contains("\"sessions_expires_at_idx\" ON \"app\".\"sessions\" (expires_at)")
        );
        for sql in [
            &s.load,
            &s.create,
            &s.patch,
            &s.touch,
            &s.delete,
            &s.delete_expired,
        ] {
            assert!(sql.contains("\"app\".\"sessions\""), "{sql}");
        }
        assert!(s.patch.contains("'{}'::jsonb"));
    }
}
