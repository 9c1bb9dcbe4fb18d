//! The engine's Kafka stage `process`; `ingest` lives in connectors/run.rs.
//!
//! One worker runs three kinds of tasks, one per partition it is assigned in its consumer group
//! (Kafka Streams' design, scaled by starting more workers):
//!
//! - **normalize** (per `raw` partition, stateless but for a timestamp floor): decode and
//!   normalize raw records; dead letters to `dlq`; complaints re-keyed by issue block (district)
//!   to `repartition-block`, each with its [`Key`] in the engine's total order; progress markers
//!   to every `repartition-block` partition.
//! - **issues** (per `repartition-block` partition): merges its sources in key order
//!   ([`Merger`]), applies dedup, clustering and crowd alerts; complaints to `complaints`, issue
//!   summaries to `issues`, crowd alerts to `alerts`, complainant events re-keyed by complainant
//!   to `repartition-complainant` (with markers).
//! - **complainants** (per `repartition-complainant` partition): merges, applies frequency and
//!   frequency alerts to `alerts`.
//!
//! State: a stateful task's state is the sequence of records it applied. Each released record is
//! appended to the compacted `engine-changelog` topic (partition = task partition, key
//! `B/<p>/<seq>` or `C/<p>/<seq>`) with a checkpoint (`A/<p>`, `B/<p>`, `C/<p>`: the merge
//! frontier, the sources' promises, the sequence number). Everything a batch produces —
//! outputs, changelog records, checkpoints — and the consumer offsets it covers are one Kafka
//! transaction (`send_offsets_to_transaction` with the group's metadata, so a worker that lost a
//! partition in a rebalance cannot commit it). A worker assigned a partition restores its state
//! by reading the changelog partition (read_committed) and re-applying the records, then
//! continues from the committed offsets; records a restarted task re-reads at or below its
//! frontier are skipped. Exactly once, and, because every state applies its records in key
//! order, the output is the same whatever the batches, workers, kills and restarts.

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message, Timestamp};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::bus::{KafkaBus, Topics};
use crate::config::Config;
use crate::engine::partition::{Key, Merger, block_of, partition_of};
use crate::engine::rules::{AnalyticState, PersonEvent};
use crate::engine::{Engine, RawInput};
use crate::ops::InternalEvent;
use crate::ops::events::{
    DlqRecordsWritten, EngineAlertsRaised, EngineBatchCommitted, EngineRecordsApplied,
    EngineStateMeasured, EngineStateReleased, EngineStateRestored, EngineTransactionAborted,
};
use crate::record::{Alert, Complaint};

/// The longest a consumer's empty fetch waits at the broker (librdkafka's default is 500 ms,
/// which a record then waits at each hop between stages).
pub const FETCH_WAIT_MAX_MS: &str = "50";
/// How often the raw partitions' watermarks are asked for (idle partitions' promises advance).
/// It bounds how long a record waits for idle partitions beyond `[engine] idle_margin_ms`
/// (was 500 ms; `cargo bench --bench latency`).
const IDLE_CHECK: Duration = Duration::from_millis(100);
/// At most one progress marker per source task this often (markers are many: sources × partitions;
/// was 250 ms, a wait every record released on an idle partition's promise paid).
const MARK_EVERY: Duration = Duration::from_millis(100);
/// Transaction timeout of the engine's producer: an open transaction of a killed worker that is
/// not restarted under the same instance id is aborted by the broker after this.
const TRANSACTION_TIMEOUT_MS: u32 = 10_000;

/// A record of the repartition topics: an item in key order, or a source's progress marker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wire<T> {
    Item { source: usize, key: Key, item: T },
    Mark { source: usize, key: Key },
}

/// Checkpoint of a normalize task (per raw partition).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct NormalizeCkpt {
    /// Timestamps of this partition are raised to at least this (ms): keys increase.
    floor: i64,
    /// Every record still to come from this partition has a key above this.
    claim: Option<Key>,
}

/// Checkpoint of a stateful task.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StateCkpt {
    frontier: Option<Key>,
    claims: Vec<Key>,
    /// Records applied so far (= changelog records `<stage>/<p>/<seq>` for seq below this).
    seq: u64,
}

/// An issue's published summary (the `issues` topic).
#[derive(Serialize)]
struct IssueRecord<'a> {
    #[serde(flatten)]
    issue: &'a crate::engine::cluster::Issue,
    key_terms: Vec<String>,
    growth: f64,
    heat: f64,
    flags: Vec<String>,
}

struct NormalizeTask {
    ckpt: NormalizeCkpt,
    emitted: Option<Key>,
    marked_at: Option<Instant>,
    /// When the raw partition's watermark used last was asked for.
    checked: Option<i64>,
    /// The group's committed offset of the raw partition when the task started.
    committed: Option<i64>,
}

struct StateTask<T> {
    state: AnalyticState,
    merger: Merger<T>,
    seq: u64,
    emitted: Option<Key>,
    marked_at: Option<Instant>,
    /// The offset after the last record read from the input partition.
    next_offset: Option<i64>,
}

/// Latest high watermark of each raw partition and when it was asked for (ms), kept fresh by a
/// background thread (read_uncommitted: the true end of the log, open transactions included).
type Highs = Arc<std::sync::Mutex<HashMap<i32, (i64, i64)>>>;

fn watch_highs(
    bootstrap: &str,
    topic: &str,
    partitions: usize,
    stop: Arc<AtomicU64>,
) -> Result<Highs> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("isolation.level", "read_uncommitted")
        .create()
        .context("cannot create the watermark client")?;
    let highs: Highs = Arc::default();
    let (out, topic) = (highs.clone(), topic.to_string());
    std::thread::spawn(move || {
        while stop.load(Ordering::SeqCst) == 0 {
            let round = Instant::now();
            for p in 0..partitions as i32 {
                let asked = now_ms();
                match c.fetch_watermarks(&topic, p, Duration::from_secs(10)) {
                    Ok((_, high)) => {
                        if let Ok(mut m) = out.lock() {
                            m.insert(p, (high, asked));
                        }
                    }
                    Err(e) => {
                        tracing::debug!(target: "duban::engine", "watermarks of {topic}/{p}: {e}")
                    }
                }
            }
            tracing::debug!(target: "duban::engine", ms = round.elapsed().as_millis() as u64, "raw watermarks");
            std::thread::sleep(IDLE_CHECK);
        }
    });
    Ok(highs)
}

