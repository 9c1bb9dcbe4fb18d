//! The complainants operator (单人高频 and resubmissions): per complainant, their filings over the
//! retention as compact records (time, id, a 32-byte text sketch), a re-filing's link to the
//! filing it repeats, and their distinct filings at several horizons judged against the
//! population at each horizon (`frequency.rs`); frequency alerts with the complainant's focus.
//!
//! State per complainant: the filings of the retention (96 bytes each), the densest window per
//! horizon, domain and district counts. Complainants silent for the retention are evicted; their
//! densest windows stay in the baselines (`dormant`). Determinism: every decision is a function
//! of the sequence of events applied (eviction and re-judging follow record times, never a clock).

use anyhow::{Context, Result};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::frequency::{FrequencyConfig, Histogram, Verdict};
use super::minhash::Signature;
use super::operator::{Operator, Reader, StateTable, Writer};
use super::rules::{
    Clock, PersonEvent, RuleContext, add_working_days, join_terms, local_day, split_terms,
    window_start,
};
use crate::record::{Alert, AlertLevel, AlertTrigger, alert_id, local_offset};

/// Bytes of a text sketch.
pub const SKETCH_BYTES: usize = 32;

/// A compact sketch of a complaint's body: the low byte of 32 evenly spaced bins of its MinHash
/// signature (b-bit MinHash, Li & König 2010). Equal bytes estimate the texts' Jaccard
/// similarity, up to the 1/256 chance that two different minima share their low byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sketch(pub [u8; SKETCH_BYTES]);

impl Sketch {
    /// The sketch of a body's signature (`MinHasher::signature`); None for an empty signature.
    pub fn of(sig: &Signature) -> Option<Sketch> {
        if sig.is_empty() {
            return None;
        }
        let mut s = [0u8; SKETCH_BYTES];
        for (i, b) in s.iter_mut().enumerate() {
            *b = sig[i * sig.len() / SKETCH_BYTES] as u8;
        }
        Some(Sketch(s))
    }

    /// Estimated Jaccard similarity, corrected for chance byte collisions.
    pub fn similarity(&self, other: &Sketch) -> f64 {
        let equal = self.0.iter().zip(&other.0).filter(|(a, b)| a == b).count();
        let raw = equal as f64 / SKETCH_BYTES as f64;
        ((raw - 1.0 / 256.0) / (1.0 - 1.0 / 256.0)).max(0.0)
    }
}

/// One filing of a complainant, kept for the retention.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Filing {
    /// The complaint id (`ids::complaint_key`).
    id: [u8; 16],
    /// The filing it resubmits, followed to the first of the chain (itself when none).
    root: [u8; 16],
    at: i64,
    /// FNV-1a of its duplicate group.
    group: u64,
    /// Its issue's number (`cluster::id_number`; 0: none).
    issue: u64,
    sketch: Option<Sketch>,
    /// Interned domain and district (0: none).
    domain: u16,
    district: u16,
    /// Counted among the distinct filings (not a copy of a filing shortly before).
    counted: bool,
}

/// One complainant.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Person {
    /// Filings of the retention, in time order.
    filings: Vec<Filing>,
    /// Filings ever, distinct ones, and resubmissions linked.
    pub complaints: u64,
    pub distinct: u64,
    pub resubmissions: u64,
    /// Per horizon (shortest first): the most distinct filings in one window, and its start.
    pub max_in: Vec<(u32, i64)>,
    pub flagged: bool,
    pub p_value: f64,
    pub z_score: f64,
    /// The horizon (index) that decided the judgement.
    pub horizon: usize,
    /// Filings per interned domain and district (few each: vectors, sorted by name index).
    domains: Vec<(u16, u32)>,
    districts: Vec<(u16, u32)>,
    last_at: i64,
}

/// A name (domain, issue id) and its share of a complainant's filings.
pub type Share = (String, f64);

/// A resubmission found: `complaint_id` repeats `resubmission_of` (the first of its chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub complaint_id: String,
    pub resubmission_of: String,
}

