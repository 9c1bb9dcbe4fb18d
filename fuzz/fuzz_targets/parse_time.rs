//! Fuzz target: the time forms feeds use (`normalize::parse_time`), on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = duban::engine::normalize::parse_time(s);
    }
});
