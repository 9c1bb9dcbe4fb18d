//! Bearer tokens of the alerts API and the board: who holds each (role and display name), found
//! in constant time, the unverified actor note a caller may add, and per-key rate limits.
//!
//! A token is configured as `token = "ROLE"` or `token = "ROLE@NAME"` (`[lifecycle] tokens`, env
//! `DUBAN_API_TOKENS="t1=supervisor@张科长;t2=unit:镜湖区城市管理局@李四"`): one token per person,
//! and the name is what the history and the supervision recommendation record as the actor.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::lifecycle::decide::Role;

/// Who holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub role: Role,
    /// The holder's display name (the role when the token names nobody).
    pub name: String,
}

impl Credential {
    /// Parse `ROLE` or `ROLE@NAME`; the system role is never a token's.
    pub fn parse(spec: &str) -> Option<Credential> {
        let (role, name) = match spec.rsplit_once('@') {
            Some((r, n)) if !n.trim().is_empty() => (r, Some(n.trim())),
            _ => (spec, None),
        };
        let role = Role::parse(role).filter(|r| *r != Role::System)?;
        let name = match name {
            Some(n) => clean_note(n).ok()?,
            None => role.to_string(),
        };
        Some(Credential { role, name })
    }
}

/// The tokens of a server.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    entries: Vec<(String, Credential)>,
}

impl Credentials {
    pub fn new(entries: impl IntoIterator<Item = (String, Credential)>) -> Credentials {
        Credentials {
            entries: entries.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The credential of a presented token. Every configured token is compared, each in time
    /// independent of where it differs, so the answer's timing tells nothing about the tokens.
    pub fn find(&self, presented: &str) -> Option<&Credential> {
        let mut found = None;
        for (token, cred) in &self.entries {
            if same_secret(presented.as_bytes(), token.as_bytes()) {
                found = Some(cred);
            }
        }
        found
    }
}

/// Equal in time independent of where the two first differ (their SHA-256 digests are compared).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// Longest actor note or display name, in characters.
pub const MAX_NOTE_CHARS: usize = 40;

/// A caller's own statement of who acts (`X-Duban-Actor`), recorded as an unverified note:
/// trimmed, at most 40 characters of letters, digits, spaces and `·.-_()（）`. The error says
/// what is wrong without repeating the value.
pub fn clean_note(s: &str) -> Result<String, String> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 || n > MAX_NOTE_CHARS {
        return Err(format!(
            "the actor note must have 1 to {MAX_NOTE_CHARS} characters (it has {n})"
        ));
    }
    let allowed = |c: char| {
        c.is_alphanumeric() || matches!(c, ' ' | '·' | '.' | '-' | '_' | '(' | ')' | '（' | '）')
    };
    if let Some(bad) = s.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "the actor note may hold letters, digits, spaces and ·.-_() only (not U+{:04X})",
            bad as u32
        ));
    }
    Ok(s.to_string())
}

/// A token bucket per key: `burst` requests at once, then `per_minute` a minute.
pub struct RateLimiter {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Keys a limiter remembers before it forgets idle ones.
const MAX_KEYS: usize = 10_000;

impl RateLimiter {
    pub fn new(burst: u32, per_minute: u32) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request of `key` at `now`: `Err(wait)` when its bucket is empty.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() >= MAX_KEYS && !b.contains_key(key) {
            // Forget keys whose buckets are full again: they lose nothing.
            let (burst, rate) = (self.burst, self.per_sec);
            b.retain(|_, (level, at)| {
                *level + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (level, at) = b.entry(key.to_string()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *level = (*level + elapsed * self.per_sec).min(self.burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *level) / self.per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_carry_role_and_name() {
        let c = Credential::parse("unit:镜湖区城市管理局@李四").expect("unit with a name");
        assert_eq!(c.role, Role::Unit("镜湖区城市管理局".into()));
        assert_eq!(c.name, "李四");
        let c = Credential::parse("supervisor").expect("supervisor");
        assert_eq!((c.role, c.name.as_str()), (Role::Supervisor, "supervisor"));
        assert!(Credential::parse("system@x").is_none());
        assert!(Credential::parse("boss").is_none());
        assert!(Credential::parse("supervisor@<script>").is_none());
        let creds = Credentials::new([
            (
                "tok-a".to_string(),
                Credential::parse("supervisor@张科长").expect("a"),
            ),
            (
                "tok-b".to_string(),
                Credential::parse("unit:某局").expect("b"),
            ),
        ]);
        assert_eq!(creds.find("tok-a").map(|c| c.name.as_str()), Some("张科长"));
        assert!(creds.find("tok-").is_none() && creds.find("").is_none());
    }

    #[test]
    fn notes_are_bounded_and_plain() {
        assert_eq!(clean_note("  王五 (值班) ").as_deref(), Ok("王五 (值班)"));
        assert!(clean_note(&"长".repeat(41)).is_err());
        assert!(clean_note("").is_err());
        let e = clean_note("a\nforged log line").expect_err("newline");
        assert!(e.contains("U+000A") && !e.contains("forged"), "{e}");
        assert!(clean_note("<img src=x>").is_err());
    }

    #[test]
    fn rate_limits_refill_over_time() {
        let l = RateLimiter::new(2, 60);
        let t0 = Instant::now();
        assert!(l.take("a", t0).is_ok() && l.take("a", t0).is_ok());
        let wait = l.take("a", t0).expect_err("empty");
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(l.take("b", t0).is_ok(), "keys are apart");
        assert!(
            l.take("a", t0 + Duration::from_secs(1)).is_ok(),
            "one a second"
        );
    }
}
