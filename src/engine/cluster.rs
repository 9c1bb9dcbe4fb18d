//! Same-issue clustering (多人投诉同一事项): complaints about one concrete issue get one issue id,
//! within an issue block (district) and a time window. Complaints naming the same place join that
//! place's issue; others join the most similar open issue by TF-IDF cosine over jieba words (an
//! inverted index finds candidates), or start a new one. `recluster` merges open issues of a block
//! whose places contain one another or whose term profiles are nearly the same. Pure state.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

/// Thresholds of clustering (`[issues]` in config/duban.toml).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IssueConfig {
    /// An issue takes new complaints while they fall within this many days of its last one. Default 30.
    pub window_days: i64,
    /// TF-IDF cosine at which a complaint without a named place joins an issue. Default 0.45.
    pub join_similarity: f64,
    /// Cosine of two issues' term profiles at which re-clustering merges them. Default 0.6.
    pub merge_similarity: f64,
    /// Re-cluster the issues changed since the last run after this many complaints of a state
    /// partition (a count, never a clock or a batch end, so results do not depend on timing).
    /// Default 50.
    pub recluster_every: usize,
}

impl Default for IssueConfig {
    fn default() -> Self {
        IssueConfig {
            window_days: 30,
            join_similarity: 0.45,
            merge_similarity: 0.6,
            recluster_every: 50,
        }
    }
}

static JIEBA: LazyLock<jieba_rs::Jieba> = LazyLock::new(jieba_rs::Jieba::new);

/// Words that say nothing about which issue a complaint is about.
const STOP: &[&str] = &[
    "问题",
    "情况",
    "部门",
    "相关",
    "有关",
    "希望",
    "尽快",
    "处理",
    "解决",
    "反映",
    "投诉",
    "举报",
    "请求",
    "要求",
    "领导",
    "政府",
    "我们",
    "他们",
    "你们",
    "自己",
    "没有",
    "现在",
    "已经",
    "一直",
    "每天",
    "目前",
    "可以",
    "这个",
    "那个",
    "这些",
    "什么",
    "怎么",
    "为什么",
    "因为",
    "所以",
    "但是",
    "而且",
    "如果",
    "还是",
    "就是",
    "不是",
    "一个",
    "非常",
    "严重",
    "影响",
    "市民",
    "居民",
    "群众",
    "百姓",
    "谢谢",
    "感谢",
    "您好",
    "你好",
    "尊敬",
    "恳请",
    "请问",
    "是否",
    "能否",
    "多次",
    "至今",
    "时间",
    "地方",
    "工作",
    "进行",
    "存在",
];

static STOP_SET: LazyLock<std::collections::HashSet<&'static str, FastHash>> =
    LazyLock::new(|| STOP.iter().copied().collect());

/// Words of a text for clustering: jieba words of two or more characters, stop words removed;
/// each distinct word with its count, sorted by word.
pub fn terms(text: &str) -> Vec<(&str, f32)> {
    let mut words: Vec<&str> = JIEBA
        .cut(text, false)
        .into_iter()
        .map(|t| t.word)
        .filter(|w| {
            w.chars().nth(1).is_some()
                && w.chars().all(crate::engine::normalize::is_alphanumeric)
                && !STOP_SET.contains(w)
        })
        .collect();
    words.sort_unstable();
    let mut tf: Vec<(&str, f32)> = Vec::with_capacity(words.len());
    for w in words {
        match tf.last_mut() {
            Some((last, n)) if *last == w => *n += 1.0,
            _ => tf.push((w, 1.0)),
        }
    }
    tf
}

/// A text with its clustering words (`terms`) as byte spans into it. It depends on the text
/// alone, so it is computed ahead of the keyed state, on the stateless stage's threads.
#[derive(Debug, Clone, Default)]
pub struct Words {
    text: String,
    /// (start, end, count) of each distinct word, sorted by word.
    spans: Vec<(u32, u32, f32)>,
}

