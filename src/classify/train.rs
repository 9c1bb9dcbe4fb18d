//! Training: hashed tf-idf, a one-vs-rest L2-loss linear SVM solved by dual coordinate descent
//! (as liblinear), optional self-training on unlabeled messages, temperature calibration, k-fold CV.

use indicatif::ProgressBar;
use serde::Serialize;

use super::data::Example;
use super::features::{FeatureConfig, Featurizer, Scratch};
use super::knn::{KnnParams, Neighbours, hashed_part};
use super::lsa::Projection;
use super::model::{LinearModel, TrainInfo, argmax, softmax, sublinear};

/// Sparse vector: (bucket, value).
pub type SparseVec = Vec<(u32, f32)>;

/// Training settings; the defaults are the ones measured in README "Classification".
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub features: FeatureConfig,
    /// SVM cost (inverse regularization).
    pub c: f32,
    /// Maximum passes of dual coordinate descent.
    pub epochs: usize,
    /// Seed of every shuffle.
    pub seed: u64,
    /// Weight each row by n / (classes × rows of its class).
    pub balanced: bool,
    /// Self-training on unlabeled rows: pseudo-label those predicted with at least this
    /// probability (None = off).
    pub self_train_threshold: Option<f32>,
    /// Sample weight of a pseudo-labeled row.
    pub pseudo_weight: f32,
    /// Self-training rounds.
    pub self_train_rounds: usize,
    /// Internal folds used to fit the softmax temperature on out-of-fold margins (0 = fixed).
    pub calibration_folds: usize,
    /// Share of NB-SVM in the model (Wang & Manning 2012: each class's SVM sees the features
    /// scaled by that class's log-count ratio, fitted on the training rows only; the scale is
    /// folded into the weights). 0 = plain SVM, 1 = NB-SVM, in between = both trained and their
    /// margins averaged with this weight (still one linear model).
    pub nb_mix: f32,
    /// Additive smoothing of the NB-SVM presence counts.
    pub nb_alpha: f32,
    /// Buckets in more than this share of the idf documents are dropped (1.0 = keep all).
    pub max_df: f32,
    /// Candidate costs: with two or more, each `fit` picks the one with the best macro-F1 on its
    /// own internal calibration folds (nested CV; needs `calibration_folds` ≥ 2). Empty = `c`.
    pub c_grid: Vec<f32>,
    /// Semi-supervised latent features (`lsa`): dimensions of the subspace fitted on the training
    /// rows and the unlabeled rows (0 = off), and their scale next to the l2-normalized tf-idf.
    pub lsa_dims: usize,
    pub lsa_gain: f32,
    /// Nearest-neighbour votes of the training rows blended into the margins (`knn`; None = off;
    /// on by default).
    pub knn: Option<KnnParams>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            features: FeatureConfig::default(),
            c: 1.0,
            epochs: 30,
            seed: 42,
            balanced: true,
            self_train_threshold: None,
            pseudo_weight: 0.5,
            self_train_rounds: 1,
            calibration_folds: 3,
            nb_mix: 0.5,
            nb_alpha: 1.0,
            max_df: 1.0,
            c_grid: Vec::new(),
            lsa_dims: 0,
            lsa_gain: 1.0,
            knn: Some(KnnParams::default()),
        }
    }
}

/// A tiny deterministic PRNG (splitmix64); no `rand` needed.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Raw signed term counts of every row, computed on all cores (order preserved).
pub fn featurize_all(f: &Featurizer, rows: &[Example], pb: &ProgressBar) -> Vec<SparseVec> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let chunk = rows.len().div_ceil(threads).max(1);
    let parts = crate::util::par::on_threads("a featurizer thread", rows.chunks(chunk), |part| {
        let mut scratch = Scratch::default();
        part.iter()
            .map(|r| {
                f.featurize(&r.title, &r.body, &mut scratch);
                let mut v: SparseVec = scratch.entries().collect();
                v.sort_unstable_by_key(|e| e.0);
                pb.inc(1);
                v
            })
            .collect::<Vec<_>>()
    });
    // A panicking featurizer is a bug, not bad input: re-raise it.
    parts
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .flatten()
        .collect()
}

