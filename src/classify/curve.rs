//! Learning curves of labeling strategies (`duban eval --active`): starting from no labels, rows
//! of a labeled file are chosen by random draws, by one diversity pick, or by rounds of
//! `label suggest` (diversity first, then uncertainty + diversity with the model of the labels so
//! far), their labels revealed, a model trained, and macro-F1 measured on held-out folds.

use indicatif::ProgressBar;
use serde::Serialize;

use super::active::{self, Embedding, SuggestConfig};
use super::data::Example;
use super::train::{self, Prepared, SparseVec, SplitMix64, TrainConfig};

/// What `duban eval --active` runs.
#[derive(Debug, Clone)]
pub struct CurveConfig {
    /// Label budgets at which a model is trained and scored (ascending).
    pub budgets: Vec<usize>,
    /// Labels added per round of the active strategy.
    pub round: usize,
    pub folds: usize,
    /// Folds actually run per fold seed (≤ `folds`; each holds out one fold).
    pub runs_per_seed: usize,
    pub fold_seeds: Vec<u64>,
    pub suggest: SuggestConfig,
    pub train: TrainConfig,
    /// Give the pool's rows (labels hidden) to training as unlabeled messages.
    pub pool_unlabeled: bool,
    /// The prior whose class weights every model sees as features (`train::prior_projection`).
    pub prior: PriorKind,
    pub prior_gain: f32,
}

/// Which weak prior the trained models lean on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PriorKind {
    /// None: labels alone.
    None,
    /// The taxonomy model (the built-in taxonomy's descriptions and terms).
    Taxonomy,
    /// The weak model of the taxonomy with the pool's rows as unlabeled messages.
    Weak,
}

/// The strategies compared.
pub const STRATEGIES: [&str; 3] = ["random", "diverse", "active"];

/// Macro-F1 of one strategy at one budget in one held-out run.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    pub strategy: &'static str,
    pub budget: usize,
    pub fold_seed: u64,
    pub fold: usize,
    pub macro_f1: f64,
    pub accuracy: f64,
}

fn train_and_score(
    p: &Prepared,
    labeled: &[usize],
    test: &[usize],
    cfg: &TrainConfig,
) -> (super::model::LinearModel, train::Scores) {
    let model = train::fit(p, labeled, cfg, "curve", &ProgressBar::hidden());
    let truth: Vec<usize> = test.iter().map(|&i| p.ys[i]).collect();
    let pred: Vec<Option<usize>> = test
        .iter()
        .map(|&i| model.predict_raw(&p.raw[i]).map(|(c, _)| c))
        .collect();
    let s = train::score(p.labels, &truth, &pred);
    (model, s)
}

/// The prior model of a run: trained on the taxonomy, with the pool's texts (labels hidden) as
/// unlabeled messages for `Weak`.
fn prior_model(
    kind: PriorKind,
    pool_texts: Vec<Example>,
    cfg: &TrainConfig,
) -> Option<super::model::LinearModel> {
    let unlabeled = match kind {
        PriorKind::None => return None,
        PriorKind::Taxonomy => Vec::new(),
        PriorKind::Weak => pool_texts,
    };
    let weak_cfg = TrainConfig {
        self_train_threshold: (!unlabeled.is_empty()).then_some(0.9),
        ..cfg.clone()
    };
    let tax = crate::engine::taxonomy::Taxonomy::builtin();
    let weak = super::weak::WeakConfig::default();
    Some(
        super::weak::train_weak(
            &tax,
            &[],
            &unlabeled,
            &weak,
            &weak_cfg,
            &ProgressBar::hidden(),
        )
        .0,
    )
}

