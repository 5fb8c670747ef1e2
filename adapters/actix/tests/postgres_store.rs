//! The adapter suite over real HTTP with sessions in a real PostgreSQL server, started by
//! the harness in `sessionkit-testkit` (or taken from `DATABASE_URL`).

mod reference;

use reference::Actix;
use sessionkit_conformance::{DriverBackend, adapter_suite};
use sessionkit_testkit::postgres_factory as factory;

adapter_suite!(Actix, DriverBackend(factory!()));
