//! Broker outages: `duban run` (the Wanshitong receiver, the engine, the lifecycle) on a private
//! Kafka broker of its own — its own port and services folder, started and stopped by this test,
//! never the shared broker — lives through the broker being stopped (data kept) in the middle of
//! its work and started again: it reports not ready meanwhile, logs the outage once per interval,
//! resumes by itself, and its topics and lake then equal those of an undisturbed `duban run` over
//! the same raw records.

use crate::common::*;
use duban::bus::Topics;
use duban::record::{Alert, Complaint};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the broker stays down.
const OUTAGE: Duration = Duration::from_secs(20);

/// A Kafka broker of this test only (scripts/services.sh with its own DUBAN_SERVICES_DIR and
/// ports); stopped when dropped, also when the test fails.
struct PrivateBroker {
    dir: PathBuf,
    port: u16,
}

/// Two consecutive free ports on 127.0.0.1 (the listener and the KRaft controller).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = l.local_addr().expect("addr").port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

impl PrivateBroker {
    fn start() -> PrivateBroker {
        let dir = tmpdir("broker");
        let version = std::env::var("KAFKA_VERSION").unwrap_or_else(|_| "4.4.0".into());
        // The broker's jars: DUBAN_KAFKA_LIBS, or the repository's services folder (CI starts its
        // shared broker from there); else services.sh fetches them with mvn.
        let libs = std::env::var("DUBAN_KAFKA_LIBS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo(&format!(".services/kafka/{version}/libs")));
        if libs.join(".complete").exists() {
            let dist = dir.join("kafka").join(&version);
            std::fs::create_dir_all(&dist).expect("dist dir");
            std::os::unix::fs::symlink(&libs, dist.join("libs")).expect("link the jars");
        }
        let b = PrivateBroker {
            dir,
            port: free_port_pair(),
        };
        b.services("start");
        b
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `scripts/services.sh ACTION kafka` for this broker, its data kept across restarts.
    fn services(&self, action: &str) {
        let out = Command::new(repo("scripts/services.sh"))
            .args([action, "kafka"])
            .env("DUBAN_SERVICES_DIR", &self.dir)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", (self.port + 1).to_string())
            .env("KAFKA_KEEP_DATA", "1")
            .env("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m")
            .env("KAFKA_STOP_TIMEOUT", "20")
            .env("KAFKA_START_TIMEOUT", "240")
            .output()
            .expect("services.sh runs");
        assert!(
            out.status.success(),
            "services.sh {action} kafka: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new(repo("scripts/services.sh"))
            .args(["stop", "kafka"])
            .env("DUBAN_SERVICES_DIR", &self.dir)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", (self.port + 1).to_string())
            .env("KAFKA_STOP_TIMEOUT", "10")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `duban run` process, killed when dropped (a failing test leaves nothing running).
struct Running(Option<Child>);

impl Running {
    fn alive(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("status").is_none())
    }

    /// SIGTERM, then wait for a clean exit.
    fn terminate(mut self) {
        let mut child = self.0.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().expect("status") {
                assert!(s.success(), "duban run stopped with {s}");
                return;
            }
            assert!(start.elapsed() < WAIT, "duban run did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One deployment on the private broker: topics, config, connector files, data folder.
struct Deployment {
    cfg: duban::config::Config,
    bootstrap: String,
    dir: PathBuf,
    file: PathBuf,
    webhook_port: Option<u16>,
}

const SECRET: &str = "outage-test-secret";

impl Deployment {
    /// A deployment of `name` on `bootstrap`; with `webhooks` its Wanshitong receiver is the one
    /// connector, else none runs (the raw topic is filled by the test).
    async fn new(bootstrap: &str, name: &str, webhooks: bool, clock: &Path) -> Deployment {
        let prefix = unique(name);
        let dir = tmpdir(name);
        let mut cfg = test_config(&prefix);
        cfg.kafka.bootstrap_servers = bootstrap.to_string();
        cfg.lifecycle.group_id = format!("{prefix}-lifecycle");
        duban::pipeline::kafka::connect(&cfg)
            .await
            .expect("private broker reachable");
        let conn = dir.join("connectors");
        std::fs::create_dir_all(&conn).expect("dir");
        let webhook_port = webhooks.then(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        });
        for f in [
            "hotline.toml",
            "board.toml",
            "portal.toml",
            "wanshitong.toml",
        ] {
            let mut text = std::fs::read_to_string(repo(&format!("connectors/{f}"))).expect("toml");
            if let Some(p) = webhook_port {
                text = text.replace("127.0.0.1:8089", &format!("127.0.0.1:{p}"));
            }
            std::fs::write(conn.join(f), text).expect("write");
        }
        let enabled = if webhooks { "\"wanshitong\"" } else { "" };
        let file = dir.join("duban.toml");
        std::fs::write(
            &file,
            format!(
                "data_dir = {data:?}\n\n[kafka]\nbootstrap_servers = {bootstrap:?}\ntopic_prefix = {prefix:?}\n\n\
                 [engine]\ngroup_id = {group:?}\nbatch_max_records = 40\nbatch_linger_ms = 100\n\n\
                 [lifecycle]\ngroup_id = {lgroup:?}\nhttp_bind = \"\"\nclock_file = {clock:?}\n\n\
                 [connectors]\ndir = {conn:?}\nenabled = [{enabled}]\n\n[reports]\nenabled = false\n\n\
                 [ops]\nhttp_bind = \"127.0.0.1:0\"\n",
                data = dir.join("data").display().to_string(),
                group = cfg.engine.group_id,
                lgroup = cfg.lifecycle.group_id,
                clock = clock.display().to_string(),
                conn = conn.display().to_string(),
            ),
        )
        .expect("write config");
        Deployment {
            cfg,
            bootstrap: bootstrap.to_string(),
            dir,
            file,
            webhook_port,
        }
    }

    fn topics(&self) -> Topics {
        Topics::new(&self.cfg.kafka.topic_prefix)
    }

    fn log(&self) -> PathBuf {
        self.dir.join("run.log")
    }

    fn run(&self) -> Running {
        let log = std::fs::File::create(self.log()).expect("log");
        let child = duban()
            .args(["run", "--config"])
            .arg(&self.file)
            .env("DUBAN_KAFKA_BOOTSTRAP", &self.bootstrap)
            .env("DUBAN_WST_SECRET", SECRET)
            .env_remove("DUBAN_CLOCK_FILE")
            .env_remove("DUBAN_OPS_BIND")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn duban run");
        Running(Some(child))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// The ops endpoints' address, from the run's log line.
    async fn ops_addr(&self, run: &mut Running) -> String {
        let start = Instant::now();
        loop {
            let text = self.log_text();
            if let Some(i) = text.find("metrics on http://") {
                let rest = &text[i + "metrics on http://".len()..];
                return rest.split('/').next().expect("address").to_string();
            }
            assert!(run.alive(), "duban run exited: {}", self.log().display());
            assert!(
                start.elapsed() < WAIT,
                "no ops address in {}",
                self.log().display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything the run published, latest state by key, and each complaint exactly once.
    fn outputs(&self) -> Outputs {
        let t = self.topics();
        let mut complaints = BTreeMap::new();
        for (k, v) in read_all_at(&self.bootstrap, &t.complaints) {
            let c: Complaint = serde_json::from_slice(&v).expect("complaint JSON");
            assert_eq!(k.as_deref(), Some(c.complaint_id.as_bytes()));
            assert!(
                complaints.insert(c.complaint_id.clone(), c).is_none(),
                "a complaint published twice ({})",
                self.log().display()
            );
        }
        let latest = |topic: &str| -> BTreeMap<String, Value> {
            read_all_at(&self.bootstrap, topic)
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8(k.expect("keyed")).expect("utf8"),
                        serde_json::from_slice(&v).expect("JSON"),
                    )
                })
                .collect()
        };
        let raised = latest_alerts(&read_all_at(&self.bootstrap, &t.alerts_raised));
        // The board's alerts as the lifecycle left them. Which intermediate engine versions it
        // took up depends on batching, and with it its revision count and the raise's reason (it
        // quotes the evidence of the first version taken up); the rest does not.
        let board = latest(&t.alerts)
            .into_values()
            .map(|v| {
                let mut a: Alert = serde_json::from_value(v).expect("board alert");
                a.lifecycle.revision = 0;
                for t in &mut a.lifecycle.history {
                    t.reason.clear();
                }
                (a.alert_id.clone(), a)
            })
            .collect();
        Outputs {
            complaints,
            issues: latest(&t.issues),
            raised,
            board,
        }
    }

    /// The lake's tables as sorted CSV.
    async fn lake(&self) -> BTreeMap<&'static str, String> {
        let lake = self.dir.join("data").join("lake");
        let mut out = BTreeMap::new();
        for (table, key) in [
            ("complaints", "complaint_id"),
            ("issues", "issue_id"),
            ("complainants", "complainant"),
        ] {
            let rows =
                duban::query::run_sql(&lake, &format!("select * from {table} order by {key}"))
                    .await
                    .unwrap_or_else(|e| panic!("{table} of {}: {e:#}", lake.display()));
            out.insert(
                table,
                duban::query::render(&rows, duban::query::Format::Csv).expect("csv"),
            );
        }
        out
    }
}

#[derive(Debug, PartialEq)]
struct Outputs {
    complaints: BTreeMap<String, Complaint>,
    issues: BTreeMap<String, Value>,
    raised: BTreeMap<String, Alert>,
    board: BTreeMap<String, Alert>,
}

/// Raw records of a topic with their partitions and timestamps (committed ones, in order).
type RawRecords = Vec<(i32, i64, Option<Vec<u8>>, Vec<u8>)>;

fn read_raw(bootstrap: &str, topic: &str) -> RawRecords {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("raw-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut highs = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        let (_, hi) = c
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .expect("watermarks");
        highs.insert(p.id(), hi);
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let start = Instant::now();
    loop {
        let pos = c.position().expect("position");
        let done = highs.iter().all(|(p, hi)| {
            *hi == 0
                || matches!(pos.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *hi)
        });
        if done {
            return out;
        }
        assert!(start.elapsed() < WAIT, "reading {topic}");
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let ts = m.timestamp().to_millis().expect("timestamp");
            out.push((
                m.partition(),
                ts,
                m.key().map(<[u8]>::to_vec),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
}

/// Write `records` to `topic` in their partitions with their timestamps.
async fn write_raw(bootstrap: &str, topic: &str, records: &RawRecords) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let sends = records.iter().map(|(p, ts, k, v)| {
        let mut r = FutureRecord::to(topic)
            .partition(*p)
            .timestamp(*ts)
            .payload(v.as_slice());
        if let Some(k) = k {
            r = r.key(k.as_slice());
        }
        producer.send(r, Duration::from_secs(30))
    });
    for r in futures::future::join_all(sends).await {
        r.expect("raw record stored");
    }
}

/// Signed webhook bodies of a simulated corpus (planted clusters and frequent complainants),
/// each with a submission id unique across channels.
fn submissions() -> Vec<(String, Vec<u8>)> {
    let cfg = duban::sim::SimConfig {
        size: 240,
        seed: 22,
        push_url: None,
        // Dated before the drill clock (2026-11-20): later records are refused as future-dated.
        end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 19).expect("date"),
        ..duban::sim::SimConfig::default()
    };
    let corpus = duban::sim::corpus(&cfg).expect("corpus");
    let mut rows: Vec<_> = corpus.complaints.iter().collect();
    rows.sort_by_key(|c| c.at);
    rows.iter()
        .map(|c| {
            let mut s = duban::sim::wire::wst_submission(c, &corpus.people[c.person]);
            s.submission_id = format!("{}-{}", c.channel, c.source_id);
            let body = serde_json::to_vec(&s).expect("json");
            (s.submission_id, body)
        })
        .collect()
}

/// Deliver webhooks as the app does: signed, retried until acknowledged (503 means not stored).
async fn deliver(port: u16, subs: &[(String, Vec<u8>)]) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/wanshitong");
    let one = |id: String, body: Vec<u8>| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let start = Instant::now();
            loop {
                let ts = chrono::Utc::now().timestamp().to_string();
                let sig = duban::connectors::wanshitong::sign(SECRET.as_bytes(), &ts, &body);
                let r = client
                    .post(&url)
                    .header("x-wst-timestamp", &ts)
                    .header("x-wst-signature", sig)
                    .header("x-wst-delivery", format!("d-{id}"))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                if r.as_ref().is_ok_and(|r| r.status().as_u16() == 200) {
                    return;
                }
                assert!(
                    start.elapsed() < WAIT,
                    "webhook {id} never acknowledged: {r:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let mut pending =
        futures::stream::iter(subs.iter().cloned().map(|(id, b)| one(id, b))).buffer_unordered(8);
    while pending.next().await.is_some() {}
}

/// GET an ops endpoint; its status code (0 when nothing answers).
async fn status_of(addr: &str, path: &str) -> u16 {
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Poll `/readyz` until it answers `want` (bounded).
async fn wait_ready(addr: &str, want: u16, run: &mut Running, log: &Path) {
    let start = Instant::now();
    while status_of(addr, "/readyz").await != want {
        assert!(run.alive(), "duban run exited (log {})", log.display());
        assert!(
            start.elapsed() < WAIT,
            "/readyz never answered {want} (log {})",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until the engine and the lifecycle have taken up everything on `d`'s topics.
async fn wait_caught_up(d: &Deployment) {
    wait_engine_caught_up(&d.cfg).await;
    wait_consumed_at(
        &d.bootstrap,
        &d.cfg.lifecycle.group_id,
        &d.topics().alerts_raised,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_mid_run_loses_and_duplicates_nothing() {
    let broker = tokio::task::block_in_place(PrivateBroker::start);
    let clock = tmpdir("outage-clock").join("now");
    std::fs::write(&clock, "2026-11-20T12:00:00+08:00").expect("clock");
    let d = Deployment::new(&broker.bootstrap(), "outage", true, &clock).await;
    let mut run = d.run();
    let ops = d.ops_addr(&mut run).await;
    wait_ready(&ops, 200, &mut run, &d.log()).await;
    assert_eq!(status_of(&ops, "/healthz").await, 200);
    let port = d.webhook_port.expect("receiver");
    let subs = submissions();
    let (first, second) = subs.split_at(subs.len() / 2);

    // Half the webhooks, then the broker goes down while the engine is still at work on them.
    deliver(port, first).await;
    let t = d.topics();
    let (b, topic) = (d.bootstrap.clone(), t.complaints.clone());
    let before = tokio::task::block_in_place(|| read_all_at(&b, &topic).len());
    let stopped_at = Instant::now();
    tokio::task::block_in_place(|| broker.services("stop"));
    assert!(
        before < first.len(),
        "the engine had finished before the outage ({before} complaints)"
    );
    // Not ready while the broker is away, and still running.
    wait_ready(&ops, 503, &mut run, &d.log()).await;
    let readyz: Value = reqwest::get(format!("http://{ops}/readyz"))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(readyz["ready"], false, "{readyz}");
    // The outage lasts OUTAGE (the scenario's length, not a synchronisation).
    tokio::time::sleep(OUTAGE.saturating_sub(stopped_at.elapsed())).await;
    assert!(
        run.alive(),
        "duban run survived the outage (log {})",
        d.log().display()
    );
    assert_eq!(
        status_of(&ops, "/healthz").await,
        200,
        "live during the outage"
    );
    tokio::task::block_in_place(|| broker.services("start"));
    let down = stopped_at.elapsed();
    // It resumes by itself, and takes the rest.
    wait_ready(&ops, 200, &mut run, &d.log()).await;
    deliver(port, second).await;
    wait_caught_up(&d).await;
    let metrics = reqwest::get(format!("http://{ops}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    run.terminate();

    // The outage was told, at most once per interval per component (not once per error).
    let log = d.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ServiceOutage"))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("ServiceOutageStarted")),
        "outage not logged ({})",
        d.log().display()
    );
    let mut per_component: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lines {
        let c = l
            .split("component")
            .nth(1)
            .and_then(|r| r.split('"').nth(1))
            .unwrap_or("?");
        *per_component.entry(c.to_string()).or_default() += 1;
    }
    let bound = (down.as_secs() / duban::ops::Outage::LOG_EVERY.as_secs()) as usize + 3;
    for (c, n) in &per_component {
        assert!(
            *n <= bound,
            "{c}: {n} outage lines in {down:?} ({})",
            d.log().display()
        );
    }
    assert!(
        metrics.contains("duban_service_outages_total{component=\"engine\",service=\"kafka\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("duban_connector_sent_records_total{connector=\"wanshitong\"}"));

    // Every submission once on the raw topic.
    let raw = tokio::task::block_in_place(|| read_raw(&d.bootstrap, &t.raw));
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, k, _) in &raw {
        *keys
            .entry(String::from_utf8_lossy(k.as_deref().unwrap_or_default()).into_owned())
            .or_default() += 1;
    }
    assert_eq!(keys.len(), subs.len(), "raw records");
    assert!(keys.values().all(|n| *n == 1), "a submission twice on raw");

    // The undisturbed run over the same raw records.
    let r = Deployment::new(&broker.bootstrap(), "outage-ref", false, &clock).await;
    write_raw(&r.bootstrap, &r.topics().raw, &raw).await;
    let ref_run = r.run();
    wait_caught_up(&r).await;
    ref_run.terminate();
    let (got, want) = tokio::task::block_in_place(|| (d.outputs(), r.outputs()));
    assert!(
        want.raised.len() >= 2 && want.complaints.len() > subs.len() / 2,
        "the corpus raises alerts: {} complaints, {} alerts",
        want.complaints.len(),
        want.raised.len()
    );
    assert_eq!(got.complaints.len(), want.complaints.len(), "complaints");
    for (id, c) in &want.complaints {
        assert_eq!(got.complaints.get(id), Some(c), "complaint {id}");
    }
    assert_eq!(got.issues, want.issues, "issues");
    assert_eq!(got.raised, want.raised, "raised alerts");
    assert_eq!(got.board, want.board, "the board");
    let (got_lake, want_lake) = (d.lake().await, r.lake().await);
    for (table, rows) in &want_lake {
        assert_eq!(got_lake.get(table), Some(rows), "lake table {table}");
    }
    drop(broker);
}
