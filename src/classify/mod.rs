//! Trainable complaint classifier: hashed tf-idf of jieba words and character n-grams, a one-vs-rest
//! linear SVM with softmax confidence; `duban train/eval/classify` and the engine's trained model.
//!
//! - `features`: text → signed-hashed term counts (jieba words, character 1–2-grams, title weighted).
//! - `train`: idf, dual-coordinate-descent SVM (optionally NB-SVM), temperature calibration,
//!   self-training, k-fold CV.
//! - `lsa`: semi-supervised latent features from unlabeled messages, folded into the weights.
//! - `weak`: the ten-domain models without labels: from the taxonomy alone (`taxonomy_model`,
//!   `[engine] classifier = "taxonomy-model"`) or with a category tree and unlabeled messages
//!   (`duban train --weak`).
//! - `knn`: nearest-neighbour votes of the training rows (on by default, `--no-knn` leaves them
//!   out), an inverted index over their rare features blended into the margins.
//! - `model`: the `DUBANCLS` v2 model file (magic, version, JSON header, weight rows, optional
//!   neighbour index, checksum).
//!
//! Training is deterministic for a given seed (same data + seed → identical model bytes).

pub mod active;
pub mod cli;
pub mod curve;
pub mod data;
pub mod features;
pub mod knn;
pub mod lsa;
pub mod model;
pub mod registry;
pub mod retrain;
pub mod train;
pub mod weak;

use anyhow::Result;
use indicatif::ProgressBar;
use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::{Config, DefaultClassifier};
use crate::engine::taxonomy::{DomainClassifier, KeywordClassifier, Taxonomy, UNCLASSIFIED};
use features::Scratch;
pub use model::LinearModel;

/// A trained model serving the engine: label or `unclassified` below `min_confidence`.
#[derive(Debug)]
pub struct TrainedClassifier {
    pub model: LinearModel,
    pub min_confidence: f64,
    /// Recorded on the complaints it classifies (`classifier_version`).
    pub version: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl TrainedClassifier {
    pub fn new(model: LinearModel, min_confidence: f64) -> TrainedClassifier {
        TrainedClassifier {
            model,
            min_confidence,
            version: "model".to_string(),
        }
    }

    /// The same classifier recorded as `version`.
    pub fn with_version(self, version: String) -> TrainedClassifier {
        TrainedClassifier { version, ..self }
    }

    /// (label or `unclassified`, confidence). Text with no feature known to the model gets 0.
    pub fn classify(&self, title: &str, body: &str) -> (String, f64) {
        let best = SCRATCH.with(|s| self.model.predict(title, body, &mut s.borrow_mut()));
        match best {
            None => (UNCLASSIFIED.to_string(), 0.0),
            Some((c, p)) if (p as f64) >= self.min_confidence => {
                (self.model.labels[c].clone(), p as f64)
            }
            Some((_, p)) => (UNCLASSIFIED.to_string(), p as f64),
        }
    }
}

impl DomainClassifier for TrainedClassifier {
    fn classify(&self, title: &str, body: &str) -> (String, f64) {
        TrainedClassifier::classify(self, title, body)
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn probabilities(&self, title: &str, body: &str) -> Option<Vec<f32>> {
        SCRATCH.with(|s| self.model.probabilities(title, body, &mut s.borrow_mut()))
    }

    fn labels(&self) -> Vec<String> {
        self.model.labels.clone()
    }
}

/// Load a trained model for the engine's `classify_domain` UDF; its version is the file's name
/// and checksum.
pub fn load_model(path: &Path, min_confidence: f64) -> Result<Arc<dyn DomainClassifier>> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read model: {e}", path.display()))?;
    let model = LinearModel::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    // Load the segmenter dictionary now, not inside the first query.
    features::jieba();
    let stem = path
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy());
    let version = registry::version_of(&stem, &bytes);
    Ok(Arc::new(
        TrainedClassifier::new(model, min_confidence).with_version(version),
    ))
}

