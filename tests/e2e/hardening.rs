//! Issue 21's hardening end to end: production commands refuse to run without a secret pseudonym
//! key; records dated out of bounds become dead letters on the real broker.

use crate::common::*;

#[test]
fn production_commands_need_a_secret_pseudonym_key() {
    let config = repo("config/duban.toml");
    let config = config.to_str().expect("utf-8 path");
    let commands: [&[&str]; 3] = [
        &["process", "--config", config],
        &["run", "--config", config],
        &[
            "backfill",
            "--config",
            config,
            "--input",
            "missing.csv",
            "--mapping",
            "connectors/board-export.toml",
        ],
    ];
    for args in commands {
        for (key, why) in [
            (None, "DUBAN_PSEUDONYM_KEY is not set"),
            (Some("duban-development-pseudonym-key"), "development key"),
            (Some("short"), "at least 16 bytes"),
        ] {
            let mut cmd = duban();
            cmd.args(args).current_dir(repo("."));
            match key {
                Some(k) => cmd.env(duban::engine::PSEUDONYM_KEY_ENV, k),
                None => cmd.env_remove(duban::engine::PSEUDONYM_KEY_ENV),
            };
            let out = cmd.output().expect("duban runs");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} ran with key {key:?}");
            let last = err.lines().last().unwrap_or_default();
            assert!(
                last.starts_with("error: ") && last.contains(why),
                "{args:?} with key {key:?}: {err}"
            );
        }
    }
}

/// Issue 21, item 6, on the real broker: a record dated year 9999 (and one before the floor) goes
/// to the dead-letter topic with a reason naming the record and the field; the partition's
/// record clock stays where it was, so the state is not evicted: a later near-duplicate still
/// finds its original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_dated_out_of_bounds_are_dead_letters_on_kafka() {
    let prefix = unique("dated");
    let cfg = test_config(&prefix);
    let bus = duban::pipeline::kafka::connect(&cfg)
        .await
        .expect("Kafka reachable");
    let topics = bus.topics();
    let text = "镜湖区翠湖花园小区门口每天傍晚流动摊贩占道经营，油烟和噪音扰民，行人只能走机动车道，请城管部门尽快整治。";
    let record = |id: &str, at: &str, body: &str| {
        let env = serde_json::json!({
            "channel": "hotline", "source_id": id, "fetched_at": "2026-11-03T08:00:00+08:00",
            "position": {}, "payload": {"call_time": at, "content": body, "district": "镜湖区",
            "caller": "市民", "phone": "13900001111"}});
        (
            format!("hotline:{id}"),
            serde_json::to_vec(&env).expect("json"),
        )
    };
    let raw = vec![
        record("D-1", "2026-11-01 09:00:00", text),
        record("D-FAR", "9999-12-31 23:00:00", "未来的投诉"),
        record("D-OLD", "1970-01-01 08:00:00", "很久以前的投诉"),
        record("D-2", "2026-11-02 10:00:00", &format!("{text}谢谢。")),
    ];
    for r in &raw {
        // One at a time, so the raw timestamps (the engine's order) follow this list.
        bus.send_all(&topics.raw, std::slice::from_ref(r))
            .await
            .expect("raw sent");
    }
    let data = tmpdir("dated");
    let (engine, stop) = spawn_engine(&cfg, &bus, &data);
    wait_engine_caught_up(&cfg).await;
    let _ = stop.send(());
    engine.await.expect("engine task").expect("engine ran");

    let dead: Vec<duban::record::DeadLetter> = read_json(&topics.dlq);
    let mut reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("record D-FAR") && reasons[0].contains("field call_time: dated"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("record D-OLD") && reasons[1].contains("before 2000-01-01"),
        "{reasons:?}"
    );
    assert!(dead.iter().all(|d| d.stage == "engine.decode"));
    let complaints: Vec<duban::record::Complaint> = read_json(&topics.complaints);
    let id = |s: &str| duban::record::complaint_id("hotline", s);
    let second = complaints
        .iter()
        .find(|c| c.complaint_id == id("D-2"))
        .expect("D-2 published");
    assert_eq!(
        second.duplicate_of.as_deref(),
        Some(id("D-1").as_str()),
        "the original was not evicted"
    );
}
