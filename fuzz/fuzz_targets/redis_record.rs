#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_fuzz::redis_bodies::redis_record(data));
