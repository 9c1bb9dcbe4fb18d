//! The ClickHouse sink: complaints, alerts, issues, complainants (and alert_history when the lake
//! has it) written with the official `clickhouse` crate over HTTP, tables created if missing.
//!
//! Columns are derived from the Arrow schema of what is written (record::complaint_schema,
//! record::alert_schema, the lake's snapshot files), so a new column flows through: a missing
//! column is added to an existing table with ALTER TABLE. Engines are ReplacingMergeTree(version)
//! ordered by the record id, so replays and re-sent snapshots never duplicate a row once merged;
//! read with `FINAL` (or after `OPTIMIZE ... FINAL`) to see exactly one row per id.
//!
//! Compatibility: tested with Debian's ClickHouse 18.16 (the client needs `with_validation(false)`
//! there) and kept to SQL newer servers accept: no LowCardinality, no Bool, no DateTime64, no
//! server-side parameters; data goes as `JSONEachRow`.

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::{FixedOffset, TimeZone};
use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch,
    TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `[sinks.clickhouse]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP endpoint. Default `http://127.0.0.1:8123`; env DUBAN_CLICKHOUSE_URL overrides.
    pub url: String,
    /// Database (created if missing). Default `duban`.
    pub database: String,
    /// User. Default `default`.
    pub user: String,
    /// Name of the environment variable holding the password. Default none (no password).
    pub password_env: Option<String>,
    /// Consumer group of the sink on the complaints and alerts topics. Default `duban-clickhouse`.
    pub group_id: String,
    /// Most records per INSERT. Default 5000.
    pub batch_max_records: usize,
    /// How often changed lake snapshots (issues, complainants) are re-sent, in seconds. Default 10.
    pub snapshot_every_secs: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "duban".into(),
            user: "default".into(),
            password_env: None,
            group_id: "duban-clickhouse".into(),
            batch_max_records: 5000,
            snapshot_every_secs: 10,
        }
    }
}

/// One ClickHouse table written by the sink.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    pub name: &'static str,
    /// Key columns (`ORDER BY`): one row per key after merges.
    pub order_by: &'static [&'static str],
    pub version: Version,
    /// `PARTITION BY` expression, if any.
    pub partition_by: Option<&'static str>,
}

