//! `duban train`, `duban eval`, `duban classify`: CSV/JSON-lines edges around the pure training and
//! scoring code of this module. Heavy work runs on a blocking thread with a progress bar on stderr.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, Write};
use std::path::PathBuf;

use super::data::{self, Example};
use super::features::{FeatureConfig, Featurizer};
use super::knn::KnnParams;
use super::model::LinearModel;
use super::train::{self, Prepared, Scores, TrainConfig};
use super::weak::{self, WeakConfig};
use super::{TrainedClassifier, features};
use crate::engine::classify::{Taxonomy, UNCLASSIFIED};

/// Training settings shared by `train` and `eval --cv`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelOptions {
    /// Seed of every shuffle: the same data and seed give identical model bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// SVM cost C (higher = less regularization).
    #[arg(long, default_value_t = 1.0)]
    pub c: f32,
    /// Maximum passes of dual coordinate descent.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// log2 of the number of feature hash buckets.
    #[arg(long, default_value_t = 18)]
    pub buckets_log2: u8,
    /// Unlabeled messages CSV (`title`/`body` or `留言主题`/`留言详情`), repeatable: used for idf
    /// and self-training (and as the seed pool of `--weak`).
    #[arg(long)]
    pub unlabeled: Vec<PathBuf>,
    /// Self-training: pseudo-label unlabeled rows predicted with at least this probability and
    /// retrain (default: off for labeled data, 0.9 for `--weak`).
    #[arg(long)]
    pub self_train: Option<f32>,
    /// Share of NB-SVM (features scaled by naive-Bayes log-count ratios) in the model: 0 = plain
    /// SVM, 1 = NB-SVM, in between = both, margins averaged.
    #[arg(long, default_value_t = TrainConfig::default().nb_mix)]
    pub nb_mix: f32,
    /// Smoothing of the NB-SVM counts.
    #[arg(long, default_value_t = 1.0)]
    pub nb_alpha: f32,
    /// Drop features occurring in more than this share of the documents.
    #[arg(long, default_value_t = 1.0)]
    pub max_df: f32,
    /// Candidate costs, comma-separated (e.g. `0.3,1,3`): each training picks one by internal CV
    /// on its own rows (overrides `--c`).
    #[arg(long, value_delimiter = ',')]
    pub c_grid: Vec<f32>,
    /// Longest character n-gram (0 = none).
    #[arg(long, default_value_t = FeatureConfig::default().char_ngram_max)]
    pub char_ngrams: u8,
    /// Add word bigrams.
    #[arg(long)]
    pub word_bigrams: bool,
    /// Multiplier of title term counts.
    #[arg(long, default_value_t = FeatureConfig::default().title_weight)]
    pub title_weight: f32,
    /// Without a title, weight the first this many body characters like a title (0 = off).
    #[arg(long, default_value_t = FeatureConfig::default().lead_chars)]
    pub lead_chars: u16,
    /// Semi-supervised latent features: dimensions of the subspace of the training and
    /// `--unlabeled` rows (0 = off).
    #[arg(long, default_value_t = 0)]
    pub lsa_dims: usize,
    /// Scale of the latent features.
    #[arg(long, default_value_t = 1.0)]
    pub lsa_gain: f32,
    /// Leave out the nearest-neighbour votes of the training rows (by default they are blended
    /// into the margins; the model file then holds an index of the training rows, and
    /// classification is about a sixth slower).
    #[arg(long)]
    pub no_knn: bool,
    /// Weight of the neighbour votes added to the margins.
    #[arg(long, default_value_t = KnnParams::default().weight)]
    pub knn_weight: f32,
    /// Neighbours that vote.
    #[arg(long, default_value_t = KnnParams::default().k)]
    pub knn_k: usize,
    /// A neighbour votes with similarity to this power.
    #[arg(long, default_value_t = KnnParams::default().power)]
    pub knn_power: f32,
    /// Similarity only over features in at most this share of the training rows.
    #[arg(long, default_value_t = KnnParams::default().max_df)]
    pub knn_max_df: f32,
    /// At most this many training rows (a class-proportional sample) are searched for neighbours.
    #[arg(long, default_value_t = KnnParams::default().max_pool)]
    pub knn_max_pool: usize,
}

