//! `duban sql`: DataFusion SQL over the lake tables with duban's UDFs; one-shot or an interactive
//! REPL, output as a table, CSV, JSON lines or Parquet. The Flight SQL server (`flight`) reuses it.

pub mod flight;
mod limits;
mod repl;
mod udfs;

pub use limits::SqlLimits;
pub use repl::{default_history, repl};

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext, col};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::taxonomy::DomainClassifier;

/// Output formats of `duban sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    /// One JSON object per line.
    Json,
    /// A Parquet file (needs `--output`).
    Parquet,
}

/// What a SQL session may do besides reading: `duban sql` may create and drop session-local
/// views (`CREATE [OR REPLACE] VIEW`, `DROP VIEW`) and `SET` the planner's and executor's options
/// (`datafusion.execution|optimizer|explain|sql_parser|format.*`), the Flight SQL server may not;
/// neither may write (INSERT, COPY, CREATE TABLE [AS]), open other files (CREATE EXTERNAL TABLE),
/// drop tables or change the runtime (`SET datafusion.runtime.*`, where the memory limit is), so
/// the lake is never changed and the limits hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadOnlyWithViews,
}

impl Access {
    fn options(self) -> SQLOptions {
        SQLOptions::new()
            .with_allow_dml(false)
            .with_allow_ddl(self == Access::ReadOnlyWithViews)
            .with_allow_statements(self == Access::ReadOnlyWithViews)
    }
}

/// How the SQL UDF `classify(title, body)` classifies (the configured trained model, else the
/// configured `[engine] classifier`, by default the taxonomy's vocabulary), and the limits of a
/// query (`[sql]`).
#[derive(Clone)]
pub struct SqlOptions {
    pub classifier: Arc<dyn DomainClassifier>,
    pub limits: SqlLimits,
}

impl Default for SqlOptions {
    fn default() -> Self {
        let tax = crate::engine::taxonomy::Taxonomy::builtin();
        SqlOptions {
            classifier: crate::engine::taxonomy::KeywordClassifier::new(
                &tax,
                crate::config::EngineConfig::default().min_domain_confidence,
            ),
            limits: SqlLimits::default(),
        }
    }
}

impl SqlOptions {
    /// The classifier of a configuration (its model when set, else its `[engine] classifier` over
    /// its taxonomy), with `model` overriding the configured one.
    pub fn from_config(config: Option<&Path>, model: Option<&Path>) -> Result<SqlOptions> {
        let cfg = match config {
            Some(p) => crate::config::Config::load(p)?,
            None => crate::config::Config::default(),
        };
        let min = cfg.engine.min_domain_confidence;
        let model: Option<PathBuf> = model.map(Path::to_path_buf).or(cfg.engine.model.clone());
        let classifier: Arc<dyn DomainClassifier> = match model {
            Some(m) => crate::classify::load_model(&m, min)
                .with_context(|| format!("loading the classifier model {}", m.display()))?,
            None => crate::classify::without_model(&cfg, true)?,
        };
        Ok(SqlOptions {
            classifier,
            limits: cfg.sql,
        })
    }
}

/// A context with the lake's tables registered (those that exist) and duban's UDFs.
pub async fn lake_context(lake: &Path) -> Result<SessionContext> {
    lake_context_with(lake, &SqlOptions::default()).await
}

/// Hash partitions per core. A grouping with millions of groups (`count(DISTINCT complainant)` per
/// issue over a month: one group per (issue, complainant) pair) builds one hash table per
/// partition; 8 per core keeps each table small enough to stay in cache while the 2 threads of
/// a 2-core machine work through them. On the 10M-complaint benchmark this took the query from
/// 1.7 s (1 per core) to 1.2 s, with no loss on the small groupings (per domain × district × day).
pub const PARTITIONS_PER_CORE: usize = 8;

/// The session settings of every SQL entry point (`duban sql`, its REPL, `duban serve-sql`, the
/// reports and `cargo bench --bench sql`): [`PARTITIONS_PER_CORE`] scan/aggregation partitions
/// per core, the information schema (SHOW TABLES, DESCRIBE, BI tools' catalog queries), file
/// statistics, and Parquet filter pushdown with reordering so filters on time or a
/// low-cardinality column read only the rows (pages) that can match.
pub fn session_config() -> SessionConfig {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cfg = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(cores * PARTITIONS_PER_CORE)
        .with_collect_statistics(true)
        .with_parquet_pruning(true);
    let opts = cfg.options_mut();
    opts.execution.parquet.pushdown_filters = true;
    opts.execution.parquet.reorder_filters = true;
    opts.execution.parquet.enable_page_index = true;
    cfg
}