/// Where the ReplacingMergeTree version of a row comes from.
#[derive(Debug, Clone, Copy)]
pub enum Version {
    /// An unsigned column of the record (the alert's `version`).
    Column(&'static str),
    /// Microseconds of a timestamp column (a complaint's `fetched_at`: a re-fetch is newer).
    Micros(&'static str),
    /// The time of writing (snapshots: the latest snapshot wins).
    WriteTime,
}

/// The extra column holding the version.
pub const VERSION_COLUMN: &str = "_version";

pub const COMPLAINTS: TableSpec = TableSpec {
    name: "complaints",
    order_by: &["complaint_id"],
    version: Version::Micros("fetched_at"),
    partition_by: Some("toYYYYMM(received_at)"),
};
pub const ALERTS: TableSpec = TableSpec {
    name: "alerts",
    order_by: &["alert_id"],
    version: Version::Column("version"),
    partition_by: None,
};
pub const ISSUES: TableSpec = TableSpec {
    name: "issues",
    order_by: &["issue_id"],
    version: Version::WriteTime,
    partition_by: None,
};
pub const COMPLAINANTS: TableSpec = TableSpec {
    name: "complainants",
    order_by: &["complainant"],
    version: Version::WriteTime,
    partition_by: None,
};
pub const ALERT_HISTORY: TableSpec = TableSpec {
    name: "alert_history",
    order_by: &["alert_id", "seq"],
    version: Version::WriteTime,
    partition_by: None,
};

/// A connected sink: the client and the tables already checked this run.
pub struct ClickHouseSink {
    client: clickhouse::Client,
    database: String,
    ready: tokio::sync::Mutex<HashMap<&'static str, BTreeSet<String>>>,
}

fn check_ident(kind: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        anyhow::bail!("[sinks.clickhouse] {kind} `{s}` must be letters, digits and _");
    }
    Ok(())
}

impl ClickHouseSink {
    /// Connect and create the database if missing. Env DUBAN_CLICKHOUSE_URL overrides the URL.
    pub async fn connect(cfg: &ClickHouseConfig) -> Result<ClickHouseSink> {
        check_ident("database", &cfg.database)?;
        let url = std::env::var("DUBAN_CLICKHOUSE_URL").unwrap_or_else(|_| cfg.url.clone());
        let mut client = clickhouse::Client::default()
            .with_url(&url)
            .with_user(&cfg.user)
            // Old servers (18.16) know neither the metadata query nor RowBinaryWithNamesAndTypes
            // that validation uses.
            .with_validation(false)
            .with_compression(clickhouse::Compression::None);
        if let Some(var) = &cfg.password_env {
            let pw = std::env::var(var)
                .with_context(|| format!("[sinks.clickhouse] password_env: {var} is not set"))?;
            client = client.with_password(pw);
        }
        client
            .query(&format!("CREATE DATABASE IF NOT EXISTS {}", cfg.database))
            .execute()
            .await
            .with_context(|| {
                format!(
                    "ClickHouse at {url}: cannot create database {}",
                    cfg.database
                )
            })?;
        Ok(ClickHouseSink {
            client: client.with_database(&cfg.database),
            database: cfg.database.clone(),
            ready: Default::default(),
        })
    }

    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// Run a query and return its result as TabSeparated text.
    pub async fn query_text(&self, sql: &str) -> Result<String> {
        let bytes = self
            .client
            .query(sql)
            .fetch_bytes("TabSeparated")?
            .collect()
            .await
            .with_context(|| format!("ClickHouse query failed: {sql}"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Run a statement that returns nothing (DDL, OPTIMIZE).
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.client
            .query(sql)
            .execute()
            .await
            .with_context(|| format!("ClickHouse statement failed: {sql}"))
    }

    /// Create `spec`'s table for `schema` if missing, add columns it lacks; once per run.
    async fn ensure_table(&self, spec: &TableSpec, schema: &Schema) -> Result<()> {
        let mut ready = self.ready.lock().await;
        let wanted: BTreeSet<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        if ready
            .get(spec.name)
            .is_some_and(|have| wanted.is_subset(have))
        {
            return Ok(());
        }
        self.execute(&create_table_sql(spec, schema)?).await?;
        let existing = self
            .query_text(&format!(
                "SELECT name FROM system.columns WHERE database = '{}' AND table = '{}'",
                self.database, spec.name
            ))
            .await?;
        let existing: BTreeSet<String> = existing.lines().map(str::to_string).collect();
        for f in schema.fields() {
            if !existing.contains(f.name()) {
                check_ident("column", f.name())?;
                // New columns are nullable so rows written before them stay valid.
                let ty = ch_type(f.data_type(), true)?;
                self.execute(&format!(
                    "ALTER TABLE {} ADD COLUMN {} {ty}",
                    spec.name,
                    f.name()
                ))
                .await?;
            }
        }
        ready.insert(spec.name, wanted);
        Ok(())
    }

    /// Insert one batch into `spec`'s table (created or extended first).
    pub async fn insert(&self, spec: &TableSpec, batch: &RecordBatch) -> Result<usize> {
        if batch.num_rows() == 0 {
            return Ok(0);
        }
        self.ensure_table(spec, batch.schema().as_ref()).await?;
        let written_at = chrono::Utc::now().timestamp_micros() as u64;
        let body = json_each_row(batch, spec.version, written_at)?;
        let columns: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .chain([VERSION_COLUMN])
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) FORMAT JSONEachRow",
            spec.name,
            columns.join(", ")
        );
        let mut insert = self.client.insert_formatted_with(sql);
        insert
            .send(Bytes::from(body))
            .await
            .with_context(|| format!("ClickHouse: sending rows of {}", spec.name))?;
        insert
            .end()
            .await
            .with_context(|| format!("ClickHouse: inserting into {}", spec.name))?;
        Ok(batch.num_rows())
    }

    pub async fn write_complaints(&self, rows: &[crate::record::Complaint]) -> Result<usize> {
        self.insert(&COMPLAINTS, &crate::record::complaints_to_batch(rows)?)
            .await
    }

    pub async fn write_alerts(&self, rows: &[crate::record::Alert]) -> Result<usize> {
        self.insert(&ALERTS, &crate::record::alerts_to_batch(rows)?)
            .await
    }

    /// Send the lake's snapshot tables (issues, complainants, alert_history when present).
    pub async fn write_snapshots(&self, lake: &Path) -> Result<usize> {
        let mut n = 0;
        for spec in [ISSUES, COMPLAINANTS, ALERT_HISTORY] {
            for file in snapshot_files(lake, spec.name)? {
                for b in read_parquet(&file)? {
                    n += self.insert(&spec, &b).await?;
                }
            }
        }
        Ok(n)
    }

