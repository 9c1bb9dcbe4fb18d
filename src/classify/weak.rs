//! Ten-domain models without hand-labeled rows (weak supervision + self-training): vocabulary and
//! category-tree terms seed labels on unlabeled messages, a linear model learns from them. With no
//! unlabeled messages and no tree (steps 1, 2 and 4 then do nothing) it is the taxonomy model
//! (`classify::taxonomy_model`, `[engine] classifier = "taxonomy-model"`).
//!
//! How (see also README "Classification"):
//! 1. Terms: each domain's `vocabulary` (weight 1). Each second/third-level name of the category tree
//!    (taxonomy.csv) is scored by the domain vocabulary it contains; a name with one clear winning
//!    domain gives that domain its jieba words (≥ 2 characters, weight 0.5). Words that would go to
//!    several domains, or occur in more than 10 % of the unlabeled messages, are dropped.
//! 2. Seeds: an unlabeled message is seed-labeled with the domain of the highest term score
//!    (term length × (2 × title hits + min(body hits, 3)) × weight) when that score is at least
//!    `min_seed_score` and at least `min_seed_share` of the message's total term score.
//! 3. Training rows: the seeds, plus per domain one row of its description, one row per
//!    vocabulary term and one per example complaint (so that a domain with few seeds still has
//!    its words).
//! 4. Self-training: the linear model (train.rs) pseudo-labels the remaining unlabeled messages it
//!    predicts with probability ≥ `self_train_threshold` and is trained again with them.
//!
//! Complaints below the engine's `min_domain_confidence` are `unclassified`.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::collections::HashMap;
use std::path::Path;

use super::data::Example;
use super::features::{Featurizer, jieba};
use super::model::LinearModel;
use super::train::{Prepared, TrainConfig, featurize_all, fit};
use crate::engine::taxonomy::Taxonomy;

/// Knobs of the weak-supervision recipe (defaults measured on the shared unlabeled messages).
#[derive(Debug, Clone, PartialEq)]
pub struct WeakConfig {
    pub min_seed_score: f32,
    pub min_seed_share: f32,
    pub category_term_weight: f32,
    /// A category word occurring in more than this share of unlabeled messages is too generic.
    pub max_term_doc_share: f32,
    /// Weight of a bureau's labeled row against a seed row (`train_weak_labeled`).
    pub label_weight: f32,
}

impl Default for WeakConfig {
    fn default() -> Self {
        WeakConfig {
            min_seed_score: 4.0,
            min_seed_share: 0.6,
            category_term_weight: 0.5,
            max_term_doc_share: 0.10,
            label_weight: 4.0,
        }
    }
}

/// Weighted domain terms, matched as substrings.
#[derive(Debug, Clone, Default)]
pub struct DomainTerms {
    /// term → (domain index, weight)
    terms: HashMap<String, (usize, f32)>,
    max_chars: usize,
}

impl DomainTerms {
    pub fn from_vocabulary(tax: &Taxonomy) -> DomainTerms {
        let mut t = DomainTerms::default();
        for (d, dom) in tax.domain.iter().enumerate() {
            for term in &dom.vocabulary {
                t.insert(term, d, 1.0);
            }
        }
        t
    }

    fn insert(&mut self, term: &str, domain: usize, weight: f32) {
        let n = term.chars().count();
        if n == 0 {
            return;
        }
        self.max_chars = self.max_chars.max(n);
        self.terms
            .entry(term.to_string())
            .or_insert((domain, weight));
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn get(&self, term: &str) -> Option<(usize, f32)> {
        self.terms.get(term).copied()
    }

    /// Per-domain hit counts of every term occurrence in `text` (all substrings up to the
    /// longest term), capped per term at `cap`; score = length × hits × weight × `mult`.
    fn score_into(&self, text: &str, mult: f32, cap: usize, scores: &mut [f32]) {
        let idx: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let mut hits: HashMap<&str, usize> = HashMap::new();
        for s in 0..idx.len() {
            for len in 2..=self.max_chars {
                let Some(&e) = idx.get(s + len) else { break };
                let sub = &text[idx[s]..e];
                if self.terms.contains_key(sub) {
                    *hits.entry(sub).or_default() += 1;
                }
            }
        }
        for (term, n) in hits {
            let (d, w) = self.terms[term];
            scores[d] += term.chars().count() as f32 * w * mult * n.min(cap) as f32;
        }
    }

    /// Term score of each domain for one complaint (title hits count twice, body hits at most 3).
    pub fn scores(&self, title: &str, body: &str, domains: usize) -> Vec<f32> {
        let mut s = vec![0f32; domains];
        self.score_into(title, 2.0, usize::MAX, &mut s);
        self.score_into(body, 1.0, 3, &mut s);
        s
    }
}

/// Category-tree rows (二级分类, 三级分类 names) of a taxonomy.csv.
pub fn read_category_names(path: &Path) -> Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let mut names = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: bad CSV record {}", path.display(), i + 2))?;
        // Level 2 and 3 only; level 1 names are the old categories that the domains replace.
        let l2 = rec.get(1).unwrap_or("").trim();
        let l3 = rec.get(2).unwrap_or("").trim();
        names.push(format!("{l2} {l3}"));
    }
    Ok(names)
}