/// The complainants operator of one state partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Complainants {
    people: HashMap<String, Person>,
    /// The horizons in days (shortest first) of the configuration last applied.
    horizons: Vec<i64>,
    /// Per horizon: every known complainant's densest window (evicted ones included).
    hist: Vec<Histogram>,
    /// How many such partitions make up the whole (each a hash sample of the population): the
    /// multiple-testing correction counts everybody (`known × scale`).
    pub scale: usize,
    /// Evicted complainants' densest windows per horizon, by pseudonym number: they stay in the
    /// baselines and come back if the complainant files again.
    dormant: HashMap<u64, Vec<(u32, i64)>>,
    /// Evicted complainants, kept only where asked (snapshot tables of a whole run).
    archive: Option<HashMap<String, Person>>,
    /// Latest key terms of issues seen, and when.
    issue_terms: HashMap<String, (Box<str>, i64)>,
    alerts: BTreeMap<String, Alert>,
    clock: Clock,
    /// Interned domain and district names (index + 1).
    names: Vec<Box<str>>,
    name_index: HashMap<Box<str>, u16>,
    /// Complaint ids and issue ids not of duban's compact forms, by their key.
    odd_ids: HashMap<[u8; 16], Box<str>>,
    odd_issues: HashMap<u64, Box<str>>,
}

/// A pseudonym as a number (its base-62 digits), for the compact dormant set.
fn person_number(p: &str) -> u64 {
    crate::ids::pseudonym_number(p).unwrap_or_else(|| crate::ids::fnv1a64(p.as_bytes()))
}

impl Person {
    /// The top entry of counts (ties: the smallest key) and its share.
    fn focus<K: Ord + Copy>(counts: impl Iterator<Item = (K, u32)> + Clone) -> Option<(K, f64)> {
        let total: u32 = counts.clone().map(|c| c.1).sum();
        counts
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(k, v)| (k, f64::from(v) / f64::from(total.max(1))))
    }

    /// Count one more of `key` in a small sorted count vector.
    fn count(counts: &mut Vec<(u16, u32)>, key: u16) {
        match counts.binary_search_by_key(&key, |c| c.0) {
            Ok(i) => counts[i].1 += 1,
            Err(i) => {
                counts.reserve_exact(1);
                counts.insert(i, (key, 1));
            }
        }
    }

    /// The densest window of `days` among the counted filings held: (count, start).
    fn densest(&self, days: i64) -> (u32, i64) {
        let w = days.max(1) * 86_400;
        let times: Vec<i64> = self
            .filings
            .iter()
            .filter(|f| f.counted)
            .map(|f| f.at)
            .collect();
        let (mut best, mut start, mut j) = (0u32, 0i64, 0usize);
        for i in 0..times.len() {
            while times[i] - times[j] >= w {
                j += 1;
            }
            let n = (i - j + 1) as u32;
            if n > best {
                (best, start) = (n, times[j]);
            }
        }
        (best, start)
    }

    /// The densest window of the horizon that decided, (count, start).
    pub fn decisive(&self) -> (u32, i64) {
        self.max_in.get(self.horizon).copied().unwrap_or_default()
    }
}

impl Complainants {
    /// `scale`: the number of complainant partitions of the engine.
    pub fn new(scale: usize) -> Complainants {
        Complainants {
            people: HashMap::new(),
            horizons: Vec::new(),
            hist: Vec::new(),
            scale: scale.max(1),
            dormant: HashMap::new(),
            archive: None,
            issue_terms: HashMap::new(),
            alerts: BTreeMap::new(),
            clock: Clock::default(),
            names: Vec::new(),
            name_index: HashMap::new(),
            odd_ids: HashMap::new(),
            odd_issues: HashMap::new(),
        }
    }

    /// Keep evicted complainants (for snapshot tables of a whole run).
    pub fn keep_evicted(&mut self) {
        self.archive.get_or_insert_with(HashMap::new);
    }

