//! Load + patch + save through the registry on the memory driver, single-threaded and
//! with two threads working on different sessions at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sessionkit::{Registry, Secret, Sessions};

fn sessions() -> Sessions {
    let mut registry = Registry::new();
    registry.set_secret(Secret::new(*sessionkit_benches::SECRET).expect("32 bytes"));
    registry.build_with_env(&|_| None).expect("builds")
}

async fn new_cookie(sessions: &Sessions) -> String {
    let request = sessions.request([""]);
    request
        .default_session()
        .await
        .expect("web")
        .insert("visits", &0u64)
        .expect("insert");
    let saved = request.save(200).await.expect("save");
    saved
        .set_cookies()
        .next()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

/// One request: load, patch one key, save.
async fn round(sessions: &Sessions, cookie: &str) {
    let request = sessions.request([cookie]);
    let web = request.default_session().await.expect("load");
    let n = web.get::<u64>("visits").expect("get").unwrap_or(0);
    web.insert("visits", &(n + 1)).expect("insert");
    request.save(200).await.expect("save");
}

fn registry(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/load+patch+save");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let single = sessions();
    let cookie = rt.block_on(new_cookie(&single));
    group.bench_function("1-thread", |b| b.iter(|| rt.block_on(round(&single, &cookie))));

    // Two OS threads, each with its own runtime and session, hammering one registry.
    // Reported time is per request (wall time / requests across both threads).
    let shared = Arc::new(sessions());
    group.bench_function("2-threads", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(2);
            let start = Instant::now();
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .build()
                            .expect("runtime");
                        let cookie = rt.block_on(new_cookie(&shared));
                        let start = Instant::now();
                        for _ in 0..per_thread {
                            rt.block_on(round(&shared, &cookie));
                        }
                        start.elapsed()
                    })
                })
                .collect();
            for handle in handles {
                handle.join().expect("thread");
            }
            let elapsed = start.elapsed();
            // Per-request time across both threads.
            let nanos = elapsed.as_nanos() * u128::from(iters) / u128::from((per_thread * 2).max(1));
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        });
    });
    group.finish();
}

criterion_group!(benches, registry);
criterion_main!(benches);
