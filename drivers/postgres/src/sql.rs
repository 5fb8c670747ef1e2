//! The table and the statements, for a configurable table name.

use sessionkit::core::USER_KEY;

use crate::error::SetupError;

/// The default table name.
pub const DEFAULT_TABLE: &str = "sessionkit_sessions";

/// Longest table (or schema) name accepted: PostgreSQL names are at most 63 bytes and
/// the index names append `_expires_at_idx` (or the shorter `_user_key_idx`).
const MAX_NAME: usize = 48;

/// Every statement the driver runs, for one table.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// The table as written (for `Debug` and logs).
    pub(crate) table: String,
    pub(crate) migrate: String,
    /// Load and lookup: one statement that also returns `forward_to`.
    pub(crate) load: String,
    pub(crate) create: String,
    pub(crate) patch: String,
    pub(crate) touch: String,
    /// A compare-and-set of one key (`Driver::update`).
    pub(crate) update: String,
    pub(crate) delete: String,
    pub(crate) delete_namespace: String,
    pub(crate) rotate: String,
    /// A user's sessions: the live records whose `user_key` is the user's.
    pub(crate) user_sessions: String,
    pub(crate) delete_expired: String,
}

/// The SQL of `column` with a patch applied: clear (if the boolean parameter `$first`
/// says so), then remove the keys of `$first+1` (`text[]`), then set the object of
/// `$first+2` (JSON text), as `Patch::apply_to`.
fn patched_data(column: &str, first: usize) -> String {
    let (clear, remove, set) = (first, first + 1, first + 2);
    format!(
        "((CASE WHEN ${clear}::boolean THEN '{{}}'::jsonb ELSE {column} END) - ${remove}::text[]) || ${set}::text::jsonb"
    )
}

/// The SQL of a record's `user_key` after a write: `$first+1` (a `bytea`, NULL for
/// none) when the boolean `$first` says the write binds or unbinds the record,
/// otherwise `current`.
fn user_key_value(current: &str, first: usize) -> String {
    let (changes, user) = (first, first + 1);
    format!("CASE WHEN ${changes}::boolean THEN ${user}::bytea ELSE {current} END")
}

/// The `SET` clause of `user_key` for a write, as [`user_key_value`].
fn patched_user_key(column: &str, first: usize) -> String {
    format!("{column} = {}", user_key_value(column, first))
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
        let user_index = format!("\"{name}_user_key_idx\"");
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
    forward_to bytea,
    user_key   bytea,
    PRIMARY KEY (namespace, store_key)
);
ALTER TABLE {t} ADD COLUMN IF NOT EXISTS forward_to bytea;
DO $migrate$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = '{t}'::regclass AND attname = 'user_key' AND NOT attisdropped) THEN
        ALTER TABLE {t} ADD COLUMN user_key bytea;
        -- Sessions bound to a user before the column existed (once, when it is added).
        UPDATE {t} SET user_key = decode(data -> '{USER_KEY}' ->> 'k', 'hex')
        WHERE forward_to IS NULL AND (data -> '{USER_KEY}' ->> 'k') ~ '^[0-9a-f]{{64}}$';
    END IF;
