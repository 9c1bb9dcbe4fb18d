//! End-to-end tests: the whole path on a real Kafka broker (DUBAN_KAFKA_BOOTSTRAP, started by
//! scripts/test.sh), compared with the embedded demo, plus the CLI's demo → sql round trip.
//! All heavy tests live in this one binary so they share one broker and one build.

use duban::bus::{Bus, KafkaBus, Topics};
use duban::config::Config;
use duban::connectors::{ConnectorFiles, Output};
use duban::record::{Alert, AlertTrigger, Channel, Complaint, DeadLetter, complaint_id};
use duban::sim::SimConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(180);

fn bootstrap() -> String {
    std::env::var("DUBAN_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t-{name}-{}-{nanos}", std::process::id())
}

fn test_config(prefix: &str) -> Config {
    let mut cfg = Config::load(&repo("config/duban.toml")).expect("shipped config loads");
    cfg.kafka.bootstrap_servers = bootstrap();
    cfg.kafka.topic_prefix = prefix.to_string();
    cfg.engine.group_id = format!("{prefix}-engine");
    cfg.engine.batch_linger_ms = 100;
    cfg.connectors.dir = repo("connectors");
    cfg
}

fn sim_config(seed: u64, size: usize) -> SimConfig {
    SimConfig {
        seed,
        size,
        end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
        days: 30,
        bind: "127.0.0.1:0".parse().expect("addr"),
        ..SimConfig::default()
    }
}

