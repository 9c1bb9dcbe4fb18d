//! The retraining job: the lake's corrections (table `labels`) and complaints → a model trained
//! with the weak prior (`weak::train_weak_with_labels`) → a new version published in the model
//! folder, which running engines take up at their next batch. On demand (`duban train
//! --from-lake LAKE --publish DIR`) or on a schedule in `duban run` (`[engine] retrain_schedule`).

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::engine::taxonomy::Taxonomy;

/// Retrain from `lake` and publish into `dir`; returns the new version.
pub async fn retrain_once(config: &Config, lake: &Path, dir: &Path) -> Result<String> {
    let (labeled, unlabeled) = super::cli::lake_rows(lake).await?;
    let tax = Taxonomy::load(config.taxonomy.path.as_deref())?;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let cfg = super::train::TrainConfig::default();
        let (model, _) = super::weak::train_weak_with_labels(
            &tax,
            &[],
            &unlabeled,
            &labeled,
            &cfg,
            0.9,
            1.0,
            &ProgressBar::hidden(),
        );
        let version = super::registry::publish(&dir, &model)?;
        tracing::info!(target: "duban::classify", %version, labeled = labeled.len(), unlabeled = unlabeled.len(), "retrained and published a classifier version");
        Ok(version)
    })
    .await
    .context("the retraining thread failed")?
}

/// `duban run`'s retraining job: at each firing of `[engine] retrain_schedule` (local time),
/// retrain from the lake and publish into `[engine] model_dir`. A failed run is logged and the
/// next firing tries again. Does nothing without both settings. Ends when `stop` resolves.
pub async fn run(config: &Config, lake: PathBuf, stop: impl Future<Output = ()>) -> Result<()> {
    let (Some(dir), Some(schedule)) = (&config.engine.model_dir, &config.engine.retrain_schedule)
    else {
        return Ok(());
    };
    let cron = crate::report::cron::Cron::parse(schedule)
        .with_context(|| format!("[engine] retrain_schedule `{schedule}`"))?;
    tokio::pin!(stop);
    loop {
        let now = chrono::Utc::now().with_timezone(&crate::record::local_offset());
        let Some(next) = cron.next_after(now.naive_local()) else {
            return Ok(());
        };
        let wait = (next - now.naive_local()).to_std().unwrap_or_default();
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
        if let Err(e) = retrain_once(config, &lake, dir).await {
            tracing::warn!(target: "duban::classify", "scheduled retraining failed, the current version stays: {e:#}");
        }
    }
}
