//! `duban train`, `duban eval` and `duban classify` as a user runs them: CSV in, model file,
//! JSON out; with neighbour votes (the default) and without (`--no-knn`). Small generated data,
//! so the dev-profile binary trains in seconds (quality on the real messages is measured in the
//! lib tests).

use crate::common::{duban, run_ok, run_ok_with_input, tmpdir};

/// Three topics with their own words, sharing filler words; `offset` varies the combinations so
/// held-out rows are not copies of training rows.
fn rows(n: usize, offset: usize) -> String {
    let topics = [
        ("路灯", ["路灯不亮", "灯杆倾斜", "夜间照明", "灯泡损坏"]),
        ("工资", ["拖欠工资", "克扣薪水", "加班费", "劳动合同"]),
        ("噪音", ["施工噪音", "夜间扰民", "广场舞", "装修噪声"]),
    ];
    let filler = ["请尽快处理", "已经很久了", "希望有关部门", "市民反映"];
    let mut csv = String::from("title,body,label\n");
    for i in 0..n {
        let (label, words) = &topics[i % 3];
        let j = i / 3 + offset;
        csv.push_str(&format!(
            ",{}{}，{}{},{label}\n",
            filler[j % 4],
            words[j % 4],
            words[(j / 4 + 1) % 4],
            filler[(j + 1) % 4]
        ));
    }
    csv
}

#[test]
fn train_eval_and_classify_with_and_without_neighbour_votes() {
    let dir = tmpdir("classify-cli");
    let train = dir.join("train.csv");
    let test = dir.join("test.csv");
    std::fs::write(&train, rows(120, 0)).expect("train.csv");
    std::fs::write(&test, rows(30, 7)).expect("test.csv");
    for knn in [false, true] {
        let model = dir.join(format!("m-{knn}.model"));
        let mut cmd = duban();
        cmd.args(["train", "--data"])
            .arg(&train)
            .arg("--out")
            .arg(&model);
        if !knn {
            cmd.arg("--no-knn");
        }
        let (_, stderr) = run_ok(&mut cmd);
        assert_eq!(
            stderr.contains("neighbour index of 120 rows"),
            knn,
            "{stderr}"
        );

        let (stdout, _) = run_ok(
            duban()
                .args(["eval", "--json", "--model"])
                .arg(&model)
                .arg("--data")
                .arg(&test),
        );
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
        assert!(v["accuracy"].as_f64().expect("accuracy") >= 0.9, "{v}");
        assert!(v["macro_f1"].as_f64().expect("macro_f1") >= 0.9, "{v}");
        for label in ["路灯", "工资", "噪音"] {
            assert!(v["per_class"][label]["f1"].is_number(), "{label}: {v}");
        }

        let (stdout, stderr) = run_ok_with_input(
            duban().args(["classify", "--model"]).arg(&model),
            "{\"title\":\"\",\"body\":\"小区的路灯不亮好几天了\"}\n\
             not json\n\
             {\"title\":\"工资\",\"body\":5}\n\
             {\"id\":\"x\"}\n\
             {\"title\":\"拖欠工资\",\"body\":\"公司三个月没发工资\"}\n",
        );
        // Bad lines are skipped, each named by number and field on stderr.
        for want in [
            "stdin line 2: not a JSON object",
            "stdin line 3: field `body` is not a string",
            "stdin line 4: neither `title` nor `body`",
            "3 lines skipped",
        ] {
            assert!(stderr.contains(want), "{want}: {stderr}");
        }
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["label"], "路灯", "{lines:?}");
        assert_eq!(lines[1]["label"], "工资", "{lines:?}");
        for l in &lines {
            let c = l["confidence"].as_f64().expect("confidence");
            assert!(c > 0.0 && c <= 1.0, "{l}");
        }
    }

    // Cross-validation with neighbour votes: every fold indexes its own training rows.
    let (stdout, _) = run_ok(
        duban()
            .args(["eval", "--json", "--cv", "3", "--data"])
            .arg(&train),
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert!(v["macro_f1"].as_f64().expect("macro_f1") >= 0.9, "{v}");
}

