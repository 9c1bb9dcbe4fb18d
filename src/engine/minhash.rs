//! Near-duplicate detection: MinHash signatures over character n-grams with LSH banding.
//! Candidates from shared bands are confirmed by the signatures' estimated Jaccard similarity.
//! Signatures are one-permutation MinHash (Li, Owen & Zhang 2012): each n-gram is hashed once
//! and lands in one of the `bands × rows` bins, which keeps its minimum; empty bins borrow from
//! the next non-empty bin (rotation densification, Shrivastava & Li 2014). The share of equal
//! bins estimates Jaccard similarity like k independent hash functions do, at 1/k of the cost.

use std::collections::HashMap;

/// 64-bit mix (splitmix64 finalizer).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over the n-gram's chars, then mixed.
fn gram_hash(chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in chars {
        h ^= *c as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// FNV-1a over an n-gram held in two slices (a ring buffer's halves), then mixed.
fn gram_hash2(a: &[char], b: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in a.iter().chain(b) {
        h ^= *c as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// MinHash with `bands × rows` bins.
#[derive(Debug, Clone)]
pub struct MinHasher {
    pub ngram: usize,
    pub bands: usize,
    pub rows: usize,
    seeds: Vec<u64>,
}

pub type Signature = Vec<u32>;

impl MinHasher {
    pub fn new(ngram: usize, bands: usize, rows: usize) -> MinHasher {
        let seeds = (0..bands * rows)
            .map(|i| mix(0x5eed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        MinHasher {
            ngram: ngram.max(1),
            bands: bands.max(1),
            rows: rows.max(1),
            seeds,
        }
    }

    /// The signature of a text: per bin, the minimum over the n-grams hashed into it.
    /// Whitespace and punctuation are ignored so that re-spaced copies match.
    pub fn signature(&self, text: &str) -> Signature {
        let k = self.seeds.len();
        let mut sig = vec![u32::MAX; k];
        let mut window: std::collections::VecDeque<char> = std::collections::VecDeque::new();
        let chars = text
            .chars()
            .filter(|c| crate::engine::normalize::is_alphanumeric(*c));
        let mut all: Vec<char> = Vec::new();
        let mut any = false;
        let n = self.ngram;
        let put = |g: u64, sig: &mut Vec<u32>| {
            let h = mix(g ^ self.seeds[0]);
            let bin = ((h >> 32) as usize * k) >> 32;
            let v = h as u32;
            if v < sig[bin] {
                sig[bin] = v;
            }
        };
        for c in chars {
            if all.len() < n {
                all.push(c);
            }
            window.push_back(c);
            if window.len() > n {
                window.pop_front();
            }
            if window.len() == n {
                let (a, b) = window.as_slices();
                put(gram_hash2(a, b), &mut sig);
                any = true;
            }
        }
        if !any {
            if all.is_empty() {
                return sig;
            }
            // Shorter than one n-gram: the whole text is the only gram.
            put(gram_hash(&all), &mut sig);
        }
        // Densify: an empty bin takes the next non-empty bin's value, salted by the distance.
        if sig.contains(&u32::MAX) {
            let filled = sig.clone();
            for i in 0..k {
                if filled[i] != u32::MAX {
                    continue;
                }
                let mut d = 1;
                while filled[(i + d) % k] == u32::MAX {
                    d += 1;
                }
                sig[i] = (mix(u64::from(filled[(i + d) % k]) ^ (d as u64).wrapping_mul(0x9e37_79b9))
                    >> 32) as u32;
            }
        }
        sig
    }

    /// Estimated Jaccard similarity of two signatures.
    pub fn similarity(a: &Signature, b: &Signature) -> f64 {
        if a.is_empty() || a.len() != b.len() {
            return 0.0;
        }
        a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
    }

    fn band_keys<'a>(&'a self, sig: &'a Signature) -> impl Iterator<Item = (usize, u64)> + 'a {
        (0..self.bands).map(move |b| {
            let mut h = 0xcbf2_9ce4_8422_2325u64 ^ b as u64;
            for v in &sig[b * self.rows..(b + 1) * self.rows] {
                h = mix(h ^ u64::from(*v));
            }
            (b, h)
        })
    }
}

/// Equal bins of two stored (16-bit) signatures: their estimated Jaccard similarity × bins.
/// Bins are stored two per word; counted per 16-bit half (the loop vectorizes).
fn equal_bins(a: &[u32], b: &[u32]) -> usize {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = x ^ y;
            usize::from(d & 0xffff == 0) + usize::from(d >> 16 == 0)
        })
        .sum()
}

/// Most items of one bucket compared with a new item (the newest ones).
const BUCKET_CAP: usize = 64;

/// An LSH index of signatures: items sharing a band are candidates. A bucket is a chain: the
/// bucket map holds its newest item's number, each item the previous one's per band (4 bytes per
/// band and item instead of a map entry with a list). Items are fixed-size records in one flat
/// array (a chain step reads one record, no pointer to follow): per item a visit stamp (items met
/// in several bands are compared once), the previous item per band, and the signature's low
/// 16 bits per bin, two bins per word (half the memory; a chance collision of two bins is
/// 1 in 65,536).
#[derive(Debug, Default, Clone)]
pub struct LshIndex {
    /// (band number, 32 bits of the band key) → the bucket's newest item number.
    heads: HashMap<u64, u32, crate::engine::cluster::FastHash>,
    /// Records of the items held, `stride` words each, from item number `base`; the first
    /// `dead` of them were evicted (compacted away once they are half the array).
    recs: Vec<u32>,
    /// Per record: its time (for eviction) and its duplicate group's first id.
    at: Vec<i64>,
    first: Vec<Box<str>>,
    base: u32,
    dead: usize,
    /// Words per record: 1 + bands + bins / 2 (fixed by the first signature).
    stride: usize,
    /// The current insert's stamp.
    stamp: u32,
}

impl LshIndex {
    /// Record position of item `n`, when it is held.
    fn pos(&self, n: u32) -> Option<usize> {
        let k = n.checked_sub(self.base)? as usize;
        (k >= self.dead && k < self.at.len()).then_some(k)
    }

    /// Ask for item `n`'s record to be loaded into cache (a hint; no effect on results).
    fn prefetch(&self, n: u32) {
        if let Some(p) = self.pos(n) {
            // The record spans a few cache lines from its start.
            for line in (0..self.stride).step_by(16) {
                if let Some(x) = self.recs.get(p * self.stride + line) {
                    crate::util::mem::prefetch(x);
                }
            }
        }
    }

    /// Insert `sig` for `id` at time `at`; returns the group's first id when a previous item is
    /// similar enough (estimated Jaccard ≥ `threshold`), else `None` (then `id` starts a group).
    pub fn insert(
        &mut self,
        h: &MinHasher,
        sig: Signature,
        id: &str,
        at: i64,
        threshold: f64,
    ) -> Option<String> {
        let bands = h.bands;
        let words = sig.len().div_ceil(2);
        if self.stride == 0 {
            self.stride = 1 + bands + words;
        }
        let stride = self.stride;
        // The band's number and 32 bits of its key: a chain holds items of one band only.
        let keys: Vec<u64> = h
            .band_keys(&sig)
            .map(|(b, k)| ((b as u64) << 32) | (k >> 32))
            .collect();
        // The signature as stored: two 16-bit bins per word.
        let packed: Vec<u32> = sig
            .chunks(2)
            .map(|p| (p[0] & 0xffff) | (p.get(1).map_or(0, |v| v & 0xffff) << 16))
            .collect();
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            // Stamps wrapped: forget every old one.
            for r in self.recs.chunks_mut(stride) {
                r[0] = 0;
            }
            self.stamp = 1;
        }
        let bins = sig.len();
        // An odd last bin's empty half is equal in every record: not counted.
        let pad = words * 2 - bins;
        let mut best: Option<(usize, u32)> = None;
        // The bands' chains are walked side by side, one step of each in turn: the next record
        // of every chain is fetched while others are compared (a lone chain walk waits on
        // memory at each step). Which items are compared does not depend on the order, nor
        // does the best one (most equal bins, then the lowest number).
        let mut cursors: Vec<(usize, u32, usize)> = keys
            .iter()
            .enumerate()
            .filter_map(|(b, k)| self.heads.get(k).map(|n| (b, *n, 0)))
            .collect();
        for c in &cursors {
            self.prefetch(c.1);
        }
        while !cursors.is_empty() {
            let mut j = 0;
            while j < cursors.len() {
                let (b, n, seen) = cursors[j];
                let Some(p) = self.pos(n) else {
                    cursors.swap_remove(j);
                    continue;
                };
                let rec = &mut self.recs[p * stride..(p + 1) * stride];
                let prev = rec[1 + b];
                if rec[0] != self.stamp {
                    rec[0] = self.stamp;
                    let e = equal_bins(&packed, &rec[1 + bands..]) - pad;
                    if e as f64 / bins as f64 >= threshold
                        && best.is_none_or(|(be, bi)| e > be || (e == be && n < bi))
                    {
                        best = Some((e, n));
                    }
                }
                if prev == u32::MAX || seen + 1 >= BUCKET_CAP {
                    cursors.swap_remove(j);
                    continue;
                }
                self.prefetch(prev);
                cursors[j] = (b, prev, seen + 1);
                j += 1;
            }
        }
        let first = best
            .and_then(|(_, n)| self.pos(n))
            .map(|p| self.first[p].to_string());
        let idx = self.base + self.at.len() as u32;
        self.recs.push(self.stamp);
        for k in &keys {
            let prev = self.heads.insert(*k, idx).unwrap_or(u32::MAX);
            self.recs.push(prev);
        }
        self.recs.extend(packed);
        self.recs.resize((self.at.len() + 1) * stride, 0);
        self.at.push(at);
        self.first.push(first.as_deref().unwrap_or(id).into());
        first
    }

    /// Evict items from the oldest inserted on while their time is before `cutoff` (Unix
    /// seconds, from record times, never a clock). Returns how many went.
    pub fn evict(&mut self, cutoff: i64) -> usize {
        let mut n = 0;
        while self.dead < self.at.len() && self.at[self.dead] < cutoff {
            self.first[self.dead] = Box::default();
            self.dead += 1;
            n += 1;
        }
        if n > 0 {
            let live = self.base + self.dead as u32;
            self.heads.retain(|_, i| *i >= live);
            if self.dead * 2 >= self.at.len() {
                self.recs.drain(..self.dead * self.stride);
                self.at.drain(..self.dead);
                self.first.drain(..self.dead);
                self.base = live;
                self.dead = 0;
            }
        }
        n
    }

    pub fn len(&self) -> usize {
        self.at.len() - self.dead
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "镜湖区翠湖花园小区门口每天傍晚都有大量流动摊贩占道经营，烧烤摊、水果摊把人行道全部占满了，行人只能绕到机动车道上走，非常危险，恳请城管部门尽快处理。";

    #[test]
    fn near_copies_are_similar_and_others_are_not() {
        let h = MinHasher::new(3, 16, 4);
        let a = h.signature(A);
        let spaced = h.signature(&A.replace('，', " , "));
        assert_eq!(
            MinHasher::similarity(&a, &spaced),
            1.0,
            "punctuation and spacing ignored"
        );
        let edited = h.signature(&format!("{A}已经反映过多次，希望这次能有结果。"));
        let s = MinHasher::similarity(&a, &edited);
        assert!(s > 0.6, "a sentence added keeps most n-grams: {s}");
        let other = h.signature("弋江区某某工地拖欠农民工工资三个月，包工头失联，多次讨薪无果，请人社部门帮助我们讨回血汗钱。");
        assert!(MinHasher::similarity(&a, &other) < 0.1);
    }

    #[test]
    fn index_groups_near_duplicates_under_the_first() {
        let h = MinHasher::new(3, 16, 4);
        let mut idx = LshIndex::default();
        assert_eq!(idx.insert(&h, h.signature(A), "c1", 0, 0.6), None);
        assert_eq!(
            idx.insert(
                &h,
                h.signature(
                    "完全不同的一段文字，讲的是公交车班次太少的问题，早高峰等车要四十分钟。"
                ),
                "c2",
                0,
                0.6
            ),
            None
        );
        let dup = idx.insert(&h, h.signature(&format!("{A}谢谢！")), "c3", 0, 0.6);
        assert_eq!(dup.as_deref(), Some("c1"));
        // A duplicate of the duplicate joins the same group.
        let dup2 = idx.insert(&h, h.signature(&format!("{A}谢谢！！")), "c4", 0, 0.6);
        assert_eq!(dup2.as_deref(), Some("c1"));
        assert_eq!(idx.len(), 4);
        // Eviction by time: the items before the cutoff go, later ones still match.
        let mut idx = LshIndex::default();
        idx.insert(&h, h.signature(A), "old", 10, 0.6);
        idx.insert(&h, h.signature(&format!("{A}谢谢！")), "later", 20, 0.6);
        assert_eq!(idx.evict(15), 1);
        assert_eq!(idx.len(), 1);
        let dup = idx.insert(&h, h.signature(&format!("{A}谢谢！！")), "new", 30, 0.6);
        assert_eq!(
            dup.as_deref(),
            Some("old"),
            "the group keeps its first id after the first item went"
        );
        assert_eq!(idx.evict(100), 2);
        assert!(idx.is_empty() && idx.heads.is_empty());
    }

    #[test]
    fn odd_bin_counts_and_compaction_keep_matching() {
        // 3 × 3 = 9 bins: the packed record's spare half-word must not count as an equal bin.
        let h = MinHasher::new(3, 3, 3);
        let mut idx = LshIndex::default();
        let other = "完全不同的一段文字，讲的是公交车班次太少的问题，早高峰等车要四十分钟。";
        for (i, day) in (0..40).enumerate() {
            let text = format!("{other}第{i}次");
            idx.insert(&h, h.signature(&text), &format!("o{i}"), day, 1.0);
        }
        // Evicting most items compacts the records; numbering and chains stay valid.
        assert_eq!(idx.evict(35), 35);
        assert_eq!(idx.len(), 5);
        assert_eq!(idx.insert(&h, h.signature(A), "a", 50, 1.0), None);
        let again = idx.insert(&h, h.signature(A), "b", 51, 1.0);
        assert_eq!(
            again.as_deref(),
            Some("a"),
            "an identical text matches at 1.0"
        );
        let near = h.signature(&format!("{A}谢谢"));
        let s = MinHasher::similarity(&h.signature(A), &near);
        let found = idx.insert(&h, near, "c", 52, 1.0);
        assert_eq!(found.is_some(), s >= 1.0, "similarity {s}");
    }
}