    /// Copy a whole lake (`duban sink clickhouse --lake DIR`): complaints, alerts and snapshots.
    /// Idempotent: running it again replaces rows instead of adding them.
    pub async fn load_lake(&self, lake: &Path) -> Result<LoadReport> {
        if !lake.is_dir() {
            anyhow::bail!("lake folder {} does not exist", lake.display());
        }
        let mut report = LoadReport::default();
        let root = lake.join("complaints");
        if root.is_dir() {
            let mut days: Vec<PathBuf> = std::fs::read_dir(&root)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            days.sort();
            for day in days {
                for file in crate::lake::compact::data_files(&day)? {
                    for b in read_parquet(&file)? {
                        report.complaints += self.insert(&COMPLAINTS, &b).await?;
                    }
                }
            }
        }
        for file in snapshot_files(lake, "alerts")? {
            for b in read_parquet(&file)? {
                report.alerts += self.insert(&ALERTS, &b).await?;
            }
        }
        report.snapshot_rows = self.write_snapshots(lake).await?;
        Ok(report)
    }
}

/// Rows a lake load sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub complaints: usize,
    pub alerts: usize,
    pub snapshot_rows: usize,
}

fn snapshot_files(lake: &Path, table: &str) -> Result<Vec<PathBuf>> {
    crate::lake::compact::data_files(&lake.join(table))
}

fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not Parquet", path.display()))?
        .with_batch_size(20_000)
        .build()?
        .map(|b| b.with_context(|| format!("reading {}", path.display())))
        .collect()
}

/// ClickHouse type of an Arrow type (Nullable when the field is).
pub fn ch_type(dt: &DataType, nullable: bool) -> Result<String> {
    let base = match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "String".to_string(),
        DataType::Int64 => "Int64".into(),
        DataType::Int32 => "Int32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::Float64 => "Float64".into(),
        DataType::Float32 => "Float32".into(),
        DataType::Boolean => "UInt8".into(),
        DataType::Date32 => "Date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            format!("DateTime('{}')", ch_timezone(tz.as_deref())?)
        }
        DataType::List(item) => {
            // Arrays cannot be Nullable in ClickHouse: a null list is written as [].
            return Ok(format!(
                "Array({})",
                ch_type(item.data_type(), item.is_nullable())?
            ));
        }
        other => anyhow::bail!("the ClickHouse sink has no mapping for Arrow type {other}"),
    };
    Ok(if nullable {
        format!("Nullable({base})")
    } else {
        base
    })
}

/// `+08:00` → `Etc/GMT-8` (POSIX zone names invert the sign); whole hours only.
fn ch_timezone(tz: Option<&str>) -> Result<String> {
    let off = parse_offset(tz)?;
    let secs = off.local_minus_utc();
    if secs % 3600 != 0 {
        anyhow::bail!("time zone {tz:?} is not a whole number of hours");
    }
    let h = secs / 3600;
    Ok(match h {
        0 => "UTC".into(),
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    })
}

fn parse_offset(tz: Option<&str>) -> Result<FixedOffset> {
    match tz {
        None | Some("UTC") | Some("+00:00") => Ok(FixedOffset::east_opt(0).expect("zero offset")),
        Some(s) => s
            .parse::<FixedOffset>()
            .map_err(|_| anyhow::anyhow!("unsupported time zone {s} (use an offset like +08:00)")),
    }
}

/// The CREATE TABLE statement for `spec` with `schema`'s columns plus the version column.
pub fn create_table_sql(spec: &TableSpec, schema: &Schema) -> Result<String> {
    check_ident("table", spec.name)?;
    let mut cols = Vec::new();
    for f in schema.fields() {
        check_ident("column", f.name())?;
        let key = spec.order_by.contains(&f.name().as_str());
        // Key columns are never Nullable (newer servers refuse nullable keys by default).
        cols.push(format!(
            "    {} {}",
            f.name(),
            ch_type(f.data_type(), f.is_nullable() && !key)?
        ));
    }
    for k in spec.order_by {
        if schema.index_of(k).is_err() {
            anyhow::bail!("table {} lacks its key column {k}", spec.name);
        }
    }
    cols.push(format!("    {VERSION_COLUMN} UInt64"));
    let partition = spec
        .partition_by
        .map(|p| format!(" PARTITION BY {p}"))
        .unwrap_or_default();
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE = ReplacingMergeTree({VERSION_COLUMN}){partition} ORDER BY ({})",
        spec.name,
        cols.join(",\n"),
        spec.order_by.join(", ")
    ))
}

