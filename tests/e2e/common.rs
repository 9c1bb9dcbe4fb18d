//! Shared helpers of the end-to-end tests: broker address, unique topic prefixes, reading topics
//! to their high watermarks, waiting for an engine group to catch up.
#![allow(dead_code)]

use duban::bus::Topics;
use duban::config::Config;
use duban::record::{Alert, AlertTrigger, complaint_id};
use duban::sim::SimConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(180);

/// The pseudonym key of the tests: set explicitly, in code (`test_config`) and in the
/// environment of the commands they run (`duban()`); production commands refuse to run without one.
pub const TEST_PSEUDONYM_KEY: &str = "e2e-test-pseudonym-key";

/// The `duban` binary of this build, with the tests' pseudonym key in its environment.
pub fn duban() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_duban"));
    cmd.env(duban::engine::PSEUDONYM_KEY_ENV, TEST_PSEUDONYM_KEY);
    cmd
}

/// Run `cmd` to its end; it must succeed (else the test fails with its stderr). Its stdout and
/// stderr.
pub fn run_ok(cmd: &mut std::process::Command) -> (String, String) {
    succeeded(cmd.output().expect("the command runs"))
}

/// `run_ok` with `input` on the command's stdin.
pub fn run_ok_with_input(cmd: &mut std::process::Command, input: &str) -> (String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    // Written from another thread: the child's output fills its pipe while it reads.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("the command ends");
    writer.join().expect("writer").expect("write stdin");
    succeeded(out)
}

/// Stdout and stderr of a finished command, which must have succeeded (else its stderr fails the
/// test).
fn succeeded(out: std::process::Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8_lossy(&out.stdout).to_string(), stderr)
}

pub fn bootstrap() -> String {
    std::env::var("DUBAN_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Seeded random moments for kill tests (splitmix64): the same seed gives the same moments, so a
/// failing run can be repeated; the kill itself is the fault injected, never a synchronisation.
pub struct KillMoments(u64);

impl KillMoments {
    pub fn new(seed: u64) -> KillMoments {
        KillMoments(seed)
    }

    /// Moments from `DUBAN_KILL_SEED` when set (to repeat a run), else a fresh seed per run, so
    /// repeated runs cover other moments; the seed is printed either way.
    pub fn from_env_or_clock(test: &str) -> KillMoments {
        let seed = std::env::var("DUBAN_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
            });
        eprintln!("{test}: kill moments from DUBAN_KILL_SEED={seed}");
        KillMoments(seed)
    }

    /// The next raw 64-bit draw.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A moment `from_ms` + uniform [0, `span_ms`) milliseconds.
    pub fn within(&mut self, from_ms: u64, span_ms: u64) -> std::time::Duration {
        std::time::Duration::from_millis(from_ms + self.next_u64() % span_ms.max(1))
    }
}

pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t-{name}-{}-{nanos}", std::process::id())
}

pub fn test_config(prefix: &str) -> Config {
    let mut cfg = Config::load(&repo("config/duban.toml")).expect("shipped config loads");
    cfg.kafka.bootstrap_servers = bootstrap();
    cfg.kafka.topic_prefix = prefix.to_string();
    cfg.engine.group_id = format!("{prefix}-engine");
    cfg.engine.batch_linger_ms = 100;
    cfg.connectors.dir = repo("connectors");
    cfg.engine.pseudonym_key =
        duban::engine::PseudonymKey::Given(TEST_PSEUDONYM_KEY.as_bytes().to_vec());
    cfg
}

pub fn sim_config(seed: u64, size: usize) -> SimConfig {
    SimConfig {
        seed,
        size,
        end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
        days: 30,
        bind: "127.0.0.1:0".parse().expect("addr"),
        ..SimConfig::default()
    }
}

pub fn expected_ids(m: &duban::sim::Manifest) -> BTreeSet<String> {
    m.records
        .iter()
        .map(|e| complaint_id(e.channel.as_str(), &e.source_id))
        .collect()
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A `read_committed` consumer in `group` that commits nothing itself.
fn consumer(group: &str) -> BaseConsumer {
    consumer_at(&bootstrap(), group)
}

/// `consumer` on the broker at `bootstrap`.
fn consumer_at(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Every partition of `topic` with its high watermark.
fn high_watermarks(c: &BaseConsumer, topic: &str) -> BTreeMap<i32, i64> {
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    md.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (_, hi) = c
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            (p.id(), hi)
        })
        .collect()
}