/// Add the words of category names that the vocabulary assigns to exactly one domain.
pub fn add_category_terms(
    terms: &mut DomainTerms,
    names: &[String],
    domains: usize,
    unlabeled: &[Example],
    cfg: &WeakConfig,
) -> usize {
    let vocab = terms.clone();
    let mut word_domains: HashMap<String, Vec<usize>> = HashMap::new();
    for name in names {
        let s = vocab.scores("", name, domains);
        let total: f32 = s.iter().sum();
        let (best, top) = s
            .iter()
            .enumerate()
            .fold((0, 0f32), |a, (i, &x)| if x > a.1 { (i, x) } else { a });
        if total <= 0.0 || top < 0.75 * total {
            continue;
        }
        for tok in jieba().cut(name, false) {
            let w = tok.word.trim();
            if w.chars().count() >= 2 && w.chars().all(char::is_alphanumeric) {
                let e = word_domains.entry(w.to_string()).or_default();
                if !e.contains(&best) {
                    e.push(best);
                }
            }
        }
    }
    let mut candidates: Vec<(String, usize)> = word_domains
        .into_iter()
        .filter(|(w, ds)| ds.len() == 1 && vocab.get(w).is_none())
        .map(|(w, ds)| (w, ds[0]))
        .collect();
    candidates.sort();
    let limit = (cfg.max_term_doc_share * unlabeled.len() as f32).max(1.0) as usize;
    let mut added = 0;
    for (w, d) in candidates {
        let df = unlabeled
            .iter()
            .filter(|r| r.title.contains(&w) || r.body.contains(&w))
            .count();
        if unlabeled.is_empty() || df <= limit {
            terms.insert(&w, d, cfg.category_term_weight);
            added += 1;
        }
    }
    added
}

/// Seed label (domain index) of each message, or `None` when the terms are not decisive.
pub fn seed_labels(
    terms: &DomainTerms,
    rows: &[Example],
    domains: usize,
    cfg: &WeakConfig,
) -> Vec<Option<usize>> {
    rows.iter()
        .map(|r| {
            let s = terms.scores(&r.title, &r.body, domains);
            let total: f32 = s.iter().sum();
            let (best, top) = s
                .iter()
                .enumerate()
                .fold((0, 0f32), |a, (i, &x)| if x > a.1 { (i, x) } else { a });
            (top >= cfg.min_seed_score && top >= cfg.min_seed_share * total).then_some(best)
        })
        .collect()
}

/// What `train_weak` did, for the CLI and README.
#[derive(Debug, Clone, PartialEq)]
pub struct WeakReport {
    pub category_terms: usize,
    pub seeds_per_domain: Vec<usize>,
    pub unlabeled: usize,
    /// Every labeled row's label is a domain of the taxonomy (`train_weak_with_labels`).
    pub labels_are_domains: bool,
}

/// Train the default model over the taxonomy's domains from unlabeled messages.
pub fn train_weak(
    tax: &Taxonomy,
    category_names: &[String],
    unlabeled: &[Example],
    weak: &WeakConfig,
    cfg: &TrainConfig,
    pb: &ProgressBar,
) -> (LinearModel, WeakReport) {
    train_weak_labeled(tax, category_names, unlabeled, &[], weak, cfg, pb)
}

