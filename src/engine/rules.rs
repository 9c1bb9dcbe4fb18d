//! Stateful operators of the first engine: exact-duplicate detection and the count-based alert
//! rules (群众诉求集中, 单人高频). Pure: rows in, (rows, changed alerts) out; no I/O, no clock.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::config::RuleConfig;
use crate::engine::classify::{KeywordClassifier, UNCLASSIFIED};
use crate::engine::units::UnitTable;
use crate::record::{Alert, AlertLevel, AlertTrigger, Complaint, alert_id};

/// Texts kept per aggregate for key terms.
const SAMPLE_TEXTS: usize = 40;

#[derive(Debug, Default, Clone)]
struct IssueAgg {
    complaint_ids: BTreeSet<String>,
    complainants: BTreeSet<String>,
    domains: BTreeMap<String, u64>,
    district: Option<String>,
    texts: Vec<String>,
}

#[derive(Debug, Default, Clone)]
struct PersonAgg {
    complaint_ids: BTreeSet<String>,
    /// Distinct contents: resubmissions of the same text count once.
    contents: BTreeSet<String>,
    domains: BTreeMap<String, u64>,
    districts: BTreeMap<String, u64>,
    texts: Vec<String>,
}

/// Keyed state of the first engine. Keys: complaint id (seen), content hash (first complaint),
/// (window, issue key) and (window, complainant) aggregates, alert id (latest alert).
#[derive(Debug, Default)]
pub struct AnalyticState {
    seen: HashSet<String>,
    first_by_content: HashMap<String, String>,
    issues: BTreeMap<(NaiveDate, String), IssueAgg>,
    people: BTreeMap<(NaiveDate, String), PersonAgg>,
    alerts: BTreeMap<String, Alert>,
}

/// Start of the tumbling window holding `day` (windows aligned to 1970-01-01).
pub fn window_start(day: NaiveDate, window_days: i64) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let n = (day - epoch).num_days();
    epoch + Duration::days(n.div_euclid(window_days.max(1)) * window_days.max(1))
}

/// `day` plus `n` working days (Monday–Friday).
pub fn add_working_days(day: NaiveDate, n: u32) -> NaiveDate {
    let mut d = day;
    let mut left = n;
    while left > 0 {
        d += Duration::days(1);
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    d
}

fn top(counts: &BTreeMap<String, u64>) -> Option<(String, u64)> {
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, v)| (k.clone(), *v))
}

pub struct RuleContext<'a> {
    pub rules: &'a RuleConfig,
    pub units: &'a UnitTable,
    pub classifier: &'a KeywordClassifier,
}

impl AnalyticState {
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// Apply a batch: drop complaints already seen (same complaint id), mark exact duplicates,
    /// set issue keys, update aggregates and return the changed alerts (latest state each).
    pub fn apply(
        &mut self,
        rows: Vec<Complaint>,
        cx: &RuleContext,
    ) -> (Vec<Complaint>, Vec<Alert>) {
        let mut out = Vec::with_capacity(rows.len());
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for mut c in rows {
            if !self.seen.insert(c.complaint_id.clone()) {
                continue;
            }
            match self.first_by_content.get(&c.content_hash) {
                Some(first) => c.duplicate_of = Some(first.clone()),
                None => {
                    self.first_by_content
                        .insert(c.content_hash.clone(), c.complaint_id.clone());
                }
            }
            let win = window_start(c.day(), cx.rules.window_days);
            if let Some(key) = c.issue_key.clone() {
                let agg = self.issues.entry((win, key.clone())).or_default();
                agg.complaint_ids.insert(c.complaint_id.clone());
                agg.complainants.insert(
                    c.complainant
                        .clone()
                        .unwrap_or_else(|| format!("anon:{}", c.complaint_id)),
                );
                *agg.domains.entry(c.domain.clone()).or_default() += 1;
                agg.district = agg.district.take().or(c.district.clone());
                if agg.texts.len() < SAMPLE_TEXTS {
                    agg.texts.push(format!("{} {}", c.title, c.body));
                }
                if agg.complainants.len() >= cx.rules.crowd_min_complainants {
                    let a = self.crowd_alert(win, &key, &c, cx);
                    touched.insert(a);
                }
            }
            if let Some(p) = c.complainant.clone() {
                let agg = self.people.entry((win, p.clone())).or_default();
                agg.complaint_ids.insert(c.complaint_id.clone());
                agg.contents.insert(c.content_hash.clone());
                *agg.domains.entry(c.domain.clone()).or_default() += 1;
                if let Some(d) = &c.district {
                    *agg.districts.entry(d.clone()).or_default() += 1;
                }
                if agg.texts.len() < SAMPLE_TEXTS {
                    agg.texts.push(format!("{} {}", c.title, c.body));
                }
                if agg.contents.len() >= cx.rules.frequent_min_complaints {
                    let a = self.frequent_alert(win, &p, &c, cx);
                    touched.insert(a);
                }
            }
            out.push(c);
        }
        let changed = touched
            .iter()
            .filter_map(|id| self.alerts.get(id).cloned())
            .collect();
        (out, changed)
    }

