//! `duban sql`: DataFusion SQL over the lake tables (`complaints`, `alerts`) with duban's UDFs,
//! printed as a table, CSV or JSON.

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use std::path::Path;

/// Output formats of `duban sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// A context with the lake's tables registered (those that exist) and duban's UDFs.
pub async fn lake_context(lake: &Path) -> Result<SessionContext> {
    if !lake.is_dir() {
        anyhow::bail!(
            "lake folder {} does not exist (run `duban demo` or `duban run` first)",
            lake.display()
        );
    }
    let ctx = SessionContext::new();
    let tax = crate::engine::classify::Taxonomy::builtin();
    crate::engine::register_udfs(
        &ctx,
        crate::engine::classify::KeywordClassifier::new(&tax, 0.34),
        crate::engine::pseudonym_key(),
    );
    let complaints = lake.join("complaints");
    if complaints.is_dir() {
        let opts = ParquetReadOptions::default()
            .table_partition_cols(vec![("day".to_string(), DataType::Utf8)]);
        ctx.register_parquet("complaints", complaints.to_string_lossy().as_ref(), opts)
            .await
            .context("registering table complaints")?;
    }
    for table in ["alerts", "issues", "complainants"] {
        let dir = lake.join(table);
        if dir.is_dir() {
            ctx.register_parquet(
                table,
                dir.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await
            .with_context(|| format!("registering table {table}"))?;
        }
    }
    Ok(ctx)
}

pub async fn run_sql(lake: &Path, sql: &str) -> Result<Vec<RecordBatch>> {
    let ctx = lake_context(lake).await?;
    let df = ctx
        .sql(sql)
        .await
        .map_err(|e| anyhow::anyhow!("SQL error: {e}"))?;
    Ok(df.collect().await?)
}

pub fn render(batches: &[RecordBatch], format: Format) -> Result<String> {
    match format {
        Format::Table => {
            Ok(datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string())
        }
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
            }
            Ok(String::from_utf8(buf)?)
        }
        Format::Json => {
            let mut buf = Vec::new();
            {
                let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            Ok(String::from_utf8(buf)?)
        }
    }
}
