//! Cron expressions of the report schedule: 6 fields (sec min hour day-of-month month day-of-week)
//! or the classic 5 (min hour dom month dow, second 0); `*`, lists, ranges, steps and names.

use anyhow::{Result, anyhow, bail};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// A parsed cron expression; times are local (naive) times of the schedule's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    seconds: Vec<u32>,
    minutes: Vec<u32>,
    hours: Vec<u32>,
    days: [bool; 32],
    months: [bool; 13],
    weekdays: [bool; 7],
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + offset);
    }
    s.parse::<u32>()
        .map_err(|_| anyhow!("`{s}` is not a number or a name"))
}

/// The values of one field in `lo..=hi`.
fn field(spec: &str, lo: u32, hi: u32, names: &[&str], offset: u32) -> Result<(Vec<u32>, bool)> {
    let mut out = Vec::new();
    let restricted = spec != "*" && spec != "?";
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| anyhow!("bad step `{s}`"))?;
                if step == 0 {
                    bail!("step 0 in `{part}`");
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, offset)?, value(b, names, offset)?)
        } else {
            let a = value(range, names, offset)?;
            // `5/15` means from 5 to the end in steps of 15.
            (a, if part.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            bail!("`{part}` is outside {lo}-{hi}");
        }
        out.extend((a..=b).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok((out, restricted))
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let parts: Vec<&str> = match parts.len() {
            5 => std::iter::once("0").chain(parts).collect(),
            6 => parts,
            n => bail!(
                "cron `{text}` has {n} fields (expected 5 or 6: [sec] min hour dom month dow)"
            ),
        };
        let err = |what: &str, e: anyhow::Error| anyhow!("cron `{text}`: {what}: {e}");
        let (seconds, _) = field(parts[0], 0, 59, &[], 0).map_err(|e| err("second", e))?;
        let (minutes, _) = field(parts[1], 0, 59, &[], 0).map_err(|e| err("minute", e))?;
        let (hours, _) = field(parts[2], 0, 23, &[], 0).map_err(|e| err("hour", e))?;
        let (dom, days_restricted) =
            field(parts[3], 1, 31, &[], 0).map_err(|e| err("day of month", e))?;
        let (mon, _) = field(parts[4], 1, 12, &MONTHS, 1).map_err(|e| err("month", e))?;
        // Day of week: 0 or 7 is Sunday.
        let (dow, weekdays_restricted) =
            field(parts[5], 0, 7, &WEEKDAYS, 0).map_err(|e| err("day of week", e))?;
        let mut days = [false; 32];
        dom.iter().for_each(|d| days[*d as usize] = true);
        let mut months = [false; 13];
        mon.iter().for_each(|m| months[*m as usize] = true);
        let mut weekdays = [false; 7];
        dow.iter().for_each(|d| weekdays[(*d % 7) as usize] = true);
        Ok(Cron {
            text: text.to_string(),
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if !self.months[d.month() as usize] {
            return false;
        }
        let dom = self.days[d.day() as usize];
        let dow = self.weekdays[d.weekday().num_days_from_sunday() as usize];
        // As in classic cron: when both day fields are restricted, either may match.
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first firing time strictly after `t` (within the next five years).
    pub fn next_after(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut day = t.date();
        for _ in 0..(366 * 5) {
            if self.day_matches(day) {
                for &h in &self.hours {
                    for &m in &self.minutes {
                        for &s in &self.seconds {
                            let at = day.and_time(NaiveTime::from_hms_opt(h, m, s)?);
                            if at > t {
                                return Some(at);
                            }
                        }
                    }
                }
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// The last firing time at or before `t` (within the previous five years).
    pub fn last_at_or_before(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut day = t.date();
        for _ in 0..(366 * 5) {
            if self.day_matches(day) {
                for &h in self.hours.iter().rev() {
                    for &m in self.minutes.iter().rev() {
                        for &s in self.seconds.iter().rev() {
                            let at = day.and_time(NaiveTime::from_hms_opt(h, m, s)?);
                            if at <= t {
                                return Some(at);
                            }
                        }
                    }
                }
            }
            day = day.pred_opt()?;
        }
        None
    }

    /// Firing times in `(after, until]`, oldest first.
    pub fn between(&self, after: NaiveDateTime, until: NaiveDateTime) -> Vec<NaiveDateTime> {
        let mut out = Vec::new();
        let mut t = after;
        while let Some(n) = self.next_after(t) {
            if n > until {
                break;
            }
            out.push(n);
            t = n;
        }
        out
    }
}

/// Truncate to whole seconds (cron's resolution).
pub fn whole_seconds(t: NaiveDateTime) -> NaiveDateTime {
    t - Duration::nanoseconds(i64::from(t.nanosecond()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("time")
    }

    #[test]
    fn six_and_five_fields() {
        let c = Cron::parse("0 30 7 * * *").expect("parses");
        assert_eq!(
            c.next_after(at("2026-11-20 07:29:59")),
            Some(at("2026-11-20 07:30:00"))
        );
        assert_eq!(
            c.next_after(at("2026-11-20 07:30:00")),
            Some(at("2026-11-21 07:30:00"))
        );
        let five = Cron::parse("30 7 * * *").expect("parses");
        assert_eq!(
            five.next_after(at("2026-11-20 08:00:00")),
            c.next_after(at("2026-11-20 08:00:00"))
        );
        assert_eq!(
            c.last_at_or_before(at("2026-11-20 07:29:59")),
            Some(at("2026-11-19 07:30:00"))
        );
        assert_eq!(
            c.last_at_or_before(at("2026-11-20 07:30:00")),
            Some(at("2026-11-20 07:30:00"))
        );
    }

    #[test]
    fn weekdays_months_steps_and_lists() {
        // Mondays at 08:00: 2026-11-23 is a Monday.
        let c = Cron::parse("0 0 8 * * MON").expect("parses");
        assert_eq!(
            c.next_after(at("2026-11-20 09:00:00")),
            Some(at("2026-11-23 08:00:00"))
        );
        let sunday = Cron::parse("0 8 * * 7").expect("7 is Sunday");
        assert_eq!(
            sunday.next_after(at("2026-11-20 09:00:00")),
            Some(at("2026-11-22 08:00:00"))
        );
        let monthly = Cron::parse("0 0 8 1 * *").expect("parses");
        assert_eq!(
            monthly.next_after(at("2026-11-20 09:00:00")),
            Some(at("2026-12-01 08:00:00"))
        );
        let steps = Cron::parse("*/20 9-10 * * *").expect("parses");
        assert_eq!(
            steps.between(at("2026-11-20 09:00:00"), at("2026-11-20 10:30:00")),
            vec![
                at("2026-11-20 09:20:00"),
                at("2026-11-20 09:40:00"),
                at("2026-11-20 10:00:00"),
                at("2026-11-20 10:20:00"),
            ]
        );
        let list = Cron::parse("0 8 * * MON,WED-THU").expect("parses");
        assert_eq!(
            list.between(at("2026-11-23 00:00:00"), at("2026-11-29 23:59:59")),
            vec![
                at("2026-11-23 08:00:00"),
                at("2026-11-25 08:00:00"),
                at("2026-11-26 08:00:00"),
            ]
        );
        let both = Cron::parse("0 0 1 * SUN").expect("parses");
        // Both day fields restricted: the 1st of the month or a Sunday.
        assert_eq!(
            both.next_after(at("2026-11-20 09:00:00")),
            Some(at("2026-11-22 00:00:00"))
        );
        assert!(
            Cron::parse("0 0 30 2 *")
                .expect("parses")
                .next_after(at("2026-01-01 00:00:00"))
                .is_none()
        );
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for (text, word) in [
            ("0 61 7 * * *", "minute"),
            ("0 30 7 * *  * *", "fields"),
            ("0 30 25 * * *", "hour"),
            ("0 30 7 * * FUNDAY", "day of week"),
            ("0 30 7 * */0 *", "month"),
        ] {
            let e = Cron::parse(text).expect_err(text).to_string();
            assert!(e.contains(word), "{text}: {e}");
        }
    }
}