fn expected_ids(m: &duban::sim::Manifest) -> BTreeSet<String> {
    m.records
        .iter()
        .map(|e| complaint_id(e.channel.as_str(), &e.source_id))
        .collect()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Every record of `topic` up to the current high watermarks.
fn read_all(topic: &str) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
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
async fn wait_committed(group: &str, topic: &str) {
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
async fn wait_for_complaints(prefix: &str, want: &BTreeSet<String>) {
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

fn latest_alerts(records: &[(Option<Vec<u8>>, Vec<u8>)]) -> BTreeMap<String, Alert> {
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
fn assert_planted_alerts(
    m: &duban::sim::Manifest,
    alerts: &BTreeMap<String, Alert>,
    rules: &duban::config::RuleConfig,
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
            best >= rules.crowd_min_complainants,
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
            best >= rules.frequent_min_complaints,
            "frequent complainant with {} complaints: best alert covers {best}",
            ids.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_pipeline_delivers_every_complaint_once_and_matches_embedded() {
    let prefix = unique("e2e");
    let cfg = test_config(&prefix);
    let sim_cfg = sim_config(7, 1200);

    // Embedded run of the same corpus.
    let demo_dir = tmpdir("demo");
    let demo =
        duban::pipeline::embedded::run_demo(&cfg, &cfg.connectors.dir, sim_cfg.clone(), &demo_dir)
            .await
            .expect("embedded run");
    let want = expected_ids(&demo.manifest);
    let demo_ids: BTreeSet<String> = demo
        .complaints
        .iter()
        .map(|c| c.complaint_id.clone())
        .collect();
    assert_eq!(
        demo_ids, want,
        "embedded: every simulated complaint exactly once"
    );
    assert_eq!(demo.complaints.len(), want.len());

    // Kafka run: simulator → connectors → Kafka → engine.
    let bus: Arc<KafkaBus> = duban::pipeline::kafka::connect(&cfg)
        .await
        .expect("Kafka reachable (scripts/services.sh start kafka)");
    let topics = bus.topics();
    let out = Output {
        bus: Bus::Kafka(bus.clone()),
        topics: topics.clone(),
    };
    let mut files = ConnectorFiles::load(&cfg.connectors.dir).expect("connector configs");
    files.hotline.api.poll_interval_secs = 1;
    files.hotline.exports.poll_interval_secs = 1;
    files.board.poll_interval_secs = 1;
    files.portal.poll_interval_secs = 1;
    let mut kafka_sim = sim_cfg.clone();
    let exports = tmpdir("exports");
    kafka_sim.export_dir = exports.clone();
    let (sim, receiver) =
        duban::pipeline::embedded::start_sim_and_receiver(kafka_sim, &files, out.clone())
            .await
            .expect("sim");
    files.point_at_sim(&sim.base_url(), &exports);
    assert_eq!(expected_ids(sim.manifest()), want, "same seed, same corpus");

    let data = tmpdir("data");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let engine = {
        let (cfg, bus, data) = (cfg.clone(), bus.clone(), data.clone());
        tokio::spawn(async move {
            duban::pipeline::kafka::process(&cfg, bus, &data, async move {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    let pollers = {
        let (files, enabled, out) = (files.clone(), cfg.connectors.enabled.clone(), out.clone());
        tokio::spawn(async move {
            duban::connectors::run_pollers(&files, &enabled, out, duban::connectors::Mode::Follow)
                .await
        })
    };
    wait_for_complaints(&prefix, &want).await;
    sim.pushes_done().await.expect("webhooks acknowledged");
    pollers.abort();
    receiver.shutdown().await;
    wait_committed(&cfg.engine.group_id, &topics.raw).await;
    let _ = stop_tx.send(());
    engine
        .await
        .expect("engine task")
        .expect("engine ran without error");
    sim.shutdown().await;

    // Exactly once by complaint_id, all four channels.
    let records = read_all(&topics.complaints);
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let mut channels = BTreeSet::new();
    for (k, v) in &records {
        let c: Complaint = serde_json::from_slice(v).expect("complaint JSON");
        assert_eq!(
            k.as_deref(),
            Some(c.complaint_id.as_bytes()),
            "keyed by complaint_id"
        );
        assert!(
            c.phone_masked.as_deref().is_none_or(|p| p.contains("****")),
            "phones masked"
        );
        channels.insert(c.channel.parse::<Channel>().expect("channel"));
        *count.entry(c.complaint_id).or_default() += 1;
    }
    assert_eq!(count.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(
        count.values().all(|n| *n == 1),
        "a complaint appeared twice: {:?}",
        count.iter().find(|(_, n)| **n > 1)
    );
    assert_eq!(channels.len(), 4, "all four channels: {channels:?}");

    // The same alerts as the embedded run, and the planted issues raised them.
    let alerts = latest_alerts(&read_all(&topics.alerts));
    assert_eq!(
        alerts.keys().collect::<Vec<_>>(),
        demo.alerts.keys().collect::<Vec<_>>(),
        "same alert ids"
    );
    for (id, a) in &alerts {
        assert_eq!(
            a.complaint_ids, demo.alerts[id].complaint_ids,
            "same evidence for {id}"
        );
    }
    assert_planted_alerts(&demo.manifest, &alerts, &cfg.rules);

    // The engine wrote the lake; `duban sql` reads it.
    let lake = data.join("lake");
    let batches = duban::query::run_sql(
        &lake,
        "select count(distinct complaint_id) as n, count(*) as rows from complaints",
    )
    .await
    .expect("sql");
    let text = duban::query::render(&batches, duban::query::Format::Csv).expect("csv");
    assert_eq!(
        text.trim(),
        format!("n,rows\n{},{}", want.len(), want.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_raw_record_goes_to_dlq_and_engine_keeps_going() {
    let prefix = unique("dlq");
    let cfg = test_config(&prefix);
    let bus = duban::pipeline::kafka::connect(&cfg)
        .await
        .expect("Kafka reachable");
    let topics = bus.topics();
    let good = serde_json::json!({"channel": "hotline", "source_id": "RX-OK-1", "fetched_at": "2026-11-20T10:00:00+08:00", "position": {},
        "payload": {"call_time": "2026-11-20 09:00:00", "content": "镜湖区某某路路灯不亮", "phone": "13800001111"}});
    let missing = serde_json::json!({"channel": "hotline", "source_id": "RX-BAD-2", "fetched_at": "2026-11-20T10:00:00+08:00", "position": {},
        "payload": {"content": "没有时间"}});
    bus.send_all(
        &topics.raw,
        &[
            ("garbage".into(), b"\xff\xfe not json".to_vec()),
            (
                "hotline:RX-BAD-2".into(),
                serde_json::to_vec(&missing).expect("json"),
            ),
            (
                "hotline:RX-OK-1".into(),
                serde_json::to_vec(&good).expect("json"),
            ),
        ],
    )
    .await
    .expect("produce");
    let data = tmpdir("dlq-data");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let engine = {
        let (cfg, bus, data) = (cfg.clone(), bus.clone(), data.clone());
        tokio::spawn(async move {
            duban::pipeline::kafka::process(&cfg, bus, &data, async move {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    wait_for_complaints(
        &prefix,
        &BTreeSet::from([complaint_id("hotline", "RX-OK-1")]),
    )
    .await;
    wait_committed(&cfg.engine.group_id, &topics.raw).await;
    let _ = stop_tx.send(());
    engine.await.expect("engine task").expect("engine ran");
    let dead: Vec<DeadLetter> = read_all(&topics.dlq)
        .iter()
        .map(|(_, v)| serde_json::from_slice(v).expect("dead letter JSON"))
        .collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    let garbage = dead
        .iter()
        .find(|d| d.key.as_deref() == Some("garbage"))
        .expect("garbage dead-lettered");
    assert_eq!(garbage.original(), b"\xff\xfe not json");
    assert!(
        garbage.reason.contains(&topics.raw),
        "reason names the record's origin: {}",
        garbage.reason
    );
    let bad = dead
        .iter()
        .find(|d| d.reason.contains("RX-BAD-2"))
        .expect("record without time dead-lettered");
    assert!(
        bad.reason.contains("call_time"),
        "reason names the field: {}",
        bad.reason
    );
    assert_eq!(bad.stage, "engine.decode");
}

#[test]
fn demo_then_sql_lists_all_four_channels() {
    let out = tmpdir("cli-demo");
    let bin = env!("CARGO_BIN_EXE_duban");
    let run = std::process::Command::new(bin)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--size", "300", "--out"])
        .arg(&out)
        .output()
        .expect("runs duban demo");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("by channel") && stdout.contains("alerts"),
        "{stdout}"
    );
    for f in ["summary.json", "alerts.jsonl", "lake/alerts/alerts.parquet"] {
        assert!(out.join(f).exists(), "{f} written");
    }
    let sql = std::process::Command::new(bin)
        .args(["sql", "--format", "csv", "--lake"])
        .arg(out.join("lake"))
        .arg("select channel, count(*) as n from complaints group by channel order by channel")
        .output()
        .expect("runs duban sql");
    assert!(
        sql.status.success(),
        "sql failed: {}",
        String::from_utf8_lossy(&sql.stderr)
    );
    let text = String::from_utf8_lossy(&sql.stdout);
    let channels: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(
        channels,
        ["board", "hotline", "portal", "wanshitong"],
        "{text}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary"))
            .expect("json");
    let total: u64 = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1)?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        summary["complaints"].as_u64(),
        Some(total),
        "summary agrees with the lake"
    );
    let bad = std::process::Command::new(bin)
        .args(["sql", "--lake"])
        .arg(out.join("lake"))
        .arg("select nope from complaints")
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(errors[0].contains("nope"), "names the field: {}", errors[0]);
}
