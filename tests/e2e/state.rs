//! The engine's keyed state on a real broker: `duban process` workers killed with -9 and
//! restarted, or scaled out to three with one killed, produce exactly the complaints, issues and
//! alerts of one uninterrupted worker (compared id by id, field by field).
//!
//! Each run reads its own raw topic, filled with the same records in the same partitions with the
//! same timestamps, so the engine's input is identical between runs. The timestamps lie a little in
//! the future, spaced over half a minute: the reference run gets its raw topic filled at once, the
//! run under test gets the records fed as the clock reaches them, so the kills come while input is
//! still arriving and output still growing; both runs go on at the same time.

use crate::common::*;
use duban::bus::Topics;
use duban::config::Config;
use duban::record::{Alert, Channel, Complaint, RawEnvelope};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

/// Records of the raw topic: (partition, timestamp ms, key, value).
type Records = Vec<(i32, i64, String, Vec<u8>)>;

/// Raw records of the simulator's corpus (planted clusters and frequent complainants), with
/// timestamps from 3 s from now, `step_ms` apart.
fn corpus(size: usize, step_ms: i64) -> Records {
    let cfg = duban::sim::SimConfig {
        size,
        seed: 31,
        push_url: None,
        // Dated before the fetch time below (later records are refused as future-dated).
        end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 19).expect("date"),
        ..duban::sim::SimConfig::default()
    };
    let corpus = duban::sim::corpus(&cfg).expect("corpus");
    let fetched = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00+08:00").expect("t");
    let base = chrono::Utc::now().timestamp_millis() + 3_000;
    let mut rows: Vec<_> = corpus.complaints.iter().collect();
    rows.sort_by_key(|c| c.at);
    rows.iter()
        .enumerate()
        .map(|(i, c)| {
            let p = &corpus.people[c.person];
            let env = RawEnvelope {
                channel: Channel::Hotline,
                source_id: format!("{}-{}", c.channel, c.source_id),
                fetched_at: fetched,
                position: json!({}),
                payload: json!({
                    "call_time": c.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    "caller": p.name, "phone": p.mobile, "content": c.content,
                    "district": c.district, "address": c.location, "category": c.category,
                }),
                version: None,
            };
            (
                i as i32 % PARTITIONS,
                base + i as i64 * step_ms,
                env.key(),
                serde_json::to_vec(&env).expect("json"),
            )
        })
        .collect()
}

/// A deployment of its own: topics created (6 partitions each), config file written.
#[derive(Clone)]
struct Deployment {
    cfg: Config,
    file: PathBuf,
    dir: PathBuf,
}

async fn deploy(name: &str) -> Deployment {
    let prefix = unique(name);
    let mut cfg = test_config(&prefix);
    cfg.kafka.partitions = PARTITIONS;
    let dir = tmpdir(name);
    duban::pipeline::kafka::connect(&cfg)
        .await
        .expect("Kafka reachable");
    // New topics: wait until every partition has a leader.
    let t = Topics::new(&prefix);
    let c: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("client");
    let start = Instant::now();
    for topic in [&t.raw, &t.complaints, &t.alerts_raised, &t.issues] {
        for p in 0..PARTITIONS {
            while rdkafka::consumer::Consumer::fetch_watermarks(
                &c,
                topic,
                p,
                Duration::from_secs(5),
            )
            .is_err()
            {
                assert!(start.elapsed() < WAIT, "{topic}/{p} has no leader");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let file = dir.join("duban.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\n\n[kafka]\nbootstrap_servers = {:?}\ntopic_prefix = {prefix:?}\npartitions = {PARTITIONS}\n\n[engine]\ngroup_id = {:?}\nbatch_max_records = 40\nbatch_linger_ms = 100\n",
            dir.join("data").display().to_string(),
            bootstrap(),
            cfg.engine.group_id,
        ),
    )
    .expect("write config");
    Deployment { cfg, file, dir }
}

impl Deployment {
    /// Write `records` to the raw topic; `paced`: each one second before its timestamp.
    async fn feed(&self, records: &[(i32, i64, String, Vec<u8>)], paced: bool) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        let raw = self.topics().raw;
        let mut pending = Vec::new();
        for (p, ts, k, v) in records {
            if paced {
                let due = ts - 1_000 - chrono::Utc::now().timestamp_millis();
                if due > 0 {
                    // Load generation: the record is written when the clock reaches it.
                    tokio::time::sleep(Duration::from_millis(due as u64)).await;
                }
            }
            pending.push(
                producer.send(
                    FutureRecord::to(&raw)
                        .partition(*p)
                        .timestamp(*ts)
                        .key(k.as_bytes())
                        .payload(v.as_slice()),
                    Duration::from_secs(30),
                ),
            );
            if paced || pending.len() >= 500 {
                for r in futures::future::join_all(pending.drain(..)).await {
                    r.expect("raw record stored");
                }
            }
        }
        for r in futures::future::join_all(pending).await {
            r.expect("raw record stored");
        }
    }

    fn topics(&self) -> Topics {
        Topics::new(&self.cfg.kafka.topic_prefix)
    }

    /// Start a `duban process` worker with a stable instance id.
    fn worker(&self, instance: &str) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{instance}.log")))
            .expect("log");
        Command::new(env!("CARGO_BIN_EXE_duban"))
            .args(["process", "--config"])
            .arg(&self.file)
            .env("DUBAN_KAFKA_BOOTSTRAP", bootstrap())
            .env("DUBAN_ENGINE_INSTANCE", instance)
            .env(duban::engine::PSEUDONYM_KEY_ENV, TEST_PSEUDONYM_KEY)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn duban process")
    }

    fn log(&self) -> String {
        self.dir.display().to_string()
    }

    /// What the engine published: complaints, issues and alerts, latest state of each.
    fn outputs(&self) -> Outputs {
        let t = self.topics();
        let mut complaints = BTreeMap::new();
        let mut copies: BTreeMap<String, usize> = BTreeMap::new();
        for (k, v) in read_all(&t.complaints) {
            let c: Complaint = serde_json::from_slice(&v).expect("complaint JSON");
            assert_eq!(k.as_deref(), Some(c.complaint_id.as_bytes()));
            *copies.entry(c.complaint_id.clone()).or_default() += 1;
            complaints.insert(c.complaint_id.clone(), c);
        }
        assert!(
            copies.values().all(|n| *n == 1),
            "a complaint was published twice: {:?}",
            copies.iter().find(|(_, n)| **n > 1)
        );
        let mut issues = BTreeMap::new();
        for (k, v) in read_all(&t.issues) {
            let key = String::from_utf8(k.expect("keyed")).expect("utf8");
            issues.insert(
                key,
                serde_json::from_slice::<Value>(&v).expect("issue JSON"),
            );
        }
        let alerts = latest_alerts(&read_all(&t.alerts_raised));
        Outputs {
            complaints,
            issues,
            alerts,
        }
    }

    fn complaints_so_far(&self) -> usize {
        read_all(&self.topics().complaints).len()
    }
}

