//! `duban sql` over a small lake: tables, UDFs, refused writes, output formats.

use super::*;
use crate::record::Complaint;
use chrono::DateTime;
use datafusion::arrow::array::Array;

fn complaint(n: usize, title: &str, body: &str) -> Complaint {
    let t = DateTime::parse_from_rfc3339("2026-11-01T09:00:00+08:00").expect("time")
        + chrono::Duration::hours(n as i64 * 7);
    let sid = format!("Q{n}");
    Complaint {
        complainant: Some(crate::ids::pseudonym_of(n as u64)),
        district: Some("镜湖区".into()),
        domain: "城市管理".into(),
        domain_confidence: 0.9,
        content_hash: format!("h{n}"),
        duplicate_group: String::new(),
        ..Complaint::new("board", &sid, t, title, body)
    }
}

fn lake() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "duban-query-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    ));
    let rows = vec![
        complaint(0, "小区门口夜市噪音扰民", "每天晚上夜市噪音很大，影响休息"),
        complaint(1, "夜市噪音扰民", "小区门口夜市噪音太大，晚上无法休息"),
        complaint(2, "路灯不亮", "中山路路灯坏了一个月没人修"),
        complaint(3, "工资拖欠", "公司拖欠工资三个月"),
    ];
    crate::lake::write_complaints(&dir, &rows, "t").expect("lake");
    dir
}

fn strings(batches: &[RecordBatch], col: usize) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let a = datafusion::arrow::compute::cast(b.column(col), &DataType::Utf8).expect("cast");
        let a = a
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .expect("str");
        out.extend((0..a.len()).map(|i| a.value(i).to_string()));
    }
    out
}

#[tokio::test]
async fn tables_and_partitions_are_queryable() {
    let lake = lake();
    let b = run_sql(
        &lake,
        "select day, count(*) from complaints group by day order by day",
    )
    .await
    .expect("query");
    assert_eq!(strings(&b, 0), vec!["2026-11-01", "2026-11-02"]);
    assert_eq!(strings(&b, 1), vec!["3", "1"]);
    // Tables that are not in the lake are not registered: a clear error.
    let e = run_sql(&lake, "select * from alerts")
        .await
        .expect_err("no alerts");
    assert!(e.to_string().contains("alerts"), "{e}");
}

#[tokio::test]
async fn udfs_segment_classify_and_similarity() {
    let lake = lake();
    let b = run_sql(
        &lake,
        "select source_id, segment(title), classify(title, body), classify_confidence(title, body), \
         similarity(title, 'ignored') from complaints order by source_id",
    )
    .await
    .expect("udfs");
    let seg = strings(&b, 1);
    assert!(seg[3].split(' ').any(|w| w == "工资"), "{seg:?}");
    assert!(seg[0].split(' ').count() >= 3, "{seg:?}");
    assert!(!seg[0].contains("  "));
    let domains = strings(&b, 2);
    assert!(
        domains.iter().all(|d| !d.is_empty() && !d.contains('|')),
        "{domains:?}"
    );
    assert_ne!(
        domains[2], domains[3],
        "street lights and wages are different domains"
    );
    let b = run_sql(
        &lake,
        "select a.source_id, b.source_id, similarity(a.body, b.body) as s from complaints a, \
         complaints b where a.source_id < b.source_id order by s desc",
    )
    .await
    .expect("similarity");
    assert_eq!(strings(&b, 0)[0], "Q0");
    assert_eq!(
        strings(&b, 1)[0],
        "Q1",
        "the two night-market complaints are most similar"
    );
    let s: Vec<f64> = strings(&b, 2)
        .iter()
        .map(|s| s.parse().expect("f64"))
        .collect();
    assert!(
        s[0] > 0.3 && s[0] <= 1.0 && *s.last().expect("last") < s[0],
        "{s:?}"
    );
    let same = run_sql(&lake, "select similarity('夜市噪音扰民', '夜市噪音扰民')")
        .await
        .expect("self");
    let one: f64 = strings(&same, 0)[0].parse().expect("f64");
    assert!((one - 1.0).abs() < 1e-9, "{one}");
}