impl Words {
    pub fn new(text: String) -> Words {
        let base = text.as_ptr() as usize;
        let spans = terms(&text)
            .into_iter()
            .map(|(w, n)| {
                // `terms` returns slices of the text.
                let start = w.as_ptr() as usize - base;
                (start as u32, (start + w.len()) as u32, n)
            })
            .collect();
        Words { text, spans }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Each distinct word with its count, sorted by word.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> {
        self.spans
            .iter()
            .map(|&(a, b, n)| (&self.text[a as usize..b as usize], n))
    }
}

/// One issue and its summary.
#[derive(Debug, Clone, Serialize)]
pub struct Issue {
    pub issue_id: String,
    pub block: String,
    pub district: Option<String>,
    pub place: Option<String>,
    pub domains: BTreeMap<String, u32>,
    pub complaint_ids: Vec<String>,
    pub complainants: BTreeSet<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Complaints per local day (Unix day number).
    pub days: BTreeMap<i64, u32>,
    pub likes: i64,
    /// Representative title: the first complaint's.
    pub title: String,
    /// (term id, count) over the issue's complaints, sorted by term id (at most `MAX_PROFILE`
    /// terms). Sorted so that every sum over it runs in one order: equal inputs, equal floats.
    #[serde(skip)]
    profile: Vec<(u32, f32)>,
    pub merged_into: Option<String>,
}

/// One issue in a term's posting list: its number and `1 + ln tf` of the term in its profile.
#[derive(Debug, Clone, Copy)]
struct Posting {
    issue: u32,
    log_tf: f32,
}

/// Record issue `idx`'s count `tf` of a term in the term's posting list: updated where the issue
/// is listed; a term new to the issue (`new`) is listed while the list has room. Lists stay
/// sorted by issue number.
fn post(list: &mut Vec<Posting>, idx: usize, tf: f32, new: bool) {
    let issue = idx as u32;
    match list.binary_search_by_key(&issue, |p| p.issue) {
        Ok(k) => list[k].log_tf = 1.0 + tf.ln(),
        Err(k) if new && list.len() < MAX_POSTING => list.insert(
            k,
            Posting {
                issue,
                log_tf: 1.0 + tf.ln(),
            },
        ),
        Err(_) => {}
    }
}

/// Terms kept per issue profile.
const MAX_PROFILE: usize = 300;
/// Issues kept per posting list.
const MAX_POSTING: usize = 256;
/// Words of an issue that look for merge candidates at re-clustering.
const RECLUSTER_QUERY_TERMS: usize = 20;
/// Terms in more than this share of complaints are too common to find candidates with.
const COMMON_TERM_SHARE: f32 = 0.2;

impl Issue {
    pub fn domain(&self) -> Option<String> {
        self.domain_ref().map(str::to_string)
    }

    /// The most frequent domain (ties: the first by name), borrowed.
    pub fn domain_ref(&self) -> Option<&str> {
        self.domains
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| k.as_str())
    }

    /// Complaints in the last 7 days of activity over the 7 days before (1.0 = flat).
    pub fn growth(&self) -> f64 {
        let last = (self.last_seen + 8 * 3600).div_euclid(86_400);
        let recent: u32 = self.days.range(last - 6..=last).map(|(_, n)| n).sum();
        let before: u32 = self.days.range(last - 13..=last - 7).map(|(_, n)| n).sum();
        f64::from(recent) / f64::from(before.max(1))
    }

    /// Heat: distinct complainants, boosted by growth and engagement.
    pub fn heat(&self) -> f64 {
        let n = self.complainants.len() as f64;
        n * (1.0 + self.growth().min(10.0).ln_1p()) + (self.likes.max(0) as f64).ln_1p()
    }

    fn add(&mut self, complaint_id: &str, complainant: &str, domain: &str, at: i64, likes: i64) {
        self.complaint_ids.push(complaint_id.to_string());
        if !self.complainants.contains(complainant) {
            self.complainants.insert(complainant.to_string());
        }
        match self.domains.get_mut(domain) {
            Some(n) => *n += 1,
            None => {
                self.domains.insert(domain.to_string(), 1);
            }
        }
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
        *self
            .days
            .entry((at + 8 * 3600).div_euclid(86_400))
            .or_default() += 1;
        self.likes += likes;
    }
}

/// What clustering needs of a complaint.
pub struct ClusterInput<'a> {
    pub complaint_id: &'a str,
    pub district: Option<&'a str>,
    pub place: Option<&'a str>,
    pub complainant: &'a str,
    pub domain: &'a str,
    pub title: &'a str,
    /// The title and body with their words.
    pub words: &'a Words,
    pub at: i64,
    pub likes: i64,
}

/// What scoring and re-clustering test of an issue, in one dense array beside the issues (a
/// candidate is decided without reading its `Issue`): kept in step by `sync`.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// TF-IDF norm of the profile when it last changed.
    norm: f32,
    /// Interned dominant domain (`NONE`: no complaint yet) and canonical place (`NONE`: none).
    domain: u32,
    place: u32,
    merged: bool,
    first_seen: i64,
    last_seen: i64,
}

const NONE: u32 = u32::MAX;

/// Strings numbered in the order they first appear (so ids depend only on the sequence of keys,
/// never on a hash map's iteration order), and each id's string.
#[derive(Debug, Default, Clone)]
struct Interner {
    ids: HashMap<Box<str>, u32, FastHash>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `key` (a new one for a new key).
    fn id(&mut self, key: &str) -> u32 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(key.into(), id);
        self.names.push(key.into());
        id
    }

    /// The id of `key`, `NONE` for none.
    fn id_of(&mut self, key: Option<&str>) -> u32 {
        key.map_or(NONE, |k| self.id(k))
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    fn len(&self) -> usize {
        self.names.len()
    }
}

