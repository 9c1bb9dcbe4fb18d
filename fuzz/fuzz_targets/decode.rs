//! Fuzz target: the engine's decode of a raw record (any bytes, any channel). It must answer a
//! row or a one-line reason, never panic.
#![no_main]

use duban::engine::decode::{RawInput, TimeBounds, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = RawInput {
        key: None,
        value: data.to_vec(),
        origin: "fuzz/0/0".into(),
    };
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T10:00:00+08:00").expect("time");
    if let Err((_, why)) = decode(&input, &TimeBounds::default(), now) {
        assert!(!why.is_empty() && !why.contains('\n'), "reason: {why:?}");
    }
});
