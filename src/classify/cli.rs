//! `duban train`, `duban eval`, `duban classify`: CSV/JSON-lines edges around the pure training and
//! scoring code of this module. Heavy work runs on a blocking thread with a progress bar on stderr.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, Write};
use std::path::PathBuf;

use super::active::{self, Embedding, SuggestConfig};
use super::data::{self, Example};
use super::features::{FeatureConfig, Featurizer};
use super::knn::KnnParams;
use super::model::LinearModel;
use super::train::{self, Prepared, Scores, TrainConfig};
use super::weak;
use super::{TrainedClassifier, features};
use crate::engine::taxonomy::{Taxonomy, UNCLASSIFIED};

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
    #[arg(long, required_unless_present_any = ["weak", "from_lake"])]
    pub data: Option<PathBuf>,
    /// Where to write the model.
    #[arg(long, required_unless_present = "publish")]
    pub out: Option<PathBuf>,
    /// Publish the model as a new version of a model folder (`[engine] model_dir`): running
    /// engines switch to it at their next batch.
    #[arg(long)]
    pub publish: Option<PathBuf>,
    /// With `--weak`: the bureau's labeled rows (`title`, `body`, `label`), trained together
    /// with the weak prior. Labels that are the taxonomy's domains join the weak model's rows;
    /// other categories get a model over them that sees the prior's domain margins as features.
    #[arg(long, requires = "weak")]
    pub labels: Vec<PathBuf>,
    /// The retraining job: the lake's corrections (table `labels`, joined with `complaints`) as
    /// `--labels` and its complaints as `--unlabeled` (implies `--weak`).
    #[arg(long, conflicts_with = "data")]
    pub from_lake: Option<PathBuf>,
    /// Scale of the prior's margins as features (labels of other categories than the domains).
    #[arg(long, default_value_t = 1.0)]
    pub prior_gain: f32,
    /// Build a ten-domain model without labels: taxonomy vocabulary + category tree seed labels on
    /// `--unlabeled` messages, then self-training (stronger than the engine's default taxonomy
    /// model, which is trained on the taxonomy alone).
    #[arg(long, conflicts_with = "data")]
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
    /// Model to evaluate (not needed with `--cv`, `--active` or `--default`).
    #[arg(long, required_unless_present_any = ["cv", "active", "default"])]
    pub model: Option<PathBuf>,
    /// Instead of a model file: the engine's classifier without one (`[engine] classifier` of
    /// `--config`, else the built-in default), as a bureau has it on day one.
    #[arg(long, conflicts_with_all = ["model", "cv", "active"])]
    pub default: bool,
    /// With `--default`: the configuration whose taxonomy and classifier to use.
    #[arg(long, requires = "default")]
    pub config: Option<PathBuf>,
    /// A file label counts as right for these predicted labels: `LABEL=A|B`, repeatable (e.g.
    /// other categories than the domains; a label without a mapping must be predicted as is).
    #[arg(long = "map")]
    pub maps: Vec<String>,
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
    /// Instead of a model: learning curves of labeling strategies on `--data` (random draws, one
    /// diversity pick, rounds of `label suggest`), each trained on its picks and scored on
    /// held-out folds.
    #[arg(long, conflicts_with_all = ["model", "cv"])]
    pub active: bool,
    /// `--active`: label budgets at which each strategy is trained and scored.
    #[arg(long, value_delimiter = ',', default_values_t = [50usize, 100, 200, 400])]
    pub budgets: Vec<usize>,
    /// `--active`: labels added per round of `label suggest`.
    #[arg(long, default_value_t = 50)]
    pub round: usize,
    /// `--active`: folds of the held-out split (one is held out per run).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// `--active`: held-out runs per fold seed (each holds out another fold).
    #[arg(long, default_value_t = 2)]
    pub runs_per_seed: usize,
    /// `--active`: fold seeds.
    #[arg(long, value_delimiter = ',', default_values_t = [42u64, 1, 7])]
    pub fold_seeds: Vec<u64>,
    /// `--active`: the pool's rows (labels hidden) are given to training as unlabeled messages.
    #[arg(long)]
    pub pool_unlabeled: bool,
    /// `--active`: the weak prior every trained model leans on.
    #[arg(long, value_enum, default_value_t = super::curve::PriorKind::None)]
    pub prior: super::curve::PriorKind,
    /// `--active`: scale of the prior's margins as features.
    #[arg(long, default_value_t = 1.0)]
    pub prior_gain: f32,
    /// `--active`: rows clustered per suggestion with a model (uncertainty vs. diversity).
    #[arg(long, default_value_t = SuggestConfig::default().candidates_per_pick)]
    pub candidates_per_pick: f32,
    #[command(flatten)]
    pub options: ModelOptions,
}

