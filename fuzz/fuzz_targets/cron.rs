#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| diakonos_fuzz::cron(data));