/// Smoothed idf over `docs` (0 for buckets that never occur or occur in more than `max_df` of
/// the documents).
pub fn idf(docs: &[&SparseVec], buckets: usize, max_df: f32) -> Vec<f32> {
    let mut df = vec![0u32; buckets];
    for d in docs {
        for &(b, _) in d.iter() {
            df[b as usize] += 1;
        }
    }
    let n = docs.len() as f32;
    let max = (max_df * n).max(1.0);
    df.iter()
        .map(|&x| {
            if x == 0 || x as f32 > max {
                0.0
            } else {
                ((1.0 + n) / (1.0 + x as f32)).ln() + 1.0
            }
        })
        .collect()
}

/// Sublinear tf × idf, l2-normalized; buckets with idf 0 are dropped.
pub fn tfidf(raw: &SparseVec, idf: &[f32]) -> SparseVec {
    let mut v: SparseVec = raw
        .iter()
        .filter(|(b, _)| idf[*b as usize] > 0.0)
        .map(|&(b, c)| (b, sublinear(c) * idf[b as usize]))
        .filter(|(_, x)| *x != 0.0)
        .collect();
    let n = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for e in &mut v {
            e.1 /= n;
        }
    }
    v
}

/// NB-SVM feature scale `r[b * k + class]`: the log-count ratio of bucket presence in the rows
/// of the class against the other rows, with additive smoothing `alpha` (Wang & Manning 2012).
/// Buckets absent from `xs` get 0.
pub fn nb_ratios(
    xs: &[&SparseVec],
    ys: &[usize],
    k: usize,
    buckets: usize,
    alpha: f32,
) -> Vec<f32> {
    let mut cnt = vec![0f32; buckets * k];
    let mut all = vec![0f32; buckets];
    for (x, &y) in xs.iter().zip(ys) {
        for &(b, _) in x.iter() {
            cnt[b as usize * k + y] += 1.0;
            all[b as usize] += 1.0;
        }
    }
    let active: Vec<usize> = (0..buckets).filter(|&b| all[b] > 0.0).collect();
    let mut pn = vec![0f64; k];
    let mut qn = vec![0f64; k];
    for &b in &active {
        for c in 0..k {
            let p = cnt[b * k + c];
            pn[c] += (alpha + p) as f64;
            qn[c] += (alpha + all[b] - p) as f64;
        }
    }
    let mut r = vec![0f32; buckets * k];
    for &b in &active {
        for c in 0..k {
            let p = cnt[b * k + c];
            let lp = ((alpha + p) as f64 / pn[c]).ln();
            let lq = ((alpha + all[b] - p) as f64 / qn[c]).ln();
            r[b * k + c] = (lp - lq) as f32;
        }
    }
    r
}

