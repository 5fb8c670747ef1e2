#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_testkit::fuzz::redis_bodies::redis_record(data));
