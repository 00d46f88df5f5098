//! libFuzzer entry point; the body is `psqlpool_fuzz::config_parse` (shared with the stable replay test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| psqlpool_fuzz::config_parse(data));
