//! Connector throughput: records per second from the simulator into Kafka, per connector, with
//! the production write path (one transaction per commit, positions included), beside a baseline
//! measured in the same run: the same number of ~1 KB records sent straight to the bus (acks=all,
//! no HTTP, no transactions), the ceiling a connector could reach.
//! `cargo bench --bench connectors` (broker: DUBAN_KAFKA_BOOTSTRAP, default 127.0.0.1:9092;
//! `DUBAN_BENCH_SIZE` sets the corpus, default 2000). Without a reachable broker it measures the
//! in-process bus instead and says so.

use duban::bus::{Bus, MemoryBus, Topics};
use duban::config::KafkaConfig;
use duban::connectors::profile::Profile;
use duban::connectors::{ConnectorFiles, Mode, Output, Sink, board, hotline, portal, wanshitong};
use duban::record::Channel;
use duban::sim::SimConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

fn prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench-{name}-{nanos}")
}

/// A fresh output (own topic prefix) on Kafka, or the in-process bus when no broker answers.
async fn output(name: &str) -> (Output, &'static str) {
    let cfg = duban::config::Config {
        kafka: KafkaConfig {
            bootstrap_servers: std::env::var("DUBAN_KAFKA_BOOTSTRAP")
                .unwrap_or_else(|_| "127.0.0.1:9092".into()),
            topic_prefix: prefix(name),
            ..KafkaConfig::default()
        },
        ..duban::config::Config::default()
    };
    let connect = duban::pipeline::kafka::connect(&cfg);
    match tokio::time::timeout(std::time::Duration::from_secs(15), connect).await {
        Ok(Ok(bus)) => (
            Output {
                topics: bus.topics(),
                bus: Bus::Kafka(bus),
            },
            "kafka",
        ),
        _ => (
            Output {
                bus: Bus::Memory(MemoryBus::new()),
                topics: Topics::new(&cfg.kafka.topic_prefix),
            },
            "in-process bus (no broker)",
        ),
    }
}

fn unlimited(files: &mut ConnectorFiles) {
    files.hotline.api.http.max_requests_per_sec = 0.0;
    files.hotline.api.page_size = 500;
    files.hotline.exports.settle_secs = 0;
    files.board.http.max_requests_per_sec = 0.0;
    files.board.page_size = 100;
    files.portal.http.max_requests_per_sec = 0.0;
}

async fn timed<F: Future<Output = anyhow::Result<()>>>(
    name: &str,
    out: &Output,
    run: impl FnOnce(Arc<Sink>) -> F,
) -> (f64, u64) {
    let sink = Arc::new(out.sink(name).await.expect("sink"));
    let start = Instant::now();
    run(sink.clone()).await.expect("connector drained");
    let secs = start.elapsed().as_secs_f64();
    let sent = sink
        .metrics
        .sent
        .records
        .load(std::sync::atomic::Ordering::Relaxed);
    (secs, sent)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(bench());
}

