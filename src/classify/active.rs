//! Choosing the complaints whose labels would teach the classifier most (active learning): by
//! diversity alone without a model, by uncertainty and diversity with one (`duban label suggest`).
//!
//! Texts are embedded once: hashed tf-idf (the classifier's features, idf over the whole pool),
//! projected on the pool's top latent subspace (`lsa`), l2-normalized, so cosine similarity
//! measures how alike two complaints are. Then:
//! - **without a model** the unlabeled rows are clustered into `n` groups (spherical k-means,
//!   k-means++ seeding) and each group's most central row is suggested, the largest groups
//!   first: a sample that covers the kinds of complaints in proportion (diversity alone);
//! - **with a model** each row's uncertainty is `1 − (p₁ − p₂)`, the gap between its two most
//!   probable labels; the most uncertain `candidates_per_pick × n` rows are clustered into `n`
//!   groups and each group's most uncertain row is suggested (uncertainty, spread over the kinds
//!   of complaints instead of n near-copies of one confusing text).
//!
//! Everything is deterministic for a seed (splitmix64 draws, ties broken by row order).

use super::model::{LinearModel, softmax};
use super::train::{SparseVec, SplitMix64, idf, tfidf};

/// How suggestions are chosen; the defaults are the ones measured in README "Classification".
#[derive(Debug, Clone, PartialEq)]
pub struct SuggestConfig {
    pub seed: u64,
    /// Dimensions of the latent space the diversity is measured in.
    pub dims: usize,
    /// With a model: how many of the most uncertain rows per suggestion are clustered.
    pub candidates_per_pick: f32,
    /// Lloyd iterations of the k-means.
    pub iterations: usize,
}

impl Default for SuggestConfig {
    fn default() -> Self {
        SuggestConfig {
            seed: 42,
            dims: 64,
            candidates_per_pick: 4.0,
            iterations: 8,
        }
    }
}

/// Every row of a pool as a unit vector in a small latent space.
#[derive(Debug, Clone)]
pub struct Embedding {
    pub dims: usize,
    /// `rows × dims`, row-major; a featureless row is all zeros.
    pub points: Vec<f32>,
}

impl Embedding {
    /// Embed rows given as raw signed counts per bucket (`train::featurize_all`).
    pub fn new(raw: &[SparseVec], buckets: usize, cfg: &SuggestConfig) -> Embedding {
        let docs: Vec<&SparseVec> = raw.iter().collect();
        let idf = idf(&docs, buckets, 1.0);
        let xs: Vec<SparseVec> = raw.iter().map(|r| tfidf(r, &idf)).collect();
        let refs: Vec<&SparseVec> = xs.iter().collect();
        let dims = cfg.dims.clamp(1, raw.len().max(1));
        let proj = super::lsa::Projection::fit(&refs, buckets, dims, 2, cfg.seed);
        let mut points = Vec::with_capacity(xs.len() * dims);
        for x in &xs {
            let mut z = proj.project(x);
            normalize(&mut z);
            points.extend(z);
        }
        Embedding { dims, points }
    }