    fn intern(&mut self, name: Option<&str>) -> u16 {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return 0;
        };
        if let Some(&i) = self.name_index.get(name) {
            return i;
        }
        if self.names.len() >= usize::from(u16::MAX) - 1 {
            return 0;
        }
        self.names.push(name.into());
        let i = self.names.len() as u16;
        self.name_index.insert(name.into(), i);
        i
    }

    fn name(&self, i: u16) -> Option<&str> {
        (i > 0)
            .then(|| self.names.get(usize::from(i) - 1).map(|n| &**n))
            .flatten()
    }

    fn id_key(&mut self, id: &str) -> [u8; 16] {
        let k = crate::ids::complaint_key(id);
        if hex::encode(k) != id {
            self.odd_ids.entry(k).or_insert_with(|| id.into());
        }
        k
    }

    fn id_string(&self, k: &[u8; 16]) -> String {
        self.odd_ids
            .get(k)
            .map_or_else(|| hex::encode(k), |s| s.to_string())
    }

    fn issue_key(&mut self, id: Option<&str>) -> u64 {
        let Some(id) = id else { return 0 };
        let n = crate::engine::cluster::id_number(id);
        if crate::ids::issue_id_of(n) != id {
            self.odd_issues.entry(n).or_insert_with(|| id.into());
        }
        n
    }

    fn issue_string(&self, n: u64) -> Option<String> {
        (n != 0).then(|| {
            self.odd_issues
                .get(&n)
                .map_or_else(|| crate::ids::issue_id_of(n), |s| s.to_string())
        })
    }

    /// The horizons (days, shortest first) the complainants were judged at.
    pub fn horizons(&self) -> &[i64] {
        &self.horizons
    }

    /// Complainants held live (not evicted).
    pub fn live(&self) -> usize {
        self.people.len()
    }

    /// Complainants known, evicted ones included.
    pub fn known(&self) -> usize {
        self.people.len() + self.dormant.len()
    }

    /// Every complainant (live over evicted, where kept), by pseudonym.
    pub fn all_people(&self) -> BTreeMap<&String, &Person> {
        let mut out: BTreeMap<&String, &Person> = BTreeMap::new();
        out.extend(self.archive.iter().flatten());
        out.extend(&self.people);
        out
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// A complainant's top domain and top issue, each with its share of their filings (the
    /// domain over every filing, the issue over the filings of the retention).
    pub fn focus(&self, p: &Person) -> (Option<Share>, Option<Share>) {
        let domain = Person::focus(p.domains.iter().copied())
            .and_then(|(d, s)| self.name(d).map(|n| (n.to_string(), s)));
        let mut issues: BTreeMap<u64, u32> = BTreeMap::new();
        for f in p.filings.iter().filter(|f| f.issue != 0) {
            *issues.entry(f.issue).or_default() += 1;
        }
        let issue = Person::focus(issues.iter().map(|(k, v)| (*k, *v)))
            .and_then(|(i, s)| self.issue_string(i).map(|i| (i, s)));
        (domain, issue)
    }

    /// The resubmissions linked among a complainant's filings of the retention.
    pub fn links(&self, p: &Person) -> Vec<Link> {
        p.filings
            .iter()
            .filter(|f| f.root != f.id)
            .map(|f| Link {
                complaint_id: self.id_string(&f.id),
                resubmission_of: self.id_string(&f.root),
            })
            .collect()
    }

    /// Apply one event; returns the resubmission link found, if any.
    fn observe(&mut self, cfg: &FrequencyConfig, e: &PersonEvent) -> Option<Link> {
        let horizons = cfg.horizons();
        if self.hist.len() != horizons.len() {
            self.hist.resize_with(horizons.len(), Histogram::default);
        }
        self.horizons.clone_from(&horizons);
        let mut revived = false;
        if !self.people.contains_key(&e.complainant)
            && let Some(max_in) = self.dormant.remove(&person_number(&e.complainant))
        {
            revived = true;
            let mut p = self
                .archive
                .as_mut()
                .and_then(|a| a.remove(&e.complainant))
                .unwrap_or_default();
            p.max_in = max_in;
            self.people.insert(e.complainant.clone(), p);
        }
        let first_time = !revived && !self.people.contains_key(&e.complainant);
        let id = self.id_key(&e.complaint_id);
        let issue = self.issue_key(e.issue_id.as_deref());
        let domain = self.intern(Some(&e.domain));
        let district = self.intern(e.district.as_deref());
        let group = crate::ids::fnv1a64(e.duplicate_group.as_bytes());
        let retention = cfg.retention() * 86_400;
        let copy_window = horizons[0] * 86_400;
        let p = self.people.entry(e.complainant.clone()).or_default();
        p.max_in.resize(horizons.len(), (0, 0));
        let old: Vec<u32> = p.max_in.iter().map(|m| m.0).collect();
        // Filings past the retention leave (their windows stay in `max_in`).
        let keep_from = e.at.saturating_sub(retention);
        p.filings.retain(|f| f.at >= keep_from);
        p.last_at = if first_time {
            e.at
        } else {
            p.last_at.max(e.at)
        };
        p.complaints += 1;
        Person::count(&mut p.domains, domain);
        if district != 0 {
            Person::count(&mut p.districts, district);
        }
        // A resubmission: the most similar earlier filing of theirs above the threshold.
        let earlier = e.sketch.and_then(|s| {
            p.filings
                .iter()
                .filter(|f| f.at <= e.at && f.id != id)
                .filter_map(|f| f.sketch.map(|fs| (s.similarity(&fs), f)))
                .filter(|(sim, _)| *sim >= cfg.resubmission_similarity)
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.at.cmp(&a.1.at)))
                .map(|(_, f)| *f)
        });
        // A copy of a filing shortly before (the same duplicate group, or a resubmission within
        // the shortest horizon) is not counted again; a complaint filed again later is.
        let copy = p.filings.iter().any(|f| f.group == group)
            || earlier.is_some_and(|f| {
                e.at - f.at < copy_window
                    && f.sketch
                        .zip(e.sketch)
                        .is_some_and(|(a, b)| a.similarity(&b) >= cfg.copy_similarity)
            });
        let filing = Filing {
            id,
            root: earlier.map_or(id, |f| f.root),
            at: e.at,
            group,
            issue,
            sketch: e.sketch,
            domain,
            district,
            counted: !copy,
        };
        let pos = p.filings.partition_point(|f| f.at <= e.at);
        // Grown one at a time: most complainants hold one or two filings.
        p.filings.reserve_exact(1);
        p.filings.insert(pos, filing);
        if earlier.is_some() {
            p.resubmissions += 1;
        }
        if !copy {
            p.distinct += 1;
            for (h, days) in horizons.iter().enumerate() {
                let now = p.densest(*days);
                if now.0 > p.max_in[h].0 {
                    p.max_in[h] = now;
                }
            }
        }
        let new: Vec<u32> = p.max_in.iter().map(|m| m.0).collect();
        for (h, hist) in self.hist.iter_mut().enumerate() {
            if !first_time {
                hist.remove(old[h]);
            }
            hist.add(new[h]);
        }
        let link = earlier.map(|f| (f.root, filing.id));
        link.map(|(root, id)| Link {
            complaint_id: self.id_string(&id),
            resubmission_of: self.id_string(&root),
        })
    }

    /// Judge one complainant at every horizon; true when their flag turned on.
    fn judge(&mut self, cfg: &FrequencyConfig, person: &str) -> bool {
        let tests = (self.known() * self.scale * self.hist.len().max(1)) as f64;
        let baselines: Vec<_> = self
            .hist
            .iter()
            .map(|h| h.baseline(cfg.baseline_fence_z))
            .collect();
        let Some(p) = self.people.get_mut(person) else {
            return false;
        };
        let mut best: Option<(usize, Verdict)> = None;
        for (h, b) in baselines.iter().enumerate() {
            let count = p.max_in.get(h).map_or(0, |m| m.0);
            let v = b.judge(cfg, count, tests);
            let better = match &best {
                None => true,
                Some((_, w)) => (v.flagged, -v.p_value) > (w.flagged, -w.p_value),
            };
            if better {
                best = Some((h, v));
            }
        }
        let Some((h, v)) = best else { return false };
        let raised = v.flagged && !p.flagged;
        (p.flagged, p.p_value, p.z_score, p.horizon) = (v.flagged, v.p_value, v.z_score, h);
        raised
    }

    /// A new day of record time: evict complainants silent for the retention, and re-judge
    /// everyone who could be flagged against today's population (a complainant whose filings
    /// came before the population grew is judged again). Returns the pseudonyms flagged anew.
    fn new_day(&mut self, cfg: &FrequencyConfig) -> Vec<String> {
        let cutoff = self.clock.cutoff(cfg.retention());
        let gone: Vec<String> = self
            .people
            .iter()
            .filter(|(_, p)| p.last_at < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            if let Some(p) = self.people.remove(k) {
                self.dormant.insert(person_number(k), p.max_in.clone());
                if let Some(a) = self.archive.as_mut() {
                    a.insert(k.clone(), p);
                }
            }
        }
        self.issue_terms.retain(|_, (_, at)| *at >= cutoff);
        let mut candidates: Vec<String> = self
            .people
            .iter()
            .filter(|(_, p)| p.max_in.iter().any(|m| m.0 >= cfg.min_complaints))
            .map(|(k, _)| k.clone())
            .collect();
        candidates.sort_unstable();
        candidates
            .into_iter()
            .filter(|k| self.judge(cfg, k))
            .collect()
    }

    /// Advance record time; on a new day, evict and re-judge. Ids of alerts changed.
    fn advance(&mut self, cx: &RuleContext, at: i64, changed: &mut BTreeSet<String>) {
        if self.clock.advance(at) {
            for person in self.new_day(cx.frequency) {
                if let Some(id) = self.frequency_alert(&person, cx) {
                    changed.insert(id);
                }
            }
        }
    }

    /// Apply events in order: alerts changed, and the resubmissions linked.
    pub fn apply(&mut self, cx: &RuleContext, events: &[PersonEvent]) -> (Vec<Alert>, Vec<Link>) {
        let mut changed: BTreeSet<String> = BTreeSet::new();
        let mut links = Vec::new();
        for e in events {
            self.advance(cx, e.at, &mut changed);
            if let Some(i) = &e.issue_id
                && !e.issue_terms.is_empty()
            {
                self.issue_terms
                    .insert(i.clone(), (join_terms(&e.issue_terms), e.at));
            }
            links.extend(self.observe(cx.frequency, e));
            self.judge(cx.frequency, &e.complainant);
            if let Some(id) = self.frequency_alert(&e.complainant, cx) {
                changed.insert(id);
            }
        }
        let alerts = changed
            .iter()
            .filter_map(|id| self.alerts.get(id).cloned())
            .collect();
        (alerts, links)
    }

    /// Insert or update an alert; returns its id when its state changed.
    fn upsert(&mut self, mut a: Alert) -> Option<String> {
        let id = a.alert_id.clone();
        if let Some(old) = self.alerts.get(&id) {
            if old.complaint_ids == a.complaint_ids && old.summary == a.summary {
                return None;
            }
            a.version = old.version + 1;
            a.raised_at = old.raised_at;
            a.deadline = old.deadline;
            a.level = old.level;
        } else {
            a.version = 1;
        }
        self.alerts.insert(id.clone(), a);
        Some(id)
    }

    /// Raise or update the frequency alert of a flagged complainant: the horizon that decided,
    /// their densest window there, and their focus (domain, issue and its key terms).
    fn frequency_alert(&mut self, person: &str, cx: &RuleContext) -> Option<String> {
        let p = self.people.get(person)?;
        if !p.flagged {
            return None;
        }
        let days = cx
            .frequency
            .horizons()
            .get(p.horizon)
            .copied()
            .unwrap_or(30);
        let (count, window_from) = p.decisive();
        let (domain, issue) = self.focus(p);
        let (domain, share) = domain.unwrap_or_default();
        let (top_issue, issue_share) = issue.unwrap_or_default();
        let domain =
            Some(domain).filter(|d| !d.is_empty() && d != crate::engine::taxonomy::UNCLASSIFIED);
        let district = Person::focus(p.districts.iter().copied()).and_then(|(d, _)| self.name(d));
        let district = district.map(str::to_string);
        let start = local_day(window_from);
        let end = start + Duration::days(days - 1);
        // One alert per episode: an open alert of this person whose window overlaps the densest
        // window is updated; otherwise the id comes from the tumbling period holding its start.
        let existing = self
            .alerts
            .values()
            .find(|a| {
                a.trigger == AlertTrigger::HighFrequency
                    && a.subject == person
                    && a.window_start <= end
                    && start <= a.window_end
            })
            .map(|a| a.alert_id.clone());
        let period = window_start(start, days);
        let mut ids: Vec<String> = p.filings.iter().map(|f| self.id_string(&f.id)).collect();
        ids.sort();
        let key_terms = self
            .issue_terms
            .get(&top_issue)
            .map(|(t, _)| split_terms(t))
            .unwrap_or_default();
        let raised = chrono::DateTime::from_timestamp(window_from, 0)
            .unwrap_or_default()
            .with_timezone(&local_offset());
        let alert = Alert {
            alert_id: existing
                .unwrap_or_else(|| alert_id(AlertTrigger::HighFrequency, person, period)),
            trigger: AlertTrigger::HighFrequency,
            level: AlertLevel::Yellow,
            subject: person.to_string(),
            window_start: start,
            window_end: end,
            summary: format!(
                "投诉人{person}在{days}天内投诉{count}件（去重后），累计{}件，{:.0}%集中于{}，{:.0}%为同一事项（p={:.1e}）",
                p.complaints,
                share * 100.0,
                domain.as_deref().unwrap_or("未分类"),
                issue_share * 100.0,
                p.p_value
            ),
            unit: cx.units.responsible(domain.as_deref(), district.as_deref()),
            domain,
            district,
            deadline: add_working_days(start, cx.rules.warning_working_days),
            complaint_count: ids.len() as u64,
            complaint_ids: ids,
            distinct_complainants: 1,
            key_terms,
            version: 0,
            raised_at: raised,
            updated_at: raised,
            merged_into: None,
            lifecycle: Default::default(),
        };
        self.upsert(alert)
    }
}

