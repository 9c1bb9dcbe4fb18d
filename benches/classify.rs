//! Classification throughput against plain jieba-rs segmentation of the same texts, one thread.
//! `cargo bench --bench classify`: texts of ~300 characters from the shared train.csv (or generated
//! from the taxonomy vocabulary when it is absent), the fifth the model was not trained on; prints
//! complaints/s of both and their ratio, and the same for the classifier without neighbour votes
//! (`duban train --no-knn`).

use duban::classify::data::{self, Example};
use duban::classify::features::{Featurizer, jieba};
use duban::classify::train::{self, Prepared, TrainConfig};
use duban::classify::{LinearModel, TrainedClassifier};
use duban::engine::taxonomy::Taxonomy;
use indicatif::ProgressBar;
use std::hint::black_box;
use std::time::Instant;

const TEXT_CHARS: usize = 300;
const ROUNDS: usize = 10;

/// ~300-character texts: each row's title and body, repeated up to length and cut there.
fn texts_of(rows: &[Example]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let base = format!("{} {}", r.title, r.body);
            base.chars().cycle().take(TEXT_CHARS).collect()
        })
        .collect()
}

/// Labeled rows: train.csv if present, else sentences of taxonomy vocabulary (a splitmix walk).
fn labeled_rows() -> (Vec<Example>, &'static str) {
    let path = data::shared_dir().join("data/teddy2020c/train.csv");
    if let Ok(rows) = data::read_labeled(&path) {
        return (rows, "train.csv");
    }
    let tax = Taxonomy::builtin();
    let mut rng = train::SplitMix64(1);
    let rows = (0..3000)
        .map(|i| {
            let d = &tax.domain[i % tax.domain.len()];
            let mut body = String::new();
            while body.chars().count() < TEXT_CHARS {
                body.push_str(&d.vocabulary[rng.below(d.vocabulary.len())]);
                body.push_str(["，", "的问题", "严重，", "。"][rng.below(4)]);
            }
            Example {
                title: String::new(),
                body,
                label: Some(d.name.clone()),
            }
        })
        .collect();
    (rows, "generated from config/taxonomy.toml")
}

fn per_second(n: usize, f: impl Fn() -> usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    n as f64 / best
}

fn main() {
    let (rows, source) = labeled_rows();
    // The defaults (with neighbour votes); without them the model scores as `--no-knn` would
    // (same weights; only its temperature, fitted on blended scores, differs, which costs
    // nothing).
    let cfg = TrainConfig::default();
    let featurizer = Featurizer::new(cfg.features.clone());
    let raw = train::featurize_all(&featurizer, &rows, &ProgressBar::hidden());
    let (labels, ys) = train::index_labels(&rows);
    let p = Prepared {
        labels: &labels,
        raw: &raw,
        ys: &ys,
        unlabeled: &[],
        prior: None,
        row_weight: None,
    };
    // Trained on four rows in five and timed on the fifth: a model scores its own training rows
    // with wider margins than new messages, which would flatter the neighbour search (it runs
    // only where the top two margins are close), and a search costs about linearly in the pool,
    // so the pool is most of the file, as in a model trained on all of it.
    let train_rows: Vec<usize> = (0..rows.len()).filter(|i| i % 5 != 0).collect();
    let model: LinearModel = train::fit(&p, &train_rows, &cfg, "bench", &ProgressBar::hidden());
    let linear = TrainedClassifier::new(model.clone().with_neighbours(None), 0.34);
    let clf = TrainedClassifier::new(model, 0.34);
    let held_out: Vec<Example> = rows.iter().step_by(5).cloned().collect();
    let texts = texts_of(&held_out);
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    let bytes: usize = texts.iter().map(String::len).sum();
    let jieba = jieba();

    let seg = per_second(texts.len(), || {
        texts.iter().map(|t| jieba.cut(t, true).len()).sum()
    });
    let classified = |c: &TrainedClassifier| {
        texts
            .iter()
            .filter(|t| c.classify("", t).0 != duban::engine::taxonomy::UNCLASSIFIED)
            .count()
    };
    let cls = per_second(texts.len(), || classified(&clf));
    let without_knn = per_second(texts.len(), || classified(&linear));
    println!(
        "texts: {} from {source}, {:.0} characters ({:.0} bytes) on average, best of {ROUNDS} rounds, one thread",
        texts.len(),
        chars as f64 / texts.len() as f64,
        bytes as f64 / texts.len() as f64,
    );
    println!(
        "jieba-rs segmentation only : {:>9.0} complaints/s ({:.1} MB/s)",
        seg,
        seg * bytes as f64 / texts.len() as f64 / 1e6
    );
    println!("classification (all steps): {:>9.0} complaints/s", cls);
    println!("ratio classification / segmentation: {:.2}", cls / seg);
    println!(
        "without neighbour votes (--no-knn): {:>9.0} complaints/s, ratio {:.2}",
        without_knn,
        without_knn / seg
    );
}