/// `duban label suggest`.
#[derive(Debug, clap::Args)]
pub struct SuggestArgs {
    /// CSV of candidate complaints: `id`, `title`, `body` (other columns are ignored).
    #[arg(long)]
    pub data: PathBuf,
    /// How many ids to print.
    #[arg(long)]
    pub n: usize,
    /// The current model: uncertainty + diversity. Without it (the first round): diversity alone.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// CSV with an `id` column of rows already labeled (never suggested again).
    #[arg(long)]
    pub exclude: Vec<PathBuf>,
    /// Seed of the clustering: the same inputs and seed print the same ids.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// With a model: rows clustered per suggestion (1 = the most uncertain alone).
    #[arg(long, default_value_t = SuggestConfig::default().candidates_per_pick)]
    pub candidates_per_pick: f32,
}

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Below this confidence the label is `unclassified`.
    #[arg(long, default_value_t = crate::config::EngineConfig::default().min_domain_confidence)]
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
    let lake = match &args.from_lake {
        Some(lake) => Some(lake_rows(lake).await?),
        None => None,
    };
    tokio::task::spawn_blocking(move || train_blocking(&args, lake)).await?
}

/// Most recent complaints of a lake taken as unlabeled messages by `--from-lake`.
const LAKE_UNLABELED_MAX: usize = 50_000;

/// The lake's labeled rows (issue corrections for every complaint of the issue, a complaint's
/// own correction first) and its most recent complaints, as (labeled, unlabeled).
pub async fn lake_rows(lake: &std::path::Path) -> Result<(Vec<Example>, Vec<Example>)> {
    let tables = crate::report::lake::LakeTables::open(lake).await?;
    if !tables.has("complaints") {
        bail!("{}: the lake has no complaints", lake.display());
    }
    let example = |rows: &crate::report::lake::Rows, r: &[Option<String>], label: bool| Example {
        title: rows.get(r, "title").unwrap_or_default().to_string(),
        body: rows.get(r, "body").unwrap_or_default().to_string(),
        label: label.then(|| rows.get(r, "label").unwrap_or_default().to_string()),
    };
    // The lake table `labels` is registered by `duban sql`'s context when it exists.
    let labeled = if lake.join("labels").join("labels.parquet").exists() {
        let rows = tables
            .rows(
                "select c.title, c.body, coalesce(lc.domain, li.domain) as label \
                 from complaints c \
                 left join labels lc on lc.target = 'complaint' and lc.complaint_id = c.complaint_id \
                 left join labels li on li.target = 'issue' and li.issue_id = c.issue_id \
                 where lc.domain is not null or li.domain is not null",
            )
            .await?;
        rows.rows.iter().map(|r| example(&rows, r, true)).collect()
    } else {
        Vec::new()
    };
    let rows = tables
        .rows(&format!(
            "select title, body from complaints order by received_at desc limit {LAKE_UNLABELED_MAX}"
        ))
        .await?;
    let unlabeled = rows.rows.iter().map(|r| example(&rows, r, false)).collect();
    Ok((labeled, unlabeled))
}

