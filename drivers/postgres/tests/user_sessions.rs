//! A user's sessions in PostgreSQL: the `user_key` column each write keeps, the
//! listing `SELECT` and its index, rows that are not listed, and the migration of a
//! table of the previous version (the column added and filled for bound rows).

use std::time::Duration;

use serde_json::{Map, Value, json};
use sessionkit::core::{Namespace, SessionId, SessionName, USER_KEY, UserBinding};
use sessionkit::{
    Clock, Driver, Patch, Record, Rotation, StoreKey, SystemClock, Timestamp, UserKey, WriteResult,
};
use sessionkit_postgres::{PostgresDriver, tokio_postgres};
use sessionkit_testkit::postgres_factory as factory;
use sessionkit_testkit::servers::postgres as common;

fn namespace() -> Namespace {
    Namespace::new("users").expect("namespace")
}

fn web() -> SessionName {
    SessionName::new("web").expect("session name")
}

fn key() -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&namespace())
}

fn user(id: &str) -> UserKey {
    UserKey::new(&namespace(), &web(), id)
}

fn binding(id: &str) -> Value {
    UserBinding::new(&namespace(), &web(), id)
        .expect("binding")
        .to_value()
}

fn in_secs(secs: u64) -> Timestamp {
    SystemClock.now().saturating_add(Duration::from_secs(secs))
}

fn bound_record(id: &str) -> Record {
    let mut data = Map::new();
    data.insert("n".into(), json!(1));
    data.insert(USER_KEY.into(), binding(id));
    Record::new(SystemClock.now(), data)
}

fn patch(set: Map<String, Value>, remove: Vec<String>) -> Patch {
    Patch {
        set: set.into_iter().collect(),
        remove,
        last_seen: SystemClock.now(),
        ..Patch::default()
    }
}

async fn listed(driver: &PostgresDriver, id: &str) -> Vec<StoreKey> {
    let mut keys: Vec<StoreKey> = driver
        .user_sessions(&user(id))
        .await
        .expect("user_sessions")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    keys.sort();
    keys
}

fn sorted(mut keys: Vec<StoreKey>) -> Vec<StoreKey> {
    keys.sort();
    keys
}