/// How the lake's `complaints` table is read: partitioned by `day` (the folder name), each file
/// sorted by (received_at, complaint_id) — the order every lake write and compaction keeps — so
/// the planner need not sort again for that order.
fn complaints_read_options() -> ParquetReadOptions<'static> {
    ParquetReadOptions::default()
        .table_partition_cols(vec![("day".to_string(), DataType::Utf8)])
        .file_sort_order(vec![vec![
            col("received_at").sort(true, false),
            col("complaint_id").sort(true, false),
        ]])
}

pub async fn lake_context_with(lake: &Path, opts: &SqlOptions) -> Result<SessionContext> {
    if !lake.is_dir() {
        anyhow::bail!(
            "lake folder {} does not exist (run `duban demo` or `duban run` first)",
            lake.display()
        );
    }
    let runtime = opts
        .limits
        .runtime()
        .context("cannot set up the query's memory pool")?;
    let ctx = SessionContext::new_with_config_rt(session_config(), runtime);
    // Keyless functions only: no pseudonym key in an analyst's session (README: threat model).
    crate::engine::register_udfs(&ctx, opts.classifier.clone());
    udfs::register(&ctx, opts.classifier.clone());
    opts.limits.cap_functions(&ctx);
    let mut unavailable = BTreeMap::new();
    for table in crate::lake::TABLES {
        let dir = lake.join(table);
        let files = crate::lake::check::parquet_files(&dir);
        if files.is_empty() {
            continue;
        }
        let read = if table == "complaints" {
            complaints_read_options()
        } else {
            ParquetReadOptions::default()
        };
        if let Err(e) = ctx
            .register_parquet(table, dir.to_string_lossy().as_ref(), read)
            .await
        {
            // One unreadable file (a truncated write, a foreign file) takes its table out of the
            // session, not the session down: the other tables stay queryable.
            let why = unreadable_files(&files).unwrap_or_else(|| {
                crate::redact::printable(&format!("cannot register it: {e}"), 300)
            });
            tracing::warn!(target: "duban::query", table, "lake table left out: {why}");
            unavailable.insert(table.to_string(), why);
        }
    }
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(Arc::new(Unavailable(unavailable)));
    Ok(ctx)
}

/// Lake tables left out of a session, with why (`lake_context_with`).
struct Unavailable(BTreeMap<String, String>);

/// The unreadable files among `files` (their footers, as registering reads them), told on one line.
fn unreadable_files(files: &[PathBuf]) -> Option<String> {
    let bad: Vec<String> = files
        .iter()
        .filter_map(|f| {
            crate::lake::check::unreadable(f, false).map(|why| format!("{} ({why})", f.display()))
        })
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "unreadable Parquet file{} {}; `duban lake check --quarantine` moves such files aside",
            if bad.len() == 1 { "" } else { "s" },
            bad.join(", ")
        )
    })
}

/// Plan one statement under `access`; errors are one line starting `SQL error:`.
pub async fn plan(ctx: &SessionContext, sql: &str, access: Access) -> Result<DataFrame> {
    let sql_error = |e: datafusion::error::DataFusionError| anyhow::anyhow!("SQL error: {e}");
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect).map_err(sql_error)?;
    if let Some(u) = state.config().get_extension::<Unavailable>() {
        for t in state
            .resolve_table_references(&statement)
            .map_err(sql_error)?
        {
            if let Some(why) = u.0.get(t.table()) {
                anyhow::bail!("SQL error: lake table {} is unavailable: {why}", t.table());
            }
        }
    }
    let plan = state
        .statement_to_plan(statement)
        .await
        .map_err(sql_error)?;
    access.options().verify_plan(&plan).map_err(sql_error)?;
    access.check(&plan)?;
    ctx.execute_logical_plan(plan).await.map_err(sql_error)
}

/// Options a session with views may `SET`: the planner's and executor's, not the runtime's.
const SETTABLE: [&str; 5] = [
    "datafusion.execution.",
    "datafusion.optimizer.",
    "datafusion.explain.",
    "datafusion.sql_parser.",
    "datafusion.format.",
];

impl Access {
    /// Refuse what `SQLOptions` lets through with DDL and statements allowed but this access does
    /// not allow (see `Access`), anywhere in the plan (an EXPLAIN ANALYZE runs its statement).
    fn check(self, plan: &datafusion::logical_expr::LogicalPlan) -> Result<()> {
        use datafusion::common::tree_node::TreeNodeRecursion;
        use datafusion::logical_expr::{DdlStatement, LogicalPlan, Statement};
        let mut refused: Option<String> = None;
        plan.apply_with_subqueries(|node| {
            let why = match node {
                LogicalPlan::Ddl(DdlStatement::CreateView(_) | DdlStatement::DropView(_)) => None,
                LogicalPlan::Ddl(d) => Some(format!(
                    "{} is not allowed: only CREATE VIEW and DROP VIEW (session views)",
                    d.name()
                )),
                LogicalPlan::Statement(Statement::SetVariable(v)) => settable(&v.variable),
                LogicalPlan::Statement(Statement::ResetVariable(v)) => settable(&v.variable),
                LogicalPlan::Statement(s) => Some(format!("{} is not allowed", s.name())),
                _ => None,
            };
            Ok(match why {
                Some(w) => {
                    refused = Some(w);
                    TreeNodeRecursion::Stop
                }
                None => TreeNodeRecursion::Continue,
            })
        })
        .map_err(|e| anyhow::anyhow!("SQL error: {e}"))?;
        match refused {
            Some(w) => anyhow::bail!("SQL error: {w}"),
            None => Ok(()),
        }
    }
}

