//! Trainable complaint classifier (placeholder until the classification issue lands).
//! `load_model` reads a model written by `duban train` and serves it to the engine.

pub mod cli;

use anyhow::Result;
use std::path::Path;
use std::sync::Arc;

use crate::engine::classify::DomainClassifier;

/// Load a trained model for the engine's `classify_domain` UDF.
pub fn load_model(path: &Path, _min_confidence: f64) -> Result<Arc<dyn DomainClassifier>> {
    anyhow::bail!("{}: trained models are not supported yet", path.display())
}