#[derive(Debug, Default, Clone)]
pub struct IssueIndex {
    list: Vec<Issue>,
    /// Per issue (same numbering as `list`).
    meta: Vec<Meta>,
    /// Interned domains and places of `meta` (re-interned from the live issues at eviction, so
    /// they hold no place of an evicted issue).
    domains: Interner,
    places: Interner,
    by_id: HashMap<String, usize>,
    /// block key → canonical place → the open issue of that place.
    by_place: HashMap<u64, HashMap<String, usize>>,
    /// (block, first two chars of any position) → place issues, to find containing places.
    place_grams: HashMap<(u64, [char; 2]), Vec<usize>, FastHash>,
    /// Interned terms, their document frequency by term id.
    vocab: Interner,
    df: Vec<u32>,
    docs: u32,
    /// (block, term, whether the issues name a place: see `posting_key`) → issues whose profile
    /// has the term, by issue number, each with the term's log count in that profile (`1 + ln
    /// tf`, kept up to date as the profile grows), so scoring a query reads contiguous lists
    /// instead of every candidate's profile. Issues with and without a place are listed apart:
    /// re-clustering an issue with a place needs only the issues without one (see `recluster`).
    postings: HashMap<(u64, u32), Vec<Posting>, FastHash>,
    /// Issues changed since the last re-clustering.
    dirty: BTreeSet<usize>,
    since_recluster: usize,
    /// Key terms of issues copied from other indexes (see `merged`).
    cached_terms: HashMap<String, Vec<String>>,
    /// Ids of evicted place issues (as numbers): a late complaint of their period gets a new id.
    retired: std::collections::HashSet<u64>,
    /// Scoring's accumulators by issue number (see `scores`): no state, only reused memory.
    scratch: (Vec<f32>, Vec<bool>),
}

/// A multiplicative hasher for small integer keys (candidate scores): iteration order never
/// reaches a decision (ties break by issue id), so any hasher is as good as SipHash here.
#[derive(Default, Clone, Copy)]
pub struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

#[derive(Default)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        // The product's well-mixed middle bits to the bottom (hash tables index by low bits,
        // which a multiplication leaves depending on the input's low bits only).
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes per step (words and ids are short); the tail padded with zeros.
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// An issue id as a number (its base-62 digits), for compact sets of ids.
pub fn id_number(id: &str) -> u64 {
    crate::ids::issue_number(id).unwrap_or_else(|| block_key(id))
}

/// Key terms kept per issue in a merged view.
const KEPT_TERMS: usize = 20;

/// Canonical place: a trailing 小区 after a name that is already a place is dropped
/// (翠湖花园小区 → 翠湖花园), so both spellings meet.
pub fn canonical_place(p: &str) -> String {
    let trimmed = p.strip_suffix("小区").unwrap_or(p);
    if trimmed != p && crate::engine::normalize::extract_place(trimmed).as_deref() == Some(trimmed)
    {
        trimmed.to_string()
    } else {
        p.to_string()
    }
}

fn issue_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    crate::ids::issue_id_of(crate::ids::digest_number(&h.finalize()))
}

/// Add `n` of term `t` to a profile: (whether the term is new to it, its count now, `None` when
/// the profile does not hold it). Full profiles take no new terms.
fn add_term(profile: &mut Vec<(u32, f32)>, t: u32, n: f32) -> (bool, Option<f32>) {
    match profile.binary_search_by_key(&t, |e| e.0) {
        Ok(i) => {
            profile[i].1 += n;
            (false, Some(profile[i].1))
        }
        Err(i) if profile.len() < MAX_PROFILE => {
            profile.insert(i, (t, n));
            (true, Some(n))
        }
        Err(_) => (false, None),
    }
}

/// The postings key of a term in a block, for issues with or without a place (the term id's
/// top bit; ids stay far below 2^31).
fn posting_key(block: u64, term: u32, placed: bool) -> (u64, u32) {
    (block, term | (u32::from(placed) << 31))
}

/// A block's key in the indexes (FNV-1a; no allocation per lookup).
fn block_key(block: &str) -> u64 {
    crate::ids::fnv1a64(block.as_bytes())
}

fn grams(s: &str) -> Vec<[char; 2]> {
    let c: Vec<char> = s.chars().collect();
    c.windows(2).map(|w| [w[0], w[1]]).collect()
}

impl IssueIndex {
    /// Every issue, merged ones included (see `merged_into`).
    pub fn all(&self) -> impl Iterator<Item = &Issue> {
        self.list.iter()
    }

