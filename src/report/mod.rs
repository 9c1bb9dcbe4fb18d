//! Situation reports for leadership (`duban report`, and on a schedule in `duban run`): one period's
//! numbers from the lake as a self-contained HTML page with SVG charts, Markdown and JSON.

pub mod chart;
pub mod cron;
pub mod data;
pub mod doc;
pub mod lake;
pub mod render;
pub mod schedule;

use anyhow::{Context, Result, bail};
use chrono::{Datelike, Duration, NaiveDate};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub use data::ReportData;

/// How long a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Period::Day => "日报",
            Period::Week => "周报",
            Period::Month => "月报",
        }
    }
}

/// One report: a period of local calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportSpec {
    pub period: Period,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

fn month_end(d: NaiveDate) -> NaiveDate {
    // The last month the calendar can hold ends at its last day (a --date there must not panic).
    month_start(d)
        .checked_add_months(chrono::Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(NaiveDate::MAX)
}

impl ReportSpec {
    /// The period that holds `date`: that day, its week (Monday to Sunday) or its month.
    pub fn containing(period: Period, date: NaiveDate) -> ReportSpec {
        let (start, end) = match period {
            Period::Day => (date, date),
            Period::Week => {
                let s = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                (s, s + Duration::days(6))
            }
            Period::Month => (month_start(date), month_end(date)),
        };
        ReportSpec { period, start, end }
    }

    /// The last complete period before the local day `today` (what a run on `today` reports on).
    pub fn last_complete(period: Period, today: NaiveDate) -> ReportSpec {
        let this = ReportSpec::containing(period, today);
        ReportSpec::containing(period, this.start - Duration::days(1))
    }

    /// Deterministic id: `day-2026-11-20`, `week-2026-11-16` (its Monday), `month-2026-11`.
    pub fn id(&self) -> String {
        match self.period {
            Period::Month => format!("month-{}", self.start.format("%Y-%m")),
            p => format!("{}-{}", p.as_str(), self.start),
        }
    }

    /// The period before this one, of the same kind.
    pub fn previous(&self) -> (NaiveDate, NaiveDate) {
        let p = ReportSpec::containing(self.period, self.start - Duration::days(1));
        (p.start, p.end)
    }

    pub fn title(&self) -> String {
        let range = if self.start == self.end {
            format!("{}", self.start.format("%Y年%m月%d日"))
        } else {
            format!(
                "{}至{}",
                self.start.format("%Y年%m月%d日"),
                self.end.format("%m月%d日")
            )
        };
        format!("诉求督办态势{}（{range}）", self.period.label_zh())
    }
}

/// `[reports]` in duban.toml: scheduled reports of `duban run`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Produce reports while `duban run` runs. Default true.
    pub enabled: bool,
    /// Cron (6 fields with seconds, or 5) of the daily report on the previous day.
    /// Default `0 30 7 * * *` (07:30 every day). Empty: no daily report.
    pub schedule: String,
    /// Cron of the weekly report on the previous Monday–Sunday week. Default empty (none).
    pub weekly_schedule: String,
    /// Cron of the monthly report on the previous calendar month. Default empty (none).
    pub monthly_schedule: String,
    /// Time zone of the schedules: a firing's local date picks the period it reports on. Default
    /// `Asia/Shanghai`, handled as the fixed offset +08:00 (China has no daylight saving); also
    /// accepts a fixed offset like `+05:30` or `UTC`. Report days are the lake's days (+08:00).
    pub time_zone: String,
    /// Folder of the produced reports. Default `<data_dir>/reports`.
    pub dir: Option<PathBuf>,
    /// Missed runs older than this many days are not caught up after downtime. Default 31.
    pub catch_up_days: u32,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            enabled: true,
            schedule: "0 30 7 * * *".into(),
            weekly_schedule: String::new(),
            monthly_schedule: String::new(),
            time_zone: "Asia/Shanghai".into(),
            dir: None,
            catch_up_days: 31,
        }
    }
}

impl ReportsConfig {
    /// The schedules that are set, each with the period it reports on.
    pub fn schedules(&self) -> Result<Vec<(Period, cron::Cron)>> {
        let mut out = Vec::new();
        for (period, field, text) in [
            (Period::Day, "schedule", &self.schedule),
            (Period::Week, "weekly_schedule", &self.weekly_schedule),
            (Period::Month, "monthly_schedule", &self.monthly_schedule),
        ] {
            if !text.trim().is_empty() {
                let c = cron::Cron::parse(text).with_context(|| format!("[reports] {field}"))?;
                out.push((period, c));
            }
        }
        Ok(out)
    }

    pub fn offset(&self) -> Result<chrono::FixedOffset> {
        parse_time_zone(&self.time_zone).with_context(|| "[reports] time_zone")
    }

    pub fn reports_dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("reports"))
    }
}

/// Time zones without daylight saving, as fixed offsets.
pub fn parse_time_zone(s: &str) -> Result<chrono::FixedOffset> {
    let s = s.trim();
    let hours = match s {
        "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Harbin" | "PRC" | "Asia/Hong_Kong"
        | "Asia/Macau" | "Asia/Taipei" => Some(8),
        "UTC" | "Etc/UTC" | "Z" => Some(0),
        _ => None,
    };
    if let Some(h) = hours {
        return Ok(chrono::FixedOffset::east_opt(h * 3600).expect("valid offset"));
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => bail!("unknown time zone `{s}` (use Asia/Shanghai, UTC or an offset like +08:00)"),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| anyhow::anyhow!("bad offset `{s}`"))?,
        m.parse().map_err(|_| anyhow::anyhow!("bad offset `{s}`"))?,
    );
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
        .ok_or_else(|| anyhow::anyhow!("offset `{s}` is out of range"))
}

