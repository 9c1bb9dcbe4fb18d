//! Analysts' SQL end to end: the lake's privacy and replay guarantees, `duban sql` (one-shot and
//! REPL), the Flight SQL server read by the real ADBC Python driver, and the ClickHouse sink on a
//! real ClickHouse server (DUBAN_CLICKHOUSE_URL, started by scripts/test.sh).

use crate::common::*;
use duban::record::{Alert, Complaint};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tokio::sync::OnceCell;

const SEED: u64 = 31;
const SIZE: usize = 400;

struct Demo {
    out: PathBuf,
    complaints: Vec<Complaint>,
    alerts: Vec<Alert>,
}

/// One embedded demo run shared by the tests of this module (read-only for them).
async fn demo() -> &'static Demo {
    static DEMO: OnceCell<Demo> = OnceCell::const_new();
    DEMO.get_or_init(|| async {
        let cfg = test_config(&unique("sql-demo"));
        let out = tmpdir("sql-demo");
        let d = duban::pipeline::embedded::run_demo(
            &cfg,
            &cfg.connectors.dir,
            sim_config(SEED, SIZE),
            &out,
        )
        .await
        .expect("demo runs");
        Demo {
            out,
            complaints: d.complaints,
            alerts: d.alerts.into_values().collect(),
        }
    })
    .await
}

/// Rows of a DataFusion query over the lake as JSON objects (the lake's own answer).
async fn lake_rows(lake: &Path, sql: &str) -> Vec<serde_json::Value> {
    let batches = duban::query::run_sql(lake, sql).await.expect("lake query");
    let text = duban::query::render(&batches, duban::query::Format::Json).expect("json");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_has_no_raw_personal_data() {
    let d = demo().await;
    let corpus =
        duban::sim::corpus::corpus(&sim_config(SEED, SIZE)).expect("the demo's corpus again");
    // Every identity the simulator gave its complainants, as it appears on the feeds.
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for p in &corpus.people {
        ids.insert(p.mobile.clone());
        ids.insert(p.board_user_id.clone());
        ids.insert(p.wst_uid.clone());
        if p.name.chars().count() >= 2 {
            names.insert(p.name.clone());
        }
    }
    ids.retain(|s| s.chars().count() >= 4);
    assert!(
        ids.len() > 50 && names.len() > 20,
        "the corpus has complainants"
    );
    let lake = d.out.join("lake");
    // Free text too: the simulator's complainants write "我叫…" / "联系人：…" into their bodies.
    let mut cells = 0usize;
    for table in ["complaints", "issues", "complainants", "alerts"] {
        let cols = lake_rows(&lake, &format!("select * from {table}")).await;
        for row in cols {
            for (col, v) in row.as_object().expect("row") {
                let Some(text) = v.as_str() else { continue };
                cells += 1;
                for s in ids.iter().chain(names.iter()) {
                    assert!(
                        !text.contains(s.as_str()),
                        "{table}.{col} holds a raw identity: {text}"
                    );
                }
                assert!(
                    !has_mobile_number(text),
                    "{table}.{col} holds an unmasked mobile number: {text}"
                );
            }
        }
    }
    assert!(cells > 1000, "checked the lake's text: {cells} cells");
    // Complainants appear as pseudonyms only, phones masked.
    let people = lake_rows(
        &lake,
        "select distinct complainant from complaints where complainant is not null",
    )
    .await;
    assert!(people.len() > 20);
    for p in &people {
        let s = p["complainant"].as_str().expect("pseudonym");
        assert!(
            duban::ids::pseudonym_number(s).is_some(),
            "pseudonym of the p_ + 10 base-62 digits format: {s}"
        );
    }
    let phones = lake_rows(
        &lake,
        "select phone_masked from complaints where phone_masked is not null",
    )
    .await;
    assert!(!phones.is_empty());
    assert!(phones.iter().all(|p| {
        p["phone_masked"]
            .as_str()
            .is_some_and(|s| s.contains("****"))
    }));
}

/// 11 digits in a row starting with 1 (a mainland mobile number), not part of a longer number.
fn has_mobile_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 11 && b[start] == b'1' && b[start + 1] >= b'3' {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_cli_one_shot_formats_and_repl_with_history() {
    let d = demo().await;
    let lake = d.out.join("lake");
    let want = lake_rows(
        &lake,
        "select domain, count(*) as n from complaints group by domain order by domain",
    )
    .await;
    // One-shot to a Parquet file.
    let dir = tmpdir("sql-cli");
    let file = dir.join("by_domain.parquet");
    run_ok(
        duban()
            .args(["sql", "--format", "parquet", "--output"])
            .arg(&file)
            .arg("--lake")
            .arg(&lake)
            .arg("select domain, count(*) as n from complaints group by domain order by domain"),
    );
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&file).expect("parquet written"),
        )
        .expect("parquet")
        .build()
        .expect("reader");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, want.len());
    // A write is refused with a one-line error and a non-zero exit.
    let out = duban()
        .arg("sql")
        .arg("--lake")
        .arg(&lake)
        .arg("insert into complaints select * from complaints")
        .output()
        .expect("duban sql runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DML not supported"), "{err}");

    // The REPL: a statement over two lines, a meta command, a bad statement, then quit.
    let history = dir.join("history");
    let (text, _) = run_ok_with_input(
        duban()
            .arg("sql")
            .args(["--format", "csv", "--lake"])
            .arg(&lake)
            .arg("--history")
            .arg(&history),
        "select domain, count(*) as n\nfrom complaints group by domain order by domain;\n\\d\nselect nope from complaints;\n\\q\n",
    );
    let first = &want[0];
    assert!(
        text.contains(&format!(
            "{},{}",
            first["domain"].as_str().expect("domain"),
            first["n"]
        )),
        "{text}"
    );
    assert!(text.contains("complainants"), "\\d lists tables: {text}");
    assert!(text.contains("error: SQL error"), "{text}");
    let saved = std::fs::read_to_string(&history).expect("history saved");
    assert!(saved.contains("from complaints group by domain"), "{saved}");
}

