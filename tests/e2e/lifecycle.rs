//! The alert lifecycle end to end on the real broker, with `duban lifecycle` as a real process,
//! a controllable clock (a clock file), a real webhook receiver and the engine in front: a planted
//! issue goes yellow → red (once, with its document) → green → recurrent; kill -9 around a deadline
//! gives one escalation and one notification; unit tokens are refused (403) outside their feedback.

use crate::common::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Duration as Days, FixedOffset, NaiveDate};
use duban::bus::{KafkaBus, Topics};
use duban::lifecycle::calendar::WorkCalendar;
use duban::lifecycle::clock::Clock;
use duban::record::{
    Alert, AlertLevel, AlertStatus, AlertTrigger, Channel, RawEnvelope, TransitionKind, alert_id,
    complaint_id,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SUPERVISOR: &str = "tok-supervisor";

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("time")
}

/// One webhook call as the receiver saw it.
#[derive(Debug, Clone)]
struct Call {
    key: String,
    body: Value,
    answered: u16,
}

/// A real HTTP webhook receiver; with `fail_first`, the first call of every notification gets 500.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<Call>>>,
    fail_first: bool,
}

impl Receiver {
    async fn start(fail_first: bool) -> (Receiver, String) {
        let r = Receiver {
            calls: Arc::default(),
            fail_first,
        };
        async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let mut calls = r.calls.lock().expect("lock");
            let seen = calls.iter().any(|c| c.key == key);
            let code = if r.fail_first && !seen {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            calls.push(Call {
                key,
                body: serde_json::from_str(&body).unwrap_or(Value::Null),
                answered: code.as_u16(),
            });
            code
        }
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, format!("http://{addr}/hook"))
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    /// Successful deliveries per notification id.
    fn delivered(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in self.calls().iter().filter(|c| c.answered == 200) {
            *m.entry(c.key.clone()).or_default() += 1;
        }
        m
    }
}

/// Every unit of the unit table, each with a token `tok-unit-<n>`.
fn unit_tokens() -> BTreeMap<String, String> {
    let u = duban::engine::units::units();
    let mut units: Vec<String> = vec![u.fallback.city.clone()];
    for d in u.domain.values() {
        units.push(d.city.clone());
        for district in &u.districts {
            units.push(format!("{district}{}", d.district_suffix));
        }
    }
    units
        .into_iter()
        .enumerate()
        .map(|(i, unit)| (unit, format!("tok-unit-{i}")))
        .collect()
}

/// A deployment under test: topics, a data folder, a clock file, a config for `duban lifecycle`.
struct Rig {
    cfg: duban::config::Config,
    bus: Arc<KafkaBus>,
    topics: Topics,
    data: PathBuf,
    clock: PathBuf,
    config: PathBuf,
    log: PathBuf,
    tokens: BTreeMap<String, String>,
}

