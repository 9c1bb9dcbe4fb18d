//! Situation reports (`duban report`, scheduled in `duban run`): the numbers against independent
//! SQL over the same lake, a day without data, lifecycle alerts, the page in headless Chromium, and
//! the scheduler on the real broker with a clock the test moves.

use crate::common::*;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duban::report::schedule::{self, Clock, ManualClock, Outcome};
use duban::report::{Period, ReportSpec};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// One simulated month in a lake, built once for the whole binary (the demo: simulator,
/// connectors, engine, lake). Read only by the tests.
fn demo_lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async {
                let cfg = test_config(&unique("report-demo"));
                let out = tmpdir("report-demo");
                duban::pipeline::embedded::run_demo(
                    &cfg,
                    &cfg.connectors.dir,
                    sim_config(20261127, 1200),
                    &out,
                )
                .await
                .expect("demo runs");
                out.join("lake")
            })
        })
        .join()
        .expect("demo thread")
    })
}

fn day(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

/// A busy day of the simulated month: the day with the most complaints.
async fn busiest_day(lake: &Path) -> NaiveDate {
    let r = sql(
        lake,
        "select day, count(*) n from complaints group by day order by n desc, day limit 1",
    )
    .await;
    day(&r[0][0])
}

/// Rows of a query as text (NULL as empty).
async fn sql(lake: &Path, q: &str) -> Vec<Vec<String>> {
    let batches = duban::query::run_sql(lake, q).await.expect("sql");
    let mut out = Vec::new();
    for b in &batches {
        let cols: Vec<StringArray> = b
            .columns()
            .iter()
            .map(|c| {
                datafusion::arrow::compute::cast(c, &DataType::Utf8)
                    .expect("cast")
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("strings")
                    .clone()
            })
            .collect();
        for i in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|c| {
                        if datafusion::arrow::array::Array::is_null(c, i) {
                            String::new()
                        } else {
                            c.value(i).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

async fn count(lake: &Path, q: &str) -> u64 {
    sql(lake, q).await[0][0].parse().expect("a count")
}

/// `key → count` of a two-column query.
async fn counts(lake: &Path, q: &str) -> BTreeMap<String, u64> {
    sql(lake, q)
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().expect("count")))
        .collect()
}

/// The non-zero `field` (`count` or `previous`) of each row of a section, by key.
fn section_field(list: &Value, field: &str) -> BTreeMap<String, u64> {
    list.as_array()
        .expect("list")
        .iter()
        .filter(|c| c[field].as_u64().expect(field) > 0)
        .map(|c| {
            (
                c["key"].as_str().expect("key").to_string(),
                c[field].as_u64().expect(field),
            )
        })
        .collect()
}

async fn report(lake: &Path, period: Period, date: NaiveDate) -> (duban::report::Report, Value) {
    let spec = ReportSpec::containing(period, date);
    let r = duban::report::generate(lake, &spec, "2026-11-27T08:00:00+08:00")
        .await
        .expect("report renders");
    let json: Value = serde_json::from_str(&r.json).expect("report JSON");
    (r, json)
}

/// The complaints of a period, by a column, as independent SQL (NULL districts as 未注明).
async fn check_complaint_numbers(lake: &Path, j: &Value) {
    let (s, e) = (j["start"].as_str().unwrap(), j["end"].as_str().unwrap());
    let (ps, pe) = (
        j["previous_start"].as_str().unwrap(),
        j["previous_end"].as_str().unwrap(),
    );
    let range = format!("day >= '{s}' and day <= '{e}'");
    let prange = format!("day >= '{ps}' and day <= '{pe}'");
    let c = &j["complaints"];
    let total = count(
        lake,
        &format!("select count(*) from complaints where {range}"),
    )
    .await;
    assert!(total > 0, "the period has complaints");
    assert_eq!(c["total"].as_u64(), Some(total), "total");
    assert_eq!(
        c["previous_total"].as_u64(),
        Some(
            count(
                lake,
                &format!("select count(*) from complaints where {prange}")
            )
            .await
        ),
        "previous total"
    );
    assert_eq!(
        c["duplicates"].as_u64(),
        Some(
            count(
                lake,
                &format!(
                    "select count(*) from complaints where {range} and duplicate_of is not null"
                )
            )
            .await
        )
    );
    assert_eq!(
        c["complainants"].as_u64(),
        Some(
            count(
                lake,
                &format!("select count(distinct complainant) from complaints where {range}")
            )
            .await
        )
    );
    for (field, col) in [
        ("by_channel", "channel"),
        ("by_domain", "domain"),
        ("by_district", "coalesce(nullif(district, ''), '未注明')"),
    ] {
        let now = counts(
            lake,
            &format!("select {col}, count(*) from complaints where {range} group by 1"),
        )
        .await;
        let before = counts(
            lake,
            &format!("select {col}, count(*) from complaints where {prange} group by 1"),
        )
        .await;
        assert_eq!(section_field(&c[field], "count"), now, "{field}");
        assert_eq!(
            section_field(&c[field], "previous"),
            before,
            "{field} previous"
        );
        let sum: u64 = now.values().sum();
        assert_eq!(sum, total, "{field} adds up to the total");
        for row in c[field].as_array().unwrap() {
            assert_eq!(
                row["change"].as_i64().unwrap(),
                row["count"].as_i64().unwrap() - row["previous"].as_i64().unwrap()
            );
            assert!(
                !row["label"].as_str().unwrap().is_empty(),
                "every row has a label"
            );
        }
    }
    // Chinese labels for channels.
    let labels: Vec<&str> = c["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"12345热线") && labels.contains(&"皖事通"),
        "{labels:?}"
    );

    // Trend: 30 days (or the whole period, if longer) ending with it, each day as SQL counts it.
    let trend = j["trend"].as_array().expect("trend");
    let period_days = (day(e) - day(s)).num_days() as usize + 1;
    assert_eq!(trend.len(), period_days.max(30));
    assert_eq!(trend.last().unwrap()["day"].as_str(), Some(e));
    let from = trend[0]["day"].as_str().unwrap();
    let per_day = counts(
        lake,
        &format!(
            "select day, count(*) from complaints where day >= '{from}' and day <= '{e}' group by day"
        ),
    )
    .await;
    for p in trend {
        let d = p["day"].as_str().unwrap();
        assert_eq!(
            p["count"].as_u64(),
            Some(per_day.get(d).copied().unwrap_or(0)),
            "trend on {d}"
        );
    }
}

/// Issues merge one level deep in this lake; the SQL below resolves that level.
const ROOT: &str = "coalesce(i.merged_into, c.issue_id)";

async fn check_issues_and_focus(lake: &Path, j: &Value) {
    assert_eq!(
        count(
            lake,
            "select count(*) from issues i join issues r on i.merged_into = r.issue_id where r.merged_into is not null"
        )
        .await,
        0,
        "merges are one level deep (the SQL below relies on it)"
    );
    let (s, e) = (j["start"].as_str().unwrap(), j["end"].as_str().unwrap());
    let range = format!("c.day >= '{s}' and c.day <= '{e}'");
    let top = sql(
        lake,
        &format!(
            "select {ROOT} as root, count(distinct c.complainant) people, count(*) n from complaints c \
             left join issues i on i.issue_id = c.issue_id where {range} and c.issue_id is not null \
             group by 1 order by people desc, n desc, root limit 10"
        ),
    )
    .await;
    let hot = j["hot_issues"].as_array().expect("hot issues");
    assert_eq!(hot.len(), top.len());
    for (h, t) in hot.iter().zip(&top) {
        assert_eq!(h["issue_id"].as_str(), Some(t[0].as_str()));
        assert_eq!(h["complainants"].as_u64(), Some(t[1].parse().unwrap()));
        assert_eq!(h["complaints"].as_u64(), Some(t[2].parse().unwrap()));
        assert!(
            !h["title"].as_str().unwrap().is_empty(),
            "representative text"
        );
    }
    assert!(
        hot[0]["complainants"].as_u64().unwrap() >= 2,
        "the hottest issue has several complainants"
    );
    // Focus categories: the complaint's own flag or its issue's.
    for f in j["focus"].as_array().expect("focus") {
        let cat = f["category"].as_str().unwrap();
        let n = count(
            lake,
            &format!(
                "select count(*) from complaints c left join issues i on i.issue_id = c.issue_id \
                 left join issues r on r.issue_id = {ROOT} where {range} and \
                 (c.flags like '%{cat}%' or r.flags like '%{cat}%')"
            ),
        )
        .await;
        assert_eq!(f["complaints"].as_u64(), Some(n), "focus {cat}");
    }
    let cats: Vec<&str> = j["focus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["category"].as_str().unwrap())
        .collect();
    assert_eq!(cats, ["职责争议", "共性问题", "社会影响"]);
    assert!(
        j["focus"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["complaints"].as_u64() > Some(0)),
        "some complaints of the period are in a focus category"
    );
}

async fn check_alerts(lake: &Path, j: &Value) {
    let (s, e) = (j["start"].as_str().unwrap(), j["end"].as_str().unwrap());
    let end_next = day(e).succ_opt().unwrap();
    let a = &j["alerts"];
    let new = count(
        lake,
        &format!(
            "select count(*) from alerts where merged_into is null and raised_at >= '{s}T00:00:00+08:00' \
             and raised_at < '{end_next}T00:00:00+08:00'"
        ),
    )
    .await;
    assert_eq!(a["new_yellow"].as_u64(), Some(new), "new yellow alerts");
    let has_lifecycle = duban::query::lake_context(lake)
        .await
        .expect("lake")
        .table("alerts")
        .await
        .expect("alerts table")
        .schema()
        .has_column_with_unqualified_name("closed_at");
    let (open, overdue) = if has_lifecycle {
        let open = format!(
            "merged_into is null and raised_at < '{end_next}T00:00:00+08:00' and (closed_at is null or closed_at >= '{end_next}T00:00:00+08:00')"
        );
        (
            count(lake, &format!("select count(*) from alerts where {open}")).await,
            count(
                lake,
                &format!("select count(*) from alerts where {open} and deadline < date '{e}'"),
            )
            .await,
        )
    } else {
        let open = format!(
            "merged_into is null and raised_at < '{end_next}T00:00:00+08:00' and level <> 'green'"
        );
        assert!(a["escalated_red"].is_null() && a["closed_green"].is_null());
        assert!(
            j["notes"].to_string().contains("无生命周期数据"),
            "says there is no lifecycle data"
        );
        (
            count(lake, &format!("select count(*) from alerts where {open}")).await,
            count(
                lake,
                &format!("select count(*) from alerts where {open} and deadline < date '{e}'"),
            )
            .await,
        )
    };
    assert_eq!(a["open"].as_u64(), Some(open), "open alerts");
    assert_eq!(a["overdue"].as_u64(), Some(overdue), "overdue alerts");
    let units = a["by_unit"].as_array().unwrap();
    for (field, total) in [("new_yellow", new), ("open", open), ("overdue", overdue)] {
        let sum: u64 = units.iter().map(|u| u[field].as_u64().unwrap()).sum();
        assert_eq!(sum, total, "alerts by unit add up: {field}");
    }
}

fn check_documents(r: &duban::report::Report, j: &Value) {
    // The Markdown shows outside text escaped (issue 21, item 10), the page HTML-escaped.
    let md = duban::report::doc::md_escape;
    let html = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    for (doc, esc) in [
        (&r.html, &html as &dyn Fn(&str) -> String),
        (&r.markdown, &md),
    ] {
        assert!(doc.contains(&esc(j["title"].as_str().unwrap())));
        for heading in [
            "变化最大",
            "诉求受理",
            "热点问题",
            "高频投诉人",
            "预警督办",
            "三类重点诉求",
        ] {
            assert!(doc.contains(heading), "section {heading}");
        }
        let first = &j["hot_issues"][0];
        assert!(doc.contains(&esc(first["title"].as_str().unwrap())));
    }
    let total = j["complaints"]["total"].as_u64().unwrap();
    assert!(r.markdown.contains(&format!("受理诉求 **{total}** 件")));
    assert!(r.html.contains(&format!(
        "<b>{total}</b><span class=\"lbl\">受理诉求（件）</span>"
    )));
    // Self-contained: nothing is fetched at view time.
    let lower = r.html.to_lowercase();
    for bad in ["<script", "<link", "@import", "url(", "src=", "<img"] {
        assert!(!lower.contains(bad), "the page must not contain {bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_numbers_add_up_to_sql_over_the_same_lake() {
    let lake = demo_lake();
    let busy = busiest_day(lake).await;
    for period in [Period::Day, Period::Week] {
        let (r, j) = report(lake, period, busy).await;
        assert_eq!(j["has_data"], true);
        check_complaint_numbers(lake, &j).await;
        check_issues_and_focus(lake, &j).await;
        check_alerts(lake, &j).await;
        check_documents(&r, &j);
        assert!(
            !j["changes"].as_array().unwrap().is_empty(),
            "something changed against the previous period"
        );
    }
    // A month of 31 days: all its days on the trend, the same sums.
    let first = sql(lake, "select min(day) from complaints").await;
    let (_, j) = report(lake, Period::Month, day(&first[0][0])).await;
    check_complaint_numbers(lake, &j).await;
    let days = j["trend"].as_array().unwrap().len();
    assert!(days >= 30, "{days}");
    // Complainants with their topic focus: flagged ones first, each with a pseudonym.
    let (_, j) = report(lake, Period::Month, busy).await;
    let people = j["complainants"]["rows"].as_array().unwrap();
    let flagged_in_lake = count(
        lake,
        &format!(
            "select count(distinct c.complainant) from complaints c join complainants p on p.complainant = c.complainant \
             where p.flagged and c.day >= '{}' and c.day <= '{}'",
            j["start"].as_str().unwrap(),
            j["end"].as_str().unwrap()
        ),
    )
    .await;
    assert!(
        flagged_in_lake > 0,
        "the simulator plants frequent complainants"
    );
    assert_eq!(
        j["complainants"]["flagged_active"].as_u64(),
        Some(flagged_in_lake)
    );
    let top = &people[0];
    assert_eq!(top["flagged"], true);
    assert!(top["pseudonym"].as_str().unwrap().starts_with("p_"));
    let focus = top["focus_domain"].as_str().unwrap();
    let p = top["pseudonym"].as_str().unwrap();
    let top_domain = sql(
        lake,
        &format!(
            "select domain, count(*) n from complaints where complainant = '{p}' and day >= '{}' and day <= '{}' group by domain order by n desc, domain limit 1",
            j["trend"][0]["day"].as_str().unwrap(),
            j["end"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(focus, top_domain[0][0], "topic focus of {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_without_data_renders_and_says_so() {
    let lake = demo_lake();
    let last = sql(lake, "select max(day) from complaints").await;
    // Well after the simulated month: nothing received, no alert raised.
    let quiet = day(&last[0][0]) + chrono::Duration::days(90);
    let (r, j) = report(lake, Period::Day, quiet).await;
    assert_eq!(j["has_data"], false);
    assert_eq!(j["complaints"]["total"], 0);
    assert!(
        j["trend"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["count"] == 0)
    );
    assert!(r.html.contains("本期无数据") && r.markdown.contains("本期无数据"));
    // An empty lake folder (nothing written yet) renders the same way.
    let empty = tmpdir("report-empty-lake");
    let spec = ReportSpec::containing(Period::Day, quiet);
    let r2 = duban::report::generate(&empty, &spec, "2026-11-27T08:00:00+08:00")
        .await
        .expect("renders without tables");
    assert!(!r2.data.has_data);
    assert!(r2.html.contains("本期无数据"));
    assert!(r2.data.notes.iter().any(|n| n.contains("complaints")));
    let m = browser_check(&r.html, "no-data").await;
    assert_charts_drawn(&m, &j);
}

/// A lake whose alerts carry the lifecycle fields and an `alert_history` table, as the lifecycle
/// stage writes them: the board counts red, green, overdue and recurrent alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_alerts_are_counted() {
    let lake = tmpdir("report-lifecycle");
    struct A {
        id: &'static str,
        level: &'static str,
        unit: &'static str,
        raised: &'static str,
        deadline: &'static str,
        escalated: Option<&'static str>,
        closed: Option<&'static str>,
        recurrence_of: Option<&'static str>,
        merged: Option<&'static str>,
    }
    let alerts = [
        // Raised in the week, still yellow.
        A {
            id: "A1",
            level: "yellow",
            unit: "甲单位",
            raised: "2026-11-17T09:00:00+08:00",
            deadline: "2026-11-24",
            escalated: None,
            closed: None,
            recurrence_of: None,
            merged: None,
        },
        // Raised earlier, escalated to red in the week, past its deadline.
        A {
            id: "A2",
            level: "red",
            unit: "甲单位",
            raised: "2026-11-02T09:00:00+08:00",
            deadline: "2026-11-09",
            escalated: Some("2026-11-18T10:00:00+08:00"),
            closed: None,
            recurrence_of: None,
            merged: None,
        },
        // Raised earlier, closed green in the week.
        A {
            id: "A3",
            level: "green",
            unit: "乙单位",
            raised: "2026-11-03T09:00:00+08:00",
            deadline: "2026-11-10",
            escalated: None,
            closed: Some("2026-11-19T16:00:00+08:00"),
            recurrence_of: None,
            merged: None,
        },
        // A recurrence raised in the week.
        A {
            id: "A4",
            level: "yellow",
            unit: "乙单位",
            raised: "2026-11-20T09:00:00+08:00",
            deadline: "2026-11-27",
            escalated: None,
            closed: None,
            recurrence_of: Some("A3"),
            merged: None,
        },
        // Closed after the week: open (and overdue) at its end.
        A {
            id: "A5",
            level: "green",
            unit: "丙单位",
            raised: "2026-11-01T09:00:00+08:00",
            deadline: "2026-11-08",
            escalated: None,
            closed: Some("2026-11-25T09:00:00+08:00"),
            recurrence_of: None,
            merged: None,
        },
        // Merged into A1: not counted on its own.
        A {
            id: "A6",
            level: "yellow",
            unit: "甲单位",
            raised: "2026-11-17T10:00:00+08:00",
            deadline: "2026-11-24",
            escalated: None,
            closed: None,
            recurrence_of: None,
            merged: Some("A1"),
        },
        // Raised after the week: not yet on this board.
        A {
            id: "A7",
            level: "yellow",
            unit: "丙单位",
            raised: "2026-11-23T09:00:00+08:00",
            deadline: "2026-11-30",
            escalated: None,
            closed: None,
            recurrence_of: None,
            merged: None,
        },
    ];
    let ts = |s: Option<&str>| {
        s.map(|s| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .timestamp_micros()
        })
    };
    let date = |s: &str| (day(s) - day("1970-01-01")).num_days() as i32;
    let tz = Some("+08:00".into());
    let schema = Arc::new(Schema::new(vec![
        Field::new("alert_id", DataType::Utf8, false),
        Field::new("trigger", DataType::Utf8, false),
        Field::new("level", DataType::Utf8, false),
        Field::new("subject", DataType::Utf8, false),
        Field::new("unit", DataType::Utf8, false),
        Field::new("deadline", DataType::Date32, false),
        Field::new(
            "raised_at",
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            false,
        ),
        Field::new(
            "escalated_at",
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            true,
        ),
        Field::new(
            "closed_at",
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            true,
        ),
        Field::new("recurrence_of", DataType::Utf8, true),
        Field::new("recurrent", DataType::Boolean, false),
        Field::new("merged_into", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(alerts.iter().map(|a| a.id))),
        Arc::new(StringArray::from_iter_values(
            alerts.iter().map(|_| "crowd_concentration"),
        )),
        Arc::new(StringArray::from_iter_values(
            alerts.iter().map(|a| a.level),
        )),
        Arc::new(StringArray::from_iter_values(alerts.iter().map(|a| a.id))),
        Arc::new(StringArray::from_iter_values(alerts.iter().map(|a| a.unit))),
        Arc::new(Date32Array::from_iter_values(
            alerts.iter().map(|a| date(a.deadline)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter(alerts.iter().map(|a| ts(Some(a.raised))))
                .with_timezone("+08:00"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter(alerts.iter().map(|a| ts(a.escalated)))
                .with_timezone("+08:00"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter(alerts.iter().map(|a| ts(a.closed)))
                .with_timezone("+08:00"),
        ),
        Arc::new(StringArray::from_iter(
            alerts.iter().map(|a| a.recurrence_of),
        )),
        Arc::new(BooleanArray::from_iter(
            alerts.iter().map(|a| Some(a.recurrence_of.is_some())),
        )),
        Arc::new(StringArray::from_iter(alerts.iter().map(|a| a.merged))),
    ];
    duban::lake::write_parquet(
        &lake.join("alerts/alerts.parquet"),
        &RecordBatch::try_new(schema, cols).expect("batch"),
    )
    .expect("alerts written");
    let history = [
        ("A2", 2u64, "2026-11-18T10:00:00+08:00", "escalate"),
        ("A3", 2, "2026-11-19T16:00:00+08:00", "close"),
        ("A1", 1, "2026-11-17T09:00:00+08:00", "raise"),
        ("A5", 2, "2026-11-25T09:00:00+08:00", "close"),
    ];
    let hschema = Arc::new(Schema::new(vec![
        Field::new("alert_id", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            false,
        ),
        Field::new("action", DataType::Utf8, false),
    ]));
    let hcols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(history.iter().map(|h| h.0))),
        Arc::new(UInt64Array::from_iter_values(history.iter().map(|h| h.1))),
        Arc::new(
            TimestampMicrosecondArray::from_iter(history.iter().map(|h| ts(Some(h.2))))
                .with_timezone("+08:00"),
        ),
        Arc::new(StringArray::from_iter_values(history.iter().map(|h| h.3))),
    ];
    duban::lake::write_parquet(
        &lake.join("alert_history/alert_history.parquet"),
        &RecordBatch::try_new(hschema, hcols).expect("batch"),
    )
    .expect("history written");

    // The week of Monday 2026-11-16 to Sunday 2026-11-22.
    let (r, j) = report(&lake, Period::Week, day("2026-11-18")).await;
    let a = &j["alerts"];
    assert_eq!(a["lifecycle"], true);
    // Expected from the fixture's own fields (merged alerts and later ones excluded).
    let (s, e) = ("2026-11-16", "2026-11-22");
    let live: Vec<&A> = alerts
        .iter()
        .filter(|x| x.merged.is_none() && x.raised[..10] <= *e)
        .collect();
    let within = |t: Option<&str>| t.is_some_and(|t| &t[..10] >= s && &t[..10] <= e);
    let open: Vec<&&A> = live
        .iter()
        .filter(|x| x.closed.is_none_or(|c| &c[..10] > e))
        .collect();
    let expect_new = live.iter().filter(|x| within(Some(x.raised))).count() as u64;
    let expect_red = live.iter().filter(|x| within(x.escalated)).count() as u64;
    let expect_green = live.iter().filter(|x| within(x.closed)).count() as u64;
    let expect_overdue = open.iter().filter(|x| x.deadline < e).count() as u64;
    let expect_recur = live
        .iter()
        .filter(|x| within(Some(x.raised)) && x.recurrence_of.is_some())
        .count() as u64;
    assert_eq!(a["new_yellow"].as_u64(), Some(expect_new));
    assert_eq!(a["escalated_red"].as_u64(), Some(expect_red));
    assert_eq!(a["closed_green"].as_u64(), Some(expect_green));
    assert_eq!(a["open"].as_u64(), Some(open.len() as u64));
    assert_eq!(a["overdue"].as_u64(), Some(expect_overdue));
    assert_eq!(a["recurrences"].as_u64(), Some(expect_recur));
    assert_eq!(a["recurrent"][0]["recurrence_of"], "A3");
    // And the same numbers through SQL over the fixture lake.
    assert_eq!(
        count(&lake, "select count(*) from alerts where merged_into is null and escalated_at >= '2026-11-16T00:00:00+08:00' and escalated_at < '2026-11-23T00:00:00+08:00'").await,
        expect_red
    );
    // Per unit: 甲 has the new yellow and the escalated red; 乙 the green and the recurrence.
    let unit = |name: &str| {
        a["by_unit"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("unit {name} on the board"))
    };
    assert_eq!(unit("甲单位")["escalated_red"], 1);
    assert_eq!(unit("甲单位")["new_yellow"], 1);
    assert_eq!(unit("乙单位")["closed_green"], 1);
    assert_eq!(unit("丙单位")["overdue"], 1);
    let units_sum: u64 = a["by_unit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["overdue"].as_u64().unwrap())
        .sum();
    assert_eq!(units_sum, expect_overdue);
    // History: actions inside the week only.
    assert_eq!(a["actions"]["escalate"], 1);
    assert_eq!(a["actions"]["close"], 1);
    assert_eq!(a["actions"]["raise"], 1);
    assert!(!j["notes"].to_string().contains("无生命周期数据"));
    assert!(r.html.contains("升级红色") && r.markdown.contains("前次预警 A3"));
}

/// Measure a page in headless Chromium with tests/browser/check.mjs (playwright-core driving
/// Debian's /usr/bin/chromium): `target` is `--file PATH` or `--url URL`. Fails (never skips) when
/// node, the npm packages or Chromium are missing. Reusable by other areas' browser tests.
pub(crate) async fn browser_measure(target: (&str, &str), width: u32, screenshot: &Path) -> Value {
    let runner = repo("tests/browser");
    assert!(
        runner.join("node_modules/playwright-core").is_dir(),
        "tests/browser needs its packages: run `npm ci` in tests/browser (scripts/test.sh does)"
    );
    let mut cmd = std::process::Command::new("node");
    cmd.arg(runner.join("check.mjs"))
        .args([target.0, target.1])
        .arg("--screenshot")
        .arg(screenshot)
        .args(["--width", &width.to_string()]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("joins")
        .expect("node runs (install nodejs)");
    assert!(
        out.status.success(),
        "browser check failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).expect("measurements JSON");
    let png = std::fs::read(screenshot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    m
}

/// The report page at a desktop and two phone widths: nothing fetched, no errors, no sideways
/// scrolling, no text overflowing. Returns the desktop measurements.
async fn browser_check(html: &str, name: &str) -> Value {
    let dir = tmpdir(&format!("report-browser-{name}"));
    let page = dir.join("report.html");
    std::fs::write(&page, html).expect("page written");
    let mut results = Vec::new();
    for width in [1280, 390, 320] {
        let shot = dir.join(format!("report-{width}.png"));
        let m = browser_measure(("--file", page.to_str().expect("utf-8 path")), width, &shot).await;
        eprintln!("screenshot: {}", shot.display());
        assert_eq!(m["requests"], serde_json::json!([]), "nothing fetched");
        assert_eq!(m["console_errors"], serde_json::json!([]), "no errors");
        assert!(
            m["document"]["scrollWidth"].as_u64() <= m["document"]["clientWidth"].as_u64(),
            "the page does not scroll sideways at {width}px: {}",
            m["document"]
        );
        assert_eq!(
            m["overflow"],
            serde_json::json!([]),
            "no text overflows at {width}px"
        );
        results.push(m);
    }
    results.swap_remove(0)
}

fn svg<'a>(m: &'a Value, id: &str) -> &'a Value {
    m["svgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("chart {id} is on the page"))
}

/// Every chart is drawn with one bar per non-zero number and one point per day of the trend.
fn assert_charts_drawn(m: &Value, j: &Value) {
    let trend = svg(m, "chart-trend");
    assert_eq!(
        trend["marks"]["point"].as_u64(),
        Some(j["trend"].as_array().unwrap().len() as u64)
    );
    assert_eq!(trend["marks"]["trend-line"], 1);
    for (id, field) in [
        ("chart-channel", "by_channel"),
        ("chart-domain", "by_domain"),
        ("chart-district", "by_district"),
    ] {
        let rows = j["complaints"][field].as_array().unwrap();
        let nonzero = rows
            .iter()
            .filter(|r| r["count"].as_u64() > Some(0))
            .count() as u64;
        let c = svg(m, id);
        assert_eq!(
            c["marks"]["bar"].as_u64().unwrap_or(0),
            nonzero,
            "{id}: drawn bars"
        );
        assert_eq!(
            c["tags"]["rect"].as_u64().unwrap_or(0),
            rows.len() as u64,
            "{id}: one bar per row"
        );
        assert!(
            c["width"].as_f64() > Some(200.0) && c["height"].as_f64() > Some(20.0),
            "{id} has a size"
        );
    }
    let a = &j["alerts"];
    let nonzero = [
        "new_yellow",
        "escalated_red",
        "closed_green",
        "open",
        "overdue",
    ]
    .iter()
    .filter(|k| a[**k].as_u64().unwrap_or(0) > 0)
    .count() as u64;
    assert_eq!(
        svg(m, "chart-alerts")["marks"]["bar"].as_u64().unwrap_or(0),
        nonzero
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_page_renders_in_chromium_with_charts_and_no_overflow() {
    let lake = demo_lake();
    let busy = busiest_day(lake).await;
    for period in [Period::Day, Period::Week] {
        let (r, j) = report(lake, period, busy).await;
        let m = browser_check(&r.html, period.as_str()).await;
        assert_eq!(m["title"].as_str(), j["title"].as_str());
        assert_charts_drawn(&m, &j);
        let bars = svg(&m, "chart-domain")["marks"]["bar"].as_u64().unwrap();
        assert!(bars >= 3, "a busy day spans several domains: {bars}");
    }
    // Without Chromium the check fails loudly (never a silent pass).
    let out = std::process::Command::new("node")
        .arg(repo("tests/browser/check.mjs"))
        .args(["--file", "/dev/null"])
        .env("DUBAN_CHROMIUM", "/nonexistent/chromium")
        .output()
        .expect("node runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Chromium not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_command_writes_three_files_and_names_a_missing_lake() {
    let lake = demo_lake();
    let busy = busiest_day(lake).await;
    let out = tmpdir("report-cli");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_duban"))
        .args([
            "report",
            "--date",
            &busy.to_string(),
            "--period",
            "week",
            "--lake",
        ])
        .arg(lake)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("duban runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let id = ReportSpec::containing(Period::Week, busy).id();
    for ext in ["html", "md", "json"] {
        assert!(out.join(format!("{id}.{ext}")).is_file(), "{id}.{ext}");
    }
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(j["report_id"], id.as_str());
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_duban"))
        .args([
            "report",
            "--date",
            "2026-11-20",
            "--lake",
            "/nonexistent/lake",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("duban runs");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: lake folder /nonexistent/lake does not exist")),
        "{err}"
    );
}

fn local(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

/// Report ids on the topic, with how often each was published.
fn topic_ids(topic: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (k, _) in read_all(topic) {
        *out.entry(String::from_utf8(k.expect("keyed")).expect("utf8"))
            .or_default() += 1;
    }
    out
}

/// Poll the topic until it holds `want` ids (each once), or fail after the deadline.
async fn wait_for_ids(topic: &str, want: &[&str]) {
    let start = Instant::now();
    loop {
        let have = topic_ids(topic);
        if have.len() >= want.len() {
            let expect: BTreeMap<String, usize> =
                want.iter().map(|id| (id.to_string(), 1)).collect();
            assert_eq!(have, expect, "each report on the topic exactly once");
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "reports on {topic}: {have:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_publishes_catches_up_after_downtime_and_never_repeats() {
    let lake = demo_lake().to_path_buf();
    let prefix = unique("report-sched");
    let mut cfg = test_config(&prefix);
    let data = tmpdir("report-sched");
    cfg.data_dir = Some(data.clone());
    cfg.reports.schedule = "0 30 7 * * *".into();
    cfg.reports.time_zone = "Asia/Shanghai".into();
    let folder = data.join("reports");
    let topic = schedule::reports_topic(&cfg);
    let bus = Arc::new(duban::bus::KafkaBus::connect(&cfg.kafka).expect("producer"));
    let clock = ManualClock::new(local("2026-11-18T08:00:00+08:00"));

    let start = |clock: ManualClock| {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (cfg, bus, lake) = (cfg.clone(), bus.clone(), lake.clone());
        let task = tokio::spawn(async move {
            schedule::run(&cfg, bus, lake, clock, async move {
                let _ = rx.await;
            })
            .await
        });
        (task, tx)
    };

    // First start after 07:30: the report on the previous day comes at once.
    let (task, stop) = start(clock.clone());
    wait_for_ids(&topic, &["day-2026-11-17"]).await;
    // The next firing: 07:30 the following day.
    clock.set(local("2026-11-19T07:30:00+08:00"));
    wait_for_ids(&topic, &["day-2026-11-17", "day-2026-11-18"]).await;
    stop.send(()).expect("scheduler running");
    task.await.expect("joins").expect("scheduler stops cleanly");

    // Down for three days; on start it catches up every missed day.
    clock.set(local("2026-11-22T09:00:00+08:00"));
    let (task, stop) = start(clock.clone());
    let all = [
        "day-2026-11-17",
        "day-2026-11-18",
        "day-2026-11-19",
        "day-2026-11-20",
        "day-2026-11-21",
    ];
    wait_for_ids(&topic, &all).await;
    stop.send(()).expect("scheduler running");
    task.await.expect("joins").expect("scheduler stops cleanly");

    // The folder has the same reports, each stamped with the firing that made it.
    let folder_reports = schedule::read_folder(&folder).expect("folder");
    assert_eq!(
        folder_reports
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        all
    );
    assert_eq!(
        folder_reports["day-2026-11-20"].scheduled_for.as_deref(),
        Some("2026-11-21T07:30:00+08:00")
    );
    for id in all {
        assert!(
            folder.join(format!("{id}.html")).is_file()
                && folder.join(format!("{id}.md")).is_file()
        );
    }
    let d17 = &folder_reports["day-2026-11-17"];
    assert_eq!(
        d17.complaints.total,
        count(
            &lake,
            "select count(*) from complaints where day = '2026-11-17'"
        )
        .await
    );

    // The topic carries the whole report: numbers, Markdown and the page.
    let msgs = read_all(&topic);
    let (_, v) = msgs
        .iter()
        .find(|(k, _)| k.as_deref() == Some(b"day-2026-11-20".as_slice()))
        .expect("on the topic");
    let m: schedule::ReportMessage = serde_json::from_slice(v).expect("report message");
    assert_eq!(&m.data, &folder_reports["day-2026-11-20"]);
    assert_eq!(
        m.html.as_deref(),
        Some(
            std::fs::read_to_string(folder.join("day-2026-11-20.html"))
                .unwrap()
                .as_str()
        )
    );
    assert!(m.markdown.contains("# 诉求督办态势日报"));

    // Another start at the same time produces nothing.
    let again = schedule::run_due(&cfg, &bus, &lake, clock.now())
        .await
        .expect("pass");
    assert_eq!(again, vec![]);
    assert_eq!(topic_ids(&topic).len(), all.len());

    // A report lost from the folder is restored from the topic, not produced or published again.
    let before = std::fs::read_to_string(folder.join("day-2026-11-19.json")).unwrap();
    for ext in ["html", "md", "json"] {
        std::fs::remove_file(folder.join(format!("day-2026-11-19.{ext}"))).unwrap();
    }
    let repaired = schedule::run_due(&cfg, &bus, &lake, clock.now())
        .await
        .expect("pass");
    assert_eq!(repaired, vec![Outcome::Restored("day-2026-11-19".into())]);
    assert_eq!(
        std::fs::read_to_string(folder.join("day-2026-11-19.json")).unwrap(),
        before
    );
    assert!(folder.join("day-2026-11-19.html").is_file());
    let counts = topic_ids(&topic);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}
