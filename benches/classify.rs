//! Classification throughput against plain jieba-rs segmentation of the same texts, one thread.
//! `cargo bench --bench classify`: texts of ~300 characters from the shared train.csv (or generated
//! from the taxonomy vocabulary when it is absent), the half the model was not trained on; prints
//! complaints/s of both and their ratio, and the same for the classifier with neighbour votes
//! (`duban train --knn`).

use duban::classify::data::{self, Example};
use duban::classify::features::{Featurizer, jieba};
use duban::classify::knn::KnnParams;
use duban::classify::train::{self, Prepared, TrainConfig};
use duban::classify::{LinearModel, TrainedClassifier};
use duban::engine::classify::Taxonomy;
use indicatif::ProgressBar;
use std::hint::black_box;
use std::time::Instant;

const TEXT_CHARS: usize = 300;
const ROUNDS: usize = 5;

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
    // Trained with neighbour votes (`--knn`); without them it scores as the default model (same
    // weights; only its temperature, fitted on blended scores, differs, which costs nothing).
    let cfg = TrainConfig {
        knn: Some(KnnParams::default()),
        ..TrainConfig::default()
    };
    let featurizer = Featurizer::new(cfg.features.clone());
    let raw = train::featurize_all(&featurizer, &rows, &ProgressBar::hidden());
    let (labels, ys) = train::index_labels(&rows);
    let p = Prepared {
        labels: &labels,
        raw: &raw,
        ys: &ys,
        unlabeled: &[],
    };
    // Trained on every other row and timed on the rest: a model scores its own training rows
    // with wider margins than new messages, which would flatter the neighbour search (it runs
    // only where the top two margins are close).
    let even: Vec<usize> = (0..rows.len()).step_by(2).collect();
    let model: LinearModel = train::fit(&p, &even, &cfg, "bench", &ProgressBar::hidden());
    let clf = TrainedClassifier::new(model.clone().with_neighbours(None), 0.34);
    let knn = TrainedClassifier::new(model, 0.34);
    let held_out: Vec<Example> = rows.iter().skip(1).step_by(2).cloned().collect();
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
            .filter(|t| c.classify("", t).0 != duban::engine::classify::UNCLASSIFIED)
            .count()
    };
    let cls = per_second(texts.len(), || classified(&clf));
    let with_knn = per_second(texts.len(), || classified(&knn));
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
        "with neighbour votes (--knn): {:>8.0} complaints/s, ratio {:.2}",
        with_knn,
        with_knn / seg
    );
}
