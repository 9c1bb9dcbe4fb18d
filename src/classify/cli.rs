//! `duban train`, `duban eval`, `duban classify` (placeholder).

use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Labeled CSV with `title`, `body`, `label` columns.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the model.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    #[arg(long)]
    pub model: PathBuf,
}

pub async fn train(_args: TrainArgs) -> Result<()> {
    anyhow::bail!("duban train is not implemented yet")
}

pub async fn eval(_args: EvalArgs) -> Result<()> {
    anyhow::bail!("duban eval is not implemented yet")
}

pub async fn classify(_args: ClassifyArgs) -> Result<()> {
    anyhow::bail!("duban classify is not implemented yet")
}
