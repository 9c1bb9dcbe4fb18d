//! The analytic core's evaluation through the CLI: `duban sim year` writes an export with its
//! truth, `duban backfill` runs the engine over it, `duban score year|labels` reads the lake back.

use crate::common::*;
use std::path::Path;

fn backfill(input: &Path, out: &Path) {
    run_ok(
        duban()
            .args(["backfill", "--mapping"])
            .arg(repo("connectors/board-export.toml"))
            .arg("--input")
            .arg(input)
            .arg("--out")
            .arg(out),
    );
}

fn json(cmd: &mut std::process::Command) -> serde_json::Value {
    let (out, _) = run_ok(cmd);
    serde_json::from_str(&out).expect("the score is one JSON object")
}

fn share(v: &serde_json::Value) -> f64 {
    v["share"].as_f64().expect("a share")
}

#[test]
fn a_generated_year_backfilled_and_scored_against_its_truth() {
    let dir = tmpdir("sim-year");
    run_ok(
        duban()
            .args([
                "sim", "year", "--rows", "1500", "--days", "120", "--seed", "3", "--out",
            ])
            .arg(&dir),
    );
    backfill(&dir.join("export.csv"), &dir.join("out"));
    let s = json(
        duban()
            .args(["score", "year", "--json", "--truth"])
            .arg(&dir)
            .arg("--lake")
            .arg(dir.join("out")),
    );
    // Every row reached the lake and was matched to its truth.
    assert_eq!(
        (s["rows"].as_u64(), s["missing"].as_u64()),
        (Some(1500), Some(0)),
        "{s}"
    );
    for kind in ["place", "city", "template", "poster"] {
        let f1 = s["by_kind"][kind]["f1"].as_f64().expect(kind);
        assert!(
            (0.0..=1.0).contains(&f1) && s["by_kind"][kind]["items"].as_u64() > Some(0),
            "{kind}: {s}"
        );
    }
    assert!(s["issues"]["items"].as_u64() > Some(100), "{s}");
    // A resubmission days after its original is still linked (same issue or duplicate group).
    let near = &s["resubmissions"]["by_gap"]["01-30 days"];
    assert!(
        near["total"].as_u64() > Some(5) && share(near) >= 0.5,
        "{s}"
    );
    // Heavy posters are known (1500 rows / 307) and scored, crowd-sized issues are counted.
    assert!(s["heavy"]["posters"].as_u64() >= Some(5), "{s}");
    assert!(
        s["crowd_alerts"]["crowd_sized_issues"].as_u64() > Some(0),
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hot_messages_scored_against_the_hand_labels() {
    let shared = std::env::var("DUBAN_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo("../shared"));
    let hot = shared.join("data/teddy2020c/messages_hot.csv");
    assert!(
        hot.exists(),
        "{} is needed (set DUBAN_SHARED_DIR)",
        hot.display()
    );
    let out = tmpdir("hot-labels");
    backfill(&hot, &out);
    let s = json(
        duban()
            .args(["score", "labels", "--json", "--labels"])
            .arg(repo("eval/hot-issues.csv"))
            .arg("--lake")
            .arg(&out),
    );
    assert_eq!(
        s["missing"].as_u64(),
        Some(0),
        "every labeled message is in the lake: {s}"
    );
    assert!(s["labeled_issues"].as_u64() >= Some(150), "{s}");
    // The engine keeps issues pure and joins at least part of each large one.
    let top = &s["largest20"];
    assert!(
        top["precision"].as_f64() >= Some(0.9) && top["f1"].as_f64() >= Some(0.6),
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
