//! The engine: raw records → decode → DataFusion normalization (pipelines/normalize.sql with UDFs)
//! → stateful operators (dedup, count rules) → canonical complaints, changed alerts, dead letters.

pub mod cluster;
pub mod decode;
pub mod frequency;
pub mod minhash;
pub mod normalize;
pub mod operator;
pub mod partition;
pub mod people;
pub mod pii;
pub mod places;
pub mod rules;
pub mod taxonomy;
pub mod triage;
pub mod units;

use anyhow::{Context, Result};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::config::Config;
use crate::record::{Alert, Complaint, DeadLetter, TZ, complaint_id, local_offset};
pub use decode::RawInput;
use minhash::MinHasher;
use partition::Partitioned;
use rules::{AnalyticState, Prepared, RuleContext};
use taxonomy::DomainClassifier;

/// The per-record SQL of the engine.
pub const NORMALIZE_SQL: &str = include_str!("../../pipelines/normalize.sql");

/// What one micro-batch produced.
#[derive(Debug, Default)]
pub struct EngineOutput {
    /// New canonical complaints (re-delivered complaint ids are dropped).
    pub complaints: Vec<Complaint>,
    /// Alerts whose state changed, latest state each.
    pub alerts: Vec<Alert>,
    /// Records that could not be decoded.
    pub dead: Vec<DeadLetter>,
}

/// The environment variable holding the key of complainant pseudonyms.
pub const PSEUDONYM_KEY_ENV: &str = "DUBAN_PSEUDONYM_KEY";

/// The development key of `duban demo`: public in this source, so pseudonyms made with it are no
/// secret. Refused everywhere else.
const DEVELOPMENT_KEY: &[u8] = b"duban-development-pseudonym-key";

/// Shortest key accepted from the environment (a brute force of the key must stay out of reach).
const MIN_KEY_BYTES: usize = 16;

/// Where the engine's pseudonym key comes from. Never a config file: the key is a secret, held in
/// the environment of the processes that pseudonymize and nowhere else (README: threat model).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum PseudonymKey {
    /// `DUBAN_PSEUDONYM_KEY`, required: production commands (`run`, `process`, `backfill`) fail
    /// at start without it.
    #[default]
    Env,
    /// `DUBAN_PSEUDONYM_KEY` when set, else the development key, with a warning (`duban demo`).
    EnvOrDevelopment,
    /// A key given in code: tests and benchmarks.
    Given(Vec<u8>),
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PseudonymKey::Env => f.write_str("Env"),
            PseudonymKey::EnvOrDevelopment => f.write_str("EnvOrDevelopment"),
            PseudonymKey::Given(_) => f.write_str("Given(<redacted>)"),
        }
    }
}

impl PseudonymKey {
    /// The key's bytes; an error (one line) when a production command has none, or the
    /// environment holds the development key or a key shorter than 16 bytes.
    pub fn resolve(&self) -> Result<Vec<u8>> {
        self.resolve_from(std::env::var(PSEUDONYM_KEY_ENV).ok())
    }

    /// [`PseudonymKey::resolve`] with the environment's value given.
    fn resolve_from(&self, env: Option<String>) -> Result<Vec<u8>> {
        match (self, env.filter(|k| !k.is_empty())) {
            (PseudonymKey::Given(k), _) => Ok(k.clone()),
            (_, Some(k)) => {
                anyhow::ensure!(
                    k.as_bytes() != DEVELOPMENT_KEY,
                    "{PSEUDONYM_KEY_ENV} holds the development key, which is public in duban's source: set a secret key"
                );
                anyhow::ensure!(
                    k.len() >= MIN_KEY_BYTES,
                    "{PSEUDONYM_KEY_ENV} must hold at least {MIN_KEY_BYTES} bytes (it has {})",
                    k.len()
                );
                Ok(k.into_bytes())
            }
            (PseudonymKey::EnvOrDevelopment, None) => {
                static WARN: std::sync::Once = std::sync::Once::new();
                WARN.call_once(|| {
                    tracing::warn!(
                        "{PSEUDONYM_KEY_ENV} is not set: the demo uses the development pseudonym key"
                    )
                });
                Ok(DEVELOPMENT_KEY.to_vec())
            }
            (PseudonymKey::Env, None) => anyhow::bail!(
                "{PSEUDONYM_KEY_ENV} is not set: this command writes pseudonyms and needs the bureau's secret key (at least {MIN_KEY_BYTES} bytes); only `duban demo` runs with a development key"
            ),
        }
    }
}

