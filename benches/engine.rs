//! Engine throughput: complaints per second through `Engine::process_batches` (decode, DataFusion
//! normalization with UDFs, classification, near duplicates, clustering, frequency, alert rules)
//! on one core's worth of work, reported beside a baseline measured in the same run: decoding
//! the same raw records alone (JSON parse + field mapping), the floor any engine pays.
//! Then the time to backfill the seed's one-city volume (`DUBAN_BENCH_BACKFILL`, default 140000
//! generated complaints written as a message-board export CSV, through `duban backfill`: decode,
//! engine, lake), and the engine state's memory over a stream spanning a year (see
//! `state_memory`: sampled, with the 10M figure extrapolated from the steady-state slope, or run
//! in full with `DUBAN_BENCH_STATE=10000000`).
//! Run: `cargo bench --bench engine` (`DUBAN_BENCH_SIZE`, default 20000 complaints;
//! `DUBAN_BENCH_CLASSIFIER=taxonomy-model` for the throughput with that `[engine] classifier`).

use duban::config::Config;
use duban::engine::decode::{TimeBounds, decode_all};
use duban::engine::{Engine, RawInput};
use duban::record::{Channel, RawEnvelope, local_offset};
use duban::sim::SimConfig;
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The `duban` binary's allocator (mimalloc), counting the bytes in use: the state's memory is
/// measured exactly (heap bytes held), not guessed from resident pages, which the allocator keeps
/// or returns as it likes.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to mimalloc unchanged; only a counter is kept beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            IN_USE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes in use by this process now.
fn heap() -> u64 {
    IN_USE.load(Ordering::Relaxed) as u64
}

fn inputs(size: usize, days: u32) -> Vec<RawInput> {
    inputs_part(size, days, None)
}

