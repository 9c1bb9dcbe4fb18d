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

pub fn bootstrap() -> String {
    std::env::var("DUBAN_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
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

/// Every record of `topic` up to the current high watermarks.
pub fn read_all(topic: &str) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("reader"))
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut tpl = TopicPartitionList::new();
    let mut left = 0i64;
    for p in &parts {
        let (lo, hi) = c
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .expect("watermarks");
        left += hi - lo;
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let start = Instant::now();
    while (out.len() as i64) < left {
        assert!(
            start.elapsed() < WAIT,
            "reading {topic}: got {} of {left}",
            out.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(500)) {
            let m = m.expect("message");
            out.push((
                m.key().map(<[u8]>::to_vec),
                m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            ));
        }
    }
    out
}

/// Wait until the group has committed every record of `topic` (the engine caught up).
pub async fn wait_committed(group: &str, topic: &str) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let start = Instant::now();
    loop {
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut tpl = TopicPartitionList::new();
        let mut highs = BTreeMap::new();
        for p in md.topics()[0].partitions() {
            let (_, hi) = c
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            highs.insert(p.id(), hi);
            tpl.add_partition(topic, p.id());
        }
        let committed = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed");
        let caught_up = committed.elements().iter().all(|e| {
            let hi = highs[&e.partition()];
            hi == 0 || matches!(e.offset(), Offset::Offset(o) if o >= hi)
        });
        if caught_up {
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