/// The Python that has adbc-driver-flightsql (DUBAN_PYTHON, set by scripts/test.sh).
fn python() -> PathBuf {
    let p = std::env::var_os("DUBAN_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let v = PathBuf::from(std::env::var_os("HOME")?).join(".cache/duban-venv/bin/python");
            v.exists().then_some(v)
        })
        .expect("DUBAN_PYTHON is not set: run scripts/pyenv.sh (scripts/test.sh does)");
    let ok = Command::new(&p)
        .args(["-c", "import adbc_driver_flightsql, pyarrow"])
        .status()
        .expect("python runs");
    assert!(
        ok.success(),
        "{} lacks adbc-driver-flightsql/pyarrow",
        p.display()
    );
    p
}

/// Run the ADBC client; its JSON answer.
fn adbc(uri: &str, token: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo("tests/flightsql_client.py"))
        .args([uri, token])
        .args(args)
        .output()
        .expect("client runs");
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client output is JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A `duban serve-sql` child, killed on drop.
struct Server {
    child: std::process::Child,
    uri: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(lake: &Path, token: &str) -> Server {
    let mut child = duban()
        .arg("serve-sql")
        .arg("--lake")
        .arg(lake)
        .args(["--port", "0"])
        .env("DUBAN_SQL_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve-sql starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // The first line names the bound address; read_line blocks until it is printed or the
    // server exits (EOF), so no polling is needed.
    let first = lines
        .next()
        .and_then(Result::ok)
        .expect("serve-sql printed its address");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    Server {
        child,
        uri: format!("grpc://{addr}"),
    }
}

/// Whether two strings name the same instant (RFC 3339, or Python's `str()` with a space) or the
/// same day; false for anything that is not a time.
fn same_time(a: &str, b: &str) -> bool {
    let instant = |s: &str| chrono::DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)).ok();
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    match (instant(a), instant(b)) {
        (Some(x), Some(y)) => x == y,
        _ => day(a).is_some() && day(a) == day(b),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_serves_the_lake_to_the_adbc_driver() {
    let d = demo().await;
    let lake = d.out.join("lake");
    let token = "e2e-flight-token";
    let server = serve(&lake, token);
    let queries = [
        "select domain, district, cast(received_at as date) as day, count(*) as n \
         from complaints group by 1, 2, 3 order by 1, 2, 3",
        "select issue_id, complainants, title from issues order by complainants desc, issue_id limit 10",
        "select alert_id, trigger, level, complaint_count from alerts order by alert_id",
        "select complainant, complaints, flagged from complainants order by complaints desc, complainant limit 5",
    ];
    for sql in queries {
        let got = adbc(&server.uri, token, &["query", sql]);
        let rows = got["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("{sql}: {got}"));
        let want = lake_rows(&lake, sql).await;
        assert!(!want.is_empty(), "{sql} has rows");
        assert_eq!(rows.len(), want.len(), "{sql}");
        for (g, w) in rows.iter().zip(&want) {
            for (k, wv) in w.as_object().expect("row") {
                let gv = &g[k];
                // Dates and timestamps arrive as Python objects printed with str(): compared as
                // the same instant or day, every other value exactly.
                let same = gv == wv
                    || matches!((gv.as_str(), wv.as_str()), (Some(g), Some(w))
                        if same_time(g, w));
                assert!(same, "{sql}: column {k}: {gv} vs {wv}");
            }
        }
    }
    // Basic auth (the token as password) works too; the catalog lists the lake's tables.
    let basic = adbc(
        &server.uri,
        token,
        &["basic", "select count(*) as n from complaints"],
    );
    assert_eq!(basic["rows"][0]["n"], d.complaints.len());
    let objects = adbc(&server.uri, token, &["objects"]);
    let tables: Vec<&str> = objects["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    for t in ["alerts", "complainants", "complaints", "issues"] {
        assert!(tables.contains(&t), "{t} in {tables:?}");
    }
    // A wrong token is refused; so are writes.
    let wrong = adbc(&server.uri, "not-the-token", &["query", "select 1"]);
    assert!(
        wrong["error"]
            .as_str()
            .is_some_and(|e| e.contains("UNAUTHENTICATED")),
        "{wrong}"
    );
    for write in [
        "insert into complaints select * from complaints",
        "create table t as select 1",
        "copy (select 1) to '/tmp/duban-flight-should-not-exist.csv'",
    ] {
        let refused = adbc(&server.uri, token, &["query", write]);
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.contains("read-only")),
            "{write}: {refused}"
        );
    }
    assert!(!Path::new("/tmp/duban-flight-should-not-exist.csv").exists());
}

/// Issue 21's attack: the keyed `pseudonym` UDF was in analysts' sessions and masked phones kept
/// 7 of 11 digits, so trying the 10,000 candidates of the hidden digits (generate_series) against
/// `complainant` recovered every phone number without the key. No analyst session (Flight SQL,
/// `duban sql`) has a keyed function now, and a masked phone keeps at most 4 digits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pseudonyms_cannot_be_reversed_through_sql() {
    let d = demo().await;
    let lake = d.out.join("lake");
    let attack = "select count(distinct c.complainant) as recovered \
         from complaints c cross join generate_series(0, 9999) g \
         where c.phone_masked is not null and pseudonym(c.channel, \
           concat(substr(c.phone_masked, 1, 3), lpad(cast(g.value as varchar), 4, '0'), \
                  substr(c.phone_masked, 8, 4)), null, null) = c.complainant";
    let token = "e2e-flight-token";
    let server = serve(&lake, token);
    let got = adbc(&server.uri, token, &["query", attack]);
    let err = got["error"]
        .as_str()
        .unwrap_or_else(|| panic!("the attack ran: {got}"));
    assert!(err.contains("pseudonym"), "{err}");
    let out = duban()
        .args(["sql", "--lake"])
        .arg(&lake)
        .arg(attack)
        .output()
        .expect("duban sql runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("pseudonym"),
        "{stderr}"
    );
    // What is left of a phone: at most its last 4 digits.
    let phones = adbc(
        &server.uri,
        token,
        &[
            "query",
            "select phone_masked from complaints where phone_masked is not null",
        ],
    );
    let phones = phones["rows"].as_array().expect("rows");
    assert!(phones.len() > 20, "the demo's complaints have phones");
    for p in phones {
        let p = p["phone_masked"].as_str().expect("text");
        let digits = p.chars().filter(char::is_ascii_digit).count();
        assert!(
            digits <= 4 && p.ends_with(|c: char| c.is_ascii_digit()),
            "{p}"
        );
    }
}