    fn upsert(&mut self, mut a: Alert) -> String {
        let id = a.alert_id.clone();
        match self.alerts.get(&id) {
            Some(old) => {
                a.version = old.version + 1;
                a.raised_at = old.raised_at;
                a.deadline = old.deadline;
                a.level = old.level;
            }
            None => a.version = 1,
        }
        self.alerts.insert(id.clone(), a);
        id
    }

    fn crowd_alert(
        &mut self,
        win: NaiveDate,
        key: &str,
        c: &Complaint,
        cx: &RuleContext,
    ) -> String {
        let agg = &self.issues[&(win, key.to_string())];
        let domain = top(&agg.domains)
            .map(|(d, _)| d)
            .filter(|d| d != UNCLASSIFIED);
        let district = agg.district.clone();
        let place = key.rsplit('|').next().unwrap_or(key).to_string();
        let texts: Vec<&str> = agg.texts.iter().map(String::as_str).collect();
        let key_terms = domain
            .as_deref()
            .map(|d| cx.classifier.key_terms(d, &texts, 5))
            .unwrap_or_default();
        let n = agg.complainants.len() as u64;
        let alert = Alert {
            alert_id: alert_id(AlertTrigger::CrowdConcentration, key, win),
            trigger: AlertTrigger::CrowdConcentration,
            level: AlertLevel::Yellow,
            subject: key.to_string(),
            window_start: win,
            window_end: win + Duration::days(cx.rules.window_days - 1),
            summary: format!(
                "{}{}：{}名群众反映{}问题，共{}件",
                district.as_deref().unwrap_or(""),
                place,
                n,
                domain.as_deref().unwrap_or("未分类"),
                agg.complaint_ids.len()
            ),
            unit: cx.units.responsible(domain.as_deref(), district.as_deref()),
            domain,
            district,
            deadline: add_working_days(c.day(), cx.rules.warning_working_days),
            complaint_ids: agg.complaint_ids.iter().cloned().collect(),
            complaint_count: agg.complaint_ids.len() as u64,
            distinct_complainants: n,
            key_terms,
            version: 0,
            raised_at: c.received_at,
            updated_at: c.received_at,
        };
        self.upsert(alert)
    }

