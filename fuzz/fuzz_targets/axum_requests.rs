#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_testkit::fuzz::axum_bodies::axum_requests(data));