fn string_udf(
    name: &str,
    arity: usize,
    f: impl Fn(&[Option<&str>]) -> Option<String> + Send + Sync + 'static,
) -> ScalarUDF {
    let fun = Arc::new(
        move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let arrays: Vec<ArrayRef> = arrays
                .iter()
                .map(|a| cast(a, &DataType::Utf8))
                .collect::<Result<_, _>>()?;
            let cols: Vec<&StringArray> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
            let n = arrays.first().map_or(0, |a| a.len());
            let mut b = StringBuilder::with_capacity(n, n * 64);
            let mut vals: Vec<Option<&str>> = Vec::with_capacity(arity);
            for i in 0..n {
                vals.clear();
                vals.extend(
                    cols.iter()
                        .map(|c| if c.is_null(i) { None } else { Some(c.value(i)) }),
                );
                match f(&vals) {
                    Some(s) => b.append_value(s),
                    None => b.append_null(),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish())))
        },
    );
    create_udf(
        name,
        vec![DataType::Utf8; arity],
        DataType::Utf8,
        Volatility::Immutable,
        fun,
    )
}

/// Hash of a normalized text with whitespace removed: equal hashes are exact duplicates.
pub fn content_hash(text: &str) -> String {
    let mut h = Sha256::new();
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        let mut buf = [0u8; 4];
        h.update(c.encode_utf8(&mut buf).as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// Argument `i` of a UDF row, `None` when absent or null.
fn s<'a>(v: &[Option<&'a str>], i: usize) -> Option<&'a str> {
    v.get(i).copied().flatten()
}

/// Register duban's keyless per-record UDFs on a DataFusion context (also used by `duban sql`,
/// Flight SQL and the reports). The keyed `pseudonym` is not among them: see [`register_pseudonym`].
pub fn register_udfs(ctx: &SessionContext, classifier: Arc<dyn DomainClassifier>) {
    use normalize as n;
    ctx.register_udf(string_udf("normalize_text", 1, move |v| {
        s(v, 0).map(n::normalize_text)
    }));
    ctx.register_udf(string_udf("mask_phones", 1, move |v| {
        s(v, 0).map(pii::mask_contacts_in_text)
    }));
    ctx.register_udf(string_udf("mask_personal", 2, move |v| {
        s(v, 0).map(|t| pii::mask_personal_in_text(t, s(v, 1)))
    }));
    ctx.register_udf(string_udf("mask_phone", 1, move |v| {
        s(v, 0).and_then(pii::mask_phone)
    }));
    ctx.register_udf(string_udf("complaint_id", 2, move |v| {
        Some(complaint_id(s(v, 0)?, s(v, 1)?))
    }));
    ctx.register_udf(string_udf("derive_title", 2, move |v| {
        Some(n::derive_title(
            s(v, 0).unwrap_or(""),
            s(v, 1).unwrap_or(""),
        ))
    }));
    ctx.register_udf(string_udf("canonical_district", 2, move |v| {
        n::canonical_district(s(v, 0), s(v, 1).unwrap_or(""))
    }));
    ctx.register_udf(string_udf("place", 1, move |v| {
        s(v, 0).and_then(places::place_of)
    }));
    ctx.register_udf(string_udf("content_hash", 1, move |v| {
        s(v, 0).map(content_hash)
    }));
    // `classify(title, body)` → "domain|confidence|version": one pass for the three columns.
    let c1 = classifier.clone();
    ctx.register_udf(string_udf("classify", 2, move |v| {
        let (d, c, version) = c1.classify_versioned(s(v, 0).unwrap_or(""), s(v, 1).unwrap_or(""));
        Some(format!("{d}|{c}|{}", version.replace('|', "_")))
    }));
    let c2 = classifier;
    ctx.register_udf(string_udf("classify_domain", 2, move |v| {
        Some(c2.classify(s(v, 0).unwrap_or(""), s(v, 1).unwrap_or("")).0)
    }));
}

/// Register the keyed `pseudonym(channel, phone, user_id, name)` UDF: the engine's normalize
/// contexts only. A session with it and the lake's masked phones could test every candidate of
/// the hidden digits against the complainant column, so it never goes into an analyst's session.
pub fn register_pseudonym(ctx: &SessionContext, key: Vec<u8>) {
    use normalize as n;
    ctx.register_udf(string_udf("pseudonym", 4, move |v| {
        n::identity(s(v, 0)?, s(v, 1), s(v, 2), s(v, 3)).map(|id| n::pseudonym(&key, &id))
    }));
}

