#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_testkit::fuzz::actix_bodies::actix_requests(data));
