//! Golden scenarios: `tests/golden/<case>/` holds a readable input and the expected outputs as JSON
//! lines; this one runner plays every case and compares. `DUBAN_BLESS=1` rewrites the expected
//! files instead (review the diff before committing). See tests/golden/README.md.
//!
//! An engine case (`kind = "engine"`) sends `input.jsonl` (raw envelopes, one a line; a line that
//! is a JSON string is sent as those bytes, e.g. to pin a dead letter) through the in-process
//! engine of `demo`/`backfill`, then reads the lake with SQL: `complaints.jsonl`, `issues.jsonl`,
//! `complainants.jsonl`, `alerts.jsonl`, `dead_letters.jsonl`. A lifecycle case
//! (`kind = "lifecycle"`) applies `input.jsonl` (one event a line: `raise`, `action` or `tick`, each
//! with `at`) to the board (`decide` through `Board`) and writes `transitions.jsonl`: the alert's
//! state and what was sent after each event. Ids that are hashes are shown as stable labels in
//! order of appearance (`I1` issues, `P1` complainants, `A1` alerts) and complaints by
//! `channel:source_id`, so a case reads without the hashes.

use crate::common::*;
use chrono::{DateTime, FixedOffset};
use duban::bus::{MemoryBus, Topics};
use duban::lifecycle::board::Board;
use duban::lifecycle::decide::{AlertAction, Event, Policy};
use duban::record::Alert;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `case.toml`: what the case pins, its kind, and overrides of `config/duban.toml`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// One sentence: the behaviour this case pins.
    pins: String,
    kind: Kind,
    /// Merged over `config/duban.toml` (engine cases).
    #[serde(default)]
    config: Option<toml::Table>,
}

#[derive(serde::Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Engine,
    Lifecycle,
}

fn cases_dir() -> PathBuf {
    repo("tests/golden")
}

/// Hash ids shown as labels in order of first appearance.
#[derive(Default)]
struct Labels {
    issues: BTreeMap<String, String>,
    people: BTreeMap<String, String>,
    alerts: BTreeMap<String, String>,
    complaints: BTreeMap<String, String>,
}

impl Labels {
    fn label(map: &mut BTreeMap<String, String>, prefix: &str, id: &str) -> String {
        let n = map.len() + 1;
        map.entry(id.to_string())
            .or_insert_with(|| format!("{prefix}{n}"))
            .clone()
    }

    /// Replace hash ids inside `v` (strings, and strings in arrays) by their labels.
    fn relabel(&mut self, field: &str, v: &Value) -> Value {
        match v {
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.relabel(field, i)).collect())
            }
            Value::String(s) => Value::String(match field {
                "issue_id" | "merged_into" | "top_issue" => {
                    if s.is_empty() {
                        String::new()
                    } else {
                        Labels::label(&mut self.issues, "I", s)
                    }
                }
                "complainant" => Labels::label(&mut self.people, "P", s),
                "alert_id" | "recurrence_of" | "source_alert_id" => {
                    Labels::label(&mut self.alerts, "A", s)
                }
                "complaint_id" | "duplicate_of" | "duplicate_group" | "complaint_ids" => s
                    .split(',')
                    .map(|id| {
                        self.complaints
                            .get(id)
                            .cloned()
                            .unwrap_or_else(|| format!("unknown complaint {id}"))
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                "subject" => {
                    if let Some(l) = self.issues.get(s).or_else(|| self.people.get(s)) {
                        l.clone()
                    } else if s.starts_with("IS-") {
                        Labels::label(&mut self.issues, "I", s)
                    } else if s.starts_with("p_") {
                        Labels::label(&mut self.people, "P", s)
                    } else {
                        s.clone()
                    }
                }
                _ => s.clone(),
            }),
            other => other.clone(),
        }
    }

    /// Floats to 6 significant digits, so a change in summation order is not a diff.
    fn round(v: Value) -> Value {
        match v {
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or_default();
                if f.abs() >= 1e300 {
                    // f64::MAX stands for an infinite z-score in the lake.
                    json!(if f > 0.0 { "inf" } else { "-inf" })
                } else if f != 0.0 {
                    let digits = 5 - f.abs().log10().floor() as i32;
                    let m = 10f64.powi(digits);
                    json!((f * m).round() / m)
                } else {
                    json!(f)
                }
            }
            other => other,
        }
    }

    fn row(&mut self, row: &Map<String, Value>) -> Value {
        let mut out = Map::new();
        for (k, v) in row {
            out.insert(k.clone(), Labels::round(self.relabel(k, v)));
        }
        Value::Object(out)
    }
}

