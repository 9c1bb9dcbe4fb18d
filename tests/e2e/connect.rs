//! Production connectors on a real broker: exactly once into the raw topic under faults on every
//! feed and under `kill -9` of the ingest process, webhook signatures, GBK CSV and .xlsx exports.

use crate::common::*;
use duban::bus::{Bus, KafkaBus, Topics};
use duban::connectors::{ConnectorFiles, Mode, Output, wanshitong};
use duban::record::{Channel, DeadLetter, RawEnvelope};
use duban::sim::faults::{Faults, FeedFaults, WebhookFaults};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the connectors of a test write: the real broker, the test's topics.
async fn kafka_output(cfg: &duban::config::Config) -> Output {
    let bus: Arc<KafkaBus> = duban::pipeline::kafka::connect(cfg)
        .await
        .expect("Kafka reachable");
    Output {
        bus: Bus::Kafka(bus.clone()),
        topics: bus.topics(),
    }
}

fn envelopes(prefix: &str) -> Vec<RawEnvelope> {
    read_json(&Topics::new(prefix).raw)
}

fn dead_letters(prefix: &str) -> Vec<DeadLetter> {
    read_json(&Topics::new(prefix).dlq)
}

/// Which connector path delivered an envelope: the hotline's API and exports carry the same
/// work orders, each exactly once per path; a connector profile is a path of its own.
fn path_of(e: &RawEnvelope) -> String {
    if let Some(p) = e.position.get("profile").and_then(|p| p.as_str()) {
        return format!("profile:{p}");
    }
    match e.channel {
        Channel::Hotline if e.position.get("file").is_some() => "hotline-exports",
        Channel::Hotline => "hotline-api",
        Channel::Board => "board",
        Channel::Portal => "portal",
        Channel::Wanshitong => "wanshitong",
    }
    .to_string()
}

/// (path, source id, version) → how often it is on the raw topic.
fn census(envs: &[RawEnvelope]) -> BTreeMap<(String, String, Option<String>), usize> {
    let mut m = BTreeMap::new();
    for e in envs {
        *m.entry((path_of(e), e.source_id.clone(), e.version.clone()))
            .or_default() += 1;
    }
    m
}

/// The (path, source id) pairs every good record of the simulator must reach.
fn wanted(
    manifest: &duban::sim::Manifest,
    malformed: &BTreeMap<Channel, BTreeSet<String>>,
) -> BTreeSet<(String, String)> {
    let mut w = BTreeSet::new();
    for r in &manifest.records {
        if malformed
            .get(&r.channel)
            .is_some_and(|m| m.contains(&r.source_id))
        {
            continue;
        }
        let paths: &[&str] = match r.channel {
            Channel::Hotline => &["hotline-api", "hotline-exports"],
            Channel::Board => &["board"],
            Channel::Portal => &["portal"],
            Channel::Wanshitong => &["wanshitong"],
        };
        for p in paths {
            w.insert((p.to_string(), r.source_id.clone()));
        }
    }
    w
}

async fn sim_faults(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/sim/faults"))
        .await
        .expect("GET /sim/faults")
        .json()
        .await
        .expect("faults JSON")
}

fn malformed_of(report: &serde_json::Value) -> BTreeMap<Channel, BTreeSet<String>> {
    Channel::ALL
        .iter()
        .map(|ch| {
            let ids = report["malformed"][ch.as_str()]
                .as_array()
                .expect("malformed list")
                .iter()
                .map(|v| v.as_str().expect("id").to_string())
                .collect();
            (*ch, ids)
        })
        .collect()
}

/// Wait (with the deadline) until `done` holds for the raw topic's envelopes.
async fn wait_raw(
    prefix: &str,
    what: &str,
    done: impl Fn(&[RawEnvelope]) -> Result<(), String>,
) -> Vec<RawEnvelope> {
    let start = Instant::now();
    loop {
        let envs = {
            let p = prefix.to_string();
            tokio::task::spawn_blocking(move || envelopes(&p))
                .await
                .expect("reader")
        };
        match done(&envs) {
            Ok(()) => return envs,
            Err(why) => assert!(start.elapsed() < WAIT, "{what}: {why}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn missing(envs: &[RawEnvelope], want: &BTreeSet<(String, String)>) -> Result<(), String> {
    let have: BTreeSet<(String, String)> = envs
        .iter()
        .map(|e| (path_of(e), e.source_id.clone()))
        .collect();
    let miss: Vec<_> = want.difference(&have).collect();
    if miss.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} missing, e.g. {:?}",
            miss.len(),
            want.len(),
            &miss[..miss.len().min(3)]
        ))
    }
}