/// Inline bytes of one filing (and of a person without their vectors and maps).
const FILING_BYTES: usize = std::mem::size_of::<Filing>();
const PERSON_BYTES: usize = std::mem::size_of::<Person>();

impl Operator for Complainants {
    type In = PersonEvent;
    type Out = Alert;
    const NAME: &'static str = "complainants";
    const SNAPSHOT_VERSION: u16 = 1;

    fn process(&mut self, cx: &RuleContext, records: &[PersonEvent]) -> Vec<Alert> {
        self.apply(cx, records).0
    }

    fn watermark(&mut self, cx: &RuleContext, at: i64) -> Vec<Alert> {
        let mut changed = BTreeSet::new();
        self.advance(cx, at, &mut changed);
        changed
            .iter()
            .filter_map(|id| self.alerts.get(id).cloned())
            .collect()
    }

    fn tables(&self) -> Vec<StateTable> {
        let key = |k: &String| k.capacity() + std::mem::size_of::<String>();
        // A complainant without their filings (those are the `filings` table).
        let person = |p: &Person| {
            PERSON_BYTES
                + p.max_in.capacity() * 16
                + (p.domains.capacity() + p.districts.capacity()) * 8
        };
        let people: usize = self.people.iter().map(|(k, p)| key(k) + person(p)).sum();
        let filings: usize = self.people.values().map(|p| p.filings.len()).sum();
        let held: usize = self.people.values().map(|p| p.filings.capacity()).sum();
        vec![
            StateTable {
                name: "complainants",
                entries: self.people.len(),
                bytes: people,
            },
            StateTable {
                name: "filings",
                entries: filings,
                bytes: held * FILING_BYTES,
            },
            StateTable {
                name: "dormant",
                entries: self.dormant.len(),
                bytes: self
                    .dormant
                    .values()
                    .map(|v| 8 + 24 + v.capacity() * 16)
                    .sum(),
            },
            StateTable {
                name: "issue_terms",
                entries: self.issue_terms.len(),
                bytes: self
                    .issue_terms
                    .iter()
                    .map(|(k, (t, _))| key(k) + t.len() + 24)
                    .sum(),
            },
            StateTable {
                name: "alerts",
                entries: self.alerts.len(),
                bytes: self
                    .alerts
                    .values()
                    .map(|a| 512 + a.complaint_ids.len() * 56)
                    .sum(),
            },
        ]
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::snapshot(Self::NAME, Self::SNAPSHOT_VERSION);
        w.u64(self.scale as u64);
        w.i64(self.clock.now);
        w.i64(self.clock.swept_day);
        w.u64(self.names.len() as u64);
        for n in &self.names {
            w.str(n);
        }
        w.u64(self.horizons.len() as u64);
        for h in &self.horizons {
            w.i64(*h);
        }
        w.u64(self.hist.len() as u64);
        for h in &self.hist {
            let entries: Vec<(u32, u64)> = h.entries().collect();
            w.u64(entries.len() as u64);
            for (v, c) in entries {
                w.u64(u64::from(v));
                w.u64(c);
            }
        }
        let mut people: Vec<(&String, &Person)> = self.people.iter().collect();
        people.sort_by(|a, b| a.0.cmp(b.0));
        write_people(&mut w, &people);
        match &self.archive {
            None => w.bool(false),
            Some(a) => {
                w.bool(true);
                let mut a: Vec<(&String, &Person)> = a.iter().collect();
                a.sort_by(|x, y| x.0.cmp(y.0));
                write_people(&mut w, &a);
            }
        }
        let mut dormant: Vec<(&u64, &Vec<(u32, i64)>)> = self.dormant.iter().collect();
        dormant.sort_unstable_by_key(|d| *d.0);
        w.u64(dormant.len() as u64);
        for (k, v) in dormant {
            w.u64(*k);
            write_windows(&mut w, v);
        }
        let mut terms: Vec<(&String, &(Box<str>, i64))> = self.issue_terms.iter().collect();
        terms.sort_by(|a, b| a.0.cmp(b.0));
        w.u64(terms.len() as u64);
        for (k, (t, at)) in terms {
            w.str(k);
            w.str(t);
            w.i64(*at);
        }
        let mut odd: Vec<(&[u8; 16], &Box<str>)> = self.odd_ids.iter().collect();
        odd.sort();
        w.u64(odd.len() as u64);
        for (_, s) in odd {
            w.str(s);
        }
        let mut odd: Vec<(&u64, &Box<str>)> = self.odd_issues.iter().collect();
        odd.sort();
        w.u64(odd.len() as u64);
        for (_, s) in odd {
            w.str(s);
        }
        // Alerts are few (flagged complainants); their JSON form is their schema's.
        w.u64(self.alerts.len() as u64);
        for a in self.alerts.values() {
            w.bytes(&serde_json::to_vec(a).unwrap_or_default());
        }
        w.buf
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let mut r = Reader::snapshot(bytes, Self::NAME, Self::SNAPSHOT_VERSION)?;
        let mut s = Complainants::new(r.u64()? as usize);
        s.clock.now = r.i64()?;
        s.clock.swept_day = r.i64()?;
        for _ in 0..r.count()? {
            let n: Box<str> = r.str()?.into();
            s.names.push(n.clone());
            s.name_index.insert(n, s.names.len() as u16);
        }
        for _ in 0..r.count()? {
            s.horizons.push(r.i64()?);
        }
        for _ in 0..r.count()? {
            let mut h = Histogram::default();
            for _ in 0..r.count()? {
                let v = r.u32()?;
                for _ in 0..r.u64()? {
                    h.add(v);
                }
            }
            s.hist.push(h);
        }
        s.people = read_people(&mut r)?;
        if r.bool()? {
            s.archive = Some(read_people(&mut r)?);
        }
        for _ in 0..r.count()? {
            let k = r.u64()?;
            s.dormant.insert(k, read_windows(&mut r)?);
        }
        for _ in 0..r.count()? {
            let k = r.str()?.to_string();
            let t: Box<str> = r.str()?.into();
            s.issue_terms.insert(k, (t, r.i64()?));
        }
        for _ in 0..r.count()? {
            let id = r.str()?;
            s.odd_ids.insert(crate::ids::complaint_key(id), id.into());
        }
        for _ in 0..r.count()? {
            let id = r.str()?;
            s.odd_issues
                .insert(crate::engine::cluster::id_number(id), id.into());
        }
        for _ in 0..r.count()? {
            let a: Alert = serde_json::from_slice(r.bytes()?)
                .context("the complainants snapshot holds an alert that does not parse")?;
            s.alerts.insert(a.alert_id.clone(), a);
        }
        r.finish()?;
        *self = s;
        Ok(())
    }
}

