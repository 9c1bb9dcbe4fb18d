//! Fuzz target: contact masking. Properties: no 11-digit mobile (ASCII digits, `1[3-9]` + 9)
//! survives as a run of digits, and masking is idempotent.
#![no_main]

use duban::engine::pii::mask_contacts_in_text;
use libfuzzer_sys::fuzz_target;

/// An ASCII mobile number standing alone as a run of exactly 11 digits.
fn has_mobile(s: &str) -> bool {
    s.split(|c: char| !c.is_ascii_digit()).any(|run| {
        let b = run.as_bytes();
        b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let once = mask_contacts_in_text(s);
        assert!(!has_mobile(&once), "a mobile survived: {once:?}");
        assert_eq!(mask_contacts_in_text(&once), once, "not idempotent");
    }
});