/// Counts rebalances, so that a worker drops state it may no longer own; records consumer lag
/// from the client's statistics.
struct RebalanceCounter(Arc<AtomicU64>, crate::ops::events::LagContext);

impl ClientContext for RebalanceCounter {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.1.record(&statistics);
    }
}

impl ConsumerContext for RebalanceCounter {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, _r: &Rebalance<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Which stage a task of a (topic, partition) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Stage {
    Normalize,
    Issues,
    Complainants,
}

impl Stage {
    fn tag(self) -> &'static str {
        match self {
            Stage::Normalize => "A",
            Stage::Issues => "B",
            Stage::Complainants => "C",
        }
    }
}

/// Everything one transaction writes.
#[derive(Default)]
struct Txn {
    /// (topic, partition or None for the key's default, key, value)
    records: Vec<(String, Option<i32>, String, Vec<u8>)>,
    offsets: BTreeMap<(String, i32), i64>,
    complaints: Vec<Complaint>,
    alerts: Vec<Alert>,
    /// Lake files: (tag `b<p>-<first seq>-<last seq>`, complaints of that partition's batch).
    lake: Vec<(String, Vec<Complaint>)>,
}

impl Txn {
    fn send(&mut self, topic: &str, partition: Option<i32>, key: String, value: Vec<u8>) {
        self.records
            .push((topic.to_string(), partition, key, value));
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.offsets.is_empty()
    }

    /// A progress marker of `source` (nothing at or below `key` will come from it) to every one
    /// of the `partitions` of a repartition topic.
    fn broadcast_mark<T: Serialize>(
        &mut self,
        topic: &str,
        partitions: usize,
        source: usize,
        key: Key,
    ) -> Result<()> {
        let v = serde_json::to_vec(&Wire::<T>::Mark { source, key })?;
        for q in 0..partitions {
            self.send(topic, Some(q as i32), format!("mark/{source}"), v.clone());
        }
        Ok(())
    }
}

/// The transactional id of a worker: `<prefix>.engine.<instance>`, the instance from
/// DUBAN_ENGINE_INSTANCE (a restarted worker with the same instance fences its predecessor and
/// aborts its open transaction at once), else unique to this process.
fn transactional_id(prefix: &str) -> String {
    let instance = instance_id().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}-{nanos}", std::process::id())
    });
    format!("{prefix}.engine.{instance}")
}

/// DUBAN_ENGINE_INSTANCE: this worker's stable name among the group's workers.
fn instance_id() -> Option<String> {
    std::env::var("DUBAN_ENGINE_INSTANCE")
        .ok()
        .filter(|s| !s.is_empty())
}

