//! A Redis Cluster losing a primary: through the session layer, requests fail with 503
//! (never a silent logout) until the primary's replica is promoted, then every session
//! written before the kill loads again and new writes work, with the same registry and
//! driver (no restart of the app).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sessionkit::{Registry, Secret, Sessions};
use sessionkit_redis::RedisDriver;
use sessionkit_testkit::servers::redis_cluster::{self, NODE_TIMEOUT_MS};

/// How long the cluster may take to promote a replica and the client to find it.
const RECOVERY: Duration = Duration::from_secs(30);

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

/// A new session holding `n`, bound to user `u{n % 4}`; its cookie pair.
async fn write(sessions: &Sessions, n: usize) -> String {
    let request = sessions.request(Vec::<String>::new());
    let session = request.session("web").await.expect("new session");
    session.insert("n", &n).expect("insert");
    session.set_user(&format!("u{}", n % 4)).expect("bind");
    let outcome = request.save(200).await.expect("save");
    pair(outcome.set_cookies().next().expect("a cookie"))
}

/// What a read of the session behind `cookie` gives: its `n`, or the error's status.
async fn read(sessions: &Sessions, cookie: &str) -> Result<Option<usize>, u16> {
    let request = sessions.request([cookie.to_owned()]);
    let session = request.session("web").await.map_err(|err| {
        if err.status() != 503 {
            eprintln!("{err}: {:?}", std::error::Error::source(&err));
        }
        err.status()
    })?;
    let n = session.get::<usize>("n").map_err(|err| err.status())?;
    request.save(200).await.map_err(|err| err.status())?;
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_primary_means_503_until_its_replica_takes_over_then_nothing_is_lost() {
    let Some(mut cluster) = redis_cluster::own_cluster() else {
        return;
    };
    let driver = RedisDriver::cluster_builder(cluster.urls())
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    let mut registry = Registry::new();
    registry.set_secret(Secret::new(*b"failover test secret of 32 bytes").expect("secret"));
    registry
        .register_shared_driver("cluster", Arc::new(driver))
        .expect("register");
    registry
        .apply_toml("[session.sessions.web]\ndriver = \"cluster\"\n")
        .expect("config");
    let sessions = registry.build().expect("build");

    let mut cookies = Vec::new();
    for n in 0..48 {
        cookies.push(write(&sessions, n).await);
    }
    for (n, cookie) in cookies.iter().enumerate() {
        assert_eq!(read(&sessions, cookie).await, Ok(Some(n)));
    }
    // Replication is asynchronous: what a primary acknowledged but had not sent to its
    // replica dies with it. Wait for the replicas, so that nothing may be lost.
    cluster
        .wait_until_replicated(Duration::from_secs(10))
        .expect("replicas in sync");

    let victim = cluster.primaries()[0];
    cluster.kill(victim);
    let killed = Instant::now();
    let mut statuses = Vec::new();
    let recovered = loop {
        let mut all = true;
        for (n, cookie) in cookies.iter().enumerate() {
            match read(&sessions, cookie).await {
                Ok(Some(found)) => assert_eq!(found, n, "session {n} loads its own data"),
                Ok(None) => panic!("session {n} lost its data (a silent logout)"),
                Err(status) => {
                    statuses.push(status);
                    all = false;
                }
            }
        }
        if all {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < RECOVERY,
            "no recovery {RECOVERY:?} after the kill; statuses {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        statuses.iter().all(|&status| status == 503),
        "only 503 while the primary is replaced: {statuses:?}"
    );
    assert!(!statuses.is_empty(), "some sessions lived on the killed primary");
    eprintln!(
        "failover: every session loads again {recovered:?} after the primary was killed \
         (node timeout {NODE_TIMEOUT_MS} ms; {} requests answered 503 meanwhile)",
        statuses.len()
    );
    cluster
        .wait_until_healthy(RECOVERY)
        .expect("the cluster is whole again with the promoted replica");

    // New writes work, and a user's list still finds all of that user's sessions.
    for n in 48..64 {
        let cookie = write(&sessions, n).await;
        assert_eq!(read(&sessions, &cookie).await, Ok(Some(n)));
    }
    let listed = sessions.user_sessions("web", "u1").await.expect("list");
    assert_eq!(listed.len(), 16, "12 before the kill, 4 after");
}