fn decoded_schema() -> Arc<Schema> {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let ts = |n: &str| {
        Field::new(
            n,
            DataType::Timestamp(TimeUnit::Microsecond, Some(TZ.into())),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        s("channel", false),
        s("source_id", false),
        s("version", true),
        ts("received_at"),
        ts("fetched_at"),
        s("title", true),
        s("body", false),
        s("name", true),
        s("phone", true),
        s("user_id", true),
        s("district", true),
        s("address", true),
        s("category", true),
        s("status", true),
        Field::new("likes", DataType::Int64, true),
        s("handling_unit", true),
        s("reply", true),
        s("reply_unit", true),
        Field::new(
            "replied_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(TZ.into())),
            true,
        ),
    ]))
}

fn decoded_batch(rows: &[decode::DecodedRow]) -> Result<RecordBatch> {
    let strs = |f: &dyn Fn(&decode::DecodedRow) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(f)))
    };
    let ts = |f: &dyn Fn(&decode::DecodedRow) -> i64| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(f)).with_timezone(TZ))
    };
    let now = chrono::Utc::now().timestamp_micros();
    let cols: Vec<ArrayRef> = vec![
        strs(&|r| Some(&r.channel)),
        strs(&|r| Some(&r.source_id)),
        strs(&|r| r.version.as_deref()),
        ts(&|r| r.received_at.map_or(now, |t| t.timestamp_micros())),
        ts(&|r| r.fetched_at.map_or(now, |t| t.timestamp_micros())),
        strs(&|r| r.title.as_deref()),
        strs(&|r| Some(&r.body)),
        strs(&|r| r.name.as_deref()),
        strs(&|r| r.phone.as_deref()),
        strs(&|r| r.user_id.as_deref()),
        strs(&|r| r.district.as_deref()),
        strs(&|r| r.address.as_deref()),
        strs(&|r| r.category.as_deref()),
        strs(&|r| r.status.as_deref()),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.likes))),
        strs(&|r| r.handling_unit.as_deref()),
        strs(&|r| r.reply.as_deref()),
        strs(&|r| r.reply_unit.as_deref()),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                rows.iter()
                    .map(|r| r.replied_at.map(|t| t.timestamp_micros())),
            )
            .with_timezone(TZ),
        ),
    ];
    Ok(RecordBatch::try_new(decoded_schema(), cols)?)
}

/// Read the normalized batch (the SQL's output) back into complaints.
fn batch_to_complaints(batch: &RecordBatch) -> Result<Vec<Complaint>> {
    let col = |name: &str, ty: &DataType| -> Result<ArrayRef> {
        let c = batch
            .column_by_name(name)
            .with_context(|| format!("normalize.sql yields no column {name}"))?;
        Ok(cast(c, ty)?)
    };
    let utf8 = DataType::Utf8;
    let tsty = DataType::Timestamp(TimeUnit::Microsecond, Some(TZ.into()));
    let names = [
        "complaint_id",
        "channel",
        "source_id",
        "title",
        "body",
        "complainant",
        "phone_masked",
        "district",
        "address",
        "domain",
        "source_category",
        "source_status",
        "content_hash",
        "place",
        "source_version",
        "classifier_version",
        "handling_unit",
        "reply_text",
        "reply_unit",
    ];
    let strs: Vec<ArrayRef> = names.iter().map(|n| col(n, &utf8)).collect::<Result<_>>()?;
    let s: Vec<&StringArray> = strs.iter().map(|a| a.as_string::<i32>()).collect();
    let get = |i: usize, r: usize| -> Option<String> {
        if s[i].is_null(r) {
            None
        } else {
            Some(s[i].value(r).to_string())
        }
    };
    let received = col("received_at", &tsty)?;
    let fetched = col("fetched_at", &tsty)?;
    let received: &TimestampMicrosecondArray = received.as_primitive();
    let fetched: &TimestampMicrosecondArray = fetched.as_primitive();
    let conf = col("domain_confidence", &DataType::Float64)?;
    let conf: &Float64Array = conf.as_primitive();
    let likes = col("likes", &DataType::Int64)?;
    let likes: &Int64Array = likes.as_primitive();
    let replied = col("replied_at", &tsty)?;
    let replied: &TimestampMicrosecondArray = replied.as_primitive();
    let time = |a: &TimestampMicrosecondArray, r: usize| {
        chrono::DateTime::from_timestamp_micros(a.value(r))
            .map(|t| t.with_timezone(&local_offset()))
            .context("timestamp out of range")
    };
    (0..batch.num_rows())
        .map(|r| {
            Ok(Complaint {
                complaint_id: get(0, r).context("null complaint_id")?,
                channel: get(1, r).unwrap_or_default(),
                source_id: get(2, r).unwrap_or_default(),
                received_at: time(received, r)?,
                fetched_at: time(fetched, r)?,
                title: get(3, r).unwrap_or_default(),
                body: get(4, r).unwrap_or_default(),
                complainant: get(5, r),
                phone_masked: get(6, r),
                district: get(7, r),
                address: get(8, r),
                domain: get(9, r).unwrap_or_else(|| taxonomy::UNCLASSIFIED.to_string()),
                domain_confidence: if conf.is_null(r) { 0.0 } else { conf.value(r) },
                source_category: get(10, r),
                source_status: get(11, r),
                likes: if likes.is_null(r) {
                    None
                } else {
                    Some(likes.value(r))
                },
                content_hash: get(12, r).unwrap_or_default(),
                duplicate_of: None,
                duplicate_group: String::new(),
                place: get(13, r),
                source_version: get(14, r),
                classifier_version: get(15, r).filter(|v| !v.is_empty()),
                issue_id: None,
                flags: String::new(),
                handling_unit: get(16, r),
                reply_text: get(17, r),
                reply_unit: get(18, r),
                replied_at: if replied.is_null(r) {
                    None
                } else {
                    Some(time(replied, r)?)
                },
            })
        })
        .collect()
}

