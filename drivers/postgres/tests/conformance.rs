//! The public conformance suites against a real PostgreSQL server.

use sessionkit_conformance::{DriverBackend, driver_suite, session_suite};
use sessionkit_testkit::postgres_factory as factory;

driver_suite!(factory!());
session_suite!(DriverBackend(factory!()));
