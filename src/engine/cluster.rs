//! Same-issue clustering (多人投诉同一事项): complaints about one concrete issue get one issue id,
//! within an issue block (district) and a time window. An issue is a place and a matter: a
//! complaint naming places (`places`: canonical keys, variants matched by the block's registry)
//! joins the open issue at one of them whose matter is most like its own (TF-IDF cosine over
//! jieba words, the place's own words left out), else starts a new issue there; one place holds
//! several issues (noise, fees, a construction site). A complaint naming no place joins the most
//! similar open issue by words (an inverted index finds candidates), or starts one.
//! `recluster` merges issues of a place whose matters turned out the same, and issues without a
//! place with issues whose word profiles nearly match. Pure state.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use crate::engine::places::PlaceRegistry;

/// Thresholds of clustering (`[issues]` in config/duban.toml).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IssueConfig {
    /// An issue takes new complaints while they fall within this many days of its last one.
    /// Default 60: a matter people keep raising for months (a policy, a subsidy) stays one issue.
    pub window_days: i64,
    /// TF-IDF cosine at which a complaint that shares no place with an issue joins it (a
    /// complaint naming no place). Default 0.35.
    pub join_similarity: f64,
    /// Cosine of the matter (the words, the place's own words left out) at which a complaint
    /// joins an issue at a place it names. Default 0.2.
    pub place_join_similarity: f64,
    /// Cosine of two issues' term profiles at which re-clustering merges them (same domain, at
    /// most one of them at a place). Default 0.6.
    pub merge_similarity: f64,
    /// Cosine at which re-clustering merges two issues at one place (one matter split). Default
    /// 0.4.
    pub place_merge_similarity: f64,
    /// Re-cluster the issues changed since the last run after this many complaints of a state
    /// partition (a count, never a clock or a batch end, so results do not depend on timing).
    /// Default 50.
    pub recluster_every: usize,
}