impl ModelOptions {
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            features: FeatureConfig {
                buckets_log2: self.buckets_log2,
                char_ngram_max: self.char_ngrams,
                word_bigrams: self.word_bigrams,
                title_weight: self.title_weight,
                lead_chars: self.lead_chars,
                ..FeatureConfig::default()
            },
            c: self.c,
            epochs: self.epochs,
            seed: self.seed,
            self_train_threshold: self.self_train,
            nb_mix: self.nb_mix,
            nb_alpha: self.nb_alpha,
            max_df: self.max_df,
            c_grid: self.c_grid.clone(),
            lsa_dims: self.lsa_dims,
            lsa_gain: self.lsa_gain,
            knn: (!self.no_knn && self.knn_weight > 0.0 && self.knn_k > 0 && self.knn_max_pool > 0)
                .then_some(KnnParams {
                    k: self.knn_k,
                    power: self.knn_power,
                    weight: self.knn_weight,
                    max_df: self.knn_max_df,
                    max_pool: self.knn_max_pool,
                }),
            ..TrainConfig::default()
        }
    }

    fn read_unlabeled(&self) -> Result<Vec<Example>> {
        let mut rows = Vec::new();
        for p in &self.unlabeled {
            rows.extend(data::read_unlabeled(p)?);
        }
        Ok(rows)
    }
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Labeled CSV with `title`, `body`, `label` columns (not needed with `--weak`).
    #[arg(long, required_unless_present = "weak")]
    pub data: Option<PathBuf>,
    /// Where to write the model.
    #[arg(long)]
    pub out: PathBuf,
    /// Build a ten-domain model without labels: taxonomy vocabulary + category tree seed labels on
    /// `--unlabeled` messages, then self-training (stronger than the engine's default taxonomy
    /// model, which is trained on the taxonomy alone).
    #[arg(long, conflicts_with = "data", requires = "unlabeled")]
    pub weak: bool,
    /// Domain taxonomy for `--weak` (default: the built-in config/taxonomy.toml).
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
    /// Category tree CSV (一级分类,二级分类,三级分类) whose names extend the vocabulary (`--weak`).
    #[arg(long)]
    pub categories: Option<PathBuf>,
    #[command(flatten)]
    pub options: ModelOptions,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Model to evaluate (not needed with `--cv`).
    #[arg(long, required_unless_present = "cv")]
    pub model: Option<PathBuf>,
    /// Labeled CSV with `title`, `body`, `label` columns.
    #[arg(long)]
    pub data: PathBuf,
    /// One JSON object (`accuracy`, `macro_f1`, `per_class`) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Instead of a model: k-fold stratified cross-validation of training on `--data`.
    #[arg(long, conflicts_with = "model")]
    pub cv: Option<usize>,
    /// Predictions below this confidence count as `unclassified` (wrong).
    #[arg(long, default_value_t = 0.0)]
    pub min_confidence: f64,
    #[command(flatten)]
    pub options: ModelOptions,
}

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Below this confidence the label is `unclassified`.
    #[arg(long, default_value_t = 0.34)]
    pub min_confidence: f64,
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

pub async fn train(args: TrainArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || train_blocking(&args)).await?
}

