#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_testkit::fuzz::core_bodies::cookie_chunks(data));
