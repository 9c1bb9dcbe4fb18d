//! The supervision board (`duban serve`) on Kafka, in headless Chromium: the lifecycle process
//! (`run_kafka`) owns the board topic, the board server follows it and sends actions to the
//! actions topic through the lifecycle API. tests/browser/board.mjs plays the supervisor and a
//! unit; the test checks the page's report and, independently, the board topic.

use crate::common::{read_all, repo, test_config, tmpdir, unique};
use chrono::{DateTime, FixedOffset, NaiveDate};
use duban::lifecycle::clock::Clock;
use duban::record::{
    Alert, AlertLevel, AlertStatus, AlertTrigger, Complaint, TransitionKind, alert_id,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const UNIT_A: &str = "测试甲区城市管理执法大队";
const UNIT_B: &str = "测试乙区市场监管所";
const SUP: &str = "sup-token-board";
const TOKEN_A: &str = "unit-a-token-board";
const TOKEN_B: &str = "unit-b-token-board";

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("time")
}

fn day(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

/// `n` complaints about one place, one per complainant, plus `repeat` more by the first person.
fn complaints(tag: &str, district: &str, issue: &str, n: usize, repeat: usize) -> Vec<Complaint> {
    (0..n + repeat)
        .map(|i| {
            let person = if i < n { i } else { 0 };
            let source = format!("{tag}-{i}");
            let received = t(&format!(
                "2026-11-{:02}T09:{:02}:00+08:00",
                17 + i % 4,
                i % 60
            ));
            Complaint {
                fetched_at: t("2026-11-20T09:30:00+08:00"),
                complainant: Some(format!("P-{tag}-{person:02}")),
                phone_masked: Some("*******0000".into()),
                district: Some(district.into()),
                domain: "城市管理".into(),
                domain_confidence: 0.9,
                content_hash: format!("h-{tag}-{i}"),
                place: Some(format!("{tag}路口")),
                issue_id: Some(issue.into()),
                ..Complaint::new(
                    "hotline",
                    &source,
                    received,
                    &format!("{tag}路口占道经营{i}"),
                    &format!("{tag}路口每天傍晚占道经营，油烟扰民，第{i}次反映。"),
                )
            }
        })
        .collect()
}

fn engine_alert(issue: &str, district: &str, unit: &str, rows: &[Complaint]) -> Alert {
    let raised = t("2026-11-20T09:40:00+08:00");
    let people: std::collections::BTreeSet<_> = rows.iter().map(|c| &c.complainant).collect();
    Alert {
        alert_id: alert_id(AlertTrigger::CrowdConcentration, issue, day("2026-11-17")),
        trigger: AlertTrigger::CrowdConcentration,
        level: AlertLevel::Yellow,
        subject: issue.into(),
        window_start: day("2026-11-17"),
        window_end: day("2026-11-20"),
        summary: format!(
            "{district}{}：{}名群众反映占道经营",
            rows[0].place.as_deref().unwrap_or(""),
            people.len()
        ),
        domain: Some("城市管理".into()),
        district: Some(district.into()),
        unit: unit.into(),
        deadline: day("2026-11-27"),
        complaint_ids: rows.iter().map(|c| c.complaint_id.clone()).collect(),
        complaint_count: rows.len() as u64,
        distinct_complainants: people.len() as u64,
        key_terms: vec!["占道".into(), "油烟".into()],
        version: 1,
        raised_at: raised,
        updated_at: raised,
        merged_into: None,
        lifecycle: Default::default(),
    }
}

async fn plant(bus: &duban::bus::KafkaBus, topic: &str, a: &Alert) {
    bus.send_all(
        topic,
        &[(a.alert_id.clone(), serde_json::to_vec(a).expect("json"))],
    )
    .await
    .expect("alert planted");
}

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    let resp = req.send().await.expect("request");
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// Poll the board list until `pred` holds.
async fn wait_board(base: &str, token: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (code, v) = get(&format!("{base}/board/api/alerts"), Some(token)).await;
        if code == 200 && pred(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "board never showed {what}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids_of(list: &Value) -> Vec<String> {
    list["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .map(|c| c["alert_id"].as_str().expect("id").to_string())
        .collect()
}

fn write_lake(data: &Path, rows: &[Complaint]) {
    duban::lake::write_complaints(&data.join("lake"), rows, "board-test").expect("lake written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn board_in_chromium_on_kafka() {
    let prefix = unique("board");
    let mut cfg = test_config(&prefix);
    let data = tmpdir("board");
    let clock = data.join("clock.txt");
    Clock::set(&clock, t("2026-11-20T10:00:00+08:00")).expect("clock set");
    cfg.lifecycle.clock_file = Some(clock);
    cfg.lifecycle.http_bind = String::new();
    cfg.lifecycle.group_id = format!("{prefix}-lifecycle");
    cfg.lifecycle.tick_interval_ms = 200;
    cfg.lifecycle.tokens = BTreeMap::from([
        (SUP.to_string(), "supervisor".to_string()),
        (TOKEN_A.to_string(), format!("unit:{UNIT_A}")),
        (TOKEN_B.to_string(), format!("unit:{UNIT_B}")),
    ]);

    // The lake holds the evidence; the engine's raised alerts go to the lifecycle on Kafka.
    let mut rows_a = complaints("东湖", "测试甲区", "ISS-A", 6, 3);
    // As in a lake written before a masking rule existed: a contact left in the text.
    rows_a[0].body.push_str("联系电话139 1234 0000");
    let rows_b = complaints("西街", "测试乙区", "ISS-B", 5, 0);
    let rows_c = complaints("南门", "测试甲区", "ISS-C", 5, 0);
    let all: Vec<Complaint> = [&rows_a[..], &rows_b[..], &rows_c[..]].concat();
    write_lake(&data, &all);
    let alert_a = engine_alert("ISS-A", "测试甲区", UNIT_A, &rows_a);
    let alert_b = engine_alert("ISS-B", "测试乙区", UNIT_B, &rows_b);
    let alert_c = engine_alert("ISS-C", "测试甲区", UNIT_A, &rows_c);

    let bus = duban::pipeline::kafka::connect(&cfg).await.expect("kafka");
    let topics = bus.topics();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lifecycle = {
        let (cfg, bus, data) = (cfg.clone(), bus.clone(), data.clone());
        tokio::spawn(async move {
            duban::lifecycle::run::run_kafka(&cfg, bus, &data, async move {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    plant(&bus, &topics.alerts_raised, &alert_a).await;
    plant(&bus, &topics.alerts_raised, &alert_b).await;

    let board = duban::web::start(
        duban::web::Source::Kafka(Box::new(cfg.clone())),
        &data,
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("board starts");
    let base = board.url();
    assert_eq!(
        std::fs::read_to_string(data.join("board.addr")).expect("addr file"),
        board.addr.to_string()
    );
    let a_id = alert_a.alert_id.clone();
    let b_id = alert_b.alert_id.clone();
    let c_id = alert_c.alert_id.clone();
    let list = wait_board(&base, SUP, "both planted alerts in yellow", |v| {
        let ids = ids_of(v);
        ids.contains(&a_id) && ids.contains(&b_id) && v["counts"]["yellow"] == 2
    })
    .await;
    assert_eq!(list["counts"]["red"], 0);

    // Server side, not only in the page: a unit reads only its own alerts.
    let (code, v) = get(&format!("{base}/board/api/alerts"), Some(TOKEN_A)).await;
    assert_eq!(code, 200);
    assert_eq!(
        ids_of(&v),
        vec![a_id.clone()],
        "unit A sees only its own alert"
    );
    assert!(
        v["cards"]
            .as_array()
            .expect("cards")
            .iter()
            .all(|c| c["unit"] == UNIT_A)
    );
    let (code, _) = get(&format!("{base}/board/api/alerts/{b_id}"), Some(TOKEN_A)).await;
    assert_eq!(code, 403, "unit A may not open unit B's alert");
    let (code, _) = get(
        &format!("{base}/board/api/alerts/{b_id}/document"),
        Some(TOKEN_A),
    )
    .await;
    assert_eq!(code, 403);
    let (code, _) = get(&format!("{base}/board/api/alerts"), None).await;
    assert_eq!(code, 401, "no token, no board");
    let (code, _) = get(&format!("{base}/board/api/alerts"), Some("wrong")).await;
    assert_eq!(code, 401);
    // The same lifecycle API and role checks: a unit may not verify, nor act on another's alert.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/alerts/{a_id}/verify"))
        .bearer_auth(TOKEN_A)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .post(format!("{base}/api/alerts/{b_id}/feedback"))
        .bearer_auth(TOKEN_A)
        .json(&serde_json::json!({"text": "不是我的"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    // An action that does not fit the state is refused with the lifecycle's reason (409), and
    // nothing is sent to the lifecycle.
    let r = http
        .post(format!("{base}/api/alerts/{b_id}/verify"))
        .bearer_auth(SUP)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 409);
    let why: Value = r.json().await.expect("json");
    assert!(
        why["error"]
            .as_str()
            .expect("reason")
            .contains("nothing to verify"),
        "{why}"
    );

    // Filters on the server: district, unit, trigger, level, raising day.
    let q = |query: &str| format!("{base}/board/api/alerts?{query}");
    let (_, v) = get(
        &q("district=%E6%B5%8B%E8%AF%95%E4%B9%99%E5%8C%BA"),
        Some(SUP),
    )
    .await;
    assert_eq!(ids_of(&v), vec![b_id.clone()], "district 测试乙区");
    assert_eq!(v["total_visible"], 2);
    let (_, v) = get(&q("trigger=high_frequency"), Some(SUP)).await;
    assert!(ids_of(&v).is_empty());
    let (_, v) = get(&q("from=2026-11-21"), Some(SUP)).await;
    assert!(ids_of(&v).is_empty(), "raised on 2026-11-20");
    let (_, v) = get(&q("from=2026-11-20&to=2026-11-20&level=yellow"), Some(SUP)).await;
    assert_eq!(ids_of(&v).len(), 2);

    // Evidence from the lake, as the API gives it.
    let (code, d) = get(&format!("{base}/board/api/alerts/{a_id}"), Some(SUP)).await;
    assert_eq!(code, 200);
    assert_eq!(d["evidence"]["found"], rows_a.len());
    let shown = d["evidence"]["complaints"].to_string();
    assert!(
        !shown.contains("139 1234") && shown.contains("联系电话*** **** 0000"),
        "the evidence masks contacts again: {shown}"
    );
    assert_eq!(
        d["evidence"]["timeline"]
            .as_array()
            .expect("timeline")
            .len(),
        4
    );
    let first_person = d["evidence"]["people"][0].clone();
    assert_eq!(first_person["pseudonym"], "P-东湖-00");
    assert_eq!(
        first_person["complaints"], 4,
        "the repeat complainant's history"
    );
    assert_eq!(d["actions"], serde_json::json!(["assign", "escalate"]));

    // The browser: supervisor, a live new alert, the unit's feedback, verification, green.
    let runner = repo("tests/browser");
    assert!(
        runner.join("node_modules/playwright-core").is_dir(),
        "tests/browser needs its packages: run `npm ci` in tests/browser (scripts/test.sh does)"
    );
    let shot = data.join("board.png");
    let mut child = std::process::Command::new("node")
        .arg(runner.join("board.mjs"))
        .args([
            "--url",
            &base,
            "--supervisor",
            SUP,
            "--unit",
            TOKEN_A,
            "--unit-name",
            UNIT_A,
        ])
        .args(["--alert", &a_id, "--other", &b_id, "--screenshot"])
        .arg(&shot)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs (install nodejs)");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut result = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(240);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        let v: Value = serde_json::from_str(&line).expect("JSON line from board.mjs");
        match v["step"].as_str() {
            Some("ready") => {
                // The page is open: a new alert must appear on it without a reload.
                plant(&bus, &topics.alerts_raised, &alert_c).await;
                writeln!(stdin, "go {c_id}").expect("stdin");
                stdin.flush().expect("flush");
            }
            _ => result = v,
        }
    }
    if Instant::now() >= deadline {
        let _ = child.kill();
    }
    drop(stdin);
    let out = child.wait_with_output().expect("node finished");
    assert!(
        out.status.success(),
        "board.mjs failed ({}): {}\nlast report: {result}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(result["step"], "done", "{result}");
    let r = &result;
    assert_eq!(r["who"], "监督局（督办员）");
    assert_eq!(
        r["counts_before"],
        serde_json::json!({"yellow": 2, "red": 0, "green": 0})
    );
    let ev = &r["evidence"];
    assert_eq!(
        ev["complaints"].as_array().expect("list").len(),
        rows_a.len()
    );
    for c in &rows_a {
        assert!(
            ev["complaints"]
                .as_array()
                .expect("list")
                .contains(&Value::from(c.complaint_id.clone()))
        );
    }
    let facts = ev["facts"].to_string();
    assert!(
        facts.contains(&format!("编号={a_id}")) && facts.contains(&format!("责任单位={UNIT_A}")),
        "{facts}"
    );
    assert!(!facts.contains("[object"), "{facts}");
    assert_eq!(ev["timeline_days"], 4);
    assert_eq!(ev["people"].as_array().expect("people").len(), 6);
    assert!(ev["history"][0].as_str().expect("row").contains("预警"));
    assert_eq!(ev["actions"], serde_json::json!(["assign", "escalate"]));
    assert_eq!(r["filter_district"]["district"], "测试乙区");
    assert_eq!(r["filter_district"]["note"], "筛选后 1 条（共 2 条）");
    assert_eq!(r["fresh_seen"], c_id.as_str());
    // The unit's window: its two alerts, never unit B's.
    assert_eq!(r["unit_who"], format!("执法单位：{UNIT_A}"));
    let unit_cards = r["unit_cards"].as_array().expect("cards");
    let mut seen: Vec<&str> = unit_cards
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    seen.sort();
    let mut want = vec![a_id.as_str(), c_id.as_str()];
    want.sort();
    assert_eq!(seen, want);
    assert!(unit_cards.iter().all(|c| c["unit"] == UNIT_A));
    assert_eq!(r["unit_sees_other"], false);
    assert_eq!(r["unit_actions"], serde_json::json!(["feedback"]));
    // Verified: green, without a reload.
    assert_eq!(r["in_yellow_after"], false);
    assert_eq!(r["no_reload"], true);
    assert_eq!(
        r["counts_after"],
        serde_json::json!({"yellow": 2, "red": 0, "green": 1})
    );
    // The screenshot is a picture of a board, not a blank page.
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"));
    let px = &r["pixels"];
    assert!(
        px["colours"].as_u64().expect("colours") >= 50,
        "a board has many colours: {px}"
    );
    assert!(
        px["variance"].as_f64().expect("variance") > 100.0,
        "not blank: {px}"
    );
    // Dashboard: numbers, the 30-day trend, districts.
    let dash = &r["dashboard"];
    assert_eq!(dash["trend_points"], 30);
    let districts = dash["districts"].to_string();
    assert!(
        districts.contains("测试甲区") && districts.contains("测试乙区"),
        "{districts}"
    );
    assert!(dash["numbers"].to_string().contains("绿色清零1"), "{dash}");
    assert_eq!(
        r["requests_elsewhere"],
        serde_json::json!([]),
        "nothing fetched from outside"
    );
    assert_eq!(r["console_errors"], serde_json::json!([]));

    // Independently of the page: the board topic holds A green, closed, with the unit's feedback
    // and the supervisor's verification (who, when, why).
    let latest: BTreeMap<String, Alert> = {
        let mut m = BTreeMap::new();
        for (_, v) in read_all(&topics.alerts) {
            let a: Alert = serde_json::from_slice(&v).expect("alert");
            let newer = m
                .get(&a.alert_id)
                .is_none_or(|o: &Alert| o.lifecycle.revision <= a.lifecycle.revision);
            if newer {
                m.insert(a.alert_id.clone(), a);
            }
        }
        m
    };
    let a = &latest[&a_id];
    assert_eq!(
        (a.level, a.lifecycle.status),
        (AlertLevel::Green, AlertStatus::Closed)
    );
    let steps: Vec<(&str, &str)> = a
        .lifecycle
        .history
        .iter()
        .map(|t| (t.action.as_str(), t.role.as_str()))
        .collect();
    let unit_role = format!("unit:{UNIT_A}");
    assert_eq!(
        steps,
        vec![
            ("raise", "system"),
            ("feedback", unit_role.as_str()),
            ("verify", "supervisor")
        ]
    );
    assert!(
        a.lifecycle
            .history
            .iter()
            .all(|t| t.action == TransitionKind::Raise || t.action_id.is_some())
    );
    assert_eq!(latest[&b_id].level, AlertLevel::Yellow);
    assert_eq!(latest[&c_id].level, AlertLevel::Yellow);

    board.shutdown().await.expect("board stops cleanly");
    let _ = stop_tx.send(());
    lifecycle
        .await
        .expect("joins")
        .expect("lifecycle ran cleanly");
}

/// Without Chromium the board check fails loudly (never a silent pass).
#[test]
fn board_check_fails_without_chromium() {
    let out = std::process::Command::new("node")
        .arg(repo("tests/browser/board.mjs"))
        .args([
            "--url",
            "http://127.0.0.1:9",
            "--supervisor",
            "s",
            "--unit",
            "u",
        ])
        .args([
            "--unit-name",
            "n",
            "--alert",
            "a",
            "--other",
            "b",
            "--screenshot",
            "/tmp/x.png",
        ])
        .env("DUBAN_CHROMIUM", "/nonexistent/chromium")
        .output()
        .expect("node runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Chromium not found"));
}

/// A `duban serve` child, killed when dropped (also when a test fails on the way).
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `duban serve` on a folder (in-process lifecycle) with these tokens and clock file: the
/// child and its base URL.
fn serve_folder(data: &Path, tokens: &str, clock: &Path) -> (Served, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_duban"))
        .args(["serve", "--port", "0", "--data"])
        .arg(data)
        .env("DUBAN_API_TOKENS", tokens)
        .env("DUBAN_CLOCK_FILE", clock)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("duban serve starts");
    // Its one line on stdout names the address once it listens (EOF if it exits first).
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("serve's first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve printed no address: {line:?}"))
        .trim_end_matches('/')
        .to_string();
    (Served(child), url)
}

/// `duban serve` on a folder written without Kafka (demo, backfill): the lifecycle runs in the
/// server, seeded from alerts.jsonl; actions through the lifecycle API; a red alert's
/// recommendation; live events; the state written back to the folder survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_lifecycle_in_process_for_a_folder() {
    let data = tmpdir("board-local");
    let clock = data.join("clock.txt");
    Clock::set(&clock, t("2026-11-20T10:00:00+08:00")).expect("clock set");
    let rows_a = complaints("北岸", "测试甲区", "ISS-LA", 5, 1);
    let rows_b = complaints("中桥", "测试乙区", "ISS-LB", 5, 0);
    write_lake(&data, &[&rows_a[..], &rows_b[..]].concat());
    let a = engine_alert("ISS-LA", "测试甲区", UNIT_A, &rows_a);
    let b = engine_alert("ISS-LB", "测试乙区", UNIT_B, &rows_b);
    let jsonl: String = [&a, &b]
        .iter()
        .map(|x| serde_json::to_string(x).expect("json") + "\n")
        .collect();
    std::fs::write(data.join("alerts.jsonl"), jsonl).expect("alerts.jsonl");
    let tokens = format!("{SUP}=supervisor;{TOKEN_A}=unit:{UNIT_A};{TOKEN_B}=unit:{UNIT_B}");
    let start = |data: &Path| serve_folder(data, &tokens, &clock);
    let (child, base) = start(&data);
    let (a_id, b_id) = (a.alert_id.clone(), b.alert_id.clone());
    let list = wait_board(&base, SUP, "the folder's alerts opened yellow", |v| {
        v["counts"]["yellow"] == 2
    })
    .await;
    assert!(
        list["cards"]
            .as_array()
            .expect("cards")
            .iter()
            .all(|c| c["status"] == "assigned")
    );

    // Live events, as the page receives them.
    let events = {
        let resp = reqwest::Client::new()
            .get(format!("{base}/board/api/events"))
            .bearer_auth(SUP)
            .send()
            .await
            .expect("event stream");
        assert_eq!(resp.status().as_u16(), 200);
        let (tx, rx) = tokio::sync::watch::channel(String::new());
        tokio::spawn(async move {
            let mut resp = resp;
            let mut text = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                let _ = tx.send(text.clone());
            }
        });
        rx
    };
    let http = reqwest::Client::new();
    let act = |id: &str, action: &str, token: &str, body: Value| {
        http.post(format!("{base}/api/alerts/{id}/{action}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let r = act(
        &a_id,
        "feedback",
        TOKEN_A,
        serde_json::json!({"text": "已整改"}),
    )
    .await
    .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let r = act(&a_id, "verify", SUP, serde_json::json!({}))
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["level"], "green");
    // A conflicting action is refused at once with the lifecycle's reason.
    let r = act(&a_id, "verify", SUP, serde_json::json!({}))
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 409);
    let r = act(
        &b_id,
        "escalate",
        SUP,
        serde_json::json!({"reason": "逾期未处置", "finding": "inaction"}),
    )
    .await
    .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["level"], "red");
    let no = v["document_no"]
        .as_str()
        .expect("document number")
        .to_string();
    let doc = reqwest::Client::new()
        .get(format!("{base}/board/api/alerts/{b_id}/document"))
        .bearer_auth(SUP)
        .send()
        .await
        .expect("document");
    assert_eq!(doc.status().as_u16(), 200);
    let html = doc.text().await.expect("html");
    assert!(
        html.contains("行政执法监督建议书") && html.contains(&no),
        "{html}"
    );
    assert!(html.contains("《芜湖市行政执法监督办法》"));
    let (code, _) = get(
        &format!("{base}/board/api/alerts/{a_id}/document"),
        Some(SUP),
    )
    .await;
    assert_eq!(
        code, 404,
        "no recommendation for an alert that never went red"
    );
    let (code, _) = get(
        &format!("{base}/board/api/alerts/{b_id}/document"),
        Some(TOKEN_A),
    )
    .await;
    assert_eq!(code, 403);

    // The events arrived: feedback and verification of A, escalation of B.
    let mut rx = events;
    let begun = Instant::now();
    loop {
        let text = rx.borrow().clone();
        let seen = |id: &str, action: &str| {
            text.lines().any(|l| {
                l.starts_with("data:")
                    && l.contains(id)
                    && l.contains(&format!("\"action\":\"{action}\""))
            })
        };
        if seen(&a_id, "feedback") && seen(&a_id, "verify") && seen(&b_id, "escalate") {
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(30),
            "events seen: {text}"
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
    }

    // Written back to the folder; a restarted server restores it as it was.
    let saved = std::fs::read_to_string(data.join("alerts.jsonl")).expect("alerts.jsonl");
    let saved: BTreeMap<String, Alert> = saved
        .lines()
        .map(|l| serde_json::from_str::<Alert>(l).expect("alert"))
        .map(|x| (x.alert_id.clone(), x))
        .collect();
    assert_eq!(saved[&a_id].level, AlertLevel::Green);
    assert_eq!(saved[&b_id].level, AlertLevel::Red);
    assert!(
        data.join(
            saved[&b_id]
                .lifecycle
                .document_path
                .as_deref()
                .expect("path")
        )
        .is_file()
    );
    drop(child);
    let (child, base) = start(&data);
    let list = wait_board(&base, SUP, "the restored board", |v| {
        v["counts"]["green"] == 1 && v["counts"]["red"] == 1
    })
    .await;
    assert_eq!(list["counts"]["yellow"], 0);
    drop(child);
}

/// Issue 21's probes of the board and the alerts API (`duban serve` on a folder): the actor comes
/// from the token (a caller's own name is an unverified note), texts and actions are capped per
/// token, a unit sees only its own recurrences, an absurd dashboard date is refused, logins are
/// rate-limited, the session cookie is opaque and revoked at logout, a foreign Host is refused,
/// and every answer carries the security headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_and_api_hold_against_issue_21_probes() {
    use reqwest::header::{COOKIE, HOST, SET_COOKIE};
    let data = tmpdir("board-probes");
    let clock = data.join("clock.txt");
    Clock::set(&clock, t("2026-11-20T10:00:00+08:00")).expect("clock set");
    let rows_a = complaints("河口", "测试甲区", "ISS-PA", 5, 0);
    let rows_b = complaints("塘边", "测试乙区", "ISS-PB", 5, 0);
    write_lake(&data, &[&rows_a[..], &rows_b[..]].concat());
    let a = engine_alert("ISS-PA", "测试甲区", UNIT_A, &rows_a);
    // B is the first recurrence of an earlier, closed alert of its issue.
    let mut b = engine_alert("ISS-PB", "测试乙区", UNIT_B, &rows_b);
    b.lifecycle.status = AlertStatus::Assigned;
    b.lifecycle.opened_at = Some(t("2026-11-20T09:40:00+08:00"));
    b.lifecycle.recurrent = true;
    b.lifecycle.recurrence = 1;
    b.lifecycle.source_alert_id = Some("ISS-PB-first".into());
    let jsonl: String = [&a, &b]
        .iter()
        .map(|x| serde_json::to_string(x).expect("json") + "\n")
        .collect();
    std::fs::write(data.join("alerts.jsonl"), jsonl).expect("alerts.jsonl");
    let tokens =
        format!("{SUP}=supervisor@张科长;{TOKEN_A}=unit:{UNIT_A}@李四;{TOKEN_B}=unit:{UNIT_B}");
    let (child, base) = serve_folder(&data, &tokens, &clock);
    wait_board(&base, SUP, "both alerts open", |v| v["total_visible"] == 2).await;
    let http = reqwest::Client::new();
    let post = |path: &str, token: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    // The actor is the token's holder; a name the caller gives is kept as an unverified note,
    // and one with markup is refused.
    let r = http
        .post(format!("{base}/api/alerts/{}/feedback", a.alert_id))
        .bearer_auth(TOKEN_A)
        .header("X-Duban-Actor", "%E7%8E%8B%E4%BA%94")
        .json(&serde_json::json!({"text": "已整改"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    let last = v["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .expect("history");
    assert_eq!(last["actor"], "李四", "{last}");
    assert_eq!(last["reason"], "已整改〔未核实署名：王五〕", "{last}");
    let r = http
        .post(format!("{base}/api/alerts/{}/verify", a.alert_id))
        .bearer_auth(SUP)
        .header("X-Duban-Actor", "<script>")
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    let r = post(
        &format!("/api/alerts/{}/verify", a.alert_id),
        SUP,
        serde_json::json!({}),
    )
    .await
    .expect("post");
    let v: Value = r.json().await.expect("json");
    let last = v["history"].as_array().and_then(|h| h.last()).cloned();
    assert_eq!(last.expect("history")["actor"], "张科长");

    // Texts over 4 KB and bodies over 16 KB are refused; a token's actions are rate-limited
    // (a burst of 20, refused or not, then 429).
    let big = "很".repeat(100_000 / 3);
    // A client of its own: the server answers 413 before reading the body and closes the
    // connection, which a shared pool could hand to the next request.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/alerts/{}/feedback", b.alert_id))
        .bearer_auth(TOKEN_B)
        .json(&serde_json::json!({"text": big}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 413, "a 100 KB body");
    let long = "长".repeat(2000);
    for i in 0..20 {
        let r = post(
            &format!("/api/alerts/{}/feedback", b.alert_id),
            TOKEN_B,
            serde_json::json!({"text": long}),
        )
        .await
        .expect("post");
        assert_eq!(r.status().as_u16(), 413, "a 6,000-byte text (try {i})");
    }
    let r = post(
        &format!("/api/alerts/{}/feedback", b.alert_id),
        TOKEN_B,
        serde_json::json!({"text": "短"}),
    )
    .await
    .expect("post");
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));

    // Recurrences: a unit sees its own only.
    let (_, all) = get(&format!("{base}/api/recurrences"), Some(SUP)).await;
    assert_eq!(all["by_unit"][UNIT_B], 1, "{all}");
    let (_, own) = get(&format!("{base}/api/recurrences"), Some(TOKEN_A)).await;
    assert_eq!(own, serde_json::json!({"by_issue": {}, "by_unit": {}}));

    // A date the report's arithmetic cannot reach is refused, not a panic.
    let (code, v) = get(
        &format!("{base}/board/api/dashboard?date=-262143-01-01"),
        Some(SUP),
    )
    .await;
    assert_eq!(code, 400, "{v}");

    // Sessions: the cookie holds a random id, not the token; logout revokes it.
    let r = http
        .post(format!("{base}/board/api/login"))
        .json(&serde_json::json!({"token": SUP}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 200);
    let set = r.headers()[SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_string();
    let session = set
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .expect("session id");
    assert!(
        !set.contains(SUP) && session.len() == 64 && set.contains("HttpOnly"),
        "{set}"
    );
    let cookie = format!("duban_board={session}");
    let me = |c: String| {
        http.get(format!("{base}/board/api/me"))
            .header(COOKIE, c)
            .send()
    };
    assert_eq!(me(cookie.clone()).await.expect("me").status().as_u16(), 200);
    // The cookie alone cannot act: the board's page header must come with it.
    let r = http
        .post(format!("{base}/api/alerts/{}/escalate", b.alert_id))
        .header(COOKIE, &cookie)
        .json(&serde_json::json!({"reason": "x", "finding": "inaction"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .post(format!("{base}/board/api/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(me(cookie).await.expect("me").status().as_u16(), 401);

    // A page of another name (DNS rebinding to 127.0.0.1) is refused; headers on every answer.
    let port = base.rsplit(':').next().expect("port");
    let r = http
        .get(format!("{base}/"))
        .header(HOST, format!("rebound.example:{port}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 421);
    let r = http.get(format!("{base}/")).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .is_ok_and(|c| c.contains("script-src 'self'"))
    );
    assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    assert_eq!(h["x-content-type-options"], "nosniff");

    // Logins: 10 tries at once from an address, then 429, even with the right token.
    for _ in 0..9 {
        let r = http
            .post(format!("{base}/board/api/login"))
            .json(&serde_json::json!({"token": "guess"}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = http
        .post(format!("{base}/board/api/login"))
        .json(&serde_json::json!({"token": SUP}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 429);
    drop(child);
}

/// POST `body` as JSON with a bearer token: (status, JSON answer).
async fn post_json(url: &str, token: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_supervisor_labels_from_the_queue_and_corrects_an_issue_on_a_folder() {
    let data = tmpdir("board-labels");
    let clock = data.join("clock.txt");
    Clock::set(&clock, t("2026-11-20T10:00:00+08:00")).expect("clock set");
    let rows = complaints("西湾", "测试甲区", "ISS-LL", 6, 0);
    write_lake(&data, &rows);
    let a = engine_alert("ISS-LL", "测试甲区", UNIT_A, &rows);
    std::fs::write(
        data.join("alerts.jsonl"),
        serde_json::to_string(&a).expect("json") + "\n",
    )
    .expect("alerts.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_duban"))
        .args(["serve", "--port", "0", "--data"])
        .arg(&data)
        .env(
            "DUBAN_API_TOKENS",
            format!("{SUP}=supervisor;{TOKEN_A}=unit:{UNIT_A}"),
        )
        .env("DUBAN_CLOCK_FILE", &clock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("duban serve starts");
    let begun = Instant::now();
    let base = loop {
        if let Ok(s) = std::fs::read_to_string(data.join("board.addr"))
            && !s.is_empty()
        {
            break format!("http://{s}");
        }
        assert!(begun.elapsed() < Duration::from_secs(60), "no address");
        std::thread::sleep(Duration::from_millis(50));
    };
    wait_board(&base, SUP, "the alert opened", |v| {
        v["counts"]["yellow"] == 1
    })
    .await;
    let queue = format!("{base}/board/api/label-queue?n=3");

    // The queue is the supervisors': recent unlabeled complaints, the domains to click.
    let (code, _) = get(&queue, Some(TOKEN_A)).await;
    assert_eq!(code, 403);
    let (code, q) = get(&queue, Some(SUP)).await;
    assert_eq!(code, 200, "{q}");
    let items = q["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{q}");
    assert_eq!(q["domains"].as_array().map(Vec::len), Some(10), "{q}");
    let first = items[0]["complaint_id"].as_str().expect("id").to_string();
    // One click: the complaint's label, with its issue and old domain from the lake.
    let (code, r) = post_json(
        &format!("{base}/api/labels"),
        SUP,
        json!({"complaint_id": first, "domain": "生态环境"}),
    )
    .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        (
            r["label"]["old_domain"].as_str(),
            r["label"]["issue_id"].as_str()
        ),
        (Some("城市管理"), Some("ISS-LL")),
        "{r}"
    );
    assert_eq!(
        r["rerouted"],
        json!([]),
        "a complaint's label re-routes nothing"
    );
    // It leaves the queue.
    let begun = Instant::now();
    loop {
        let (_, q) = get(&format!("{base}/board/api/label-queue?n=10"), Some(SUP)).await;
        let ids: Vec<&str> = q["items"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|i| i["complaint_id"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if q["labeled"] == 1 && !ids.contains(&first.as_str()) {
            assert_eq!(ids.len(), 5, "{q}");
            break;
        }
        assert!(begun.elapsed() < Duration::from_secs(60), "{q}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The issue's correction moves its open alert to the new domain's unit.
    let (code, r) = post_json(
        &format!("{base}/api/labels"),
        SUP,
        json!({"issue_id": "ISS-LL", "domain": "生态环境"}),
    )
    .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["rerouted"], json!([a.alert_id]), "{r}");
    let list = wait_board(&base, SUP, "re-routed", |v| {
        v["cards"][0]["unit"] != UNIT_A && v["cards"][0]["domain"] == "生态环境"
    })
    .await;
    assert_eq!(ids_of(&list), vec![a.alert_id.clone()]);
    // Both corrections are in the folder's lake table.
    let lake = data.join("lake");
    let begun = Instant::now();
    while duban::labels::read_lake(&lake).map_or(0, |l| l.len()) != 2 {
        assert!(begun.elapsed() < Duration::from_secs(30), "labels table");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