#[test]
fn a_default_model_trained_on_the_bureaus_own_lake_without_labels() {
    // A bureau without labeled history: its lake's complaints are the unlabeled messages of the
    // weak ten-domain model (README, "Default ten-domain model without labels").
    let dir = tmpdir("classify-weak-lake");
    run_ok(
        duban()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["demo", "--size", "300", "--out"])
            .arg(&dir),
    );
    let lake = dir.join("lake");
    let (csv, _) = run_ok(
        duban()
            .args(["sql", "--format", "csv", "--lake"])
            .arg(&lake)
            .arg("select title, body from complaints"),
    );
    let unlabeled = dir.join("unlabeled.csv");
    std::fs::write(&unlabeled, &csv).expect("unlabeled.csv");
    let model = dir.join("weak.model");
    let (_, stderr) = run_ok(
        duban()
            .args(["train", "--weak", "--unlabeled"])
            .arg(&unlabeled)
            .arg("--out")
            .arg(&model),
    );
    let (rows, _) = run_ok(
        duban()
            .args(["sql", "--format", "json", "--lake"])
            .arg(&lake)
            .arg("select title, body, domain from complaints"),
    );
    let n = rows.lines().count();
    assert!(n >= 250, "{n} complaints in the lake");
    assert!(
        stderr.contains(&format!("weak supervision: {n} unlabeled messages")),
        "{stderr}"
    );
    // Its labels agree with the engine's vocabulary scorer on most complaints both classify
    // (measured: 288 of 309 on this demo's 315; the demo's texts are written from the same
    // vocabulary), and it leaves few unclassified (none here).
    let (labelled, _) = run_ok_with_input(duban().args(["classify", "--model"]).arg(&model), &rows);
    let (mut both, mut agree, mut unclassified) = (0, 0, 0);
    for line in labelled.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        if v["label"] == "unclassified" {
            unclassified += 1;
        } else if v["domain"] != "unclassified" {
            both += 1;
            agree += usize::from(v["label"] == v["domain"]);
        }
    }
    eprintln!("{agree} of {both} agree, {unclassified} of {n} unclassified");
    assert_eq!(labelled.lines().count(), n);
    assert!(unclassified * 10 < n, "{unclassified} of {n} unclassified");
    assert!(agree * 10 >= both * 8, "{agree} of {both} agree");
}

#[test]
fn label_suggest_and_retraining_from_the_lakes_corrections() {
    // A bureau's lake (a demo run), its complaints as the labeling pool.
    let dir = tmpdir("classify-learn");
    run_ok(
        duban()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["demo", "--size", "200", "--out"])
            .arg(&dir),
    );
    let lake = dir.join("lake");
    let (csv, _) = run_ok(
        duban()
            .args(["sql", "--format", "csv", "--lake"])
            .arg(&lake)
            .arg("select complaint_id as id, title, body, domain, issue_id from complaints order by complaint_id"),
    );
    let pool = dir.join("pool.csv");
    std::fs::write(&pool, &csv).expect("pool.csv");
    let ids: Vec<String> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    let suggest = |extra: &[&str]| {
        let (out, err) = run_ok(
            duban()
                .args(["label", "suggest", "--n", "8", "--data"])
                .arg(&pool)
                .args(extra),
        );
        (out.lines().map(str::to_string).collect::<Vec<_>>(), err)
    };
    // First round (no model): diversity alone, n distinct ids of the pool, the same every time.
    let (first, err) = suggest(&[]);
    assert!(err.contains("diversity alone"), "{err}");
    assert_eq!(first.len(), 8);
    assert!(first.iter().all(|i| ids.contains(i)), "{first:?}");
    let distinct: std::collections::BTreeSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), 8);
    assert_eq!(suggest(&[]).0, first, "deterministic for a seed");
    // Rows already labeled are never suggested again; with a model: uncertainty + diversity.
    let labeled = dir.join("labeled.csv");
    std::fs::write(&labeled, format!("id\n{}\n{}\n", first[0], first[1])).expect("labeled.csv");
    let model = dir.join("weak.model");
    run_ok(duban().args(["train", "--weak", "--out"]).arg(&model));
    let (second, err) = suggest(&[
        "--exclude",
        labeled.to_str().expect("utf-8 path"),
        "--model",
        model.to_str().expect("utf-8 path"),
    ]);
    assert!(err.contains("uncertainty + diversity"), "{err}");
    assert_eq!(second.len(), 8);
    assert!(
        !second.contains(&first[0]) && !second.contains(&first[1]),
        "{second:?}"
    );

    // Corrections in the lake's labels table → the retraining job publishes a version.
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00").expect("t");
    let corrections = first
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, id)| duban::labels::Label {
            label_id: format!("l{i}"),
            target: duban::labels::LabelTarget::Complaint,
            complaint_id: Some(id.clone()),
            issue_id: None,
            old_domain: None,
            domain: "生态环境".into(),
            actor: "tester".into(),
            role: "supervisor".into(),
            at,
            reason: String::new(),
        });
    duban::labels::write_lake(&lake, &duban::labels::latest(corrections)).expect("labels table");
    let models = dir.join("models");
    let (_, err) = run_ok(
        duban()
            .args(["train", "--from-lake"])
            .arg(&lake)
            .arg("--publish")
            .arg(&models),
    );
    // Each corrected complaint is a labeled row (a complaint with several versions, once each).
    let n: usize = err
        .split("lake: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!((4..=8).contains(&n), "{err}");
    let current = std::fs::read_to_string(models.join("CURRENT")).expect("CURRENT");
    let version = current.trim();
    assert!(err.contains(&format!("published {version}")), "{err}");
    let (out, _) = run_ok_with_input(
        duban()
            .args(["classify", "--model"])
            .arg(models.join(format!("{version}.model"))),
        "{\"title\":\"\",\"body\":\"工厂夜里偷排废水，河水发黑发臭\"}\n",
    );
    assert!(out.contains("生态环境"), "{out}");
}