    /// Whether the issue is held (not evicted).
    pub fn is_live(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn get(&self, id: &str) -> Option<&Issue> {
        self.by_id.get(id).map(|i| &self.list[*i])
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Bring issue `i`'s `meta` up to date with the issue (`norm`: a new profile norm, or keep).
    fn sync(&mut self, i: usize, norm: Option<f32>) {
        let x = &self.list[i];
        let domain = self.domains.id_of(x.domain_ref());
        let place = self.places.id_of(x.place.as_deref());
        let m = Meta {
            norm: norm.unwrap_or_else(|| self.meta.get(i).map_or(1.0, |m| m.norm)),
            domain,
            place,
            merged: x.merged_into.is_some(),
            first_seen: x.first_seen,
            last_seen: x.last_seen,
        };
        if i < self.meta.len() {
            self.meta[i] = m;
        } else {
            self.meta.push(m);
        }
    }

    fn idf(&self, t: u32) -> f32 {
        let df = self.df.get(t as usize).copied().unwrap_or(0) as f32;
        ((1.0 + self.docs as f32) / (1.0 + df)).ln() + 1.0
    }

    fn weight(&self, t: u32, tf: f32) -> f32 {
        (1.0 + tf.ln()) * self.idf(t)
    }

    fn norm_of(&self, profile: &[(u32, f32)]) -> f32 {
        profile
            .iter()
            .map(|(t, n)| self.weight(*t, *n).powi(2))
            .sum::<f32>()
            .sqrt()
            .max(1e-6)
    }

    /// The text's terms as (term id, count) sorted by id. New words get ids in word order, so
    /// ids depend only on the sequence of texts, never on a hash map's iteration order.
    fn intern(&mut self, words: &Words) -> Vec<(u32, f32)> {
        let mut out = Vec::with_capacity(words.spans.len());
        for (w, n) in words.iter() {
            out.push((self.vocab.id(w), n));
        }
        self.df.resize(self.vocab.len(), 0);
        out.sort_by_key(|e| e.0);
        out
    }

    /// Cosine of a query profile against the issues of a block that share a term with it (with
    /// `placed`, issues naming a place too; else only those without one). Returns (issue
    /// number, cosine) of those whose cosine is at least `min`, in no particular order (callers
    /// decide by value and id).
    fn scores(
        &mut self,
        block: &str,
        query: &[(u32, f32)],
        min: f64,
        placed: bool,
    ) -> Vec<(usize, f32)> {
        let qn = self.norm_of(query);
        // Dense accumulators by issue number, reused across calls (zero outside a call).
        let (mut acc, mut hit) = std::mem::take(&mut self.scratch);
        acc.resize(self.list.len(), 0.0);
        hit.resize(self.list.len(), false);
        let mut touched: Vec<usize> = Vec::new();
        let limit = (self.docs as f32 * COMMON_TERM_SHARE).max(3.0);
        let bk = block_key(block);
        for (t, n) in query {
            if self.df[*t as usize] as f32 > limit {
                continue;
            }
            // `weight` with the term's IDF computed once (the same floats as calling it).
            let idf = self.idf(*t);
            let wq = (1.0 + n.ln()) * idf / qn;
            // An issue is in one of the two lists: its sum runs in query order either way.
            let lists = [false, true]
                .into_iter()
                .filter(|with_place| placed || !with_place)
                .filter_map(|with_place| self.postings.get(&posting_key(bk, *t, with_place)));
            for list in lists {
                for p in list {
                    let i = p.issue as usize;
                    if !hit[i] {
                        hit[i] = true;
                        touched.push(i);
                    }
                    acc[i] += wq * (p.log_tf * idf);
                }
            }
        }
        let mut out = Vec::new();
        for i in touched {
            let v = acc[i] / self.meta[i].norm;
            acc[i] = 0.0;
            hit[i] = false;
            if f64::from(v) >= min {
                out.push((i, v));
            }
        }
        self.scratch = (acc, hit);
        out
    }

    fn cosine(&self, a: usize, b: usize) -> f64 {
        // Merge join of the two sorted profiles.
        let (p, q) = (&self.list[a].profile, &self.list[b].profile);
        let (mut i, mut j, mut dot) = (0, 0, 0.0f32);
        while i < p.len() && j < q.len() {
            match p[i].0.cmp(&q[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    // `weight` of both, the term's IDF computed once (the same floats).
                    let idf = self.idf(p[i].0);
                    dot += ((1.0 + p[i].1.ln()) * idf) * ((1.0 + q[j].1.ln()) * idf);
                    i += 1;
                    j += 1;
                }
            }
        }
        f64::from(dot / (self.meta[a].norm * self.meta[b].norm))
    }

    fn resolve_idx(&self, mut i: usize) -> usize {
        if self.meta.get(i).is_some_and(|m| !m.merged) {
            return i;
        }
        while let Some(next) = self.list[i]
            .merged_into
            .as_ref()
            .and_then(|m| self.by_id.get(m))
        {
            i = *next;
        }
        i
    }

    /// Follow merges to the surviving issue's id.
    pub fn resolve(&self, id: &str) -> String {
        match self.by_id.get(id) {
            Some(i) => self.list[self.resolve_idx(*i)].issue_id.clone(),
            None => id.to_string(),
        }
    }

    /// The issue of a block's (canonical) place.
    fn place_issue(&self, block: &str, place: &str) -> Option<&usize> {
        self.by_place.get(&block_key(block))?.get(place)
    }

    fn is_open(&self, i: usize, at: i64, window: i64) -> bool {
        let x = &self.meta[i];
        !x.merged && at <= x.last_seen + window && at >= x.first_seen - window
    }

    /// Assign a complaint to an issue; returns the issue id.
    pub fn assign(&mut self, cfg: &IssueConfig, c: &ClusterInput) -> String {
        let block = c.district.unwrap_or("未知").to_string();
        let tf = self.intern(c.words);
        self.docs += 1;
        for (t, _) in &tf {
            self.df[*t as usize] += 1;
        }
        let window = cfg.window_days.max(1) * 86_400;
        let place = c.place.map(canonical_place);
        let mut chosen: Option<usize> = None;
        if let Some(p) = &place {
            if let Some(i) = self.place_issue(&block, p) {
                let i = self.resolve_idx(*i);
                if self.is_open(i, c.at, window) {
                    chosen = Some(i);
                }
            }
        } else {
            let mut best: Option<(f32, usize)> = None;
            for (i, s) in self.scores(&block, &tf, cfg.join_similarity, true) {
                let i = self.resolve_idx(i);
                if self.is_open(i, c.at, window)
                    && best.is_none_or(|(bs, bi)| {
                        s > bs || (s == bs && self.list[i].issue_id < self.list[bi].issue_id)
                    })
                {
                    best = Some((s, i));
                }
            }
            chosen = best.map(|(_, i)| i);
        }
        let fresh = chosen.is_none() && place.is_none();
        let idx = match chosen {
            Some(i) => i,
            None => {
                let mut id = match &place {
                    Some(p) => {
                        let bucket = c.at.div_euclid(window).to_string();
                        issue_id(&[&block, p, &bucket])
                    }
                    None => issue_id(&[&block, c.complaint_id]),
                };
                if self.by_id.contains_key(&id) || self.retired.contains(&id_number(&id)) {
                    // The place's issue of this period was merged away or closed: a new one.
                    id = issue_id(&[&id, c.complaint_id]);
                }
                let i = self.list.len();
                self.list.push(Issue {
                    issue_id: id.clone(),
                    block: block.clone(),
                    district: c.district.map(str::to_string),
                    place: place.clone(),
                    domains: BTreeMap::new(),
                    complaint_ids: Vec::new(),
                    complainants: BTreeSet::new(),
                    first_seen: c.at,
                    last_seen: c.at,
                    days: BTreeMap::new(),
                    likes: 0,
                    title: c.title.to_string(),
                    profile: Vec::new(),
                    merged_into: None,
                });
                self.by_id.insert(id, i);
                if let Some(p) = &place {
                    self.by_place
                        .entry(block_key(&block))
                        .or_default()
                        .insert(p.clone(), i);
                    let mut seen = BTreeSet::new();
                    for g in grams(p) {
                        if seen.insert(g) {
                            self.place_grams
                                .entry((block_key(&block), g))
                                .or_default()
                                .push(i);
                        }
                    }
                }
                i
            }
        };
        self.list[idx].add(c.complaint_id, c.complainant, c.domain, c.at, c.likes);
        let (bk, placed) = (block_key(&block), self.list[idx].place.is_some());
        for (t, n) in tf {
            let (new, count) = add_term(&mut self.list[idx].profile, t, n);
            if let Some(count) = count {
                let key = posting_key(bk, t, placed);
                post(self.postings.entry(key).or_default(), idx, count, new);
            }
        }
        let norm = self.norm_of(&self.list[idx].profile);
        self.sync(idx, Some(norm));
        // A new issue without a place was just scored against every open issue of its block and
        // joined none (join similarity < merge similarity): re-clustering it would find nothing
        // new. It is re-clustered once it changes (another complaint joins it); an issue that
        // changed later queries it from its own side.
        if !fresh {
            self.dirty.insert(idx);
        }
        self.since_recluster += 1;
        self.list[idx].issue_id.clone()
    }

    /// Add a complaint to a known issue (a duplicate of one of its complaints).
    pub fn add_member(
        &mut self,
        id: &str,
        complaint_id: &str,
        complainant: &str,
        domain: &str,
        at: i64,
        likes: i64,
    ) {
        if let Some(&i) = self.by_id.get(id) {
            let i = self.resolve_idx(i);
            self.list[i].add(complaint_id, complainant, domain, at, likes);
            self.sync(i, None);
            self.dirty.insert(i);
        }
        self.since_recluster += 1;
    }

    /// Whether a periodic re-clustering is due.
    pub fn recluster_due(&self, cfg: &IssueConfig) -> bool {
        self.since_recluster >= cfg.recluster_every.max(1)
    }

    /// Merge each issue changed since the last run with an open issue of its block that is the
    /// same issue: one place contains the other's (and they share a domain or some words), or
    /// their term profiles are nearly the same and they share a domain. The older issue survives.
    /// Returns the (merged, survivor) id pairs.
    pub fn recluster(&mut self, cfg: &IssueConfig) -> Vec<(String, String)> {
        self.since_recluster = 0;
        let window = cfg.window_days.max(1) * 86_400;
        let dirty: Vec<usize> = std::mem::take(&mut self.dirty).into_iter().collect();
        let mut merges = Vec::new();
        for d in dirty {
            let d = self.resolve_idx(d);
            let x = &self.list[d];
            let block = x.block.clone();
            let mut candidates: Vec<usize> = Vec::new();
            if let Some(p) = &x.place {
                candidates.extend(self.places_related(&block, p));
            }
            // Candidates by the issue's most characteristic words; the exact cosine decides below.
            let mut top: Vec<(f32, u32, f32)> = x
                .profile
                .iter()
                .map(|(t, n)| (self.weight(*t, *n), *t, *n))
                .collect();
            top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut query: Vec<(u32, f32)> = top
                .iter()
                .take(RECLUSTER_QUERY_TERMS)
                .map(|(_, t, n)| (*t, *n))
                .collect();
            query.sort_by_key(|e| e.0);
            // An issue with a place merges by words only with issues without one (the places of
            // others must contain one another: `places_related` found those).
            let placed = x.place.is_none();
            candidates.extend(
                self.scores(&block, &query, cfg.merge_similarity / 2.0, placed)
                    .into_iter()
                    .map(|(i, _)| i),
            );
            // In issue order, each once.
            candidates.sort_unstable();
            candidates.dedup();
            for o in candidates {
                let (d2, o) = (self.resolve_idx(d), self.resolve_idx(o));
                let (mx, my) = (self.meta[d2], self.meta[o]);
                if d2 == o || my.merged || mx.merged {
                    continue;
                }
                let overlap = mx.first_seen <= my.last_seen + window
                    && my.first_seen <= mx.last_seen + window;
                if !overlap {
                    continue;
                }
                // Cheapest tests first: most candidates name another place. Places compatible:
                // one has none or both the same; else one must contain the other.
                let places_compatible =
                    mx.place == NONE || my.place == NONE || mx.place == my.place;
                let contains = !places_compatible && {
                    let (p, q) = (self.places.name(mx.place), self.places.name(my.place));
                    let (short, long) = if p.len() < q.len() { (p, q) } else { (q, p) };
                    short.len() < long.len() && long.contains(short)
                };
                if !contains && !places_compatible {
                    continue;
                }
                let same_domain = mx.domain == my.domain;
                if !contains && !same_domain {
                    continue;
                }
                let cos = self.cosine(d2, o);
                let (x, y) = (&self.list[d2], &self.list[o]);
                if (contains && (same_domain || cos >= 0.25))
                    || (places_compatible && same_domain && cos >= cfg.merge_similarity)
                {
                    let (keep, gone) = if (x.first_seen, &x.issue_id) <= (y.first_seen, &y.issue_id)
                    {
                        (d2, o)
                    } else {
                        (o, d2)
                    };
                    merges.push((
                        self.list[gone].issue_id.clone(),
                        self.list[keep].issue_id.clone(),
                    ));
                    self.merge(gone, keep);
                }
            }
        }
        merges
    }

    /// Place issues of a block whose place contains `p` or is contained in it.
    fn places_related(&self, block: &str, p: &str) -> Vec<usize> {
        let mut out = Vec::new();
        // Containing p: they have every bigram of p; scan the shortest posting list.
        let lists: Vec<&Vec<usize>> = grams(p)
            .into_iter()
            .filter_map(|g| self.place_grams.get(&(block_key(block), g)))
            .collect();
        if let Some(rarest) = lists.iter().min_by_key(|l| l.len()) {
            out.extend(rarest.iter().copied().filter(|i| {
                self.list[*i]
                    .place
                    .as_deref()
                    .is_some_and(|q| q.contains(p))
            }));
        }
        // Contained in p: a substring of p (three characters or more) that is a known place.
        let chars: Vec<char> = p.chars().collect();
        let places = self.by_place.get(&block_key(block));
        let mut sub = String::new();
        for a in 0..chars.len() {
            for b in a + 3..=chars.len() {
                if b - a == chars.len() {
                    continue;
                }
                sub.clear();
                sub.extend(&chars[a..b]);
                if let Some(i) = places.and_then(|m| m.get(sub.as_str())) {
                    out.push(*i);
                }
            }
        }
        out
    }

    fn merge(&mut self, from: usize, into: usize) {
        let src = self.list[from].clone();
        self.list[from].merged_into = Some(self.list[into].issue_id.clone());
        let dst = &mut self.list[into];
        dst.complaint_ids.extend(src.complaint_ids);
        dst.complainants.extend(src.complainants);
        for (k, v) in src.domains {
            *dst.domains.entry(k).or_default() += v;
        }
        for (k, v) in src.days {
            *dst.days.entry(k).or_default() += v;
        }
        let mut changed_terms = Vec::new();
        for (t, n) in src.profile {
            if let (new, Some(count)) = add_term(&mut dst.profile, t, n) {
                changed_terms.push((t, count, new));
            }
        }
        dst.first_seen = dst.first_seen.min(src.first_seen);
        dst.last_seen = dst.last_seen.max(src.last_seen);
        dst.likes += src.likes;
        let (bk, placed) = (block_key(&dst.block), dst.place.is_some());
        for (t, count, new) in changed_terms {
            let key = posting_key(bk, t, placed);
            post(self.postings.entry(key).or_default(), into, count, new);
        }
        let norm = self.norm_of(&self.list[into].profile);
        self.sync(into, Some(norm));
        self.sync(from, None);
        if let Some(p) = src.place {
            self.by_place
                .entry(block_key(&src.block))
                .or_default()
                .insert(p, into);
        }
    }

    /// The issue's most characteristic words (highest TF-IDF in its profile).
    pub fn key_terms(&self, id: &str, n: usize) -> Vec<String> {
        let Some(i) = self.get(id) else { return vec![] };
        if i.profile.is_empty() {
            // An issue copied into a merged view keeps the terms computed in its own index.
            return self
                .cached_terms
                .get(id)
                .map(|t| t.iter().take(n).cloned().collect())
                .unwrap_or_default();
        }
        self.terms_of_profile(&i.profile, n)
    }

    fn terms_of_profile(&self, profile: &[(u32, f32)], n: usize) -> Vec<String> {
        let mut w: Vec<(f32, &str)> = profile
            .iter()
            .map(|(t, c)| (self.weight(*t, *c), self.vocab.name(*t)))
            .collect();
        let order = |a: &(f32, &str), b: &(f32, &str)| b.0.total_cmp(&a.0).then(a.1.cmp(b.1));
        if w.len() > n && n > 0 {
            w.select_nth_unstable_by(n - 1, order);
            w.truncate(n);
        }
        w.sort_by(order);
        w.into_iter().take(n).map(|(_, t)| t.to_string()).collect()
    }

    /// Evict every issue whose surviving issue (itself, or the issue it was merged into) saw
    /// nothing since `cutoff` (Unix seconds; the caller derives it from the latest record time,
    /// never a clock): it can take no complaint any more. The index is compacted (postings,
    /// places and ids renumbered in their order, so what remains behaves as before). Returns the
    /// evicted issues, oldest first, each with its key terms.
    pub fn evict(&mut self, cutoff: i64) -> Vec<(Issue, Vec<String>)> {
        let gone: Vec<bool> = (0..self.list.len())
            .map(|i| self.list[self.resolve_idx(i)].last_seen < cutoff)
            .collect();
        if !gone.iter().any(|g| *g) {
            return Vec::new();
        }
        let mut remap: Vec<Option<usize>> = Vec::with_capacity(gone.len());
        let mut next = 0;
        for g in &gone {
            remap.push((!g).then(|| {
                next += 1;
                next - 1
            }));
        }
        let mut evicted = Vec::new();
        let mut kept = Vec::with_capacity(next);
        for (i, issue) in std::mem::take(&mut self.list).into_iter().enumerate() {
            if gone[i] {
                if issue.place.is_some() {
                    self.retired.insert(id_number(&issue.issue_id));
                }
                evicted.push(issue);
            } else {
                kept.push(issue);
            }
        }
        self.list = kept;
        self.meta = (0..gone.len())
            .filter(|i| !gone[*i])
            .map(|i| self.meta[i])
            .collect();
        // Domains and places again from the live issues only (norms kept): evicted issues'
        // places leave the state.
        (self.domains, self.places) = Default::default();
        for i in 0..self.list.len() {
            self.sync(i, None);
        }
        let evicted: Vec<(Issue, Vec<String>)> = evicted
            .into_iter()
            .map(|mut issue| {
                let terms = self.terms_of_profile(&issue.profile, KEPT_TERMS);
                issue.profile = Vec::new();
                (issue, terms)
            })
            .collect();
        // Renumber an issue number in place; false when its issue went.
        let keep = |i: &mut usize| match remap[*i] {
            Some(j) => {
                *i = j;
                true
            }
            None => false,
        };
        self.by_id.retain(|_, i| keep(i));
        self.by_place.retain(|_, m| {
            m.retain(|_, i| keep(i));
            !m.is_empty()
        });
        self.place_grams.retain(|_, l| {
            l.retain_mut(keep);
            !l.is_empty()
        });
        // The renumbering keeps order, so lists stay sorted.
        self.postings.retain(|_, l| {
            l.retain_mut(|p| {
                let mut i = p.issue as usize;
                let kept = keep(&mut i);
                p.issue = i as u32;
                kept
            });
            !l.is_empty()
        });
        self.dirty = self.dirty.iter().filter_map(|i| remap[*i]).collect();
        self.cached_terms
            .retain(|id, _| self.by_id.contains_key(id));
        evicted
    }

    /// One read-only index holding the issues of several (for the lake's snapshot tables):
    /// issues, their key terms, nothing to cluster with.
    pub fn merged<'a>(
        parts: impl IntoIterator<Item = &'a IssueIndex>,
        archived: impl IntoIterator<Item = &'a (Issue, Vec<String>)>,
    ) -> IssueIndex {
        let mut out = IssueIndex::default();
        for (issue, terms) in archived {
            out.cached_terms
                .insert(issue.issue_id.clone(), terms.clone());
            out.by_id.insert(issue.issue_id.clone(), out.list.len());
            out.list.push(issue.clone());
        }
        for part in parts {
            for issue in &part.list {
                let terms = part.key_terms(&issue.issue_id, KEPT_TERMS);
                let mut copy = issue.clone();
                copy.profile = Vec::new();
                out.cached_terms.insert(issue.issue_id.clone(), terms);
                out.by_id.insert(issue.issue_id.clone(), out.list.len());
                out.list.push(copy);
            }
        }
        for i in 0..out.list.len() {
            out.sync(i, None);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        id: &'a str,
        who: &'a str,
        place: Option<&'a str>,
        text: &'a str,
        day: i64,
    ) -> ClusterInput<'a> {
        ClusterInput {
            complaint_id: id,
            district: Some("镜湖区"),
            place,
            complainant: who,
            domain: "生态环境",
            title: text,
            // A test's few texts live until the process ends.
            words: Box::leak(Box::new(Words::new(text.to_string()))),
            at: 1_790_000_000 + day * 86_400,
            likes: 1,
        }
    }

    #[test]
    fn same_place_joins_and_far_in_time_does_not() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let a = idx.assign(
            &cfg,
            &input(
                "c1",
                "p1",
                Some("丽景花园小区"),
                "丽景花园小区旁边搅拌站粉尘很大",
                0,
            ),
        );
        let b = idx.assign(
            &cfg,
            &input(
                "c2",
                "p2",
                Some("丽景花园"),
                "丽景花园的搅拌站晚上施工，灰尘大",
                2,
            ),
        );
        assert_eq!(a, b, "小区 spelling meets the plain name");
        let c = idx.assign(
            &cfg,
            &input("c3", "p3", Some("丽景花园"), "丽景花园搅拌站又开工了", 90),
        );
        assert_ne!(a, c, "three months later is a new issue");
        let i = idx.get(&a).expect("issue");
        assert_eq!(
            (i.complainants.len(), i.complaint_ids.len(), i.likes),
            (2, 2, 2)
        );
    }