fn train_blocking(args: &TrainArgs, lake: Option<(Vec<Example>, Vec<Example>)>) -> Result<()> {
    let cfg = args.options.train_config();
    let mut unlabeled = args.options.read_unlabeled()?;
    let mut labeled = Vec::new();
    for p in &args.labels {
        labeled.extend(data::read_labeled(p)?);
    }
    if let Some((l, u)) = lake {
        eprintln!(
            "lake: {} labeled complaints, {} complaints as unlabeled messages",
            l.len(),
            u.len()
        );
        labeled.extend(l);
        unlabeled.extend(u);
    }
    let model = if args.weak || args.from_lake.is_some() {
        let tax = Taxonomy::load(args.taxonomy.as_deref())?;
        let names = match &args.categories {
            Some(p) => weak::read_category_names(p)?,
            None => Vec::new(),
        };
        let pb = progress(cfg.epochs as u64 * 8, "weak");
        let (model, report) = weak::train_weak_with_labels(
            &tax,
            &names,
            &unlabeled,
            &labeled,
            &args.options.train_config(),
            args.options.self_train.unwrap_or(0.9),
            args.prior_gain,
            &pb,
        );
        pb.finish_and_clear();
        if !labeled.is_empty() {
            eprintln!(
                "{} labeled rows {}",
                labeled.len(),
                if report.labels_are_domains {
                    "among the weak model's rows"
                } else {
                    "of other categories: a model over them with the prior's margins as features"
                }
            );
        }
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
            prior: None,
            row_weight: None,
        };
        let all: Vec<usize> = (0..ys.len()).collect();
        let model = train::fit(&p, &all, &cfg, "supervised", &pb);
        pb.finish_and_clear();
        model
    };
    if let Some(out) = &args.out {
        model.save(out)?;
    }
    let written = match &args.publish {
        Some(dir) => {
            let version = super::registry::publish(dir, &model)?;
            format!("published {version} in {}", dir.display())
        }
        None => format!(
            "wrote {}",
            args.out
                .as_deref()
                .unwrap_or(std::path::Path::new("-"))
                .display()
        ),
    };
    let neighbours = model.neighbours.as_ref().map_or(String::new(), |n| {
        format!(
            "; neighbour index of {} rows, {} postings",
            n.pool_rows(),
            n.postings()
        )
    });
    eprintln!(
        "{written} ({} labels: {}; {} rows + {} pseudo-labeled; temperature {:.2}{neighbours})",
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
    if args.active {
        return active_curves(args, &rows);
    }
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
                prior: None,
                row_weight: None,
            };
            let s = train::cross_validate(&p, folds, &cfg, &pb);
            pb.finish_and_clear();
            s
        }
        (None, None) if args.default => {
            let config = match &args.config {
                Some(p) => crate::config::Config::load(p)?,
                None => crate::config::Config::default(),
            };
            let clf = super::without_model(&config, false)?;
            let pb = progress(rows.len() as u64, "eval");
            let pred: Vec<String> = rows
                .iter()
                .map(|r| {
                    pb.inc(1);
                    clf.classify(&r.title, &r.body).0
                })
                .collect();
            pb.finish_and_clear();
            mapped_scores(&rows, &pred, &parse_maps(&args.maps)?)
        }
        (Some(path), None) if !args.maps.is_empty() => {
            let clf = TrainedClassifier::new(LinearModel::load(path)?, args.min_confidence);
            let pred: Vec<String> = rows
                .iter()
                .map(|r| clf.classify(&r.title, &r.body).0)
                .collect();
            mapped_scores(&rows, &pred, &parse_maps(&args.maps)?)
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

/// `duban eval --active`: learning curves of the labeling strategies (table or JSON).
fn active_curves(args: &EvalArgs, rows: &[Example]) -> Result<()> {
    let mut budgets = args.budgets.clone();
    budgets.sort_unstable();
    budgets.dedup();
    if budgets.is_empty() || budgets[0] == 0 {
        bail!("--budgets needs positive label counts");
    }
    if args.folds < 2 {
        bail!("--folds needs at least 2 folds");
    }
    let cfg = super::curve::CurveConfig {
        budgets: budgets.clone(),
        round: args.round,
        folds: args.folds,
        runs_per_seed: args.runs_per_seed,
        fold_seeds: args.fold_seeds.clone(),
        suggest: SuggestConfig {
            candidates_per_pick: args.candidates_per_pick,
            ..SuggestConfig::default()
        },
        train: args.options.train_config(),
        pool_unlabeled: args.pool_unlabeled,
        prior: args.prior,
        prior_gain: args.prior_gain,
    };
    let (labels, ys) = train::index_labels(rows);
    let f = Featurizer::new(cfg.train.features.clone());
    let pb = progress(rows.len() as u64, "features");
    let raw = train::featurize_all(&f, rows, &pb);
    pb.finish_and_clear();
    let runs = cfg.fold_seeds.len() * cfg.runs_per_seed.min(cfg.folds);
    let pb = progress(
        (runs * budgets.len() * super::curve::STRATEGIES.len()) as u64,
        "curves",
    );
    let points = super::curve::learning_curves(rows, &labels, &raw, &ys, &cfg, &pb);
    pb.finish_and_clear();
    let summary = super::curve::summarize(&points, &budgets);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"summary": summary, "runs": points})
        );
    } else {
        println!(
            "macro-F1 on held-out folds ({runs} runs: {} fold seeds × {} held-out folds of {})",
            cfg.fold_seeds.len(),
            cfg.runs_per_seed.min(cfg.folds),
            cfg.folds
        );
        println!(
            "{:>8} {:>22} {:>22} {:>22}",
            "labels", "random", "diverse", "active"
        );
        for &b in &budgets {
            let cell = |s: &str| {
                summary
                    .iter()
                    .find(|x| x.strategy == s && x.budget == b)
                    .map_or(String::new(), |x| {
                        format!("{:.4} ({:.3}–{:.3})", x.mean, x.min, x.max)
                    })
            };
            println!(
                "{b:>8} {:>22} {:>22} {:>22}",
                cell("random"),
                cell("diverse"),
                cell("active")
            );
        }
    }
    Ok(())
}

