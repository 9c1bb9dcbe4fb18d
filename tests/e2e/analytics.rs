//! The analytic core on real citizen messages (../shared/data/teddy2020c, read at run time):
//! `duban backfill` over the message-board exports, judged by what the files are known to hold.

use crate::common::*;
use std::path::PathBuf;

fn shared_file(name: &str) -> PathBuf {
    let dir = std::env::var("DUBAN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo("../shared"));
    let p = dir.join("data/teddy2020c").join(name);
    assert!(
        p.exists(),
        "{} is needed (set DUBAN_SHARED_DIR)",
        p.display()
    );
    p
}

async fn backfill(name: &str) -> PathBuf {
    let cfg = test_config(&unique("backfill"));
    let out = tmpdir(name);
    duban::pipeline::backfill::run(
        &cfg,
        &shared_file(name),
        &repo("connectors/board-export.toml"),
        &out,
    )
    .await
    .expect("backfill runs");
    out.join("lake")
}

async fn rows(lake: &std::path::Path, sql: &str) -> Vec<Vec<String>> {
    let batches = duban::query::run_sql(lake, sql).await.expect("sql");
    let csv = duban::query::render(&batches, duban::query::Format::Csv).expect("csv");
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_messages_flag_the_prolific_poster_and_find_the_big_issues() {
    let lake = backfill("messages_hot.csv").await;
    // The poster with by far the most messages is flagged; flags stay rare.
    let top = rows(&lake, "select complainant, complaints, flagged from complainants order by complaints desc limit 1").await;
    assert_eq!(
        top[0][2], "true",
        "the most prolific poster ({} messages) is flagged",
        top[0][1]
    );
    let counts = rows(
        &lake,
        "select count(*), sum(case when flagged then 1 else 0 end) from complainants",
    )
    .await;
    let (people, flagged): (f64, f64) = (
        counts[0][0].parse().expect("n"),
        counts[0][1].parse().expect("n"),
    );
    assert!(
        flagged >= 1.0 && flagged <= people * 0.005,
        "{flagged} of {people} flagged"
    );
    // Several issues are raised by dozens of distinct people, each about one named place.
    let big = rows(&lake, "select issue_id, place, complainants from issues where merged_into is null and complainants >= 30 order by complainants desc").await;
    assert!(big.len() >= 2, "issues with 30+ complainants: {big:?}");
    for issue in &big {
        assert!(
            !issue[1].is_empty(),
            "a big issue names its place: {issue:?}"
        );
        let sql = format!(
            "select count(*) from complaints where issue_id = '{}' or issue_id in (select issue_id from issues where merged_into = '{}')",
            issue[0], issue[0]
        );
        let n: usize = rows(&lake, &sql).await[0][0].parse().expect("n");
        assert!(n >= 30, "its complaints are in the lake: {n}");
    }
    assert!(
        big[0][2].parse::<usize>().expect("n") >= 40,
        "the biggest issue has 40+ complainants: {big:?}"
    );
    // Every message of the file is in the lake once, with its issue.
    let c = rows(
        &lake,
        "select count(*), count(distinct complaint_id), count(issue_id) from complaints",
    )
    .await;
    assert_eq!(c[0][0], data_rows("messages_hot.csv").to_string());
    assert_eq!(c[0][0], c[0][1]);
    assert_eq!(c[0][0], c[0][2]);
}

/// The data rows of a shared CSV file (its records after the header).
fn data_rows(name: &str) -> usize {
    let mut n = 0;
    for r in csv::Reader::from_path(shared_file(name))
        .expect("readable CSV")
        .records()
    {
        r.expect("a CSV record");
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replied_messages_flag_nobody() {
    let lake = backfill("messages_replied.csv").await;
    let c = rows(
        &lake,
        "select count(*), sum(case when flagged then 1 else 0 end) from complainants",
    )
    .await;
    let people: usize = c[0][0].parse().expect("n");
    assert!(
        people > 1000 && people <= data_rows("messages_replied.csv"),
        "the file's complainants were read: {people}"
    );
    assert_eq!(
        c[0][1], "0",
        "nobody posts far more often than normal there"
    );
}