END
$migrate$;
CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at);
CREATE INDEX IF NOT EXISTS {user_index} ON {t} (namespace, user_key) WHERE user_key IS NOT NULL;
"
            ),
            load: format!(
                "SELECT data, created_at, last_seen, forward_to FROM {t} \
                 WHERE namespace = $1 AND store_key = $2 AND expires_at > now()"
            ),
            // Insert-if-absent; an expired row (record or forward) under the key is
            // replaced. `$7`: the digest of the user the record is bound to, or NULL.
            create: format!(
                "INSERT INTO {t} AS s (namespace, store_key, data, created_at, last_seen, expires_at, user_key) \
                 VALUES ($1, $2, $3::text::jsonb, $4, $5, $6, $7::bytea) \
                 ON CONFLICT (namespace, store_key) DO UPDATE SET \
                 data = EXCLUDED.data, created_at = EXCLUDED.created_at, \
                 last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at, forward_to = NULL, \
                 user_key = EXCLUDED.user_key \
                 WHERE s.expires_at <= now()"
            ),
            // Clear, then remove, then set, as `Patch::apply_to`: in one statement that
            // touches no row when the session is gone, expired or a forward. When the
            // patch binds or unbinds the record (`$8`), `user_key` becomes `$9`.
            patch: format!(
                "UPDATE {t} SET \
                 data = {patched}, \
                 last_seen = $6, expires_at = $7, \
                 {user_key} \
                 WHERE namespace = $1 AND store_key = $2 AND expires_at > now() AND forward_to IS NULL",
                patched = patched_data("data", 3),
                user_key = patched_user_key("user_key", 8)
            ),
            touch: format!(
                "UPDATE {t} SET last_seen = $3, expires_at = $4 \
                 WHERE namespace = $1 AND store_key = $2 AND expires_at > now() AND forward_to IS NULL"
            ),
            // A compare-and-set of one key ($3, in its stored form): only when the live
            // record's value under it equals the one in the object $4 (NULL: absent),
            // set it from the object $6 ($5) or remove it, with last-seen $7 and expiry
            // $8. A concurrent write to the row makes PostgreSQL check the condition
            // again on the row as that write left it, so no update is lost. The values
            // compare as jsonb text (which keeps a number's scale), so `1` and `1.0`
            // differ, as they do for every other driver.
            update: format!(
                "UPDATE {t} SET \
                 data = CASE WHEN $5::boolean THEN data || $6::text::jsonb ELSE data - $3::text END, \
                 last_seen = $7, expires_at = $8 \
                 WHERE namespace = $1 AND store_key = $2 AND expires_at > now() AND forward_to IS NULL \
                 AND (data -> $3::text)::text IS NOT DISTINCT FROM ($4::text::jsonb -> $3::text)::text"
            ),
            delete: format!("DELETE FROM {t} WHERE namespace = $1 AND store_key = $2"),
            // Every row of a namespace (an admin's "end every session"); the primary key's
            // leading column serves it.
            delete_namespace: format!("DELETE FROM {t} WHERE namespace = $1"),
            // One statement: lock the live record under the old key ($2), insert it
            // under the new key ($3) with the patch ($4 to $6, applied as `patch`
            // applies it), last-seen time ($7) and expiry ($8), then turn the old row
            // into a forward to $3 that expires at the end of the grace window ($9),
            // or delete it when that end has passed. The forward's `data` is `[]`,
            // which no record has. The moved record keeps its `user_key` unless the
            // patch binds or unbinds it (`$10`, `$11`, as for `patch`); the forward
            // has none. The old row changes only when the insert happened;
            // the answer says whether a record was found and whether it moved (the
            // new key was free).
            rotate: format!(
                "WITH old AS (\
                 SELECT data, created_at, user_key FROM {t} \
                 WHERE namespace = $1 AND store_key = $2 AND expires_at > now() AND forward_to IS NULL \
                 FOR UPDATE), \
                 moved AS (\
                 INSERT INTO {t} AS s (namespace, store_key, data, created_at, last_seen, expires_at, user_key) \
                 SELECT $1::text, $3::bytea, {patched}, old.created_at, $7::timestamptz, $8::timestamptz, \
                 {moved_user} FROM old \
                 ON CONFLICT (namespace, store_key) DO UPDATE SET \
                 data = EXCLUDED.data, created_at = EXCLUDED.created_at, \
                 last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at, forward_to = NULL, \
                 user_key = EXCLUDED.user_key \
                 WHERE s.expires_at <= now() \
                 RETURNING 1), \
                 forwarded AS (\
                 UPDATE {t} SET data = '[]'::jsonb, forward_to = $3, expires_at = $9, user_key = NULL \
                 WHERE namespace = $1 AND store_key = $2 AND $9::timestamptz > now() AND EXISTS (SELECT 1 FROM moved) \
                 RETURNING 1), \
                 dropped AS (\
                 DELETE FROM {t} \
                 WHERE namespace = $1 AND store_key = $2 AND $9::timestamptz <= now() AND EXISTS (SELECT 1 FROM moved) \
                 RETURNING 1) \
                 SELECT EXISTS (SELECT 1 FROM old), EXISTS (SELECT 1 FROM moved)",
                patched = patched_data("old.data", 4),
                moved_user = user_key_value("old.user_key", 10)
            ),
            // Served by the partial index on (namespace, user_key).
            user_sessions: format!(
                "SELECT store_key, data, created_at, last_seen FROM {t} \
                 WHERE namespace = $1 AND user_key = $2 AND expires_at > now() AND forward_to IS NULL"
            ),
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
            &s.update,
            &s.delete,
            &s.rotate,
            &s.user_sessions,
            &s.delete_expired,
        ] {
            assert!(sql.contains("\"app\".\"sessions\""), "{sql}");
        }
        assert!(s.patch.contains("'{}'::jsonb"));
        assert!(
            s.migrate
                .contains("ALTER TABLE \"app\".\"sessions\" ADD COLUMN IF NOT EXISTS forward_to bytea;")
        );
        // Forwards are never loaded, patched or touched as records.
        for sql in [&s.patch, &s.touch, &s.update] {
            assert!(sql.contains("AND forward_to IS NULL"), "{sql}");
        }
        assert!(s.load.contains("forward_to"));
        assert!(s.create.contains("forward_to = NULL"));
        // Rotate applies the patch as `patch` does.
        assert!(s.rotate.contains(&patched_data("old.data", 4)));
        assert!(s.patch.contains(&patched_data("data", 3)));
        // The user index: a column, its backfill and index in the migration, kept by
        // every write that sets a record.
        assert!(s.migrate.contains("    user_key   bytea,\n"));
        assert!(s.migrate.contains("ADD COLUMN user_key bytea;"));
        assert!(s.migrate.contains(
            "\"sessions_user_key_idx\" ON \"app\".\"sessions\" (namespace, user_key) WHERE user_key IS NOT NULL"
        ));
        assert!(s.create.contains("user_key = EXCLUDED.user_key"));
        assert!(s.patch.contains(&patched_user_key("user_key", 8)));
        assert!(s.rotate.contains(&user_key_value("old.user_key", 10)));
        assert!(
            s.user_sessions
                .contains("user_key = $2 AND expires_at > now() AND forward_to IS NULL")
        );
    }
}