fn write_windows(w: &mut Writer, v: &[(u32, i64)]) {
    w.u64(v.len() as u64);
    for (c, at) in v {
        w.u64(u64::from(*c));
        w.i64(*at);
    }
}

fn read_windows(r: &mut Reader) -> Result<Vec<(u32, i64)>> {
    (0..r.count()?).map(|_| Ok((r.u32()?, r.i64()?))).collect()
}

fn write_counts(w: &mut Writer, m: &[(u16, u32)]) {
    w.u64(m.len() as u64);
    for (k, v) in m {
        w.u64(u64::from(*k));
        w.u64(u64::from(*v));
    }
}

fn read_counts(r: &mut Reader) -> Result<Vec<(u16, u32)>> {
    (0..r.count()?)
        .map(|_| Ok((r.u32()? as u16, r.u32()?)))
        .collect()
}

fn write_people(w: &mut Writer, people: &[(&String, &Person)]) {
    w.u64(people.len() as u64);
    for (k, p) in people {
        w.str(k);
        for v in [p.complaints, p.distinct, p.resubmissions, p.horizon as u64] {
            w.u64(v);
        }
        w.bool(p.flagged);
        w.f64(p.p_value);
        w.f64(p.z_score);
        w.i64(p.last_at);
        write_windows(w, &p.max_in);
        write_counts(w, &p.domains);
        write_counts(w, &p.districts);
        w.u64(p.filings.len() as u64);
        let mut prev = 0i64;
        for f in &p.filings {
            w.buf.extend_from_slice(&f.id);
            let own = f.root == f.id;
            w.bool(own);
            if !own {
                w.buf.extend_from_slice(&f.root);
            }
            // Times in order: deltas are small.
            w.i64(f.at - prev);
            prev = f.at;
            w.u64(f.group);
            w.u64(f.issue);
            match &f.sketch {
                Some(s) => {
                    w.bool(true);
                    w.buf.extend_from_slice(&s.0);
                }
                None => w.bool(false),
            }
            w.u64(u64::from(f.domain));
            w.u64(u64::from(f.district));
            w.bool(f.counted);
        }
    }
}

