//! Times as feeds write them: Unix seconds or milliseconds, Excel serial days, lists of formats
//! tried in order, dates without a time, in the feed's time zone; written out in Asia/Shanghai.

use anyhow::{Result, bail};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};

/// One way a feed writes a time.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeFormat {
    /// Unix seconds (a number or digits; a fraction is kept).
    UnixSeconds,
    /// Unix milliseconds.
    UnixMillis,
    /// Excel serial days (days since 1899-12-30; the fraction is the time of day), in the
    /// feed's zone.
    Excel,
    /// RFC 3339 with its own offset.
    Rfc3339,
    /// A chrono format (`%Y-%m-%d %H:%M:%S`); a format without a time reads a date at midnight.
    Pattern(String),
    /// Every form above that is unambiguous: RFC 3339, the usual Chinese date-time and date
    /// formats, 10-digit Unix seconds, 13-digit milliseconds, 5-digit Excel serial days.
    Auto,
}

const AUTO_PATTERNS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日%H:%M",
    "%Y%m%d%H%M%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y年%m月%d日",
    "%Y%m%d",
];

impl TimeFormat {
    pub fn parse(s: &str) -> Result<TimeFormat> {
        Ok(match s.trim() {
            "unix_s" | "unix" => TimeFormat::UnixSeconds,
            "unix_ms" => TimeFormat::UnixMillis,
            "excel" => TimeFormat::Excel,
            "rfc3339" => TimeFormat::Rfc3339,
            "auto" => TimeFormat::Auto,
            p if p.contains('%') => {
                // Reject a pattern chrono cannot use, at load.
                let probe = chrono::format::StrftimeItems::new(p);
                if probe
                    .clone()
                    .any(|i| matches!(i, chrono::format::Item::Error))
                {
                    bail!("`{p}` is not a valid time format");
                }
                TimeFormat::Pattern(p.to_string())
            }
            other => bail!(
                "unknown time format `{other}` (unix_s, unix_ms, excel, rfc3339, auto, or a pattern like %Y-%m-%d %H:%M:%S)"
            ),
        })
    }
}

/// Parse the time zone of a profile: `+08:00`, `UTC`, or `Asia/Shanghai` (and its aliases).
pub fn parse_zone(s: &str) -> Result<FixedOffset> {
    let t = s.trim();
    let fixed = match t {
        "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Harbin" | "Asia/Urumqi" | "PRC" | "CST"
        | "Asia/Hong_Kong" | "Asia/Macau" | "Asia/Taipei" => Some(8 * 3600),
        "UTC" | "Etc/UTC" | "Z" | "GMT" => Some(0),
        _ => None,
    };
    if let Some(secs) = fixed {
        return FixedOffset::east_opt(secs).ok_or_else(|| anyhow::anyhow!("bad zone"));
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => bail!("unknown time zone `{t}` (an offset like +08:00, UTC or Asia/Shanghai)"),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    match (h.parse::<i32>(), m.parse::<i32>()) {
        (Ok(h), Ok(m)) if h <= 14 && m < 60 => FixedOffset::east_opt(sign * (h * 3600 + m * 60))
            .ok_or_else(|| anyhow::anyhow!("bad zone `{t}`")),
        _ => bail!("unknown time zone `{t}` (an offset like +08:00, UTC or Asia/Shanghai)"),
    }
}

fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse().ok().filter(|n: &f64| n.is_finite())
}

fn from_unix(secs: f64, out: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round() as u32;
    DateTime::from_timestamp(whole as i64, nanos.min(999_999_999)).map(|t| t.with_timezone(&out))
}

fn from_excel(days: f64) -> Option<NaiveDateTime> {
    // Serial 1 is 1900-01-01 counting Excel's phantom 1900-02-29; from serial 61 on, day 0 is
    // 1899-12-30. Earlier serials are not dates any feed writes.
    if !(61.0..2_958_466.0).contains(&days) {
        return None;
    }
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
    let ms = (days * 86_400_000.0).round() as i64;
    epoch.checked_add_signed(chrono::Duration::milliseconds(ms))
}

fn local(n: NaiveDateTime, zone: FixedOffset, out: FixedOffset) -> Option<DateTime<FixedOffset>> {
    zone.from_local_datetime(&n)
        .single()
        .map(|t| t.with_timezone(&out))
}

fn pattern(s: &str, p: &str, zone: FixedOffset, out: FixedOffset) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_str(s, p) {
        return Some(t.with_timezone(&out));
    }
    if let Ok(n) = NaiveDateTime::parse_from_str(s, p) {
        return local(n, zone, out);
    }
    NaiveDate::parse_from_str(s, p)
        .ok()
        .and_then(|d| local(d.and_hms_opt(0, 0, 0)?, zone, out))
}

