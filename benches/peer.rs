//! A year of realistic complaints through `duban backfill` and through a Python peer pipeline
//! (pandas + jieba + scikit-learn + datasketch, `benches/peer/peer.py`: normalize, classify,
//! MinHash dedup, cluster, frequency) in the same run; reported as the ratio of their times.
//! The corpus is `duban sim year` (the shared real texts varied, a year, mean ≈ 360 chars), so
//! the backfill is also scored against its planted truth (`duban score year`).
//! Run: `cargo bench --bench peer` (`DUBAN_BENCH_YEAR` rows, default 140000; `DUBAN_BENCH_SEED`,
//! default 19; `DUBAN_PEER_PYTHON`, default ~/.cache/duban-peer-venv/bin/python, made by
//! `DUBAN_VENV=~/.cache/duban-peer-venv scripts/pyenv.sh benches/peer/requirements.txt`).

use duban::config::Config;
use duban::sim::year;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `duban` binary's allocator, so the backfill runs as the binary runs it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn peer_python() -> PathBuf {
    std::env::var_os("DUBAN_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
            home.join(".cache/duban-peer-venv/bin/python")
        })
}

fn main() {
    let rows: usize = env_or("DUBAN_BENCH_YEAR", 140_000);
    let seed: u64 = env_or("DUBAN_BENCH_SEED", 19);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("duban-bench-peer-{}", std::process::id()));
    let end = chrono::NaiveDate::from_ymd_opt(2024, 12, 31).expect("date");

    let t = Instant::now();
    let corpus = year::generate(rows, 365, seed, end, &year::default_teddy_dir())
        .expect("sim year (set DUBAN_SHARED_DIR to the shared folder)");
    corpus
        .write(&dir, &serde_json::json!({"rows": rows, "seed": seed}))
        .expect("write the export");
    println!(
        "corpus: duban sim year, {} rows over 365 days from {} real messages, mean text {:.0} chars \
         (generated in {:.1} s, not timed below)",
        corpus.rows.len(),
        corpus.pool_size,
        corpus.mean_body_chars(),
        t.elapsed().as_secs_f64()
    );
    drop(corpus);
    let export = dir.join(year::EXPORT_FILE);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = Config::default();
    let out = dir.join("out");
    let t = Instant::now();
    let summary = rt
        .block_on(duban::pipeline::backfill::run(
            &cfg,
            &export,
            &repo.join("connectors/board-export.toml"),
            &out,
        ))
        .expect("backfill");
    let duban_secs = t.elapsed().as_secs_f64();
    println!(
        "duban backfill: {} complaints, {} issues, {} flagged in {duban_secs:.1} s ({:.0} complaints/s)",
        summary.complaints,
        summary.issues,
        summary.complainants_flagged,
        summary.complaints as f64 / duban_secs
    );

    let truth = duban::score::year::read_truth(&dir).expect("truth");
    let lake = rt
        .block_on(duban::score::read_lake(&out))
        .expect("read the lake");
    let score = duban::score::year::score(&truth, &lake, cfg.rules.crowd_min_complainants);
    print!("{}", duban::score::year::render(&score));

    let python = peer_python();
    if !python.exists() {
        println!(
            "peer: not run: no {} (DUBAN_VENV=~/.cache/duban-peer-venv scripts/pyenv.sh \
             benches/peer/requirements.txt, or set DUBAN_PEER_PYTHON)",
            python.display()
        );
    } else {
        let t = Instant::now();
        let run = std::process::Command::new(&python)
            .arg(repo.join("benches/peer/peer.py"))
            .arg(&export)
            .arg("--taxonomy")
            .arg(repo.join("config/taxonomy.toml"))
            .output()
            .expect("run the peer");
        let peer_secs = t.elapsed().as_secs_f64();
        assert!(
            run.status.success(),
            "the peer failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let peer: serde_json::Value =
            serde_json::from_slice(&run.stdout).expect("the peer prints one JSON object");
        println!(
            "peer (pandas + jieba + scikit-learn + datasketch): {} complaints, {} issues, {} flagged \
             in {peer_secs:.1} s ({:.0} complaints/s); stages {}",
            peer["complaints"],
            peer["issues"],
            peer["flagged"],
            rows as f64 / peer_secs,
            peer["seconds"]
        );
        println!(
            "ratio duban/peer: {:.1}x (peer {peer_secs:.1} s / duban {duban_secs:.1} s)",
            peer_secs / duban_secs
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