    fn frequent_alert(
        &mut self,
        win: NaiveDate,
        person: &str,
        c: &Complaint,
        cx: &RuleContext,
    ) -> String {
        let agg = &self.people[&(win, person.to_string())];
        let (top_domain, top_n) = top(&agg.domains).unwrap_or_default();
        let domain = Some(top_domain.clone()).filter(|d| !d.is_empty() && d != UNCLASSIFIED);
        let district = top(&agg.districts).map(|(d, _)| d);
        let texts: Vec<&str> = agg.texts.iter().map(String::as_str).collect();
        let key_terms = domain
            .as_deref()
            .map(|d| cx.classifier.key_terms(d, &texts, 5))
            .unwrap_or_default();
        let share = 100 * top_n / agg.complaint_ids.len().max(1) as u64;
        let alert = Alert {
            alert_id: alert_id(AlertTrigger::HighFrequency, person, win),
            trigger: AlertTrigger::HighFrequency,
            level: AlertLevel::Yellow,
            subject: person.to_string(),
            window_start: win,
            window_end: win + Duration::days(cx.rules.window_days - 1),
            summary: format!(
                "投诉人{person}在{}至{}期间投诉{}件（去重后{}件），{}%集中于{}",
                win,
                win + Duration::days(cx.rules.window_days - 1),
                agg.complaint_ids.len(),
                agg.contents.len(),
                share,
                domain.as_deref().unwrap_or("未分类")
            ),
            unit: cx.units.responsible(domain.as_deref(), district.as_deref()),
            domain,
            district,
            deadline: add_working_days(c.day(), cx.rules.warning_working_days),
            complaint_ids: agg.complaint_ids.iter().cloned().collect(),
            complaint_count: agg.complaint_ids.len() as u64,
            distinct_complainants: 1,
            key_terms,
            version: 0,
            raised_at: c.received_at,
            updated_at: c.received_at,
        };
        self.upsert(alert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::classify::Taxonomy;
    use crate::engine::units::units;
    use crate::record::complaint_id;

    /// The first day of a 30-day window; test complaints fall `day` days after it.
    fn base() -> NaiveDate {
        window_start(NaiveDate::from_ymd_opt(2026, 11, 15).expect("date"), 30)
    }

    fn complaint(src: &str, who: &str, body: &str, issue: Option<&str>, day: u32) -> Complaint {
        let d = base() + Duration::days(i64::from(day));
        let t = chrono::DateTime::parse_from_rfc3339(&format!("{d}T09:00:00+08:00")).expect("time");
        Complaint {
            complaint_id: complaint_id("hotline", src),
            channel: "hotline".into(),
            source_id: src.into(),
            received_at: t,
            fetched_at: t,
            title: "t".into(),
            body: body.into(),
            complainant: Some(who.into()),
            phone_masked: None,
            district: Some("镜湖区".into()),
            address: None,
            domain: "城市管理".into(),
            domain_confidence: 0.9,
            source_category: None,
            source_status: None,
            likes: None,
            content_hash: format!("h:{body}"),
            duplicate_of: None,
            issue_key: issue.map(str::to_string),
        }
    }

    fn cx_with(rules: &RuleConfig, f: impl FnOnce(&RuleContext)) {
        let c = KeywordClassifier::new(&Taxonomy::builtin(), 0.3);
        f(&RuleContext {
            rules,
            units: units(),
            classifier: &c,
        })
    }

    #[test]
    fn drops_seen_ids_and_marks_exact_duplicates() {
        let rules = RuleConfig::default();
        cx_with(&rules, |cx| {
            let mut st = AnalyticState::default();
            let (out, _) = st.apply(
                vec![
                    complaint("a", "p1", "x", None, 2),
                    complaint("a", "p1", "x", None, 2),
                ],
                cx,
            );
            assert_eq!(out.len(), 1);
            let (out, _) = st.apply(
                vec![
                    complaint("b", "p2", "x", None, 3),
                    complaint("a", "p1", "x", None, 2),
                ],
                cx,
            );
            assert_eq!(out.len(), 1);
            assert_eq!(
                out[0].duplicate_of.as_deref(),
                Some(complaint_id("hotline", "a").as_str())
            );
        });
    }

    #[test]
    fn crowd_alert_fires_at_threshold_and_updates_in_place() {
        let rules = RuleConfig {
            crowd_min_complainants: 3,
            ..RuleConfig::default()
        };
        cx_with(&rules, |cx| {
            let mut st = AnalyticState::default();
            let rows: Vec<Complaint> = (0..2)
                .map(|i| {
                    complaint(
                        &format!("s{i}"),
                        &format!("p{i}"),
                        &format!("b{i}"),
                        Some("镜湖区|某某路"),
                        2,
                    )
                })
                .collect();
            let (_, alerts) = st.apply(rows, cx);
            assert!(
                alerts.is_empty(),
                "two complainants are below the threshold"
            );
            // The same person again does not make a crowd.
            let (_, alerts) = st.apply(
                vec![complaint("s9", "p0", "b9", Some("镜湖区|某某路"), 3)],
                cx,
            );
            assert!(alerts.is_empty());
            let (_, alerts) = st.apply(
                vec![complaint("s3", "p3", "b3", Some("镜湖区|某某路"), 4)],
                cx,
            );
            assert_eq!(alerts.len(), 1);
            let a = &alerts[0];
            assert_eq!(
                (a.distinct_complainants, a.complaint_count, a.version),
                (3, 4, 1)
            );
            assert_eq!(a.unit, "镜湖区城市管理局");
            assert_eq!(a.deadline, add_working_days(base() + Duration::days(4), 5));
            let (_, again) = st.apply(
                vec![complaint("s4", "p4", "b4", Some("镜湖区|某某路"), 5)],
                cx,
            );
            assert_eq!(again[0].alert_id, a.alert_id);
            assert_eq!((again[0].version, again[0].deadline), (2, a.deadline));
            // The next window starts afresh: one complainant there raises nothing.
            let (_, next) = st.apply(
                vec![complaint("s5", "p5", "b5", Some("镜湖区|某某路"), 31)],
                cx,
            );
            assert!(next.is_empty());
        });
    }

    #[test]
    fn frequency_counts_distinct_contents() {
        let rules = RuleConfig {
            frequent_min_complaints: 3,
            ..RuleConfig::default()
        };
        cx_with(&rules, |cx| {
            let mut st = AnalyticState::default();
            let rows = vec![
                complaint("a", "p1", "same", None, 2),
                complaint("b", "p1", "same", None, 2),
                complaint("c", "p1", "other", None, 3),
            ];
            let (_, alerts) = st.apply(rows, cx);
            assert!(alerts.is_empty(), "resubmissions collapse");
            let (_, alerts) = st.apply(vec![complaint("d", "p1", "third", None, 4)], cx);
            assert_eq!(alerts.len(), 1);
            assert_eq!(alerts[0].trigger, AlertTrigger::HighFrequency);
            assert_eq!(alerts[0].complaint_count, 4);
        });
    }

    #[test]
    fn windows_and_working_days() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 27).expect("d"); // a Friday
        assert_eq!(
            add_working_days(d, 1),
            NaiveDate::from_ymd_opt(2026, 11, 30).expect("d")
        );
        let w = window_start(d, 30);
        assert!(w <= d && d < w + Duration::days(30));
        assert_eq!(window_start(w, 30), w);
    }
}
