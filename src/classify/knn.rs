//! Nearest-neighbour votes blended into the linear model's margins.
//!
//! The linear model sees a message as a bag of weighted terms; two messages that share many rare
//! terms (the same estate, the same fee, the same school) often share the handling department,
//! which is what the labels follow. The neighbour pool is the training rows, at most `max_pool`
//! of them (a class-proportional sample of a longer history, so the cost of a search stays
//! bounded). For a new message the `k` rows of highest cosine similarity vote for their class
//! with `similarity^power`, each class's votes scaled by its inverse frequency and the votes
//! normalized to sum 1; the model adds `weight × vote` to each class's margin. The votes sum to
//! at most `weight`, so they can change the label only where the two highest margins are closer
//! than that; elsewhere (most messages) the index is not searched at all.
//!
//! Similarity is the dot product of the l2-normalized tf-idf vectors restricted to rare features
//! (in at most `max_df` of the pool rows): common features add little to which rows are nearest
//! and most of the cost. Scoring walks an inverted index (feature → pool rows), so it touches only
//! the postings of a message's rare features.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;

use super::train::{SparseVec, SplitMix64, class_weights};
use crate::util::mem::prefetch;

/// The entries of a (possibly latent-augmented, see `lsa`) row that are hashed features.
pub fn hashed_part(x: &SparseVec, buckets: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
    x.iter()
        .copied()
        .filter(move |&(b, _)| (b as usize) < buckets)
}

/// Settings of the neighbour blend (stored in the model header).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnParams {
    /// Neighbours that vote.
    pub k: usize,
    /// A neighbour votes with similarity^power.
    pub power: f32,
    /// Scale of the normalized votes added to the margins (0 = no neighbours).
    pub weight: f32,
    /// Features in more than this share of the pool rows are left out of the similarity.
    pub max_df: f32,
    /// At most this many training rows (a class-proportional sample) form the pool: a search
    /// costs about linearly in the pool, and speed must not fall with a bureau's history.
    #[serde(default = "default_max_pool")]
    pub max_pool: usize,
}

fn default_max_pool() -> usize {
    KnnParams::default().max_pool
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            k: 10,
            power: 1.0,
            weight: 0.5,
            max_df: 0.05,
            max_pool: 4096,
        }
    }
}

/// The neighbour pool as an inverted index over rare features.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    pub params: KnnParams,
    /// Class of each pool row.
    ys: Vec<u32>,
    /// Per class: the vote scale (pool rows / (classes × rows of the class)).
    class_scale: Vec<f32>,
    /// Postings of bucket `b` are `post[start[b]..start[b + 1]]`; `start.len()` = buckets + 1.
    start: Vec<u32>,
    /// (pool row, tf-idf value), rows ascending within a bucket.
    post: Vec<(u32, f32)>,
    /// Bit `b` set when bucket `b` has postings (a small table to test before `start`).
    indexed: Vec<u64>,
}

/// One bit per bucket with postings.
fn indexed_bits(start: &[u32]) -> Vec<u64> {
    let mut bits = vec![0u64; (start.len() - 1).div_ceil(64)];
    for b in 0..start.len() - 1 {
        if start[b + 1] > start[b] {
            bits[b / 64] |= 1 << (b % 64);
        }
    }
    bits
}

/// Rows (ascending) of a pool of at most about `max` of the rows of classes `ys`: all of them
/// when they fit, else from each class the same share of its rows (at least one), chosen by a
/// seeded shuffle.
pub fn pool_sample(ys: &[usize], classes: usize, max: usize, seed: u64) -> Vec<usize> {
    if ys.len() <= max {
        return (0..ys.len()).collect();
    }
    let mut by_class = vec![Vec::new(); classes];
    for (i, &y) in ys.iter().enumerate() {
        by_class[y].push(i);
    }
    let mut rng = SplitMix64(seed ^ 0x9001);
    let mut keep = Vec::with_capacity(max + classes);
    for rows in &mut by_class {
        let quota = (rows.len() * max).div_ceil(ys.len()).min(rows.len());
        rng.shuffle(rows);
        keep.extend_from_slice(&rows[..quota]);
    }
    keep.sort_unstable();
    keep
}

#[derive(Default)]
struct KnnScratch {
    /// The message's indexed buckets and values, then their posting ranges.
    hits: Vec<(u32, f32)>,
    ranges: Vec<(u32, u32, f32)>,
    /// Similarity to each pool row.
    sims: Vec<f32>,
    top: Vec<(f32, u32)>,
    votes: Vec<f32>,
}

thread_local! {
    static KNN_SCRATCH: RefCell<KnnScratch> = RefCell::new(KnnScratch::default());
}

