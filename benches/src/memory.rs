//! Heap bytes per session held by the memory driver, at 100,000 and 1,000,000 sessions of about
//! 100 bytes of data each: resident memory before and after filling the driver (so the
//! allocator's own overhead counts, as it does in production).

use std::time::Duration;

use serde_json::{Map, Value};
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{Driver, MemoryDriver, Record, Timestamp};

/// Resident memory of this process, from `/proc/self/status` (Linux), in bytes.
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// The sizes measured, each in a process of its own (freed memory stays resident, so a
/// second fill in the same process would be measured short).
pub const SIZES: [usize; 2] = [100_000, 1_000_000];

/// Measures every size in [`SIZES`], each in a child process running this program
/// with `SESSIONKIT_MEMORY_SESSIONS` set; in such a child, measures that size.
pub fn memory_per_session_at_every_size() {
    if let Some(sessions) = std::env::var("SESSIONKIT_MEMORY_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        memory_per_session(sessions);
        return;
    }
    let exe = std::env::current_exe().expect("this program");
    for sessions in SIZES {
        let status = std::process::Command::new(&exe)
            .env("SESSIONKIT_MEMORY_SESSIONS", sessions.to_string())
            .status()
            .expect("run the measurement");
        assert!(status.success(), "the measurement of {sessions} sessions failed");
    }
}

/// Fills a memory driver with `sessions` sessions and prints the resident memory per
/// session.
pub fn memory_per_session(sessions: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let namespace = Namespace::new("app").expect("ns");
    let mut rng = rand_chacha::ChaCha20Rng::from_seed_u64(7);
    let now = Timestamp::from(std::time::SystemTime::now());
    let mut data = Map::new();
    data.insert("user".into(), Value::from("ada lovelace"));
    data.insert("visits".into(), Value::from(42));
    data.insert("cart".into(), Value::from(vec![101, 202, 303]));
    data.insert("theme".into(), Value::from("dark"));
    data.insert("locale".into(), Value::from("en-GB"));
    data.insert("csrf".into(), Value::from("Zm9vYmFy"));
    let json_len = serde_json::to_vec(&data).expect("json").len();
    let keys: Vec<_> = (0..sessions)
        .map(|_| SessionId::generate(&mut rng).store_key(&namespace))
        .collect();
    // Room to spare: each shard holds an equal share of the maximum, so a full-size run
    // would start evicting in the fullest shard just before the total is reached.
    let driver = MemoryDriver::builder().max_sessions(2 * sessions).build();
    let before = resident_bytes();
    rt.block_on(async {
        for key in &keys {
            let record = Record::new(now, data.clone());
            driver
                .create(key, &record, now.saturating_add(Duration::from_secs(3600)))
                .await
                .expect("create");
        }
    });
    let after = resident_bytes();
    assert_eq!(driver.len(), sessions);
    let per_session = (after - before) / sessions;
    println!("memory driver: {sessions} sessions with {json_len} bytes of JSON data each");
    println!("resident memory per session: {per_session} bytes (the data as JSON text is {json_len} bytes)");
    // Where it goes: the same data kept as `sessions` maps alone, and as JSON text alone.
    let before = resident_bytes();
    let maps: Vec<Map<String, Value>> = (0..sessions).map(|_| data.clone()).collect();
    let map_bytes = (resident_bytes() - before) / sessions;
    let before = resident_bytes();
    let texts: Vec<Box<str>> = (0..sessions)
        .map(|_| serde_json::to_string(&data).expect("json").into_boxed_str())
        .collect();
    let text_bytes = (resident_bytes() - before) / sessions;
    println!(
        "of which the data: {map_bytes} bytes as a serde_json::Map, against {text_bytes} bytes as JSON text"
    );
    drop((maps, texts));
}

trait FromSeed {
    fn from_seed_u64(seed: u64) -> Self;
}

impl FromSeed for rand_chacha::ChaCha20Rng {
    fn from_seed_u64(seed: u64) -> Self {
        use rand_chacha::rand_core::SeedableRng;
        rand_chacha::ChaCha20Rng::seed_from_u64(seed)
    }
}