async fn bench() {
    let size: usize = std::env::var("DUBAN_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exports: PathBuf = std::env::temp_dir().join(prefix("exports"));
    let mut files = ConnectorFiles::load(&root.join("connectors")).expect("connector files");
    unlimited(&mut files);
    let mut rows = Vec::new();

    // Pulled feeds: one simulator, each connector drained on its own prefix.
    let layouts = exports.join("layouts");
    let sim = duban::sim::start(SimConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        size,
        export_dir: exports.clone(),
        push_url: None,
        profile_exports: Some(layouts.clone()),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    files.point_at_sim(&sim.base_url(), &exports);
    let mut target = "";
    for name in ["hotline-api", "hotline-exports", "board", "portal"] {
        let (out, t) = output(name).await;
        target = t;
        let f = files.clone();
        let (secs, sent) = timed(name, &out, |sink| async move {
            let pos = sink.restore().await?;
            match name {
                "hotline-api" => hotline::run_api(&f.hotline.api, &sink, pos, Mode::Drain).await,
                "hotline-exports" => {
                    hotline::run_exports(&f.hotline.exports, &sink, pos, Mode::Drain).await
                }
                "board" => board::run(&f.board, &sink, pos, Mode::Drain).await,
                _ => portal::run(&f.portal, &sink, pos, Mode::Drain).await,
            }
        })
        .await;
        rows.push((name.to_string(), sent, secs));
    }
    // Connector profiles against the simulator's stand-ins of the real shapes: (profile, the
    // address below the simulator it asks, or the folder of its exports).
    let site = sim.base_url();
    let pd = format!("{site}/pd");
    let profiles: [(&str, Result<&str, &str>); 6] = [
        ("peoples-daily-v1", Ok(&pd)),
        ("peoples-daily-list", Ok(&pd)),
        ("portal-mailbox", Ok(&site)),
        ("12345-city-export", Err("city")),
        ("12345-district-exports", Err("district")),
        ("12345-pushed-export", Err("pushed")),
    ];
    for (name, from) in profiles {
        let mut p =
            Profile::load(&root.join(format!("connectors/profiles/{name}.toml"))).expect("profile");
        p.http.max_requests_per_sec = 0.0;
        match from {
            Ok(base) => p = p.with_base_url(base).expect("base"),
            Err(folder) => {
                if let Some(e) = p.export.as_mut() {
                    e.dir = Some(layouts.join(folder));
                    e.settle_secs = 0;
                }
            }
        }
        let (out, _) = output(name).await;
        let (secs, sent) = timed(name, &out, |sink| async move {
            let pos = sink.restore().await?;
            duban::connectors::profile::run(&p, &sink, pos, Mode::Drain).await
        })
        .await;
        rows.push((format!("profile {name}"), sent, secs));
    }
    sim.shutdown().await;

    // Webhooks: the simulator pushes (4 at a time) to the receiver; time until all acknowledged.
    let (out, _) = output("wanshitong").await;
    let mut wcfg = files.wanshitong.clone();
    wcfg.bind = "127.0.0.1:0".parse().expect("addr");
    let rx = wanshitong::start(&wcfg, out.clone())
        .await
        .expect("receiver");
    let start = Instant::now();
    let sim = duban::sim::start(SimConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        size,
        export_dir: exports.clone(),
        push_url: Some(format!("http://{}{}", rx.addr, wcfg.path)),
        webhook_secret: wanshitong::secret(&wcfg.secret_env),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    sim.pushes_done().await.expect("pushes");
    let secs = start.elapsed().as_secs_f64();
    let n = sim
        .counts()
        .iter()
        .find(|(c, _)| *c == Channel::Wanshitong)
        .map_or(0, |(_, n)| *n);
    rows.push(("wanshitong".into(), n as u64, secs));
    rx.shutdown().await;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&exports);

    // Baseline: plain sends of raw-sized records to the same kind of bus.
    let (out, _) = output("baseline").await;
    let n_base = rows.iter().map(|r| r.1).max().unwrap_or(1000).max(1000);
    let value = vec![b'x'; 1024];
    let records: Vec<(String, Vec<u8>)> = (0..n_base)
        .map(|i| (format!("k{i}"), value.clone()))
        .collect();
    let start = Instant::now();
    for chunk in records.chunks(200) {
        out.bus
            .send_all(&out.topics.raw, chunk)
            .await
            .expect("baseline sends");
    }
    let base = n_base as f64 / start.elapsed().as_secs_f64().max(1e-9);

    println!("connectors: simulator → {target}, corpus size {size}, no faults, rate limits off");
    println!("baseline: {n_base} plain sends of 1 KB records: {base:.0} records/s");
    println!(
        "{:<36} {:>8} {:>9} {:>12} {:>16}",
        "connector", "records", "seconds", "records/s", "ratio/baseline"
    );
    for (name, n, secs) in rows {
        let rate = n as f64 / secs.max(1e-9);
        println!(
            "{name:<36} {n:>8} {secs:>9.2} {rate:>12.0} {:>16.3}",
            rate / base
        );
    }
}
