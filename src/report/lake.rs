//! Reading the lake for a report: DataFusion over the Parquet tables, every column read back as
//! text so the report tolerates tables written by older or newer writers (missing columns, other units).

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use std::collections::BTreeSet;
use std::path::Path;

/// Rows of a query with every value as text (`None` for SQL NULL).
#[derive(Debug, Default)]
pub struct Rows {
    pub names: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    pub fn col(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The value of column `name` in row `i` (None when NULL, empty or the column is absent).
    pub fn get<'a>(&'a self, row: &'a [Option<String>], name: &str) -> Option<&'a str> {
        let i = self.col(name)?;
        row[i].as_deref().filter(|s| !s.is_empty())
    }
}

/// The lake's tables as one DataFusion context; tables whose folder is missing are absent.
pub struct LakeTables {
    ctx: SessionContext,
    pub tables: BTreeSet<String>,
}

impl LakeTables {
    pub async fn open(lake: &Path) -> Result<LakeTables> {
        let ctx = if lake.is_dir() {
            crate::query::lake_context(lake).await?
        } else {
            SessionContext::new()
        };
        // Tables `duban sql` does not know (yet) are registered here.
        let history = lake.join("alert_history");
        if has_parquet(&history) && !ctx.table_exist("alert_history")? {
            ctx.register_parquet(
                "alert_history",
                history.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await
            .context("registering table alert_history")?;
        }
        let mut tables = BTreeSet::new();
        for t in [
            "complaints",
            "alerts",
            "issues",
            "complainants",
            "alert_history",
        ] {
            if ctx.table_exist(t)? && has_parquet(&lake.join(t)) {
                tables.insert(t.to_string());
            }
        }
        Ok(LakeTables { ctx, tables })
    }

    pub fn has(&self, table: &str) -> bool {
        self.tables.contains(table)
    }

    /// Column names of a table (empty when the table is absent).
    pub async fn columns(&self, table: &str) -> Result<Vec<String>> {
        if !self.has(table) {
            return Ok(Vec::new());
        }
        let df = self.ctx.table(table).await?;
        Ok(df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect())
    }

    /// Run `sql` and read every column back as text.
    pub async fn rows(&self, sql: &str) -> Result<Rows> {
        let df = self
            .ctx
            .sql(sql)
            .await
            .with_context(|| format!("report query failed: {sql}"))?;
        let names: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = df
            .collect()
            .await
            .with_context(|| format!("report query failed: {sql}"))?;
        let mut rows = Vec::new();
        for b in &batches {
            let cols: Vec<StringArray> = b
                .columns()
                .iter()
                .map(|c| {
                    let s = cast(c, &DataType::Utf8)?;
                    Ok(s.as_any()
                        .downcast_ref::<StringArray>()
                        .context("cast to text")?
                        .clone())
                })
                .collect::<Result<_>>()?;
            for i in 0..b.num_rows() {
                rows.push(
                    cols.iter()
                        .map(|c| (!c.is_null(i)).then(|| c.value(i).to_string()))
                        .collect(),
                );
            }
        }
        Ok(Rows { names, rows })
    }

    /// `select <cols that exist> from table [where]`; absent columns are simply not read.
    pub async fn select(&self, table: &str, wanted: &[&str], filter: &str) -> Result<Rows> {
        if !self.has(table) {
            return Ok(Rows::default());
        }
        let have = self.columns(table).await?;
        let cols: Vec<String> = wanted
            .iter()
            .filter(|c| have.iter().any(|h| h == *c))
            .map(|c| format!("\"{c}\""))
            .collect();
        if cols.is_empty() {
            return Ok(Rows::default());
        }
        let sql = format!("select {} from {table} {filter}", cols.join(", "));
        self.rows(&sql).await
    }
}

fn has_parquet(dir: &Path) -> bool {
    !crate::lake::check::parquet_files(dir).is_empty()
}

/// The local calendar day of a date or timestamp as the lake renders it as text.
pub fn local_day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&crate::record::local_offset()).date_naive());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.date());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(t.date());
    }
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_of_lake_values() {
        let d = |s| local_day(s).map(|d| d.to_string());
        assert_eq!(d("2026-11-20"), Some("2026-11-20".into()));
        assert_eq!(d("2026-11-20T23:30:00+08:00"), Some("2026-11-20".into()));
        // 16:30 UTC is already the next day in the city.
        assert_eq!(d("2026-11-20T16:30:00Z"), Some("2026-11-21".into()));
        assert_eq!(d("2026-11-20T16:30:00.123"), Some("2026-11-20".into()));
        assert_eq!(d("yesterday"), None);
    }
}