/// Rows below which a batch is not worth cutting for parallel normalization (per slice).
const PARALLEL_MIN_ROWS: usize = 128;

/// Normalized complaints; with a hasher, each complaint's text-only part for the keyed state
/// (else none); dead letters.
type Normalized = (Vec<Complaint>, Vec<Prepared>, Vec<DeadLetter>);

/// Decode and normalize `inputs` on one DataFusion context (its table `raw` is replaced); with
/// `hasher`, prepare the complaints for the keyed state too.
async fn normalize_on(
    ctx: &SessionContext,
    inputs: &[RawInput],
    hasher: Option<&MinHasher>,
    bounds: &decode::TimeBounds,
) -> Result<Normalized> {
    let (rows, dead) = decode::decode_all(inputs, bounds);
    if rows.is_empty() {
        return Ok((Vec::new(), Vec::new(), dead));
    }
    let batch = decoded_batch(&rows)?;
    drop(rows);
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    ctx.deregister_table("raw")?;
    ctx.register_table("raw", Arc::new(table))?;
    let batches = ctx
        .sql(NORMALIZE_SQL)
        .await
        .context("planning pipelines/normalize.sql")?
        .collect()
        .await?;
    let mut complaints = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for b in &batches {
        complaints.extend(batch_to_complaints(b)?);
    }
    let prepared = match hasher {
        Some(h) => complaints.iter().map(|c| Prepared::new(h, c)).collect(),
        None => Vec::new(),
    };
    Ok((complaints, prepared, dead))
}

/// Decode and normalize `inputs` (see `Engine::normalize`) on these contexts: a large batch in
/// contiguous slices on parallel threads, one context each, joined in slice order.
async fn normalize_with(
    ctxs: &[SessionContext],
    inputs: &[RawInput],
    hasher: Option<&MinHasher>,
    bounds: &decode::TimeBounds,
) -> Result<Normalized> {
    let threads = ctxs.len();
    if threads <= 1 || inputs.len() < 2 * PARALLEL_MIN_ROWS {
        return normalize_on(&ctxs[0], inputs, hasher, bounds).await;
    }
    let slices = threads.min(inputs.len() / PARALLEL_MIN_ROWS);
    let per = inputs.len().div_ceil(slices);
    let results = crate::util::par::on_threads(
        "a normalize thread",
        inputs.chunks(per).zip(ctxs),
        |(chunk, ctx)| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .context("a normalize thread's runtime")?
                .block_on(normalize_on(ctx, chunk, hasher, bounds))
        },
    )?;
    let mut complaints = Vec::with_capacity(inputs.len());
    let mut prepared = Vec::with_capacity(if hasher.is_some() { inputs.len() } else { 0 });
    let mut dead = Vec::new();
    for r in results {
        let (c, p, d) = r?;
        complaints.extend(c);
        prepared.extend(p);
        dead.extend(d);
    }
    Ok((complaints, prepared, dead))
}