/// Encode a batch as ClickHouse `JSONEachRow`, with the version column appended.
pub fn json_each_row(batch: &RecordBatch, version: Version, written_at: u64) -> Result<Vec<u8>> {
    let schema = batch.schema();
    let n = batch.num_rows();
    let mut lines: Vec<String> = vec![String::from("{"); n];
    for (ci, f) in schema.fields().iter().enumerate() {
        let col = batch.column(ci);
        let key = serde_json::to_string(f.name())?;
        for (i, line) in lines.iter_mut().enumerate() {
            if ci > 0 {
                line.push(',');
            }
            line.push_str(&key);
            line.push(':');
            line.push_str(&json_value(col.as_ref(), i)?);
        }
    }
    let versions: Vec<u64> = match version {
        Version::WriteTime => vec![written_at; n],
        Version::Column(c) => {
            let a = batch
                .column_by_name(c)
                .and_then(|a| a.as_any().downcast_ref::<UInt64Array>())
                .with_context(|| format!("version column {c} is not UInt64"))?;
            (0..n).map(|i| a.value(i)).collect()
        }
        Version::Micros(c) => {
            let a = batch
                .column_by_name(c)
                .and_then(|a| a.as_any().downcast_ref::<TimestampMicrosecondArray>())
                .with_context(|| format!("version column {c} is not a timestamp"))?;
            (0..n).map(|i| a.value(i).max(0) as u64).collect()
        }
    };
    let mut out = Vec::with_capacity(n * 256);
    for (line, v) in lines.iter().zip(versions) {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(format!(",\"{VERSION_COLUMN}\":{v}}}\n").as_bytes());
    }
    Ok(out)
}

fn json_value(col: &dyn Array, i: usize) -> Result<String> {
    if col.is_null(i) {
        return Ok(if matches!(col.data_type(), DataType::List(_)) {
            "[]".into()
        } else {
            "null".into()
        });
    }
    let float = |x: f64| {
        if x.is_finite() {
            serde_json::to_string(&x).unwrap_or_else(|_| "0".into())
        } else {
            // ClickHouse reads these unquoted in text formats.
            if x.is_nan() {
                "nan"
            } else if x > 0.0 {
                "inf"
            } else {
                "-inf"
            }
            .into()
        }
    };
    Ok(match col.data_type() {
        DataType::Utf8 => serde_json::to_string(col.as_string::<i32>().value(i))?,
        DataType::LargeUtf8 => serde_json::to_string(col.as_string::<i64>().value(i))?,
        DataType::Utf8View => serde_json::to_string(col.as_string_view().value(i))?,
        DataType::Int64 => downcast::<Int64Array>(col)?.value(i).to_string(),
        DataType::UInt64 => downcast::<UInt64Array>(col)?.value(i).to_string(),
        DataType::Int32 => col
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
            .value(i)
            .to_string(),
        DataType::UInt32 => col
            .as_primitive::<datafusion::arrow::datatypes::UInt32Type>()
            .value(i)
            .to_string(),
        DataType::Float64 => float(downcast::<Float64Array>(col)?.value(i)),
        DataType::Float32 => float(f64::from(
            col.as_primitive::<datafusion::arrow::datatypes::Float32Type>()
                .value(i),
        )),
        DataType::Boolean => u8::from(downcast::<BooleanArray>(col)?.value(i)).to_string(),
        DataType::Date32 => {
            let d = downcast::<Date32Array>(col)?
                .value_as_date(i)
                .context("date out of range")?;
            format!("\"{d}\"")
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let off = parse_offset(tz.as_deref())?;
            let us = downcast::<TimestampMicrosecondArray>(col)?.value(i);
            let t = off
                .timestamp_micros(us)
                .single()
                .context("timestamp out of range")?;
            // Wall time in the column's zone, which `DateTime('Etc/GMT-8')` reads back as such.
            format!("\"{}\"", t.format("%Y-%m-%d %H:%M:%S"))
        }
        DataType::List(_) => {
            let items = col.as_list::<i32>().value(i);
            let vals = (0..items.len())
                .map(|j| json_value(items.as_ref(), j))
                .collect::<Result<Vec<_>>>()?;
            format!("[{}]", vals.join(","))
        }
        other => anyhow::bail!("the ClickHouse sink has no mapping for Arrow type {other}"),
    })
}

fn downcast<T: 'static>(col: &dyn Array) -> Result<&T> {
    col.as_any()
        .downcast_ref::<T>()
        .context("column type does not match its schema")
}