/// `duban label suggest`: the ids of the rows most worth labeling, one a line.
pub async fn suggest(args: SuggestArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || suggest_blocking(&args)).await?
}

fn suggest_blocking(args: &SuggestArgs) -> Result<()> {
    let rows = data::read_unlabeled(&args.data)?;
    let ids = data::read_ids(&args.data)?;
    let mut excluded = std::collections::HashSet::new();
    for p in &args.exclude {
        excluded.extend(data::read_ids(p)?);
    }
    let skip: Vec<bool> = ids.iter().map(|i| excluded.contains(i)).collect();
    let cfg = SuggestConfig {
        seed: args.seed,
        candidates_per_pick: args.candidates_per_pick,
        ..SuggestConfig::default()
    };
    let f = Featurizer::new(FeatureConfig::default());
    let pb = progress(rows.len() as u64, "features");
    let raw = train::featurize_all(&f, &rows, &pb);
    pb.finish_and_clear();
    let uncertainty = match &args.model {
        Some(path) => {
            let model = LinearModel::load(path)?;
            let mut scratch = features::Scratch::default();
            Some(
                rows.iter()
                    .map(|r| {
                        active::uncertainty_of(
                            model
                                .probabilities(&r.title, &r.body, &mut scratch)
                                .as_deref(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        }
        None => None,
    };
    let embedding = Embedding::new(&raw, f.buckets(), &cfg);
    let picks = active::suggest(&embedding, &skip, uncertainty.as_deref(), args.n, &cfg);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for s in &picks {
        writeln!(out, "{}", ids[s.row])?;
    }
    out.flush()?;
    eprintln!(
        "{} of {} rows suggested ({} excluded as labeled; {})",
        picks.len(),
        rows.len(),
        skip.iter().filter(|&&s| s).count(),
        if args.model.is_some() {
            "uncertainty + diversity"
        } else {
            "diversity alone: no --model"
        }
    );
    Ok(())
}

/// `--map LABEL=A|B` options: the predicted labels that count as right for a file label.
fn parse_maps(maps: &[String]) -> Result<Vec<(String, Vec<String>)>> {
    maps.iter()
        .map(|m| {
            let Some((label, to)) = m.split_once('=') else {
                bail!("--map `{m}`: expected LABEL=A|B");
            };
            Ok((
                label.trim().to_string(),
                to.split('|').map(|t| t.trim().to_string()).collect(),
            ))
        })
        .collect()
}

/// Scores of predictions against file labels through `maps`: a row is right when its
/// prediction is one its label maps to (or the label itself, without a mapping). Per class:
/// each file label's recall (and F1 from the predictions mapped to it).
fn mapped_scores(rows: &[Example], pred: &[String], maps: &[(String, Vec<String>)]) -> Scores {
    let (labels, ys) = train::index_labels(rows);
    let allowed = |label: &str, p: &str| match maps.iter().find(|(l, _)| l == label) {
        Some((_, to)) => to.iter().any(|t| t == p),
        None => label == p,
    };
    // A prediction counts for the one file label it is right for (the first, if several).
    let mapped: Vec<Option<usize>> = ys
        .iter()
        .zip(pred)
        .map(|(&y, p)| {
            if allowed(&labels[y], p) {
                Some(y)
            } else {
                labels.iter().position(|l| allowed(l, p))
            }
        })
        .collect();
    let mut s = train::score(&labels, &ys, &mapped);
    s.unclassified = pred.iter().filter(|p| *p == UNCLASSIFIED).count();
    s
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
            crate::util::console::pad_right(&c.label, 16),
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