impl Default for IssueConfig {
    fn default() -> Self {
        IssueConfig {
            window_days: 60,
            join_similarity: 0.35,
            place_join_similarity: 0.08,
            merge_similarity: 0.6,
            place_merge_similarity: 0.25,
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
    /// Districts of its complaints (an issue without a place may span several).
    #[serde(skip)]
    pub districts: BTreeMap<String, u32>,
    /// Its place's id in the index's registry (`NONE`: no place).
    #[serde(skip)]
    place_id: u32,
    /// Every place its complaints named (place ids, at most `MAX_ISSUE_PLACES`): a complaint
    /// that names the issue's place, or whose own place the issue's complaints named, may join.
    #[serde(skip)]
    places: Vec<u32>,
    /// The estates its complaints are about (the first estate each one names, at most
    /// `MAX_ISSUE_PLACES`): a complaint about another estate joins only when the issue's
    /// complaints named it or it names all of them (a template that each sender fills in with
    /// their own estate stays apart, with or without a road they all name).
    #[serde(skip)]
    estates: Vec<u32>,
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

/// Places kept per issue (`Issue::places`).
const MAX_ISSUE_PLACES: usize = 16;

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

    fn add(&mut self, m: &Member) {
        let Member {
            complaint_id,
            complainant,
            domain,
            district,
            at,
            likes,
        } = *m;
        if let Some(d) = district {
            match self.districts.get_mut(d) {
                Some(n) => *n += 1,
                None => {
                    self.districts.insert(d.to_string(), 1);
                    // One district, or none when its complaints come from several.
                    self.district = (self.districts.len() == 1).then(|| d.to_string());
                }
            }
        }
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

/// A complaint as an issue counts it.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub complaint_id: &'a str,
    pub complainant: &'a str,
    pub domain: &'a str,
    pub district: Option<&'a str>,
    pub at: i64,
    pub likes: i64,
}

/// What clustering needs of a complaint.
pub struct ClusterInput<'a> {
    pub member: Member<'a>,
    /// Its issue block (`partition::block_of`): a district, or the city's for a complaint naming
    /// no place.
    pub block: &'a str,
    /// The places it names as place ids of its block (`resolve_places`), primary first, and
    /// their names as written (the primary's is the issue's place when it starts one).
    pub places: &'a [u32],
    pub place_names: &'a [&'a str],
    /// Whether the primary place is named where a complaint says what it is about (its title,
    /// or the channel's address field); else its places are only mentioned in passing in the
    /// body (where one bought a flat, a hospital one went to), which locate no issue.
    pub place_stated: bool,
    /// A place named by a near-identical earlier text (`minhash::Near::other_place`): the same
    /// words about another place, whose issue this complaint must not join.
    pub other_place: Option<u32>,
    pub title: &'a str,
    /// The title and body with their words.
    pub words: &'a Words,
}

/// What scoring and re-clustering test of an issue, in one dense array beside the issues (a
/// candidate is decided without reading its `Issue`): kept in step by `sync`.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// TF-IDF norm of the profile when it last changed.
    norm: f32,
    /// Interned dominant domain (`NONE`: no complaint yet) and place id (`NONE`: none; compare
    /// through `PlaceRegistry::root`).
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
    /// Interned domains of `meta` (re-interned from the live issues at eviction).
    domains: Interner,
    by_id: HashMap<String, usize>,
    /// The places of every block (canonical keys, variants, learned aliases).
    pub places: PlaceRegistry,
    /// Place id (a root of `places`) → the issues at that place, by issue number (merged and
    /// closed ones included until eviction).
    at_place: HashMap<u32, Vec<usize>, FastHash>,
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
        let m = Meta {
            norm: norm.unwrap_or_else(|| self.meta.get(i).map_or(1.0, |m| m.norm)),
            domain,
            place: x.place_id,
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

    /// Dot product of two profiles sorted by term id (merge join), each weighted by TF-IDF.
    fn dot(&self, p: &[(u32, f32)], q: &[(u32, f32)]) -> f32 {
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
        dot
    }

    fn cosine(&self, a: usize, b: usize) -> f64 {
        let dot = self.dot(&self.list[a].profile, &self.list[b].profile);
        f64::from(dot / (self.meta[a].norm * self.meta[b].norm))
    }

    /// Cosine of a query (its norm `qn`) against issue `i`'s profile.
    fn cosine_to(&self, query: &[(u32, f32)], qn: f32, i: usize) -> f32 {
        self.dot(query, &self.list[i].profile) / (qn * self.meta[i].norm)
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

    fn is_open(&self, i: usize, at: i64, window: i64) -> bool {
        let x = &self.meta[i];
        !x.merged && at <= x.last_seen + window && at >= x.first_seen - window
    }

    /// The place ids of a complaint's place keys in its block (primary first), at time `at`.
    pub fn resolve_places<'k>(
        &mut self,
        block: &str,
        keys: impl IntoIterator<Item = &'k str>,
        at: i64,
    ) -> Vec<u32> {
        let bk = block_key(block);
        let mut out: Vec<u32> = Vec::new();
        for k in keys {
            let id = self.places.resolve(bk, k, at);
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// Places `a` and `b` were named by near-identical texts (see `PlaceRegistry::co_occurred`);
    /// when that makes them one place, the issues at the merged place move to the survivor and
    /// are re-clustered (one matter there may now be split in two).
    pub fn places_co_occurred(&mut self, a: u32, b: u32) {
        if let Some((gone, survivor)) = self.places.co_occurred(a, b)
            && let Some(moved) = self.at_place.remove(&gone)
        {
            self.dirty.extend(moved.iter().copied());
            for &i in &moved {
                for q in self.list[i].places.iter_mut() {
                    if *q == gone {
                        *q = survivor;
                    }
                }
                self.list[i].places.sort_unstable();
                self.list[i].places.dedup();
            }
            let list = self.at_place.entry(survivor).or_default();
            list.extend(moved);
            list.sort_unstable();
            list.dedup();
        }
    }

    /// Whether a complaint naming the places `roots` (primary first) may join issue `i`: an
    /// issue at a place takes complaints naming no place, naming its place, or naming a place
    /// its complaints named; never one whose words were near-identical to a text about a place
    /// the issue's complaints named and it does not (`conflict`: template texts naming two
    /// estates on one road share the road, not the estate).
    fn place_compatible(&self, i: usize, roots: &[u32], conflict: Option<u32>) -> bool {
        let x = &self.list[i];
        if let Some(p) = conflict
            && !roots.contains(&p)
            && x.places.iter().any(|q| self.places.root(*q) == p)
        {
            return false;
        }
        // About an estate: not an issue about other estates unless they are named together.
        if let Some(e) = roots.iter().find(|p| self.places.is_estate(**p))
            && !x.places.iter().any(|q| self.places.root(*q) == *e)
            && !self.named_all(&x.estates, roots)
        {
            return false;
        }
        if x.place_id == NONE || roots.is_empty() {
            return true;
        }
        let own = self.places.root(x.place_id);
        roots.contains(&own)
            || roots
                .first()
                .is_some_and(|p| x.places.iter().any(|q| self.places.root(*q) == *p))
    }

    /// Whether two issues may be one by their estates: the estates one is about were all named
    /// by the other's complaints.
    fn estates_compatible(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.list[a], &self.list[b]);
        let roots = |v: &[u32]| -> Vec<u32> { v.iter().map(|q| self.places.root(*q)).collect() };
        self.named_all(&x.estates, &roots(&y.places))
            || self.named_all(&y.estates, &roots(&x.places))
    }

    /// Whether `places` (roots) holds every one of `of` (by their roots now; true for none).
    fn named_all(&self, of: &[u32], places: &[u32]) -> bool {
        of.iter().all(|q| places.contains(&self.places.root(*q)))
    }

    /// An issue that took a place: its postings move from the lists of issues without a place
    /// to those of issues at one (see `posting_key`).
    fn move_postings(&mut self, i: usize) {
        let bk = block_key(&self.list[i].block);
        for &(t, n) in &self.list[i].profile {
            if let Some(list) = self.postings.get_mut(&posting_key(bk, t, false))
                && let Ok(k) = list.binary_search_by_key(&(i as u32), |p| p.issue)
            {
                list.remove(k);
            }
            post(
                self.postings.entry(posting_key(bk, t, true)).or_default(),
                i,
                n,
                true,
            );
        }
    }

    /// Whether two issues at places are at one place: one's place is among the places the
    /// other's complaints named.
    fn shares_place(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.list[a], &self.list[b]);
        let (px, py) = (self.places.root(x.place_id), self.places.root(y.place_id));
        px == py
            || x.places.iter().any(|q| self.places.root(*q) == py)
            || y.places.iter().any(|q| self.places.root(*q) == px)
    }

    /// Record that issue `i`'s complaints named `places` (listed under each, up to
    /// `MAX_ISSUE_PLACES` places per issue).
    fn add_places(&mut self, i: usize, places: &[u32]) {
        for &p in places {
            let root = self.places.root(p);
            let x = &mut self.list[i];
            if x.places.contains(&root) || x.places.len() >= MAX_ISSUE_PLACES {
                continue;
            }
            x.places.push(root);
            let list = self.at_place.entry(root).or_default();
            if let Err(k) = list.binary_search(&i) {
                list.insert(k, i);
            }
        }
    }

    /// Record that a complaint of issue `i` is about estate `p` (up to `MAX_ISSUE_PLACES`).
    fn add_estate(&mut self, i: usize, p: u32) {
        let root = self.places.root(p);
        let known = self.list[i]
            .estates
            .iter()
            .any(|q| self.places.root(*q) == root);
        let x = &mut self.list[i];
        if !known && x.estates.len() < MAX_ISSUE_PLACES {
            x.estates.push(root);
        }
    }

    /// Words of a query that are words of its place names (丽发, 新城 of 丽发新城): left out when
    /// judging the matter at a place, which every issue there shares.
    fn matter_of(&self, query: &[(u32, f32)], names: &[&str]) -> Vec<(u32, f32)> {
        query
            .iter()
            .filter(|(t, _)| {
                let w = self.vocab.name(*t);
                !names.iter().any(|n| n.contains(w))
            })
            .copied()
            .collect()
    }

    /// Assign a complaint to an issue; returns the issue id.
    pub fn assign(&mut self, cfg: &IssueConfig, c: &ClusterInput) -> String {
        let m = &c.member;
        let block = c.block.to_string();
        let tf = self.intern(c.words);
        self.docs += 1;
        for (t, _) in &tf {
            self.df[*t as usize] += 1;
        }
        let window = cfg.window_days.max(1) * 86_400;
        // The best open issue by similarity (ties: the lowest issue id): at a place it names,
        // by its matter; failing that, by all its words.
        let mut best: Option<(f32, usize)> = None;
        let better = |best: &Option<(f32, usize)>, s: f32, i: usize, list: &[Issue]| {
            best.is_none_or(|(bs, bi)| s > bs || (s == bs && list[i].issue_id < list[bi].issue_id))
        };
        let roots: Vec<u32> = c.places.iter().map(|p| self.places.root(*p)).collect();
        let conflict = c.other_place.map(|p| self.places.root(p));
        if !roots.is_empty() {
            // At a place it names: the issue there whose matter is most like its own.
            let matter = self.matter_of(&tf, c.place_names);
            let mn = self.norm_of(&matter);
            let mut seen: Vec<usize> = Vec::new();
            for &root in &roots {
                for &i in self.at_place.get(&root).into_iter().flatten() {
                    let i = self.resolve_idx(i);
                    if seen.contains(&i)
                        || !self.is_open(i, m.at, window)
                        || !self.place_compatible(i, &roots, conflict)
                    {
                        continue;
                    }
                    seen.push(i);
                    let s = self.cosine_to(&matter, mn, i);
                    if f64::from(s) >= cfg.place_join_similarity && better(&best, s, i, &self.list)
                    {
                        best = Some((s, i));
                    }
                }
            }
        }
        if best.is_none() {
            // The most similar open issue by words, at no place it conflicts with.
            for (i, s) in self.scores(&block, &tf, cfg.join_similarity, true) {
                let i = self.resolve_idx(i);
                if self.is_open(i, m.at, window)
                    && self.place_compatible(i, &roots, conflict)
                    && better(&best, s, i, &self.list)
                {
                    best = Some((s, i));
                }
            }
        }
        let stated = (c.place_stated && !roots.is_empty()).then(|| roots[0]);
        let fresh = best.is_none() && stated.is_none();
        let idx = match best {
            Some((_, i)) => i,
            None => {
                let id = issue_id(&[&block, m.complaint_id]);
                let i = self.list.len();
                self.list.push(Issue {
                    issue_id: id.clone(),
                    block: block.clone(),
                    district: m.district.map(str::to_string),
                    place: None,
                    domains: BTreeMap::new(),
                    complaint_ids: Vec::new(),
                    complainants: BTreeSet::new(),
                    first_seen: m.at,
                    last_seen: m.at,
                    days: BTreeMap::new(),
                    likes: 0,
                    title: c.title.to_string(),
                    profile: Vec::new(),
                    merged_into: None,
                    districts: BTreeMap::new(),
                    place_id: NONE,
                    places: Vec::new(),
                    estates: Vec::new(),
                });
                self.by_id.insert(id, i);
                i
            }
        };
        self.list[idx].add(m);
        // An issue without a place takes the place a complaint states (the first to state one).
        if let Some(p) = stated
            && self.list[idx].place_id == NONE
        {
            let x = &mut self.list[idx];
            x.place_id = p;
            x.place = c.place_names.first().map(|n| n.to_string());
            if !fresh && best.is_some() {
                // Its postings move to the lists of issues at a place.
                self.move_postings(idx);
            }
        }
        self.add_places(idx, &roots);
        if let Some(&p) = roots.iter().find(|p| self.places.is_estate(**p)) {
            self.add_estate(idx, p);
        }
        let (bk, placed) = (block_key(&block), self.list[idx].place_id != NONE);
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
    pub fn add_member(&mut self, id: &str, m: &Member) {
        if let Some(&i) = self.by_id.get(id) {
            let i = self.resolve_idx(i);
            self.list[i].add(m);
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
    /// same issue: at the same place with a matter nearly the same (`place_merge_similarity`),
    /// or, when at most one of them is at a place, with term profiles nearly the same and one
    /// domain (`merge_similarity`). The older issue survives. Returns the (merged, survivor) id
    /// pairs.
    pub fn recluster(&mut self, cfg: &IssueConfig) -> Vec<(String, String)> {
        self.since_recluster = 0;
        let window = cfg.window_days.max(1) * 86_400;
        let dirty: Vec<usize> = std::mem::take(&mut self.dirty).into_iter().collect();
        let mut merges = Vec::new();
        for d in dirty {
            let d = self.resolve_idx(d);
            let x = &self.list[d];
            let block = x.block.clone();
            let place = (x.place_id != NONE).then(|| self.places.root(x.place_id));
            let mut candidates: Vec<usize> = Vec::new();
            for p in &x.places {
                candidates.extend(self.at_place.get(p).into_iter().flatten().copied());
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
            // An issue at a place merges by words only with issues at none (issues at its own
            // place were listed above; at another place, never).
            candidates.extend(
                self.scores(&block, &query, cfg.merge_similarity / 2.0, place.is_none())
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
                let same = match (mx.place != NONE, my.place != NONE) {
                    (true, true) => {
                        self.shares_place(d2, o) && self.cosine(d2, o) >= cfg.place_merge_similarity
                    }
                    _ => mx.domain == my.domain && self.cosine(d2, o) >= cfg.merge_similarity,
                };
                if !same || !self.estates_compatible(d2, o) {
                    continue;
                }
                let (x, y) = (&self.list[d2], &self.list[o]);
                let (keep, gone) = if (x.first_seen, &x.issue_id) <= (y.first_seen, &y.issue_id) {
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
        merges
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
        for (k, v) in src.districts {
            *dst.districts.entry(k).or_default() += v;
        }
        dst.district = match dst.districts.len() {
            1 => dst.districts.keys().next().cloned(),
            _ => None,
        };
        let mut changed_terms = Vec::new();
        for (t, n) in src.profile {
            if let (new, Some(count)) = add_term(&mut dst.profile, t, n) {
                changed_terms.push((t, count, new));
            }
        }
        dst.first_seen = dst.first_seen.min(src.first_seen);
        dst.last_seen = dst.last_seen.max(src.last_seen);
        dst.likes += src.likes;
        // An issue without a place takes the place of the issue merged into it.
        let adopted = dst.place_id == NONE && src.place_id != NONE;
        if adopted {
            dst.place_id = src.place_id;
            dst.place = src.place;
        }
        let (bk, placed) = (block_key(&dst.block), dst.place_id != NONE);
        for (t, count, new) in changed_terms {
            let key = posting_key(bk, t, placed);
            post(self.postings.entry(key).or_default(), into, count, new);
        }
        if adopted {
            self.move_postings(into);
        }
        self.add_places(into, &src.places);
        for p in src.estates {
            self.add_estate(into, p);
        }
        let norm = self.norm_of(&self.list[into].profile);
        self.sync(into, Some(norm));
        self.sync(from, None);
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
        // Domains again from the live issues only (norms kept); places not named since the
        // cutoff leave the registry.
        self.domains = Default::default();
        self.places.evict(cutoff);
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
        self.at_place.retain(|_, l| {
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
    use crate::engine::places;

    /// A complaint of `text` by `who` on `day` (places found in the text as the engine does).
    fn input<'a>(
        idx: &mut IssueIndex,
        id: &'a str,
        who: &'a str,
        text: &str,
        day: i64,
    ) -> ClusterInput<'a> {
        let at = 1_790_000_000 + day * 86_400;
        let mentions = places::mentions(text, "");
        let ids = idx.resolve_places("镜湖区", mentions.iter().map(|m| m.key.as_str()), at);
        let names: Vec<&'static str> = mentions
            .iter()
            .map(|m| &*Box::leak(m.name.clone().into_boxed_str()))
            .collect();
        // A test's few inputs live until the process ends.
        ClusterInput {
            member: Member {
                complaint_id: id,
                complainant: who,
                domain: "生态环境",
                district: Some("镜湖区"),
                at,
                likes: 1,
            },
            block: "镜湖区",
            places: Box::leak(ids.into_boxed_slice()),
            place_names: Box::leak(names.into_boxed_slice()),
            place_stated: mentions.first().is_some_and(|m| m.in_title),
            other_place: None,
            title: Box::leak(text.to_string().into_boxed_str()),
            words: Box::leak(Box::new(Words::new(text.to_string()))),
        }
    }

    fn assign(
        idx: &mut IssueIndex,
        cfg: &IssueConfig,
        id: &str,
        who: &str,
        text: &str,
        day: i64,
    ) -> String {
        let c = input(
            idx,
            Box::leak(id.to_string().into_boxed_str()),
            Box::leak(who.to_string().into_boxed_str()),
            text,
            day,
        );
        idx.assign(cfg, &c)
    }

    #[test]
    fn a_place_holds_several_matters_and_its_variants_meet() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let a = assign(
            &mut idx,
            &cfg,
            "c1",
            "p1",
            "翠湖新城小区旁边搅拌站粉尘很大，噪音吵得睡不着",
            0,
        );
        let b = assign(
            &mut idx,
            &cfg,
            "c2",
            "p2",
            "A市青禾街道翠湖小区的搅拌站晚上施工，粉尘噪音扰民",
            2,
        );
        assert_eq!(
            a, b,
            "an administrative prefix and another suffix name one place"
        );
        let c = assign(
            &mut idx,
            &cfg,
            "c3",
            "p3",
            "李翠湖新城搅拌站粉尘又来了，噪音不停",
            3,
        );
        assert_eq!(a, c, "a stray character glued before the name");
        let d = assign(
            &mut idx,
            &cfg,
            "c4",
            "p4",
            "翠湖新城物业乱收停车费，物业费年年上涨",
            4,
        );
        assert_ne!(a, d, "another matter at the same place is another issue");
        let e = assign(
            &mut idx,
            &cfg,
            "c5",
            "p5",
            "翠湖小区物业擅自上涨物业费和停车费",
            5,
        );
        assert_eq!(d, e);
        let f = assign(
            &mut idx,
            &cfg,
            "c6",
            "p6",
            "翠湖新城搅拌站又开工了，粉尘噪音",
            90,
        );
        assert_ne!(a, f, "beyond the window is a new issue");
        let i = idx.get(&a).expect("issue");
        assert_eq!(
            (i.complainants.len(), i.complaint_ids.len(), i.likes),
            (3, 3, 3)
        );
        assert_eq!(i.place.as_deref(), Some("翠湖新城小区"));
    }

    #[test]
    fn near_identical_texts_at_different_places_stay_apart() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let text = |p: &str| {
            format!("{p}小区门口的云杉路上每天晚上烧烤摊占道经营到凌晨，油烟噪音扰民，请城管处理")
        };
        let a = assign(&mut idx, &cfg, "t1", "p1", &text("青禾"), 0);
        let b = assign(&mut idx, &cfg, "t2", "p2", &text("柳岸"), 0);
        let c = assign(&mut idx, &cfg, "t3", "p3", &text("青禾"), 1);
        assert_ne!(a, b, "the same words at another estate (on the same road)");
        assert_eq!(a, c);
        assert!(idx.recluster(&cfg).is_empty());
    }

    #[test]
    fn a_template_filled_in_with_each_senders_estate_stays_apart() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        // A road all senders name, then each one's own estate.
        let road = |p: &str| format!("云杉路施工围挡占道，{p}小区门口每天堵车到晚上，希望交警疏导");
        // A policy question written from home: the estate only in passing in the body.
        let home = |p: &str| {
            format!(
                "孩子上户口为什么要开证明？我们住在{p}小区，派出所说没有证明不给办理，这个规定合理吗"
            )
        };
        let mut run = |texts: [String; 4], stated: bool, base: usize| {
            let ids: Vec<String> = texts
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    let id: &'static str = Box::leak(format!("t{}", base + k).into_boxed_str());
                    let mut c = input(&mut idx, id, id, t, k as i64);
                    c.place_stated = stated;
                    idx.assign(&cfg, &c)
                })
                .collect();
            assert_ne!(ids[0], ids[1], "another estate: {texts:?}");
            assert_eq!(ids[0], ids[2], "the same estate: {texts:?}");
            assert!(
                ids[3] != ids[0] && ids[3] != ids[1],
                "a third estate: {texts:?}"
            );
        };
        run(["青禾", "柳岸", "青禾", "松鹤"].map(road), true, 0);
        run(["白鹭", "金桂", "白鹭", "银杏"].map(home), false, 10);
        assert!(idx.recluster(&cfg).is_empty(), "nor merged later");
    }

    #[test]
    fn texts_without_place_cluster_by_words() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let a = assign(
            &mut idx,
            &cfg,
            "c1",
            "p1",
            "搅拌站粉尘污染严重，搅拌站每天排放粉尘，窗户不敢开",
            0,
        );
        let b = assign(
            &mut idx,
            &cfg,
            "c2",
            "p2",
            "搅拌站的粉尘污染太严重了，晾的衣服全是粉尘",
            1,
        );
        let c = assign(
            &mut idx,
            &cfg,
            "c3",
            "p3",
            "公交车班次太少，早高峰等公交要四十分钟",
            1,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(
            idx.key_terms(&a, 3).contains(&"粉尘".to_string())
                || idx.key_terms(&a, 3).contains(&"搅拌站".to_string())
        );
    }

    #[test]
    fn a_complaint_naming_no_place_joins_the_matter_at_a_place() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let a = assign(
            &mut idx,
            &cfg,
            "c1",
            "p1",
            "翠湖新城旁边搅拌站粉尘很大，搅拌站噪音扰民",
            0,
        );
        let b = assign(
            &mut idx,
            &cfg,
            "c2",
            "p2",
            "小区旁边搅拌站粉尘很大，搅拌站噪音扰民，晚上睡不着",
            1,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn recluster_merges_a_matter_split_at_one_place() {
        let cfg = IssueConfig {
            place_join_similarity: 0.9,
            join_similarity: 0.99,
            ..IssueConfig::default()
        };
        let mut idx = IssueIndex::default();
        let a = assign(
            &mut idx,
            &cfg,
            "c1",
            "p1",
            "翠湖新城门口夜宵摊油烟扰民，烧烤到凌晨",
            0,
        );
        let b = assign(
            &mut idx,
            &cfg,
            "c2",
            "p2",
            "翠湖小区门口烧烤夜宵摊油烟大，扰民到凌晨两点",
            1,
        );
        assert_ne!(a, b, "split by a strict join threshold");
        let merges = idx.recluster(&cfg);
        assert_eq!(merges, vec![(b.clone(), a.clone())]);
        assert_eq!(idx.resolve(&b), a);
        assert_eq!(idx.get(&a).expect("issue").complainants.len(), 2);
        let d = assign(
            &mut idx,
            &IssueConfig::default(),
            "c4",
            "p4",
            "翠湖小区门口烧烤夜宵摊油烟大，扰民到凌晨两点",
            3,
        );
        assert_eq!(d, a, "a later complaint goes to the survivor");
    }

    #[test]
    fn eviction_forgets_old_places_and_keeps_the_rest_working() {
        let cfg = IssueConfig::default();
        let mut idx = IssueIndex::default();
        let old = assign(&mut idx, &cfg, "c0", "p0", "柳岸花园门口占道经营", 0);
        let a = assign(
            &mut idx,
            &cfg,
            "c1",
            "p1",
            "翠湖新城门口夜宵摊油烟扰民，烧烤到凌晨",
            100,
        );
        let gone = idx.evict(1_790_000_000 + 50 * 86_400);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0.issue_id, old);
        assert_eq!(idx.places.len(), 1, "only the live issue's place stays");
        let b = assign(
            &mut idx,
            &cfg,
            "c2",
            "p2",
            "翠湖小区门口烧烤夜宵摊油烟大，扰民到凌晨两点",
            101,
        );
        assert_eq!(
            a, b,
            "the renumbered issue still takes its place's complaints"
        );
        let c = assign(&mut idx, &cfg, "c3", "p3", "柳岸花园门口占道经营", 102);
        assert_ne!(c, old);
    }
}
