//! The actix-web adapter passes the adapter suite over real HTTP, on the memory driver
//! and on the sealed-cookie driver.

mod reference;

use reference::Actix;
use sessionkit_conformance::{CookieBackend, DriverBackend, adapter_suite};
use sessionkit_testkit::MemoryFactory as Memory;

mod memory {
    use super::*;
    adapter_suite!(Actix, DriverBackend(Memory));
}

mod cookie {
    use super::*;
    adapter_suite!(Actix, CookieBackend);
}
