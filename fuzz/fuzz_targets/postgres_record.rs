#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_testkit::fuzz::postgres_bodies::postgres_record(data));
