//! The built-in memory driver passes the whole suite.

use sessionkit::{ManualClock, MemoryDriver};
use sessionkit_conformance::{DriverBackend, DriverFactory, driver_suite, session_suite};

struct Memory;

impl DriverFactory for Memory {
    type Driver = MemoryDriver;
    async fn build(&self, clock: &ManualClock) -> MemoryDriver {
        MemoryDriver::builder().clock(clock.shared()).build()
    }
    fn grace_window(&self) -> bool {
        true
    }
    fn user_index(&self) -> bool {
        true
    }
}

driver_suite!(Memory);
session_suite!(DriverBackend(Memory));