/// Weights `w[b * k + class]` and biases of a one-vs-rest L2-regularized squared-hinge SVM with
/// cost `c`, by dual coordinate descent (Hsieh et al. 2008) over a seeded permutation per epoch.
/// With `scale` (NB-SVM), class `c` sees feature `b` multiplied by `scale[b * k + c]`; the
/// returned weights include the scale, so they apply to the unscaled features.
#[allow(clippy::too_many_arguments)]
pub fn train_svm(
    xs: &[&SparseVec],
    ys: &[usize],
    sample_weight: &[f32],
    k: usize,
    buckets: usize,
    scale: Option<&[f32]>,
    c: f32,
    cfg: &TrainConfig,
    pb: &ProgressBar,
) -> (Vec<f32>, Vec<f32>) {
    let n = xs.len();
    let mut w = vec![0f32; buckets * k];
    let mut bias = vec![0f32; k];
    let mut alpha = vec![0f32; n * k];
    // Diagonal of Q per (row, class): |x ⊙ scale_c|² + 1 (the bias feature).
    let qii: Vec<f32> = xs
        .iter()
        .flat_map(|x| {
            let mut q = vec![1f32; k];
            for &(b, v) in x.iter() {
                for (cc, qq) in q.iter_mut().enumerate() {
                    let s = scale.map_or(1.0, |s| s[b as usize * k + cc]);
                    *qq += v * v * s * s;
                }
            }
            q
        })
        .collect();
    let dii: Vec<f32> = sample_weight.iter().map(|s| 0.5 / (c * s)).collect();
    let ones = vec![1f32; k];
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64(cfg.seed ^ 0x5356_4d00);
    let mut m = vec![0f32; k];
    let mut d = vec![0f32; k];
    for _epoch in 0..cfg.epochs {
        rng.shuffle(&mut order);
        let mut pg_max = vec![f32::NEG_INFINITY; k];
        let mut pg_min = vec![f32::INFINITY; k];
        for &i in &order {
            let x = xs[i];
            m.copy_from_slice(&bias);
            for &(b, v) in x.iter() {
                let row = &w[b as usize * k..(b as usize + 1) * k];
                let sc = scale.map_or(&ones[..], |s| &s[b as usize * k..(b as usize + 1) * k]);
                for ((mm, ww), ss) in m.iter_mut().zip(row).zip(sc) {
                    *mm += v * ww * ss;
                }
            }
            let mut any = false;
            for c in 0..k {
                let y = if ys[i] == c { 1.0 } else { -1.0 };
                let a = &mut alpha[i * k + c];
                let g = y * m[c] - 1.0 + dii[i] * *a;
                let pg = if *a == 0.0 { g.min(0.0) } else { g };
                pg_max[c] = pg_max[c].max(pg);
                pg_min[c] = pg_min[c].min(pg);
                d[c] = 0.0;
                if pg.abs() > 1e-12 {
                    let old = *a;
                    *a = (old - g / (qii[i * k + c] + dii[i])).max(0.0);
                    d[c] = (*a - old) * y;
                    any |= d[c] != 0.0;
                }
            }
            if any {
                for &(b, v) in x.iter() {
                    let row = &mut w[b as usize * k..(b as usize + 1) * k];
                    let sc = scale.map_or(&ones[..], |s| &s[b as usize * k..(b as usize + 1) * k]);
                    for ((ww, dd), ss) in row.iter_mut().zip(&d).zip(sc) {
                        *ww += dd * v * ss;
                    }
                }
                for (bb, dd) in bias.iter_mut().zip(&d) {
                    *bb += dd;
                }
            }
        }
        pb.inc(1);
        let gap = (0..k).map(|c| pg_max[c] - pg_min[c]).fold(0f32, f32::max);
        if gap < 0.05 {
            break;
        }
    }
    if let Some(s) = scale {
        for (ww, ss) in w.iter_mut().zip(s) {
            *ww *= ss;
        }
    }
    (w, bias)
}

/// One classifier of the configured kind (SVM or NB-SVM) on `xs`, cost `c`. Features from
/// `hashed` on are dense latent ones (`lsa`): NB-SVM leaves them unscaled.
#[allow(clippy::too_many_arguments)]
fn learn(
    xs: &[&SparseVec],
    ys: &[usize],
    sw: &[f32],
    k: usize,
    features: usize,
    hashed: usize,
    c: f32,
    cfg: &TrainConfig,
    pb: &ProgressBar,
) -> (Vec<f32>, Vec<f32>) {
    let mix = cfg.nb_mix.clamp(0.0, 1.0);
    let plain = (mix < 1.0).then(|| train_svm(xs, ys, sw, k, features, None, c, cfg, pb));
    let nb = (mix > 0.0).then(|| {
        let mut r = nb_ratios(xs, ys, k, features, cfg.nb_alpha);
        r[hashed * k..].iter_mut().for_each(|v| *v = 1.0);
        train_svm(xs, ys, sw, k, features, Some(&r), c, cfg, pb)
    });
    match (plain, nb) {
        (Some(p), None) => p,
        (None, Some(n)) => n,
        (Some((mut w, mut b)), Some((wn, bn))) => {
            for (a, x) in w.iter_mut().zip(&wn) {
                *a = (1.0 - mix) * *a + mix * x;
            }
            for (a, x) in b.iter_mut().zip(&bn) {
                *a = (1.0 - mix) * *a + mix * x;
            }
            (w, b)
        }
        (None, None) => unreachable!("mix is in [0, 1]"),
    }
}

/// Margins of one tf-idf vector.
pub fn margins(x: &SparseVec, w: &[f32], bias: &[f32]) -> Vec<f32> {
    let k = bias.len();
    let mut m = bias.to_vec();
    for &(b, v) in x {
        for (mm, ww) in m.iter_mut().zip(&w[b as usize * k..(b as usize + 1) * k]) {
            *mm += v * ww;
        }
    }
    m
}

