#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_fuzz::core_bodies::id_cookie(data));