/// The keyed stage of one normalized and prepared batch: its complaints applied in order to the
/// state partitions; the batch's output with its dead letters.
fn keyed_stage(core: &mut Partitioned, cx: &RuleContext, normalized: Normalized) -> EngineOutput {
    let (complaints, prepared, dead) = normalized;
    // Every complaint was prepared (normalized with the hasher): a shorter list would drop rows.
    assert_eq!(complaints.len(), prepared.len(), "unprepared complaints");
    let (complaints, alerts) = if complaints.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        core.apply(complaints.into_iter().zip(prepared).collect(), cx)
    };
    EngineOutput {
        complaints,
        alerts,
        dead,
    }
}

/// One engine instance: a DataFusion context with the UDFs, and the keyed state (partitioned
/// like the Kafka stage's topics, `[kafka] partitions`; see `partition`).
pub struct Engine {
    /// One DataFusion context per normalize thread (the first also serves small batches).
    ctxs: Vec<SessionContext>,
    /// The classifier the contexts' UDFs use: pinned anew at each batch boundary.
    classifier: Arc<crate::classify::registry::ModelSlot>,
    /// The keyed state's MinHasher, for preparing complaints on the stateless stage.
    hasher: MinHasher,
    /// When a record may be dated (`[engine] max_future_secs`, `oldest_record_date`).
    bounds: decode::TimeBounds,
    core: Partitioned,
    config: Config,
}

impl Engine {
    /// An engine whose snapshot view (`view`) covers the whole run: summaries of issues and
    /// complainants evicted from the windowed state are kept (`demo`, `backfill`).
    pub fn new(config: &Config) -> Result<Engine> {
        Engine::with_archive(config, true)
    }

    /// `keep_evicted = false`: state bounded by the windows alone, like a `duban process`
    /// worker's (which publishes issues as they change instead of keeping them).
    pub fn with_archive(config: &Config, keep_evicted: bool) -> Result<Engine> {
        units::install(config.units.path.as_deref())?;
        let classifier = crate::classify::engine_classifier(config)?;
        let model: Arc<dyn DomainClassifier> = classifier.clone();
        // One partition each: rows come out in input order (the keyed operators depend on it).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let key = config.engine.pseudonym_key.resolve()?;
        let ctxs = (0..threads.max(1))
            .map(|_| {
                let ctx = SessionContext::new_with_config(
                    datafusion::prelude::SessionConfig::new().with_target_partitions(1),
                );
                register_udfs(&ctx, model.clone());
                register_pseudonym(&ctx, key.clone());
                ctx
            })
            .collect();
        Ok(Engine {
            ctxs,
            classifier,
            hasher: MinHasher::new(config.dedup.ngram, config.dedup.bands, config.dedup.rows),
            bounds: decode::TimeBounds::of(config),
            core: Partitioned::new(
                &config.dedup,
                config.kafka.partitions.max(1) as usize,
                keep_evicted,
            ),
            config: config.clone(),
        })
    }

