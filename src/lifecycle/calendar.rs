//! The working-day calendar of deadlines: Monday–Friday, minus public holidays, plus adjusted
//! working days (调休上班), from config/holidays.toml (built in; `[lifecycle] holidays` replaces it).

use anyhow::{Result, bail};
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

const BUILTIN: &str = include_str!("../../config/holidays.toml");

/// One holiday period as the State Council publishes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayPeriod {
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Weekend days that are working days because of this holiday.
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    #[serde(default)]
    holiday: Vec<HolidayPeriod>,
}

/// Which days count as working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

impl WorkCalendar {
    /// The built-in calendar (config/holidays.toml).
    pub fn builtin() -> WorkCalendar {
        Self::parse(BUILTIN, "config/holidays.toml (built-in)").expect("built-in holidays parse")
    }

    /// Load from a file, or the built-in copy when `path` is None. Errors name the file.
    pub fn load(path: Option<&Path>) -> Result<WorkCalendar> {
        match path {
            None => Ok(Self::builtin()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("cannot read holidays {}: {e}", p.display()))?;
                Self::parse(&text, &p.display().to_string())
            }
        }
    }

    pub fn parse(text: &str, name: &str) -> Result<WorkCalendar> {
        let file: CalendarFile = crate::config::parse_toml(text, name)?;
        let mut cal = WorkCalendar::default();
        for h in &file.holiday {
            if h.to < h.from {
                bail!(
                    "{name}: holiday {} ends ({}) before it starts ({})",
                    h.name,
                    h.to,
                    h.from
                );
            }
            let mut d = h.from;
            while d <= h.to {
                cal.holidays.insert(d);
                d += Duration::days(1);
            }
            cal.workdays.extend(h.workdays.iter().copied());
        }
        if let Some(d) = cal.holidays.intersection(&cal.workdays).next() {
            bail!("{name}: {d} is both a holiday and an adjusted working day");
        }
        Ok(cal)
    }

    /// A calendar with explicit holidays and adjusted working days (tests, drills).
    pub fn with_days(holidays: &[NaiveDate], workdays: &[NaiveDate]) -> WorkCalendar {
        WorkCalendar {
            holidays: holidays.iter().copied().collect(),
            workdays: workdays.iter().copied().collect(),
        }
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        !self.holidays.contains(&d) && !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The `n`-th working day after `day` (`day` itself never counts; n = 0 gives `day`).
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> NaiveDate {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days after `from` up to and including `to` (0 when `to <= from`).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d += Duration::days(1);
            n += u32::from(self.is_working_day(d));
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn builtin_calendar_knows_the_spring_festival_and_its_adjusted_days() {
        let c = WorkCalendar::builtin();
        assert!(!c.is_working_day(day("2026-02-16")), "a Monday of 春节");
        assert!(
            c.is_working_day(day("2026-02-14")),
            "a Saturday worked for 春节"
        );
        assert!(c.is_working_day(day("2026-02-13")));
        // Friday 13 Feb + 1 working day = Saturday 14 Feb (adjusted); + 2 = Tuesday 24 Feb.
        assert_eq!(c.add_working_days(day("2026-02-13"), 1), day("2026-02-14"));
        assert_eq!(c.add_working_days(day("2026-02-13"), 2), day("2026-02-24"));
        // National Day: 30 Sep (Wed) + 1 working day = 8 Oct (Thu).
        assert_eq!(c.add_working_days(day("2026-09-30"), 1), day("2026-10-08"));
        // An ordinary week: Friday + 1 = Monday.
        assert_eq!(c.add_working_days(day("2026-11-27"), 1), day("2026-11-30"));
        assert_eq!(c.add_working_days(day("2026-11-27"), 0), day("2026-11-27"));
    }

    #[test]
    fn bad_calendar_is_named() {
        let e = WorkCalendar::parse(
            "[[holiday]]\nname = \"x\"\nfrom = \"2026-01-02\"\nto = \"2026-01-01\"\n",
            "h.toml",
        )
        .expect_err("ends before it starts");
        assert!(e.to_string().contains("h.toml"), "{e}");
        let e = WorkCalendar::parse("[[holiday]]\nname = 1\n", "h.toml").expect_err("bad type");
        assert!(e.to_string().contains("h.toml:2"), "{e}");
    }

    proptest! {
        #[test]
        fn deadlines_land_on_working_days_and_count_exactly(
            start in 0i64..800, n in 1u32..30,
            hol in proptest::collection::vec(0i64..800, 0..40),
            work in proptest::collection::vec(0i64..800, 0..10),
        ) {
            let base = day("2026-01-01");
            let hol: Vec<NaiveDate> = hol.iter().map(|d| base + Duration::days(*d)).collect();
            let work: Vec<NaiveDate> = work
                .iter()
                .map(|d| base + Duration::days(*d))
                .filter(|d| !hol.contains(d))
                .collect();
            let c = WorkCalendar::with_days(&hol, &work);
            let from = base + Duration::days(start);
            let due = c.add_working_days(from, n);
            prop_assert!(due > from);
            prop_assert!(c.is_working_day(due));
            prop_assert_eq!(c.working_days_between(from, due), n);
            prop_assert_eq!(c.working_days_between(from, due - Duration::days(1)), n - 1);
        }
    }
}
