//! The analyst query over 10M complaints: DataFusion on the Parquet lake beside ClickHouse on the
//! same rows, in one run. Query: complaints per domain × district × day over a month, and the top
//! issues by distinct complainants. Both engines' answers are compared before timing.
//!
//! The rows are a deterministic function of the row number, generated directly as Arrow batches
//! for the lake (one file per day, the complaint schema) and with the same formula in ClickHouse
//! (`INSERT ... SELECT FROM numbers(N)` into the sink's complaints table), so both hold the same
//! rows without a slow transfer.
//!
//! The ids have the format of real ones (`duban::ids`: 12-byte pseudonyms and issue ids), and
//! each day's file is sorted by (received_at, complaint_id) like a compacted partition. The lake is
//! generated once and kept in the temp folder, keyed by the row count, `GENERATOR` (bump it when
//! the rows change) and `duban::lake::LAYOUT` (the writer's layout version).
//!
//! Run: `scripts/services.sh start clickhouse; cargo bench --bench sql`
//! (`DUBAN_BENCH_ROWS`, default 10000000; `DUBAN_BENCH_RUNS`, default 5;
//! `DUBAN_CLICKHOUSE_URL`, default http://127.0.0.1:8123; `DUBAN_BENCH_CLICKHOUSE=0` times
//! DataFusion alone, e.g. while tuning the lake — the numbers to report come from a run of both).

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use duban::record::{TZ, complaint_schema};
use duban::sink::clickhouse::{COMPLAINTS, ClickHouseConfig, ClickHouseSink, create_table_sql};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Version of the generated rows; part of the cached lake's folder name.
const GENERATOR: u32 = 3;
const DAYS: u64 = 30;
const DOMAINS: [&str; 10] = [
    "城市管理",
    "城乡建设",
    "交通运输",
    "生态环境",
    "市场监管",
    "劳动保障",
    "教育培训",
    "卫生健康",
    "社会治安",
    "医疗保障",
];
const DISTRICTS: [&str; 8] = [
    "镜湖区",
    "弋江区",
    "鸠江区",
    "湾沚区",
    "繁昌区",
    "南陵县",
    "无为市",
    "经开区",
];
const CHANNELS: [&str; 4] = ["hotline", "board", "portal", "wanshitong"];
const PEOPLE: u64 = 300_000;
const ISSUES: u64 = 50_000;
/// 2026-10-01 00:00:00 +08:00.
const MONTH_START: i64 = 1_790_784_000;
const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// A hash of (row, salt); ClickHouse computes the same with `mix_sql`.
fn mix(n: u64, k: u64) -> u64 {
    let x = (n ^ (k << 56)).wrapping_mul(MUL);
    x ^ (x >> 29)
}

fn mix_sql(k: u64) -> String {
    mix_expr("number", k)
}

/// `mix` of a UInt64 SQL expression.
fn mix_expr(n: &str, k: u64) -> String {
    let x = format!("(bitXor({n}, bitShiftLeft(toUInt64({k}), 56)) * toUInt64({MUL}))");
    format!("bitXor({x}, bitShiftRight({x}, 29))")
}

/// The id of an id number in duban's format (`duban::ids`: a prefix and fixed-width base-62
/// digits of a hash); ClickHouse computes the same with `id_sql`.
fn id(prefix: &str, digits: u32, n: u64, salt: u64) -> String {
    let s = duban::ids::encode62(mix(n, salt), digits);
    format!("{prefix}{s}")
}

fn id_sql(prefix: &str, digits: u32, n: &str, salt: u64) -> String {
    let x = format!("({} % toUInt64({}))", mix_expr(n, salt), 62u64.pow(digits));
    let chars: Vec<String> = (0..digits)
        .map(|k| {
            format!(
                "substring('{}', toUInt32(intDiv({x}, toUInt64({})) % 62) + 1, 1)",
                duban::ids::ALPHABET,
                62u64.pow(digits - 1 - k)
            )
        })
        .collect();
    format!("concat('{prefix}', {})", chars.join(", "))
}

fn complainant(n: u64) -> String {
    id(
        duban::ids::PSEUDONYM_PREFIX,
        duban::ids::PSEUDONYM_DIGITS,
        mix(n, 4) % PEOPLE,
        8,
    )
}