/// Stratified fold number of every row (round-robin within each class after a seeded shuffle).
pub fn stratified_folds(ys: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let k = ys.iter().max().map_or(0, |m| m + 1);
    let mut fold = vec![0; ys.len()];
    let mut rng = SplitMix64(seed ^ 0xF01D);
    let mut offset = 0;
    for c in 0..k {
        let mut idx: Vec<usize> = (0..ys.len()).filter(|&i| ys[i] == c).collect();
        rng.shuffle(&mut idx);
        for (j, &i) in idx.iter().enumerate() {
            fold[i] = (j + offset) % folds;
        }
        offset += idx.len();
    }
    fold
}

/// The softmax temperature minimizing log-loss of `margins` against `ys` (grid search).
pub fn fit_temperature(margins: &[Vec<f32>], ys: &[usize]) -> f32 {
    let mut best = (f64::INFINITY, 1.0f32);
    for step in 0..=120 {
        let t = 0.25 * 1.04f32.powi(step);
        let loss: f64 = margins
            .iter()
            .zip(ys)
            .map(|(m, &y)| -(softmax(m, t)[y].max(1e-9) as f64).ln())
            .sum();
        if loss < best.0 {
            best = (loss, t);
        }
    }
    best.1
}

/// Everything `fit` needs, with features computed once (so CV folds reuse them).
pub struct Prepared<'a> {
    pub labels: &'a [String],
    /// Raw counts of labeled rows and their class index.
    pub raw: &'a [SparseVec],
    pub ys: &'a [usize],
    /// Raw counts of unlabeled rows (idf and self-training).
    pub unlabeled: &'a [SparseVec],
    /// Directions appended to every row as dense features (e.g. a prior model's class weights,
    /// `prior_projection`), folded back into the bucket weights after training.
    pub prior: Option<&'a Projection>,
    /// Per labeled row: its sample weight (× its class weight); None = 1 each.
    pub row_weight: Option<&'a [f32]>,
}

impl<'a> Prepared<'a> {
    /// Labeled rows and unlabeled rows, without prior or row weights.
    pub fn new(
        labels: &'a [String],
        raw: &'a [SparseVec],
        ys: &'a [usize],
        unlabeled: &'a [SparseVec],
    ) -> Prepared<'a> {
        Prepared {
            labels,
            raw,
            ys,
            unlabeled,
            prior: None,
            row_weight: None,
        }
    }
}

/// A prior model's class weights as a projection (`Prepared::prior`), scaled by `gain`: each row
/// then carries the prior's margins (without bias) as features, and the model learns how the
/// prior's classes relate to its own labels. `None` when the bucket counts differ.
pub fn prior_projection(prior: &LinearModel, buckets: usize, gain: f32) -> Option<Projection> {
    if prior.featurizer.buckets() != buckets {
        return None;
    }
    let k = prior.num_classes();
    let rows: Vec<(usize, Vec<f32>)> = prior
        .weight_rows()
        .map(|(b, _, w)| (b, w.iter().map(|x| x * gain).collect()))
        .collect();
    Some(Projection::from_rows(
        buckets,
        k,
        rows.iter().map(|(b, w)| (*b, w.as_slice())),
    ))
}