/// Why `SET name` is refused, if it is.
fn settable(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    if SETTABLE.iter().any(|p| name.starts_with(p)) {
        None
    } else {
        Some(format!(
            "SET {} is not allowed: only datafusion.{{execution,optimizer,explain,sql_parser,format}}.* options",
            crate::redact::name(&name)
        ))
    }
}

/// Run one read-only query over the lake (views allowed, writes refused).
pub async fn run_sql(lake: &Path, sql: &str) -> Result<Vec<RecordBatch>> {
    run_sql_with(lake, sql, &SqlOptions::default()).await
}

pub async fn run_sql_with(lake: &Path, sql: &str, opts: &SqlOptions) -> Result<Vec<RecordBatch>> {
    let mut timer = crate::ops::events::SqlQueryTimer::start("lake");
    let result = async {
        let ctx = lake_context_with(lake, opts).await?;
        let df = plan(&ctx, sql, Access::ReadOnlyWithViews).await?;
        collect(df, &opts.limits).await
    }
    .await;
    if result.is_err() {
        timer.failed();
    }
    result
}

/// Run a planned query to its end within the limits: its time, and the size of the result held
/// (`max_result_mb`). Errors are one line starting `SQL error:`.
pub async fn collect(df: DataFrame, limits: &SqlLimits) -> Result<Vec<RecordBatch>> {
    use futures::StreamExt;
    let sql_error = |e: datafusion::error::DataFusionError| {
        anyhow::anyhow!(
            "SQL error: {}",
            limits.explain(&e).unwrap_or_else(|| e.to_string())
        )
    };
    let max = limits.max_result_mb.max(1) * (1 << 20);
    let run = async {
        let mut stream = df.execute_stream().await.map_err(sql_error)?;
        let (mut batches, mut bytes) = (Vec::new(), 0usize);
        while let Some(b) = stream.next().await {
            let b = b.map_err(sql_error)?;
            bytes += b.get_array_memory_size();
            if bytes > max {
                anyhow::bail!(
                    "SQL error: the result is larger than {} MiB ([sql] max_result_mb): add a LIMIT or aggregate",
                    limits.max_result_mb
                );
            }
            batches.push(b);
        }
        Ok(batches)
    };
    tokio::time::timeout(limits.timeout(), run)
        .await
        .map_err(|_| anyhow::anyhow!("SQL error: {}", limits.timed_out()))?
}

/// Render batches as text (table, CSV, JSON lines). Parquet is binary: see `write_output`.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<String> {
    Ok(String::from_utf8(render_bytes(batches, format, None)?)?)
}

fn render_bytes(
    batches: &[RecordBatch],
    format: Format,
    schema: Option<&Arc<Schema>>,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    match format {
        Format::Table => {
            let text = datafusion::arrow::util::pretty::pretty_format_batches(batches)?;
            buf.extend_from_slice(text.to_string().as_bytes());
            buf.push(b'\n');
        }
        Format::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut buf);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Parquet => {
            let schema = match (batches.first(), schema) {
                (Some(b), _) => b.schema(),
                (None, Some(s)) => s.clone(),
                (None, None) => Arc::new(Schema::empty()),
            };
            let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    Ok(buf)
}

/// Write a result to `output` (atomically) or stdout. Parquet needs a file.
pub fn write_output(
    batches: &[RecordBatch],
    schema: &Arc<Schema>,
    format: Format,
    output: Option<&Path>,
) -> Result<()> {
    use std::io::Write;
    let bytes = render_bytes(batches, format, Some(schema))?;
    match output {
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &bytes)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None if format == Format::Parquet => {
            anyhow::bail!("--format parquet writes a file: give --output FILE")
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

/// `duban sql QUERY`: run one query and write its result.
pub async fn one_shot(
    lake: &Path,
    sql: &str,
    opts: &SqlOptions,
    format: Format,
    output: Option<&Path>,
) -> Result<()> {
    if format == Format::Parquet && output.is_none() {
        anyhow::bail!("--format parquet writes a file: give --output FILE");
    }
    let ctx = lake_context_with(lake, opts).await?;
    let df = plan(&ctx, sql, Access::ReadOnlyWithViews).await?;
    let schema: Arc<Schema> = Arc::new(df.schema().as_arrow().clone());
    let batches = collect(df, &opts.limits).await?;
    write_output(&batches, &schema, format, output)
}

#[cfg(test)]
mod tests;