impl Neighbours {
    /// Index the training rows `xs` (l2-normalized tf-idf, buckets ascending) with classes `ys`
    /// (each below `classes`); beyond `max_pool` rows, a sample of them (`pool_sample`, by
    /// `seed`). Entries from `buckets` on (latent features) are not indexed.
    pub fn build(
        xs: &[&SparseVec],
        ys: &[usize],
        classes: usize,
        buckets: usize,
        params: KnnParams,
        seed: u64,
    ) -> Neighbours {
        assert_eq!(xs.len(), ys.len());
        let keep = pool_sample(ys, classes, params.max_pool, seed);
        let xs: Vec<&SparseVec> = keep.iter().map(|&i| xs[i]).collect();
        let ys: Vec<u32> = keep.iter().map(|&i| ys[i] as u32).collect();
        let mut df = vec![0u32; buckets];
        for x in &xs {
            for (b, _) in hashed_part(x, buckets) {
                df[b as usize] += 1;
            }
        }
        let max = (params.max_df * xs.len() as f32).max(1.0);
        let rare = |b: u32| df[b as usize] as f32 <= max;
        let mut start = vec![0u32; buckets + 1];
        for (b, &d) in df.iter().enumerate() {
            start[b + 1] = start[b] + if rare(b as u32) { d } else { 0 };
        }
        let mut fill = start.clone();
        let mut post = vec![(0u32, 0f32); start[buckets] as usize];
        for (row, x) in xs.iter().enumerate() {
            for (b, v) in hashed_part(x, buckets).filter(|(b, _)| rare(*b)) {
                let slot = &mut fill[b as usize];
                post[*slot as usize] = (row as u32, v);
                *slot += 1;
            }
        }
        Neighbours::assemble(params, ys, classes, start, post)
    }

    /// The index of pool rows of classes `ys` with postings `post[start[b]..start[b + 1]]`; the
    /// class scales and the bitset follow from them.
    fn assemble(
        params: KnnParams,
        ys: Vec<u32>,
        classes: usize,
        start: Vec<u32>,
        post: Vec<(u32, f32)>,
    ) -> Neighbours {
        let classes_of: Vec<usize> = ys.iter().map(|&y| y as usize).collect();
        Neighbours {
            params,
            class_scale: class_weights(&classes_of, classes, true),
            ys,
            indexed: indexed_bits(&start),
            start,
            post,
        }
    }

    pub fn pool_rows(&self) -> usize {
        self.ys.len()
    }

    pub fn postings(&self) -> usize {
        self.post.len()
    }