/// Every partition of `tpl` is at or past its high watermark (an empty partition always is).
fn at_highs(tpl: &TopicPartitionList, highs: &BTreeMap<i32, i64>) -> bool {
    tpl.elements().iter().all(|e| {
        let hi = highs[&e.partition()];
        hi == 0 || matches!(e.offset(), Offset::Offset(o) if o >= hi)
    })
}

/// The committed offsets of `c`'s group on the partitions of `highs`.
fn committed(c: &BaseConsumer, topic: &str, highs: &BTreeMap<i32, i64>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for p in highs.keys() {
        tpl.add_partition(topic, *p);
    }
    c.committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed")
}

/// The values of `read_all(topic)` as JSON records of type `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(topic: &str) -> Vec<T> {
    read_all(topic)
        .iter()
        .map(|(_, v)| {
            serde_json::from_slice(v)
                .unwrap_or_else(|e| panic!("{topic}: not a {}: {e}", std::any::type_name::<T>()))
        })
        .collect()
}

/// Every committed record of `topic` up to the current high watermarks (read_committed: records
/// of aborted transactions, e.g. of a killed worker, are not there; transaction markers take
/// offsets but are no records, so reading ends at the partitions' positions, not at a count).
pub fn read_all(topic: &str) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    read_all_at(&bootstrap(), topic)
}

/// `read_all` on the broker at `bootstrap`.
pub fn read_all_at(bootstrap: &str, topic: &str) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    let c = consumer_at(bootstrap, &unique("reader"));
    let highs = high_watermarks(&c, topic);
    let mut tpl = TopicPartitionList::new();
    for p in highs.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let start = Instant::now();
    loop {
        if at_highs(&c.position().expect("position"), &highs) {
            return out;
        }
        assert!(
            start.elapsed() < WAIT,
            "reading {topic}: got {} records, not at {highs:?}",
            out.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            out.push((
                m.key().map(<[u8]>::to_vec),
                m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            ));
        }
    }
}