fn issue(n: u64) -> String {
    id(
        duban::ids::ISSUE_PREFIX,
        duban::ids::ISSUE_DIGITS,
        (mix(n, 5) % ISSUES).min(mix(n, 6) % ISSUES),
        9,
    )
}

/// Row n: day n % 30 of October 2026, its other fields hashed from n.
fn received_secs(n: u64) -> i64 {
    MONTH_START + ((n % DAYS) * 86_400 + mix(n, 1) % 86_400) as i64
}

fn day_batch(day: u64, rows: u64) -> RecordBatch {
    // Sorted as compaction leaves a partition: by received_at, then complaint id.
    let mut ns: Vec<u64> = (day..rows).step_by(DAYS as usize).collect();
    ns.sort_by_cached_key(|&n| (received_secs(n), format!("c{n}")));
    let s = |f: &dyn Fn(u64) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(ns.iter().map(|&n| f(n))))
    };
    let none = || -> ArrayRef { Arc::new(StringArray::from(vec![None::<&str>; ns.len()])) };
    let ts = || -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                ns.iter().map(|&n| received_secs(n) * 1_000_000),
            )
            .with_timezone(TZ),
        )
    };
    let domain = |n: u64| DOMAINS[(mix(n, 2) % 10) as usize].to_string();
    let cols: Vec<ArrayRef> = vec![
        s(&|n| format!("c{n}")),
        s(&|n| CHANNELS[(mix(n, 7) % 4) as usize].to_string()),
        s(&|n| n.to_string()),
        ts(),
        ts(),
        s(&|n| format!("{}问题", domain(n))),
        s(&|_| "b".to_string()),
        s(&complainant),
        none(),
        s(&|n| DISTRICTS[(mix(n, 3) % 8) as usize].to_string()),
        none(),
        s(&domain),
        Arc::new(Float64Array::from(vec![0.9; ns.len()])),
        none(),
        none(),
        Arc::new(Int64Array::from(vec![None; ns.len()])),
        s(&|n| format!("h{n}")),
        none(),
        s(&|n| format!("c{n}")),
        none(),
        s(&issue),
        s(&|_| String::new()),
        none(),
    ];
    RecordBatch::try_new(complaint_schema(), cols).expect("complaint batch")
}

fn arr(xs: &[&str]) -> String {
    let items: Vec<String> = xs.iter().map(|x| format!("'{x}'")).collect();
    format!("[{}]", items.join(", "))
}

fn clickhouse_insert_sql(rows: u64) -> String {
    let recv = format!(
        "toDateTime({MONTH_START} + (number % {DAYS}) * 86400 + {} % 86400, 'Etc/GMT-8')",
        mix_sql(1)
    );
    let domain = format!("arrayElement({}, {} % 10 + 1)", arr(&DOMAINS), mix_sql(2));
    format!(
        "INSERT INTO complaints SELECT \
         concat('c', toString(number)) AS complaint_id, \
         arrayElement({channels}, {m7} % 4 + 1) AS channel, \
         toString(number) AS source_id, {recv} AS received_at, {recv} AS fetched_at, \
         concat({domain}, '问题') AS title, 'b' AS body, \
         {person} AS complainant, \
         CAST(NULL AS Nullable(String)) AS phone_masked, \
         arrayElement({districts}, {m3} % 8 + 1) AS district, \
         CAST(NULL AS Nullable(String)) AS address, {domain} AS domain, \
         0.9 AS domain_confidence, CAST(NULL AS Nullable(String)) AS source_category, \
         CAST(NULL AS Nullable(String)) AS source_status, CAST(NULL AS Nullable(Int64)) AS likes, \
         concat('h', toString(number)) AS content_hash, \
         CAST(NULL AS Nullable(String)) AS duplicate_of, \
         concat('c', toString(number)) AS duplicate_group, \
         CAST(NULL AS Nullable(String)) AS place, \
         {issue} AS issue_id, \
         '' AS flags, CAST(NULL AS Nullable(String)) AS source_version, \
         toUInt64(1) AS _version \
         FROM numbers({rows})",
        channels = arr(&CHANNELS),
        districts = arr(&DISTRICTS),
        m3 = mix_sql(3),
        m7 = mix_sql(7),
        person = id_sql(
            duban::ids::PSEUDONYM_PREFIX,
            duban::ids::PSEUDONYM_DIGITS,
            &format!("({} % {PEOPLE})", mix_sql(4)),
            8
        ),
        issue = id_sql(
            duban::ids::ISSUE_PREFIX,
            duban::ids::ISSUE_DIGITS,
            &format!(
                "least({} % {ISSUES}, {} % {ISSUES})",
                mix_sql(5),
                mix_sql(6)
            ),
            9
        ),
    )
}