/// Follow the complaints and alerts topics into ClickHouse until `stop` (and re-send changed lake
/// snapshots every `snapshot_every_secs`).
///
/// Delivery: at least once into tables that keep one row per id (ReplacingMergeTree, read with
/// `FINAL`), so a batch written again after a failure never shows twice. It lives through outages
/// of Kafka and of ClickHouse: a failed write or offset commit sends it back to the committed
/// offsets (the consumer created anew) after a delay that grows to a few seconds, told once per
/// interval (`ops::outage`), not ready meanwhile; other errors end it.
pub async fn run_consumer(
    cfg: &ClickHouseConfig,
    bus: Arc<crate::bus::KafkaBus>,
    lake: &Path,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let health = crate::ops::Component::register("sink.clickhouse");
    let mut outage = crate::ops::Outage::new("sink.clickhouse", Some(health.clone()));
    let mut snapshot_seen: HashMap<PathBuf, std::time::SystemTime> = HashMap::new();
    tokio::pin!(stop);
    loop {
        let once = follow_once(
            cfg,
            &bus,
            lake,
            &mut snapshot_seen,
            &health,
            &mut outage,
            stop.as_mut(),
        );
        let err = match once.await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        health.not_ready("restarting from the committed offsets after an error");
        let delay = outage.failed(err.context("ClickHouse sink"))?;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.as_mut() => return Ok(()),
        }
    }
}

