#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_fuzz::axum_bodies::axum_requests(data));