fn partitions_of(consumer: &impl Consumer<RebalanceCounter>, topic: &str) -> Result<usize> {
    // A topic created a moment ago may not have its partitions in the metadata yet.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("cannot read metadata of {topic}"))?;
        let n = md.topics().first().map_or(0, |t| t.partitions().len());
        if n > 0 {
            return Ok(n);
        }
        if Instant::now() > deadline {
            bail!("topic {topic} has no partitions");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ms_of(m: &BorrowedMessage<'_>) -> i64 {
    match m.timestamp() {
        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
        Timestamp::NotAvailable => 0,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a changelog partition holds for the tasks of one partition number.
#[derive(Default)]
struct Restored {
    normalize: BTreeMap<usize, NormalizeCkpt>,
    issues: Option<(StateCkpt, Vec<Complaint>)>,
    complainants: Option<(StateCkpt, Vec<PersonEvent>)>,
}

/// Read changelog partition `p` to its end (committed records only).
fn read_changelog(bootstrap: &str, topic: &str, p: usize) -> Result<Restored> {
    let mut out = Restored::default();
    let (b_prefix, c_prefix) = (format!("B/{p}/"), format!("C/{p}/"));
    let (b_ckpt, c_ckpt) = (format!("B/{p}"), format!("C/{p}"));
    let mut b_events: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut c_events: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let (mut b_state, mut c_state): (Option<StateCkpt>, Option<StateCkpt>) = (None, None);
    crate::bus::kafka::read_to_end(bootstrap, topic, Some(p as i32), |key, value| {
        let key = String::from_utf8_lossy(key);
        if let Some(seq) = key.strip_prefix(&b_prefix) {
            b_events.insert(seq.parse().context("changelog sequence")?, value.to_vec());
        } else if let Some(seq) = key.strip_prefix(&c_prefix) {
            c_events.insert(seq.parse().context("changelog sequence")?, value.to_vec());
        } else if key == b_ckpt {
            b_state = Some(serde_json::from_slice(value).context("checkpoint")?);
        } else if key == c_ckpt {
            c_state = Some(serde_json::from_slice(value).context("checkpoint")?);
        } else if let Some(r) = key.strip_prefix("A/") {
            out.normalize.insert(
                r.parse().context("raw partition")?,
                serde_json::from_slice(value).context("checkpoint")?,
            );
        }
        Ok(())
    })
    .with_context(|| format!("reading {topic}/{p}"))?;
    // What was read cannot be applied: the state is corrupt, and no retry mends that.
    let corrupt = |e: anyhow::Error| {
        let why = format!("corrupt engine state in {topic}/{p}: {e:#}");
        e.context(crate::ops::outage::Unrecoverable(why))
    };
    out.issues = b_state
        .map(|ck| replay_of(topic, p, ck, &b_events))
        .transpose()
        .map_err(corrupt)?;
    out.complainants = c_state
        .map(|ck| replay_of(topic, p, ck, &c_events))
        .transpose()
        .map_err(corrupt)?;
    Ok(out)
}

/// The worker: consume raw and the repartition topics in micro-batches, run the tasks, write
/// everything with the offsets in one transaction.
///
/// It lives through broker outages: an error that is an outage (`ops::outage`) sends the worker
/// back to its committed state — tasks dropped, consumer and producer created anew (the producer
/// with the same transactional id, which settles a transaction the outage left open), state
/// restored from the changelog on assignment — after a delay that grows to a few seconds, logged
/// once per interval, not ready meanwhile. Fenced by a newer instance, corrupt state and every
/// other error end it.
pub async fn process(
    config: &Config,
    bus: Arc<KafkaBus>,
    data_dir: &Path,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let health = crate::ops::Component::register("engine");
    let mut outage = crate::ops::Outage::new("engine", None);
    let txn_id = transactional_id(&bus.config.topic_prefix);
    let mut w = Worker {
        lake: data_dir.join("lake"),
        highs: Highs::default(),
        config: config.clone(),
        topics: bus.topics(),
        bootstrap: bus.config.bootstrap_servers.clone(),
        engine: Engine::new(config)?,
        n_raw: 0,
        n_block: 0,
        n_people: 0,
        n_log: 0,
        normalize: BTreeMap::new(),
        issues: BTreeMap::new(),
        complainants: BTreeMap::new(),
    };
    let mut snapshots = Snapshots {
        common_min: config.rules.crowd_min_complainants,
        at: Instant::now(),
        due: false,
    };
    tokio::pin!(stop);
    loop {
        let run = Run {
            txn_id: &txn_id,
            health: &health,
            outage: &mut outage,
        };
        let err = match run.go(&mut w, &mut snapshots, stop.as_mut()).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // Back to the committed state: what the tasks held may be ahead of it, so their files
        // are not written from it.
        w.drop_tasks();
        health.not_ready("restarting from the committed state after a Kafka error");
        let delay = outage.failed(err.context("engine"))?;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.as_mut() => return Ok(()),
        }
    }
}

/// One run of the worker: from creating its clients to a stop (Ok) or an error that sends it
/// back to its committed state.
struct Run<'a> {
    txn_id: &'a str,
    health: &'a crate::ops::Component,
    outage: &'a mut crate::ops::Outage,
}

impl Run<'_> {
    async fn go(
        self,
        w: &mut Worker,
        snapshots: &mut Snapshots,
        mut stop: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<()> {
        let Run {
            txn_id,
            health,
            outage,
        } = self;
        let config = &w.config.clone();
        let topics = w.topics.clone();
        let bootstrap = w.bootstrap.clone();
        health.not_ready("joining the group and restoring state");
        let rebalances = Arc::new(AtomicU64::new(0));
        let mut cc = ClientConfig::new();
        if let Some(instance) = instance_id() {
            // Static membership: a restarted worker takes its partitions back without a rebalance.
            cc.set("group.instance.id", instance);
        }
        if let Ok(debug) = std::env::var("DUBAN_KAFKA_DEBUG") {
            // librdkafka's debug contexts (e.g. `cgrp,eos`), logged under DUBAN_LOG=librdkafka=debug.
            cc.set("debug", debug);
        }
        let consumer: StreamConsumer<RebalanceCounter> = cc
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &config.engine.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            // A fetch that finds nothing waits at most this at the broker (default 500 ms): each
            // hop between the engine's stages is a fetch (`cargo bench --bench latency`).
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
            .set(
                "statistics.interval.ms",
                crate::ops::events::LagContext::INTERVAL_MS,
            )
            .create_with_context(RebalanceCounter(
                rebalances.clone(),
                crate::ops::events::LagContext::new(&config.engine.group_id),
            ))
            .context("cannot create Kafka consumer")?;
        let n_raw = partitions_of(&consumer, &topics.raw)?;
        let n_block = partitions_of(&consumer, &topics.repartition_block)?;
        let n_people = partitions_of(&consumer, &topics.repartition_complainant)?;
        let n_log = partitions_of(&consumer, &topics.changelog)?;
        if n_log < n_block.max(n_people) {
            bail!(
                "{} has {n_log} partitions, fewer than {} or {}",
                topics.changelog,
                topics.repartition_block,
                topics.repartition_complainant
            );
        }
        consumer
            .subscribe(&[
                topics.raw.as_str(),
                topics.repartition_block.as_str(),
                topics.repartition_complainant.as_str(),
            ])
            .context("cannot subscribe to the engine's input topics")?;
        let producer =
            crate::bus::txn::producer(&bootstrap, txn_id, TRANSACTION_TIMEOUT_MS, "engine").await?;
        let stop_watch = Arc::new(AtomicU64::new(0));
        let _stop_watch = StopOnDrop(stop_watch.clone());
        w.highs = watch_highs(&bootstrap, &topics.raw, n_raw, stop_watch)?;
        (w.n_raw, w.n_block, w.n_people, w.n_log) = (n_raw, n_block, n_people, n_log);
        let linger = Duration::from_millis(config.engine.batch_linger_ms.max(1));
        let max = config.engine.batch_max_records.max(1);
        let mut generation = rebalances.load(Ordering::SeqCst);
        // Ready once restored and caught up: a batch that did not fill (no backlog) after the last
        // restore.
        let mut caught_up = false;
        loop {
            let g = rebalances.load(Ordering::SeqCst);
            if g != generation {
                generation = g;
                snapshots.retire(w)?;
            }
            // Gather a batch: until full, or the linger passed (an empty batch still advances idle
            // partitions' promises and releases what they unblock).
            let mut msgs: Vec<BorrowedMessage<'_>> = Vec::new();
            let until = Instant::now() + linger;
            let mut stopping = false;
            let mut raw_read = 0;
            // Markers are small: only raw records (the expensive ones) fill a batch.
            while raw_read < max && msgs.len() < max * 20 {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::select! {
                    m = tokio::time::timeout(left, consumer.recv()) => match m {
                        Ok(Err(e)) => {
                            // Consumption errors are outages (a broker away, a topic created a moment
                            // ago not yet in the metadata, a leader moving) that librdkafka retries
                            // itself: told once per interval; fenced and other fatal ones end it.
                            // An error queued while the broker was away may come after it is
                            // back: only one the broker does not contradict is an outage.
                            if !crate::ops::outage::kafka_answers(&consumer) {
                                let e = anyhow::Error::new(e).context("Kafka consumer");
                                let delay = outage.failed(e)?;
                                // Not ready until the broker answers again and a batch finds no
                                // backlog.
                                health.not_ready("kafka unreachable");
                                caught_up = false;
                                tokio::time::sleep(delay.min(linger)).await;
                            }
                        }
                        Ok(Ok(m)) => {
                            outage.ok();
                            // Rebalance callbacks run inside recv: a message returned after one is
                            // from the new assignment (read from the committed offsets); what was
                            // read before may belong to someone else now, and state held for a
                            // partition may be stale. Drop both and start over.
                            let g = rebalances.load(Ordering::SeqCst);
                            if g != generation {
                                generation = g;
                                msgs.clear();
                                raw_read = 0;
                                snapshots.retire(w)?;
                            }
                            raw_read += usize::from(m.topic() == topics.raw);
                            msgs.push(m);
                        }
                        Err(_) => break,
                    },
                    () = stop.as_mut() => { stopping = true; break; }
                }
            }
            let g = rebalances.load(Ordering::SeqCst);
            if g != generation {
                // A rebalance while waiting (no message came after it): what was read is stale.
                generation = g;
                msgs.clear();
                snapshots.retire(w)?;
            }
            // Partitions taken over (or given back after a rebalance dropped them) are restored; their
            // snapshot files are this worker's from now on.
            let taken = w.take_assigned(&consumer).await;
            if stopping {
                // Partitions assigned but not yet restored (taken over from a worker that died) are
                // restored too, so their files get the committed state. If that fails, the
                // partitions held are still written.
                match taken {
                    Ok((_, restored)) => snapshots.due |= restored,
                    Err(e) => {
                        tracing::warn!(target: "duban::engine", "stopping without restoring newly assigned partitions: {e:#}")
                    }
                }
                if snapshots.due {
                    snapshots.write(w)?;
                }
                return Ok(());
            }
            let (assigned, restored) = taken?;
            snapshots.due |= restored;
            if restored {
                caught_up = false;
                health.not_ready("catching up after restoring state");
            }
            let mut txn = Txn::default();
            let applied_before = w.applied();
            let t0 = Instant::now();
            w.run_normalize(&consumer, &msgs, &assigned, &mut txn)
                .await?;
            let t1 = Instant::now();
            w.run_issues(&msgs, &mut txn)?;
            w.run_complainants(&msgs, &mut txn)?;
            let apply = t0.elapsed();
            tracing::debug!(target: "duban::engine", read = msgs.len(), normalize_ms = (t1 - t0).as_millis() as u64, state_ms = t1.elapsed().as_millis() as u64, "batch applied");
            let read = msgs.len();
            drop(msgs);
            // (Not before the group has assigned partitions: nothing was restored yet.)
            if !caught_up
                && raw_read < max
                && !outage.ongoing()
                && rebalances.load(Ordering::SeqCst) > 0
            {
                caught_up = true;
                health.ready();
            }
            if txn.is_empty() {
                // Nothing to commit: the state is the committed one, and partitions restored without
                // new records still get their snapshot files.
                snapshots.write_when_due(w)?;
                continue;
            }
            // Lake files are named by the changelog sequence range they cover; files of a batch whose
            // transaction then fails are removed when the partition's task is restored.
            for (tag, rows) in &txn.lake {
                crate::lake::write_complaints(&w.lake, rows, tag)?;
            }
            let meta = consumer
                .group_metadata()
                .ok_or_else(|| anyhow!("the engine's consumer has no group metadata"))?;
            let t2 = Instant::now();
            if let Err(e) = commit(&producer, &txn, meta).await {
                EngineTransactionAborted {
                    error: &format!("{e:#}"),
                }
                .emit();
                // State and positions go back to the last commit (a rebalance, when that is what
                // failed the commit, resets the positions itself; when the broker is away, the
                // rewind fails and the whole worker goes back to its committed state).
                // A rebalance (what failed the commit, then) resets the positions itself and the
                // tasks are restored on the new assignment; any other failure (the broker away, the
                // producer in a state it must be created anew from) sends the whole worker back
                // to its committed state.
                if rebalances.load(Ordering::SeqCst) == generation {
                    return Err(e);
                }
                w.drop_tasks();
                continue;
            }
            outage.ok();
            w.committed(&txn, read, apply, t2.elapsed());
            // The lake's `alerts` table and alerts.jsonl are the lifecycle's (it owns the board).
            // Any state applied (complaints, or complainant events released later) puts the files
            // behind.
            snapshots.due |= w.applied() != applied_before;
            snapshots.write_when_due(w)?;
        }
    }
}

/// When a worker writes the lake's snapshot files of the partitions it owns.
struct Snapshots {
    common_min: usize,
    /// The last write.
    at: Instant,
    /// The state held is ahead of the files: a commit with complaints, or partitions restored.
    due: bool,
}

impl Snapshots {
    /// At most one write per this interval while records flow.
    const EVERY: Duration = Duration::from_secs(5);

    fn write(&mut self, w: &Worker) -> Result<()> {
        crate::lake::write_snapshots(&w.lake, &w.parts(), self.common_min)?;
        self.at = Instant::now();
        self.due = false;
        Ok(())
    }

    /// Write when due and the interval has passed; only while the state held is the committed
    /// one (after a commit, or a batch with nothing to commit).
    fn write_when_due(&mut self, w: &Worker) -> Result<()> {
        if self.due && self.at.elapsed() >= Self::EVERY {
            self.write(w)?;
        }
        Ok(())
    }

    /// A rebalance: the tasks go (what is read next comes from the new assignment). Their state
    /// is the last committed one, so when it is ahead of their files it is written first: the
    /// partitions may not come back, and a new owner writes files only once it has restored them
    /// (a stop in between would leave the files behind the changelog; files never go back in it).
    fn retire(&mut self, w: &mut Worker) -> Result<()> {
        if self.due {
            self.write(w)?;
        }
        w.drop_tasks();
        Ok(())
    }
}

/// The group's committed offsets of the assigned raw partitions.
fn raw_committed(
    consumer: &StreamConsumer<RebalanceCounter>,
    raw: &str,
) -> Result<HashMap<usize, i64>> {
    let committed = consumer
        .committed(Duration::from_secs(30))
        .context("cannot read the committed offsets")?;
    Ok(committed
        .elements()
        .iter()
        .filter(|e| e.topic() == raw)
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition() as usize, o)),
            _ => None,
        })
        .collect())
}