    #[test]
    fn texts_without_place_cluster_by_words() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let a = idx.assign(
            &cfg,
            &input(
                "c1",
                "p1",
                None,
                "搅拌站粉尘污染严重，搅拌站每天排放粉尘，窗户不敢开",
                0,
            ),
        );
        let b = idx.assign(
            &cfg,
            &input(
                "c2",
                "p2",
                None,
                "搅拌站的粉尘污染太严重了，晾的衣服全是粉尘",
                1,
            ),
        );
        let c = idx.assign(
            &cfg,
            &input(
                "c3",
                "p3",
                None,
                "公交车班次太少，早高峰等公交要四十分钟",
                1,
            ),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(
            idx.key_terms(&a, 3).contains(&"粉尘".to_string())
                || idx.key_terms(&a, 3).contains(&"搅拌站".to_string())
        );
    }

    /// Two issues on `day` and the next, one's place containing the other's: (outer, inner).
    fn contained_places(idx: &mut IssueIndex, cfg: &IssueConfig, day: i64) -> (String, String) {
        let a = idx.assign(
            cfg,
            &input("c1", "p1", Some("丽发新城"), "丽发新城搅拌站粉尘", day),
        );
        let b = idx.assign(
            cfg,
            &input(
                "c2",
                "p2",
                Some("丽发新城搅拌站"),
                "丽发新城搅拌站噪音粉尘",
                day + 1,
            ),
        );
        (a, b)
    }

