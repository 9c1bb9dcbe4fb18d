//! The engine's stateful operators: drop re-delivered complaints, mark exact and near duplicates,
//! cluster complaints into issues, track complainants' frequency, set triage flags and raise
//! yellow alerts. Pure: complaints in, (complaints, changed alerts) out; no I/O, no clock.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::{DedupConfig, RuleConfig};
use crate::engine::cluster::{ClusterInput, Issue, IssueConfig, IssueIndex, Words};
use crate::engine::frequency::{FrequencyConfig, Person, Population};
use crate::engine::minhash::{LshIndex, MinHasher, Signature};
use crate::engine::triage;
use crate::engine::units::UnitTable;
use crate::record::{Alert, AlertLevel, AlertTrigger, Complaint, alert_id, local_offset};

/// Start of the tumbling window of `window_days` holding `day` (aligned to 1970-01-01).
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

fn local_day(ts: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.with_timezone(&local_offset()).date_naive())
        .unwrap_or_default()
}

/// Key terms kept compactly (one string; terms are words, never holding the separator).
fn join_terms(terms: &[String]) -> Box<str> {
    terms.join("\u{1f}").into_boxed_str()
}

fn split_terms(t: &str) -> Vec<String> {
    if t.is_empty() {
        return Vec::new();
    }
    t.split('\u{1f}').map(str::to_string).collect()
}

/// The analytic columns decided for a complaint id; kept for every complaint ever seen
/// (re-deliveries and new versions of old records), so compact: the issue a number (`Ids`), the
/// flags an index into the state's distinct flag sets, 10 bytes without padding (26 with its
/// key). The rarer columns live in side maps by the same key: the source version a record was
/// last decided on (`AnalyticState::versions`) and `duplicate_of` (`AnalyticState::dup_of`;
/// without one the duplicate group is the complaint itself).
#[derive(Debug, Clone, Copy)]
#[repr(C, packed)]
struct Seen {
    /// Issue number (0: none).
    issue: u64,
    flags: u16,
}

/// Compact forms of issue ids and flag sets for `Seen`.
#[derive(Debug, Default)]
struct Ids {
    /// Issue ids not of duban's form (`crate::ids`), by number.
    odd_issues: HashMap<u64, String>,
    /// Distinct flag strings; index 0 is "".
    flag_sets: Vec<String>,
}

impl Ids {
    fn issue_number(&mut self, id: &str) -> u64 {
        let n = crate::engine::cluster::id_number(id);
        if crate::ids::issue_id_of(n) != id {
            self.odd_issues.entry(n).or_insert_with(|| id.to_string());
        }
        n
    }

    fn issue_id(&self, n: u64) -> Option<String> {
        (n != 0).then(|| {
            self.odd_issues
                .get(&n)
                .cloned()
                .unwrap_or_else(|| crate::ids::issue_id_of(n))
        })
    }

    fn flags_index(&mut self, flags: &str) -> u16 {
        if self.flag_sets.is_empty() {
            self.flag_sets.push(String::new());
        }
        match self.flag_sets.iter().position(|f| f == flags) {
            Some(i) => i as u16,
            None => {
                self.flag_sets.push(flags.to_string());
                (self.flag_sets.len() - 1) as u16
            }
        }
    }

    fn seen(&mut self, c: &Complaint) -> Seen {
        Seen {
            issue: c.issue_id.as_deref().map_or(0, |i| self.issue_number(i)),
            flags: self.flags_index(&c.flags),
        }
    }
}

/// Everything the operators are configured with.
pub struct RuleContext<'a> {
    pub rules: &'a RuleConfig,
    pub dedup: &'a DedupConfig,
    pub issues: &'a IssueConfig,
    pub frequency: &'a FrequencyConfig,
    pub units: &'a UnitTable,
}

/// What the complainant-keyed operator needs of a complaint. The issue-keyed operator makes it
/// and it travels, re-keyed by complainant, through the repartition topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonEvent {
    pub complainant: String,
    pub complaint_id: String,
    pub duplicate_group: String,
    pub at: i64,
    pub domain: String,
    pub issue_id: Option<String>,
    pub district: Option<String>,
    /// Key terms of the complaint's issue when the complaint joined it.
    pub issue_terms: Vec<String>,
}

/// What the issue-keyed operator produced for a batch.
#[derive(Debug, Default)]
pub struct BlockOutput {
    /// New complaints (re-delivered ids dropped) with duplicate, issue and flag columns.
    pub complaints: Vec<Complaint>,
    /// Crowd alerts whose state changed, latest state each.
    pub alerts: Vec<Alert>,
    /// One event per new complaint with a complainant, in order, for the complainant operator.
    pub people: Vec<PersonEvent>,
    /// Issues whose summary changed (ids, merged ones included).
    pub issues: Vec<String>,
    /// Per output complaint and per event: the index of the input row it came from.
    pub complaint_rows: Vec<usize>,
    pub people_rows: Vec<usize>,
}