/// Issue 21, item 5: one `repeat('x', 300000000)` held 1.3 GB of the Flight SQL server. Values a
/// function builds are capped, queries have a memory pool and a time limit, each refusal one line
/// naming its setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_queries_are_bounded_in_memory_and_time() {
    let d = demo().await;
    let lake = d.out.join("lake");
    let token = "e2e-flight-token";
    let server = serve(&lake, token);
    let got = adbc(
        &server.uri,
        token,
        &["query", "select repeat('x', 300000000) as s"],
    );
    let err = got["error"]
        .as_str()
        .unwrap_or_else(|| panic!("built it: {got}"));
    assert!(
        err.contains("ResourceExhausted") && err.contains("at most 16 MiB ([sql] max_value_mb)"),
        "{err}"
    );
    let refused = |args: &[&str], sql: &str, why: &str| {
        let out = duban()
            .arg("sql")
            .args(args)
            .arg("--lake")
            .arg(&lake)
            .arg(sql)
            .output()
            .expect("duban sql runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} ran");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: SQL error") && last.contains(why),
            "{err}"
        );
    };
    refused(
        &["--timeout-secs", "1"],
        "select count(*) from generate_series(1, 1000000000000)",
        "query_timeout_secs",
    );
    refused(
        &["--memory-limit-mb", "32"],
        "select count(*) from generate_series(1, 5000000) a \
         join generate_series(1, 5000000) b on a.value = b.value",
        "memory_limit_mb",
    );
}