    #[test]
    fn recluster_merges_contained_places() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let (a, b) = contained_places(&mut idx, &cfg, 0);
        assert_ne!(a, b);
        let merges = idx.recluster(&cfg);
        assert_eq!(merges, vec![(b.clone(), a.clone())]);
        assert_eq!(idx.resolve(&b), a);
        assert_eq!(idx.get(&a).expect("issue").complainants.len(), 2);
        // A later complaint naming the merged place goes to the survivor.
        let d = idx.assign(
            &cfg,
            &input(
                "c4",
                "p4",
                Some("丽发新城搅拌站"),
                "丽发新城搅拌站又有粉尘",
                3,
            ),
        );
        assert_eq!(d, a);
    }

    #[test]
    fn eviction_drops_evicted_places_and_keeps_the_rest_working() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let old = idx.assign(
            &cfg,
            &input("c0", "p0", Some("翠湖花园"), "翠湖花园门口占道经营", 0),
        );
        let (a, b) = contained_places(&mut idx, &cfg, 100);
        let gone = idx.evict(1_790_000_000 + 50 * 86_400);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0.issue_id, old);
        // Only the live issues' places stay interned.
        assert_eq!(idx.places.len(), 2);
        assert!(!idx.places.ids.contains_key("翠湖花园"));
        // The renumbered issues still merge by their places.
        assert_eq!(idx.recluster(&cfg), vec![(b.clone(), a.clone())]);
        assert_eq!(idx.resolve(&b), a);
    }
}