/// What the issue-keyed operator needs of a complaint's text alone: its MinHash signature, its
/// triage flags and its clustering words. None of it reads state, so the engine computes it on
/// the stateless stage's parallel threads, ahead of the keyed state.
pub struct Prepared {
    sig: Signature,
    flags: Vec<&'static str>,
    words: Words,
}

impl Prepared {
    /// `hasher` must be the keyed state's (`MinHasher::new` of the same dedup config).
    pub fn new(hasher: &MinHasher, c: &Complaint) -> Prepared {
        let text = format!("{} {}", c.title, c.body);
        Prepared {
            sig: hasher.signature(&c.body),
            flags: triage::complaint_flags(&text),
            words: Words::new(text),
        }
    }
}

/// Keyed state: seen complaint ids, duplicate index, issues, complainants, alerts.
///
/// Determinism: the state after a sequence of complaints, and every column and alert it emits,
/// is a function of that sequence alone — not of how it was cut into batches, of timing, or of
/// the process (no hash-map iteration order reaches a decision). Re-clustering runs every
/// `recluster_every` complaints of the state; alert rules are evaluated after every complaint.
pub struct AnalyticState {
    hasher: MinHasher,
    /// complaint id → what was decided for it (versions of a record keep those columns).
    seen: HashMap<[u8; 16], Seen>,
    /// Complaint id → the source version its columns were last emitted for (versioned records).
    versions: HashMap<[u8; 16], Box<str>>,
    /// Complaint id → the first complaint of its duplicate group (duplicates only).
    dup_of: HashMap<[u8; 16], Box<str>>,
    ids: Ids,
    /// Content hash → (first complaint id with it, its time).
    first_by_content: HashMap<Box<str>, (Box<str>, i64)>,
    lsh: LshIndex,
    /// Triage flag counts per issue.
    issue_flags: HashMap<String, BTreeMap<&'static str, usize>>,
    pub issues: IssueIndex,
    pub people: Population,
    /// Latest key terms of issues seen by the complainant operator, and when.
    issue_terms: HashMap<String, (Box<str>, i64)>,
    /// Key terms of each issue as of its last change (terms weigh words by IDF, which moves with
    /// every complaint: fixing them at the issue's changes keeps them free of batch boundaries).
    terms_at_change: HashMap<String, Box<str>>,
    alerts: BTreeMap<String, Alert>,
    /// Latest record time applied by each operator (issue-keyed, complainant-keyed) and the day
    /// of its last eviction sweep: eviction follows record times, never a clock or a batch.
    block_clock: Clock,
    people_clock: Clock,
    /// Evicted issues with their key terms, kept only where asked (`keep_evicted`: the
    /// in-process engine's snapshot tables); the Kafka workers publish issues as they change.
    archived_issues: Option<Vec<(Issue, Vec<String>)>>,
}

/// Days past its window before state is evicted: records up to this late still find it.
pub const EVICT_GRACE_DAYS: i64 = 2;

/// The latest record time an operator applied and the day of its last eviction sweep.
#[derive(Debug, Clone, Copy)]
struct Clock {
    now: i64,
    swept_day: i64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            now: i64::MIN,
            swept_day: i64::MIN,
        }
    }
}

impl Clock {
    /// Advance to a record's time; true when a new day began (a sweep is due).
    fn advance(&mut self, at: i64) -> bool {
        self.now = self.now.max(at);
        let day = self.now.div_euclid(86_400);
        if day > self.swept_day {
            self.swept_day = day;
            true
        } else {
            false
        }
    }

    /// The time before which state of a `days` window (plus the grace) is evicted.
    fn cutoff(&self, days: i64) -> i64 {
        self.now
            .saturating_sub((days.max(1) + EVICT_GRACE_DAYS) * 86_400)
    }
}

impl AnalyticState {
    pub fn new(dedup: &DedupConfig) -> AnalyticState {
        AnalyticState {
            hasher: MinHasher::new(dedup.ngram, dedup.bands, dedup.rows),
            seen: HashMap::new(),
            versions: HashMap::new(),
            dup_of: HashMap::new(),
            ids: Ids::default(),
            first_by_content: HashMap::new(),
            lsh: LshIndex::default(),
            issue_flags: HashMap::new(),
            issues: IssueIndex::default(),
            people: Population::default(),
            issue_terms: HashMap::new(),
            terms_at_change: HashMap::new(),
            alerts: BTreeMap::new(),
            block_clock: Clock::default(),
            people_clock: Clock::default(),
            archived_issues: None,
        }
    }

    /// Keep summaries of evicted issues and complainants (for snapshot tables of a whole run).
    pub fn keep_evicted(&mut self) {
        self.archived_issues.get_or_insert_with(Vec::new);
        self.people.archive.get_or_insert_with(HashMap::new);
    }