#[derive(Debug, PartialEq)]
struct Outputs {
    complaints: BTreeMap<String, Complaint>,
    issues: BTreeMap<String, Value>,
    alerts: BTreeMap<String, Alert>,
}

/// Log text without terminal colour codes.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn stop(mut child: Child) {
    child.kill().expect("kill");
    child.wait().expect("reaped");
}

/// One worker, never interrupted, over the whole raw topic written at once; runs alongside the
/// run under test.
fn reference(records: &Records) -> tokio::task::JoinHandle<Outputs> {
    let records = records.clone();
    tokio::spawn(async move {
        let d = deploy("state-ref").await;
        d.feed(&records, false).await;
        let w = d.worker("ref");
        wait_engine_caught_up(&d.cfg).await;
        stop(w);
        tokio::task::spawn_blocking(move || {
            let out = d.outputs();
            assert!(
                out.alerts.len() >= 2 && out.complaints.len() > records.len() / 2,
                "the corpus raises alerts: {} complaints, {} alerts (logs in {})",
                out.complaints.len(),
                out.alerts.len(),
                d.log()
            );
            out
        })
        .await
        .expect("reference outputs")
    })
}

fn assert_same(got: &Outputs, want: &Outputs, what: &str, logs: &Path) {
    assert_eq!(
        got.complaints.len(),
        want.complaints.len(),
        "{what}: complaints (logs in {})",
        logs.display()
    );
    for (id, c) in &want.complaints {
        assert_eq!(got.complaints.get(id), Some(c), "{what}: complaint {id}");
    }
    assert_eq!(got.issues.len(), want.issues.len(), "{what}: issues");
    for (id, i) in &want.issues {
        assert_eq!(got.issues.get(id), Some(i), "{what}: issue {id}");
    }
    assert_eq!(got.alerts.len(), want.alerts.len(), "{what}: alerts");
    for (id, a) in &want.alerts {
        assert_eq!(got.alerts.get(id), Some(a), "{what}: alert {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_five_times_during_a_run_gives_the_uninterrupted_output() {
    let records = corpus(1600, 20);
    let want = reference(&records);
    let d = deploy("state-kill").await;
    let feeder = {
        let (d2, records) = (d.clone(), records.clone());
        tokio::spawn(async move { d2.feed(&records, true).await })
    };
    // Seeded random moments (splitmix64): up to 1.5 s after the first output, then 2–6 s into
    // each run.
    let mut moments = KillMoments::new(0x5EED_0005);
    let mut published = Vec::new();
    for kill in 0..5 {
        let mut child = d.worker("w0");
        let started = Instant::now();
        if kill == 0 {
            // The first kill comes once output has begun (a worker's start, joining the group and
            // initialising its transactional producer can take the whole window), so the kills
            // meet a partly published output rather than none.
            loop {
                let d2 = d.clone();
                let n = tokio::task::spawn_blocking(move || d2.complaints_so_far())
                    .await
                    .expect("read");
                if n > 0 {
                    break;
                }
                assert!(
                    child.try_wait().expect("status").is_none(),
                    "the worker exited before any output: see {}",
                    d.log()
                );
                assert!(started.elapsed() < WAIT, "no output (logs in {})", d.log());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let at = if kill == 0 {
            moments.within(0, 1500)
        } else {
            moments.within(2000, 4000)
        };
        tokio::time::sleep(at).await; // a random moment to kill at, not a synchronisation
        let at = started.elapsed();
        assert!(
            child.try_wait().expect("status").is_none(),
            "the worker exited early: see {}",
            d.log()
        );
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        let d2 = d.clone();
        let so_far = tokio::task::spawn_blocking(move || d2.complaints_so_far())
            .await
            .expect("read");
        eprintln!("kill {kill} after {at:?}: {so_far} complaints published");
        published.push(so_far);
    }
    feeder.await.expect("feeder");
    let w = d.worker("w0");
    wait_engine_caught_up(&d.cfg).await;
    stop(w);
    let want = want.await.expect("reference run");
    let mid_run = published
        .iter()
        .filter(|n| **n > 0 && **n < want.complaints.len())
        .count();
    assert!(
        mid_run >= 3,
        "only {mid_run} of 5 kills came while the output was partly there: {published:?} of {}",
        want.complaints.len()
    );
    // The worker's lake holds every complaint once: files of batches whose transaction a kill
    // aborted were removed when their partition was restored.
    let lake = d.dir.join("data").join("lake");
    let batches = duban::query::run_sql(
        &lake,
        "select count(*) as n, count(distinct complaint_id) as ids from complaints",
    )
    .await
    .expect("sql over the lake");
    let text = duban::query::render(&batches, duban::query::Format::Csv).expect("csv");
    assert_eq!(
        text.trim(),
        format!("n,ids\n{},{}", want.complaints.len(), want.complaints.len()),
        "lake complaints after 5 kills"
    );
    let got = tokio::task::spawn_blocking(move || (d.outputs(), d.dir.clone()))
        .await
        .expect("outputs");
    assert_same(&got.0, &want, "after 5 kills", &got.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_one_killed_midway_give_the_single_worker_output() {
    let records = corpus(1600, 20);
    let want = reference(&records);
    let d = deploy("state-scale").await;
    let feeder = {
        let (d2, records) = (d.clone(), records.clone());
        tokio::spawn(async move { d2.feed(&records, true).await })
    };
    let a = d.worker("s0");
    let mut b = d.worker("s1");
    let c = d.worker("s2");
    // Kill one once a quarter of the input has come out.
    let start = Instant::now();
    let at_kill = loop {
        let d2 = d.clone();
        let n = tokio::task::spawn_blocking(move || d2.complaints_so_far())
            .await
            .expect("read");
        if n >= records.len() / 4 {
            break n;
        }
        assert!(start.elapsed() < WAIT, "no progress (logs in {})", d.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(b.try_wait().expect("status").is_none(), "s1 still running");
    b.kill().expect("kill -9");
    b.wait().expect("reaped");
    feeder.await.expect("feeder");
    wait_engine_caught_up(&d.cfg).await;
    // The survivors stop the way a service manager stops them, writing their snapshots.
    terminate(a);
    terminate(c);
    let want = want.await.expect("reference run");
    assert!(
        at_kill < want.complaints.len(),
        "the output was complete before the kill"
    );
    let logs =
        |i: &str| std::fs::read_to_string(d.dir.join(format!("{i}.log"))).unwrap_or_default();
    for i in ["s0", "s1", "s2"] {
        assert!(
            logs(i).contains("batch committed"),
            "worker {i} took part (logs in {})",
            d.log()
        );
    }
    // The survivors took over partitions by restoring state from the changelog.
    let restored = ["s0", "s2"].iter().any(|i| {
        plain(&logs(i))
            .lines()
            .any(|l| l.contains("state restored") && !l.contains("replayed=0"))
    });
    assert!(restored, "a survivor restored state (logs in {})", d.log());
    // The shared lake's issues table is the union of every partition's snapshot file, each
    // written by its owner: every issue once, the same issues as on the topic.
    let lake = d.dir.join("data").join("lake");
    let rows = duban::query::run_sql(&lake, "select issue_id from issues")
        .await
        .expect("sql over the lake");
    let text = duban::query::render(&rows, duban::query::Format::Csv).expect("csv");
    let lake_ids: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    let got = tokio::task::spawn_blocking(move || (d.outputs(), d.dir.clone()))
        .await
        .expect("outputs");
    let distinct: BTreeSet<&String> = lake_ids.iter().collect();
    assert_eq!(distinct.len(), lake_ids.len(), "an issue twice in the lake");
    let on_topic: BTreeSet<&String> = got.0.issues.keys().collect();
    assert_eq!(distinct, on_topic, "the lake's issues are the topic's");
    assert_same(&got.0, &want, "three workers, one killed", &got.1);
}

/// Stop a worker with SIGTERM and wait until it has exited cleanly.
fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success(), "kill -TERM");
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("status") {
            assert!(s.success(), "the worker stopped with {s}");
            return;
        }
        assert!(start.elapsed() < WAIT, "the worker did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
