//! The custom file driver passes the public conformance suite, as a third-party driver
//! would run it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessionkit::{Driver, ManualClock, StoreKey};
use sessionkit_conformance::{DriverBackend, DriverFactory, driver_suite, session_suite};
use sessionkit_examples::file_driver::FileDriver;

struct Files;

/// A directory no other test uses: process id plus a per-process counter.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("sessionkit-file-driver-{}-{n}", std::process::id()))
}

impl DriverFactory for Files {
    type Driver = FileDriver;

    async fn build(&self, clock: &ManualClock) -> FileDriver {
        FileDriver::temporary(scratch_dir(), clock.shared())
    }

    async fn corrupt(&self, driver: &FileDriver, key: &StoreKey) -> bool {
        let path = driver.path(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(&path, b"not a session file").expect("write");
        assert!(matches!(
            driver.load(key).await,
            Ok(sessionkit::LoadResult::Corrupt)
        ));
        true
    }

    /// `rotate` leaves a forward file for the grace window.
    fn grace_window(&self) -> bool {
        true
    }

    /// The driver keeps an index file per user.
    fn user_index(&self) -> bool {
        true
    }
}

driver_suite!(Files);
session_suite!(DriverBackend(Files));

/// A user's index file lists store keys only, and a listing rewrites it without the
/// keys whose session is gone.
#[test]
fn listing_prunes_the_index_file() {
    use serde_json::{Map, json};
    use sessionkit::core::{Namespace, SessionName, USER_KEY, UserBinding, UserKey};
    use sessionkit::{Clock, Record, Timestamp};

    sessionkit_conformance::block_on(async {
        let clock = ManualClock::starting_now();
        let driver = FileDriver::temporary(scratch_dir(), clock.shared());
        let (ns, web) = (
            Namespace::new("files").expect("ns"),
            SessionName::new("web").expect("name"),
        );
        let user = UserKey::new(&ns, &web, "ada");
        let mut data = Map::new();
        data.insert(
            USER_KEY.into(),
            UserBinding::new(&ns, &web, "ada").expect("binding").to_value(),
        );
        data.insert("n".into(), json!(1));
        let record = Record::new(clock.now(), data);
        let keys: Vec<StoreKey> = (1..=3u8)
            .map(|i| StoreKey::from_digest(ns.clone(), [i; 32]))
            .collect();
        for key in &keys {
            driver.create(key, &record, Timestamp::MAX).await.expect("create");
        }
        driver.delete(&keys[1]).await.expect("delete");
        let index = driver.index_path(&user);
        let name = index
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a name")
            .to_owned();
        assert!(!name.contains("ada"), "{name}");
        assert_eq!(std::fs::read_to_string(&index).expect("index").lines().count(), 3);
        let listed = driver.user_sessions(&user).await.expect("list");
        assert_eq!(listed.len(), 2);
        let lines: Vec<String> = std::fs::read_to_string(&index)
            .expect("index")
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines, [keys[0].to_hex(), keys[2].to_hex()]);
    });
}