/// Wait until the engine group has applied everything: it committed every record of raw, and
/// past every item of both repartition topics (a stateful task commits a repartition offset only
/// past records it has released; what follows may only be progress markers and transaction
/// markers, which keep coming while the engine idles).
pub async fn wait_engine_caught_up(cfg: &Config) {
    let t = Topics::new(&cfg.kafka.topic_prefix);
    let group = cfg.engine.group_id.clone();
    let b = cfg.kafka.bootstrap_servers.clone();
    let start = Instant::now();
    loop {
        let (g, t2, b) = (group.clone(), t.clone(), b.clone());
        let done = tokio::task::spawn_blocking(move || {
            pending(&b, &g, &t2.raw, false) == 0
                && pending(&b, &g, &t2.repartition_block, true) == 0
                && pending(&b, &g, &t2.repartition_complainant, true) == 0
        })
        .await
        .expect("check");
        if done {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "engine group {} did not catch up",
            cfg.engine.group_id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Records of `topic` after `group`'s committed offsets (only engine items when `items_only`;
/// transaction markers, which take offsets, are no records).
fn pending(bootstrap: &str, group: &str, topic: &str, items_only: bool) -> usize {
    let c = consumer_at(bootstrap, group);
    let highs = high_watermarks(&c, topic);
    let committed = committed(&c, topic, &highs);
    let mut from = TopicPartitionList::new();
    for e in committed.elements() {
        let hi = highs[&e.partition()];
        let at = match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        };
        if at < hi {
            from.add_partition_offset(topic, e.partition(), Offset::Offset(at))
                .expect("tpl");
        }
    }
    if from.count() == 0 {
        return 0;
    }
    c.assign(&from).expect("assign");
    let mut items = 0;
    let start = Instant::now();
    loop {
        let done = at_highs(&c.position().expect("position"), &highs);
        if done || start.elapsed() > Duration::from_secs(30) {
            return items + usize::from(!done);
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
            items += usize::from(!items_only || v.get("item").is_some());
        }
    }
}

/// Wait until `group` has consumed every record of `topic` on the broker at `bootstrap`: none is
/// left after its committed offsets (transaction markers, which take offsets, are no records; a
/// topic written in transactions ends with one, which no consumer commits past).
pub async fn wait_consumed_at(bootstrap: &str, group: &str, topic: &str) {
    let start = Instant::now();
    loop {
        let (b, g, t) = (bootstrap.to_string(), group.to_string(), topic.to_string());
        let left = tokio::task::spawn_blocking(move || pending(&b, &g, &t, false))
            .await
            .expect("check");
        if left == 0 {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "group {group} did not consume {topic}: {left} left"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until the group has committed every record of `topic` (the engine caught up).
pub async fn wait_committed(group: &str, topic: &str) {
    let c = consumer(group);
    let start = Instant::now();
    loop {
        let highs = high_watermarks(&c, topic);
        let committed = committed(&c, topic, &highs);
        if at_highs(&committed, &highs) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "engine group {group} did not catch up on {topic}: {committed:?} vs {highs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until every id in `want` appeared on the complaints topic.
pub async fn wait_for_complaints(prefix: &str, want: &BTreeSet<String>) {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("watch"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    c.subscribe(&[Topics::new(prefix).complaints.as_str()])
        .expect("subscribe");
    let mut seen = BTreeSet::new();
    let start = Instant::now();
    while !want.is_subset(&seen) {
        let left = WAIT.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "only {} of {} complaints arrived",
            want.intersection(&seen).count(),
            want.len()
        );
        if let Ok(Ok(m)) = tokio::time::timeout(left.min(Duration::from_secs(5)), c.recv()).await {
            seen.insert(String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned());
        }
    }
}

pub fn latest_alerts(records: &[(Option<Vec<u8>>, Vec<u8>)]) -> BTreeMap<String, Alert> {
    let mut out = BTreeMap::new();
    duban::pipeline::merge_alerts(
        &mut out,
        records
            .iter()
            .map(|(_, v)| serde_json::from_slice::<Alert>(v).expect("alert JSON")),
    );
    out
}

/// The planted issues and frequent complainants of the simulator must each raise an alert.
/// "Raise" means an alert whose evidence holds at least the rule's threshold of the planted complaints.
pub fn assert_planted_alerts(
    m: &duban::sim::Manifest,
    alerts: &BTreeMap<String, Alert>,
    cfg: &duban::config::Config,
) {
    let id = |e: &duban::sim::ManifestEntry| complaint_id(e.channel.as_str(), &e.source_id);
    let evidence = |t: AlertTrigger| -> Vec<BTreeSet<&String>> {
        alerts
            .values()
            .filter(|a| a.trigger == t)
            .map(|a| a.complaint_ids.iter().collect())
            .collect()
    };
    let crowd = evidence(AlertTrigger::CrowdConcentration);
    assert!(
        !m.clusters.is_empty() && !m.frequent.is_empty(),
        "the simulator plants clusters and frequent complainants"
    );
    for c in &m.clusters {
        let ids: BTreeSet<String> = c.records.iter().map(id).collect();
        let best = crowd
            .iter()
            .map(|e| ids.iter().filter(|i| e.contains(i)).count())
            .max()
            .unwrap_or(0);
        assert!(
            best >= cfg.rules.crowd_min_complainants,
            "planted cluster {:?} ({} complaints): best crowd alert covers {best}",
            c.place,
            ids.len()
        );
    }
    let freq = evidence(AlertTrigger::HighFrequency);
    for f in &m.frequent {
        let ids: BTreeSet<String> = f.records.iter().map(id).collect();
        let best = freq
            .iter()
            .map(|e| ids.iter().filter(|i| e.contains(i)).count())
            .max()
            .unwrap_or(0);
        assert!(
            best >= cfg.frequency.min_complaints as usize,
            "frequent complainant with {} complaints: best alert covers {best}",
            ids.len()
        );
    }
}

/// Run `duban process` (the engine's Kafka stage) in the background until the sender fires.
pub fn spawn_engine(
    cfg: &Config,
    bus: &std::sync::Arc<duban::bus::KafkaBus>,
    data: &Path,
) -> (
    tokio::task::JoinHandle<anyhow::Result<()>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (cfg, bus, data) = (cfg.clone(), bus.clone(), data.to_path_buf());
    let engine = tokio::spawn(async move {
        duban::pipeline::kafka::process(&cfg, bus, &data, async move {
            let _ = stop_rx.await;
        })
        .await
    });
    (engine, stop_tx)
}