    pub fn len(&self) -> usize {
        self.points.len() / self.dims.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.points[i * self.dims..(i + 1) * self.dims]
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Uncertainty `1 − (p₁ − p₂)` of a model's class probabilities (`None`: no known feature).
pub fn uncertainty_of(probabilities: Option<&[f32]>) -> Option<f32> {
    let p = probabilities?;
    let (mut a, mut b) = (0f32, 0f32);
    for &x in p {
        if x > a {
            b = a;
            a = x;
        } else if x > b {
            b = x;
        }
    }
    Some(1.0 - (a - b))
}

/// Uncertainty of every row (raw counts hashed as the model's featurizer does).
pub fn uncertainty_raw(model: &LinearModel, raw: &[SparseVec]) -> Vec<Option<f32>> {
    raw.iter()
        .map(|r| {
            let m = model.margins_of(r.iter().copied()).map(|(m, _)| m);
            uncertainty_of(m.map(|m| softmax(&m, model.temperature)).as_deref())
        })
        .collect()
}

/// One suggested row.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub row: usize,
    /// With a model: how unsure it is of this row (0 = sure, 1 = a tie).
    pub uncertainty: Option<f32>,
    /// Rows of the group this one stands for.
    pub group_size: usize,
}

/// Spherical k-means of the rows `members` into `k` groups (k-means++ seeding by `rng`): the
/// group of each member and the unit centroids.
fn kmeans(
    e: &Embedding,
    members: &[usize],
    k: usize,
    iterations: usize,
    rng: &mut SplitMix64,
) -> (Vec<usize>, Vec<Vec<f32>>) {
    let m = members.len();
    let mut centroids: Vec<Vec<f32>> = Vec::with_capacity(k);
    // k-means++: each next centre drawn with probability ∝ squared distance to the nearest one.
    let mut taken = vec![false; m];
    let first = rng.below(m);
    taken[first] = true;
    centroids.push(e.row(members[first]).to_vec());
    let mut d2: Vec<f32> = members
        .iter()
        .map(|&i| dist2(e.row(i), &centroids[0]))
        .collect();
    while centroids.len() < k {
        let total: f64 = (0..m).filter(|&j| !taken[j]).map(|j| d2[j] as f64).sum();
        // Every member left sits on a centre already: take the next one in order.
        let mut pick = (0..m).find(|&j| !taken[j]).unwrap_or(0);
        if total > 0.0 {
            let target = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
            let mut acc = 0f64;
            for j in (0..m).filter(|&j| !taken[j] && d2[j] > 0.0) {
                acc += d2[j] as f64;
                pick = j;
                if acc >= target {
                    break;
                }
            }
        }
        taken[pick] = true;
        let c = e.row(members[pick]).to_vec();
        for (j, &i) in members.iter().enumerate() {
            d2[j] = d2[j].min(dist2(e.row(i), &c));
        }
        centroids.push(c);
    }
    let mut assign = vec![0usize; m];
    for it in 0..=iterations {
        let mut moved = false;
        for (j, &i) in members.iter().enumerate() {
            let p = e.row(i);
            let best = nearest(p, &centroids);
            moved |= best != assign[j];
            assign[j] = best;
        }
        if it == iterations || (it > 0 && !moved) {
            break;
        }
        let mut sums = vec![vec![0f32; e.dims]; k];
        let mut counts = vec![0usize; k];
        for (j, &i) in members.iter().enumerate() {
            counts[assign[j]] += 1;
            for (s, x) in sums[assign[j]].iter_mut().zip(e.row(i)) {
                *s += x;
            }
        }
        for (c, (s, n)) in centroids.iter_mut().zip(sums.into_iter().zip(counts)) {
            // An emptied group keeps its centre.
            if n > 0 {
                *c = s;
                normalize(c);
            }
        }
    }
    (assign, centroids)
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(p: &[f32], centroids: &[Vec<f32>]) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (c, v) in centroids.iter().enumerate() {
        let s = dot(p, v);
        if s > best.1 {
            best = (c, s);
        }
    }
    best.0
}

/// The `n` rows most worth labeling among those not `skip`ped (see the module comment);
/// `uncertainty` (one per row) comes from a model, `None` without one. Fewer than `n` only when
/// fewer rows are left.
pub fn suggest(
    e: &Embedding,
    skip: &[bool],
    uncertainty: Option<&[Option<f32>]>,
    n: usize,
    cfg: &SuggestConfig,
) -> Vec<Suggestion> {
    let mut rng = SplitMix64(cfg.seed ^ 0xAC71_5E1E);
    // Featureless rows (all-zero embedding) teach nothing: never suggested.
    let zero = |i: usize| e.row(i).iter().all(|&x| x == 0.0);
    let mut members: Vec<usize> = (0..e.len())
        .filter(|&i| !skip.get(i).copied().unwrap_or(false) && !zero(i))
        .collect();
    if n == 0 || members.is_empty() {
        return Vec::new();
    }
    let unc = |i: usize| uncertainty.and_then(|u| u.get(i).copied().flatten());
    if let Some(u) = uncertainty {
        members.retain(|&i| u.get(i).copied().flatten().is_some());
        // The most uncertain first (ties by row order), then cut to the candidates.
        members.sort_by(|&a, &b| {
            unc(b)
                .unwrap_or(0.0)
                .total_cmp(&unc(a).unwrap_or(0.0))
                .then(a.cmp(&b))
        });
        let keep = ((n as f32 * cfg.candidates_per_pick.max(1.0)).ceil() as usize).max(n);
        members.truncate(keep);
        members.sort_unstable();
        if members.is_empty() {
            return Vec::new();
        }
    }
    let k = n.min(members.len());
    let (assign, centroids) = kmeans(e, &members, k, cfg.iterations, &mut rng);
    // Per group: its size and its representative.
    let mut best: Vec<Option<(usize, f32)>> = vec![None; k];
    let mut sizes = vec![0usize; k];
    for (j, &i) in members.iter().enumerate() {
        let g = assign[j];
        sizes[g] += 1;
        let score = match uncertainty {
            Some(_) => unc(i).unwrap_or(0.0),
            None => dot(e.row(i), &centroids[g]),
        };
        if best[g].is_none_or(|(_, s)| score > s) {
            best[g] = Some((i, score));
        }
    }
    let mut out: Vec<Suggestion> = best
        .iter()
        .zip(&sizes)
        .filter_map(|(b, &size)| {
            b.map(|(row, _)| Suggestion {
                row,
                uncertainty: unc(row),
                group_size: size,
            })
        })
        .collect();
    // Groups k-means left empty: fill with the next rows by the same order of merit.
    if out.len() < k {
        let taken: std::collections::HashSet<usize> = out.iter().map(|s| s.row).collect();
        let mut rest: Vec<usize> = members
            .iter()
            .copied()
            .filter(|i| !taken.contains(i))
            .collect();
        rest.sort_by(|&a, &b| {
            unc(b)
                .unwrap_or(0.0)
                .total_cmp(&unc(a).unwrap_or(0.0))
                .then(a.cmp(&b))
        });
        out.extend(rest.into_iter().take(k - out.len()).map(|row| Suggestion {
            row,
            uncertainty: unc(row),
            group_size: 1,
        }));
    }
    match uncertainty {
        Some(_) => out.sort_by(|a, b| {
            b.uncertainty
                .unwrap_or(0.0)
                .total_cmp(&a.uncertainty.unwrap_or(0.0))
                .then(a.row.cmp(&b.row))
        }),
        None => out.sort_by(|a, b| b.group_size.cmp(&a.group_size).then(a.row.cmp(&b.row))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows as raw counts: three topics of distinct buckets, `per` rows each, slightly varied.
    fn three_topics(per: usize) -> Vec<SparseVec> {
        let mut rows = Vec::new();
        for t in 0..3u32 {
            for j in 0..per as u32 {
                let base = t * 100;
                rows.push(vec![
                    (base, 2.0),
                    (base + 1, 1.0),
                    (base + 2 + j % 5, 1.0),
                    (1000 + j % 7, 1.0),
                ]);
            }
        }
        rows.iter_mut()
            .for_each(|r| r.sort_unstable_by_key(|e| e.0));
        rows
    }

    fn cfg() -> SuggestConfig {
        SuggestConfig {
            dims: 8,
            ..SuggestConfig::default()
        }
    }

    #[test]
    fn without_a_model_it_covers_every_kind_of_row_and_is_deterministic() {
        let raw = three_topics(20);
        let e = Embedding::new(&raw, 2048, &cfg());
        let skip = vec![false; raw.len()];
        let picks = suggest(&e, &skip, None, 3, &cfg());
        assert_eq!(picks.len(), 3);
        let mut topics: Vec<usize> = picks.iter().map(|s| s.row / 20).collect();
        topics.sort_unstable();
        assert_eq!(topics, vec![0, 1, 2], "{picks:?}");
        assert_eq!(picks, suggest(&e, &skip, None, 3, &cfg()));
        // Skipped rows are never suggested; asking for more than is left gives what is left.
        let mut skip = vec![true; raw.len()];
        skip[5] = false;
        skip[45] = false;
        let rows: Vec<usize> = suggest(&e, &skip, None, 10, &cfg())
            .iter()
            .map(|s| s.row)
            .collect();
        assert_eq!(rows, vec![5, 45]);
    }

    #[test]
    fn with_a_model_it_takes_the_uncertain_rows_spread_over_groups() {
        let raw = three_topics(20);
        let e = Embedding::new(&raw, 2048, &cfg());
        let skip = vec![false; raw.len()];
        // Topic 0 is sure; topics 1 and 2 are uncertain, a few rows of each most of all.
        let unc: Vec<Option<f32>> = (0..raw.len())
            .map(|i| match i / 20 {
                0 => Some(0.05),
                _ if i % 20 < 3 => Some(0.9),
                _ => Some(0.6),
            })
            .collect();
        let picks = suggest(&e, &skip, Some(&unc), 2, &cfg());
        let topics: Vec<usize> = picks.iter().map(|s| s.row / 20).collect();
        // One from each uncertain topic (not two near-copies of one), each its most uncertain.
        assert!(topics.contains(&1) && topics.contains(&2), "{picks:?}");
        assert!(
            picks.iter().all(|s| s.uncertainty == Some(0.9)),
            "{picks:?}"
        );
        // Rows without a known feature (no uncertainty) are left out.
        let none: Vec<Option<f32>> = vec![None; raw.len()];
        assert!(suggest(&e, &skip, Some(&none), 2, &cfg()).is_empty());
    }

    #[test]
    fn uncertainty_is_the_gap_between_the_two_best() {
        assert_eq!(uncertainty_of(None), None);
        let u = uncertainty_of(Some(&[0.7, 0.2, 0.1])).expect("some");
        assert!((u - 0.5).abs() < 1e-6, "{u}");
        assert_eq!(uncertainty_of(Some(&[0.5, 0.5])), Some(1.0));
    }
}