    /// The stateless part: decode and normalize raw records (pipelines/normalize.sql) into
    /// canonical complaints without analytic columns, and dead letters. Rows keep input order.
    /// A large batch is cut into contiguous slices normalized on parallel threads (one DataFusion
    /// context each) and joined in slice order: the result is the same as in one piece.
    pub async fn normalize(
        &mut self,
        inputs: &[RawInput],
    ) -> Result<(Vec<Complaint>, Vec<DeadLetter>)> {
        self.classifier.pin();
        let (complaints, _, dead) = normalize_with(&self.ctxs, inputs, None, &self.bounds).await?;
        Ok((complaints, dead))
    }
    /// The configuration the stateful operators run with.
    pub fn rule_context(config: &Config) -> RuleContext<'_> {
        RuleContext {
            rules: &config.rules,
            dedup: &config.dedup,
            issues: &config.issues,
            frequency: &config.frequency,
            units: units::units(),
        }
    }

    /// Process one micro-batch of raw records in order.
    pub async fn process(&mut self, inputs: &[RawInput]) -> Result<EngineOutput> {
        self.classifier.pin();
        let normalized =
            normalize_with(&self.ctxs, inputs, Some(&self.hasher), &self.bounds).await?;
        let cx = Engine::rule_context(&self.config);
        Ok(keyed_stage(&mut self.core, &cx, normalized))
    }

    /// Process a sequence of micro-batches in order, handing each batch's output (with its
    /// number of raw records) to `sink` as it is done. The stateless stage runs one batch ahead
    /// on its own thread: batch k+1 is decoded and normalized while batch k is applied to the
    /// keyed state and `sink` writes it out. Outputs are those of `process` on each batch.
    /// Stops at the first error (of a batch or of `sink`).
    pub fn process_batches<B, I, F>(&mut self, batches: I, mut sink: F) -> Result<()>
    where
        B: AsRef<[RawInput]>,
        I: Iterator<Item = B> + Send,
        F: FnMut(usize, EngineOutput) -> Result<()>,
    {
        let cx = Engine::rule_context(&self.config);
        let (ctxs, hasher, bounds, core) = (&self.ctxs, &self.hasher, &self.bounds, &mut self.core);
        let classifier = &self.classifier;
        std::thread::scope(|scope| {
            // One normalized batch waits while the next is being normalized.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            scope.spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send((0, Err(anyhow::Error::from(e).context("a runtime"))));
                        return;
                    }
                };
                for batch in batches {
                    let inputs = batch.as_ref();
                    classifier.pin();
                    let r = rt.block_on(normalize_with(ctxs, inputs, Some(hasher), bounds));
                    let failed = r.is_err();
                    // A closed channel: the consumer stopped (an error); so does this side.
                    if tx.send((inputs.len(), r)).is_err() || failed {
                        return;
                    }
                }
            });
            for (n, r) in rx {
                sink(n, keyed_stage(core, &cx, r?))?;
            }
            Ok(())
        })
    }

    /// Every alert's latest state.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut all: Vec<Alert> = self
            .core
            .blocks
            .iter()
            .flat_map(|s| s.alerts().cloned())
            .chain(self.core.people.iter().flat_map(|s| s.alerts().cloned()))
            .collect();
        all.sort_by(|a, b| a.alert_id.cmp(&b.alert_id));
        all
    }

    /// The state partitions, for the lake's per-partition snapshot files.
    pub fn parts(&self) -> crate::lake::StateParts<'_> {
        crate::lake::StateParts {
            blocks: self.core.blocks.iter().enumerate().collect(),
            people: self.core.people.iter().enumerate().collect(),
            seqs: Default::default(),
        }
    }

    /// A view of the issue-keyed state (issues, crowd alerts) of every partition.
    pub fn view(&self) -> AnalyticState {
        self.core.view()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The default configuration with a test pseudonym key (the default, `Env`, needs one set), for
/// the crate's unit tests.
#[cfg(test)]
pub(crate) fn test_config() -> Config {
    let mut cfg = Config::default();
    cfg.engine.pseudonym_key = PseudonymKey::Given(b"engine-unit-test-key".to_vec());
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use super::test_config as config;

    /// Raw hotline records of the simulator's corpus (planted clusters and frequent people).
    fn corpus_inputs(size: usize) -> Vec<RawInput> {
        let cfg = crate::sim::SimConfig {
            size,
            seed: 11,
            push_url: None,
            // Dated before the fetch time below (later records are refused as future-dated).
            end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 19).expect("date"),
            ..crate::sim::SimConfig::default()
        };
        let corpus = crate::sim::corpus(&cfg).expect("corpus");
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00+08:00").expect("t");
        corpus
            .complaints
            .iter()
            .map(|c| {
                let p = &corpus.people[c.person];
                let env = crate::record::RawEnvelope {
                    channel: crate::record::Channel::Hotline,
                    source_id: format!("{}-{}", c.channel, c.source_id),
                    fetched_at: at,
                    position: json!({}),
                    payload: json!({
                        "call_time": c.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        "caller": p.name, "phone": p.mobile, "content": c.content,
                        "district": c.district, "address": c.location, "category": c.category,
                    }),
                    version: None,
                };
                RawInput {
                    key: Some(env.key().into_bytes()),
                    value: serde_json::to_vec(&env).expect("json"),
                    origin: String::new(),
                }
            })
            .collect()
    }

    type Run = (Vec<Complaint>, Vec<Alert>, Vec<String>);

    async fn run_in_batches(inputs: &[RawInput], batch: usize) -> Run {
        let mut e = Engine::new(&config()).expect("engine");
        let mut complaints = Vec::new();
        let mut alerts = std::collections::BTreeMap::new();
        for chunk in inputs.chunks(batch) {
            let out = e.process(chunk).await.expect("process");
            complaints.extend(out.complaints);
            crate::pipeline::merge_alerts(&mut alerts, out.alerts);
        }
        let view = e.view();
        let mut issues: Vec<String> = view
            .issues
            .all()
            .map(|i| serde_json::to_string(i).expect("issue json"))
            .collect();
        issues.sort();
        (complaints, alerts.into_values().collect(), issues)
    }

    #[test]
    fn production_refuses_a_missing_development_or_short_key() {
        let env = |k: &str| Some(k.to_string());
        let err = |r: Result<Vec<u8>>| format!("{:#}", r.expect_err("refused"));
        assert!(
            err(PseudonymKey::Env.resolve_from(None)).contains("DUBAN_PSEUDONYM_KEY is not set")
        );
        assert!(err(PseudonymKey::Env.resolve_from(env(""))).contains("is not set"));
        let dev = String::from_utf8(DEVELOPMENT_KEY.to_vec()).expect("ascii");
        for source in [PseudonymKey::Env, PseudonymKey::EnvOrDevelopment] {
            assert!(err(source.resolve_from(Some(dev.clone()))).contains("development key"));
            assert!(err(source.resolve_from(env("short"))).contains("at least 16 bytes"));
            let key = source
                .resolve_from(env("a-secret-of-the-bureau"))
                .expect("key");
            assert_eq!(key, b"a-secret-of-the-bureau");
        }
        // The demo alone falls back to the development key; tests give theirs in code.
        assert_eq!(
            PseudonymKey::EnvOrDevelopment
                .resolve_from(None)
                .expect("demo"),
            DEVELOPMENT_KEY
        );
        let given = PseudonymKey::Given(b"k".to_vec());
        assert_eq!(given.resolve_from(None).expect("given"), b"k");
        assert_eq!(format!("{given:?}"), "Given(<redacted>)");
    }

    #[tokio::test]
    async fn results_do_not_depend_on_batch_boundaries() {
        let inputs = corpus_inputs(500);
        let whole = run_in_batches(&inputs, 10_000).await;
        assert!(
            whole.1.len() >= 2 && whole.0.len() > 400,
            "the corpus raises alerts: {} complaints, {} alerts",
            whole.0.len(),
            whole.1.len()
        );
        for batch in [1, 37] {
            let other = run_in_batches(&inputs, batch).await;
            assert_eq!(other.0, whole.0, "complaints, batches of {batch}");
            assert_eq!(other.1, whole.1, "alerts, batches of {batch}");
            assert_eq!(other.2, whole.2, "issues, batches of {batch}");
        }
    }

    #[tokio::test]
    async fn pipelined_batches_equal_batch_by_batch_and_stop_at_an_error() {
        let inputs = corpus_inputs(600);
        let whole = run_in_batches(&inputs, 10_000).await;
        // The stateless stage runs ahead on its own thread; each batch still applies in order.
        let mut e = Engine::new(&config()).expect("engine");
        let (mut complaints, mut alerts, mut records) =
            (Vec::new(), std::collections::BTreeMap::new(), 0);
        e.process_batches(inputs.chunks(160), |n, out| {
            records += n;
            complaints.extend(out.complaints);
            crate::pipeline::merge_alerts(&mut alerts, out.alerts);
            Ok(())
        })
        .expect("batches");
        assert_eq!(records, inputs.len());
        assert_eq!(complaints, whole.0);
        assert_eq!(alerts.into_values().collect::<Vec<_>>(), whole.1);
        // A sink's error ends the run with that error; no batch after it is handed over.
        let mut e = Engine::new(&config()).expect("engine");
        let mut calls = 0;
        let err = e
            .process_batches(inputs.chunks(100), |_, _| {
                calls += 1;
                anyhow::ensure!(calls < 2, "sink full");
                Ok(())
            })
            .expect_err("the sink's error");
        assert_eq!((err.to_string().as_str(), calls), ("sink full", 2));
    }

    #[tokio::test]
    async fn complaints_prepared_on_the_stateless_stage_apply_as_in_place() {
        // A dedup config other than the default: the stateless stage must hash with the keyed
        // state's own MinHash parameters, or duplicates and clusters would change.
        let mut cfg = config();
        cfg.kafka.partitions = 1;
        (cfg.dedup.ngram, cfg.dedup.bands, cfg.dedup.rows) = (2, 10, 3);
        let inputs = corpus_inputs(400);
        let mut e = Engine::new(&cfg).expect("engine");
        let mut prepared = Vec::new();
        for chunk in inputs.chunks(300) {
            prepared.extend(e.process(chunk).await.expect("process").complaints);
        }
        // The same complaints through one state that computes everything in place.
        let mut plain = Engine::new(&cfg).expect("engine");
        let mut state = AnalyticState::new(&cfg.dedup);
        let cx = Engine::rule_context(&cfg);
        let mut in_place = Vec::new();
        for chunk in inputs.chunks(300) {
            let (complaints, _) = plain.normalize(chunk).await.expect("normalize");
            in_place.extend(state.apply(complaints, &cx).0);
        }
        assert!(prepared.iter().any(|c| c.duplicate_of.is_some()));
        assert_eq!(prepared, in_place);
    }

    fn raw(channel: &str, id: &str, payload: serde_json::Value) -> RawInput {
        let v = json!({"channel": channel, "source_id": id, "fetched_at": "2026-11-02T08:00:00+08:00", "position": {}, "payload": payload});
        RawInput {
            key: None,
            value: serde_json::to_vec(&v).expect("json"),
            origin: format!("test/{id}"),
        }
    }

    #[tokio::test]
    async fn normalizes_through_sql() {
        let mut e = Engine::new(&config()).expect("engine");
        let out = e
            .process(&[
                raw("hotline", "RX1", json!({"call_time": "2026-11-01 09:00:00", "caller": "王某", "phone": "13812345678",
                    "content": "　镜湖区翠湖花园小区物业乱收费，联系电话１３８１２３４５６７８。", "district": "镜湖", "category": "物业"})),
                raw("board", "B1", json!({"created_at": "2026/11/1 10:00:00", "title": "物业收费", "user": "网友", "user_id": "u1",
                    "content": "镜湖区翠湖花园小区物业乱收费，联系电话13812345678。", "likes": 3})),
                RawInput { key: None, value: b"{broken".to_vec(), origin: "test/x".into() },
            ])
            .await
            .expect("process");
        assert_eq!(out.dead.len(), 1);
        assert_eq!(out.complaints.len(), 2);
        let h = &out.complaints[0];
        assert_eq!(h.complaint_id, complaint_id("hotline", "RX1"));
        assert_eq!(h.phone_masked.as_deref(), Some("*******5678"));
        assert!(
            !h.body.contains("13812345678") && h.body.contains("*******5678"),
            "{}",
            h.body
        );
        assert!(
            h.body.starts_with("镜湖区"),
            "whitespace trimmed: {}",
            h.body
        );
        assert_eq!(h.district.as_deref(), Some("镜湖区"));
        assert_eq!(h.domain, "城乡建设");
        assert!(h.title.starts_with("镜湖区翠湖花园小区物业乱收费"));
        assert_eq!(h.place.as_deref(), Some("翠湖花园小区"));
        assert!(
            h.complainant
                .as_deref()
                .is_some_and(|p| p.starts_with("p_"))
        );
        let b = &out.complaints[1];
        assert_ne!(
            b.complainant, h.complainant,
            "a board user without phone has a pseudonym of its own"
        );
        assert_eq!(
            b.content_hash, h.content_hash,
            "same text after normalization"
        );
        assert_eq!(b.duplicate_of.as_deref(), Some(h.complaint_id.as_str()));
        assert_eq!(b.likes, Some(3));
        assert_eq!(
            b.issue_id, h.issue_id,
            "a duplicate joins its original's issue"
        );
        assert_eq!(b.duplicate_group, h.complaint_id);
    }

    #[tokio::test]
    async fn replies_and_handling_units_are_kept_masked() {
        let mut e = Engine::new(&config()).expect("engine");
        let out = e
            .process(&[
                raw("board", "B7", json!({"received_at": "2026-11-01T10:00:00+08:00", "content": "路灯坏了", "name": "王建国",
                    "reply": "王建国您好，已修复，请致电13812345678。", "reply_unit": "市路灯管理所",
                    "replied_at": "2026-11-03T16:30:00+08:00", "handling_unit": "市城管局", "status": "已办理"})),
                raw("hotline", "RX9", json!({"call_time": "2026-11-01 09:00:00", "content": "噪音", "handling_unit": "区生态环境局"})),
            ])
            .await
            .expect("process");
        let b = &out.complaints[0];
        let reply = b.reply_text.as_deref().expect("reply");
        assert!(
            reply.contains("已修复") && !reply.contains("13812345678") && !reply.contains("王建国"),
            "{reply}"
        );
        assert_eq!(b.reply_unit.as_deref(), Some("市路灯管理所"));
        assert_eq!(b.handling_unit.as_deref(), Some("市城管局"));
        assert_eq!(b.source_status.as_deref(), Some("已办理"));
        assert_eq!(
            b.replied_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-03T16:30:00+08:00")
        );
        let h = &out.complaints[1];
        assert_eq!((h.reply_text.as_deref(), h.replied_at), (None, None));
        assert_eq!(h.handling_unit.as_deref(), Some("区生态环境局"));
        let batch = crate::record::complaints_to_batch(&out.complaints).expect("batch");
        assert_eq!(batch.schema(), crate::record::complaint_schema());
    }
}