    /// Add `weight × votes` of the neighbours of `q` (the message's l2-normalized tf-idf entries,
    /// any order) to `margins` (one per class), unless the margins are decided without them. A
    /// message sharing no rare feature with the pool gets no votes.
    pub fn add_votes(&self, q: impl Iterator<Item = (u32, f32)>, margins: &mut [f32]) {
        // Votes sum to at most `weight`: when the two highest margins are further apart they
        // cannot change the label, so the index is not searched (most messages).
        let (mut first, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
        for &m in margins.iter() {
            if m > first {
                (first, second) = (m, first);
            } else if m > second {
                second = m;
            }
        }
        if first - second >= self.params.weight {
            return;
        }
        KNN_SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let KnnScratch {
                hits,
                ranges,
                sims,
                top,
                votes,
            } = &mut *scratch;
            // Directory entries and posting lists sit at hashed positions in arrays larger than
            // the cache: each stage asks for the next stage's lines before any is read, so the
            // misses overlap instead of queueing one behind another.
            hits.clear();
            for (b, v) in q.filter(|&(b, _)| self.indexed[b as usize / 64] >> (b % 64) & 1 == 1) {
                prefetch(&self.start[b as usize + 1]);
                hits.push((b, v));
            }
            ranges.clear();
            for &(b, v) in hits.iter() {
                let (lo, hi) = (self.start[b as usize], self.start[b as usize + 1]);
                // A posting is 8 bytes: one hint per 64-byte line of the list.
                for at in (lo..hi).step_by(8) {
                    prefetch(&self.post[at as usize]);
                }
                ranges.push((lo, hi, v));
            }
            sims.clear();
            sims.resize(self.ys.len(), 0.0);
            for &(lo, hi, v) in ranges.iter() {
                for &(row, x) in &self.post[lo as usize..hi as usize] {
                    sims[row as usize] += v * x;
                }
            }
            // The k most similar rows, highest first; equal similarities by pool row, so ties
            // are deterministic.
            let k = self.params.k;
            top.clear();
            if k == 0 {
                return;
            }
            // A row enters when it beats `floor`: 0 until k rows are in, then the k-th. Blocks
            // of rows none of which beats it (most, once the list fills) are skipped whole.
            let mut floor = 0f32;
            for (block, chunk) in sims.chunks(16).enumerate() {
                if chunk.iter().fold(0f32, |a, &b| if b > a { b } else { a }) <= floor {
                    continue;
                }
                for (i, &sim) in chunk.iter().enumerate() {
                    if sim > floor {
                        let at = top.partition_point(|&(s, _)| s >= sim);
                        if top.len() == k {
                            top.pop();
                        }
                        top.insert(at, (sim, (block * 16 + i) as u32));
                        if top.len() == k {
                            floor = top[k - 1].0;
                        }
                    }
                }
            }
            if top.is_empty() {
                return;
            }
            votes.clear();
            votes.resize(margins.len(), 0.0);
            for &(sim, row) in top.iter() {
                let c = self.ys[row as usize] as usize;
                votes[c] += sim.powf(self.params.power) * self.class_scale[c];
            }
            let total: f32 = votes.iter().sum();
            if total > 0.0 {
                for (m, v) in margins.iter_mut().zip(votes.iter()) {
                    *m += self.params.weight * v / total;
                }
            }
        });
    }

    /// The index after the linear weight rows of the model file: per pool row its class
    /// (u32), then per indexed bucket: bucket (u32), postings (u32), postings × (row u32,
    /// value f32); all little-endian.
    pub fn write(&self, out: &mut Vec<u8>) {
        for &y in &self.ys {
            out.extend_from_slice(&y.to_le_bytes());
        }
        for b in 0..self.start.len() - 1 {
            let (lo, hi) = (self.start[b] as usize, self.start[b + 1] as usize);
            if hi > lo {
                out.extend_from_slice(&(b as u32).to_le_bytes());
                out.extend_from_slice(&((hi - lo) as u32).to_le_bytes());
                for &(row, v) in &self.post[lo..hi] {
                    out.extend_from_slice(&row.to_le_bytes());
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }

    /// Read what `write` wrote: `header` gives the pool's size and class count, `data` must hold
    /// exactly the index. Errors say what is wrong.
    pub fn read(
        header: &KnnHeader,
        classes: usize,
        buckets: usize,
        data: &[u8],
    ) -> Result<Neighbours, String> {
        let u32_at = |at: usize| -> Result<u32, String> {
            data.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| "neighbour index is truncated".to_string())
        };
        let rows = header.pool_rows;
        // Sizes from the header only bound what the data can hold (no allocation on its word).
        let mut ys = Vec::with_capacity(rows.min(data.len() / 4));
        for i in 0..rows {
            let y = u32_at(4 * i)?;
            if y as usize >= classes {
                return Err(format!("neighbour row {i} has class {y} of {classes}"));
            }
            ys.push(y);
        }
        let mut at = 4 * ys.len();
        let mut start = vec![0u32; buckets + 1];
        let mut post = Vec::with_capacity(header.postings.min(data.len() / 8));
        let mut next_bucket = 0usize;
        while at < data.len() {
            let b = u32_at(at)? as usize;
            let len = u32_at(at + 4)? as usize;
            at += 8;
            if b < next_bucket || b >= buckets {
                return Err(format!(
                    "neighbour bucket {b} out of order or outside 0..{buckets}"
                ));
            }
            for s in &mut start[next_bucket + 1..=b] {
                *s = post.len() as u32;
            }
            for _ in 0..len {
                let row = u32_at(at)?;
                let v = f32::from_bits(u32_at(at + 4)?);
                if row as usize >= rows {
                    return Err(format!("neighbour posting names row {row} of {rows}"));
                }
                post.push((row, v));
                at += 8;
            }
            start[b + 1] = post.len() as u32;
            next_bucket = b + 1;
        }
        for s in &mut start[next_bucket + 1..] {
            *s = post.len() as u32;
        }
        if post.len() != header.postings {
            return Err(format!(
                "expected {} neighbour postings, found {}",
                header.postings,
                post.len()
            ));
        }
        Ok(Neighbours::assemble(
            header.params,
            ys,
            classes,
            start,
            post,
        ))
    }

    pub fn header(&self) -> KnnHeader {
        KnnHeader {
            params: self.params,
            pool_rows: self.ys.len(),
            postings: self.post.len(),
        }
    }
}

/// The model header's description of the neighbour index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnHeader {
    pub params: KnnParams,
    pub pool_rows: usize,
    pub postings: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(entries: &[(u32, f32)]) -> SparseVec {
        let n = entries.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
        entries.iter().map(|&(b, v)| (b, v / n)).collect()
    }

    /// Six rows of three classes: bucket 0 is in every row (common), the others are each in one
    /// or two rows; rows 4 and 5 are identical but of different classes.
    fn pool(params: KnnParams) -> Neighbours {
        let rows = [
            unit(&[(0, 1.0), (10, 2.0), (11, 1.0)]),
            unit(&[(0, 1.0), (11, 1.0), (12, 2.0)]),
            unit(&[(0, 1.0), (20, 2.0), (21, 1.0)]),
            unit(&[(0, 1.0), (21, 1.0), (22, 2.0)]),
            unit(&[(0, 1.0), (30, 2.0)]),
            unit(&[(0, 1.0), (30, 2.0)]),
        ];
        let refs: Vec<&SparseVec> = rows.iter().collect();
        Neighbours::build(&refs, &[0, 0, 1, 1, 2, 1], 3, 64, params, 42)
    }

    /// `k` voters; features in more than half of the six rows are common.
    fn params(k: usize) -> KnnParams {
        KnnParams {
            k,
            max_df: 0.5,
            ..KnnParams::default()
        }
    }

    fn added(n: &Neighbours, q: &[(u32, f32)]) -> Vec<f32> {
        let mut m = vec![0.0; 3];
        n.add_votes(unit(q).into_iter(), &mut m);
        m
    }

    #[test]
    fn votes_of_the_nearest_rows_sum_to_the_weight_and_common_features_are_not_indexed() {
        let two = params(2);
        let n = pool(two);
        assert_eq!(n.pool_rows(), 6);
        // Bucket 0 is in all six rows (> 50 %): 16 feature occurrences, 6 of them left out.
        assert_eq!(n.postings(), 16 - 6);
        // A copy of row 0: its two nearest rows are rows 0 and 1, both of class 0.
        let m = added(&n, &[(0, 1.0), (10, 2.0), (11, 1.0)]);
        assert!((m[0] - two.weight).abs() < 1e-6, "{m:?}");
        assert_eq!((m[1], m[2]), (0.0, 0.0));
        // Between classes 0 and 1, four voters: both classes get votes, more for the class of
        // the closer rows.
        let four = pool(params(4));
        let m = added(&four, &[(11, 2.0), (21, 1.0)]);
        assert!(m[0] > m[1] && m[1] > 0.0, "{m:?}");
        assert!((m.iter().sum::<f32>() - two.weight).abs() < 1e-6);
        // Sharing only the common feature, or nothing, with the pool: no votes.
        assert_eq!(added(&n, &[(0, 1.0)]), vec![0.0; 3]);
        assert_eq!(added(&n, &[(40, 1.0)]), vec![0.0; 3]);
        // Margins already decided (top two `weight` apart) are left as they are; closer ones
        // get the votes.
        for (gap, moved) in [(two.weight, false), (two.weight * 0.9, true)] {
            let mut m = vec![gap, 0.0, -1.0];
            n.add_votes(unit(&[(20, 2.0), (21, 1.0)]).into_iter(), &mut m);
            assert_eq!(m != vec![gap, 0.0, -1.0], moved, "gap {gap}: {m:?}");
        }
    }

    #[test]
    fn ties_go_to_the_earlier_row_and_votes_are_class_balanced() {
        let one = pool(params(1));
        // Rows 4 (class 2) and 5 (class 1) are equally near: the earlier row votes.
        let m = added(&one, &[(30, 1.0)]);
        assert!(m[2] > 0.0 && m[1] == 0.0, "{m:?}");
        // With both voting, class 2 (one row of six) outweighs class 1 (three rows of six).
        let two = pool(params(2));
        let m = added(&two, &[(30, 1.0)]);
        assert!((m[2] / m[1] - 3.0).abs() < 1e-4, "{m:?}");
    }

    #[test]
    fn votes_match_a_brute_force_search_over_many_rows() {
        // 100 random rows of 4 classes over 200 buckets (all indexed), 50 random messages: the
        // index and block-skipping scan give the votes of the k most similar rows found by
        // computing every dot product (ties to the earlier row).
        let mut rng = SplitMix64(7);
        let random_row = |rng: &mut SplitMix64| {
            let mut e: Vec<(u32, f32)> = (0..8)
                .map(|_| (rng.below(200) as u32, 1.0 + rng.below(4) as f32))
                .collect();
            e.sort_by_key(|x| x.0);
            e.dedup_by_key(|x| x.0);
            unit(&e)
        };
        let rows: Vec<SparseVec> = (0..100).map(|_| random_row(&mut rng)).collect();
        let ys: Vec<usize> = (0..100).map(|i| (i * 7 + i / 3) % 4).collect();
        let refs: Vec<&SparseVec> = rows.iter().collect();
        let params = KnnParams {
            k: 5,
            max_df: 1.0,
            ..KnnParams::default()
        };
        let n = Neighbours::build(&refs, &ys, 4, 256, params, 1);
        let dot = |a: &SparseVec, b: &SparseVec| -> f32 {
            a.iter()
                .flat_map(|&(i, x)| b.iter().filter(move |e| e.0 == i).map(move |e| x * e.1))
                .sum()
        };
        let scale = class_weights(&ys, 4, true);
        for _ in 0..50 {
            let q = random_row(&mut rng);
            let mut m = vec![0f32; 4];
            n.add_votes(q.iter().copied(), &mut m);
            let mut sims: Vec<(f32, usize)> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (dot(&q, r), i))
                .filter(|s| s.0 > 0.0)
                .collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut votes = vec![0f32; 4];
            for &(sim, i) in sims.iter().take(5) {
                votes[ys[i]] += sim * scale[ys[i]];
            }
            let total: f32 = votes.iter().sum();
            for (c, v) in votes.iter().enumerate() {
                let want = if total > 0.0 {
                    params.weight * v / total
                } else {
                    0.0
                };
                assert!((m[c] - want).abs() < 1e-4, "{m:?} against {votes:?}");
            }
        }
    }

    #[test]
    fn a_large_history_is_sampled_to_the_pool_size_class_by_class() {
        let ys: Vec<usize> = (0..1000)
            .map(|i| usize::from(i % 10 >= 6) + usize::from(i % 10 == 9))
            .collect();
        // 600, 300 and 100 rows of classes 0, 1 and 2.
        let keep = pool_sample(&ys, 3, 100, 42);
        assert!(keep.windows(2).all(|w| w[0] < w[1]));
        let per_class = |keep: &[usize]| {
            let mut n = [0usize; 3];
            keep.iter().for_each(|&i| n[ys[i]] += 1);
            n
        };
        assert_eq!(per_class(&keep), [60, 30, 10]);
        assert_eq!(pool_sample(&ys, 3, 100, 42), keep);
        assert_ne!(pool_sample(&ys, 3, 100, 43), keep);
        // Shares round up, so every class keeps a row; a history within the cap is kept whole.
        assert_eq!(per_class(&pool_sample(&ys, 3, 5, 1)), [3, 2, 1]);
        assert_eq!(pool_sample(&ys, 3, 1000, 1).len(), 1000);
        // The index holds only the sample.
        let rows: Vec<SparseVec> = (0..1000).map(|i| unit(&[(i as u32 % 64, 1.0)])).collect();
        let refs: Vec<&SparseVec> = rows.iter().collect();
        let small = KnnParams {
            max_pool: 100,
            max_df: 1.0,
            ..KnnParams::default()
        };
        assert_eq!(
            Neighbours::build(&refs, &ys, 3, 64, small, 42).pool_rows(),
            100
        );
        // Model headers written before the cap existed read with the default cap.
        let old: KnnParams =
            serde_json::from_str(r#"{"k":10,"power":1.0,"weight":0.5,"max_df":0.05}"#)
                .expect("a session-7 header");
        assert_eq!(old, KnnParams::default());
    }

    #[test]
    fn the_index_reads_back_as_written() {
        let n = pool(KnnParams::default());
        let mut bytes = Vec::new();
        n.write(&mut bytes);
        let back = Neighbours::read(&n.header(), 3, 64, &bytes).expect("reads");
        assert_eq!(back, n);
        let err = Neighbours::read(&n.header(), 3, 64, &bytes[..bytes.len() - 8]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let more = KnnHeader {
            postings: n.postings() + 1,
            ..n.header()
        };
        let err = Neighbours::read(&more, 3, 64, &bytes).unwrap_err();
        assert!(err.contains("postings"), "{err}");
        // Absurd sizes in a header are an error, not an allocation.
        let huge = KnnHeader {
            pool_rows: usize::MAX / 8,
            postings: usize::MAX / 8,
            ..n.header()
        };
        assert!(Neighbours::read(&huge, 3, 64, &bytes).is_err());
        let err = Neighbours::read(&n.header(), 2, 64, &bytes).unwrap_err();
        assert!(err.contains("class"), "{err}");
        let err = Neighbours::read(&n.header(), 3, 16, &bytes).unwrap_err();
        assert!(err.contains("outside"), "{err}");
    }
}
