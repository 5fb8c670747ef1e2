//! The axum adapter passes the adapter suite over real HTTP, on the memory driver and
//! on the sealed-cookie driver.

mod reference;

use reference::Axum;
use sessionkit_conformance::{CookieBackend, DriverBackend, DriverFactory, adapter_suite};

struct Memory;

impl DriverFactory for Memory {
    type Driver = sessionkit::MemoryDriver;
    async fn build(&self, clock: &sessionkit::ManualClock) -> sessionkit::MemoryDriver {
        sessionkit::MemoryDriver::builder().clock(clock.shared()).build()
    }
}

mod memory {
    use super::*;
    adapter_suite!(Axum, DriverBackend(Memory));
}

mod cookie {
    use super::*;
    adapter_suite!(Axum, CookieBackend);
}