/// A generated stream's part `k`: its own corpus (seed, people, source ids) over the `days`
/// days that end `days × k` days after today; `None`: the one corpus, ending today.
fn inputs_part(size: usize, days: u32, part: Option<u32>) -> Vec<RawInput> {
    let today = duban::sim::today_shanghai();
    let cfg = SimConfig {
        size,
        seed: 7 + u64::from(part.unwrap_or(0)),
        days,
        end_date: today + chrono::Days::new(u64::from(days * part.unwrap_or(0))),
        push_url: None,
        ..SimConfig::default()
    };
    let prefix = part.map(|k| format!("p{k}-")).unwrap_or_default();
    let corpus = duban::sim::corpus(&cfg).expect("corpus");
    let now = chrono::Utc::now().with_timezone(&local_offset());
    corpus
        .complaints
        .iter()
        .map(|c| {
            let p = &corpus.people[c.person];
            let env = RawEnvelope {
                channel: Channel::Hotline,
                source_id: format!("{prefix}{}-{}", c.channel, c.source_id),
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
    let raw = inputs(size, 30);
    let n = raw.len();
    let chars: usize = raw.iter().map(|r| r.value.len()).sum::<usize>() / n.max(1);
    let batch = 2000;

    let t = Instant::now();
    let mut decoded = 0;
    for chunk in raw.chunks(batch) {
        decoded += decode_all(chunk, &TimeBounds::default()).0.len();
    }
    let base = t.elapsed().as_secs_f64();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cfg = Config::default();
    cfg.engine.pseudonym_key = duban::engine::PseudonymKey::Given(b"engine-bench-key".to_vec());
    cfg.engine.batch_max_records = batch;
    // `DUBAN_BENCH_CLASSIFIER=vocabulary`: the engine with that `[engine] classifier` (the
    // default is the taxonomy model).
    if std::env::var("DUBAN_BENCH_CLASSIFIER").as_deref() == Ok("vocabulary") {
        cfg.engine.classifier = duban::config::DefaultClassifier::Vocabulary;
    }
    // Warm-up: dictionaries and models load once per process, not per complaint.
    let mut warm = Engine::new(&cfg).expect("engine");
    rt.block_on(warm.process(&raw[..raw.len().min(50)]))
        .expect("warm-up");
    drop(warm);
    let (rss_before, _) = memory();
    let heap_before = heap();
    let mut engine = Engine::new(&cfg).expect("engine");
    let t = Instant::now();
    let mut out = 0;
    let mut alerts = 0;
    // As `backfill` and `demo` run it: the stateless stage one batch ahead on its own thread.
    engine
        .process_batches(raw.chunks(batch), |_, o| {
            out += o.complaints.len();
            alerts += o.alerts.len();
            Ok(())
        })
        .expect("process");
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
    let (rss_after, _) = memory();
    let held = heap().saturating_sub(heap_before);
    println!(
        "engine state after the throughput run (one 30-day window, nothing evicted yet): \
         {:.0} MiB of heap for {out} complaints ({:.0} bytes each; {:.0} MiB resident)",
        held as f64 / 1048576.0,
        held as f64 / out.max(1) as f64,
        rss_after.saturating_sub(rss_before) as f64 / 1048576.0,
    );
    drop(engine);
    state_memory(&cfg, &rt);
    backfill(&cfg, &rt);
}

/// The engine state's memory over a stream spanning a realistic time range: `DUBAN_BENCH_STATE`
/// complaints (default 200000) over `DUBAN_BENCH_STATE_DAYS` days (default 365), through an
/// engine without the snapshot archive (state bounded by the windows, like a `duban process`
/// worker). A stream of more than 200,000 complaints is generated and applied in consecutive
/// parts of at most that many (each its own corpus over its share of the days), so 10M
/// complaints (`DUBAN_BENCH_STATE=10000000`) run without holding the input in memory. Heap bytes in use (exact, see `Counting`) and resident memory are sampled at each
/// quarter; once the windows are full (second half), heap growth per complaint is the state that outlives the windows (ids seen, dormant
/// complainants' baselines, vocabulary), so 10M complaints ≈ the end's memory + the rest of the
/// 10M at that slope, at this stream's daily rate.
fn state_memory(cfg: &Config, rt: &tokio::runtime::Runtime) {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (size, days) = (
        env("DUBAN_BENCH_STATE", 200_000),
        env("DUBAN_BENCH_STATE_DAYS", 365),
    );
    if size == 0 {
        return;
    }
    const PART: usize = 200_000;
    let parts = size.div_ceil(PART);
    let part_days = (days / parts).max(1) as u32;
    let (rss0, _) = memory();
    let heap0 = heap();
    let mut engine = Engine::with_archive(cfg, false).expect("engine");
    let mut secs = 0.0;
    let mut samples = Vec::new();
    let mut done = 0;
    // Generated complaints come on top of `size` (resubmissions): quarters of the intended size.
    let (quarter, mut read, mut next) = (size.div_ceil(4), 0, size.div_ceil(4));
    for k in 0..parts {
        let before = heap();
        let raw = if parts == 1 {
            inputs(size, days as u32)
        } else {
            inputs_part(PART.min(size - k * PART), part_days, Some(k as u32))
        };
        // The part's input is not state: its bytes are left out of the samples.
        let input_bytes = heap().saturating_sub(before);
        let t = Instant::now();
        let chunks = raw.len().div_ceil(2000);
        for (i, chunk) in raw.chunks(2000).enumerate() {
            let o = rt.block_on(engine.process(chunk)).expect("process");
            done += o.complaints.len();
            read += chunk.len();
            let end = k + 1 == parts && i + 1 == chunks;
            if read >= next || end {
                samples.push((
                    done,
                    heap().saturating_sub(heap0).saturating_sub(input_bytes),
                    memory().0.saturating_sub(rss0),
                ));
                next += quarter;
            }
        }
        secs += t.elapsed().as_secs_f64();
    }
    let mib = |b: u64| b as f64 / 1048576.0;
    let line: Vec<String> = samples
        .iter()
        .map(|(c, h, r)| format!("{c}: {:.0} MiB ({:.0} resident)", mib(*h), mib(*r)))
        .collect();
    println!(
        "state over {days} days ({:.0} complaints/day, {done} complaints in {secs:.1} s, \
         {:.0}/s): heap held by the engine after {}",
        done as f64 / days as f64,
        done as f64 / secs,
        line.join(", ")
    );
    let mid = samples[(samples.len() / 2).saturating_sub(1)];
    let end = *samples.last().expect("samples");
    let slope = end.1.saturating_sub(mid.1) as f64 / (end.0 - mid.0).max(1) as f64;
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let at_10m = end.1 as f64 + slope * (1e7 - end.0 as f64).max(0.0);
    let how = if end.0 >= 10_000_000 {
        "measured: the run reached 10M"
    } else {
        "extrapolated from the slope"
    };
    println!(
        "engine state: {:.0} MiB of heap after {} complaints (peak sample {:.0} MiB); {slope:.0} \
         bytes per further complaint (second half); 10M complaints at this rate ≈ {:.2} GiB \
         ({how})",
        mib(end.1),
        end.0,
        mib(peak),
        at_10m / 1073741824.0
    );
}

/// Resident and peak memory of this process (VmRSS, VmHWM), in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// `duban backfill` of a generated message-board export.
fn backfill(cfg: &Config, rt: &tokio::runtime::Runtime) {
    let size: usize = std::env::var("DUBAN_BENCH_BACKFILL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(140_000);
    if size == 0 {
        return;
    }
    let sim = SimConfig {
        size,
        seed: 9,
        push_url: None,
        ..SimConfig::default()
    };
    let corpus = duban::sim::corpus(&sim).expect("corpus");
    let dir = std::env::temp_dir().join(format!("duban-bench-backfill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("export.csv");
    {
        let mut w = csv::Writer::from_path(&input).expect("csv");
        w.write_record([
            "留言编号",
            "留言用户",
            "留言主题",
            "留言时间",
            "留言详情",
            "反对数",
            "点赞数",
        ])
        .expect("header");
        for (i, c) in corpus.complaints.iter().enumerate() {
            w.write_record([
                format!("{}", 100_000 + i),
                format!("U{:07}", c.person),
                String::new(),
                c.at.format("%Y/%-m/%-d %H:%M:%S").to_string(),
                c.content.clone(),
                "0".into(),
                "0".into(),
            ])
            .expect("row");
        }
        w.flush().expect("flush");
    }
    let n = corpus.complaints.len();
    drop(corpus);
    let mapping =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/board-export.toml");
    let (rss0, _) = memory();
    let t = Instant::now();
    let summary = rt
        .block_on(duban::pipeline::backfill::run(
            cfg,
            &input,
            &mapping,
            &dir.join("out"),
        ))
        .expect("backfill");
    let secs = t.elapsed().as_secs_f64();
    let (_, peak) = memory();
    let grown = peak.saturating_sub(rss0);
    let per = grown as f64 / summary.complaints.max(1) as f64;
    println!(
        "backfill: {n} export rows → {} complaints, {} issues, {} flagged, in {secs:.1} s ({:.0} rows/s)",
        summary.complaints,
        summary.issues,
        summary.complainants_flagged,
        n as f64 / secs
    );
    println!(
        "backfill memory: peak {:.0} MiB, {:.0} MiB above the start ({per:.0} bytes per complaint: \
         state plus the backfill's in-memory topics and rows)",
        peak as f64 / 1048576.0,
        grown as f64 / 1048576.0,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
