//! Fault injection of the simulator, per feed: errors, latency, malformed records, duplicate
//! pages, schema drift, and for webhooks unsigned, badly signed, replayed and re-delivered ones.
//! Which records are malformed or drifted is decided from the seed and the record id alone.

use serde::{Deserialize, Serialize};

/// Faults of one pulled feed. Rates are probabilities in 0..=1; all default to 0 (no faults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedFaults {
    /// Share of requests answered with HTTP 503 / 500 / 429.
    pub error_rate: f64,
    /// Share of requests delayed by `latency_ms`.
    pub latency_rate: f64,
    pub latency_ms: u64,
    /// Share of records served broken (missing a required field, or a detail that is not JSON).
    pub malformed_rate: f64,
    /// Share of list pages that also repeat items already served (the page before).
    pub duplicate_rate: f64,
    /// Share of records with a renamed field and an unknown new field (schema drift).
    pub drift_rate: f64,
    /// Share of requests throttled as a site's firewall does: HTTP 403, 429, or an empty 200.
    pub throttle_rate: f64,
}

/// Faults of the Wanshitong webhooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookFaults {
    /// Share of submissions first sent without a signature (must be refused with 401).
    pub unsigned_rate: f64,
    /// Share first sent with a wrong signature (401).
    pub bad_signature_rate: f64,
    /// Share first sent with a correctly signed but hour-old timestamp (401).
    pub replay_rate: f64,
    /// Share delivered again after being acknowledged (must collapse).
    pub redeliver_rate: f64,
    /// Share whose body lacks the required `content` (dead-lettered).
    pub malformed_rate: f64,
}

/// Every feed's faults (`duban sim serve --faults JSON`, `POST /sim/faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub hotline: FeedFaults,
    pub board: FeedFaults,
    pub portal: FeedFaults,
    /// The People's Daily stand-in (`/pd/...`); malformed = a detail without the message part.
    pub peoples_daily: FeedFaults,
    pub wanshitong: WebhookFaults,
}

/// Deterministic per-record decision: true for a `rate` share of ids, fixed by (seed, what, id).
pub fn hit(seed: u64, what: &str, id: &str, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in what.bytes().chain([0u8]).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut r = super::rng::SimRng::new(h);
    r.chance(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_decisions_are_fixed_by_seed_and_id() {
        let ids: Vec<String> = (0..2000).map(|i| format!("RX{i}")).collect();
        let a: Vec<bool> = ids.iter().map(|i| hit(1, "m", i, 0.1)).collect();
        let b: Vec<bool> = ids.iter().map(|i| hit(1, "m", i, 0.1)).collect();
        assert_eq!(a, b);
        let n = a.iter().filter(|x| **x).count();
        assert!((120..=280).contains(&n), "{n} of 2000 at 10%");
        assert!(!hit(1, "m", "x", 0.0));
        let other: Vec<bool> = ids.iter().map(|i| hit(2, "m", i, 0.1)).collect();
        assert_ne!(a, other);
        let f: Faults = serde_json::from_str(r#"{"board": {"error_rate": 0.2}}"#).expect("json");
        assert_eq!(f.board.error_rate, 0.2);
        assert!(serde_json::from_str::<Faults>(r#"{"board": {"eror_rate": 0.2}}"#).is_err());
    }
}