/// Rows of `sql` over one lake table as JSON objects; none when the run wrote no such table.
async fn query(lake: &Path, table: &str, sql: &str) -> Vec<Map<String, Value>> {
    if !lake.join(table).exists() {
        return Vec::new();
    }
    let batches = duban::query::run_sql(lake, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:#}"));
    let text = duban::query::render(&batches, duban::query::Format::Json).expect("json");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(m)) => m,
            other => panic!("not a JSON row: {l}: {other:?}"),
        })
        .collect()
}

/// The default config with the case's overrides merged in (tables recursively).
fn case_config(overrides: Option<&toml::Table>) -> duban::config::Config {
    fn merge(base: &mut toml::Table, over: &toml::Table) {
        for (k, v) in over {
            match (base.get_mut(k), v) {
                (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
                _ => {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let text = std::fs::read_to_string(repo("config/duban.toml")).expect("config/duban.toml");
    let mut base: toml::Table = text.parse().expect("config/duban.toml is TOML");
    if let Some(o) = overrides {
        merge(&mut base, o);
    }
    let mut cfg: duban::config::Config =
        duban::config::parse_toml(&toml::to_string(&base).expect("toml"), "golden case config")
            .expect("a valid config");
    cfg.kafka.topic_prefix = "golden".into();
    cfg.engine.pseudonym_key =
        duban::engine::PseudonymKey::Given(TEST_PSEUDONYM_KEY.as_bytes().to_vec());
    cfg
}

fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON: {e}", path.display(), i + 1))
        })
        .collect()
}

async fn run_engine(
    case: &Path,
    cfg: &duban::config::Config,
) -> BTreeMap<&'static str, Vec<Value>> {
    let inputs = read_lines(&case.join("input.jsonl"));
    let bus = MemoryBus::new();
    let topics = Topics::new(&cfg.kafka.topic_prefix);
    let mut labels = Labels::default();
    for v in &inputs {
        let bytes = match v {
            Value::String(s) => s.as_bytes().to_vec(),
            other => serde_json::to_vec(other).expect("json"),
        };
        let key = match v {
            Value::Object(m) => {
                let (ch, id) = (m.get("channel"), m.get("source_id"));
                if let (Some(Value::String(ch)), Some(id)) = (ch, id) {
                    let id = id.as_str().map_or_else(|| id.to_string(), str::to_string);
                    labels
                        .complaints
                        .insert(duban::record::complaint_id(ch, &id), format!("{ch}:{id}"));
                    Some(format!("{ch}:{id}").into_bytes())
                } else {
                    None
                }
            }
            _ => None,
        };
        bus.send(&topics.raw, key.as_deref(), &bytes);
    }
    let out = tmpdir("golden-out");
    duban::pipeline::drain::process_all(cfg, &bus, &topics, &out, None, true)
        .await
        .expect("the engine runs the case");
    let lake = out.join("lake");
    let mut got = BTreeMap::new();
    let complaints = query(
        &lake,
        "complaints",
        "select complaint_id, title, body, complainant, phone_masked, district, address, place, \
         domain, duplicate_of, duplicate_group, issue_id, flags from complaints \
         order by received_at, complaint_id",
    )
    .await;
    got.insert(
        "complaints",
        complaints.iter().map(|r| labels.row(r)).collect(),
    );
    let issues = query(
        &lake,
        "issues",
        "select issue_id, district, place, domain, title, key_terms, complaints, complainants, \
         flags, merged_into from issues order by first_seen, issue_id",
    )
    .await;
    got.insert("issues", issues.iter().map(|r| labels.row(r)).collect());
    let people = query(
        &lake,
        "complainants",
        "select complainant, complaints, distinct_complaints, max_in_window, flagged, p_value, z_score, top_domain, \
         top_issue from complainants order by complaints desc, complainant",
    )
    .await;
    got.insert(
        "complainants",
        people.iter().map(|r| labels.row(r)).collect(),
    );
    let alerts = query(
        &lake,
        "alerts",
        "select alert_id, trigger, subject, domain, district, unit, window_start, window_end, \
         deadline, complaint_ids, complaint_count, distinct_complainants, summary, merged_into \
         from alerts order by raised_at, trigger, subject",
    )
    .await;
    got.insert("alerts", alerts.iter().map(|r| labels.row(r)).collect());
    let dead = bus
        .read(&topics.dlq, 0)
        .iter()
        .map(|r| {
            let d: duban::record::DeadLetter =
                serde_json::from_slice(&r.value).expect("a dead letter");
            json!({"stage": d.stage, "channel": d.channel, "reason": d.reason})
        })
        .collect();
    got.insert("dead_letters", dead);
    let _ = std::fs::remove_dir_all(&out);
    got
}

/// A template alert as the engine raises it; a `raise` event overrides its fields.
fn template_alert() -> Value {
    json!({
        "alert_id": "AL-golden-1",
        "trigger": "crowd_concentration",
        "level": "yellow",
        "subject": "IS-000000001",
        "window_start": "2026-11-16",
        "window_end": "2026-11-19",
        "summary": "6名群众反映同一问题",
        "domain": "城市管理",
        "district": "镜湖区",
        "unit": "镜湖区城市管理局",
        "deadline": "2026-11-26",
        "complaint_count": 6,
        "complaint_ids": [],
        "distinct_complainants": 6,
        "key_terms": [],
        "version": 1,
        "raised_at": "2026-11-19T09:00:00+08:00",
        "updated_at": "2026-11-19T09:00:00+08:00"
    })
}

fn run_lifecycle(case: &Path) -> BTreeMap<&'static str, Vec<Value>> {
    let events = read_lines(&case.join("input.jsonl"));
    let mut board = Board::new(Policy::default(), Vec::new());
    let mut labels = Labels::default();
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let at: DateTime<FixedOffset> = e["at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .unwrap_or_else(|| panic!("event {}: `at` must be an RFC 3339 time", i + 1));
        let (name, event) = if let Some(r) = e.get("raise") {
            let mut a = template_alert();
            for (k, v) in r.as_object().expect("raise is an object") {
                a[k] = v.clone();
            }
            let alert: Alert = serde_json::from_value(a).expect("a raised alert");
            ("raise".to_string(), Event::Raised(Box::new(alert)))
        } else if let Some(a) = e.get("action") {
            let mut a = a.clone();
            a["at"] = e["at"].clone();
            if a.get("action_id").is_none() {
                a["action_id"] = json!(format!("act-{}", i + 1));
            }
            let act: AlertAction = serde_json::from_value(a).expect("an alert action");
            (act.action.as_str().to_string(), Event::Action(act))
        } else if e.get("tick").is_some() {
            ("tick".to_string(), Event::Tick)
        } else {
            panic!("event {}: needs raise, action or tick", i + 1);
        };
        let fx = if matches!(event, Event::Tick) {
            board.tick(at)
        } else {
            board.apply(&event, at)
        };
        let changed: Vec<Value> = fx
            .changed
            .values()
            .map(|a| {
                let last = a.lifecycle.history.last();
                json!({
                    "alert": labels.relabel("alert_id", &json!(a.alert_id)),
                    "level": a.level,
                    "status": a.lifecycle.status,
                    "unit": a.unit,
                    "deadline": a.deadline,
                    "reply_deadline": a.lifecycle.reply_deadline,
                    "document_no": a.lifecycle.document_no,
                    "recurrence_of": a.lifecycle.recurrence_of.as_ref()
                        .map(|r| labels.relabel("alert_id", &json!(r))),
                    "last": last.map(|h| json!({
                        "action": h.action, "role": h.role, "reason": h.reason,
                        "from": [h.from_level, h.from_status], "to": [h.to_level, h.to_status],
                    })),
                })
            })
            .collect();
        let sent: Vec<Value> = fx
            .notifications
            .iter()
            .map(|n| json!({"action": n.action, "unit": n.unit, "level": n.level}))
            .collect();
        let refused: Vec<Value> = fx
            .results
            .iter()
            .filter(|r| !r.applied)
            .map(|r| json!({"forbidden": r.forbidden, "reason": r.reason}))
            .collect();
        out.push(json!({
            "event": i + 1, "at": e["at"], "kind": name,
            "changed": changed, "notified": sent, "refused": refused,
        }));
    }
    BTreeMap::from([("transitions", out)])
}