const DF_BY_DAY: &str = "SELECT domain, district, day, count(*) AS n FROM complaints \
     WHERE day >= '2026-10-01' AND day <= '2026-10-31' \
     GROUP BY domain, district, day ORDER BY domain, district, day";
const DF_TOP_ISSUES: &str = "SELECT issue_id, count(DISTINCT complainant) AS people FROM complaints \
     WHERE day >= '2026-10-01' AND day <= '2026-10-31' \
     GROUP BY issue_id ORDER BY people DESC, issue_id LIMIT 20";

fn ch_by_day(fin: &str) -> String {
    format!(
        "SELECT domain, district, toDate(received_at) AS day, count() AS n FROM complaints {fin} \
         WHERE day >= toDate('2026-10-01') AND day <= toDate('2026-10-31') \
         GROUP BY domain, district, day ORDER BY domain, district, day"
    )
}

fn ch_top_issues(fin: &str) -> String {
    format!(
        "SELECT issue_id, uniqExact(complainant) AS people FROM complaints {fin} \
         WHERE toDate(received_at) >= toDate('2026-10-01') AND toDate(received_at) <= toDate('2026-10-31') \
         GROUP BY issue_id ORDER BY people DESC, issue_id LIMIT 20"
    )
}

/// DataFusion's answer as TabSeparated lines (what ClickHouse prints).
async fn df_lines(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let csv = {
        let mut buf = Vec::new();
        {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(false)
                .with_delimiter(b'\t')
                .build(&mut buf);
            for b in &batches {
                w.write(b).expect("tsv");
            }
        }
        String::from_utf8(buf).expect("utf8")
    };
    csv.lines().map(str::to_string).collect()
}

/// Times of `runs` runs of `f`, sorted.
async fn timed<F, Fut>(runs: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    times.sort();
    times
}

fn median(times: &[Duration]) -> f64 {
    times[times.len() / 2].as_secs_f64()
}

