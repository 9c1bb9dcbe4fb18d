//! Engine throughput: complaints per second through `Engine::process` (decode, DataFusion
//! normalization with UDFs, classification, near duplicates, clustering, frequency, alert rules)
//! on one core's worth of work, reported beside a baseline measured in the same run: decoding
//! the same raw records alone (JSON parse + field mapping), the floor any engine pays.
//! Run: `cargo bench --bench engine` (`DUBAN_BENCH_SIZE`, default 20000 complaints).

use duban::config::Config;
use duban::engine::{Engine, RawInput, decode::decode_all};
use duban::record::{Channel, RawEnvelope, local_offset};
use duban::sim::SimConfig;
use std::time::Instant;

fn inputs(size: usize) -> Vec<RawInput> {
    let cfg = SimConfig {
        size,
        seed: 7,
        push_url: None,
        ..SimConfig::default()
    };
    let corpus = duban::sim::corpus(&cfg).expect("corpus");
    let now = chrono::Utc::now().with_timezone(&local_offset());
    corpus
        .complaints
        .iter()
        .map(|c| {
            let p = &corpus.people[c.person];
            let env = RawEnvelope {
                channel: Channel::Hotline,
                source_id: format!("{}-{}", c.channel, c.source_id),
                fetched_at: now,
                position: serde_json::json!({}),
                payload: serde_json::json!({
                    "call_time": c.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    "caller": p.name, "phone": p.mobile, "content": c.content,
                    "district": c.district, "address": c.location, "category": c.category,
                }),
                version: None,
            };
            RawInput {
                key: Some(env.key().into_bytes()),
                value: serde_json::to_vec(&env).expect("json"),
                origin: String::new(),
            }
        })
        .collect()
}

fn main() {
    let size: usize = std::env::var("DUBAN_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let raw = inputs(size);
    let n = raw.len();
    let chars: usize = raw.iter().map(|r| r.value.len()).sum::<usize>() / n.max(1);
    let batch = 2000;

    let t = Instant::now();
    let mut decoded = 0;
    for chunk in raw.chunks(batch) {
        decoded += decode_all(chunk).0.len();
    }
    let base = t.elapsed().as_secs_f64();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cfg = Config::default();
    cfg.engine.batch_max_records = batch;
    let mut engine = Engine::new(&cfg).expect("engine");
    let t = Instant::now();
    let mut out = 0;
    let mut alerts = 0;
    for chunk in raw.chunks(batch) {
        let o = rt.block_on(engine.process(chunk)).expect("process");
        out += o.complaints.len();
        alerts += o.alerts.len();
    }
    let full = t.elapsed().as_secs_f64();
    println!("engine: {n} raw records (~{chars} bytes each), batches of {batch}");
    println!("{:<28} {:>10} {:>12}", "stage", "seconds", "records/s");
    println!(
        "{:<28} {:>10.3} {:>12.0}",
        "baseline: decode only",
        base,
        decoded as f64 / base
    );
    println!(
        "{:<28} {:>10.3} {:>12.0}",
        "engine: full process",
        full,
        out as f64 / full
    );
    println!(
        "ratio engine/baseline: {:.3} ({out} complaints, {alerts} alert updates)",
        (out as f64 / full) / (decoded as f64 / base)
    );
}