fn to_lines(rows: &[Value]) -> String {
    rows.iter()
        .map(|r| serde_json::to_string(r).expect("json") + "\n")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_scenarios() {
    let bless = std::env::var("DUBAN_BLESS").is_ok_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/golden")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.toml").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "{} golden cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let spec: CaseFile = duban::config::load_toml(&case.join("case.toml"))
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(!spec.pins.trim().is_empty(), "{name}: say what it pins");
        let got = match spec.kind {
            Kind::Engine => run_engine(case, &case_config(spec.config.as_ref())).await,
            Kind::Lifecycle => run_lifecycle(case),
        };
        let expected = case.join("expected");
        for (table, rows) in &got {
            let path = expected.join(format!("{table}.jsonl"));
            let text = to_lines(rows);
            if bless {
                std::fs::create_dir_all(&expected).expect("expected/");
                std::fs::write(&path, &text).expect("write expected");
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if want != text {
                let diff: Vec<String> = want
                    .lines()
                    .map(|l| format!("- {l}"))
                    .filter(|l| !text.lines().any(|t| l[2..] == *t))
                    .chain(
                        text.lines()
                            .filter(|t| !want.lines().any(|l| l == *t))
                            .map(|t| format!("+ {t}")),
                    )
                    .collect();
                failures.push(format!(
                    "{name}/expected/{table}.jsonl differs (DUBAN_BLESS=1 rewrites it):\n{}",
                    diff.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
