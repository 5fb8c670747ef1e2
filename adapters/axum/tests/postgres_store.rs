//! The adapter suite over real HTTP with sessions in a real PostgreSQL server, started by
//! the driver's own test harness (or taken from `DATABASE_URL`).

#[path = "../../../drivers/postgres/tests/common/mod.rs"]
mod common;
mod reference;

use reference::Axum;
use sessionkit_conformance::{DriverBackend, adapter_suite};

adapter_suite!(Axum, DriverBackend(factory!()));