fn read_people(r: &mut Reader) -> Result<HashMap<String, Person>> {
    let mut out = HashMap::new();
    for _ in 0..r.count()? {
        let k = r.str()?.to_string();
        let mut p = Person {
            complaints: r.u64()?,
            distinct: r.u64()?,
            resubmissions: r.u64()?,
            horizon: r.u64()? as usize,
            flagged: r.bool()?,
            p_value: r.f64()?,
            z_score: r.f64()?,
            last_at: r.i64()?,
            ..Person::default()
        };
        p.max_in = read_windows(r)?;
        p.filings.reserve_exact(0);
        p.domains = read_counts(r)?;
        p.districts = read_counts(r)?;
        let mut prev = 0i64;
        for _ in 0..r.count()? {
            let id = r.array16()?;
            let root = if r.bool()? { id } else { r.array16()? };
            let at = prev + r.i64()?;
            prev = at;
            let group = r.u64()?;
            let issue = r.u64()?;
            let sketch = if r.bool()? {
                let mut s = [0u8; SKETCH_BYTES];
                s.copy_from_slice(r.raw(SKETCH_BYTES)?);
                Some(Sketch(s))
            } else {
                None
            };
            p.filings.push(Filing {
                id,
                root,
                at,
                group,
                issue,
                sketch,
                domain: r.u32()? as u16,
                district: r.u32()? as u16,
                counted: r.bool()?,
            });
        }
        out.insert(k, p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