/// Train on the labeled rows in `train_idx` (+ unlabeled rows); returns the model and the number of
/// pseudo-labeled rows used.
pub fn fit(
    p: &Prepared,
    train_idx: &[usize],
    cfg: &TrainConfig,
    kind: &str,
    pb: &ProgressBar,
) -> LinearModel {
    let k = p.labels.len();
    let buckets = 1usize << cfg.features.buckets_log2;
    let mut idf_docs: Vec<&SparseVec> = train_idx.iter().map(|&i| &p.raw[i]).collect();
    idf_docs.extend(p.unlabeled.iter());
    let idf = idf(&idf_docs, buckets, cfg.max_df);
    let mut xs: Vec<SparseVec> = train_idx.iter().map(|&i| tfidf(&p.raw[i], &idf)).collect();
    let mut ux: Vec<SparseVec> = p.unlabeled.iter().map(|r| tfidf(r, &idf)).collect();
    let ys: Vec<usize> = train_idx.iter().map(|&i| p.ys[i]).collect();
    let base_weight = class_weights(&ys, k, cfg.balanced);
    let sw: Vec<f32> = train_idx
        .iter()
        .zip(&ys)
        .map(|(&i, &y)| base_weight[y] * p.row_weight.map_or(1.0, |w| w[i]))
        .collect();

    // Latent features from the training and unlabeled rows (never from held-out rows), and the
    // prior's directions.
    let lsa = (cfg.lsa_dims > 0).then(|| {
        let docs: Vec<&SparseVec> = xs.iter().chain(&ux).collect();
        Projection::fit(&docs, buckets, cfg.lsa_dims, 1, cfg.seed).scaled(cfg.lsa_gain)
    });
    let proj = match (lsa, p.prior) {
        (None, None) => None,
        (Some(l), None) => Some(l),
        (None, Some(pr)) => Some(pr.clone()),
        (Some(l), Some(pr)) => Some(l.stack(pr)),
    };
    let features = buckets + proj.as_ref().map_or(0, |p| p.dims);
    if let Some(proj) = &proj {
        for x in xs.iter_mut().chain(ux.iter_mut()) {
            *x = proj.augment(x, buckets, 1.0);
        }
    }
    let xs = xs;

    // Cost (nested CV over `c_grid`) and temperature from out-of-fold margins of the supervised
    // model on internal folds of the training rows.
    let grid = if cfg.c_grid.is_empty() {
        vec![cfg.c]
    } else {
        cfg.c_grid.clone()
    };
    let (c, temperature) = if cfg.calibration_folds >= 2 && xs.len() >= 2 * cfg.calibration_folds {
        let folds = stratified_folds(&ys, cfg.calibration_folds, cfg.seed ^ 0xCA1);
        // Each fold's training rows and neighbour pool, the same for every cost.
        let fold_rows: Vec<_> = (0..cfg.calibration_folds)
            .map(|f| {
                let tr: Vec<usize> = (0..xs.len()).filter(|&i| folds[i] != f).collect();
                let xr: Vec<&SparseVec> = tr.iter().map(|&i| &xs[i]).collect();
                let yr: Vec<usize> = tr.iter().map(|&i| ys[i]).collect();
                let sr: Vec<f32> = tr.iter().map(|&i| sw[i]).collect();
                let pool = cfg
                    .knn
                    .map(|params| Neighbours::build(&xr, &yr, k, buckets, params, cfg.seed));
                (xr, yr, sr, pool)
            })
            .collect();
        let mut best: Option<(f64, f32, Vec<Vec<f32>>)> = None;
        for &c in &grid {
            let mut oof = vec![Vec::new(); xs.len()];
            for (f, (xr, yr, sr, pool)) in fold_rows.iter().enumerate() {
                let (w, b) = learn(xr, yr, sr, k, features, buckets, c, cfg, pb);
                for i in (0..xs.len()).filter(|&i| folds[i] == f) {
                    oof[i] = margins(&xs[i], &w, &b);
                    if let Some(pool) = pool {
                        pool.add_votes(hashed_part(&xs[i], buckets), &mut oof[i]);
                    }
                }
            }
            let f1 = if grid.len() > 1 {
                let pred: Vec<Option<usize>> = oof.iter().map(|m| Some(argmax(m).0)).collect();
                score(p.labels, &ys, &pred).macro_f1
            } else {
                0.0
            };
            if best.as_ref().is_none_or(|(b, _, _)| f1 > *b) {
                best = Some((f1, c, oof));
            }
        }
        let (_, c, oof) = best.expect("at least one cost");
        (c, fit_temperature(&oof, &ys))
    } else {
        (grid[0], 5.0)
    };

    let xr: Vec<&SparseVec> = xs.iter().collect();
    let (mut w, mut b) = learn(&xr, &ys, &sw, k, features, buckets, c, cfg, pb);
    let mut pseudo_rows = 0;
    if let Some(threshold) = cfg.self_train_threshold {
        for _round in 0..cfg.self_train_rounds {
            let mut all_x: Vec<&SparseVec> = xs.iter().collect();
            let mut all_y = ys.clone();
            let mut all_w = sw.clone();
            for x in &ux {
                if x.is_empty() {
                    continue;
                }
                let (c, prob) = argmax(&softmax(&margins(x, &w, &b), temperature));
                if prob >= threshold {
                    all_x.push(x);
                    all_y.push(c);
                    all_w.push(cfg.pseudo_weight * base_weight[c]);
                }
            }
            pseudo_rows = all_x.len() - xs.len();
            (w, b) = learn(&all_x, &all_y, &all_w, k, features, buckets, c, cfg, pb);
        }
    }
    if let Some(proj) = &proj {
        w = proj.fold(&w, buckets, k, 1.0);
    }
    let neighbours = cfg
        .knn
        .map(|params| Neighbours::build(&xr, &ys, k, buckets, params, cfg.seed));
    LinearModel::from_parts(
        p.labels.to_vec(),
        cfg.features.clone(),
        &idf,
        &w,
        b,
        temperature,
        TrainInfo {
            kind: kind.to_string(),
            seed: cfg.seed,
            rows: train_idx.len(),
            pseudo_rows,
            c,
            epochs: cfg.epochs,
        },
    )
    .with_neighbours(neighbours)
}