async fn commit(
    producer: &crate::bus::txn::TxnProducer,
    txn: &Txn,
    meta: rdkafka::consumer::ConsumerGroupMetadata,
) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, p), o) in &txn.offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))?;
    }
    let records = txn
        .records
        .iter()
        .map(|(t, p, k, v)| (t.as_str(), *p, k.as_bytes(), v.as_slice()))
        .collect();
    crate::bus::txn::transact(producer, records, Some((tpl, meta))).await
}

/// The changelog records a checkpoint covers (sequence numbers below its `seq`), decoded.
fn replay_of<T: serde::de::DeserializeOwned>(
    topic: &str,
    p: usize,
    ck: StateCkpt,
    records: &BTreeMap<u64, Vec<u8>>,
) -> Result<(StateCkpt, Vec<T>)> {
    let events = records
        .range(..ck.seq)
        .map(|(seq, v)| {
            serde_json::from_slice(v)
                .with_context(|| format!("{topic}/{p}: changelog record {seq}"))
        })
        .collect::<Result<Vec<T>>>()?;
    if events.len() as u64 != ck.seq {
        bail!(
            "{topic}/{p}: checkpoint covers {} records, {} found",
            ck.seq,
            events.len()
        );
    }
    Ok((ck, events))
}

/// Sets the flag when dropped (stops the watermark thread).
struct StopOnDrop(Arc<AtomicU64>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(1, Ordering::SeqCst);
    }
}

