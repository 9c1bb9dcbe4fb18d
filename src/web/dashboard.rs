//! The dashboard (态势): a day's numbers from the lake (the report's own computation), the
//! 30-day trend and the by-district bars drawn by the report's SVG charts, the hottest issues, and
//! the live board's counts (only the caller's own alerts for a unit).

use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;
use std::path::Path;

use crate::lifecycle::decide::{Role, overdue};
use crate::record::{Alert, AlertLevel, AlertStatus};
use crate::report::chart;
use crate::report::data::{Count, HotIssue};
use crate::report::{Period, ReportSpec};

#[derive(Debug, Serialize, Default)]
pub struct BoardNumbers {
    pub yellow: u64,
    pub red: u64,
    pub green: u64,
    pub open: u64,
    pub overdue: u64,
    pub opened_today: u64,
    pub escalated_today: u64,
    pub closed_today: u64,
}

#[derive(Debug, Serialize)]
pub struct District {
    pub district: String,
    pub complaints: u64,
    pub previous: u64,
    pub change: i64,
    pub open_alerts: u64,
    pub red_alerts: u64,
    /// 0..=4: how hot the district is against the busiest one (the schematic's shade).
    pub heat: u8,
}

#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub date: NaiveDate,
    pub has_data: bool,
    pub complaints: u64,
    pub previous: u64,
    pub change: i64,
    pub complainants: u64,
    pub duplicates: u64,
    pub by_channel: Vec<Count>,
    pub by_domain: Vec<Count>,
    pub board: BoardNumbers,
    pub trend_svg: String,
    pub district_svg: String,
    pub districts: Vec<District>,
    pub hot_issues: Vec<HotIssue>,
    pub notes: Vec<String>,
}

fn on(t: Option<chrono::DateTime<chrono::FixedOffset>>, d: NaiveDate) -> bool {
    t.is_some_and(|t| t.with_timezone(&crate::record::local_offset()).date_naive() == d)
}

pub fn board_numbers<'a>(
    alerts: impl Iterator<Item = &'a Alert>,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> BoardNumbers {
    let today = now
        .with_timezone(&crate::record::local_offset())
        .date_naive();
    let mut n = BoardNumbers::default();
    for a in alerts {
        if a.lifecycle.status == AlertStatus::Merged {
            continue;
        }
        match a.level {
            AlertLevel::Yellow => n.yellow += 1,
            AlertLevel::Red => n.red += 1,
            AlertLevel::Green => n.green += 1,
        }
        let open = matches!(
            a.lifecycle.status,
            AlertStatus::Assigned | AlertStatus::FeedbackReceived
        );
        n.open += u64::from(open);
        let late = match a.level {
            AlertLevel::Red => a.lifecycle.reply_deadline.is_some_and(|d| overdue(d, now)),
            _ => overdue(a.deadline, now),
        };
        n.overdue += u64::from(open && late);
        n.opened_today += u64::from(on(a.lifecycle.opened_at, today));
        n.escalated_today += u64::from(on(a.lifecycle.escalated_at, today));
        n.closed_today += u64::from(on(a.lifecycle.closed_at, today));
    }
    n
}

pub async fn compute(
    lake: &Path,
    date: NaiveDate,
    alerts: &[Alert],
    role: &Role,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Dashboard> {
    let spec = ReportSpec::containing(Period::Day, date);
    let data = crate::report::data::compute(lake, &spec, &now.to_rfc3339()).await?;
    let points: Vec<(String, u64)> = data
        .trend
        .iter()
        .map(|p| (p.day.format("%m-%d").to_string(), p.count))
        .collect();
    let trend_svg = chart::trend("trend", &format!("近30日投诉趋势（截至{date}）"), &points);
    let max = data
        .complaints
        .by_district
        .iter()
        .map(|c| c.count)
        .max()
        .unwrap_or(0);
    let mut districts: Vec<District> = data
        .complaints
        .by_district
        .iter()
        .map(|c| District {
            district: c.label.clone(),
            complaints: c.count,
            previous: c.previous,
            change: c.change,
            open_alerts: 0,
            red_alerts: 0,
            heat: if max == 0 || c.count == 0 {
                0
            } else {
                (1 + (c.count * 3) / max).min(4) as u8
            },
        })
        .collect();
    let open = |a: &&Alert| {
        matches!(
            a.lifecycle.status,
            AlertStatus::Assigned | AlertStatus::FeedbackReceived
        )
    };
    for a in alerts.iter().filter(open) {
        let name = a.district.clone().unwrap_or_else(|| "未知".to_string());
        let i = match districts.iter().position(|d| d.district == name) {
            Some(i) => i,
            None => {
                districts.push(District {
                    district: name,
                    complaints: 0,
                    previous: 0,
                    change: 0,
                    open_alerts: 0,
                    red_alerts: 0,
                    heat: 0,
                });
                districts.len() - 1
            }
        };
        districts[i].open_alerts += 1;
        districts[i].red_alerts += u64::from(a.level == AlertLevel::Red);
    }
    let bars: Vec<chart::Bar> = data
        .complaints
        .by_district
        .iter()
        .map(|c| chart::Bar {
            label: &c.label,
            value: c.count,
            previous: Some(c.previous),
            color: "#3b6fb6",
        })
        .collect();
    let district_svg = if bars.is_empty() {
        String::new()
    } else {
        chart::bars("districts", "各区投诉（竖线为前一日）", &bars)
    };
    let mut notes = data.notes.clone();
    if matches!(role, Role::Unit(_)) {
        notes.push("预警数字仅含本单位的预警；投诉数字为全市".to_string());
    }
    Ok(Dashboard {
        date,
        has_data: data.has_data,
        complaints: data.complaints.total,
        previous: data.complaints.previous_total,
        change: data.complaints.change,
        complainants: data.complaints.complainants,
        duplicates: data.complaints.duplicates,
        by_channel: data.complaints.by_channel.clone(),
        by_domain: data.complaints.by_domain.clone(),
        board: board_numbers(alerts.iter(), now),
        trend_svg,
        district_svg,
        districts,
        hot_issues: data.hot_issues.clone(),
        notes,
    })
}
