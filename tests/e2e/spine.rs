//! The spine end to end: simulator → connectors → Kafka → engine, compared with the embedded
//! demo; a malformed raw record goes to the DLQ; the CLI's demo → sql round trip.

use crate::common::*;
use duban::bus::{Bus, KafkaBus};
use duban::connectors::{ConnectorFiles, Output};
use duban::record::{Alert, Channel, Complaint, DeadLetter, complaint_id};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
    let (engine, stop_tx) = spawn_engine(&cfg, &bus, &data);
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
    // The engine raises alerts on `alerts-raised`; the lifecycle (not running here) owns `alerts`.
    let alerts = latest_alerts(&read_all(&topics.alerts_raised));
    // Same alerts: the same triggers with the same evidence. (Ids derive from trigger, subject and
    // window; where a cluster straddles a window boundary the arrival order picks the window.)
    let evidence = |m: &BTreeMap<String, Alert>| -> BTreeSet<(String, Vec<String>)> {
        m.values()
            .filter(|a| a.merged_into.is_none())
            .map(|a| (a.trigger.as_str().to_string(), a.complaint_ids.clone()))
            .collect()
    };
    assert_eq!(
        evidence(&alerts),
        evidence(&demo.alerts),
        "same alerts as the embedded run"
    );
    for target in alerts.values().filter_map(|a| a.merged_into.as_ref()) {
        assert!(
            alerts.get(target).is_some_and(|t| t.merged_into.is_none()),
            "a merged alert points to a live one"
        );
    }
    assert_planted_alerts(&demo.manifest, &alerts, &cfg);

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
    // The snapshot tables were written when the engine stopped.
    let batches = duban::query::run_sql(
        &lake,
        "select sum(complaints) as n from issues where merged_into is null",
    )
    .await
    .expect("issues table");
    let text = duban::query::render(&batches, duban::query::Format::Csv).expect("csv");
    assert_eq!(
        text.trim(),
        format!("n\n{}", want.len()),
        "every complaint is in one live issue"
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
    let (engine, stop_tx) = spawn_engine(&cfg, &bus, &data);
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