/// Delete this worker's lake files of partition `p` that start at or after `seq`: written for a
/// batch whose transaction did not commit (that batch is processed again).
fn remove_uncommitted_lake_files(lake: &Path, p: usize, seq: u64) -> Result<()> {
    let prefix = format!("part-b{p}-");
    let Ok(days) = std::fs::read_dir(lake.join("complaints")) else {
        return Ok(());
    };
    for day in days.flatten() {
        let _lock = crate::lake::lock_partition(&day.path())?;
        let Ok(files) = std::fs::read_dir(day.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let first = name
                .strip_prefix(&prefix)
                .and_then(|r| r.split('-').next())
                .and_then(|n| n.parse::<u64>().ok());
            if first.is_some_and(|first| first >= seq) {
                std::fs::remove_file(f.path())
                    .with_context(|| format!("cannot remove {}", f.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Hand the records of a repartition `topic` in `msgs` to their partitions' tasks (items to the
/// merger, markers as promises); returns the partitions that read something.
fn feed_tasks<T: serde::de::DeserializeOwned>(
    msgs: &[BorrowedMessage<'_>],
    topic: &str,
    tasks: &mut BTreeMap<usize, StateTask<T>>,
) -> Result<BTreeSet<usize>> {
    let mut read = BTreeSet::new();
    for m in msgs.iter().filter(|m| m.topic() == topic) {
        let p = m.partition() as usize;
        let task = tasks
            .get_mut(&p)
            .context("a repartition record of a partition without a task")?;
        let wire: Wire<T> = serde_json::from_slice(m.payload().unwrap_or_default())
            .with_context(|| format!("{topic}/{p}/{}: not an engine record", m.offset()))?;
        match wire {
            Wire::Item { source, key, item } => {
                task.merger.push(source, key, m.offset(), item);
            }
            Wire::Mark { source, key } => task.merger.claim(source, key),
        }
        task.next_offset = Some(m.offset() + 1);
        read.insert(p);
    }
    Ok(read)
}

struct Worker {
    lake: std::path::PathBuf,
    highs: Highs,
    config: Config,
    topics: Topics,
    bootstrap: String,
    engine: Engine,
    n_raw: usize,
    n_block: usize,
    n_people: usize,
    n_log: usize,
    normalize: BTreeMap<usize, NormalizeTask>,
    issues: BTreeMap<usize, StateTask<Complaint>>,
    complainants: BTreeMap<usize, StateTask<PersonEvent>>,
}

impl Worker {
    /// A batch committed: its events (log line, metrics) and the state partitions' sizes.
    fn committed(&self, txn: &Txn, read: usize, apply: Duration, commit: Duration) {
        let (mut normalized, mut issues, mut people) = (0, 0, 0);
        let mut dead: BTreeMap<String, usize> = BTreeMap::new();
        for (topic, _, key, value) in &txn.records {
            if *topic == self.topics.changelog {
                match key.split('/').count() {
                    3 if key.starts_with("B/") => issues += 1,
                    3 if key.starts_with("C/") => people += 1,
                    _ => {}
                }
            } else if *topic == self.topics.repartition_block && !key.starts_with("mark/") {
                normalized += 1;
            } else if *topic == self.topics.dlq {
                normalized += 1;
                let reason = serde_json::from_slice::<crate::record::DeadLetter>(value)
                    .map(|d| d.reason)
                    .unwrap_or_default();
                *dead.entry(reason).or_default() += 1;
            }
        }
        for (stage, records) in [
            ("normalize", normalized),
            ("issues", issues),
            ("complainants", people),
        ] {
            EngineRecordsApplied { stage, records }.emit();
        }
        for (reason, records) in &dead {
            DlqRecordsWritten {
                stage: "engine.decode",
                reason,
                records: *records,
            }
            .emit();
        }
        let mut by_trigger: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for a in &txn.alerts {
            let e = by_trigger.entry(a.trigger.as_str()).or_default();
            if a.version <= 1 {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        for (trigger, (raised, updated)) in by_trigger {
            EngineAlertsRaised {
                trigger,
                raised,
                updated,
            }
            .emit();
        }
        for (p, t) in &self.issues {
            EngineStateMeasured {
                stage: "issues",
                partition: *p,
                records: t.seq,
                entries: t.state.issues.len(),
            }
            .emit();
        }
        for (p, t) in &self.complainants {
            EngineStateMeasured {
                stage: "complainants",
                partition: *p,
                records: t.seq,
                entries: t.state.people.people.len(),
            }
            .emit();
        }
        EngineBatchCommitted {
            read,
            records: txn.records.len(),
            complaints: txn.complaints.len(),
            alerts: txn.alerts.len(),
            apply,
            commit,
        }
        .emit();
    }

    fn needs_raw_offsets(&self, assigned: &BTreeSet<(Stage, usize)>) -> bool {
        assigned
            .iter()
            .any(|(s, p)| *s == Stage::Normalize && !self.normalize.contains_key(p))
    }

    fn drop_tasks(&mut self) {
        for (stage, parts) in [
            ("issues", &self.issues.keys().copied().collect::<Vec<_>>()),
            ("complainants", &self.complainants.keys().copied().collect()),
        ] {
            for partition in parts {
                EngineStateReleased {
                    stage,
                    partition: *partition,
                }
                .emit();
            }
        }
        self.normalize.clear();
        self.issues.clear();
        self.complainants.clear();
    }

    fn retain(&mut self, assigned: &BTreeSet<(Stage, usize)>) {
        self.normalize
            .retain(|p, _| assigned.contains(&(Stage::Normalize, *p)));
        self.issues
            .retain(|p, _| assigned.contains(&(Stage::Issues, *p)));
        self.complainants
            .retain(|p, _| assigned.contains(&(Stage::Complainants, *p)));
    }

    /// The consumer's current assignment as stage tasks; tasks of partitions no longer assigned
    /// are dropped and those newly assigned restored from the changelog. True when tasks were
    /// restored.
    async fn take_assigned(
        &mut self,
        consumer: &StreamConsumer<RebalanceCounter>,
    ) -> Result<(BTreeSet<(Stage, usize)>, bool)> {
        let assignment = consumer
            .assignment()
            .context("cannot read the consumer's assignment")?;
        let mut assigned: BTreeSet<(Stage, usize)> = BTreeSet::new();
        for e in assignment.elements() {
            let stage = if e.topic() == self.topics.raw {
                Stage::Normalize
            } else if e.topic() == self.topics.repartition_block {
                Stage::Issues
            } else {
                Stage::Complainants
            };
            assigned.insert((stage, e.partition() as usize));
        }
        self.retain(&assigned);
        let committed = if self.needs_raw_offsets(&assigned) {
            raw_committed(consumer, &self.topics.raw)?
        } else {
            HashMap::new()
        };
        let tasks_before = (self.issues.len(), self.complainants.len());
        self.restore(&assigned, &committed).await?;
        let restored = (self.issues.len(), self.complainants.len()) != tasks_before;
        Ok((assigned, restored))
    }

    /// Changelog records applied by the stateful tasks held, summed: it moves with every change of
    /// state a snapshot file shows.
    fn applied(&self) -> u64 {
        let issues = self.issues.values().map(|t| t.seq);
        issues
            .chain(self.complainants.values().map(|t| t.seq))
            .sum()
    }

    /// The state partitions this worker owns, for the lake's per-partition snapshot files.
    fn parts(&self) -> crate::lake::StateParts<'_> {
        crate::lake::StateParts {
            blocks: self.issues.iter().map(|(p, t)| (*p, &t.state)).collect(),
            people: self
                .complainants
                .iter()
                .map(|(p, t)| (*p, &t.state))
                .collect(),
            seqs: (self.issues.iter().map(|(p, t)| (('b', *p), t.seq)))
                .chain(self.complainants.iter().map(|(p, t)| (('c', *p), t.seq)))
                .collect(),
        }
    }

    fn new_state(&self) -> AnalyticState {
        let mut s = AnalyticState::new(&self.config.dedup);
        s.people.scale = self.n_people;
        s
    }

    /// Restore the tasks of newly assigned partitions from the changelog.
    async fn restore(
        &mut self,
        assigned: &BTreeSet<(Stage, usize)>,
        committed: &HashMap<usize, i64>,
    ) -> Result<()> {
        let mut wanted: BTreeSet<usize> = BTreeSet::new();
        for (stage, p) in assigned {
            let missing = match stage {
                Stage::Normalize => !self.normalize.contains_key(p),
                Stage::Issues => !self.issues.contains_key(p),
                Stage::Complainants => !self.complainants.contains_key(p),
            };
            if missing {
                wanted.insert(match stage {
                    Stage::Normalize => p % self.n_log,
                    _ => *p,
                });
            }
        }
        let t = Instant::now();
        // Read the changelog partitions in parallel.
        let reads = wanted.iter().map(|lp| {
            let (bootstrap, topic, lp) =
                (self.bootstrap.clone(), self.topics.changelog.clone(), *lp);
            tokio::task::spawn_blocking(move || read_changelog(&bootstrap, &topic, lp))
        });
        let results = futures::future::join_all(reads).await;
        for (lp, restored) in wanted.into_iter().zip(results) {
            let restored = restored.context("restore panicked")??;
            let cx = Engine::rule_context(&self.config);
            let mut replayed = 0;
            for (stage, p) in assigned {
                match stage {
                    Stage::Normalize if p % self.n_log == lp && !self.normalize.contains_key(p) => {
                        let ckpt = restored.normalize.get(p).copied().unwrap_or_default();
                        self.normalize.insert(
                            *p,
                            NormalizeTask {
                                ckpt,
                                emitted: None,
                                marked_at: None,
                                checked: None,
                                committed: committed.get(p).copied(),
                            },
                        );
                    }
                    Stage::Issues if *p == lp && !self.issues.contains_key(p) => {
                        let mut state = self.new_state();
                        let (ck, events) = restored.issues.clone().unwrap_or_default();
                        replayed += events.len();
                        remove_uncommitted_lake_files(&self.lake, *p, ck.seq)?;
                        for chunk in events.chunks(1000) {
                            state.apply_block(chunk.to_vec(), &cx);
                        }
                        self.issues.insert(
                            *p,
                            StateTask {
                                state,
                                merger: Merger::new(
                                    self.n_raw,
                                    ck.frontier.unwrap_or(Key::MIN),
                                    Some(ck.claims),
                                ),
                                seq: ck.seq,
                                emitted: None,
                                marked_at: None,
                                next_offset: None,
                            },
                        );
                    }
                    Stage::Complainants if *p == lp && !self.complainants.contains_key(p) => {
                        let mut state = self.new_state();
                        let (ck, events) = restored.complainants.clone().unwrap_or_default();
                        replayed += events.len();
                        state.apply_people(&events, &cx);
                        self.complainants.insert(
                            *p,
                            StateTask {
                                state,
                                merger: Merger::new(
                                    self.n_block,
                                    ck.frontier.unwrap_or(Key::MIN),
                                    Some(ck.claims),
                                ),
                                seq: ck.seq,
                                emitted: None,
                                marked_at: None,
                                next_offset: None,
                            },
                        );
                    }
                    _ => {}
                }
            }
            EngineStateRestored {
                partition: lp,
                replayed,
                duration: t.elapsed(),
            }
            .emit();
        }
        Ok(())
    }

    /// Normalize raw records; re-key complaints by issue block; markers.
    async fn run_normalize(
        &mut self,
        consumer: &StreamConsumer<RebalanceCounter>,
        msgs: &[BorrowedMessage<'_>],
        assigned: &BTreeSet<(Stage, usize)>,
        txn: &mut Txn,
    ) -> Result<()> {
        let raw: Vec<&BorrowedMessage<'_>> = msgs
            .iter()
            .filter(|m| m.topic() == self.topics.raw)
            .collect();
        let inputs: Vec<RawInput> = raw
            .iter()
            .map(|m| RawInput {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                origin: format!("{}/{}/{}", m.topic(), m.partition(), m.offset()),
            })
            .collect();
        let mut touched: BTreeSet<usize> = BTreeSet::new();
        if !inputs.is_empty() {
            let (complaints, dead) = self.engine.normalize(&inputs).await?;
            let dead_origins: BTreeSet<&str> = dead.iter().map(|d| d.origin.as_str()).collect();
            let live: Vec<&BorrowedMessage<'_>> = raw
                .iter()
                .zip(&inputs)
                .filter(|(_, i)| !dead_origins.contains(i.origin.as_str()))
                .map(|(m, _)| *m)
                .collect();
            if live.len() != complaints.len() {
                bail!(
                    "normalize returned {} complaints for {} records",
                    complaints.len(),
                    live.len()
                );
            }
            let mut keys: HashMap<(i32, i64), Key> = HashMap::new();
            for m in &raw {
                let r = m.partition() as usize;
                let task = self
                    .normalize
                    .get_mut(&r)
                    .context("a raw record of a partition without a task")?;
                let ts = ms_of(m).max(task.ckpt.floor);
                task.ckpt.floor = ts;
                let key = Key(ts, m.partition(), m.offset());
                task.ckpt.claim = Some(task.ckpt.claim.map_or(key, |c| c.max(key)));
                keys.insert((m.partition(), m.offset()), key);
                touched.insert(r);
                txn.offsets
                    .insert((self.topics.raw.clone(), m.partition()), m.offset() + 1);
            }
            for (m, c) in live.iter().zip(complaints) {
                let key = keys[&(m.partition(), m.offset())];
                let part = partition_of(block_of(&c), self.n_block);
                let wire = Wire::Item {
                    source: m.partition() as usize,
                    key,
                    item: c,
                };
                txn.send(
                    &self.topics.repartition_block,
                    Some(part as i32),
                    block_of_wire(&wire),
                    serde_json::to_vec(&wire)?,
                );
            }
            for d in &dead {
                txn.send(
                    &self.topics.dlq,
                    None,
                    d.origin.clone(),
                    serde_json::to_vec(d)?,
                );
            }
        }
        // Idle partitions: caught up to their end, so the next record is appended from now on.
        for (stage, r) in assigned {
            if *stage != Stage::Normalize || touched.contains(r) {
                continue;
            }
            let Some(task) = self.normalize.get_mut(r) else {
                continue;
            };
            let Some((high, asked)) = self
                .highs
                .lock()
                .ok()
                .and_then(|m| m.get(&(*r as i32)).copied())
            else {
                continue;
            };
            if task.checked == Some(asked) {
                continue;
            }
            task.checked = Some(asked);
            let pos = consumer.position().ok().and_then(|l| {
                l.find_partition(&self.topics.raw, *r as i32)
                    .map(|e| e.offset())
            });
            let next = match pos {
                Some(Offset::Offset(o)) => Some(o),
                _ => task.committed,
            };
            let caught_up = high == 0 || next.is_some_and(|o| o >= high);
            if caught_up {
                let floor = task
                    .ckpt
                    .floor
                    .max(asked - self.config.engine.idle_margin_ms as i64);
                task.ckpt.floor = floor;
                let promise = Key::before_time(floor);
                task.ckpt.claim = Some(task.ckpt.claim.map_or(promise, |c| c.max(promise)));
            }
        }
        for (r, task) in self.normalize.iter_mut() {
            let Some(claim) = task.ckpt.claim else {
                continue;
            };
            if task.emitted.is_some_and(|e| e >= claim)
                || task.marked_at.is_some_and(|t| t.elapsed() < MARK_EVERY)
            {
                continue;
            }
            task.emitted = Some(claim);
            task.marked_at = Some(Instant::now());
            txn.broadcast_mark::<Complaint>(
                &self.topics.repartition_block,
                self.n_block,
                *r,
                claim,
            )?;
            txn.send(
                &self.topics.changelog,
                Some((r % self.n_log) as i32),
                format!("A/{r}"),
                serde_json::to_vec(&task.ckpt)?,
            );
            // A checkpoint without a raw offset commit is fine: it only raised the floor.
        }
        Ok(())
    }

    /// Issue-keyed tasks: merge, apply, publish; events re-keyed by complainant.
    fn run_issues(&mut self, msgs: &[BorrowedMessage<'_>], txn: &mut Txn) -> Result<()> {
        let cx = Engine::rule_context(&self.config);
        let read = feed_tasks(msgs, &self.topics.repartition_block, &mut self.issues)?;
        for (p, task) in self.issues.iter_mut() {
            let released = task.merger.release();
            let changed_bound = task.emitted.is_none_or(|e| task.merger.bound() > e);
            if released.is_empty() && !read.contains(p) && !changed_bound {
                continue;
            }
            if !released.is_empty() {
                let (keys, rows): (Vec<Key>, Vec<Complaint>) = released.into_iter().unzip();
                for c in &rows {
                    txn.send(
                        &self.topics.changelog,
                        Some(*p as i32),
                        format!("B/{p}/{:012}", task.seq),
                        serde_json::to_vec(c)?,
                    );
                    task.seq += 1;
                }
                let first_seq = task.seq - rows.len() as u64;
                let out = task.state.apply_block(rows, &cx);
                if !out.complaints.is_empty() {
                    txn.lake.push((
                        format!("b{p}-{first_seq:012}-{:012}", task.seq - 1),
                        out.complaints.clone(),
                    ));
                }
                for c in &out.complaints {
                    txn.send(
                        &self.topics.complaints,
                        None,
                        c.complaint_id.clone(),
                        serde_json::to_vec(c)?,
                    );
                }
                for a in &out.alerts {
                    txn.send(
                        &self.topics.alerts_raised,
                        None,
                        a.alert_id.clone(),
                        serde_json::to_vec(a)?,
                    );
                }
                for id in &out.issues {
                    if let Some(issue) = task.state.issues.get(id) {
                        let rec = IssueRecord {
                            issue,
                            key_terms: task.state.key_terms_at_change(id),
                            growth: issue.growth(),
                            heat: issue.heat(),
                            flags: task
                                .state
                                .flags_of_issue(issue, self.config.rules.crowd_min_complainants),
                        };
                        txn.send(
                            &self.topics.issues,
                            None,
                            id.clone(),
                            serde_json::to_vec(&rec)?,
                        );
                    }
                }
                for (row, e) in out.people_rows.iter().zip(out.people) {
                    let q = partition_of(&e.complainant, self.n_people);
                    let wire = Wire::Item {
                        source: *p,
                        key: keys[*row],
                        item: e,
                    };
                    txn.send(
                        &self.topics.repartition_complainant,
                        Some(q as i32),
                        format!("{p}"),
                        serde_json::to_vec(&wire)?,
                    );
                }
                txn.complaints.extend(out.complaints);
                txn.alerts.extend(out.alerts);
            }
            let bound = task.merger.bound();
            if task.emitted.is_none_or(|e| bound > e)
                && task.marked_at.is_none_or(|t| t.elapsed() >= MARK_EVERY)
            {
                task.emitted = Some(bound);
                task.marked_at = Some(Instant::now());
                txn.broadcast_mark::<PersonEvent>(
                    &self.topics.repartition_complainant,
                    self.n_people,
                    *p,
                    bound,
                )?;
            }
            checkpoint(
                txn,
                &self.topics,
                Stage::Issues,
                *p,
                &self.topics.repartition_block,
                task,
            )?;
        }
        Ok(())
    }

    /// Complainant-keyed tasks: merge, apply, publish frequency alerts.
    fn run_complainants(&mut self, msgs: &[BorrowedMessage<'_>], txn: &mut Txn) -> Result<()> {
        let cx = Engine::rule_context(&self.config);
        let read = feed_tasks(
            msgs,
            &self.topics.repartition_complainant,
            &mut self.complainants,
        )?;
        for (p, task) in self.complainants.iter_mut() {
            let released = task.merger.release();
            if released.is_empty() && !read.contains(p) {
                continue;
            }
            if !released.is_empty() {
                let events: Vec<PersonEvent> = released.into_iter().map(|(_, e)| e).collect();
                for e in &events {
                    txn.send(
                        &self.topics.changelog,
                        Some(*p as i32),
                        format!("C/{p}/{:012}", task.seq),
                        serde_json::to_vec(e)?,
                    );
                    task.seq += 1;
                }
                let alerts = task.state.apply_people(&events, &cx);
                for a in &alerts {
                    txn.send(
                        &self.topics.alerts_raised,
                        None,
                        a.alert_id.clone(),
                        serde_json::to_vec(a)?,
                    );
                }
                txn.alerts.extend(alerts);
            }
            checkpoint(
                txn,
                &self.topics,
                Stage::Complainants,
                *p,
                &self.topics.repartition_complainant,
                task,
            )?;
        }
        Ok(())
    }
}

/// The repartition record's key (informational: the partition is chosen explicitly).
fn block_of_wire(w: &Wire<Complaint>) -> String {
    match w {
        Wire::Item { item, .. } => block_of(item).to_string(),
        Wire::Mark { source, .. } => format!("mark/{source}"),
    }
}

/// A stateful task's checkpoint and input offset: the offset is the first record still
/// buffered (re-read after a restart; applied ones are skipped by the frontier), else the next.
fn checkpoint<T>(
    txn: &mut Txn,
    topics: &Topics,
    stage: Stage,
    p: usize,
    input: &str,
    task: &StateTask<T>,
) -> Result<()> {
    let ck = StateCkpt {
        frontier: Some(task.merger.frontier).filter(|f| *f != Key::MIN),
        claims: task.merger.claims.clone(),
        seq: task.seq,
    };
    txn.send(
        &topics.changelog,
        Some(p as i32),
        format!("{}/{p}", stage.tag()),
        serde_json::to_vec(&ck)?,
    );
    if let Some(next) = task.next_offset {
        let offset = task.merger.min_offset().unwrap_or(next).min(next);
        txn.offsets.insert((input.to_string(), p as i32), offset);
    }
    Ok(())
}

/// Connect to Kafka and create the topics (waiting for the broker through an outage).
pub async fn connect(config: &Config) -> Result<Arc<KafkaBus>> {
    let bus = KafkaBus::connect(&config.kafka)?;
    crate::ops::outage::retry("kafka-topics", || bus.ensure_topics()).await?;
    Ok(Arc::new(bus))
}