/// One run of the sink: connect, consume and write until a stop (Ok) or an error.
async fn follow_once(
    cfg: &ClickHouseConfig,
    bus: &Arc<crate::bus::KafkaBus>,
    lake: &Path,
    snapshot_seen: &mut HashMap<PathBuf, std::time::SystemTime>,
    health: &crate::ops::Component,
    outage: &mut crate::ops::Outage,
    mut stop: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<()> {
    use crate::ops::InternalEvent;
    use rdkafka::Message;
    use rdkafka::consumer::{CommitMode, Consumer};
    let sink = ClickHouseSink::connect(cfg).await?;
    let topics = bus.topics();
    let consumer = bus.consumer(&cfg.group_id)?;
    consumer
        .subscribe(&[topics.complaints.as_str(), topics.alerts.as_str()])
        .context("ClickHouse sink cannot subscribe")?;
    let every = Duration::from_secs(cfg.snapshot_every_secs.max(1));
    let mut snapshot_at = Instant::now() - every;
    let linger = Duration::from_millis(200);
    health.ready();
    loop {
        if snapshot_at.elapsed() >= every {
            send_changed_snapshots(&sink, lake, snapshot_seen).await?;
            snapshot_at = Instant::now();
        }
        let first = tokio::select! {
            m = consumer.recv() => match m {
                Ok(m) => m.detach(),
                Err(e) => {
                    // librdkafka retries on its own; the outage is told once per interval. An
                    // error queued while the broker was away may come after it is back: only one
                    // the broker does not contradict is an outage.
                    if !crate::ops::outage::kafka_answers(&consumer) {
                        outage.failed(anyhow::Error::new(e).context("ClickHouse sink consumer"))?;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = tokio::time::sleep(every) => {
                // Idle in an outage, no record comes to say it ended: ask the broker.
                if outage.ongoing() && crate::ops::outage::kafka_answers(&consumer) {
                    outage.ok();
                }
                continue;
            }
            () = stop.as_mut() => {
                if let Err(e) = send_changed_snapshots(&sink, lake, snapshot_seen).await {
                    tracing::warn!(target: "duban::sink", "ClickHouse sink: snapshots not sent at stop: {e:#}");
                }
                return Ok(());
            }
        };
        let mut msgs = vec![first];
        let until = Instant::now() + linger;
        while msgs.len() < cfg.batch_max_records.max(1) {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, consumer.recv()).await {
                Ok(Ok(m)) => msgs.push(m.detach()),
                Ok(Err(_)) => break,
                Err(_) => break,
            }
        }
        let (mut complaints, mut alerts, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        for m in &msgs {
            let payload = m.payload().unwrap_or_default();
            let origin = format!("{}/{}/{}", m.topic(), m.partition(), m.offset());
            let parsed = if m.topic() == topics.complaints {
                serde_json::from_slice::<crate::record::Complaint>(payload)
                    .map(|c| complaints.push(c))
            } else {
                serde_json::from_slice::<crate::record::Alert>(payload).map(|a| alerts.push(a))
            };
            // A record the sink cannot read goes to the dead-letter topic, not lost, not fatal.
            if let Err(e) = parsed {
                let e = crate::redact::json_error(&e);
                tracing::warn!(target: "duban::sink", %origin, "ClickHouse sink: unreadable record: {e}");
                let reason = format!("not a {} record: {e}", m.topic());
                crate::ops::events::DlqRecordsWritten {
                    stage: "sink.clickhouse",
                    reason: &reason,
                    records: 1,
                }
                .emit();
                let d = crate::record::DeadLetter::new(
                    "sink.clickhouse",
                    None,
                    reason,
                    &origin,
                    m.key(),
                    payload,
                );
                dead.push((origin, serde_json::to_vec(&d)?));
            }
        }
        bus.send_all(&topics.dlq, &dead).await?;
        let n = sink.write_complaints(&complaints).await?;
        crate::ops::events::SinkRowsWritten {
            sink: "clickhouse",
            table: COMPLAINTS.name,
            rows: n,
        }
        .emit();
        let n = sink.write_alerts(&alerts).await?;
        crate::ops::events::SinkRowsWritten {
            sink: "clickhouse",
            table: ALERTS.name,
            rows: n,
        }
        .emit();
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .context("ClickHouse sink cannot commit offsets")?;
        outage.ok();
        tracing::info!(target: "duban::sink", complaints = complaints.len(), alerts = alerts.len(), "ClickHouse batch written");
    }
}

async fn send_changed_snapshots(
    sink: &ClickHouseSink,
    lake: &Path,
    seen: &mut HashMap<PathBuf, std::time::SystemTime>,
) -> Result<()> {
    for spec in [ISSUES, COMPLAINANTS, ALERT_HISTORY] {
        for file in snapshot_files(lake, spec.name)? {
            let modified = std::fs::metadata(&file)?.modified()?;
            if seen.get(&file) == Some(&modified) {
                continue;
            }
            for b in read_parquet(&file)? {
                sink.insert(&spec, &b).await?;
            }
            seen.insert(file, modified);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_the_arrow_schemas() {
        let sql = create_table_sql(&ALERTS, &crate::record::alert_schema()).expect("alerts");
        for f in crate::record::alert_schema().fields() {
            assert!(
                sql.contains(&format!("    {} ", f.name())),
                "{} in {sql}",
                f.name()
            );
        }
        assert!(sql.contains("ReplacingMergeTree(_version)"));
        assert!(sql.contains("ORDER BY (alert_id)"));
        let sql = create_table_sql(&COMPLAINTS, &crate::record::complaint_schema()).expect("c");
        assert!(sql.contains("received_at DateTime('Etc/GMT-8')"), "{sql}");
        assert!(sql.contains("phone_masked Nullable(String)"));
        assert!(sql.contains("PARTITION BY toYYYYMM(received_at)"));
        assert_eq!(ch_timezone(Some("-05:00")).expect("tz"), "Etc/GMT+5");
        let list = DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new(
            "item",
            DataType::Utf8,
            true,
        )));
        assert_eq!(
            ch_type(&list, true).expect("list"),
            "Array(Nullable(String))"
        );
    }

    #[test]
    fn rows_encode_as_json_each_row() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("t");
        let mut c = crate::record::Complaint {
            complaint_id: "c1".into(),
            fetched_at: at("2026-11-01T10:00:00+08:00"),
            phone_masked: Some("*******1234".into()),
            domain: "城市管理".into(),
            domain_confidence: 0.5,
            likes: Some(3),
            content_hash: "h".into(),
            duplicate_group: "c1".into(),
            ..crate::record::Complaint::new(
                "hotline",
                "S1",
                at("2026-11-01T09:00:05+08:00"),
                "标题 \"quoted\"",
                "b\nline",
            )
        };
        c.likes = Some(3);
        let batch = crate::record::complaints_to_batch(&[c.clone()]).expect("batch");
        let text = String::from_utf8(json_each_row(&batch, COMPLAINTS.version, 0).expect("enc"))
            .expect("utf8");
        let v: serde_json::Value = serde_json::from_str(text.trim()).expect("json line");
        assert_eq!(v["received_at"], "2026-11-01 09:00:05");
        assert_eq!(v["title"], "标题 \"quoted\"");
        assert_eq!(v["complainant"], serde_json::Value::Null);
        assert_eq!(v["likes"], 3);
        assert_eq!(
            v["_version"].as_u64(),
            Some(c.fetched_at.timestamp_micros() as u64)
        );
    }
}
