//! Core micro-benchmarks with their floors measured in the same run.

use std::hint::black_box;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, Nonce};
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Map, Value};
use sessionkit_core::internal::cookie_values;
use sessionkit_core::internal::{self, SealedRecord};
use sessionkit_core::{
    DriverChoice, KeyRing, LoadResult, Namespace, Placement, Record, Secret, SessionDef, SessionId,
    SessionMachine, SessionName, SessionSpec, Timestamp,
};

fn spec(driver: DriverChoice) -> Arc<SessionSpec> {
    let keys = KeyRing::new(&Secret::new(*b"benchmark secret, thirty-two b.!").expect("32 bytes"));
    let mut def = SessionDef::new(SessionName::new("web").expect("name"));
    def.driver = driver;
    Arc::new(SessionSpec::new(def, &Namespace::new("bench").expect("ns"), &keys).expect("spec"))
}

/// A JSON object whose encoding is about `size` bytes.
fn data(size: usize) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("user".into(), Value::from("ada"));
    map.insert("visits".into(), Value::from(42));
    let used = serde_json::to_vec(&map).expect("json").len();
    map.insert(
        "blob".into(),
        Value::from("x".repeat(size.saturating_sub(used + 10))),
    );
    map
}

fn id_cookie(c: &mut Criterion) {
    let spec = spec(DriverChoice::Memory);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let id = SessionId::generate(&mut rng);
    let value = internal::sign_id(spec.id_keys(), &id);
    let mut group = c.benchmark_group("id-cookie");
    group.bench_function("sign", |b| {
        b.iter(|| internal::sign_id(spec.id_keys(), black_box(&id)));
    });
    group.bench_function("verify", |b| {
        b.iter(|| internal::verify_id(spec.id_keys(), black_box(&value)));
    });
    // The floor: one HMAC-SHA256 over the same 37-byte input (version, key id, id),
    // keyed state prepared in advance, as ours is.
    let mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&[7u8; 32]).expect("any key length");
    let input = [0u8; 37];
    group.bench_function("floor-hmac-sha256", |b| {
        b.iter(|| {
            let mut m = mac.clone();
            m.update(black_box(&input));
            m.finalize().into_bytes()
        });
    });
    group.finish();
}

fn sealed_cookie(c: &mut Criterion) {
    let spec = spec(DriverChoice::Cookie);
    let cipher = Aes256Gcm::new(&[9u8; 32].into());
    let mut group = c.benchmark_group("sealed-cookie");
    for size in [100usize, 1024, 3072] {
        let record = SealedRecord::new(Timestamp::from_millis(1), Timestamp::from_millis(2), data(size));
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let sealed = internal::seal(spec.seal_keys(), &record, &mut rng).expect("seals");
        group.bench_with_input(BenchmarkId::new("seal", size), &record, |b, r| {
            b.iter(|| internal::seal(spec.seal_keys(), black_box(r), &mut rng).expect("seals"));
        });
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| internal::open(spec.seal_keys(), black_box(s)).expect("opens"));
        });
        group.bench_with_input(BenchmarkId::new("open+seal", size), &sealed, |b, s| {
            b.iter(|| {
                let opened = internal::open(spec.seal_keys(), black_box(s)).expect("opens");
                internal::seal(spec.seal_keys(), &opened.record, &mut rng).expect("seals")
            });
        });
        // Format 1 (one fixed AES-GCM key per secret, random nonces), which new seals no
        // longer use: the cost of per-cookie message keys is the difference to open+seal.
        let sealed_v1 = internal::seal_v1(spec.seal_keys(), &record, &mut rng).expect("seals");
        group.bench_with_input(BenchmarkId::new("open+seal-v1", size), &sealed_v1, |b, s| {
            b.iter(|| {
                let opened = internal::open(spec.seal_keys(), black_box(s)).expect("opens");
                internal::seal_v1(spec.seal_keys(), &opened.record, &mut rng).expect("seals")
            });
        });
        // The floor: JSON encode + AES-256-GCM seal, then AES-256-GCM open + JSON decode.
        group.bench_with_input(
            BenchmarkId::new("floor-json+aes-gcm", size),
            &record.data,
            |b, d| {
                b.iter(|| {
                    let mut buf = serde_json::to_vec(black_box(d)).expect("json");
                    let nonce = Nonce::<Aes256Gcm>::from([3u8; 12]);
                    let tag = cipher
                        .encrypt_inout_detached(&nonce, b"ad", buf.as_mut_slice().into())
                        .expect("seal");
                    cipher
                        .decrypt_inout_detached(&nonce, b"ad", buf.as_mut_slice().into(), &tag)
                        .expect("open");
                    serde_json::from_slice::<Map<String, Value>>(&buf).expect("json")
                });
            },
        );
    }
    group.finish();
}

fn cookie_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("cookie-header");
    for count in [1usize, 10, 30] {
        let mut parts: Vec<String> = (1..count)
            .map(|i| format!("analytics_{i}=v{i}abcdefghij"))
            .collect();
        parts.insert(parts.len() / 2, format!("__Host-web={}", "A".repeat(92)));
        let header = parts.join("; ");
        group.bench_with_input(BenchmarkId::new("parse", count), &header, |b, h| {
            b.iter(|| cookie_values([black_box(h.as_bytes())], "__Host-web"));
        });
    }
    group.finish();
}

fn state_machine(c: &mut Criterion) {
    let spec = spec(DriverChoice::Memory);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let id = SessionId::generate(&mut rng);
    let cookie = format!("__Host-web={}", internal::sign_id(spec.id_keys(), &id));
    let now = Timestamp::from_millis(1_700_000_000_000);
    let record = Record::new(now, data(100));
    let mut group = c.benchmark_group("state-machine");
    let run = |rng: &mut ChaCha20Rng, op: &dyn Fn(&mut SessionMachine)| {
        let mut m = SessionMachine::begin(spec.clone(), [cookie.as_bytes()], now);
        if m.load_request().is_some() {
            m.handle_load(LoadResult::Found(record.clone()), now)
                .expect("load");
        }
        op(&mut m);
        m.finish(200, now, rng).expect("finish")
    };
    group.bench_function("untouched", |b| b.iter(|| run(&mut rng, &|_| {})));
    group.bench_function("read", |b| {
        b.iter(|| run(&mut rng, &|m| drop(black_box(m.get::<u64>("visits")))));
    });
    group.bench_function("write", |b| {
        b.iter(|| {
            run(&mut rng, &|m| {
                let n = m.get::<u64>("visits").expect("get").unwrap_or(0);
                m.insert("visits", &(n + 1)).expect("insert");
            })
        });
    });
    group.finish();
}

/// Drawing an id in a placement group (sign-in and renewal on Redis Cluster), beside
/// one plain draw: the cost is `2^bits` draws on average.
fn placement(c: &mut Criterion) {
    let namespace = Namespace::new("bench").expect("ns");
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut group = c.benchmark_group("placement");
    group.bench_function("one-draw", |b| {
        b.iter(|| SessionId::generate(&mut rng).store_key(black_box(&namespace)));
    });
    let cluster = Placement::groups(10).expect("bits");
    let mut target = 0u16;
    group.bench_function("draw-in-group-10-bits", |b| {
        b.iter(|| {
            target = (target + 1) % 1024;
            cluster.draw(&mut rng, black_box(&namespace), Some(target))
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    id_cookie,
    sealed_cookie,
    cookie_header,
    state_machine,
    placement
);
criterion_main!(benches);