/// One value in one format, read in `zone` (when it carries none) and written in `out`.
fn one(
    s: &str,
    f: &TimeFormat,
    zone: FixedOffset,
    out: FixedOffset,
) -> Option<DateTime<FixedOffset>> {
    match f {
        // Seconds past 1e11 (the year 5138) are milliseconds or not a time at all.
        TimeFormat::UnixSeconds => from_unix(number(s).filter(|n| *n < 1e11)?, out),
        TimeFormat::UnixMillis => match s.parse::<i64>() {
            Ok(ms) => DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&out)),
            Err(_) => from_unix(number(s)? / 1000.0, out),
        },
        TimeFormat::Excel => local(from_excel(number(s)?)?, zone, out),
        TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&out)),
        TimeFormat::Pattern(p) => pattern(s, p, zone, out),
        TimeFormat::Auto => {
            if let Some(t) = one(s, &TimeFormat::Rfc3339, zone, out) {
                return Some(t);
            }
            let digits = s.split('.').next().unwrap_or("");
            if number(s).is_some() {
                return match digits.len() {
                    10 => one(s, &TimeFormat::UnixSeconds, zone, out),
                    13 => one(s, &TimeFormat::UnixMillis, zone, out),
                    5 => one(s, &TimeFormat::Excel, zone, out),
                    8 | 14 => AUTO_PATTERNS.iter().find_map(|p| pattern(s, p, zone, out)),
                    _ => None,
                };
            }
            AUTO_PATTERNS.iter().find_map(|p| pattern(s, p, zone, out))
        }
    }
}

/// Read `value` with the first of `formats` that fits; None when none does. Whitespace around
/// and full-width digits or colons are tolerated.
pub fn parse(
    value: &str,
    formats: &[TimeFormat],
    zone: FixedOffset,
) -> Option<DateTime<FixedOffset>> {
    let s: String = value
        .trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '：' => ':',
            '\u{3000}' | '\u{a0}' => ' ',
            c => c,
        })
        .collect();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        return None;
    }
    let out = crate::record::local_offset();
    formats.iter().find_map(|f| one(&s, f, zone, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: &str, formats: &[&str]) -> Option<String> {
        let f: Vec<TimeFormat> = formats
            .iter()
            .map(|f| TimeFormat::parse(f).expect("format"))
            .collect();
        parse(v, &f, parse_zone("Asia/Shanghai").expect("zone")).map(|t| t.to_rfc3339())
    }

    #[test]
    fn reads_every_form_feeds_use() {
        // Unix seconds are instants: 1700000000 is 2023-11-15 06:13:20 in Shanghai.
        assert_eq!(
            at("1700000000", &["unix_s"]).as_deref(),
            Some("2023-11-15T06:13:20+08:00")
        );
        assert_eq!(
            at("1700000000123", &["unix_ms"]).as_deref(),
            Some("2023-11-15T06:13:20.123+08:00")
        );
        // Excel serial days: 45681 is 2025-01-24; the fraction is the time of day.
        assert_eq!(
            at("45681", &["excel"]).as_deref(),
            Some("2025-01-24T00:00:00+08:00")
        );
        assert_eq!(
            at("45681.5", &["excel"]).as_deref(),
            Some("2025-01-24T12:00:00+08:00")
        );
        assert_eq!(
            at("2025-01-24", &["%Y-%m-%d"]).as_deref(),
            Some("2025-01-24T00:00:00+08:00")
        );
        assert_eq!(
            at("2025/1/24 9:05", &["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"]).as_deref(),
            Some("2025-01-24T09:05:00+08:00")
        );
        assert_eq!(
            at("2025-01-24T01:00:00Z", &["rfc3339"]).as_deref(),
            Some("2025-01-24T09:00:00+08:00")
        );
        for v in [
            "2025-01-24 09:05:00",
            "2025/01/24 09:05:00",
            "2025年1月24日 09:05",
            "1737680700",
            "1737680700000",
            "２０２５－01-24 09：05：00",
        ] {
            let got = at(v, &["auto"]);
            if v.starts_with('２') {
                assert_eq!(got, None, "full-width dashes are not a format");
            } else {
                assert_eq!(got.as_deref(), Some("2025-01-24T09:05:00+08:00"), "{v}");
            }
        }
        assert_eq!(
            at("45681", &["auto"]).as_deref(),
            Some("2025-01-24T00:00:00+08:00")
        );
        assert_eq!(
            at("2025-01-24", &["auto"]).as_deref(),
            Some("2025-01-24T00:00:00+08:00")
        );
        assert_eq!(at("soon", &["auto"]), None);
        assert_eq!(at("", &["auto"]), None);
        assert_eq!(at("12", &["excel"]), None, "not a plausible date");
        assert_eq!(
            at("1700000000123", &["unix_s"]),
            None,
            "milliseconds are not seconds"
        );
        assert_eq!(
            at("1700000000123", &["unix_s", "auto"]).as_deref(),
            Some("2023-11-15T06:13:20.123+08:00")
        );
        // A feed in UTC: local times are read there and written in Shanghai.
        let utc = parse_zone("UTC").expect("zone");
        let t = parse("2025-01-24 01:00:00", &[TimeFormat::Auto], utc).expect("parses");
        assert_eq!(t.to_rfc3339(), "2025-01-24T09:00:00+08:00");
        assert_eq!(
            parse_zone("+05:30").expect("zone").local_minus_utc(),
            19_800
        );
        assert!(parse_zone("Mars/Base").is_err());
        assert!(TimeFormat::parse("%Q").is_err());
        assert!(TimeFormat::parse("weekly").is_err());
    }
}