fn line(name: &str, times: &[Duration]) {
    println!(
        "  {name:<34} median {:>7.3} s   best {:>7.3} s   worst {:>7.3} s",
        median(times),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
}

/// The lake of `rows` generated complaints, generated once into the temp folder.
fn bench_lake(rows: u64) -> std::path::PathBuf {
    let lake = std::env::temp_dir().join(format!(
        "duban-bench-sql-{rows}-g{GENERATOR}-{}",
        duban::lake::LAYOUT
    ));
    let stamp = lake.join(".complete");
    if stamp.exists() {
        println!("the lake (cached): {}", lake.display());
        return lake;
    }
    let t = Instant::now();
    let _ = std::fs::remove_dir_all(&lake);
    for day in 0..DAYS {
        let batch = day_batch(day, rows);
        let date = chrono::DateTime::from_timestamp(MONTH_START + (day * 86_400) as i64, 0)
            .expect("date")
            .with_timezone(&duban::record::local_offset())
            .date_naive();
        let path = duban::lake::day_dir(&lake, date).join("part-bench.parquet");
        duban::lake::write_parquet(&path, &batch).expect("write the lake");
    }
    std::fs::write(&stamp, b"").expect("stamp");
    println!(
        "generated the lake in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        lake.display()
    );
    lake
}

/// ClickHouse's answer as lines.
async fn ch_lines(sink: &ClickHouseSink, sql: &str) -> Vec<String> {
    sink.query_text(sql)
        .await
        .expect("ClickHouse query")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The sink's complaints table in ClickHouse, filled with the same rows.
async fn clickhouse(rows: u64) -> ClickHouseSink {
    let cfg = ClickHouseConfig {
        database: "duban_bench".into(),
        ..Default::default()
    };
    let sink = ClickHouseSink::connect(&cfg)
        .await
        .expect("ClickHouse reachable (scripts/services.sh start clickhouse)");
    let t = Instant::now();
    sink.execute("DROP TABLE IF EXISTS complaints")
        .await
        .expect("drop");
    let ddl = create_table_sql(&COMPLAINTS, &complaint_schema()).expect("ddl");
    sink.execute(&ddl).await.expect("create");
    sink.execute(&clickhouse_insert_sql(rows))
        .await
        .expect("insert");
    sink.execute("OPTIMIZE TABLE complaints FINAL")
        .await
        .expect("optimize");
    let version = sink.query_text("SELECT version()").await.expect("version");
    println!(
        "loaded ClickHouse {} in {:.1} s",
        version.trim(),
        t.elapsed().as_secs_f64()
    );
    let n: u64 = ch_lines(&sink, "SELECT count() FROM complaints").await[0]
        .parse()
        .expect("number");
    assert_eq!(n, rows, "ClickHouse holds every row once");
    sink
}

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::var("DUBAN_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let runs: usize = std::env::var("DUBAN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let with_clickhouse = std::env::var("DUBAN_BENCH_CLICKHOUSE").map_or(true, |v| v != "0");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("sql bench: {rows} complaints over 30 days, {cores} cores, {runs} runs");

    let lake = bench_lake(rows);
    // The session `duban sql` and `duban serve-sql` use.
    let ctx = duban::query::lake_context(&lake)
        .await
        .expect("lake context");
    let total: u64 = df_lines(&ctx, "SELECT count(*) FROM complaints").await[0]
        .parse()
        .expect("count");
    assert_eq!(total, rows);

    let sink = if with_clickhouse {
        let sink = clickhouse(rows).await;
        // Same answers first (this also warms both engines' caches).
        for (df, ch) in [
            (DF_BY_DAY, ch_by_day("")),
            (DF_TOP_ISSUES, ch_top_issues("")),
            (DF_BY_DAY, ch_by_day("FINAL")),
            (DF_TOP_ISSUES, ch_top_issues("FINAL")),
        ] {
            let want = df_lines(&ctx, df).await;
            let got = ch_lines(&sink, &ch).await;
            assert_eq!(got.len(), want.len(), "row count of {df}");
            assert_eq!(got, want, "DataFusion and ClickHouse agree on {df}");
        }
        Some(sink)
    } else {
        println!("ClickHouse skipped (DUBAN_BENCH_CLICKHOUSE=0): no comparison, no ratio");
        df_lines(&ctx, DF_BY_DAY).await;
        df_lines(&ctx, DF_TOP_ISSUES).await;
        None
    };

    let by_day = timed(runs, || async {
        df_lines(&ctx, DF_BY_DAY).await;
    })
    .await;
    let top = timed(runs, || async {
        df_lines(&ctx, DF_TOP_ISSUES).await;
    })
    .await;
    let datafusion = timed(runs, || async {
        df_lines(&ctx, DF_BY_DAY).await;
        df_lines(&ctx, DF_TOP_ISSUES).await;
    })
    .await;
    let mut ch = Vec::new();
    if let Some(sink) = &sink {
        for fin in ["", "FINAL"] {
            ch.push(
                timed(runs, || async {
                    sink.query_text(&ch_by_day(fin)).await.expect("q1");
                    sink.query_text(&ch_top_issues(fin)).await.expect("q2");
                })
                .await,
            );
        }
    }
    println!(
        "analyst query (per domain × district × day, then top 20 issues by distinct \
         complainants), {runs} runs:"
    );
    line("DataFusion: per day", &by_day);
    line("DataFusion: top issues", &top);
    line("DataFusion on the lake (both)", &datafusion);
    if let [plain, fin] = &ch[..] {
        line("ClickHouse (both)", plain);
        line("ClickHouse with FINAL (both)", fin);
        println!(
            "  ratio DataFusion / ClickHouse   {:>8.2}   (with FINAL: {:.2}; medians)",
            median(&datafusion) / median(plain),
            median(&datafusion) / median(fin)
        );
    }
    println!(
        "  goal: DataFusion under 1 s: {} (median {:.3} s)",
        if median(&datafusion) < 1.0 {
            "met"
        } else {
            "not met"
        },
        median(&datafusion)
    );
}
