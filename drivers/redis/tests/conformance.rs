//! The public conformance suites against a real Redis server.

mod common;

use sessionkit_conformance::{DriverBackend, driver_suite, session_suite};

driver_suite!(factory!());
session_suite!(DriverBackend(factory!()));