/// Per class: n / (classes × rows of the class) when `balanced` (1 for an absent class), else 1.
pub fn class_weights(ys: &[usize], k: usize, balanced: bool) -> Vec<f32> {
    let mut n = vec![0usize; k];
    for &y in ys {
        n[y] += 1;
    }
    n.iter()
        .map(|&c| {
            if balanced && c > 0 {
                ys.len() as f32 / (k as f32 * c as f32)
            } else {
                1.0
            }
        })
        .collect()
}

/// Per-class precision/recall/F1 and the averages `duban eval` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassScore>,
    /// Rows predicted `unclassified` (count as wrong).
    pub unclassified: usize,
    pub rows: usize,
}

/// Scores of predictions (`None` = unclassified) against truths, over `labels`.
pub fn score(labels: &[String], truth: &[usize], pred: &[Option<usize>]) -> Scores {
    let k = labels.len();
    let (mut tp, mut fp, mut fnn) = (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
    let mut correct = 0;
    for (&t, &p) in truth.iter().zip(pred) {
        if p == Some(t) {
            tp[t] += 1;
            correct += 1;
        } else {
            fnn[t] += 1;
            if let Some(p) = p {
                fp[p] += 1;
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class: Vec<ClassScore> = (0..k)
        .map(|c| {
            let precision = ratio(tp[c], tp[c] + fp[c]);
            let recall = ratio(tp[c], tp[c] + fnn[c]);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            ClassScore {
                label: labels[c].clone(),
                precision,
                recall,
                f1,
                support: tp[c] + fnn[c],
            }
        })
        .collect();
    let present: Vec<&ClassScore> = per_class.iter().filter(|c| c.support > 0).collect();
    Scores {
        accuracy: ratio(correct, truth.len()),
        macro_f1: present.iter().map(|c| c.f1).sum::<f64>() / present.len().max(1) as f64,
        per_class,
        unclassified: pred.iter().filter(|p| p.is_none()).count(),
        rows: truth.len(),
    }
}

/// Class index of every row's label; labels sorted so the model is independent of row order.
pub fn index_labels(rows: &[Example]) -> (Vec<String>, Vec<usize>) {
    let mut labels: Vec<String> = rows.iter().filter_map(|r| r.label.clone()).collect();
    labels.sort();
    labels.dedup();
    let ys = rows
        .iter()
        .map(|r| {
            let l = r.label.as_deref().unwrap_or("");
            labels.iter().position(|x| x == l).unwrap_or(0)
        })
        .collect();
    (labels, ys)
}

/// k-fold stratified cross-validation: out-of-fold predictions of every labeled row, scored.
pub fn cross_validate(p: &Prepared, folds: usize, cfg: &TrainConfig, pb: &ProgressBar) -> Scores {
    let fold = stratified_folds(p.ys, folds, cfg.seed);
    let mut pred = vec![None; p.ys.len()];
    for f in 0..folds {
        let tr: Vec<usize> = (0..p.ys.len()).filter(|&i| fold[i] != f).collect();
        let model = fit(p, &tr, cfg, "cv", pb);
        for i in (0..p.ys.len()).filter(|&i| fold[i] == f) {
            pred[i] = model.predict_raw(&p.raw[i]).map(|(c, _)| c);
        }
    }
    score(p.labels, p.ys, &pred)
}