/// The `user_key` column of `key`'s row (`None`: no row; `Some(None)`: NULL).
async fn user_key(raw: &tokio_postgres::Client, table: &str, key: &StoreKey) -> Option<Option<Vec<u8>>> {
    raw.query_opt(
        &format!("SELECT user_key FROM \"{table}\" WHERE namespace = $1 AND store_key = $2"),
        &[&key.namespace().as_str(), &&key.digest()[..]],
    )
    .await
    .expect("select")
    .map(|row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_keeps_the_user_key_column() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let table = driver.table().to_owned();
    let ada = user("ada").digest().to_vec();
    let bob = user("bob").digest().to_vec();

    // Create: from the record.
    let (bound, unbound) = (key(), key());
    driver
        .create(&bound, &bound_record("ada"), in_secs(600))
        .await
        .expect("create");
    driver
        .create(
            &unbound,
            &Record::new(SystemClock.now(), Map::new()),
            in_secs(600),
        )
        .await
        .expect("create");
    assert_eq!(user_key(&raw, &table, &bound).await, Some(Some(ada.clone())));
    assert_eq!(user_key(&raw, &table, &unbound).await, Some(None));

    // Patch: a patch that leaves the binding leaves the column; binding sets it,
    // removing the binding or clearing the data clears it.
    let mut other = Map::new();
    other.insert("x".into(), json!(2));
    driver
        .patch(&bound, &patch(other, Vec::new()), in_secs(600))
        .await
        .expect("patch");
    assert_eq!(user_key(&raw, &table, &bound).await, Some(Some(ada.clone())));
    let mut rebind = Map::new();
    rebind.insert(USER_KEY.into(), binding("bob"));
    driver
        .patch(&unbound, &patch(rebind, Vec::new()), in_secs(600))
        .await
        .expect("patch");
    assert_eq!(user_key(&raw, &table, &unbound).await, Some(Some(bob.clone())));
    driver
        .patch(
            &unbound,
            &patch(Map::new(), vec![USER_KEY.to_owned()]),
            in_secs(600),
        )
        .await
        .expect("patch");
    assert_eq!(user_key(&raw, &table, &unbound).await, Some(None));
    let clear = Patch {
        clear: true,
        ..patch(Map::new(), Vec::new())
    };
    let cleared = key();
    driver
        .create(&cleared, &bound_record("ada"), in_secs(600))
        .await
        .expect("create");
    driver.patch(&cleared, &clear, in_secs(600)).await.expect("patch");
    assert_eq!(user_key(&raw, &table, &cleared).await, Some(None));
    assert_eq!(listed(&driver, "ada").await, vec![bound.clone()]);
    assert!(listed(&driver, "bob").await.is_empty());

    // Rotate: the stored binding moves (whatever this request's view says); a patch
    // that rebinds decides; the forward has none.
    let rec = bound_record("ada");
    let stale_view = Record::new(SystemClock.now(), Map::new());
    let rotation = Rotation {
        from: bound.clone(),
        to: key(),
        record: stale_view,
        patch: patch(Map::new(), Vec::new()),
        expires_at: in_secs(600),
        grace_until: in_secs(30),
    };
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(
        user_key(&raw, &table, &rotation.to).await,
        Some(Some(ada.clone()))
    );
    assert_eq!(user_key(&raw, &table, &bound).await, Some(None), "the forward");
    assert_eq!(listed(&driver, "ada").await, vec![rotation.to.clone()]);

    let mut rebind = Map::new();
    rebind.insert(USER_KEY.into(), binding("bob"));
    let rebinding = Rotation {
        from: rotation.to.clone(),
        to: key(),
        record: rec,
        patch: patch(rebind, Vec::new()),
        expires_at: in_secs(600),
        grace_until: in_secs(30),
    };
    assert_eq!(
        driver.rotate(&rebinding).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(user_key(&raw, &table, &rebinding.to).await, Some(Some(bob)));
    assert!(listed(&driver, "ada").await.is_empty());
    assert_eq!(listed(&driver, "bob").await, vec![rebinding.to.clone()]);
}

/// A row whose `user_key` says one user but whose data says another (or does not
/// decode) is not listed, and listing it is no error; neither are expired rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_are_not_the_users_are_not_listed() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let table = driver.table().to_owned();
    let (good, tampered, corrupt, expired) = (key(), key(), key(), key());
    for k in [&good, &tampered, &corrupt] {
        driver
            .create(k, &bound_record("ada"), in_secs(600))
            .await
            .expect("create");
    }
    driver
        .create(&expired, &bound_record("ada"), in_secs(1))
        .await
        .expect("create");
    raw.execute(
        &format!("UPDATE \"{table}\" SET data = $3::text::jsonb WHERE namespace = $1 AND store_key = $2"),
        &[
            &tampered.namespace().as_str(),
            &&tampered.digest()[..],
            &json!({ USER_KEY: binding("eve") }).to_string(),
        ],
    )
    .await
    .expect("tamper");
    // Bound to ada, but a string that is not a valid escape: the row is corrupt.
    raw.execute(
        &format!("UPDATE \"{table}\" SET data = $3::text::jsonb WHERE namespace = $1 AND store_key = $2"),
        &[
            &corrupt.namespace().as_str(),
            &&corrupt.digest()[..],
            &json!({ USER_KEY: binding("ada"), "s": "\u{10FFFD}x" }).to_string(),
        ],
    )
    .await
    .expect("corrupt");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let listed = driver.user_sessions(&user("ada")).await.expect("no error");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, good);
    assert_eq!(listed[0].1.data[USER_KEY], binding("ada"));
}

/// The listing statement is served by the partial index on `(namespace, user_key)`,
/// with its parameters (a generic plan), on a table of many other sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_uses_the_user_key_index() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let table = driver.table().to_owned();
    raw.execute(
        &format!(
            "INSERT INTO \"{table}\" (namespace, store_key, data, created_at, last_seen, expires_at) \
             SELECT 'users', sha256(i::text::bytea), '{{}}', now(), now(), now() + interval '1 hour' \
             FROM generate_series(1, 5000) AS i"
        ),
        &[],
    )
    .await
    .expect("unbound sessions");
    let bound = key();
    driver
        .create(&bound, &bound_record("ada"), in_secs(600))
        .await
        .expect("create");
    raw.batch_execute(&format!(
        "ANALYZE \"{table}\"; SET plan_cache_mode = force_generic_plan;"
    ))
    .await
    .expect("analyze");
    raw.batch_execute(&format!(
        "PREPARE listing(text, bytea) AS SELECT store_key, data, created_at, last_seen FROM \"{table}\" \
         WHERE namespace = $1 AND user_key = $2 AND expires_at > now() AND forward_to IS NULL"
    ))
    .await
    .expect("prepare");
    // The digest in hex (a store key's hex form is its digest's).
    let digest = StoreKey::from_digest(namespace(), *user("ada").digest()).to_hex();
    let plan: Vec<String> = raw
        .query(&format!("EXPLAIN EXECUTE listing('users', '\\x{digest}')"), &[])
        .await
        .expect("explain")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains(&format!("{table}_user_key_idx")), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert_eq!(listed(&driver, "ada").await, vec![bound]);
}

