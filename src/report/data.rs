//! The numbers of one report, computed from the lake: complaints by channel, domain and district
//! with the change against the previous period, trend, hot issues, complainants, alerts, focus categories.

use anyhow::Result;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::ReportSpec;
use super::lake::{LakeTables, Rows, local_day};

/// Days in the trend line (more when the period is longer: a month shows all its days).
pub const TREND_DAYS: i64 = 30;
/// Rows in the hot-issue and complainant tables.
pub const TOP_N: usize = 10;
/// Entries in "what changed most".
pub const CHANGES_N: usize = 5;
/// Complaints in the trailing 30 days that put a complainant (flagged or not) on the list.
pub const FREQUENT_MIN_30D: u64 = 3;

/// The three focus categories of triage.
pub const FOCUS: [&str; 3] = [
    crate::engine::triage::RESPONSIBILITY_DISPUTE,
    crate::engine::triage::COMMON_ISSUE,
    crate::engine::triage::SOCIAL_IMPACT,
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportData {
    pub report_id: String,
    pub period: String,
    pub title: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub previous_start: NaiveDate,
    pub previous_end: NaiveDate,
    pub generated_at: String,
    /// The scheduled run that produced the report (RFC 3339); None when made by hand.
    #[serde(default)]
    pub scheduled_for: Option<String>,
    /// False when the period holds no complaints and no alert activity.
    pub has_data: bool,
    pub complaints: ComplaintSection,
    pub trend: Vec<TrendPoint>,
    pub hot_issues: Vec<HotIssue>,
    pub complainants: ComplainantSection,
    pub alerts: AlertSection,
    pub focus: Vec<FocusCategory>,
    pub changes: Vec<Change>,
    /// Things a reader should know about the data (missing tables, approximations).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ComplaintSection {
    pub total: u64,
    pub previous_total: u64,
    pub change: i64,
    pub change_pct: Option<f64>,
    /// Exact resubmissions among `total`.
    pub duplicates: u64,
    pub complainants: u64,
    pub by_channel: Vec<Count>,
    pub by_domain: Vec<Count>,
    pub by_district: Vec<Count>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Count {
    pub key: String,
    pub label: String,
    pub count: u64,
    pub previous: u64,
    pub change: i64,
    pub change_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrendPoint {
    pub day: NaiveDate,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HotIssue {
    pub issue_id: String,
    pub title: String,
    pub place: Option<String>,
    pub district: Option<String>,
    pub domain: Option<String>,
    /// Distinct complainants in the period.
    pub complainants: u64,
    pub complaints: u64,
    pub previous_complainants: u64,
    /// Complainants this period minus the previous period.
    pub growth: i64,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ComplainantSection {
    /// Complainants flagged high-frequency by the engine who filed in the period.
    pub flagged_active: u64,
    pub rows: Vec<FrequentComplainant>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FrequentComplainant {
    pub pseudonym: String,
    pub complaints: u64,
    pub complaints_30d: u64,
    pub flagged: bool,
    pub focus_domain: Option<String>,
    pub focus_share: f64,
    pub focus_issue: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AlertSection {
    /// Whether the alerts table has lifecycle columns (escalated_at, closed_at).
    pub lifecycle: bool,
    pub new_yellow: u64,
    pub escalated_red: Option<u64>,
    pub closed_green: Option<u64>,
    /// Open at the end of the period.
    pub open: u64,
    /// Open at the end of the period and past their deadline.
    pub overdue: u64,
    /// Current level of every alert raised by the end of the period.
    pub by_level: BTreeMap<String, u64>,
    pub by_unit: Vec<UnitAlerts>,
    /// Alerts raised in the period that repeat an earlier one (None: no lifecycle data).
    pub recurrences: Option<u64>,
    pub recurrent: Vec<AlertRow>,
    /// Lifecycle actions in the period by action (None: no `alert_history` table).
    pub actions: Option<BTreeMap<String, u64>>,
    /// Alerts raised in the period, then overdue ones.
    pub list: Vec<AlertRow>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UnitAlerts {
    pub unit: String,
    pub new_yellow: u64,
    pub escalated_red: u64,
    pub closed_green: u64,
    pub open: u64,
    pub overdue: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertRow {
    pub alert_id: String,
    pub trigger: String,
    pub level: String,
    pub subject: String,
    pub unit: String,
    pub raised: Option<NaiveDate>,
    pub deadline: Option<NaiveDate>,
    pub overdue: bool,
    pub recurrence_of: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FocusCategory {
    pub category: String,
    /// Complaints in the period flagged with the category (themselves or through their issue).
    pub complaints: u64,
    pub previous: u64,
    pub change: i64,
    /// Issues with complaints in the period that carry the category.
    pub issues: u64,
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    pub dimension: String,
    pub label: String,
    pub count: i64,
    pub previous: i64,
    pub change: i64,
    pub change_pct: Option<f64>,
}

pub fn channel_label(key: &str) -> String {
    match key {
        "hotline" => "12345热线",
        "board" => "人民网留言板",
        "portal" => "市长信箱",
        "wanshitong" => "皖事通",
        other => other,
    }
    .to_string()
}

pub fn domain_label(key: &str) -> String {
    match key {
        "unclassified" => "未分类".to_string(),
        other => other.to_string(),
    }
}

pub const NO_DISTRICT: &str = "未注明";

pub fn trigger_label(key: &str) -> String {
    match key {
        "crowd_concentration" => "群众诉求集中",
        "high_frequency" => "单人高频投诉",
        other => other,
    }
    .to_string()
}

pub fn level_label(key: &str) -> &'static str {
    match key {
        "yellow" => "黄色",
        "red" => "红色",
        "green" => "绿色",
        _ => "未知",
    }
}

pub fn pct(now: i64, before: i64) -> Option<f64> {
    (before != 0).then(|| ((now - before) as f64 / before as f64 * 1000.0).round() / 10.0)
}

/// One complaint as the report needs it.
struct ComplaintRow {
    day: NaiveDate,
    channel: String,
    domain: String,
    district: String,
    complainant: Option<String>,
    issue: Option<String>,
    flags: Vec<String>,
    duplicate: bool,
}

struct IssueInfo {
    title: String,
    place: Option<String>,
    district: Option<String>,
    domain: Option<String>,
    merged_into: Option<String>,
    flags: Vec<String>,
}

fn split_flags(s: Option<&str>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

fn in_range(d: NaiveDate, from: NaiveDate, to: NaiveDate) -> bool {
    d >= from && d <= to
}

/// Compute the report for `spec` from the lake (a missing lake or table reads as empty).
pub async fn compute(lake: &Path, spec: &ReportSpec, generated_at: &str) -> Result<ReportData> {
    let t = LakeTables::open(lake).await?;
    let mut notes = Vec::new();
    let (start, end) = (spec.start, spec.end);
    let (pstart, pend) = spec.previous();
    let trend_days = TREND_DAYS.max((end - start).num_days() + 1);
    let trend_start = end - Duration::days(trend_days - 1);
    let from = pstart.min(trend_start);
    if !t.has("complaints") {
        notes.push("湖中尚无诉求表（complaints）".to_string());
    }
    let rows = t
        .select(
            "complaints",
            &[
                "day",
                "channel",
                "domain",
                "district",
                "complainant",
                "issue_id",
                "flags",
                "duplicate_of",
            ],
            &format!("where day >= '{from}' and day <= '{end}'"),
        )
        .await?;
    let complaints: Vec<ComplaintRow> = rows
        .rows
        .iter()
        .filter_map(|r| {
            Some(ComplaintRow {
                day: local_day(rows.get(r, "day")?)?,
                channel: rows.get(r, "channel").unwrap_or("unknown").to_string(),
                domain: rows.get(r, "domain").unwrap_or("unclassified").to_string(),
                district: rows.get(r, "district").unwrap_or(NO_DISTRICT).to_string(),
                complainant: rows.get(r, "complainant").map(str::to_string),
                issue: rows.get(r, "issue_id").map(str::to_string),
                flags: split_flags(rows.get(r, "flags")),
                duplicate: rows.get(r, "duplicate_of").is_some(),
            })
        })
        .collect();
    let issues = load_issues(&t).await?;
    let root = |id: &str| -> String {
        let mut cur = id.to_string();
        for _ in 0..16 {
            match issues.get(&cur).and_then(|i| i.merged_into.clone()) {
                Some(next) if next != cur => cur = next,
                _ => break,
            }
        }
        cur
    };
    let cur: Vec<&ComplaintRow> = complaints
        .iter()
        .filter(|c| in_range(c.day, start, end))
        .collect();
    let prev: Vec<&ComplaintRow> = complaints
        .iter()
        .filter(|c| in_range(c.day, pstart, pend))
        .collect();

    // Complaints by dimension.
    let counts = |rows: &[&ComplaintRow], key: &dyn Fn(&ComplaintRow) -> String| {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for c in rows {
            *m.entry(key(c)).or_default() += 1;
        }
        m
    };
    let dimension =
        |key: &dyn Fn(&ComplaintRow) -> String, label: &dyn Fn(&str) -> String, always: &[&str]| {
            let now = counts(&cur, key);
            let before = counts(&prev, key);
            let mut keys: BTreeSet<String> = now.keys().chain(before.keys()).cloned().collect();
            keys.extend(always.iter().map(|s| s.to_string()));
            let mut out: Vec<Count> = keys
                .into_iter()
                .map(|k| {
                    let (n, p) = (
                        now.get(&k).copied().unwrap_or(0),
                        before.get(&k).copied().unwrap_or(0),
                    );
                    Count {
                        label: label(&k),
                        key: k,
                        count: n,
                        previous: p,
                        change: n as i64 - p as i64,
                        change_pct: pct(n as i64, p as i64),
                    }
                })
                .collect();
            out.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then(b.previous.cmp(&a.previous))
                    .then(a.key.cmp(&b.key))
            });
            out
        };
    let channels: Vec<&str> = crate::record::Channel::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let by_channel = dimension(&|c| c.channel.clone(), &channel_label, &channels);
    let by_domain = dimension(&|c| c.domain.clone(), &domain_label, &[]);
    let by_district = dimension(&|c| c.district.clone(), &|s| s.to_string(), &[]);
    let total = cur.len() as u64;
    let previous_total = prev.len() as u64;
    let complainant_set: BTreeSet<&str> = cur
        .iter()
        .filter_map(|c| c.complainant.as_deref())
        .collect();
    let section = ComplaintSection {
        total,
        previous_total,
        change: total as i64 - previous_total as i64,
        change_pct: pct(total as i64, previous_total as i64),
        duplicates: cur.iter().filter(|c| c.duplicate).count() as u64,
        complainants: complainant_set.len() as u64,
        by_channel,
        by_domain,
        by_district,
    };

    // Trend: complaints per day over the last 30 days of the period.
    let mut per_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for c in &complaints {
        *per_day.entry(c.day).or_default() += 1;
    }
    let trend: Vec<TrendPoint> = (0..trend_days)
        .map(|i| {
            let day = trend_start + Duration::days(i);
            TrendPoint {
                day,
                count: per_day.get(&day).copied().unwrap_or(0),
            }
        })
        .collect();

    // Hot issues: distinct complainants in the period per (root) issue.
    let hot_issues = hot_issues(&cur, &prev, &issues, &root);

    // Complainants.
    let complainants = complainant_section(&t, &complaints, &cur, spec, &issues, &root).await?;

    // Focus categories.
    let focus = focus_categories(&cur, &prev, &issues, &root);

    let alerts = alert_section(&t, spec, &issues, &mut notes).await?;

    let changes = changes_most(&section, &focus, &hot_issues);
    let has_data = total > 0
        || alerts.new_yellow > 0
        || alerts.escalated_red.unwrap_or(0) > 0
        || alerts.closed_green.unwrap_or(0) > 0;
    Ok(ReportData {
        report_id: spec.id(),
        period: spec.period.as_str().to_string(),
        title: spec.title(),
        start,
        end,
        previous_start: pstart,
        previous_end: pend,
        generated_at: generated_at.to_string(),
        scheduled_for: None,
        has_data,
        complaints: section,
        trend,
        hot_issues,
        complainants,
        alerts,
        focus,
        changes,
        notes,
    })
}

async fn load_issues(t: &LakeTables) -> Result<HashMap<String, IssueInfo>> {
    let rows = t
        .select(
            "issues",
            &[
                "issue_id",
                "title",
                "place",
                "district",
                "domain",
                "merged_into",
                "flags",
            ],
            "",
        )
        .await?;
    Ok(rows
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                rows.get(r, "issue_id")?.to_string(),
                IssueInfo {
                    title: rows.get(r, "title").unwrap_or_default().to_string(),
                    place: rows.get(r, "place").map(str::to_string),
                    district: rows.get(r, "district").map(str::to_string),
                    domain: rows.get(r, "domain").map(str::to_string),
                    merged_into: rows.get(r, "merged_into").map(str::to_string),
                    flags: split_flags(rows.get(r, "flags")),
                },
            ))
        })
        .collect())
}

fn hot_issues(
    cur: &[&ComplaintRow],
    prev: &[&ComplaintRow],
    issues: &HashMap<String, IssueInfo>,
    root: &dyn Fn(&str) -> String,
) -> Vec<HotIssue> {
    type Acc = (BTreeSet<String>, u64);
    let gather = |rows: &[&ComplaintRow]| {
        let mut m: BTreeMap<String, Acc> = BTreeMap::new();
        for c in rows {
            if let Some(i) = &c.issue {
                let e = m.entry(root(i)).or_default();
                e.1 += 1;
                if let Some(p) = &c.complainant {
                    e.0.insert(p.clone());
                }
            }
        }
        m
    };
    let now = gather(cur);
    let before = gather(prev);
    let mut out: Vec<HotIssue> = now
        .into_iter()
        .map(|(id, (people, n))| {
            let info = issues.get(&id);
            let p = before.get(&id).map_or(0, |b| b.0.len() as u64);
            HotIssue {
                title: info.map(|i| i.title.clone()).unwrap_or_default(),
                place: info.and_then(|i| i.place.clone()),
                district: info.and_then(|i| i.district.clone()),
                domain: info.and_then(|i| i.domain.as_deref().map(domain_label)),
                flags: info.map(|i| i.flags.clone()).unwrap_or_default(),
                complainants: people.len() as u64,
                complaints: n,
                previous_complainants: p,
                growth: people.len() as i64 - p as i64,
                issue_id: id,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.complainants
            .cmp(&a.complainants)
            .then(b.complaints.cmp(&a.complaints))
            .then(a.issue_id.cmp(&b.issue_id))
    });
    out.truncate(TOP_N);
    out
}

async fn complainant_section(
    t: &LakeTables,
    all: &[ComplaintRow],
    cur: &[&ComplaintRow],
    spec: &ReportSpec,
    issues: &HashMap<String, IssueInfo>,
    root: &(dyn Fn(&str) -> String + Sync),
) -> Result<ComplainantSection> {
    let flagged_rows = t
        .select("complainants", &["complainant", "flagged"], "")
        .await?;
    let flagged: BTreeSet<String> = flagged_rows
        .rows
        .iter()
        .filter(|r| flagged_rows.get(r, "flagged") == Some("true"))
        .filter_map(|r| flagged_rows.get(r, "complainant").map(str::to_string))
        .collect();
    let from30 = spec.end - Duration::days(TREND_DAYS - 1);
    let mut period: BTreeMap<&str, u64> = BTreeMap::new();
    for c in cur {
        if let Some(p) = &c.complainant {
            *period.entry(p).or_default() += 1;
        }
    }
    let mut last30: BTreeMap<&str, Vec<&ComplaintRow>> = BTreeMap::new();
    for c in all.iter().filter(|c| in_range(c.day, from30, spec.end)) {
        if let Some(p) = &c.complainant {
            last30.entry(p).or_default().push(c);
        }
    }
    let flagged_active = period.keys().filter(|p| flagged.contains(**p)).count() as u64;
    let mut rows: Vec<FrequentComplainant> = period
        .iter()
        .filter_map(|(p, n)| {
            let recent = last30.get(p).map(Vec::as_slice).unwrap_or_default();
            let is_flagged = flagged.contains(*p);
            if !is_flagged && (recent.len() as u64) < FREQUENT_MIN_30D {
                return None;
            }
            let top = |key: &dyn Fn(&ComplaintRow) -> Option<String>| {
                let mut m: BTreeMap<String, u64> = BTreeMap::new();
                for c in recent {
                    if let Some(k) = key(c) {
                        *m.entry(k).or_default() += 1;
                    }
                }
                m.into_iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            };
            let dom = top(&|c| Some(c.domain.clone()));
            let iss = top(&|c| c.issue.as_deref().map(root));
            Some(FrequentComplainant {
                pseudonym: p.to_string(),
                complaints: *n,
                complaints_30d: recent.len() as u64,
                flagged: is_flagged,
                focus_share: dom.as_ref().map_or(0.0, |d| {
                    (d.1 as f64 / recent.len().max(1) as f64 * 100.0).round() / 100.0
                }),
                focus_domain: dom.map(|d| domain_label(&d.0)),
                focus_issue: iss.and_then(|(id, _)| issues.get(&id).map(|i| i.title.clone())),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.flagged
            .cmp(&a.flagged)
            .then(b.complaints_30d.cmp(&a.complaints_30d))
            .then(b.complaints.cmp(&a.complaints))
            .then(a.pseudonym.cmp(&b.pseudonym))
    });
    rows.truncate(TOP_N);
    Ok(ComplainantSection {
        flagged_active,
        rows,
    })
}

fn focus_categories(
    cur: &[&ComplaintRow],
    prev: &[&ComplaintRow],
    issues: &HashMap<String, IssueInfo>,
    root: &dyn Fn(&str) -> String,
) -> Vec<FocusCategory> {
    let has = |c: &ComplaintRow, cat: &str| {
        c.flags.iter().any(|f| f == cat)
            || c.issue
                .as_deref()
                .and_then(|i| issues.get(&root(i)))
                .is_some_and(|i| i.flags.iter().any(|f| f == cat))
    };
    FOCUS
        .iter()
        .map(|cat| {
            let n = cur.iter().filter(|c| has(c, cat)).count() as u64;
            let p = prev.iter().filter(|c| has(c, cat)).count() as u64;
            let mut per_issue: BTreeMap<String, u64> = BTreeMap::new();
            for c in cur {
                if let Some(i) = c.issue.as_deref() {
                    let r = root(i);
                    if issues
                        .get(&r)
                        .is_some_and(|x| x.flags.iter().any(|f| f == cat))
                    {
                        *per_issue.entry(r).or_default() += 1;
                    }
                }
            }
            let mut ranked: Vec<(String, u64)> = per_issue.clone().into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            FocusCategory {
                category: cat.to_string(),
                complaints: n,
                previous: p,
                change: n as i64 - p as i64,
                issues: per_issue.len() as u64,
                examples: ranked
                    .iter()
                    .take(3)
                    .filter_map(|(id, _)| issues.get(id).map(|i| i.title.clone()))
                    .collect(),
            }
        })
        .collect()
}

fn changes_most(s: &ComplaintSection, focus: &[FocusCategory], hot: &[HotIssue]) -> Vec<Change> {
    let mut all = Vec::new();
    for (dim, list) in [
        ("渠道", &s.by_channel),
        ("领域", &s.by_domain),
        ("区县", &s.by_district),
    ] {
        for c in list {
            all.push(Change {
                dimension: dim.into(),
                label: c.label.clone(),
                count: c.count as i64,
                previous: c.previous as i64,
                change: c.change,
                change_pct: c.change_pct,
            });
        }
    }
    for f in focus {
        all.push(Change {
            dimension: "重点类别".into(),
            label: f.category.clone(),
            count: f.complaints as i64,
            previous: f.previous as i64,
            change: f.change,
            change_pct: pct(f.complaints as i64, f.previous as i64),
        });
    }
    for h in hot {
        all.push(Change {
            dimension: "问题（投诉人）".into(),
            label: h.title.clone(),
            count: h.complainants as i64,
            previous: h.previous_complainants as i64,
            change: h.growth,
            change_pct: pct(h.complainants as i64, h.previous_complainants as i64),
        });
    }
    all.retain(|c| c.change != 0);
    all.sort_by(|a, b| {
        b.change
            .abs()
            .cmp(&a.change.abs())
            .then(a.dimension.cmp(&b.dimension))
            .then(a.label.cmp(&b.label))
    });
    all.truncate(CHANGES_N);
    all
}

/// Lifecycle columns of the alerts table, when the lifecycle stage wrote them.
const ALERT_COLUMNS: &[&str] = &[
    "alert_id",
    "trigger",
    "level",
    "subject",
    "unit",
    "deadline",
    "raised_at",
    "merged_into",
    "escalated_at",
    "closed_at",
    "recurrence_of",
    "recurrent",
];

async fn alert_section(
    t: &LakeTables,
    spec: &ReportSpec,
    issues: &HashMap<String, IssueInfo>,
    notes: &mut Vec<String>,
) -> Result<AlertSection> {
    let (start, end) = (spec.start, spec.end);
    if !t.has("alerts") {
        notes.push("湖中尚无预警表（alerts）".into());
        return Ok(AlertSection::default());
    }
    let rows: Rows = t.select("alerts", ALERT_COLUMNS, "").await?;
    let lifecycle = rows.col("escalated_at").is_some() && rows.col("closed_at").is_some();
    let recurrence_known = rows.col("recurrent").is_some() || rows.col("recurrence_of").is_some();
    if !lifecycle {
        notes.push(
            "无生命周期数据：预警表没有升级/销号时间（escalated_at、closed_at），红色升级与绿色销号未统计，\
             在办以当前等级判断"
                .into(),
        );
    }
    if !recurrence_known {
        notes.push(
            "无生命周期数据：预警表没有复发字段（recurrent、recurrence_of），复发未统计".into(),
        );
    }
    let mut s = AlertSection {
        lifecycle,
        escalated_red: lifecycle.then_some(0),
        closed_green: lifecycle.then_some(0),
        recurrences: recurrence_known.then_some(0),
        ..AlertSection::default()
    };
    let mut units: BTreeMap<String, UnitAlerts> = BTreeMap::new();
    let mut raised_list = Vec::new();
    let mut overdue_list = Vec::new();
    for r in &rows.rows {
        // An alert folded into another carries on as that one.
        if rows.get(r, "merged_into").is_some() {
            continue;
        }
        let Some(raised) = rows.get(r, "raised_at").and_then(local_day) else {
            continue;
        };
        if raised > end {
            continue;
        }
        let level = rows.get(r, "level").unwrap_or("yellow").to_string();
        let escalated = rows.get(r, "escalated_at").and_then(local_day);
        let closed = rows.get(r, "closed_at").and_then(local_day);
        let deadline = rows.get(r, "deadline").and_then(local_day);
        let closed_by_end = if lifecycle {
            closed.is_some_and(|d| d <= end)
        } else {
            level == "green"
        };
        let open = !closed_by_end;
        let overdue = open && deadline.is_some_and(|d| d < end);
        let unit = rows.get(r, "unit").unwrap_or("未指派").to_string();
        let u = units.entry(unit.clone()).or_insert_with(|| UnitAlerts {
            unit: unit.clone(),
            ..UnitAlerts::default()
        });
        let is_new = in_range(raised, start, end);
        let esc = escalated.is_some_and(|d| in_range(d, start, end));
        let clo = closed.is_some_and(|d| in_range(d, start, end));
        u.new_yellow += u64::from(is_new);
        u.escalated_red += u64::from(esc);
        u.closed_green += u64::from(clo);
        u.open += u64::from(open);
        u.overdue += u64::from(overdue);
        s.new_yellow += u64::from(is_new);
        if let Some(n) = s.escalated_red.as_mut() {
            *n += u64::from(esc);
        }
        if let Some(n) = s.closed_green.as_mut() {
            *n += u64::from(clo);
        }
        s.open += u64::from(open);
        s.overdue += u64::from(overdue);
        *s.by_level.entry(level.clone()).or_default() += 1;
        let recurrence_of = rows.get(r, "recurrence_of").map(str::to_string);
        let recurrent = rows.get(r, "recurrent") == Some("true") || recurrence_of.is_some();
        let subject = rows.get(r, "subject").unwrap_or_default();
        let row = AlertRow {
            alert_id: rows.get(r, "alert_id").unwrap_or_default().to_string(),
            trigger: trigger_label(rows.get(r, "trigger").unwrap_or_default()),
            level,
            subject: issues
                .get(subject)
                .map_or_else(|| subject.to_string(), |i| i.title.clone()),
            unit,
            raised: Some(raised),
            deadline,
            overdue,
            recurrence_of,
        };
        if is_new && recurrent {
            if let Some(n) = s.recurrences.as_mut() {
                *n += 1;
            }
            s.recurrent.push(row.clone());
        }
        if is_new {
            raised_list.push(row);
        } else if overdue {
            overdue_list.push(row);
        }
    }
    raised_list.sort_by(|a, b| a.raised.cmp(&b.raised).then(a.alert_id.cmp(&b.alert_id)));
    overdue_list.sort_by(|a, b| {
        a.deadline
            .cmp(&b.deadline)
            .then(a.alert_id.cmp(&b.alert_id))
    });
    s.list = raised_list
        .into_iter()
        .chain(overdue_list)
        .take(30)
        .collect();
    let mut by_unit: Vec<UnitAlerts> = units
        .into_values()
        .filter(|u| u.new_yellow + u.escalated_red + u.closed_green + u.open + u.overdue > 0)
        .collect();
    by_unit.sort_by(|a, b| {
        (b.overdue, b.open, b.new_yellow)
            .cmp(&(a.overdue, a.open, a.new_yellow))
            .then(a.unit.cmp(&b.unit))
    });
    s.by_unit = by_unit;
    if t.has("alert_history") {
        let h = t.select("alert_history", &["at", "action"], "").await?;
        let mut actions = BTreeMap::new();
        for r in &h.rows {
            if h.get(r, "at")
                .and_then(local_day)
                .is_some_and(|d| in_range(d, start, end))
            {
                *actions
                    .entry(h.get(r, "action").unwrap_or("unknown").to_string())
                    .or_default() += 1;
            }
        }
        s.actions = Some(actions);
    } else {
        notes.push("无生命周期数据：湖中没有处置记录表（alert_history）".into());
    }
    Ok(s)
}
