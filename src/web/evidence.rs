//! An alert's evidence from the lake: its complaints, the issue's timeline (complaints per day of
//! the issue or, for a high-frequency alert, of the complainant) and each complainant's history by
//! pseudonym. Read with DataFusion (the report's lake reader, every column as text).

use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::engine::pii::mask_contacts_in_text;
use crate::record::{Alert, AlertTrigger};
use crate::report::lake::{LakeTables, Rows, local_day};

/// Evidence complaints listed in full (the rest are counted).
const MAX_COMPLAINTS: usize = 200;
/// Complainants whose history is shown.
const MAX_PEOPLE: usize = 20;
/// Recent complaints listed per complainant.
const RECENT: usize = 5;
/// Characters of a complaint's text shown.
const BODY_CHARS: usize = 240;

#[derive(Debug, Serialize)]
pub struct ComplaintRow {
    pub complaint_id: String,
    pub channel: String,
    pub received_at: String,
    pub day: Option<NaiveDate>,
    pub title: String,
    pub body: String,
    pub complainant: Option<String>,
    pub district: Option<String>,
    pub place: Option<String>,
    pub domain: Option<String>,
    pub issue_id: Option<String>,
    pub duplicate_of: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TimelineDay {
    pub day: NaiveDate,
    pub complaints: u64,
    pub complainants: u64,
    /// Of this alert's evidence.
    pub evidence: u64,
    pub titles: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Brief {
    pub complaint_id: String,
    pub day: Option<NaiveDate>,
    pub title: String,
    pub domain: Option<String>,
    pub in_alert: bool,
}

#[derive(Debug, Serialize)]
pub struct PersonHistory {
    pub pseudonym: String,
    pub complaints: u64,
    pub in_alert: u64,
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
    pub domains: Vec<(String, u64)>,
    pub recent: Vec<Brief>,
}

#[derive(Debug, Serialize, Default)]
pub struct Evidence {
    pub complaints: Vec<ComplaintRow>,
    /// Evidence complaints of the alert (found in the lake or not).
    pub evidence_total: usize,
    pub found: usize,
    pub timeline_of: String,
    pub timeline: Vec<TimelineDay>,
    pub people: Vec<PersonHistory>,
    pub notes: Vec<String>,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items
        .into_iter()
        .map(|s| quote(s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

const COLS: [&str; 12] = [
    "complaint_id",
    "channel",
    "received_at",
    "title",
    "body",
    "complainant",
    "district",
    "place",
    "domain",
    "issue_id",
    "duplicate_of",
    "source_version",
];

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

/// Rows as complaints, one per id (a re-delivered newer version wins), oldest first.
fn complaints(rows: &Rows) -> Vec<ComplaintRow> {
    let mut by_id: BTreeMap<String, (String, ComplaintRow)> = BTreeMap::new();
    for r in &rows.rows {
        let g = |c: &str| rows.get(r, c).map(str::to_string);
        let Some(id) = g("complaint_id") else {
            continue;
        };
        let version = g("source_version").unwrap_or_default();
        if by_id.get(&id).is_some_and(|(v, _)| *v >= version) {
            continue;
        }
        let received_at = g("received_at").unwrap_or_default();
        let row = ComplaintRow {
            complaint_id: id.clone(),
            channel: crate::report::data::channel_label(&g("channel").unwrap_or_default()),
            day: local_day(&received_at),
            received_at,
            // Masked again on the way out: a lake written before a masking rule existed still
            // shows no contact data (the whole text, before it is cut).
            title: mask_contacts_in_text(&g("title").unwrap_or_default()),
            body: cut(
                &mask_contacts_in_text(&g("body").unwrap_or_default()),
                BODY_CHARS,
            ),
            complainant: g("complainant"),
            district: g("district"),
            place: g("place"),
            domain: g("domain").map(|d| crate::report::data::domain_label(&d)),
            issue_id: g("issue_id"),
            duplicate_of: g("duplicate_of"),
        };
        by_id.insert(id, (version, row));
    }
    let mut out: Vec<ComplaintRow> = by_id.into_values().map(|(_, r)| r).collect();
    out.sort_by(|a, b| {
        (a.received_at.as_str(), a.complaint_id.as_str())
            .cmp(&(b.received_at.as_str(), b.complaint_id.as_str()))
    });
    out
}

pub async fn evidence(lake: &Path, a: &Alert) -> Result<Evidence> {
    let tables = LakeTables::open(lake).await?;
    let mut ev = Evidence {
        evidence_total: a.complaint_ids.len(),
        ..Evidence::default()
    };
    if !tables.has("complaints") {
        ev.notes.push(format!(
            "数据湖中没有投诉表（{}），无法显示证据投诉",
            lake.display()
        ));
        return Ok(ev);
    }
    let ids: BTreeSet<&str> = a.complaint_ids.iter().map(String::as_str).collect();
    let rows = if ids.is_empty() {
        Rows::default()
    } else {
        let filter = format!("where complaint_id in ({})", list(&ids));
        tables.select("complaints", &COLS, &filter).await?
    };
    let found = complaints(&rows);
    ev.found = found.len();
    if ev.found < ids.len() {
        ev.notes
            .push(format!("{} 件证据投诉不在数据湖中", ids.len() - ev.found));
    }

    // The timeline: every complaint of the issue(s), or of the complainant.
    let (timeline_filter, of) = match a.trigger {
        AlertTrigger::HighFrequency => (
            format!("where complainant = {}", quote(&a.subject)),
            format!("投诉人 {} 的全部投诉", a.subject),
        ),
        AlertTrigger::CrowdConcentration => {
            let mut issues: BTreeSet<String> =
                found.iter().filter_map(|c| c.issue_id.clone()).collect();
            issues.insert(a.subject.clone());
            (
                format!(
                    "where issue_id in ({}) or complaint_id in ({})",
                    list(&issues),
                    if ids.is_empty() {
                        "''".to_string()
                    } else {
                        list(&ids)
                    }
                ),
                format!("问题 {} 的全部投诉", a.subject),
            )
        }
    };
    ev.timeline_of = of;
    let related = complaints(&tables.select("complaints", &COLS, &timeline_filter).await?);
    let mut days: BTreeMap<NaiveDate, (u64, BTreeSet<String>, u64, Vec<String>)> = BTreeMap::new();
    for c in &related {
        let Some(d) = c.day else { continue };
        let e = days.entry(d).or_default();
        e.0 += 1;
        if let Some(p) = &c.complainant {
            e.1.insert(p.clone());
        }
        e.2 += u64::from(ids.contains(c.complaint_id.as_str()));
        if e.3.len() < 3 {
            e.3.push(cut(&c.title, 40));
        }
    }
    ev.timeline = days
        .into_iter()
        .map(|(day, (n, people, inside, titles))| TimelineDay {
            day,
            complaints: n,
            complainants: people.len() as u64,
            evidence: inside,
            titles,
        })
        .collect();

    // Each complainant's history by pseudonym (most evidence complaints first).
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for c in &found {
        if let Some(p) = &c.complainant {
            *counts.entry(p.clone()).or_default() += 1;
        }
    }
    let mut people: Vec<(String, u64)> = counts.into_iter().collect();
    people.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    people.truncate(MAX_PEOPLE);
    if !people.is_empty() {
        let filter = format!(
            "where complainant in ({})",
            list(people.iter().map(|p| &p.0))
        );
        let all = complaints(&tables.select("complaints", &COLS, &filter).await?);
        for (p, inside) in &people {
            let mine: Vec<&ComplaintRow> = all
                .iter()
                .filter(|c| c.complainant.as_deref() == Some(p.as_str()))
                .collect();
            let mut domains: BTreeMap<String, u64> = BTreeMap::new();
            for c in &mine {
                if let Some(d) = &c.domain {
                    *domains.entry(d.clone()).or_default() += 1;
                }
            }
            let mut domains: Vec<(String, u64)> = domains.into_iter().collect();
            domains.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            ev.people.push(PersonHistory {
                pseudonym: p.clone(),
                complaints: mine.len() as u64,
                in_alert: *inside,
                first: mine.iter().filter_map(|c| c.day).min(),
                last: mine.iter().filter_map(|c| c.day).max(),
                domains,
                recent: mine
                    .iter()
                    .rev()
                    .take(RECENT)
                    .map(|c| Brief {
                        complaint_id: c.complaint_id.clone(),
                        day: c.day,
                        title: cut(&c.title, 60),
                        domain: c.domain.clone(),
                        in_alert: ids.contains(c.complaint_id.as_str()),
                    })
                    .collect(),
            });
        }
    }
    let mut listed = found;
    if listed.len() > MAX_COMPLAINTS {
        ev.notes.push(format!(
            "仅列出最近 {MAX_COMPLAINTS} 件（共 {} 件）",
            listed.len()
        ));
        listed.drain(..listed.len() - MAX_COMPLAINTS);
    }
    ev.complaints = listed;
    Ok(ev)
}