#[tokio::test]
async fn writes_are_refused_and_views_only_where_allowed() {
    let lake = lake();
    for sql in [
        "insert into complaints select * from complaints",
        "copy (select * from complaints) to '/tmp/duban-should-not-exist.parquet'",
    ] {
        let e = run_sql(&lake, sql).await.expect_err(sql);
        assert!(e.to_string().contains("not supported"), "{sql}: {e}");
    }
    let ctx = lake_context(&lake).await.expect("ctx");
    assert!(
        plan(&ctx, "create view v as select 1", Access::ReadOnlyWithViews)
            .await
            .is_ok()
    );
    let e = plan(&ctx, "create view w as select 1", Access::ReadOnly)
        .await
        .expect_err("no DDL");
    assert!(e.to_string().contains("DDL not supported"), "{e}");
    assert!(!Path::new("/tmp/duban-should-not-exist.parquet").exists());
    // Issue 21, item 11: with views allowed, nothing else of DDL is (no table from a query, no
    // other file opened, no table dropped), nor a change of the runtime's memory limit.
    let outside = lake.join("outside.csv");
    std::fs::write(&outside, "a\n1\n").expect("a file");
    for (sql, why) in [
        (
            "create table t as select 1 as a".to_string(),
            "CreateMemoryTable is not allowed",
        ),
        (
            format!(
                "create external table o stored as csv location '{}'",
                outside.display()
            ),
            "CreateExternalTable is not allowed",
        ),
        ("drop table complaints".into(), "DropTable is not allowed"),
        (
            "explain analyze create table t2 as select 1 as a".into(),
            "CreateMemoryTable is not allowed",
        ),
        (
            "set datafusion.runtime.memory_limit = '100G'".into(),
            "SET datafusion.runtime.memory_limit is not allowed",
        ),
        ("prepare p as select 1".into(), "Prepare is not allowed"),
    ] {
        let e = plan(&ctx, &sql, Access::ReadOnlyWithViews)
            .await
            .expect_err(&sql)
            .to_string();
        assert!(
            e.starts_with("SQL error: ") && e.contains(why),
            "{sql}: {e}"
        );
    }
    for sql in [
        "create or replace view v as select 2",
        "drop view v",
        "set datafusion.execution.time_zone = '+08:00'",
        "show tables",
        "explain select count(*) from complaints",
    ] {
        plan(&ctx, sql, Access::ReadOnlyWithViews)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let tables = ctx.catalog_names();
    assert_eq!(tables.len(), 1, "{tables:?}");
    let state = ctx.state();
    let schema = state
        .catalog_list()
        .catalog(&tables[0])
        .and_then(|c| c.schema("public"))
        .expect("schema");
    assert!(
        schema.table_exist("complaints") && !schema.table_exist("t") && !schema.table_exist("o"),
        "{:?}",
        schema.table_names()
    );
}

#[tokio::test]
async fn formats_csv_json_and_parquet() {
    let lake = lake();
    let b = run_sql(
        &lake,
        "select source_id, title from complaints order by source_id limit 2",
    )
    .await
    .expect("query");
    let csv = render(&b, Format::Csv).expect("csv");
    assert_eq!(csv.lines().next(), Some("source_id,title"));
    assert_eq!(csv.lines().count(), 3);
    let json = render(&b, Format::Json).expect("json");
    let first: serde_json::Value =
        serde_json::from_str(json.lines().next().expect("line")).expect("json line");
    assert_eq!(first["source_id"], "Q0");
    let out = lake.join("result.parquet");
    let schema = b[0].schema();
    write_output(&b, &schema, Format::Parquet, Some(&out)).expect("parquet");
    let file = std::fs::File::open(&out).expect("open");
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 2);
    assert!(
        write_output(&b, &schema, Format::Parquet, None).is_err(),
        "parquet needs a file"
    );
}

#[tokio::test]
async fn alert_history_is_registered_when_the_lake_has_it() {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    let lake = lake();
    let schema = Arc::new(Schema::new(vec![
        Field::new("alert_id", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("action", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["AL-1", "AL-1"])),
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec!["raise", "escalate"])),
        ],
    )
    .expect("batch");
    crate::lake::write_parquet(&lake.join("alert_history/history.parquet"), &batch).expect("write");
    let b = run_sql(&lake, "select action from alert_history order by seq")
        .await
        .expect("alert_history is a table");
    assert_eq!(strings(&b, 0), vec!["raise", "escalate"]);
}

/// Issue 21, item 15: one truncated Parquet file in `complaints/` failed every query, on every
/// table, with an error that named no file.
#[tokio::test]
async fn an_unreadable_file_takes_only_its_table_out_and_is_quarantined() {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    let lake = lake();
    let issues = RecordBatch::try_from_iter([(
        "issue_id",
        Arc::new(StringArray::from(vec!["i1", "i2"])) as ArrayRef,
    )])
    .expect("batch");
    std::fs::create_dir_all(lake.join("issues")).expect("dir");
    crate::lake::write_parquet(&lake.join("issues").join("issues.parquet"), &issues)
        .expect("issues");
    let good = crate::lake::check::parquet_files(&lake.join("complaints"))[0].clone();
    let bytes = std::fs::read(&good).expect("read");
    let bad = good.with_file_name("part-truncated.parquet");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).expect("write");

    let count = |b: Vec<RecordBatch>| strings(&b, 0);
    let b = run_sql(&lake, "select count(*) from issues")
        .await
        .expect("the other tables stay queryable");
    assert_eq!(count(b), ["2"]);
    let e = run_sql(&lake, "select count(*) from complaints")
        .await
        .expect_err("the broken table")
        .to_string();
    assert!(
        e.starts_with("SQL error: lake table complaints is unavailable: unreadable Parquet file ")
            && e.contains(&bad.display().to_string())
            && e.contains("duban lake check --quarantine")
            && !e.contains('\n'),
        "{e}"
    );

    let found = crate::lake::check(&lake).expect("check");
    assert_eq!(
        found.iter().map(|b| b.path.clone()).collect::<Vec<_>>(),
        vec![bad.clone()]
    );
    assert_eq!(found[0].table, "complaints");
    let moved = crate::lake::quarantine(&lake, &found).expect("moved");
    let aside = crate::lake::check::quarantine_dir(&lake);
    assert!(!bad.exists() && moved[0].is_file() && moved[0].starts_with(&aside));
    assert!(crate::lake::check(&lake).expect("check").is_empty());
    let b = run_sql(&lake, "select count(*) from complaints")
        .await
        .expect("queryable again");
    assert_eq!(count(b), ["4"]);
    let _ = std::fs::remove_dir_all(&aside);
}