/// The taxonomy model (`[engine] classifier = "taxonomy-model"`): the weak-supervision model of
/// `weak` trained on the taxonomy alone, each domain's description and vocabulary terms as its
/// training rows (no unlabeled messages or category tree; `duban train --weak` adds those). It generalizes
/// beyond the literal terms through the words and character n-grams they share with a message.
/// Trained once per process, taxonomy and threshold (about 0.2 s in a release build),
/// deterministically; later calls share it.
pub fn taxonomy_model(tax: &Taxonomy, min_confidence: f64) -> Arc<dyn DomainClassifier> {
    type Built = Vec<(Taxonomy, u64, Arc<TrainedClassifier>)>;
    static BUILT: Mutex<Built> = Mutex::new(Vec::new());
    // A panic elsewhere while holding the lock leaves the list whole: keep using it.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let key = min_confidence.to_bits();
    if let Some((_, _, c)) = built.iter().find(|(t, k, _)| t == tax && *k == key) {
        return c.clone();
    }
    let (model, _) = weak::train_weak(
        tax,
        &[],
        &[],
        &weak::WeakConfig::default(),
        &train::TrainConfig::default(),
        &ProgressBar::hidden(),
    );
    let version = format!(
        "taxonomy-model-{:08x}",
        crate::ids::fnv1a64(format!("{tax:?}").as_bytes()) as u32
    );
    let c = Arc::new(TrainedClassifier::new(model, min_confidence).with_version(version));
    built.push((tax.clone(), key, c.clone()));
    c
}

/// The classifier of a configuration without a model file: its `[engine] classifier` over its
/// taxonomy. `lazy`: a taxonomy model is trained on its first classification, not now.
pub fn without_model(config: &Config, lazy: bool) -> Result<Arc<dyn DomainClassifier>> {
    let tax = Taxonomy::load(config.taxonomy.path.as_deref())?;
    let min = config.engine.min_domain_confidence;
    Ok(match config.engine.classifier {
        DefaultClassifier::Vocabulary => KeywordClassifier::new(&tax, min),
        DefaultClassifier::TaxonomyModel if lazy => lazy_taxonomy_model(tax, min),
        DefaultClassifier::TaxonomyModel => taxonomy_model(&tax, min),
    })
}

/// The engine's classifier of a configuration: the versions of `[engine] model_dir` when it has
/// one (switched at batch boundaries), else the model file `[engine] model`, else the
/// `[engine] classifier` over the taxonomy.
pub fn engine_classifier(config: &Config) -> Result<Arc<registry::ModelSlot>> {
    let min = config.engine.min_domain_confidence;
    let fixed: Arc<dyn DomainClassifier> = match &config.engine.model {
        Some(path) => load_model(path, min)?,
        None => without_model(config, false)?,
    };
    let v = registry::Versioned {
        version: fixed.version(),
        classifier: fixed,
    };
    Ok(match &config.engine.model_dir {
        Some(dir) => {
            let tax = Taxonomy::load(config.taxonomy.path.as_deref())?;
            let domains = tax.domain.iter().map(|d| d.name.clone()).collect();
            registry::ModelSlot::watching(dir, v, min, domains)
        }
        None => registry::ModelSlot::fixed(v),
    })
}

/// The classifier a board asks (the labeling queue): the engine's version in use when the
/// configuration names a model folder or file, else its `[engine] classifier`, trained on first
/// use.
pub fn board_classifier(config: &Config) -> Result<Arc<dyn DomainClassifier>> {
    if config.engine.model.is_some() || config.engine.model_dir.is_some() {
        let slot: Arc<dyn DomainClassifier> = engine_classifier(config)?;
        return Ok(slot);
    }
    without_model(config, true)
}

/// The taxonomy model, trained on its first classification: SQL contexts are opened for every
/// query, report and board page, and most never classify.
pub fn lazy_taxonomy_model(tax: Taxonomy, min_confidence: f64) -> Arc<dyn DomainClassifier> {
    struct Lazy {
        tax: Taxonomy,
        min_confidence: f64,
        model: OnceLock<Arc<dyn DomainClassifier>>,
    }
    impl Lazy {
        fn get(&self) -> &Arc<dyn DomainClassifier> {
            self.model
                .get_or_init(|| taxonomy_model(&self.tax, self.min_confidence))
        }
    }
    impl DomainClassifier for Lazy {
        fn classify(&self, title: &str, body: &str) -> (String, f64) {
            self.get().classify(title, body)
        }

        fn version(&self) -> String {
            self.get().version()
        }

        fn probabilities(&self, title: &str, body: &str) -> Option<Vec<f32>> {
            self.get().probabilities(title, body)
        }

        fn labels(&self) -> Vec<String> {
            self.get().labels()
        }
    }
    Arc::new(Lazy {
        tax,
        min_confidence,
        model: OnceLock::new(),
    })
}

#[cfg(test)]
mod tests;
