//! The adapter suite over real HTTP with sessions in a real Redis server, started by
//! the driver's own test harness (or taken from `REDIS_URL`).

#[path = "../../../drivers/redis/tests/common/mod.rs"]
mod common;
mod reference;

use reference::Axum;
use sessionkit_conformance::{DriverBackend, adapter_suite};

adapter_suite!(Axum, DriverBackend(factory!()));