fn assert_exactly_once(envs: &[RawEnvelope]) {
    let twice: Vec<_> = census(envs).into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(
        twice.is_empty(),
        "records on the raw topic more than once: {:?}",
        &twice[..twice.len().min(5)]
    );
}

fn fast_http(p: &mut duban::connectors::feed::HttpPolicy) {
    p.backoff_initial_ms = 20;
    p.backoff_max_ms = 500;
    p.circuit_open_secs = 1;
    p.timeout_secs = 5;
}

fn noisy_feed() -> FeedFaults {
    FeedFaults {
        error_rate: 0.15,
        latency_rate: 0.05,
        latency_ms: 50,
        malformed_rate: 0.05,
        duplicate_rate: 0.3,
        drift_rate: 0.1,
        ..FeedFaults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_on_every_feed_every_good_record_once_and_malformed_in_dlq() {
    let prefix = unique("faults");
    let cfg = test_config(&prefix);
    let out = kafka_output(&cfg).await;
    let mut files = ConnectorFiles::load(&cfg.connectors.dir).expect("connector configs");
    files.hotline.api.poll_interval_secs = 1;
    files.hotline.exports.poll_interval_secs = 1;
    files.hotline.exports.settle_secs = 0;
    files.board.poll_interval_secs = 1;
    files.portal.poll_interval_secs = 1;
    fast_http(&mut files.hotline.api.http);
    fast_http(&mut files.board.http);
    fast_http(&mut files.portal.http);
    let mut sim_cfg = sim_config(11, 400);
    sim_cfg.export_dir = tmpdir("fault-exports");
    sim_cfg.faults = Faults {
        hotline: noisy_feed(),
        board: noisy_feed(),
        portal: noisy_feed(),
        peoples_daily: FeedFaults::default(),
        wanshitong: WebhookFaults {
            unsigned_rate: 0.1,
            bad_signature_rate: 0.1,
            replay_rate: 0.1,
            redeliver_rate: 0.2,
            malformed_rate: 0.05,
        },
    };
    let exports = sim_cfg.export_dir.clone();
    let (sim, receiver) =
        duban::pipeline::embedded::start_sim_and_receiver(sim_cfg, &files, out.clone())
            .await
            .expect("sim");
    files.point_at_sim(&sim.base_url(), &exports);
    let report = sim_faults(&sim.base_url()).await;
    let malformed = malformed_of(&report);
    for ch in Channel::ALL {
        assert!(
            !malformed[&ch].is_empty(),
            "{ch}: some records are malformed"
        );
    }
    let want = wanted(sim.manifest(), &malformed);
    let pollers = {
        let (files, enabled, out) = (files.clone(), cfg.connectors.enabled.clone(), out.clone());
        tokio::spawn(async move {
            duban::connectors::run_pollers(&files, &enabled, out, Mode::Follow).await
        })
    };
    wait_raw(&prefix, "every good record", |e| missing(e, &want)).await;
    sim.pushes_done().await.expect("webhooks acknowledged");

    // Records updated after first seen come again as a new version, once.
    let advanced: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/sim/hotline/advance", sim.base_url()))
        .send()
        .await
        .expect("advance")
        .json()
        .await
        .expect("json");
    let changed: BTreeSet<String> = advanced["order_nos"]
        .as_array()
        .expect("order_nos")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .filter(|id| !malformed[&Channel::Hotline].contains(id))
        .collect();
    assert!(
        !changed.is_empty(),
        "the simulator changed some work orders"
    );
    let envs = wait_raw(&prefix, "updated versions", |envs| {
        let versions: BTreeMap<&str, usize> = envs
            .iter()
            .filter(|e| path_of(e) == "hotline-api" && changed.contains(&e.source_id))
            .fold(BTreeMap::new(), |mut m, e| {
                *m.entry(e.source_id.as_str()).or_default() += 1;
                m
            });
        let short = changed
            .iter()
            .filter(|id| versions.get(id.as_str()).copied().unwrap_or(0) < 2)
            .count();
        if short == 0 {
            Ok(())
        } else {
            Err(format!("{short} changed orders without a second version"))
        }
    })
    .await;
    // One more full pass of every poller, restarted from its committed position (a drain run
    // returns when each has walked its feed once): nothing new may appear.
    let report = sim_faults(&sim.base_url()).await;
    pollers.abort();
    let _ = pollers.await;
    let enabled = cfg.connectors.enabled.clone();
    tokio::time::timeout(
        Duration::from_secs(120),
        duban::connectors::run_pollers(&files, &enabled, out.clone(), Mode::Drain),
    )
    .await
    .expect("the extra pass ends in time")
    .expect("the extra pass");
    receiver.shutdown().await;
    sim.shutdown().await;
    let envs_after = envelopes(&prefix);
    assert_eq!(
        census(&envs_after),
        census(&envs),
        "the extra pass brought nothing new"
    );

    assert_exactly_once(&envs_after);
    missing(&envs_after, &want).expect("every good record");
    let served: BTreeSet<String> = envs_after.iter().map(|e| e.source_id.clone()).collect();
    for (ch, ids) in &malformed {
        for id in ids {
            assert!(
                !served.contains(id),
                "{ch} malformed record {id} reached the raw topic"
            );
        }
    }
    // Updated orders: two versions, both on the raw topic once, the later one with the new status.
    for id in &changed {
        let mut v: Vec<&RawEnvelope> = envs_after
            .iter()
            .filter(|e| path_of(e) == "hotline-api" && &e.source_id == id)
            .collect();
        v.sort_by(|a, b| a.version.cmp(&b.version));
        assert_eq!(v.len(), 2, "{id}: two versions");
        assert_ne!(v[0].version, v[1].version);
        assert_eq!(v[1].payload["status"], "已办结");
    }
    // Drifted records: the renamed field mapped back, the new field kept under `extra`.
    let drifted = report["drifted"]["hotline"]
        .as_array()
        .expect("drifted")
        .clone();
    assert!(!drifted.is_empty());
    for id in drifted.iter().filter_map(|v| v.as_str()) {
        if malformed[&Channel::Hotline].contains(id) {
            continue;
        }
        let e = envs_after
            .iter()
            .find(|e| path_of(e) == "hotline-api" && e.source_id == id)
            .expect("drifted record");
        assert!(
            e.payload["content"].as_str().is_some_and(|c| !c.is_empty()),
            "{id}: content mapped from content_text"
        );
        assert_eq!(
            e.payload["extra"]["source_system"], "12345-v2",
            "{id}: unknown field kept"
        );
    }
    let board_drift = report["drifted"]["board"]
        .as_array()
        .expect("drifted")
        .clone();
    for id in board_drift
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|id| !malformed[&Channel::Board].contains(*id))
    {
        let e = envs_after
            .iter()
            .find(|e| e.channel == Channel::Board && e.source_id == id)
            .expect("drifted board record");
        assert!(
            e.payload["content"].is_string() && e.payload["extra"]["ip_region"].is_string(),
            "{id}: {}",
            e.payload
        );
    }

    // Every malformed record is in the DLQ with the channel, a reason naming it, and its bytes.
    let dead = dead_letters(&prefix);
    for (ch, ids) in &malformed {
        for id in ids {
            let d = dead
                .iter()
                .find(|d| {
                    d.channel.as_deref() == Some(ch.as_str()) && d.reason.contains(id.as_str())
                })
                .unwrap_or_else(|| panic!("{ch} malformed record {id} not in the DLQ"));
            assert_eq!(d.stage, format!("connector.{ch}"));
            assert!(!d.original().is_empty(), "{id}: original bytes kept");
            let why = match ch {
                Channel::Hotline => "`call_time`",
                Channel::Board => "not JSON",
                Channel::Portal => "`content`",
                Channel::Wanshitong => "`content`",
            };
            assert!(d.reason.contains(why), "{id}: {}", d.reason);
        }
    }
    // Malformed rows of the exports too (line numbers), and no dead letter twice.
    assert!(dead.iter().any(|d| d.reason.contains("hotline export") && d.reason.contains("fields, header has")));
    let mut reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    reasons.sort();
    let n = reasons.len();
    reasons.dedup();
    assert_eq!(reasons.len(), n, "a dead letter was written twice");
    // Bad webhooks were refused, re-deliveries collapsed.
    assert!(report["webhooks_bad_sent"].as_u64() > Some(0));
    assert_eq!(
        report["webhooks_bad_accepted"], 0,
        "every bad webhook answered 401"
    );
    assert!(report["webhooks_redelivered"].as_u64() > Some(0));
    // Metrics count what happened.
    let text = duban::connectors::metrics::render();
    assert!(
        text.contains("duban_connector_sent_records_total{connector=\"board\"}"),
        "{text}"
    );
}

/// A config file for `duban ingest` pointing at `prefix`, the simulator and a folder of
/// connector files; returns its path.
fn ingest_config(
    dir: &Path,
    prefix: &str,
    sim_base: &str,
    exports: &Path,
    webhook_port: u16,
) -> PathBuf {
    let conn = dir.join("connectors");
    std::fs::create_dir_all(&conn).expect("dir");
    let rebase = |text: &str| text.replace("http://127.0.0.1:8088", sim_base);
    for f in [
        "hotline.toml",
        "board.toml",
        "portal.toml",
        "wanshitong.toml",
    ] {
        let text = std::fs::read_to_string(repo(&format!("connectors/{f}"))).expect("toml");
        let text = rebase(&text)
            .replace("poll_interval_secs = 10", "poll_interval_secs = 1")
            .replace("poll_interval_secs = 5", "poll_interval_secs = 1")
            .replace("settle_secs = 2", "settle_secs = 0")
            .replace("backoff_initial_ms = 200", "backoff_initial_ms = 20")
            .replace("backoff_max_ms = 30000", "backoff_max_ms = 500")
            .replace("circuit_open_secs = 10", "circuit_open_secs = 1")
            // Slow feeds, small commits: ingestion is still running when the kills come.
            .replace("max_requests_per_sec = 200", "max_requests_per_sec = 20")
            .replace("max_requests_per_sec = 100", "max_requests_per_sec = 20")
            .replace("page_size = 200 ", "page_size = 10 ")
            .replace("records_per_commit = 50 ", "records_per_commit = 5 ")
            .replace("rows_per_commit = 500 ", "rows_per_commit = 7 ")
            .replace(
                "dir = \"var/sim/hotline-exports\"",
                &format!("dir = {:?}", exports.display().to_string()),
            )
            .replace(
                "bind = \"127.0.0.1:8089\"",
                &format!("bind = \"127.0.0.1:{webhook_port}\""),
            );
        std::fs::write(conn.join(f), text).expect("write toml");
    }
    // A connector profile too: the People's Daily stand-in's signed API, small commits.
    std::fs::create_dir_all(conn.join("profiles")).expect("dir");
    let pd = std::fs::read_to_string(repo("connectors/profiles/peoples-daily-v1.toml"))
        .expect("profile")
        .replace(
            "base_url = \"https://liuyan.people.com.cn\"",
            &format!("base_url = \"{sim_base}/pd\""),
        )
        .replace("poll_interval_secs = 300", "poll_interval_secs = 1")
        .replace("records_per_commit = 20", "records_per_commit = 5")
        .replace("max_requests_per_sec = 10", "max_requests_per_sec = 20")
        .replace("backoff_initial_ms = 500", "backoff_initial_ms = 20")
        .replace("backoff_max_ms = 30000", "backoff_max_ms = 500");
    std::fs::write(conn.join("profiles/peoples-daily-v1.toml"), pd).expect("write profile");
    let cfg = dir.join("duban.toml");
    std::fs::write(
        &cfg,
        format!(
            "[kafka]\nbootstrap_servers = {:?}\ntopic_prefix = {prefix:?}\n\n[connectors]\ndir = {:?}\nprofiles = [\"profiles/peoples-daily-v1.toml\"]\n",
            bootstrap(),
            conn.display().to_string()
        ),
    )
    .expect("write config");
    cfg
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_five_times_then_restart_raw_topic_holds_every_record_once() {
    let prefix = unique("kill");
    let dir = tmpdir("kill");
    let webhook_port = free_port();
    let mut sim_cfg = sim_config(23, 300);
    sim_cfg.export_dir = dir.join("exports");
    sim_cfg.push_url = Some(format!(
        "http://127.0.0.1:{webhook_port}/webhooks/wanshitong"
    ));
    sim_cfg.webhook_secret = duban::connectors::wanshitong::DEV_SECRET.into();
    let feed = FeedFaults {
        error_rate: 0.1,
        duplicate_rate: 0.2,
        ..FeedFaults::default()
    };
    sim_cfg.faults = Faults {
        hotline: feed.clone(),
        board: feed.clone(),
        portal: feed,
        peoples_daily: FeedFaults::default(),
        wanshitong: WebhookFaults {
            redeliver_rate: 0.1,
            ..WebhookFaults::default()
        },
    };
    let sim = duban::sim::start(sim_cfg.clone()).await.expect("sim");
    let config = ingest_config(
        &dir,
        &prefix,
        &sim.base_url(),
        &sim_cfg.export_dir,
        webhook_port,
    );
    let mut want = wanted(sim.manifest(), &BTreeMap::new());
    let pd: Vec<String> = sim.pd_threads().iter().map(|t| t.tid.to_string()).collect();
    assert!(!pd.is_empty(), "the stand-in has messages");
    want.extend(
        pd.into_iter()
            .map(|tid| ("profile:peoples-daily-v1".to_string(), tid)),
    );
    let log = dir.join("ingest.log");
    let spawn = || {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        std::process::Command::new(env!("CARGO_BIN_EXE_duban"))
            .args(["ingest", "--config"])
            .arg(&config)
            .env("DUBAN_KAFKA_BOOTSTRAP", bootstrap())
            .env_remove("DUBAN_WST_SECRET")
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn duban ingest")
    };
    // Each run is killed after its first commit (told by its log), at a seeded random moment
    // (splitmix64 of the seed) 0–1 s later.
    let commits = || {
        std::fs::read_to_string(&log)
            .map(|t| t.matches(" committed ").count())
            .unwrap_or(0)
    };
    let mut moments = KillMoments::new(0x5EED_2026);
    let mut mid_ingest = 0;
    let mut before = 0;
    for kill in 0..5 {
        let committed = commits();
        let mut child = spawn();
        let start = Instant::now();
        while commits() <= committed {
            assert!(
                child.try_wait().expect("status").is_none(),
                "ingest exited early: see {}",
                log.display()
            );
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "run {kill} committed nothing in 60 s: see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at = moments.within(0, 1000);
        tokio::time::sleep(at).await; // a random moment to kill at, not a synchronisation
        assert!(
            child.try_wait().expect("status").is_none(),
            "ingest exited early: see {}",
            log.display()
        );
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        let p = prefix.clone();
        let envs = tokio::task::spawn_blocking(move || envelopes(&p))
            .await
            .expect("reader");
        // Mid-ingest: this run added records, and some are still missing.
        let incomplete = missing(&envs, &want).is_err();
        mid_ingest += usize::from(incomplete && envs.len() > before);
        eprintln!(
            "kill {kill} {at:?} after the run's first commit: {} records on the raw topic (+{})",
            envs.len(),
            envs.len() - before
        );
        before = envs.len();
        assert_exactly_once(&envs);
    }
    assert!(
        mid_ingest >= 3,
        "only {mid_ingest} of 5 kills came after records were added and while some were missing"
    );
    let mut child = spawn();
    let envs = wait_raw(&prefix, "every record after 5 kills", |e| missing(e, &want)).await;
    sim.pushes_done().await.expect("webhooks acknowledged");
    let envs = {
        // Everything pushed is in; read once more after the last acknowledgement.
        let _ = envs;
        wait_raw(&prefix, "webhooks", |e| missing(e, &want)).await
    };
    child.kill().expect("kill");
    child.wait().expect("reaped");
    sim.shutdown().await;
    assert_exactly_once(&envs);
    assert_eq!(
        census(&envs).len(),
        want.len(),
        "no record beyond the simulator's (log: {})",
        log.display()
    );
    let offsets = read_all(&format!("{prefix}.connect-offsets"));
    assert!(
        offsets
            .iter()
            .any(|(k, _)| k.as_deref() == Some(b"board".as_slice()))
            && offsets
                .iter()
                .any(|(k, _)| k.as_deref() == Some(b"peoples-daily-v1".as_slice())),
        "positions are stored in Kafka, the profile's too"
    );
}

fn signed(secret: &str, ts: i64, body: &str) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("X-Wst-Timestamp", ts.to_string().parse().expect("ts"));
    h.insert(
        "X-Wst-Signature",
        wanshitong::sign(secret.as_bytes(), &ts.to_string(), body.as_bytes())
            .parse()
            .expect("sig"),
    );
    h.insert("X-Wst-Delivery", "dlv-test".parse().expect("delivery"));
    h.insert("Content-Type", "application/json".parse().expect("ct"));
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_with_bad_signature_or_replayed_get_401_and_are_not_ingested() {
    let prefix = unique("wst");
    let cfg = test_config(&prefix);
    let out = kafka_output(&cfg).await;
    let mut wcfg = ConnectorFiles::load(&cfg.connectors.dir)
        .expect("configs")
        .wanshitong;
    wcfg.bind = "127.0.0.1:0".parse().expect("addr");
    wcfg.secret_env = "DUBAN_TEST_WST_SECRET_UNSET".into();
    // Any variable that is set serves as the metrics token's source.
    wcfg.metrics_token_env = Some("HOME".into());
    let metrics_token = std::env::var("HOME").expect("HOME is set");
    wcfg.remember_ids = 2;
    let secret = wanshitong::DEV_SECRET;
    let rx = wanshitong::start(&wcfg, out.clone())
        .await
        .expect("receiver");
    let url = format!("http://{}{}", rx.addr, wcfg.path);
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let body = |id: &str, content: Option<&str>| {
        let mut v = serde_json::json!({"event": "submission.created", "submission_id": id, "submitted_at": "2026-11-20T10:00:00+08:00",
            "user": {"uid": "u1", "name": "张三", "mobile": "13800001111"}, "title": "噪音", "region": "镜湖区", "location": "镜湖区某路", "category": "城市管理", "new_field": 1});
        if let Some(c) = content {
            v["content"] = c.into();
        }
        v.to_string()
    };
    let post = |headers: reqwest::header::HeaderMap, b: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client
                .post(&url)
                .headers(headers)
                .body(b)
                .send()
                .await
                .expect("post");
            r.status().as_u16()
        }
    };
    let bad_sig = body("W-BADSIG", Some("夜间施工噪音"));
    assert_eq!(
        post(signed("wrong-secret", now, &bad_sig), bad_sig.clone()).await,
        401
    );
    let replayed = body("W-REPLAY", Some("夜间施工噪音"));
    assert_eq!(
        post(signed(secret, now - 3600, &replayed), replayed.clone()).await,
        401
    );
    let mut unsigned = signed(secret, now, &replayed);
    unsigned.remove("X-Wst-Signature");
    assert_eq!(post(unsigned, replayed.clone()).await, 401);
    // Signed over another body: the signature covers the body.
    assert_eq!(
        post(signed(secret, now, &bad_sig), replayed.clone()).await,
        401
    );
    let good = body("W-GOOD", Some("夜间施工噪音扰民"));
    assert_eq!(post(signed(secret, now, &good), good.clone()).await, 200);
    assert_eq!(
        post(signed(secret, now, &good), good.clone()).await,
        200,
        "re-delivery acknowledged"
    );
    let broken = body("W-BROKEN", None);
    assert_eq!(
        post(signed(secret, now, &broken), broken.clone()).await,
        202,
        "dead-lettered"
    );
    // A body without a submission id is dead-lettered once: the same signed request replayed
    // within the window is acknowledged without a second dead letter.
    let idless = r#"{"event":"submission.created","content":"无编号"}"#.to_string();
    assert_eq!(
        post(signed(secret, now, &idless), idless.clone()).await,
        202
    );
    assert_eq!(
        post(signed(secret, now, &idless), idless.clone()).await,
        202
    );
    let metrics_url = format!("http://{}/metrics", rx.addr);
    let anonymous = client.get(&metrics_url).send().await.expect("metrics");
    assert_eq!(anonymous.status().as_u16(), 401, "metrics need the token");
    let metrics = client
        .get(&metrics_url)
        .bearer_auth(&metrics_token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("duban_connector_errors_total{connector=\"wanshitong\"}"),
        "{metrics}"
    );
    rx.shutdown().await;

    // A restarted receiver still collapses the re-delivery (ids restored from Kafka).
    let rx = wanshitong::start(&wcfg, out).await.expect("receiver again");
    let url2 = format!("http://{}{}", rx.addr, wcfg.path);
    let r = client
        .post(&url2)
        .headers(signed(secret, now, &good))
        .body(good.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let answer: serde_json::Value = r.json().await.expect("json");
    assert_eq!(answer["duplicate"], true, "{answer}");
    // A third submission id: the oldest of the two remembered is forgotten, its key deleted.
    let third = body("W-THIRD", Some("路面塌陷"));
    let r = client
        .post(&url2)
        .headers(signed(secret, now, &third))
        .body(third.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    rx.shutdown().await;
    let offsets = read_all(&format!("{prefix}.connect-offsets"));
    let last = |key: &str| {
        offsets
            .iter()
            .rev()
            .find(|(k, _)| k.as_deref() == Some(key.as_bytes()))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(last("wanshitong/W-GOOD"), Some(vec![]), "a tombstone");
    assert!(last("wanshitong/W-THIRD").is_some_and(|v| !v.is_empty()));

    let envs = envelopes(&prefix);
    // Sorted: the raw topic's partitions are read one after another, not in sending order.
    let mut ids: Vec<&str> = envs.iter().map(|e| e.source_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["W-GOOD", "W-THIRD"],
        "only the good submissions, once"
    );
    assert_eq!(envs[0].payload["content"], "夜间施工噪音扰民");
    assert_eq!(envs[0].payload["extra"]["new_field"], 1);
    let dead = dead_letters(&prefix);
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead[1].reason.contains("submission_id"),
        "{}",
        dead[1].reason
    );
    assert!(
        dead[0].reason.contains("W-BROKEN") && dead[0].reason.contains("`content`"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].original(), broken.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbk_csv_and_xlsx_exports_are_ingested_with_correct_chinese_text_once() {
    let prefix = unique("exports");
    let cfg = test_config(&prefix);
    let out = kafka_output(&cfg).await;
    let dir = tmpdir("gbk");
    let header =
        "工单编号,来电时间,来电人,联系电话,诉求内容,诉求分类,所属区域,事发地址,承办单位,办理状态";
    let csv = format!(
        "{header}\nRX2026112000001,2026-11-20 09:00:00,张三,13800001111,鸠江区弋江路路灯不亮，夜里行人摔倒,市政设施,鸠江区,鸠江区弋江路,区城管局,已受理\n"
    );
    let (gbk, _, _) = encoding_rs::GBK.encode(&csv);
    std::fs::write(dir.join("hotline-20261120.csv"), &gbk).expect("write");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let row = [
        "RX2026112100002",
        "2026-11-21 10:00:00",
        "李四",
        "13900002222",
        "湾沚区菜市场占道经营，噪音扰民",
        "市容环境",
        "湾沚区",
        "湾沚区菜市场",
        "区市场监管局",
        "办理中",
    ];
    for (c, h) in header.split(',').enumerate() {
        ws.write_string(0, c as u16, h).expect("cell");
        ws.write_string(1, c as u16, row[c]).expect("cell");
    }
    wb.save(dir.join("hotline-20261121.xlsx")).expect("xlsx");
    // A file still being written (temporary name) is not read.
    std::fs::write(dir.join("hotline-20261122.csv.part"), &gbk[..gbk.len() / 2]).expect("write");
    let mut files = ConnectorFiles::load(&cfg.connectors.dir).expect("configs");
    files.hotline.exports.dir = dir.clone();
    files.hotline.exports.settle_secs = 0;
    let only_exports = |files: &ConnectorFiles| {
        let (files, out) = (files.clone(), out.clone());
        async move {
            // The exports connector alone, as `duban ingest` runs it, restoring its position.
            let sink = out.sink("hotline-exports").await.expect("sink");
            let pos = sink.restore().await.expect("restore");
            duban::connectors::hotline::run_exports(&files.hotline.exports, &sink, pos, Mode::Drain)
                .await
        }
    };
    only_exports(&files).await.expect("exports drained");
    only_exports(&files)
        .await
        .expect("drained again from the stored position");
    let envs = envelopes(&prefix);
    let by_id: BTreeMap<&str, &RawEnvelope> =
        envs.iter().map(|e| (e.source_id.as_str(), e)).collect();
    assert_eq!(
        envs.len(),
        2,
        "each row once, nothing re-read after the restart: {envs:?}"
    );
    assert_eq!(
        by_id["RX2026112000001"].payload["content"],
        "鸠江区弋江路路灯不亮，夜里行人摔倒"
    );
    assert_eq!(by_id["RX2026112000001"].payload["caller"], "张三");
    assert_eq!(
        by_id["RX2026112100002"].payload["content"],
        "湾沚区菜市场占道经营，噪音扰民"
    );
    assert_eq!(by_id["RX2026112100002"].payload["district"], "湾沚区");
    assert_eq!(
        by_id["RX2026112000001"].position["file"],
        "hotline-20261120.csv"
    );
}

/// A connector folder holding the repo's files, with `from` replaced by `to` in `file`; the
/// error of loading it, if any.
fn load_changed(dir: &Path, file: &str, from: &str, to: &str) -> Option<String> {
    for f in [
        "hotline.toml",
        "board.toml",
        "portal.toml",
        "wanshitong.toml",
    ] {
        let text = std::fs::read_to_string(repo(&format!("connectors/{f}"))).expect("read");
        assert!(f != file || text.contains(from), "{f} holds {from}");
        let text = if f == file {
            text.replacen(from, to, 1)
        } else {
            text
        };
        std::fs::write(dir.join(f), text).expect("write");
    }
    ConnectorFiles::load(dir).err().map(|e| format!("{e:#}"))
}

/// Each error names the file, and the line with its text where the mistake is in the TOML (the
/// shared `[http]`, `[fields]` and `required` are declared in each connector's struct, not a
/// `#[serde(flatten)]` one: with flatten, toml reports them at line 1 without the field,
/// toml-rs/toml#589).
#[test]
fn an_invalid_connector_file_fails_at_start_naming_file_and_field() {
    let dir = tmpdir("badconf");
    assert_eq!(
        load_changed(&dir, "", "", ""),
        None,
        "the repo's files load"
    );
    for (file, from, to, expect) in [
        (
            "board.toml",
            "page_size = 50",
            "page_size = 500",
            ": `page_size` must be",
        ),
        (
            "board.toml",
            "page_size = 50",
            "page_size = \"x\"",
            ":6: `page_size = \"x\"`",
        ),
        (
            "board.toml",
            "page_size = 50",
            "page_sise = 50",
            ":6: `page_sise = 50`",
        ),
        (
            "board.toml",
            "timeout_secs = 10",
            "timeout_secs = \"x\"",
            ":13: `timeout_secs",
        ),
        (
            "board.toml",
            "timeout_secs = 10",
            "timeout = 10",
            ":13: `timeout = 10`",
        ),
        (
            "board.toml",
            "[fields]\n",
            "[fields]\nx = 3\n",
            ":24: `x = 3`",
        ),
        (
            "board.toml",
            "required = [",
            "required = [\"z\", ",
            ": `required` names `z`",
        ),
        (
            "hotline.toml",
            "timeout_secs = 10",
            "timeout_secs = -1",
            ":12: `timeout_secs",
        ),
        (
            "hotline.toml",
            "page_size = 200",
            "page_size = 200\nbo = 1",
            ":8: `bo = 1`",
        ),
        (
            "hotline.toml",
            "required = [",
            "required = [\"z\", ",
            ": `api.required` names `z`",
        ),
        (
            "portal.toml",
            "row = \"table.letter-list tr\"",
            "row = \"tr[\"",
            ": connectors/portal.toml: selector for `list.row`",
        ),
    ] {
        let err = load_changed(&dir, file, from, to).expect("refused");
        assert!(err.contains(&format!("{file}{expect}")), "{to}: {err}");
    }
}