fn train_blocking(args: &TrainArgs) -> Result<()> {
    let cfg = args.options.train_config();
    let unlabeled = args.options.read_unlabeled()?;
    let model = if args.weak {
        let tax = Taxonomy::load(args.taxonomy.as_deref())?;
        let names = match &args.categories {
            Some(p) => weak::read_category_names(p)?,
            None => Vec::new(),
        };
        let cfg = TrainConfig {
            self_train_threshold: Some(args.options.self_train.unwrap_or(0.9)),
            ..cfg
        };
        let pb = progress(cfg.epochs as u64 * 8, "weak");
        let (model, report) =
            weak::train_weak(&tax, &names, &unlabeled, &WeakConfig::default(), &cfg, &pb);
        pb.finish_and_clear();
        eprintln!(
            "weak supervision: {} unlabeled messages, {} category terms added, seeds per domain: {}",
            report.unlabeled,
            report.category_terms,
            tax.domain
                .iter()
                .zip(&report.seeds_per_domain)
                .map(|(d, n)| format!("{} {n}", d.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        model
    } else {
        let Some(path) = &args.data else {
            bail!("--data is required without --weak")
        };
        let rows = data::read_labeled(path)?;
        if rows.is_empty() {
            bail!("{}: no rows", path.display());
        }
        let (labels, ys) = train::index_labels(&rows);
        if labels.len() < 2 {
            bail!("{}: need at least two labels", path.display());
        }
        let f = Featurizer::new(cfg.features.clone());
        let pb = progress((rows.len() + unlabeled.len()) as u64, "features");
        let raw = train::featurize_all(&f, &rows, &pb);
        let unl = train::featurize_all(&f, &unlabeled, &pb);
        pb.finish_and_clear();
        let pb = progress(
            (cfg.epochs * (cfg.calibration_folds + 1 + cfg.self_train_rounds)) as u64,
            "training",
        );
        let p = Prepared {
            labels: &labels,
            raw: &raw,
            ys: &ys,
            unlabeled: &unl,
        };
        let all: Vec<usize> = (0..ys.len()).collect();
        let model = train::fit(&p, &all, &cfg, "supervised", &pb);
        pb.finish_and_clear();
        model
    };
    model.save(&args.out)?;
    let neighbours = model.neighbours.as_ref().map_or(String::new(), |n| {
        format!(
            "; neighbour index of {} rows, {} postings",
            n.pool_rows(),
            n.postings()
        )
    });
    eprintln!(
        "wrote {} ({} labels: {}; {} rows + {} pseudo-labeled; temperature {:.2}{neighbours})",
        args.out.display(),
        model.labels.len(),
        model.labels.join(", "),
        model.trained.rows,
        model.trained.pseudo_rows,
        model.temperature
    );
    Ok(())
}

pub async fn eval(args: EvalArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || eval_blocking(&args)).await?
}

fn eval_blocking(args: &EvalArgs) -> Result<()> {
    let rows = data::read_labeled(&args.data)?;
    let scores = match (&args.model, args.cv) {
        (_, Some(folds)) => {
            if folds < 2 {
                bail!("--cv needs at least 2 folds");
            }
            let cfg = args.options.train_config();
            let unlabeled = args.options.read_unlabeled()?;
            let (labels, ys) = train::index_labels(&rows);
            let f = Featurizer::new(cfg.features.clone());
            let pb = progress((rows.len() + unlabeled.len()) as u64, "features");
            let raw = train::featurize_all(&f, &rows, &pb);
            let unl = train::featurize_all(&f, &unlabeled, &pb);
            pb.finish_and_clear();
            let per_fold = cfg.calibration_folds + 1 + cfg.self_train_rounds;
            let pb = progress((folds * cfg.epochs * per_fold) as u64, "cv");
            let p = Prepared {
                labels: &labels,
                raw: &raw,
                ys: &ys,
                unlabeled: &unl,
            };
            let s = train::cross_validate(&p, folds, &cfg, &pb);
            pb.finish_and_clear();
            s
        }
        (Some(path), None) => {
            let model = LinearModel::load(path)?;
            let mut labels = model.labels.clone();
            for r in &rows {
                let l = r.label.clone().unwrap_or_default();
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
            let truth: Vec<usize> = rows
                .iter()
                .map(|r| {
                    let l = r.label.as_deref().unwrap_or("");
                    labels.iter().position(|x| x == l).unwrap_or(0)
                })
                .collect();
            let clf = TrainedClassifier::new(model, args.min_confidence);
            let pb = progress(rows.len() as u64, "eval");
            let pred: Vec<Option<usize>> = rows
                .iter()
                .map(|r| {
                    pb.inc(1);
                    let (l, _) = clf.classify(&r.title, &r.body);
                    labels.iter().position(|x| *x == l)
                })
                .collect();
            pb.finish_and_clear();
            train::score(&labels, &truth, &pred)
        }
        (None, None) => bail!("give --model MODEL or --cv FOLDS"),
    };
    if args.json {
        println!("{}", scores_json(&scores));
    } else {
        print!("{}", scores_table(&scores));
    }
    Ok(())
}

/// `{"accuracy", "macro_f1", "per_class": {label: {precision, recall, f1, support}}, ...}`.
pub fn scores_json(s: &Scores) -> serde_json::Value {
    let per_class: serde_json::Map<String, serde_json::Value> = s
        .per_class
        .iter()
        .map(|c| {
            (
                c.label.clone(),
                serde_json::json!({
                    "precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support
                }),
            )
        })
        .collect();
    serde_json::json!({
        "accuracy": s.accuracy,
        "macro_f1": s.macro_f1,
        "per_class": per_class,
        "rows": s.rows,
        "unclassified": s.unclassified,
    })
}

pub fn scores_table(s: &Scores) -> String {
    let mut out = format!(
        "rows {}  accuracy {:.4}  macro-F1 {:.4}  unclassified {}\n{:<16} {:>9} {:>9} {:>9} {:>8}\n",
        s.rows,
        s.accuracy,
        s.macro_f1,
        s.unclassified,
        "label",
        "precision",
        "recall",
        "f1",
        "support"
    );
    for c in &s.per_class {
        out.push_str(&format!(
            "{} {:>9.4} {:>9.4} {:>9.4} {:>8}\n",
            crate::console::pad_right(&c.label, 16),
            c.precision,
            c.recall,
            c.f1,
            c.support
        ));
    }
    out
}

/// A message's `title` and `body` (a missing or null field is empty); an error names a field
/// that is not a string, or says that neither is there.
fn message_texts(
    obj: &serde_json::Map<String, serde_json::Value>,
) -> std::result::Result<(String, String), String> {
    let field = |k: &str| match obj.get(k) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field `{k}` is not a string")),
    };
    match (field("title")?, field("body")?) {
        (None, None) => Err("neither `title` nor `body`".to_string()),
        (t, b) => Ok((t.unwrap_or_default(), b.unwrap_or_default())),
    }
}

pub async fn classify(args: ClassifyArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || classify_blocking(&args)).await?
}

fn classify_blocking(args: &ClassifyArgs) -> Result<()> {
    let model = LinearModel::load(&args.model)?;
    features::jieba();
    let clf = TrainedClassifier::new(model, args.min_confidence);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut bad = 0usize;
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.context("cannot read stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        // The line may hold personal data: name it by number and field only.
        let texts = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(o)) => message_texts(&o).map(|t| (o, t)),
            _ => Err("not a JSON object".to_string()),
        };
        let (mut obj, (title, body)) = match texts {
            Ok(x) => x,
            Err(why) => {
                eprintln!("stdin line {}: {why}, skipped", i + 1);
                bad += 1;
                continue;
            }
        };
        let (label, conf) = clf.classify(&title, &body);
        obj.insert("label".into(), label.into());
        obj.insert("confidence".into(), conf.into());
        writeln!(out, "{}", serde_json::Value::Object(obj))?;
    }
    out.flush()?;
    if bad > 0 {
        eprintln!(
            "{bad} lines skipped; labels below confidence {} are {UNCLASSIFIED}",
            args.min_confidence
        );
    }
    Ok(())
}