/// `train_weak` with the bureau's labeled rows (their labels are domains of the taxonomy) among
/// the training rows, each weighing `weak.label_weight` seed rows; a labeled text is never also
/// a seed. A handful of labels nudges the weak model, many labels dominate it.
pub fn train_weak_labeled(
    tax: &Taxonomy,
    category_names: &[String],
    unlabeled: &[Example],
    labeled: &[Example],
    weak: &WeakConfig,
    cfg: &TrainConfig,
    pb: &ProgressBar,
) -> (LinearModel, WeakReport) {
    let k = tax.domain.len();
    let mut terms = DomainTerms::from_vocabulary(tax);
    let category_terms = add_category_terms(&mut terms, category_names, k, unlabeled, weak);
    let seeds = seed_labels(&terms, unlabeled, k, weak);
    let known: std::collections::HashSet<(&str, &str)> = labeled
        .iter()
        .map(|r| (r.title.as_str(), r.body.as_str()))
        .collect();

    let mut rows: Vec<Example> = Vec::new();
    let mut ys: Vec<usize> = Vec::new();
    let mut weights: Vec<f32> = Vec::new();
    for r in labeled {
        let label = r.label.as_deref().unwrap_or_default();
        if let Some(d) = tax.domain.iter().position(|d| d.name == label) {
            rows.push(r.clone());
            ys.push(d);
            weights.push(weak.label_weight);
        }
    }
    let mut rest: Vec<Example> = Vec::new();
    for (r, s) in unlabeled.iter().zip(&seeds) {
        if known.contains(&(r.title.as_str(), r.body.as_str())) {
            continue;
        }
        match s {
            Some(d) => {
                rows.push(r.clone());
                ys.push(*d);
                weights.push(1.0);
            }
            None => rest.push(r.clone()),
        }
    }
    let mut seeds_per_domain = vec![0; k];
    for (&y, &w) in ys.iter().zip(&weights) {
        if w == 1.0 {
            seeds_per_domain[y] += 1;
        }
    }
    for (d, dom) in tax.domain.iter().enumerate() {
        let mut push = |body: &str| {
            rows.push(Example {
                title: String::new(),
                body: body.to_string(),
                label: Some(dom.name.clone()),
            });
            ys.push(d);
            weights.push(1.0);
        };
        push(&dom.description);
        for t in dom.vocabulary.iter().chain(&dom.examples) {
            push(t);
        }
    }
    let f = Featurizer::new(cfg.features.clone());
    pb.set_length(pb.length().unwrap_or(0) + (rows.len() + rest.len()) as u64);
    let raw = featurize_all(&f, &rows, pb);
    let rest_raw = featurize_all(&f, &rest, pb);
    let labels: Vec<String> = tax.domain.iter().map(|d| d.name.clone()).collect();
    let p = Prepared {
        row_weight: (!labeled.is_empty()).then_some(weights.as_slice()),
        ..Prepared::new(&labels, &raw, &ys, &rest_raw)
    };
    let all: Vec<usize> = (0..ys.len()).collect();
    let model = fit(&p, &all, cfg, "weak", pb);
    (
        model,
        WeakReport {
            category_terms,
            seeds_per_domain,
            unlabeled: unlabeled.len(),
            labels_are_domains: true,
        },
    )
}

/// A model over the labels of `labeled` (categories other than the domains) that leans on the
/// weak ten-domain `prior`: every row carries the prior's margins × `gain` as features
/// (`train::prior_projection`), so the model learns how the domains relate to its labels from
/// the labeled rows and keeps the prior's vocabulary for words they lack; `unlabeled` rows give
/// idf (and self-training, if configured).
pub fn train_with_prior(
    prior: &LinearModel,
    labeled: &[Example],
    unlabeled: &[Example],
    gain: f32,
    cfg: &TrainConfig,
    pb: &ProgressBar,
) -> LinearModel {
    let f = Featurizer::new(cfg.features.clone());
    let raw = featurize_all(&f, labeled, pb);
    let unl = featurize_all(&f, unlabeled, pb);
    let (labels, ys) = super::train::index_labels(labeled);
    let proj = super::train::prior_projection(prior, f.buckets(), gain);
    let p = Prepared {
        prior: proj.as_ref(),
        ..Prepared::new(&labels, &raw, &ys, &unl)
    };
    let all: Vec<usize> = (0..ys.len()).collect();
    fit(&p, &all, cfg, "labeled+prior", pb)
}

/// The bureau's labels together with the weak prior (`duban train --weak --labels`, the
/// retraining job): labels that are all domains of the taxonomy join the weak model's rows
/// (`train_weak_labeled`); other categories get a model over them on the prior's margins
/// (`train_with_prior`, the prior trained first). `cfg` is the supervised setting; the weak
/// model self-trains at `self_train`.
#[allow(clippy::too_many_arguments)]
pub fn train_weak_with_labels(
    tax: &Taxonomy,
    category_names: &[String],
    unlabeled: &[Example],
    labeled: &[Example],
    cfg: &TrainConfig,
    self_train: f32,
    prior_gain: f32,
    pb: &ProgressBar,
) -> (LinearModel, WeakReport) {
    let weak_cfg = TrainConfig {
        self_train_threshold: Some(self_train),
        ..cfg.clone()
    };
    let w = WeakConfig::default();
    let domains_only = labeled.iter().all(|r| {
        let l = r.label.as_deref().unwrap_or_default();
        tax.domain.iter().any(|d| d.name == l)
    });
    if domains_only {
        return train_weak_labeled(tax, category_names, unlabeled, labeled, &w, &weak_cfg, pb);
    }
    let (prior, report) = train_weak(tax, category_names, unlabeled, &w, &weak_cfg, pb);
    let model = train_with_prior(&prior, labeled, unlabeled, prior_gain, cfg, pb);
    (
        model,
        WeakReport {
            labels_are_domains: false,
            ..report
        },
    )
}