impl Rig {
    async fn new(name: &str, webhook: &str, backoff_ms: u64) -> Rig {
        let prefix = unique(name);
        let mut cfg = test_config(&prefix);
        let bus = duban::pipeline::kafka::connect(&cfg)
            .await
            .expect("Kafka reachable");
        let dir = tmpdir(name);
        let data = dir.join("data");
        let clock = dir.join("clock");
        // The engine in front runs on the drill's clock too (it dates records against it).
        cfg.lifecycle.clock_file = Some(clock.clone());
        let units = dir.join("units.toml");
        let builtin = std::fs::read_to_string(repo("config/units.toml")).expect("units.toml");
        std::fs::write(&units, format!("{builtin}\ndefault = \"{webhook}\"\n")).expect("units");
        let tokens = unit_tokens();
        let mut tok = format!("\"{SUPERVISOR}\" = \"supervisor\"\n");
        for (unit, token) in &tokens {
            tok.push_str(&format!("\"{token}\" = \"unit:{unit}\"\n"));
        }
        let config = dir.join("duban.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{data}"
[kafka]
bootstrap_servers = "{bootstrap}"
topic_prefix = "{prefix}"
[units]
path = "{units}"
[lifecycle]
group_id = "{prefix}-lifecycle"
http_bind = "127.0.0.1:0"
tick_interval_ms = 100
clock_file = "{clock}"
webhook_backoff_ms = {backoff_ms}
webhook_attempts = 20
[lifecycle.tokens]
{tok}"#,
                data = data.display(),
                bootstrap = bootstrap(),
                units = units.display(),
                clock = clock.display(),
            ),
        )
        .expect("config");
        let topics = bus.topics();
        // Topics just created may lack partition leaders for a moment; the engine's consumer
        // fails on that (UnknownTopicOrPartition), so wait until every topic answers.
        for t in [
            &topics.raw,
            &topics.complaints,
            &topics.alerts,
            &topics.alerts_raised,
            &topics.labels,
        ] {
            duban::lifecycle::run::read_to_end(&bootstrap(), t).expect("topic ready");
        }
        Rig {
            cfg,
            bus,
            topics,
            data,
            log: dir.join("lifecycle.log"),
            clock,
            config,
            tokens,
        }
    }

    fn set_clock(&self, at: DateTime<FixedOffset>) {
        Clock::set(&self.clock, at).expect("clock file");
    }

    /// Start `duban lifecycle` and wait until its API is up (it has restored the board).
    fn start(&self) -> (Proc, String) {
        let addr_file = self.data.join("lifecycle-api.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Proc(
            Command::new(env!("CARGO_BIN_EXE_duban"))
                .args(["lifecycle", "--config"])
                .arg(&self.config)
                .env("DUBAN_LOG", "info,rdkafka=warn")
                .env_remove("DUBAN_CLOCK_FILE")
                .env_remove("DUBAN_API_TOKENS")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("duban lifecycle starts"),
        );
        let mut child = child;
        let start = Instant::now();
        loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file)
                && !a.is_empty()
            {
                return (child, format!("http://{a}"));
            }
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!(
                    "lifecycle exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < WAIT,
                "lifecycle did not start: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every record of the board topic, in order (the last per alert is its state).
    fn board_records(&self) -> Vec<Alert> {
        duban::lifecycle::run::read_to_end(&bootstrap(), &self.topics.alerts)
            .expect("board topic readable")
            .iter()
            .map(|(_, v)| serde_json::from_slice(v).expect("board record is an alert"))
            .collect()
    }

    fn board(&self) -> BTreeMap<String, Alert> {
        self.board_records()
            .into_iter()
            .map(|a| (a.alert_id.clone(), a))
            .collect()
    }

    /// Poll the board until `f` finds what it wants.
    async fn wait_board<T>(
        &self,
        what: &str,
        f: impl Fn(&BTreeMap<String, Alert>) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            let b = self.board();
            if let Some(x) = f(&b) {
                return x;
            }
            if start.elapsed() >= WAIT {
                let count =
                    |t: &str| duban::lifecycle::run::read_to_end(&bootstrap(), t).map(|r| r.len());
                panic!(
                    "{what}: board {:#?}\nraw {:?}, complaints {:?}, raised {:?}\nlog: {}",
                    b.values()
                        .map(|a| (&a.alert_id, a.level, a.lifecycle.status))
                        .collect::<Vec<_>>(),
                    count(&self.topics.raw),
                    count(&self.topics.complaints),
                    count(&self.topics.alerts_raised),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the notification log has recorded `key` as delivered.
    fn logged_delivered(&self, key: &str) -> bool {
        duban::lifecycle::run::read_to_end(&bootstrap(), &self.topics.alert_notifications)
            .expect("notification log readable")
            .iter()
            .filter_map(|(_, v)| {
                serde_json::from_slice::<duban::lifecycle::notify::NotificationRecord>(v).ok()
            })
            .rfind(|r| r.notification.notification_id == key)
            .is_some_and(|r| r.status == duban::lifecycle::notify::DeliveryStatus::Delivered)
    }

    fn token_of(&self, unit: &str) -> String {
        self.tokens
            .get(unit)
            .cloned()
            .expect("every unit has a token")
    }

    fn other_unit_token(&self, unit: &str) -> String {
        self.tokens
            .iter()
            .find(|(u, _)| u.as_str() != unit)
            .map(|(_, t)| t.clone())
            .expect("another unit")
    }
}

/// A `duban lifecycle` process; dropped (also when a test fails) it is killed.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kill -9`: no shutdown code runs.
fn kill9(mut p: Proc) {
    p.0.kill().expect("SIGKILL");
    p.0.wait().expect("reaped");
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn call(api: &str, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let c = reqwest::Client::new();
    let url = format!("{api}{path}");
    let req = match method {
        "GET" => c.get(&url),
        _ => c.post(&url).json(&body),
    };
    let r = req.bearer_auth(token).send().await.expect("API reachable");
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

fn hotline(
    source_id: &str,
    caller: &str,
    phone: &str,
    body: &str,
    at: DateTime<FixedOffset>,
) -> RawEnvelope {
    RawEnvelope {
        channel: Channel::Hotline,
        source_id: source_id.into(),
        fetched_at: at,
        position: json!({}),
        payload: json!({
            "order_no": source_id,
            "call_time": at.to_rfc3339(),
            "title": "夜市占道经营",
            "content": body,
            "caller": caller,
            "phone": phone,
            "district": "镜湖区",
            "address": "镜湖区福兴花园",
        }),
        version: None,
    }
}

/// Complaints of one planted issue: distinct callers, one place, varied wording.
fn planted(from: usize, n: usize, day: DateTime<FixedOffset>) -> Vec<RawEnvelope> {
    (from..from + n)
        .map(|i| {
            hotline(
                &format!("LC{i:04}"),
                &format!("来电人{i}"),
                &format!("139{i:08}"),
                &format!(
                    "福兴花园门口第{i}次反映：夜市摊点占道经营，垃圾遍地，油烟和噪音扰民到深夜{}",
                    "，请城管处理".repeat(i % 3 + 1)
                ),
                day + Days::minutes(i as i64 * 7),
            )
        })
        .collect()
}

async fn send_raw(rig: &Rig, recs: &[RawEnvelope]) {
    let keyed: Vec<(String, Vec<u8>)> = recs
        .iter()
        .map(|e| (e.key(), serde_json::to_vec(e).expect("json")))
        .collect();
    rig.bus
        .send_all(&rig.topics.raw, &keyed)
        .await
        .expect("raw sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planted_issue_goes_yellow_red_green_then_recurs() {
    let (hooks, url) = Receiver::start(false).await;
    let rig = Rig::new("life", &url, 200).await;
    let open_at = t("2026-11-20T10:00:00+08:00");
    rig.set_clock(open_at);
    let (engine, stop_engine) = spawn_engine(&rig.cfg, &rig.bus, &rig.data);
    let (life, api) = rig.start();

    // A planted issue: as many distinct callers as the crowd rule needs.
    let n = rig.cfg.rules.crowd_min_complainants;
    let first = planted(0, n, t("2026-11-19T09:00:00+08:00"));
    send_raw(&rig, &first).await;
    // The engine turns them into complaints (its failure, if any, is reported here).
    let start = Instant::now();
    let mut engine = Some(engine);
    while duban::lifecycle::run::read_to_end(&bootstrap(), &rig.topics.complaints)
        .expect("complaints readable")
        .len()
        < n
    {
        if engine.as_ref().is_some_and(|e| e.is_finished()) {
            let r = engine.take().expect("engine").await;
            panic!("the engine stopped: {r:?}");
        }
        assert!(start.elapsed() < WAIT, "the engine produced no complaints");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let engine = engine.expect("engine");
    let planted_ids: Vec<String> = first
        .iter()
        .map(|e| complaint_id("hotline", &e.source_id))
        .collect();
    let yellow = rig
        .wait_board("the planted issue raises yellow", |b| {
            b.values()
                .find(|a| {
                    a.trigger == AlertTrigger::CrowdConcentration
                        && planted_ids.iter().all(|c| a.complaint_ids.contains(c))
                })
                .cloned()
        })
        .await;
    let id = yellow.alert_id.clone();
    assert_eq!(
        (yellow.level, yellow.lifecycle.status),
        (AlertLevel::Yellow, AlertStatus::Assigned)
    );
    let deadline = WorkCalendar::builtin()
        .add_working_days(open_at.date_naive(), rig.cfg.rules.warning_working_days);
    assert_eq!(
        yellow.deadline, deadline,
        "warning period in working days from the opening day"
    );
    assert_eq!(yellow.lifecycle.history[0].action, TransitionKind::Raise);
    let unit = yellow.unit.clone();
    wait_until("the raise notification", || {
        hooks.delivered().contains_key(&format!("{id}#1"))
    })
    .await;
    let raise = hooks
        .calls()
        .into_iter()
        .find(|c| c.key == format!("{id}#1"))
        .expect("call");
    assert_eq!(raise.body["unit"], json!(unit));
    assert_eq!(raise.body["level"], json!("yellow"));

    // The deadline passes with no event: red fires, with its document.
    let past = |d: NaiveDate| -> DateTime<FixedOffset> {
        t(&format!("{}T00:00:05+08:00", d + Days::days(1)))
    };
    rig.set_clock(past(deadline));
    let red = rig
        .wait_board("the missed deadline escalates", |b| {
            b.get(&id).filter(|a| a.level == AlertLevel::Red).cloned()
        })
        .await;
    let no = red
        .lifecycle
        .document_no
        .clone()
        .expect("a numbered document");
    let md_path = rig
        .data
        .join(red.lifecycle.document_path.as_deref().expect("path"));
    let md = std::fs::read_to_string(&md_path).expect("markdown written");
    let html = std::fs::read_to_string(md_path.with_extension("html")).expect("html written");
    let reply = red
        .lifecycle
        .reply_deadline
        .expect("reply deadline")
        .to_string();
    for doc in [&md, &html] {
        for want in [
            no.as_str(),
            unit.as_str(),
            "《芜湖市行政执法监督办法》",
            planted_ids[0].as_str(),
            reply.as_str(),
            "行政执法监督建议书",
        ] {
            assert!(doc.contains(want), "the document lacks {want}");
        }
    }
    // Past the reply deadline too: the ticks go on (a reminder), and red never fires again.
    rig.set_clock(past(red.lifecycle.reply_deadline.expect("reply")));
    rig.wait_board("the reply reminder", |b| {
        b.get(&id)
            .filter(|a| {
                a.lifecycle
                    .history
                    .iter()
                    .any(|h| h.action == TransitionKind::ReplyOverdue)
            })
            .cloned()
    })
    .await;
    let escalations = |a: &Alert| {
        a.lifecycle
            .history
            .iter()
            .filter(|h| h.action == TransitionKind::Escalate)
            .count()
    };
    assert!(
        rig.board_records()
            .iter()
            .filter(|a| a.alert_id == id)
            .all(|a| escalations(a) <= 1)
    );
    let esc_key = format!("{id}#{}", red.lifecycle.history.len());
    wait_until("the escalation notification", || {
        hooks.delivered().contains_key(&esc_key)
    })
    .await;
    assert_eq!(hooks.delivered()[&esc_key], 1);

    // The unit reports its fix (through the CLI), the bureau verifies: green.
    let out = Command::new(env!("CARGO_BIN_EXE_duban"))
        .args([
            "alerts",
            "--api",
            &api,
            "--token",
            &rig.token_of(&unit),
            "feedback",
            &id,
            "--text",
            "已取缔夜市占道摊点并清运垃圾",
        ])
        .output()
        .expect("duban alerts runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(shown["status"], json!("feedback_received"));
    let (code, green) = call(
        &api,
        SUPERVISOR,
        "POST",
        &format!("/api/alerts/{id}/verify"),
        json!({"reason": "现场核实整改到位"}),
    )
    .await;
    assert_eq!(code, 200, "{green}");
    assert_eq!(green["level"], json!("green"));
    let board = rig
        .wait_board("green on the board", |b| {
            b.get(&id).filter(|a| a.level == AlertLevel::Green).cloned()
        })
        .await;
    let actions: Vec<&str> = board
        .lifecycle
        .history
        .iter()
        .map(|h| h.action.as_str())
        .collect();
    assert_eq!(
        actions,
        vec!["raise", "escalate", "reply_overdue", "feedback", "verify"]
    );
    assert!(
        board
            .lifecycle
            .history
            .iter()
            .all(|h| !h.actor.is_empty() && !h.reason.is_empty())
    );

    // New complaints on the closed issue reopen it as a new, linked, recurrent alert.
    rig.set_clock(past(red.lifecycle.reply_deadline.expect("reply")) + Days::days(3));
    // Dated before the clock: the engine refuses records dated more than a day after its clock,
    // the drill's here (a recurrence is told by complaint ids, not by time).
    let more = planted(n, 2, t("2026-11-21T09:00:00+08:00"));
    send_raw(&rig, &more).await;
    let r1 = rig
        .wait_board("a recurrence", |b| {
            b.values()
                .find(|a| a.lifecycle.recurrence_of.as_deref() == Some(id.as_str()))
                .cloned()
        })
        .await;
    assert!(r1.lifecycle.recurrent);
    assert_eq!((r1.level, r1.lifecycle.recurrence), (AlertLevel::Yellow, 1));
    for e in &more {
        assert!(
            r1.lifecycle
                .new_complaint_ids
                .contains(&complaint_id("hotline", &e.source_id))
        );
    }
    assert_eq!(
        rig.board()[&id].level,
        AlertLevel::Green,
        "the closed alert stays green"
    );
    let (code, counts) = call(&api, SUPERVISOR, "GET", "/api/recurrences", Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(counts["by_issue"][&id], json!(1));
    assert_eq!(counts["by_unit"][&unit], json!(1));

    // The lake holds the lifecycle's view: both alerts, and the history.
    let lake = rig.data.join("lake");
    wait_until("the lake alerts table has the recurrence", || {
        std::fs::read_to_string(rig.data.join("alerts.jsonl"))
            .is_ok_and(|s| s.contains(&r1.alert_id))
    })
    .await;
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_parquet(
        "alerts",
        lake.join("alerts").to_str().expect("path"),
        Default::default(),
    )
    .await
    .expect("alerts table");
    ctx.register_parquet(
        "alert_history",
        lake.join("alert_history").to_str().expect("path"),
        Default::default(),
    )
    .await
    .expect("history table");
    let q = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let b = ctx
                .sql(sql)
                .await
                .expect("sql")
                .collect()
                .await
                .expect("rows");
            duban::query::render(&b, duban::query::Format::Csv).expect("csv")
        }
    };
    let levels = q("select level, recurrent, recurrence_of is not null as linked from alerts order by recurrent").await;
    assert_eq!(
        levels.trim(),
        "level,recurrent,linked\ngreen,false,false\nyellow,true,true"
    );
    let h =
        q("select action, count(*) as n from alert_history group by action order by action").await;
    assert_eq!(
        h.trim(),
        "action,n\nescalate,1\nfeedback,1\nraise,2\nrecur,1\nreply_overdue,1\nverify,1"
    );

    kill9(life);
    let _ = stop_engine.send(());
    engine.await.expect("engine task").expect("engine ran");
}

/// An engine alert as the engine writes it on `alerts-raised`.
fn raised_alert(unit: &str, n: usize) -> Alert {
    let at = t("2026-11-19T09:00:00+08:00");
    let ids: Vec<String> = (0..n)
        .map(|i| complaint_id("hotline", &format!("K{i}")))
        .collect();
    Alert {
        alert_id: alert_id(
            AlertTrigger::CrowdConcentration,
            &unique("issue"),
            NaiveDate::default(),
        ),
        trigger: AlertTrigger::CrowdConcentration,
        level: AlertLevel::Yellow,
        subject: "issue".into(),
        window_start: at.date_naive(),
        window_end: at.date_naive(),
        summary: format!("{n}名群众反映城市管理问题"),
        domain: Some("城市管理".into()),
        district: Some("镜湖区".into()),
        unit: unit.into(),
        deadline: at.date_naive(),
        complaint_count: n as u64,
        complaint_ids: ids,
        distinct_complainants: n as u64,
        key_terms: vec![],
        version: 1,
        raised_at: at,
        updated_at: at,
        merged_into: None,
        lifecycle: Default::default(),
    }
}

async fn raise(rig: &Rig, a: &Alert) {
    let rec = (a.alert_id.clone(), serde_json::to_vec(a).expect("json"));
    rig.bus
        .send_all(&rig.topics.alerts_raised, &[rec])
        .await
        .expect("sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_around_a_deadline_escalates_once_and_notifies_once() {
    // Every notification's first delivery fails, so a retry is pending when the process dies.
    let (hooks, url) = Receiver::start(true).await;
    let rig = Rig::new("life-kill", &url, 3000).await;
    let open_at = t("2026-11-20T10:00:00+08:00");
    rig.set_clock(open_at);
    let unit = duban::engine::units::units().responsible(Some("城市管理"), Some("镜湖区"));
    let alert = raised_alert(&unit, 6);
    let id = alert.alert_id.clone();

    let (a, _) = rig.start();
    raise(&rig, &alert).await;
    let yellow = rig.wait_board("yellow", |b| b.get(&id).cloned()).await;
    // Killed before the deadline, once the raise notification is delivered and logged (a kill
    // between a receiver's 2xx and the log write would resend it: see notify.rs).
    wait_until("the raise notification logged as delivered", || {
        hooks.delivered().contains_key(&format!("{id}#1"))
            && rig.logged_delivered(&format!("{id}#1"))
    })
    .await;
    // The deadline passes while nothing runs.
    kill9(a);
    rig.set_clock(t(&format!(
        "{}T08:00:00+08:00",
        yellow.deadline + Days::days(3)
    )));
    let (b, _) = rig.start();
    let red = rig
        .wait_board("escalation after the restart", |b| {
            b.get(&id).filter(|a| a.level == AlertLevel::Red).cloned()
        })
        .await;
    // Killed again as soon as red is on the board: its notification is logged but not delivered.
    kill9(b);
    let esc_key = format!("{id}#{}", red.lifecycle.history.len());
    assert!(
        !hooks.delivered().contains_key(&esc_key),
        "the first attempt fails by design"
    );
    let (c, api) = rig.start();
    wait_until(
        "the escalation notification after the second restart",
        || hooks.delivered().contains_key(&esc_key),
    )
    .await;
    // A later tick-driven change proves ticks ran after the restarts; its notification proves the
    // sender ran too.
    rig.set_clock(t(&format!(
        "{}T08:00:00+08:00",
        red.lifecycle.reply_deadline.expect("reply") + Days::days(1)
    )));
    let late = rig
        .wait_board("the reply reminder", |b| {
            b.get(&id)
                .filter(|a| {
                    a.lifecycle
                        .history
                        .last()
                        .is_some_and(|h| h.action == TransitionKind::ReplyOverdue)
                })
                .cloned()
        })
        .await;
    let late_key = format!("{id}#{}", late.lifecycle.history.len());
    wait_until("the reminder notification", || {
        hooks.delivered().contains_key(&late_key)
    })
    .await;

    // Exactly one escalation, in every board record ever written, and one notification of it.
    let records: Vec<Alert> = rig
        .board_records()
        .into_iter()
        .filter(|a| a.alert_id == id)
        .collect();
    for r in &records {
        let n = r
            .lifecycle
            .history
            .iter()
            .filter(|h| h.action == TransitionKind::Escalate)
            .count();
        assert!(n <= 1, "a board record with {n} escalations");
    }
    let escalated: std::collections::BTreeSet<_> = records
        .iter()
        .filter_map(|r| r.lifecycle.escalated_at)
        .collect();
    assert_eq!(
        escalated.len(),
        1,
        "one escalation time across restarts: {escalated:?}"
    );
    let delivered = hooks.delivered();
    assert_eq!(delivered[&esc_key], 1, "one escalation notification");
    assert!(
        delivered.values().all(|n| *n == 1),
        "no notification delivered twice: {delivered:?}"
    );
    assert_eq!(
        delivered.len(),
        3,
        "raise, escalate, reminder: {delivered:?}"
    );
    assert!(
        hooks
            .calls()
            .iter()
            .filter(|c| c.key == esc_key)
            .any(|c| c.answered == 500),
        "it was retried"
    );
    // The document survived the restarts under one number.
    let (code, shown) = call(
        &api,
        SUPERVISOR,
        "GET",
        &format!("/api/alerts/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(shown["document_no"], json!(red.lifecycle.document_no));
    kill9(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_moments_of_an_escalation_escalates_once() {
    // Each run restores the board; the clock then moves past the deadline, so the next tick
    // (every 100 ms) escalates (board record and notification log in one transaction) and the
    // notice is delivered; every delivery's first attempt fails, so a retry with backoff stretches
    // the delivery. Kills land at seeded random moments: until red is on the board, within 150 ms
    // of the clock moving (before the tick, or inside the escalation's transaction, which the next
    // run's producer then aborts); after it, across the notice's attempts and its log write.
    let (hooks, url) = Receiver::start(true).await;
    let rig = Rig::new("life-kill-rand", &url, 400).await;
    let before = t("2026-11-20T10:00:00+08:00");
    rig.set_clock(before);
    let unit = duban::engine::units::units().responsible(Some("城市管理"), Some("镜湖区"));
    let alert = raised_alert(&unit, 6);
    let id = alert.alert_id.clone();
    let (a, _) = rig.start();
    raise(&rig, &alert).await;
    let yellow = rig.wait_board("yellow", |b| b.get(&id).cloned()).await;
    kill9(a);
    let after = t(&format!(
        "{}T08:00:00+08:00",
        yellow.deadline + Days::days(3)
    ));
    let is_red =
        |b: &BTreeMap<String, Alert>| b.get(&id).is_some_and(|a| a.level == AlertLevel::Red);
    let mut moments = KillMoments::from_env_or_clock("lifecycle random kills");
    let mut phases: Vec<(Duration, bool, usize)> = Vec::new();
    // Until red is on the board every run is killed (a run that commits the escalation ends that
    // phase), then three more across the delivery; a bound in case the board never turns red.
    while phases.iter().filter(|p| p.1).count() < 3 {
        assert!(
            phases.len() < 40,
            "the escalation never committed: {phases:?}"
        );
        let red_before = is_red(&rig.board());
        rig.set_clock(if red_before { after } else { before });
        let (p, _) = rig.start();
        let at = if red_before {
            moments.within(0, 1200)
        } else {
            rig.set_clock(after);
            moments.within(0, 150)
        };
        tokio::time::sleep(at).await; // a random moment to kill at, not a synchronisation
        kill9(p);
        phases.push((at, is_red(&rig.board()), hooks.delivered().len()));
    }
    rig.set_clock(after);
    let (last, api) = rig.start();
    let red = rig
        .wait_board("escalation after the kills", |b| {
            b.get(&id).filter(|a| a.level == AlertLevel::Red).cloned()
        })
        .await;
    let esc_key = format!("{id}#{}", red.lifecycle.history.len());
    wait_until("the escalation notice logged as delivered", || {
        rig.logged_delivered(&esc_key)
    })
    .await;
    eprintln!("kills (moment, red on the board, notices delivered): {phases:?}");

    // One escalation in every board record ever written, one escalation time, one document.
    let records: Vec<Alert> = rig
        .board_records()
        .into_iter()
        .filter(|a| a.alert_id == id)
        .collect();
    for r in &records {
        let n = r
            .lifecycle
            .history
            .iter()
            .filter(|h| h.action == TransitionKind::Escalate)
            .count();
        assert!(n <= 1, "a board record with {n} escalations");
    }
    let escalated: std::collections::BTreeSet<_> = records
        .iter()
        .filter_map(|r| r.lifecycle.escalated_at)
        .collect();
    assert_eq!(escalated.len(), 1, "one escalation time: {escalated:?}");
    let documents: std::collections::BTreeSet<_> = records
        .iter()
        .filter_map(|r| r.lifecycle.document_no.clone())
        .collect();
    assert_eq!(documents.len(), 1, "one document number: {documents:?}");
    // The notice reached the unit. A kill between the receiver's 2xx and the delivered-log write
    // sends it again after the restart: the same Idempotency-Key and the same body, so a receiver
    // that keys on it keeps one; every copy of one key is identical.
    assert!(
        hooks.delivered().contains_key(&esc_key),
        "escalation notice delivered"
    );
    let calls = hooks.calls();
    for key in calls.iter().map(|c| &c.key) {
        let bodies: std::collections::BTreeSet<String> = calls
            .iter()
            .filter(|c| &c.key == key)
            .map(|c| c.body.to_string())
            .collect();
        assert_eq!(bodies.len(), 1, "copies of {key} differ: {bodies:?}");
    }
    let notices: std::collections::BTreeSet<&str> = calls
        .iter()
        .filter(|c| c.key.starts_with(&format!("{id}#")))
        .map(|c| c.key.as_str())
        .collect();
    assert_eq!(notices.len(), 2, "raise and escalate only: {notices:?}");
    let (code, shown) = call(
        &api,
        SUPERVISOR,
        "GET",
        &format!("/api/alerts/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(shown["document_no"], json!(red.lifecycle.document_no));
    kill9(last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unit_tokens_may_only_give_feedback_on_their_own_alerts() {
    let (_hooks, url) = Receiver::start(false).await;
    let rig = Rig::new("life-roles", &url, 200).await;
    rig.set_clock(t("2026-11-20T10:00:00+08:00"));
    let unit = duban::engine::units::units().responsible(Some("城市管理"), Some("镜湖区"));
    let mine = raised_alert(&unit, 5);
    let (life, api) = rig.start();
    raise(&rig, &mine).await;
    let id = mine.alert_id.clone();
    rig.wait_board("yellow", |b| b.get(&id).cloned()).await;
    let own = rig.token_of(&unit);
    let other = rig.other_unit_token(&unit);
    let path = |a: &str| format!("/api/alerts/{id}/{a}");

    for (token, action, body) in [
        (own.as_str(), "verify", json!({})),
        (
            own.as_str(),
            "escalate",
            json!({"reason": "x", "finding": "inaction"}),
        ),
        (own.as_str(), "assign", json!({"unit": "x"})),
        (own.as_str(), "reopen", json!({})),
        (other.as_str(), "feedback", json!({"text": "不是我们的"})),
        (SUPERVISOR, "feedback", json!({"text": "代为反馈"})),
    ] {
        let (code, body) = call(&api, token, "POST", &path(action), body).await;
        assert_eq!(code, 403, "{action} with {token}: {body}");
    }
    let (code, _) = call(
        &api,
        &other,
        "GET",
        &format!("/api/alerts/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(code, 403, "another unit may not read it");
    let (code, list) = call(&api, &other, "GET", "/api/alerts", Value::Null).await;
    assert_eq!(
        (code, list),
        (200, json!([])),
        "another unit lists none of it"
    );
    let (code, _) = call(&api, "nonsense", "GET", "/api/alerts", Value::Null).await;
    assert_eq!(code, 401);
    // The CLI reports the refusal as one line and a failure.
    let out = Command::new(env!("CARGO_BIN_EXE_duban"))
        .args(["alerts", "--api", &api, "--token", &own, "verify", &id])
        .output()
        .expect("duban alerts runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("403") && err.trim().lines().count() == 1,
        "{err}"
    );
    // Refusals are logged, and nothing changed.
    wait_until("refusals in the log", || {
        std::fs::read_to_string(&rig.log).is_ok_and(|l| l.matches("refused (403)").count() >= 7)
    })
    .await;
    let (code, a) = call(
        &api,
        &own,
        "POST",
        &path("feedback"),
        json!({"text": "已处理"}),
    )
    .await;
    assert_eq!(code, 200, "{a}");
    let history: Vec<&str> = a["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["action"].as_str())
        .collect();
    assert_eq!(
        history,
        vec!["raise", "feedback"],
        "refused actions left no trace in the history"
    );
    kill9(life);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_domain_correction_reroutes_the_issues_open_alert_and_lands_in_the_labels_table() {
    let (hooks, url) = Receiver::start(false).await;
    let rig = Rig::new("life-labels", &url, 200).await;
    rig.set_clock(t("2026-11-23T10:00:00+08:00"));
    let units = duban::engine::units::units();
    let unit = units.responsible(Some("城市管理"), Some("镜湖区"));
    let a = raised_alert(&unit, 5);
    let id = a.alert_id.clone();
    let (life, api) = rig.start();
    raise(&rig, &a).await;
    rig.wait_board("yellow", |b| b.get(&id).cloned()).await;
    let fix = json!({"issue_id": a.subject, "domain": "生态环境", "reason": "实为排污问题"});

    // Only a supervisor corrects, and only to a domain of the taxonomy.
    let own = rig.token_of(&unit);
    let (code, body) = call(&api, &own, "POST", "/api/labels", fix.clone()).await;
    assert_eq!(code, 403, "{body}");
    let bad = json!({"issue_id": a.subject, "domain": "外星事务"});
    let (code, body) = call(&api, SUPERVISOR, "POST", "/api/labels", bad).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("`domain`")),
        "{body}"
    );

    let (code, body) = call(&api, SUPERVISOR, "POST", "/api/labels", fix).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["rerouted"], json!([id]), "{body}");
    assert_eq!(body["label"]["old_domain"], "城市管理", "{body}");
    let new_unit = units.responsible_at(Some("生态环境"), Some("镜湖区"), &[a.summary.as_str()]);
    assert_ne!(new_unit, unit);
    // The board: the new unit has it, with the correction in its history.
    let moved = rig
        .wait_board("re-routed", |b| {
            b.get(&id).filter(|x| x.unit == new_unit).cloned()
        })
        .await;
    assert_eq!(moved.domain.as_deref(), Some("生态环境"));
    let last = moved.lifecycle.history.last().expect("history");
    assert_eq!(
        (last.action.as_str(), last.role.as_str()),
        ("reroute", "supervisor")
    );
    assert!(last.reason.contains("实为排污问题"), "{}", last.reason);
    // The new unit is notified; the old one may no longer act on it.
    wait_until("the new unit's notification", || {
        hooks
            .calls()
            .iter()
            .any(|c| c.body["unit"] == new_unit.as_str() && c.body["action"] == "reroute")
    })
    .await;
    let (code, _) = call(
        &api,
        &own,
        "POST",
        &format!("/api/alerts/{id}/feedback"),
        json!({"text": "已处理"}),
    )
    .await;
    assert_eq!(code, 403);
    // The correction: on the compacted labels topic, in the API's list and the lake table.
    let labels: Vec<duban::labels::Label> = read_json(&rig.topics.labels);
    assert_eq!(labels.len(), 1, "{labels:?}");
    assert_eq!(labels[0].key(), format!("issue:{}", a.subject));
    assert_eq!(labels[0].domain, "生态环境");
    let (code, list) = call(&api, SUPERVISOR, "GET", "/api/labels", Value::Null).await;
    assert_eq!((code, list[0]["domain"].as_str()), (200, Some("生态环境")));
    let lake = rig.data.join("lake");
    wait_until("the lake table labels", || {
        duban::labels::read_lake(&lake).is_ok_and(|l| l.len() == 1)
    })
    .await;
    assert_eq!(
        duban::labels::read_lake(&lake).expect("table")[0],
        labels[0]
    );
    // A complaint the lake does not know is refused with one line from the CLI.
    let out = Command::new(env!("CARGO_BIN_EXE_duban"))
        .args(["alerts", "--api", &api, "--token", SUPERVISOR, "label"])
        .args(["--complaint", "no-such-complaint", "--domain", "交通运输"])
        .output()
        .expect("duban alerts runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("404") && err.trim().lines().count() == 1,
        "{err}"
    );
    kill9(life);
}