/// A table of the previous version (with `forward_to`, without `user_key`): `migrate`
/// adds the column, fills it for rows bound to a user (once), adds the index, and
/// sessions bound before the upgrade are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_adds_and_fills_user_key_in_a_table_of_the_previous_version() {
    let factory = factory!();
    let table = common::unique_table();
    let raw = common::raw(&factory.url).await;
    raw.batch_execute(&format!(
        "CREATE TABLE \"{table}\" (
    namespace  text        NOT NULL,
    store_key  bytea       NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    forward_to bytea,
    PRIMARY KEY (namespace, store_key)
);
CREATE INDEX \"{table}_expires_at_idx\" ON \"{table}\" (expires_at);"
    ))
    .await
    .expect("the previous version's table");
    let (ada1, ada2, bob, unbound, malformed, forward) = (key(), key(), key(), key(), key(), key());
    let insert = format!(
        "INSERT INTO \"{table}\" (namespace, store_key, data, created_at, last_seen, expires_at, forward_to) \
         VALUES ($1, $2, $3::text::jsonb, now(), now(), now() + interval '1 hour', $4)"
    );
    let rows: [(&StoreKey, Value, Option<Vec<u8>>); 6] = [
        (&ada1, json!({ USER_KEY: binding("ada"), "n": 1 }), None),
        (&ada2, json!({ USER_KEY: binding("ada") }), None),
        (&bob, json!({ USER_KEY: binding("bob") }), None),
        (&unbound, json!({"user": "ada"}), None),
        (
            &malformed,
            json!({ USER_KEY: {"id": "ada", "k": "not hex"} }),
            None,
        ),
        (&forward, json!([]), Some(ada1.digest().to_vec())),
    ];
    for (k, data, forward_to) in &rows {
        raw.execute(
            &insert,
            &[
                &k.namespace().as_str(),
                &&k.digest()[..],
                &data.to_string(),
                forward_to,
            ],
        )
        .await
        .expect("a row of the previous version");
    }

    let driver = PostgresDriver::builder(&factory.url)
        .table(&table)
        .pool_size(2)
        .connect()
        .await
        .expect("connect");
    driver.migrate().await.expect("migrate");
    assert_eq!(
        listed(&driver, "ada").await,
        sorted(vec![ada1.clone(), ada2.clone()])
    );
    assert_eq!(listed(&driver, "bob").await, vec![bob.clone()]);
    for k in [&unbound, &malformed, &forward] {
        assert_eq!(user_key(&raw, &table, k).await, Some(None), "{k:?}");
    }

    // The fill runs once, when the column is added (a later migrate reads no rows): a
    // row written without `user_key` afterwards (by an instance of the previous
    // version) stays unlisted until this version writes it.
    let late = key();
    raw.execute(
        &insert,
        &[
            &late.namespace().as_str(),
            &&late.digest()[..],
            &json!({ USER_KEY: binding("ada") }).to_string(),
            &None::<Vec<u8>>,
        ],
    )
    .await
    .expect("a row of the previous version");
    driver.migrate().await.expect("migrate again");
    assert_eq!(user_key(&raw, &table, &late).await, Some(None));
    driver
        .patch(&ada2, &patch(Map::new(), vec![USER_KEY.to_owned()]), in_secs(600))
        .await
        .expect("unbind");
    assert_eq!(listed(&driver, "ada").await, vec![ada1.clone()]);
    let fresh = key();
    driver
        .create(&fresh, &bound_record("ada"), in_secs(600))
        .await
        .expect("create");
    assert_eq!(listed(&driver, "ada").await, sorted(vec![ada1, fresh]));
    let indexes: i64 = raw
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(namespace, user_key)%'",
            &[&table],
        )
        .await
        .expect("indexes")
        .get(0);
    assert_eq!(indexes, 1);
}
