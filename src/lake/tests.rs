//! Lake writes: replays with other batch boundaries, newer versions, compaction.

use super::*;
use chrono::{DateTime, Duration};

fn complaint(n: usize, version: Option<&str>) -> Complaint {
    let t = DateTime::parse_from_rfc3339("2026-11-01T09:00:00+08:00").expect("time")
        + Duration::hours((n % 40) as i64);
    let sid = format!("S{n}");
    let (title, body) = (
        format!("title {n}"),
        format!("body {n} {}", version.unwrap_or("")),
    );
    Complaint {
        complainant: Some(crate::ids::pseudonym_of(n as u64)),
        phone_masked: Some("*******1234".into()),
        district: Some("镜湖区".into()),
        domain: "城市管理".into(),
        domain_confidence: 0.9,
        content_hash: format!("h{n}"),
        duplicate_group: String::new(),
        source_version: version.map(str::to_string),
        ..Complaint::new("hotline", &sid, t, &title, &body)
    }
}

/// (complaint_id, body) of every row in the lake's complaints, sorted.
fn lake_rows(lake: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for day in std::fs::read_dir(lake.join("complaints")).expect("days") {
        for f in compact::data_files(&day.expect("day").path()).expect("files") {
            for b in compact::read_file(&f, None).expect("read") {
                let ids = compact::str_col(&b, "complaint_id").expect("ids");
                let body = compact::str_col(&b, "body").expect("body");
                for i in 0..b.num_rows() {
                    out.push((ids.value(i).to_string(), body.value(i).to_string()));
                }
            }
        }
    }
    out.sort();
    out
}

fn file_count(lake: &Path) -> usize {
    std::fs::read_dir(lake.join("complaints"))
        .expect("days")
        .map(|d| {
            compact::data_files(&d.expect("day").path())
                .expect("files")
                .len()
        })
        .sum()
}

#[test]
fn replay_with_other_batch_boundaries_overwrites() {
    let dir = tempdir("replay");
    let rows: Vec<Complaint> = (0..100).map(|n| complaint(n, None)).collect();
    for (i, chunk) in rows.chunks(30).enumerate() {
        write_complaints(&dir, chunk, &format!("p0o{}", i * 30)).expect("write");
    }
    let first = lake_rows(&dir);
    assert_eq!(first.len(), 100);
    // The replay starts at the same offset but cuts the batches elsewhere.
    for (i, chunk) in rows.chunks(17).enumerate() {
        write_complaints(&dir, chunk, &format!("p0o{}", i * 17)).expect("replay");
    }
    assert_eq!(lake_rows(&dir), first, "same rows, each once");
    // And a replay of a part only, in one batch.
    write_complaints(&dir, &rows[10..60], "p0o10").expect("partial replay");
    assert_eq!(lake_rows(&dir), first);
}

#[test]
fn newer_versions_replace_older_and_late_old_versions_are_ignored() {
    let dir = tempdir("versions");
    let v1: Vec<Complaint> = (0..10)
        .map(|n| complaint(n, Some("2026-11-01 10:00")))
        .collect();
    write_complaints(&dir, &v1, "a").expect("v1");
    let v2: Vec<Complaint> = (0..5)
        .map(|n| complaint(n, Some("2026-11-02 08:00")))
        .collect();
    write_complaints(&dir, &v2, "b").expect("v2");
    let rows = lake_rows(&dir);
    assert_eq!(rows.len(), 10);
    let newer = rows
        .iter()
        .filter(|r| r.1.ends_with("2026-11-02 08:00"))
        .count();
    assert_eq!(newer, 5, "{rows:?}");
    // The old version delivered again (a replay of the first batch) changes nothing.
    write_complaints(&dir, &v1, "a").expect("v1 again");
    assert_eq!(lake_rows(&dir), rows);
    // Both versions in one batch: the newer wins.
    let dir2 = tempdir("versions-one-batch");
    let both = vec![
        complaint(1, Some("2026-11-02 08:00")),
        complaint(1, Some("2026-11-01 10:00")),
    ];
    write_complaints(&dir2, &both, "x").expect("both");
    let r = lake_rows(&dir2);
    assert_eq!(r.len(), 1);
    assert!(r[0].1.ends_with("2026-11-02 08:00"));
}

