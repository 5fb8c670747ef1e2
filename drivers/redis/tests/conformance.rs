//! The public conformance suites against a real Redis server.

use sessionkit_conformance::{DriverBackend, driver_suite, session_suite};
use sessionkit_testkit::redis_factory as factory;

driver_suite!(factory!());
session_suite!(DriverBackend(factory!()));