/// Issue 21, item 15 through the binary: a truncated file in a copy of the demo lake takes only
/// its table out of `duban sql`, `duban lake check` names it (exit 1) and `--quarantine` moves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_check_finds_and_quarantines_a_truncated_file() {
    let d = demo().await;
    let lake = tmpdir("lake-check").join("lake");
    copy_dir(&d.out.join("lake"), &lake);
    let files = duban::lake::check::parquet_files(&lake.join("complaints"));
    let victim = files.last().expect("a complaints file").clone();
    let bytes = std::fs::read(&victim).expect("read");
    std::fs::write(&victim, &bytes[..bytes.len() / 3]).expect("truncate");
    let sql = |q: &str| {
        duban()
            .arg("sql")
            .arg("--lake")
            .arg(&lake)
            .arg(q)
            .output()
            .expect("duban sql")
    };
    let alerts = sql("select count(*) from alerts");
    assert!(
        alerts.status.success(),
        "{}",
        String::from_utf8_lossy(&alerts.stderr)
    );
    let broken = sql("select count(*) from complaints");
    let err = String::from_utf8_lossy(&broken.stderr);
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        !broken.status.success()
            && err.contains("lake table complaints is unavailable")
            && err.contains(&name),
        "{err}"
    );
    let check = duban()
        .args(["lake", "check", "--lake"])
        .arg(&lake)
        .output()
        .expect("check");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        !check.status.success(),
        "check passed a truncated file: {out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("unreadable\tcomplaints\t"))
            .count(),
        1,
        "{out}"
    );
    assert!(out.contains(&name), "{out}");
    let moved = duban()
        .args(["lake", "check", "--quarantine", "--lake"])
        .arg(&lake)
        .output()
        .expect("quarantine");
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(
        !victim.exists()
            && duban::lake::check::quarantine_dir(&lake)
                .join("complaints")
                .is_dir()
    );
    let again = sql("select count(*) from complaints");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// Copy a folder tree (a lake) file by file.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// The ClickHouse endpoint (DUBAN_CLICKHOUSE_URL; scripts/test.sh starts the server).
fn clickhouse_config(db: &str) -> duban::sink::clickhouse::ClickHouseConfig {
    let url =
        std::env::var("DUBAN_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    duban::sink::clickhouse::ClickHouseConfig {
        url,
        database: db.to_string(),
        group_id: format!("{db}-sink"),
        snapshot_every_secs: 1,
        ..Default::default()
    }
}