/// A rendered report: the numbers and the three documents.
#[derive(Debug, Clone)]
pub struct Report {
    pub data: ReportData,
    pub html: String,
    pub markdown: String,
    pub json: String,
}

impl Report {
    pub fn id(&self) -> &str {
        &self.data.report_id
    }

    /// Write `<id>.html`, `<id>.md`, `<id>.json` into `dir` (each atomically; the JSON last, so its
    /// presence means the report is complete). Returns the paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut out = Vec::new();
        for (ext, text) in [
            ("html", &self.html),
            ("md", &self.markdown),
            ("json", &self.json),
        ] {
            let path = dir.join(format!("{}.{ext}", self.id()));
            let tmp = dir.join(format!(".{}.{ext}.tmp", self.id()));
            std::fs::write(&tmp, text)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            out.push(path);
        }
        Ok(out)
    }
}

/// Compute and render the report of `spec` from `lake`.
pub async fn generate(lake: &Path, spec: &ReportSpec, generated_at: &str) -> Result<Report> {
    let data = data::compute(lake, spec, generated_at).await?;
    Ok(Report {
        html: render::html(&data),
        markdown: render::markdown(&data),
        json: serde_json::to_string_pretty(&data)?,
        data,
    })
}

/// `duban report`: one report of a day, week or month.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A day of the period (YYYY-MM-DD, local time).
    #[arg(long)]
    pub date: NaiveDate,
    /// Day, the week (Monday–Sunday) or the month holding --date.
    #[arg(long, value_enum, default_value = "day")]
    pub period: Period,
    /// Lake folder (e.g. out/demo/lake).
    #[arg(long, default_value_os_t = crate::config::Config::default_lake_dir())]
    pub lake: PathBuf,
    /// Output folder: <id>.html, <id>.md, <id>.json.
    #[arg(long, default_value_os_t = crate::config::Config::default_reports_dir())]
    pub out: PathBuf,
}

pub async fn run_cli(args: ReportArgs) -> Result<()> {
    if !args.lake.is_dir() {
        bail!(
            "lake folder {} does not exist (run `duban demo` or `duban run` first)",
            args.lake.display()
        );
    }
    let spec = ReportSpec::containing(args.period, args.date);
    let now = chrono::Utc::now()
        .with_timezone(&crate::record::local_offset())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let report = generate(&args.lake, &spec, &now).await?;
    let files = report.write(&args.out)?;
    let d = &report.data;
    println!(
        "{}: {} complaints ({:+} vs previous period), {} hot issues, {} new alerts{}",
        d.title,
        d.complaints.total,
        d.complaints.change,
        d.hot_issues.len(),
        d.alerts.new_yellow,
        if d.has_data {
            ""
        } else {
            " — no data for this period"
        }
    );
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn month_ends_including_the_last_month_the_calendar_holds() {
        assert_eq!(month_end(d("2026-12-05")), d("2026-12-31"));
        assert_eq!(month_end(d("2028-02-10")), d("2028-02-29"));
        assert_eq!(month_end(NaiveDate::MAX), NaiveDate::MAX);
    }

    #[test]
    fn periods_ids_and_previous() {
        let day = ReportSpec::containing(Period::Day, d("2026-11-20"));
        assert_eq!(day.id(), "day-2026-11-20");
        assert_eq!(day.previous(), (d("2026-11-19"), d("2026-11-19")));
        // 2026-11-20 is a Friday; its week runs Monday 16th to Sunday 22nd.
        let week = ReportSpec::containing(Period::Week, d("2026-11-20"));
        assert_eq!((week.start, week.end), (d("2026-11-16"), d("2026-11-22")));
        assert_eq!(week.id(), "week-2026-11-16");
        assert_eq!(week.previous(), (d("2026-11-09"), d("2026-11-15")));
        let month = ReportSpec::containing(Period::Month, d("2026-03-31"));
        assert_eq!((month.start, month.end), (d("2026-03-01"), d("2026-03-31")));
        assert_eq!(month.previous(), (d("2026-02-01"), d("2026-02-28")));
        assert_eq!(month.id(), "month-2026-03");
        let dec = ReportSpec::containing(Period::Month, d("2026-12-05"));
        assert_eq!(dec.end, d("2026-12-31"));
    }

    #[test]
    fn a_run_reports_on_the_last_complete_period() {
        assert_eq!(
            ReportSpec::last_complete(Period::Day, d("2026-11-20")).id(),
            "day-2026-11-19"
        );
        assert_eq!(
            ReportSpec::last_complete(Period::Week, d("2026-11-23")).id(),
            "week-2026-11-16"
        );
        assert_eq!(
            ReportSpec::last_complete(Period::Month, d("2026-01-01")).id(),
            "month-2025-12"
        );
    }

    #[test]
    fn time_zones_and_schedules() {
        assert_eq!(
            parse_time_zone("Asia/Shanghai")
                .expect("tz")
                .local_minus_utc(),
            8 * 3600
        );
        assert_eq!(
            parse_time_zone("-05:30").expect("tz").local_minus_utc(),
            -(5 * 3600 + 30 * 60)
        );
        assert!(parse_time_zone("Europe/Berlin").is_err());
        let cfg = ReportsConfig {
            weekly_schedule: "0 8 * * MON".into(),
            ..ReportsConfig::default()
        };
        let s = cfg.schedules().expect("valid");
        assert_eq!(
            s.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![Period::Day, Period::Week]
        );
        let bad = ReportsConfig {
            schedule: "99 7 * * *".into(),
            ..ReportsConfig::default()
        };
        let e = format!("{:#}", bad.schedules().expect_err("bad minute"));
        assert!(
            e.contains("[reports] schedule") && e.contains("minute"),
            "{e}"
        );
    }
}
