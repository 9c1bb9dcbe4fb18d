//! Feed → alert latency on the real broker (`DUBAN_KAFKA_BOOTSTRAP`, default 127.0.0.1:9092).
//!
//! `duban run` (this build's binary: the Wanshitong receiver, the engine and the lifecycle with the
//! shipped defaults) is offered signed webhooks at a steady rate — the simulator's corpus, whose
//! planted issues cross the crowd threshold as they arrive. Per alert raised, the time from the
//! webhook that completed its issue (the last sent of its first evidence) to the alert on
//! `<prefix>.alerts-raised` and on the board `<prefix>.alerts`, as a reader sees them
//! (read_committed); p50 / p99 / max, where the time goes (from the records' own timestamps),
//! and the baseline measured in the same run: one record's trip through the broker (a
//! transaction of one record, read back read_committed).
//!
//! `DUBAN_BENCH_RATES` (complaints/s, default `1000,2000,3000`), `DUBAN_BENCH_SECS` (each rate,
//! default 20), `DUBAN_BENCH_SPARSE` (the sparse case's complaints/s, default 2) and
//! `DUBAN_BENCH_SPARSE_SECS` (default 60); `DUBAN_BENCH_ENGINE`: `[engine]` settings to run with
//! instead of the defaults (e.g. `idle_margin_ms = 3000\nbatch_linger_ms = 200`, those before).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "latency-bench-secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("bench-{name}-{}-{nanos}", std::process::id())
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// p-quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// A `duban run` of its own prefix, killed when dropped.
struct Deployment {
    prefix: String,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Deployment {
    fn start(bootstrap: &str, name: &str) -> Deployment {
        let prefix = unique(name);
        let dir = std::env::temp_dir().join(&prefix);
        let conn = dir.join("connectors");
        std::fs::create_dir_all(&conn).expect("dir");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        for f in [
            "hotline.toml",
            "board.toml",
            "portal.toml",
            "wanshitong.toml",
        ] {
            let text = std::fs::read_to_string(repo(&format!("connectors/{f}"))).expect("toml");
            let text = text.replace("127.0.0.1:8089", &format!("127.0.0.1:{port}"));
            std::fs::write(conn.join(f), text).expect("write");
        }
        // Everything else at the shipped defaults (the engine's batch and linger included).
        let file = dir.join("duban.toml");
        std::fs::write(
            &file,
            format!(
                "data_dir = {data:?}\n\n[kafka]\nbootstrap_servers = {bootstrap:?}\ntopic_prefix = {prefix:?}\n\n\
                 [engine]\ngroup_id = \"{prefix}-engine\"\n{engine}\n\
                 [lifecycle]\ngroup_id = \"{prefix}-lifecycle\"\nhttp_bind = \"\"\n\n\
                 [connectors]\ndir = {conn:?}\nenabled = [\"wanshitong\"]\n\n[reports]\nenabled = false\n\n\
                 [ops]\nhttp_bind = \"127.0.0.1:0\"\n",
                data = dir.join("data").display().to_string(),
                conn = conn.display().to_string(),
                // DUBAN_BENCH_ENGINE: `[engine]` lines to compare with the defaults, e.g.
                // "idle_margin_ms = 3000\nbatch_linger_ms = 200" (the defaults before tuning).
                engine = std::env::var("DUBAN_BENCH_ENGINE")
                    .unwrap_or_default()
                    .replace("\\n", "\n"),
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.join("run.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_duban"))
            .args(["run", "--config"])
            .arg(&file)
            .env("DUBAN_KAFKA_BOOTSTRAP", bootstrap)
            .env("DUBAN_WST_SECRET", SECRET)
            .env(
                duban::engine::PSEUDONYM_KEY_ENV,
                "latency-bench-pseudonym-key",
            )
            .env("DUBAN_LOG", "warn,duban::ops=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn duban run");
        Deployment {
            prefix,
            dir,
            port,
            child: Some(child),
        }
    }

    fn topic(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// First sight (ms since the epoch) of each alert on a topic, with its first record's
/// evidence and the record's own timestamp.
#[derive(Default)]
struct Seen {
    first: HashMap<String, (i64, i64, Vec<String>, String)>,
}

/// Follow `topics` (from their beginning, read_committed) until `stop`, noting when each alert
/// id is first seen.
fn watch(
    bootstrap: &str,
    topics: Vec<String>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<HashMap<String, Seen>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("watch"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .expect("consumer");
    std::thread::spawn(move || {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        c.subscribe(&refs).expect("subscribe");
        let mut out: HashMap<String, Seen> = HashMap::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let Some(Ok(m)) = c.poll(Duration::from_millis(20)) else {
                continue;
            };
            let at = now_ms();
            let Ok(v) =
                serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
            else {
                continue;
            };
            let id = v["alert_id"].as_str().unwrap_or_default().to_string();
            let ids = v["complaint_ids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let trigger = v["trigger"].as_str().unwrap_or_default().to_string();
            let ts = m.timestamp().to_millis().unwrap_or(0);
            out.entry(m.topic().to_string())
                .or_default()
                .first
                .entry(id)
                .or_insert((at, ts, ids, trigger));
        }
        out
    })
}

/// Timestamps (ms) of each record of `topic` by key: the time its producer created it.
fn timestamps(bootstrap: &str, topic: &str) -> HashMap<String, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("ts"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
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
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = HashMap::new();
    let start = Instant::now();
    loop {
        let pos = c.position().expect("position");
        let done = highs.iter().all(|(p, hi)| {
            *hi == 0
                || matches!(pos.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *hi)
        });
        if done || start.elapsed() > Duration::from_secs(120) {
            return out;
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            out.entry(key)
                .or_insert(m.timestamp().to_millis().unwrap_or(0));
        }
    }
}

/// The baseline: one record's trip through the broker, a transaction of one record read back
/// read_committed (ms; sorted).
async fn baseline(bootstrap: &str, n: usize) -> Vec<f64> {
    let topic = unique("baseline");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", &topic)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("init");
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("baseline"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    // The topic is created by the first send (auto-creation); warm up once.
    let mut out = Vec::new();
    for i in 0..=n {
        let t0 = Instant::now();
        producer.begin_transaction().expect("begin");
        producer
            .send(
                FutureRecord::to(&topic).key("k").payload(&i.to_string()),
                Duration::from_secs(30),
            )
            .await
            .expect("send");
        producer
            .commit_transaction(Duration::from_secs(30))
            .expect("commit");
        if i == 0 {
            c.subscribe(&[topic.as_str()]).expect("subscribe");
        }
        loop {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(10))
                && m.payload() == Some(i.to_string().as_bytes())
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "baseline record lost"
            );
        }
        if i > 0 {
            out.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    sorted(out)
}

/// Signed webhook bodies of a simulated corpus of `n` complaints, in time order; with
/// `clusters_only`, only the complaints of its planted issues (so that sparse traffic still
/// completes an issue every few webhooks).
fn submissions(n: usize, seed: u64, clusters_only: bool) -> Vec<(String, Vec<u8>)> {
    let cfg = duban::sim::SimConfig {
        size: n.max(duban::sim::corpus::MIN_SIZE),
        seed,
        push_url: None,
        ..duban::sim::SimConfig::default()
    };
    let corpus = duban::sim::corpus(&cfg).expect("corpus");
    let planted: std::collections::HashSet<(String, String)> = corpus
        .manifest
        .clusters
        .iter()
        .flat_map(|c| c.records.iter())
        .map(|e| (e.channel.as_str().to_string(), e.source_id.clone()))
        .collect();
    let mut rows: Vec<_> = corpus
        .complaints
        .iter()
        .filter(|c| {
            !clusters_only
                || planted.contains(&(c.channel.as_str().to_string(), c.source_id.clone()))
        })
        .collect();
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

/// One scenario's figures.
struct Figures {
    offered: f64,
    achieved: f64,
    alerts: usize,
    to_raised: Vec<f64>,
    to_board: Vec<f64>,
    stages: BTreeMap<&'static str, Vec<f64>>,
}

async fn wait_ready(d: &Deployment) {
    let log = d.dir.join("run.log");
    let start = Instant::now();
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(i) = text.find("metrics on http://") {
            break text[i + 18..].split('/').next().expect("addr").to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no ops address: {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        let r = reqwest::get(format!("http://{addr}/readyz")).await;
        if r.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "never ready: {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Offer `subs` at `rate` per second to a fresh `duban run`, then measure.
async fn scenario(bootstrap: &str, name: &str, rate: f64, subs: &[(String, Vec<u8>)]) -> Figures {
    // `duban run` logs only warnings here: nothing of the run's own logging is timed.
    let d = Deployment::start(bootstrap, name);
    wait_ready(&d).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (raised_t, board_t) = (d.topic("alerts-raised"), d.topic("alerts"));
    let watcher = watch(
        bootstrap,
        vec![raised_t.clone(), board_t.clone()],
        stop.clone(),
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/webhooks/wanshitong", d.port);
    let sent: Arc<Mutex<HashMap<String, (i64, i64)>>> = Arc::default();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(subs.len());
    for (i, (id, body)) in subs.iter().enumerate() {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(i as f64 / rate)).into()).await;
        let (client, url, sent) = (client.clone(), url.clone(), sent.clone());
        let (id, body) = (id.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let at = now_ms();
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
                if r.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent.lock().expect("sent").insert(id, (at, now_ms()));
        }));
    }
    for t in tasks {
        t.await.expect("webhook");
    }
    let took = t0.elapsed().as_secs_f64();
    // Let the last alerts through (the engine's promises, the lifecycle), then stop watching.
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = watcher.join().expect("watcher");
    let sent = sent.lock().expect("sent").clone();
    // Where the time goes: the records' own timestamps of the completing complaint.
    let raw = tokio::task::block_in_place(|| timestamps(bootstrap, &d.topic("raw")));
    let complaints = tokio::task::block_in_place(|| timestamps(bootstrap, &d.topic("complaints")));
    let by_complaint: HashMap<String, String> = sent
        .keys()
        .map(|id| (duban::record::complaint_id("wanshitong", id), id.clone()))
        .collect();
    let empty = Seen::default();
    let raised = seen.get(&raised_t).unwrap_or(&empty);
    let board = seen.get(&board_t).unwrap_or(&empty);
    let mut f = Figures {
        offered: rate,
        achieved: subs.len() as f64 / took,
        alerts: 0,
        to_raised: Vec::new(),
        to_board: Vec::new(),
        stages: BTreeMap::new(),
    };
    for (alert, (at, alert_ts, ids, trigger)) in &raised.first {
        if trigger != "crowd_concentration" {
            continue;
        }
        // The webhook that completed the issue: the last sent of the alert's first evidence.
        let Some((sub, (sent_at, _))) = ids
            .iter()
            .filter_map(|c| by_complaint.get(c))
            .filter_map(|s| sent.get(s).map(|t| (s, *t)))
            .max_by_key(|(_, t)| t.0)
        else {
            continue;
        };
        f.alerts += 1;
        f.to_raised.push((at - sent_at) as f64);
        if let Some((b, _, _, _)) = board.first.get(alert) {
            f.to_board.push((b - sent_at) as f64);
            f.stages
                .entry("lifecycle (raised seen → board seen)")
                .or_default()
                .push((b - at) as f64);
        }
        let cid = duban::record::complaint_id("wanshitong", sub);
        if let (Some(r), Some(c)) = (raw.get(&format!("wanshitong:{sub}")), complaints.get(&cid)) {
            for (stage, ms) in [
                ("receiver (webhook → raw record)", r - sent_at),
                ("engine (raw record → complaint out)", c - r),
                ("alert out after complaint", alert_ts - c),
                ("commit and read (alert out → seen)", at - alert_ts),
            ] {
                f.stages.entry(stage).or_default().push(ms as f64);
            }
        }
    }
    f.to_raised = sorted(f.to_raised);
    f.to_board = sorted(f.to_board);
    for v in f.stages.values_mut() {
        *v = sorted(std::mem::take(v));
    }
    f
}

fn print(name: &str, f: &Figures, base_p99: f64) {
    println!(
        "\n{name}: offered {:.0}/s, acknowledged {:.0}/s, {} crowd alerts measured",
        f.offered, f.achieved, f.alerts
    );
    for (what, v) in [
        ("→ alerts-raised", &f.to_raised),
        ("→ board (alerts)", &f.to_board),
    ] {
        println!(
            "  webhook {what:<18} p50 {:>7.0} ms  p99 {:>7.0} ms  max {:>7.0} ms  (p99 / baseline p99 {:.1})",
            quantile(v, 0.5),
            quantile(v, 0.99),
            v.last().copied().unwrap_or(f64::NAN),
            quantile(v, 0.99) / base_p99
        );
    }
    println!("  where the time goes (median ms of the completing complaint):");
    for (stage, v) in &f.stages {
        println!("    {stage:<40} {:>7.0}", quantile(v, 0.5));
    }
}

fn main() {
    let bootstrap =
        std::env::var("DUBAN_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let rates: Vec<f64> = std::env::var("DUBAN_BENCH_RATES")
        .unwrap_or_else(|_| "1000,2000,3000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let secs: f64 = env_or("DUBAN_BENCH_SECS", 20.0);
    let sparse: f64 = env_or("DUBAN_BENCH_SPARSE", 2.0);
    let sparse_secs: f64 = env_or("DUBAN_BENCH_SPARSE_SECS", 60.0);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let base = baseline(&bootstrap, 200).await;
        println!(
            "baseline (one record through the broker, transaction + read_committed read): p50 {:.1} ms  p99 {:.1} ms",
            quantile(&base, 0.5),
            quantile(&base, 0.99)
        );
        let base_p99 = quantile(&base, 0.99);
        let mut subs = submissions(2000, 41, true);
        subs.truncate((sparse * sparse_secs) as usize);
        let f = scenario(&bootstrap, "sparse", sparse, &subs).await;
        print(&format!("sparse traffic ({sparse}/s, the app the only feed)"), &f, base_p99);
        for rate in rates {
            let subs = submissions((rate * secs) as usize, 42, false);
            let f = scenario(&bootstrap, "steady", rate, &subs).await;
            print(&format!("steady {rate:.0}/s"), &f, base_p99);
        }
    });
}