async fn ch_number(sink: &duban::sink::clickhouse::ClickHouseSink, sql: &str) -> u64 {
    let t = sink.query_text(sql).await.expect("ClickHouse query");
    t.trim().parse().unwrap_or_else(|_| panic!("{sql} → {t}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_sink_loads_the_lake_and_replays_idempotently() {
    let d = demo().await;
    let lake = d.out.join("lake");
    let db = unique("sql_ch").replace('-', "_");
    let cfg = clickhouse_config(&db);
    let sink = duban::sink::clickhouse::ClickHouseSink::connect(&cfg)
        .await
        .expect("ClickHouse reachable (scripts/services.sh start clickhouse)");
    let first = sink.load_lake(&lake).await.expect("load");
    assert_eq!(first.complaints, d.complaints.len());
    // A replay (the same lake again) replaces rows instead of adding them.
    sink.load_lake(&lake).await.expect("load again");
    for (table, want) in [
        ("complaints", d.complaints.len()),
        ("alerts", d.alerts.len()),
        (
            "issues",
            lake_rows(&lake, "select * from issues").await.len(),
        ),
        (
            "complainants",
            lake_rows(&lake, "select * from complainants").await.len(),
        ),
    ] {
        let n = ch_number(&sink, &format!("SELECT count() FROM {table} FINAL")).await;
        assert_eq!(n as usize, want, "{table} FINAL");
        sink.execute(&format!("OPTIMIZE TABLE {table} FINAL"))
            .await
            .expect("optimize");
        let n = ch_number(&sink, &format!("SELECT count() FROM {table}")).await;
        assert_eq!(n as usize, want, "{table} after merges: one row per id");
    }
    // The analyst query agrees with DataFusion on the lake.
    let want = lake_rows(
        &lake,
        "select domain, coalesce(district, '') as district, count(*) as n from complaints \
         group by 1, 2 order by 1, 2",
    )
    .await;
    let got = sink
        .query_text(
            "SELECT domain, ifNull(district, '') AS d, count() FROM complaints FINAL \
             GROUP BY domain, d ORDER BY domain, d",
        )
        .await
        .expect("query");
    let got: Vec<String> = got.lines().map(str::to_string).collect();
    let want: Vec<String> = want
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}",
                r["domain"].as_str().expect("domain"),
                r["district"].as_str().expect("district"),
                r["n"]
            )
        })
        .collect();
    assert_eq!(got, want);
    // Timestamps keep their local wall time.
    let c = &d.complaints[0];
    let t = sink
        .query_text(&format!(
            "SELECT toString(received_at) FROM complaints FINAL WHERE complaint_id = '{}'",
            c.complaint_id
        ))
        .await
        .expect("time");
    assert_eq!(
        t.trim(),
        c.received_at.format("%Y-%m-%d %H:%M:%S").to_string()
    );
    // A column added to the alert record later (as the lifecycle does) flows through: the sink
    // adds it to the existing table.
    assert!(!d.alerts.is_empty(), "the demo raised alerts");
    let batch = duban::record::alerts_to_batch(&d.alerts).expect("alerts batch");
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    let mut cols = batch.columns().to_vec();
    fields.push(std::sync::Arc::new(
        datafusion::arrow::datatypes::Field::new(
            "owner_role",
            datafusion::arrow::datatypes::DataType::Utf8,
            true,
        ),
    ));
    cols.push(std::sync::Arc::new(
        datafusion::arrow::array::StringArray::from(vec![Some("督办科"); batch.num_rows()]),
    ));
    let wider = datafusion::arrow::array::RecordBatch::try_new(
        std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        cols,
    )
    .expect("wider batch");
    sink.insert(&duban::sink::clickhouse::ALERTS, &wider)
        .await
        .expect("insert with a new column");
    let n = ch_number(
        &sink,
        "SELECT count() FROM alerts FINAL WHERE owner_role = '督办科'",
    )
    .await;
    assert_eq!(n as usize, d.alerts.len());
    sink.execute(&format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

fn ch_group(db: &str, run: usize) -> String {
    format!("{db}-sink-{run}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_sink_consumes_topics_and_a_replay_adds_nothing() {
    let d = demo().await;
    let prefix = unique("sql-sink");
    let cfg = test_config(&prefix);
    let bus = duban::pipeline::kafka::connect(&cfg)
        .await
        .expect("Kafka reachable");
    let topics = bus.topics();
    let complaints: Vec<(String, Vec<u8>)> = d
        .complaints
        .iter()
        .map(|c| (c.complaint_id.clone(), serde_json::to_vec(c).expect("json")))
        .collect();
    let alerts: Vec<(String, Vec<u8>)> = d
        .alerts
        .iter()
        .map(|a| (a.alert_id.clone(), serde_json::to_vec(a).expect("json")))
        .collect();
    // Every complaint twice on the topic: an at-least-once producer's retry.
    bus.send_all(&topics.complaints, &complaints)
        .await
        .expect("send");
    bus.send_all(&topics.complaints, &complaints)
        .await
        .expect("send");
    bus.send_all(&topics.alerts, &alerts).await.expect("send");
    // A record the sink cannot read goes to the dead-letter topic.
    let junk = vec![("junk".to_string(), b"{not json".to_vec())];
    bus.send_all(&topics.complaints, &junk).await.expect("send");
    let db = prefix.replace('-', "_");
    let ch = clickhouse_config(&db);
    let sink = duban::sink::clickhouse::ClickHouseSink::connect(&ch)
        .await
        .expect("ClickHouse reachable");
    let lake = d.out.join("lake");
    for run in 0..2 {
        // The second run is a replay from the start (a new consumer group).
        let mut ch = ch.clone();
        ch.group_id = ch_group(&db, run);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let (bus, lake) = (bus.clone(), lake.clone());
            tokio::spawn(async move {
                duban::sink::clickhouse::run_consumer(&ch, bus, &lake, async move {
                    let _ = stop_rx.await;
                })
                .await
            })
        };
        // Done when the sink's group has committed both topics to their ends.
        wait_committed(&ch_group(&db, run), &topics.complaints).await;
        wait_committed(&ch_group(&db, run), &topics.alerts).await;
        let _ = stop_tx.send(());
        task.await.expect("task").expect("sink ran without error");
    }
    for (table, want) in [
        ("complaints", d.complaints.len()),
        ("alerts", d.alerts.len()),
    ] {
        let n = ch_number(&sink, &format!("SELECT count() FROM {table} FINAL")).await;
        assert_eq!(
            n as usize, want,
            "{table}: once per id after a retry and a replay"
        );
    }
    let dead: Vec<duban::record::DeadLetter> = read_all(&topics.dlq)
        .iter()
        .map(|(_, v)| serde_json::from_slice(v).expect("dead letter"))
        .collect();
    assert_eq!(dead.len(), 2, "the junk record, once per run");
    assert!(
        dead.iter()
            .all(|d| d.stage == "sink.clickhouse" && d.original() == b"{not json")
    );
    let issues = lake_rows(&lake, "select * from issues").await.len();
    let n = ch_number(&sink, "SELECT count() FROM issues FINAL").await;
    assert_eq!(n as usize, issues, "the lake's issue snapshot was sent");
    sink.execute(&format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

/// The simulator's raw records for a corpus, drained onto the in-process bus by the connectors.
async fn raw_records(cfg: &duban::config::Config, size: usize) -> Vec<(String, Vec<u8>)> {
    use duban::bus::{Bus, MemoryBus, Topics};
    use duban::connectors::{ConnectorFiles, Mode, Output, run_pollers};
    let bus = MemoryBus::new();
    let topics = Topics::new(&cfg.kafka.topic_prefix);
    let out = Output {
        bus: Bus::Memory(bus.clone()),
        topics: topics.clone(),
    };
    let mut files = ConnectorFiles::load(&cfg.connectors.dir).expect("connector configs");
    let exports = tmpdir("sql-exports");
    let mut sim = sim_config(SEED + 1, size);
    sim.export_dir = exports.clone();
    let (sim, receiver) =
        duban::pipeline::embedded::start_sim_and_receiver(sim, &files, out.clone())
            .await
            .expect("sim");
    files.point_at_sim(&sim.base_url(), &exports);
    run_pollers(&files, &cfg.connectors.enabled, out, Mode::Drain)
        .await
        .expect("connectors drain the feeds");
    sim.pushes_done().await.expect("webhooks");
    receiver.shutdown().await;
    sim.shutdown().await;
    bus.read(&topics.raw, 0)
        .into_iter()
        .map(|r| {
            let key = String::from_utf8(r.key.unwrap_or_default()).expect("utf8 key");
            (key, r.value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lake_replay_on_kafka_with_other_batch_boundaries_keeps_each_complaint_once() {
    let prefix = unique("sql-replay");
    let mut cfg = test_config(&prefix);
    let raw = raw_records(&cfg, 300).await;
    assert!(raw.len() >= 300, "raw records: {}", raw.len());
    let bus = duban::pipeline::kafka::connect(&cfg)
        .await
        .expect("Kafka reachable");
    let topics = bus.topics();
    bus.send_all(&topics.raw, &raw).await.expect("raw sent");
    let data = tmpdir("sql-replay-data");
    let lake = data.join("lake");
    let mut seen = Vec::new();
    // The first run cuts the raw topic into batches of 37, the replay (a new consumer group, the
    // same data folder) into batches of 101: no batch boundary is shared.
    for (run, size) in [(0, 37), (1, 101)] {
        cfg.engine.batch_max_records = size;
        cfg.engine.group_id = format!("{prefix}-engine-{run}");
        let (engine, stop) = spawn_engine(&cfg, &bus, &data);
        wait_engine_caught_up(&cfg).await;
        let _ = stop.send(());
        engine.await.expect("engine task").expect("engine ran");
        let counts = lake_rows(
            &lake,
            "select count(*) as n, count(distinct complaint_id) as ids from complaints",
        )
        .await;
        seen.push((counts[0]["n"].clone(), counts[0]["ids"].clone()));
    }
    let (n0, ids0) = &seen[0];
    assert!(n0.as_u64().is_some_and(|n| n >= 250), "{seen:?}");
    assert_eq!(n0, ids0, "each complaint once after the first run");
    assert_eq!(
        seen[1], seen[0],
        "the replay overwrote instead of duplicating"
    );
    let compacted = duban::lake::compact(&lake).expect("compact");
    assert_eq!(compacted.duplicates_dropped, 0);
    assert_eq!(compacted.files_after, compacted.partitions);
    let after = lake_rows(&lake, "select count(*) as n from complaints").await;
    assert_eq!(after[0]["n"], *n0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_classify_uses_the_configured_model() {
    let d = demo().await;
    let lake = d.out.join("lake");
    let dir = tmpdir("sql-model");
    // A model whose labels the taxonomy does not have: its answers can only come from it.
    let data = dir.join("train.csv");
    let mut csv = String::from("title,body,label\n");
    let lights = [
        "路灯不亮",
        "路灯坏了",
        "夜里路灯熄灭",
        "路灯闪烁",
        "街边路灯损坏",
    ];
    let wages = [
        "工资拖欠",
        "老板不发工资",
        "拖欠农民工工资",
        "工资被克扣",
        "欠薪三个月",
    ];
    for i in 0..60 {
        let (l, w) = (lights[i % 5], wages[(i * 3) % 5]);
        csv.push_str(&format!(
            "{l},{l}请尽快处理{i},灯光类\n{w},{w}请帮忙{i},薪资类\n"
        ));
    }
    std::fs::write(&data, csv).expect("training data");
    let model = dir.join("m.model");
    run_ok(
        duban()
            .args(["train", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&model),
    );
    let config = dir.join("duban.toml");
    std::fs::write(
        &config,
        format!("[engine]\nmodel = {:?}\n", model.display().to_string()),
    )
    .expect("config");
    let sql = "select classify('路灯不亮', '中山路路灯坏了一个月') as a, \
               classify('拖欠工资', '公司欠薪三个月') as b";
    for args in [
        vec!["--model".to_string(), model.display().to_string()],
        vec!["--config".to_string(), config.display().to_string()],
    ] {
        let (text, _) = run_ok(
            duban()
                .args(["sql", "--format", "csv", "--lake"])
                .arg(&lake)
                .args(&args)
                .arg(sql),
        );
        assert_eq!(
            text.lines().nth(1),
            Some("灯光类,薪资类"),
            "{args:?}: {text}"
        );
    }
    // Without a model: the taxonomy's vocabulary, which knows neither label.
    let out = duban()
        .args(["sql", "--format", "csv", "--lake"])
        .arg(&lake)
        .arg(sql)
        .output()
        .expect("sql runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("灯光类") && text.lines().count() == 2,
        "{text}"
    );
}