#[test]
fn small_files_are_compacted_automatically_and_on_demand() {
    let dir = tempdir("compact");
    let rows: Vec<Complaint> = (0..60).map(|n| complaint(n, None)).collect();
    for (i, chunk) in rows.chunks(2).enumerate() {
        write_complaints(&dir, chunk, &format!("p0o{}", i * 2)).expect("write");
    }
    let days = std::fs::read_dir(dir.join("complaints"))
        .expect("days")
        .count();
    assert!(
        file_count(&dir) <= days * AUTO_COMPACT_FILES,
        "{} files",
        file_count(&dir)
    );
    assert_eq!(lake_rows(&dir).len(), 60);
    // A duplicate left behind by an older writer (same id in two files) is removed by compaction.
    let day = dir.join("complaints").join("day=2026-11-01");
    let stray = vec![complaint(0, None)];
    write_parquet(
        &day.join("part-legacy.parquet"),
        &complaints_to_batch(&stray).expect("b"),
    )
    .expect("stray");
    assert_eq!(lake_rows(&dir).len(), 61);
    let report = compact(&dir).expect("compact");
    assert_eq!(report.duplicates_dropped, 1);
    assert_eq!(report.rows, 60);
    assert_eq!(file_count(&dir), days, "one file per day");
    assert_eq!(lake_rows(&dir).len(), 60);
    // Compacting again changes nothing.
    let again = compact(&dir).expect("compact again");
    assert_eq!(again.files_before, again.files_after);
    assert_eq!(again.duplicates_dropped, 0);
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "duban-lake-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

/// The written schema of each lake table, as (name, arrow type, nullable).
fn written_schemas() -> Vec<(&'static str, datafusion::arrow::datatypes::SchemaRef)> {
    let state = crate::engine::rules::AnalyticState::new(&crate::config::DedupConfig::default());
    vec![
        ("complaints", crate::record::complaint_schema()),
        ("alerts", crate::record::alert_schema()),
        ("issues", issues_batch(&state, 5).expect("issues").schema()),
        (
            "complainants",
            complainants_batch(&crate::engine::people::Complainants::new(1))
                .expect("complainants")
                .schema(),
        ),
    ]
}

fn arrow_name(dt: &DataType) -> String {
    match dt {
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
            format!("Timestamp(Microsecond, {tz})")
        }
        other => format!("{other:?}"),
    }
}

#[test]
fn documented_schemas_match_the_written_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/lake");
    for (table, schema) in written_schemas() {
        let path = root.join(format!("{table}.json"));
        let written: Vec<(String, String, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), arrow_name(f.data_type()), f.is_nullable()))
            .collect();
        if std::env::var("DUBAN_BLESS_SCHEMAS").is_ok_and(|v| v == "1") {
            // Regenerate, keeping the descriptions already written.
            let old: serde_json::Value = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let desc = |n: &str| {
                old["columns"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["name"] == n))
                    .and_then(|c| c["description"].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let cols: Vec<serde_json::Value> = written
                .iter()
                .map(|(n, t, nullable)| {
                    serde_json::json!({"name": n, "arrow": t, "nullable": nullable, "description": desc(n)})
                })
                .collect();
            let mut doc = old.clone();
            if !doc.is_object() {
                doc = serde_json::json!({"table": table, "description": ""});
            }
            doc["columns"] = serde_json::Value::Array(cols);
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&doc).expect("json") + "\n",
            )
            .expect("write");
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
        let doc: serde_json::Value = serde_json::from_str(&text).expect("schema json parses");
        let documented: Vec<(String, String, bool)> = doc["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().expect("name").to_string(),
                    c["arrow"].as_str().expect("arrow").to_string(),
                    c["nullable"].as_bool().expect("nullable"),
                )
            })
            .collect();
        assert_eq!(
            documented, written,
            "{table}: schemas/lake/{table}.json vs the code"
        );
        if std::env::var("DUBAN_BLESS_SCHEMAS").is_ok_and(|v| v == "1") {
            continue;
        }
        for c in doc["columns"].as_array().expect("columns") {
            assert!(
                c["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{table}.{} has no description",
                c["name"]
            );
        }
    }
}

#[test]
fn a_snapshot_file_never_goes_back_in_the_changelog() {
    use crate::engine::rules::AnalyticState;
    let lake = tempdir("snapshot-seq");
    let config = crate::config::Config::default();
    let cx = crate::engine::Engine::rule_context(&config);
    let empty = AnalyticState::new(&config.dedup);
    let mut later = AnalyticState::new(&config.dedup);
    later.apply((0..3).map(|n| complaint(n, None)).collect(), &cx);
    let rows = |lake: &Path| -> usize {
        compact::read_file(&lake.join("issues/part-b2.parquet"), None)
            .expect("snapshot reads")
            .iter()
            .map(|b| b.num_rows())
            .sum()
    };
    let people = crate::engine::people::Complainants::new(1);
    let write = |state: &AnalyticState, seq: Option<u64>| {
        let parts = StateParts {
            blocks: vec![(2, state)],
            people: vec![(2, &people)],
            seqs: seq
                .map(|s| [(('b', 2), s), (('c', 2), s)].into_iter().collect())
                .unwrap_or_default(),
        };
        write_snapshots(&lake, &parts, 5).expect("snapshots written");
    };
    write(&later, Some(7));
    let issues = rows(&lake);
    assert!(issues > 0);
    assert_eq!(snapshot_seq(&lake.join("issues/part-b2.parquet")), Some(7));
    assert_eq!(
        snapshot_seq(&lake.join("complainants/part-c2.parquet")),
        Some(7)
    );
    // A worker still holding the partition at sequence 3 (its new owner wrote 7) leaves it be.
    write(&empty, Some(3));
    assert_eq!(rows(&lake), issues);
    assert_eq!(snapshot_seq(&lake.join("issues/part-b2.parquet")), Some(7));
    assert_eq!(
        snapshot_seq(&lake.join("complainants/part-c2.parquet")),
        Some(7)
    );
    // The same or a later sequence replaces it, and so does a state without a changelog (demo).
    write(&empty, Some(7));
    assert_eq!(rows(&lake), 0);
    write(&later, Some(9));
    write(&empty, None);
    assert_eq!(rows(&lake), 0);
    std::fs::remove_dir_all(&lake).ok();
}