    /// Evict issue-keyed state outside its window: closed issues (their flags, terms and crowd
    /// alert; the alert's last state was published), LSH items and content hashes.
    fn sweep_block(&mut self, cx: &RuleContext) {
        let evicted = self
            .issues
            .evict(self.block_clock.cutoff(cx.issues.window_days));
        for (issue, _) in &evicted {
            let id = &issue.issue_id;
            self.terms_at_change.remove(id);
            self.alerts.remove(&alert_id(
                AlertTrigger::CrowdConcentration,
                id,
                NaiveDate::default(),
            ));
            if self.archived_issues.is_none() {
                self.issue_flags.remove(id);
            }
        }
        if let Some(a) = self.archived_issues.as_mut() {
            a.extend(evicted);
        }
        let cutoff = self.block_clock.cutoff(cx.dedup.window_days);
        self.lsh.evict(cutoff);
        self.first_by_content.retain(|_, (_, at)| *at >= cutoff);
    }

    /// Keep the analytic columns decided for a complaint (replacing earlier ones).
    fn remember(&mut self, key: [u8; 16], c: &Complaint) {
        let seen = self.ids.seen(c);
        self.seen.insert(key, seen);
        match &c.source_version {
            Some(v) => self.versions.insert(key, v.as_str().into()),
            None => self.versions.remove(&key),
        };
        match &c.duplicate_of {
            Some(d) => self.dup_of.insert(key, d.as_str().into()),
            None => self.dup_of.remove(&key),
        };
    }

    /// Evict complainants with no complaint in their window, and issue terms not seen since.
    fn sweep_people(&mut self, cx: &RuleContext) {
        let cutoff = self.people_clock.cutoff(cx.frequency.window_days);
        self.people.evict(cutoff);
        self.issue_terms.retain(|_, (_, at)| *at >= cutoff);
    }

    /// An issue's key terms as of its last change.
    pub fn key_terms_at_change(&self, issue_id: &str) -> Vec<String> {
        self.terms_at_change
            .get(issue_id)
            .map(|t| split_terms(t))
            .unwrap_or_default()
    }