/// Every strategy's score at every budget, for every held-out run.
pub fn learning_curves(
    rows: &[Example],
    labels: &[String],
    raw: &[SparseVec],
    ys: &[usize],
    cfg: &CurveConfig,
    pb: &ProgressBar,
) -> Vec<CurvePoint> {
    let buckets = 1usize << cfg.train.features.buckets_log2;
    let mut out = Vec::new();
    for &seed in &cfg.fold_seeds {
        let fold = train::stratified_folds(ys, cfg.folds, seed);
        for f in 0..cfg.runs_per_seed.min(cfg.folds) {
            let test: Vec<usize> = (0..ys.len()).filter(|&i| fold[i] == f).collect();
            let pool: Vec<usize> = (0..ys.len()).filter(|&i| fold[i] != f).collect();
            let pool_raw: Vec<SparseVec> = pool.iter().map(|&i| raw[i].clone()).collect();
            let unlabeled: &[SparseVec] = if cfg.pool_unlabeled { &pool_raw } else { &[] };
            let pool_texts = pool
                .iter()
                .map(|&i| Example {
                    label: None,
                    ..rows[i].clone()
                })
                .collect();
            let prior = prior_model(cfg.prior, pool_texts, &cfg.train)
                .and_then(|m| train::prior_projection(&m, buckets, cfg.prior_gain));
            let p = Prepared {
                prior: prior.as_ref(),
                ..Prepared::new(labels, raw, ys, unlabeled)
            };
            let sc = SuggestConfig {
                seed: seed ^ (f as u64) << 8,
                ..cfg.suggest.clone()
            };
            let embedding = Embedding::new(&pool_raw, buckets, &sc);
            let mut point = |strategy, budget, s: &train::Scores| {
                out.push(CurvePoint {
                    strategy,
                    budget,
                    fold_seed: seed,
                    fold: f,
                    macro_f1: s.macro_f1,
                    accuracy: s.accuracy,
                });
                pb.inc(1);
            };
            // Random draws: prefixes of one seeded shuffle of the pool.
            let mut order = pool.clone();
            SplitMix64(sc.seed ^ 0x2A4D).shuffle(&mut order);
            for &b in &cfg.budgets {
                let labeled = &order[..b.min(order.len())];
                point(
                    "random",
                    b,
                    &train_and_score(&p, labeled, &test, &cfg.train).1,
                );
            }
            // One diversity pick of each budget.
            for &b in &cfg.budgets {
                let none = vec![false; pool.len()];
                let labeled: Vec<usize> = active::suggest(&embedding, &none, None, b, &sc)
                    .iter()
                    .map(|s| pool[s.row])
                    .collect();
                point(
                    "diverse",
                    b,
                    &train_and_score(&p, &labeled, &test, &cfg.train).1,
                );
            }
            // Rounds: diversity first, then the model of the labels so far.
            let mut taken = vec![false; pool.len()];
            let mut labeled: Vec<usize> = Vec::new();
            let mut model = None;
            for &b in &cfg.budgets {
                while labeled.len() < b.min(pool.len()) {
                    let want = (b - labeled.len()).min(cfg.round.max(1));
                    let unc = model
                        .as_ref()
                        .map(|m| active::uncertainty_raw(m, &pool_raw));
                    let picks = active::suggest(&embedding, &taken, unc.as_deref(), want, &sc);
                    if picks.is_empty() {
                        break;
                    }
                    for s in picks {
                        taken[s.row] = true;
                        labeled.push(pool[s.row]);
                    }
                    if labeled.len() < b {
                        model = Some(train::fit(
                            &p,
                            &labeled,
                            &cfg.train,
                            "curve",
                            &ProgressBar::hidden(),
                        ));
                    }
                }
                let (m, s) = train_and_score(&p, &labeled, &test, &cfg.train);
                model = Some(m);
                point("active", b, &s);
            }
        }
    }
    out
}

/// Mean, lowest and highest macro-F1 per strategy and budget.
#[derive(Debug, Clone, Serialize)]
pub struct CurveSummary {
    pub strategy: &'static str,
    pub budget: usize,
    pub runs: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

pub fn summarize(points: &[CurvePoint], budgets: &[usize]) -> Vec<CurveSummary> {
    let mut out = Vec::new();
    for strategy in STRATEGIES {
        for &budget in budgets {
            let v: Vec<f64> = points
                .iter()
                .filter(|p| p.strategy == strategy && p.budget == budget)
                .map(|p| p.macro_f1)
                .collect();
            if v.is_empty() {
                continue;
            }
            out.push(CurveSummary {
                strategy,
                budget,
                runs: v.len(),
                mean: v.iter().sum::<f64>() / v.len() as f64,
                min: v.iter().cloned().fold(f64::INFINITY, f64::min),
                max: v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            });
        }
    }
    out
}
