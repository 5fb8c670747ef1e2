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