    /// A read-only view holding the issues, complainants and alerts of several states (the
    /// partitions of one engine), for the lake's snapshot tables and summaries.
    pub fn merged(parts: &[&AnalyticState]) -> AnalyticState {
        let mut out = AnalyticState::new(&DedupConfig::default());
        out.issues = IssueIndex::merged(
            parts.iter().map(|p| &p.issues),
            parts
                .iter()
                .flat_map(|p| p.archived_issues.iter().flatten()),
        );
        for p in parts {
            if let Some(a) = &p.people.archive {
                out.people
                    .people
                    .extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            out.issue_flags
                .extend(p.issue_flags.iter().map(|(k, v)| (k.clone(), v.clone())));
            out.people
                .people
                .extend(p.people.people.iter().map(|(k, v)| (k.clone(), v.clone())));
            out.alerts
                .extend(p.alerts.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// Every issue of this state (those evicted first, where kept), without copying: what
    /// `merged(&[self])` would list.
    pub fn all_issues(&self) -> impl Iterator<Item = &Issue> {
        self.archived_issues
            .iter()
            .flatten()
            .map(|(i, _)| i)
            .chain(self.issues.all())
    }

    /// Every issue of this state (see `all_issues`) with its `n` key terms.
    pub fn issue_rows(&self, n: usize) -> Vec<(&Issue, Vec<String>)> {
        self.archived_issues
            .iter()
            .flatten()
            .map(|(i, t)| (i, t.iter().take(n).cloned().collect()))
            .chain(
                self.issues
                    .all()
                    .map(|i| (i, self.issues.key_terms(&i.issue_id, n))),
            )
            .collect()
    }

    /// Every complainant of this state (live ones over those evicted, where kept), by
    /// pseudonym, without copying: what `merged(&[self])` would hold.
    pub fn all_people(&self) -> BTreeMap<&String, &crate::engine::frequency::Person> {
        let mut out: BTreeMap<&String, &crate::engine::frequency::Person> = BTreeMap::new();
        out.extend(self.people.archive.iter().flatten());
        out.extend(&self.people.people);
        out
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// Triage flags of an issue.
    pub fn flags_of_issue(&self, issue: &Issue, common_min: usize) -> Vec<String> {
        let counts: Vec<(&str, usize)> = self
            .issue_flags
            .get(&issue.issue_id)
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        triage::issue_flags(
            &counts,
            issue.complaint_ids.len(),
            issue.complainants.len(),
            common_min,
        )
    }

    /// Both operators on one state (a single partition): the issue-keyed operator, then the
    /// complainant operator over its events.
    pub fn apply(
        &mut self,
        rows: Vec<Complaint>,
        cx: &RuleContext,
    ) -> (Vec<Complaint>, Vec<Alert>) {
        let out = self.apply_block(rows, cx);
        let mut alerts = out.alerts;
        alerts.extend(self.apply_people(&out.people, cx));
        (out.complaints, alerts)
    }

    /// The issue-keyed operator: drop re-delivered complaints, mark exact and near duplicates,
    /// cluster into issues, set triage flags, raise crowd alerts. Rows are applied in order.
    pub fn apply_block(&mut self, rows: Vec<Complaint>, cx: &RuleContext) -> BlockOutput {
        let rows = rows
            .into_iter()
            .map(|c| {
                let p = Prepared::new(&self.hasher, &c);
                (c, p)
            })
            .collect();
        self.apply_prepared(rows, cx)
    }

    /// `apply_block` of complaints whose text-only part was computed already (`Prepared`).
    pub fn apply_prepared(
        &mut self,
        rows: Vec<(Complaint, Prepared)>,
        cx: &RuleContext,
    ) -> BlockOutput {
        let mut out = BlockOutput {
            complaints: Vec::with_capacity(rows.len()),
            ..BlockOutput::default()
        };
        let mut touched_issues: BTreeSet<String> = BTreeSet::new();
        let mut changed: BTreeSet<String> = BTreeSet::new();
        for (row, (mut c, prepared)) in rows.into_iter().enumerate() {
            // Re-delivered: drop. A new version of a known record: emit it again with the first
            // version's analytic columns (it is the same complaint, not a new one).
            let key = crate::ids::complaint_key(&c.complaint_id);
            if let Some(&prev) = self.seen.get(&key) {
                // Only a newer known version is news; an unversioned copy (e.g. the CSV export
                // of an API record) or an older version is a re-delivery.
                match (self.versions.get(&key), &c.source_version) {
                    (_, None) => continue,
                    (None, Some(v)) => {
                        self.versions.insert(key, v.as_str().into());
                        continue;
                    }
                    (Some(old), Some(new)) if new.as_str() <= &**old => continue,
                    (Some(_), Some(_)) => {}
                }
                let mut updated = c;
                updated.duplicate_of = self.dup_of.get(&key).map(|d| d.to_string());
                updated.duplicate_group = updated
                    .duplicate_of
                    .clone()
                    .unwrap_or_else(|| updated.complaint_id.clone());
                updated.issue_id = self
                    .ids
                    .issue_id(prev.issue)
                    .map(|i| self.issues.resolve(&i));
                updated.flags = self.ids.flag_sets[prev.flags as usize].clone();
                self.remember(key, &updated);
                out.complaints.push(updated);
                out.complaint_rows.push(row);
                continue;
            }
            // Exact duplicates by content hash, near duplicates by MinHash/LSH.
            let at = c.received_at.timestamp();
            if self.block_clock.advance(at) {
                self.sweep_block(cx);
            }
            let Prepared { sig, flags, words } = prepared;
            debug_assert_eq!(sig.len(), self.hasher.bands * self.hasher.rows);
            let near = self
                .lsh
                .insert(&self.hasher, sig, &c.complaint_id, at, cx.dedup.threshold);
            c.duplicate_of = match self.first_by_content.get(c.content_hash.as_str()) {
                Some((first, _)) => Some(first.to_string()),
                None => {
                    self.first_by_content.insert(
                        c.content_hash.as_str().into(),
                        (c.complaint_id.as_str().into(), at),
                    );
                    near
                }
            };
            c.duplicate_group = c
                .duplicate_of
                .clone()
                .unwrap_or_else(|| c.complaint_id.clone());
            c.flags = flags.join(",");
            let who = c
                .complainant
                .clone()
                .unwrap_or_else(|| format!("anon:{}", c.complaint_id));
            // A duplicate belongs to its original's issue; others are clustered.
            // (`seen` holds each complaint's issue, so duplicates join their original's.)
            // An original whose issue was evicted (closed): the copy is clustered afresh.
            let original = c
                .duplicate_of
                .as_ref()
                .and_then(|d| self.seen.get(&crate::ids::complaint_key(d)));
            let live = original
                .and_then(|s| self.ids.issue_id(s.issue))
                .map(|i| self.issues.resolve(&i))
                .filter(|i| self.issues.is_live(i));
            let issue = match live {
                Some(i) => {
                    self.issues.add_member(
                        &i,
                        &c.complaint_id,
                        &who,
                        &c.domain,
                        at,
                        c.likes.unwrap_or(0),
                    );
                    i
                }
                None => self.issues.assign(
                    cx.issues,
                    &ClusterInput {
                        complaint_id: &c.complaint_id,
                        district: c.district.as_deref(),
                        place: c.place.as_deref(),
                        complainant: &who,
                        domain: &c.domain,
                        title: &c.title,
                        words: &words,
                        at,
                        likes: c.likes.unwrap_or(0),
                    },
                ),
            };
            let fl = self.issue_flags.entry(issue.clone()).or_default();
            for f in flags {
                *fl.entry(f).or_default() += 1;
            }
            c.issue_id = Some(issue.clone());
            if let Some(id) = self.crowd_alert(&issue, cx) {
                changed.insert(id);
            }
            let terms = self.issues.key_terms(&issue, 6);
            self.terms_at_change
                .insert(issue.clone(), join_terms(&terms));
            touched_issues.insert(issue.clone());
            if self.issues.recluster_due(cx.issues) {
                let mut survivors = BTreeSet::new();
                let mut merged = Vec::new();
                self.recluster(cx, &mut survivors, &mut changed, &mut merged);
                for s in &survivors {
                    if let Some(id) = self.crowd_alert(s, cx) {
                        changed.insert(id);
                    }
                    let t = self.issues.key_terms(s, 6);
                    self.terms_at_change.insert(s.clone(), join_terms(&t));
                }
                touched_issues.extend(survivors);
                touched_issues.extend(merged);
            }
            if let Some(p) = &c.complainant {
                out.people_rows.push(row);
                out.people.push(PersonEvent {
                    complainant: p.clone(),
                    complaint_id: c.complaint_id.clone(),
                    duplicate_group: c.duplicate_group.clone(),
                    at,
                    domain: c.domain.clone(),
                    issue_id: c.issue_id.clone(),
                    district: c.district.clone(),
                    issue_terms: terms,
                });
            }
            self.remember(key, &c);
            out.complaints.push(c);
            out.complaint_rows.push(row);
        }
        out.alerts = changed
            .iter()
            .filter_map(|id| self.alerts.get(id).cloned())
            .collect();
        out.issues = touched_issues.into_iter().collect();
        out
    }

    /// The complainant operator: per-complainant frequency over sliding windows against the
    /// population of this state, frequency alerts. Events are applied in order.
    pub fn apply_people(&mut self, events: &[PersonEvent], cx: &RuleContext) -> Vec<Alert> {
        let mut changed: BTreeSet<String> = BTreeSet::new();
        for e in events {
            if self.people_clock.advance(e.at) {
                self.sweep_people(cx);
            }
            if let Some(i) = &e.issue_id
                && !e.issue_terms.is_empty()
            {
                self.issue_terms
                    .insert(i.clone(), (join_terms(&e.issue_terms), e.at));
            }
            self.people.observe(
                cx.frequency,
                &e.complainant,
                &e.complaint_id,
                &e.duplicate_group,
                e.at,
                &e.domain,
                e.issue_id.as_deref(),
                e.district.as_deref(),
            );
            if let Some(id) = self.frequency_alert(&e.complainant, cx) {
                changed.insert(id);
            }
        }
        changed
            .iter()
            .filter_map(|id| self.alerts.get(id).cloned())
            .collect()
    }

    /// Merge issues that turned out to be one; their flag counts follow.
    fn recluster(
        &mut self,
        cx: &RuleContext,
        touched: &mut BTreeSet<String>,
        changed: &mut BTreeSet<String>,
        merged: &mut Vec<String>,
    ) {
        for (from, into) in self.issues.recluster(cx.issues) {
            merged.push(from.clone());
            // The merged issue's alert is redirected to the survivor's, never dropped.
            let gone = alert_id(
                AlertTrigger::CrowdConcentration,
                &from,
                NaiveDate::default(),
            );
            if let Some(a) = self.alerts.get_mut(&gone)
                && a.merged_into.is_none()
            {
                a.merged_into = Some(alert_id(
                    AlertTrigger::CrowdConcentration,
                    &into,
                    NaiveDate::default(),
                ));
                a.version += 1;
                changed.insert(gone);
            }
            let moved = self.issue_flags.remove(&from).unwrap_or_default();
            let fl = self.issue_flags.entry(into.clone()).or_default();
            for (k, v) in moved {
                *fl.entry(k).or_default() += v;
            }
            touched.insert(into);
        }
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

    /// Raise or update the crowd alert of an issue. Incremental: an issue's complaint ids only
    /// grow by appending, so the alert's sorted evidence takes the ids added since it was last
    /// built (an update costs the new ids, not the issue's size).
    fn crowd_alert(&mut self, issue_id: &str, cx: &RuleContext) -> Option<String> {
        let issue = self.issues.get(issue_id)?;
        if issue.merged_into.is_some() || issue.complainants.len() < cx.rules.crowd_min_complainants
        {
            return None;
        }
        let domain = issue
            .domain()
            .filter(|d| d != crate::engine::taxonomy::UNCLASSIFIED);
        let count = issue.complaint_ids.len();
        let flags = self.flags_of_issue(issue, cx.rules.crowd_min_complainants);
        let key_terms = self.issues.key_terms(issue_id, 6);
        let n = issue.complainants.len() as u64;
        let place = issue
            .place
            .clone()
            .unwrap_or_else(|| key_terms.first().cloned().unwrap_or_default());
        let summary = format!(
            "{}{}：{}名群众反映{}问题，共{}件，热度{:.1}{}",
            issue.district.as_deref().unwrap_or(""),
            place,
            n,
            domain.as_deref().unwrap_or("未分类"),
            count,
            issue.heat(),
            if flags.is_empty() {
                String::new()
            } else {
                format!("（{}）", flags.join("、"))
            }
        );
        let id = alert_id(
            AlertTrigger::CrowdConcentration,
            issue_id,
            NaiveDate::default(),
        );
        let old = self.alerts.get_mut(&id);
        if let Some(old) = &old
            && old.complaint_count == count as u64
            && old.summary == summary
        {
            // Ids only grow: the same count is the same evidence.
            return None;
        }
        let raised = chrono::DateTime::from_timestamp(issue.last_seen, 0)
            .unwrap_or_default()
            .with_timezone(&local_offset());
        let (window_start, window_end) = (local_day(issue.first_seen), local_day(issue.last_seen));
        let unit = cx.units.responsible_at(
            domain.as_deref(),
            issue.district.as_deref(),
            &[issue.place.as_deref().unwrap_or(""), &issue.title],
        );
        let district = issue.district.clone();
        let deadline = add_working_days(local_day(issue.last_seen), cx.rules.warning_working_days);
        match old {
            Some(a) => {
                let known = (a.complaint_count as usize).min(count);
                let added = &issue.complaint_ids[known..];
                if added.len() > 16 {
                    a.complaint_ids.extend(added.iter().cloned());
                    a.complaint_ids.sort();
                } else {
                    for c in added {
                        let at = a.complaint_ids.partition_point(|x| x < c);
                        a.complaint_ids.insert(at, c.clone());
                    }
                }
                a.window_start = window_start;
                a.window_end = window_end;
                a.summary = summary;
                a.unit = unit;
                a.domain = domain;
                a.district = district;
                a.complaint_count = count as u64;
                a.distinct_complainants = n;
                a.key_terms = key_terms;
                a.version += 1;
                a.updated_at = raised;
            }
            None => {
                let mut ids = issue.complaint_ids.clone();
                ids.sort();
                let alert = Alert {
                    alert_id: id.clone(),
                    trigger: AlertTrigger::CrowdConcentration,
                    level: AlertLevel::Yellow,
                    subject: issue_id.to_string(),
                    window_start,
                    window_end,
                    summary,
                    unit,
                    domain,
                    district,
                    deadline,
                    complaint_count: count as u64,
                    complaint_ids: ids,
                    distinct_complainants: n,
                    key_terms,
                    version: 1,
                    raised_at: raised,
                    updated_at: raised,
                    merged_into: None,
                    lifecycle: Default::default(),
                };
                self.alerts.insert(id.clone(), alert);
            }
        }
        Some(id)
    }

    fn frequency_alert(&mut self, person: &str, cx: &RuleContext) -> Option<String> {
        let p = self.people.people.get(person)?;
        if !p.flagged {
            return None;
        }
        let (domain, share) = Person::focus(&p.domains).unwrap_or_default();
        let (top_issue, issue_share) = Person::focus(&p.issues).unwrap_or_default();
        let domain =
            Some(domain).filter(|d| !d.is_empty() && d != crate::engine::taxonomy::UNCLASSIFIED);
        let district = Person::focus(&p.districts).map(|(d, _)| d);
        let start = local_day(p.max_window_start);
        let end = start + Duration::days(cx.frequency.window_days - 1);
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
        let period = window_start(start, cx.frequency.window_days);
        let mut ids = p.complaint_ids.clone();
        ids.sort();
        let key_terms = self
            .issue_terms
            .get(&top_issue)
            .map(|(t, _)| split_terms(t))
            .unwrap_or_default();
        let raised = chrono::DateTime::from_timestamp(p.max_window_start, 0)
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
                "投诉人{person}在{}天内投诉{}件（去重后），累计{}件，{:.0}%集中于{}，{:.0}%为同一事项（p={:.1e}）",
                cx.frequency.window_days,
                p.max_window,
                ids.len(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::units::units;
    use crate::record::complaint_id;

    fn complaint(src: &str, who: &str, body: &str, place: Option<&str>, day: i64) -> Complaint {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00+08:00").expect("time")
            + Duration::days(day);
        Complaint {
            complainant: Some(who.into()),
            district: Some("镜湖区".into()),
            domain: "城市管理".into(),
            domain_confidence: 0.9,
            duplicate_group: String::new(),
            place: place.map(str::to_string),
            ..Complaint::new("hotline", src, t, "", body)
        }
    }

    fn with_cx(rules: RuleConfig, freq: FrequencyConfig, f: impl FnOnce(&RuleContext)) {
        let (dedup, issues) = (DedupConfig::default(), IssueConfig::default());
        f(&RuleContext {
            rules: &rules,
            dedup: &dedup,
            issues: &issues,
            frequency: &freq,
            units: units(),
        })
    }

    const TEXT: &str = "长江路烧烤摊每天晚上占道经营到凌晨两点，油烟和噪音让周边居民无法休息，多次打电话都没有人来管";

    #[test]
    fn drops_seen_ids_and_marks_near_duplicates() {
        with_cx(RuleConfig::default(), FrequencyConfig::default(), |cx| {
            let mut st = AnalyticState::new(cx.dedup);
            let (out, _) = st.apply(
                vec![
                    complaint("a", "p1", TEXT, None, 0),
                    complaint("a", "p1", TEXT, None, 0),
                ],
                cx,
            );
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].duplicate_group, out[0].complaint_id);
            let near = format!("{TEXT}，请尽快处理！");
            let (out, _) = st.apply(
                vec![
                    complaint("b", "p1", &near, None, 1),
                    complaint("c", "p2", "公交车班次太少，早高峰等车四十分钟", None, 1),
                ],
                cx,
            );
            let first = complaint_id("hotline", "a");
            assert_eq!(out[0].duplicate_of.as_deref(), Some(first.as_str()));
            assert_eq!(out[0].duplicate_group, first);
            assert_eq!(
                out[0].issue_id,
                st.seen
                    .get(&crate::ids::complaint_key(&first))
                    .and_then(|s| st.ids.issue_id(s.issue)),
                "a duplicate joins its original's issue"
            );
            assert_eq!(out[1].duplicate_of, None);
            assert_ne!(out[1].issue_id, out[0].issue_id);
            assert!(
                out[0].flags.contains(triage::RESPONSIBILITY_DISPUTE),
                "没有人来管: {}",
                out[0].flags
            );
        });
    }

    #[test]
    fn a_new_version_is_emitted_again_with_its_first_decisions() {
        with_cx(RuleConfig::default(), FrequencyConfig::default(), |cx| {
            let mut st = AnalyticState::new(cx.dedup);
            let v1 = Complaint {
                source_version: Some("t1".into()),
                ..complaint("a", "p1", TEXT, Some("长江路"), 0)
            };
            let (first, _) = st.apply(vec![v1.clone()], cx);
            let (again, _) = st.apply(vec![v1.clone()], cx);
            assert!(again.is_empty(), "the same version is a re-delivery");
            let v2 = Complaint {
                source_version: Some("t2".into()),
                source_status: Some("已办结".into()),
                ..v1
            };
            let (updated, _) = st.apply(vec![v2], cx);
            assert_eq!(updated.len(), 1);
            assert_eq!(updated[0].source_status.as_deref(), Some("已办结"));
            assert_eq!(updated[0].issue_id, first[0].issue_id);
            assert_eq!(updated[0].duplicate_group, first[0].duplicate_group);
            let issue = st
                .issues
                .get(first[0].issue_id.as_deref().expect("issue"))
                .expect("issue");
            assert_eq!(
                issue.complaint_ids.len(),
                1,
                "a version is not a second complaint"
            );
        });
    }

    #[test]
    fn crowd_alert_fires_at_threshold_and_updates_in_place() {
        let rules = RuleConfig {
            crowd_min_complainants: 3,
            ..RuleConfig::default()
        };
        with_cx(rules, FrequencyConfig::default(), |cx| {
            let mut st = AnalyticState::new(cx.dedup);
            let body = |i: usize| {
                format!(
                    "福兴花园门口第{i}次反映：夜市摊点占道，垃圾遍地，噪音扰民到深夜{}",
                    "。".repeat(i)
                )
            };
            let (_, alerts) = st.apply(
                (0..2)
                    .map(|i| {
                        complaint(
                            &format!("s{i}"),
                            &format!("p{i}"),
                            &body(i),
                            Some("福兴花园"),
                            0,
                        )
                    })
                    .collect(),
                cx,
            );
            assert!(
                alerts.is_empty(),
                "two complainants are below the threshold"
            );
            let (_, alerts) = st.apply(
                vec![complaint(
                    "s9",
                    "p0",
                    &format!("{}另外", body(9)),
                    Some("福兴花园"),
                    1,
                )],
                cx,
            );
            assert!(
                alerts.is_empty(),
                "the same person again does not make a crowd"
            );
            let (_, alerts) = st.apply(
                vec![complaint(
                    "s3",
                    "p3",
                    &format!("{}再补充", body(3)),
                    Some("福兴花园"),
                    2,
                )],
                cx,
            );
            assert_eq!(alerts.len(), 1);
            let a = &alerts[0];
            assert_eq!(
                (
                    a.trigger,
                    a.distinct_complainants,
                    a.complaint_count,
                    a.version
                ),
                (AlertTrigger::CrowdConcentration, 3, 4, 1)
            );
            assert_eq!(a.unit, "镜湖区城市管理局");
            let (_, again) = st.apply(
                vec![complaint(
                    "s4",
                    "p4",
                    &format!("{}又来了", body(4)),
                    Some("福兴花园"),
                    3,
                )],
                cx,
            );
            assert_eq!(again[0].alert_id, a.alert_id);
            assert_eq!(
                (
                    again[0].version,
                    again[0].deadline,
                    again[0].complaint_count
                ),
                (2, a.deadline, 5)
            );
        });
    }

    #[test]
    fn frequency_alert_for_the_outlier_only() {
        let freq = FrequencyConfig {
            min_population: 10,
            ..FrequencyConfig::default()
        };
        with_cx(RuleConfig::default(), freq, |cx| {
            let mut st = AnalyticState::new(cx.dedup);
            let mut rows: Vec<Complaint> = (0..40)
                .map(|i| {
                    complaint(
                        &format!("o{i}"),
                        &format!("p{i}"),
                        &format!("第{i}号普通投诉内容各不相同{}", "字".repeat(i)),
                        None,
                        0,
                    )
                })
                .collect();
            const TOPICS: [&str; 12] = [
                "物业公司擅自上调物业费，没有召开业主大会",
                "电梯三天两头坏，物业收了维修费却不修",
                "小区绿化带被物业改成收费停车位",
                "物业把公共收益挪作他用，账目从不公开",
                "楼道灯坏了两个月没人换，晚上老人摔倒",
                "物业保安夜里不巡逻，电动车接连被偷",
                "垃圾堆在单元门口好几天不清理，臭气熏天",
                "物业强制业主缴纳装修押金还不退",
                "地下车库漏水严重，车子被泡也不赔",
                "物业擅自停水停电催缴费用",
                "消防通道被物业出租给商户堆放货物",
                "物业合同到期后拒不退出小区",
            ];
            rows.extend(
                TOPICS
                    .iter()
                    .enumerate()
                    .map(|(k, t)| complaint(&format!("f{k}"), "busy", t, None, k as i64)),
            );
            // Resubmissions of one text do not add up.
            rows.extend((0..12).map(|k| {
                complaint(
                    &format!("r{k}"),
                    "copier",
                    "物业乱收费的问题请处理，谢谢",
                    None,
                    k as i64,
                )
            }));
            let (_, alerts) = st.apply(rows, cx);
            let flagged: Vec<&Alert> = alerts
                .iter()
                .filter(|a| a.trigger == AlertTrigger::HighFrequency)
                .collect();
            assert_eq!(
                flagged
                    .iter()
                    .map(|a| a.subject.as_str())
                    .collect::<Vec<_>>(),
                vec!["busy"]
            );
            assert_eq!(flagged[0].complaint_count, 12);
        });
    }

    #[test]
    fn state_outside_the_windows_is_evicted_by_record_time() {
        with_cx(RuleConfig::default(), FrequencyConfig::default(), |cx| {
            // Four complaints a day for 120 days: one place per week, texts of their own.
            let rows: Vec<Complaint> = (0..480)
                .map(|k| {
                    let day = k / 4;
                    let place = format!("第{}号花园", day / 7);
                    complaint(
                        &format!("e{k}"),
                        &format!("p{}", k % 37),
                        &format!("{place}门口夜市占道经营第{k}次，编号{}", k * 7919),
                        Some(&place),
                        day,
                    )
                })
                .collect();
            let run = |batch: usize, keep: bool| {
                let mut st = AnalyticState::new(cx.dedup);
                if keep {
                    st.keep_evicted();
                }
                let mut out = Vec::new();
                for chunk in rows.chunks(batch) {
                    out.extend(st.apply(chunk.to_vec(), cx).0);
                }
                (st, out)
            };
            let (bounded, whole) = run(480, false);
            let window = cx.issues.window_days + EVICT_GRACE_DAYS;
            assert!(
                bounded.issues.len() <= (window as usize / 7 + 2),
                "only issues of the last window are held: {}",
                bounded.issues.len()
            );
            assert!(
                bounded.lsh.len() <= (cx.dedup.window_days + EVICT_GRACE_DAYS + 1) as usize * 4
            );
            assert!(bounded.people.people.len() <= 37);
            let (kept, in_ones) = run(1, true);
            assert_eq!(whole, in_ones, "eviction does not depend on batches");
            let view = AnalyticState::merged(&[&kept]);
            let issues: BTreeSet<&str> =
                whole.iter().filter_map(|c| c.issue_id.as_deref()).collect();
            assert_eq!(issues.len(), 18, "one issue per place and week");
            assert_eq!(
                view.issues.all().count(),
                issues.len(),
                "the snapshot view keeps evicted issues"
            );
            assert!(issues.iter().all(|i| view.issues.get(i).is_some()));
            assert_eq!(view.people.people.len(), 37);
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
