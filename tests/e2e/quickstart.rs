//! The Chinese quick start (README.zh-CN.md) kept true: every command of its ```sh blocks runs as
//! written in a deployment folder whose lifecycle runs on the real broker, and prints its ```text.

use crate::common::*;
use duban::record::{AlertLevel, AlertStatus, AlertTrigger, TransitionKind};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const SUPERVISOR: &str = "qs-supervisor-token";
const UNIT: &str = "qs-unit-token";

/// One command of the document, with the `export` lines before it and what it must print.
#[derive(Debug)]
struct Step {
    script: String,
    command: String,
    expect: Vec<String>,
    /// Marked `# 常驻运行`: a server; checked once it has printed its lines, then stopped.
    serves: bool,
}

/// The commands of the document's ```sh blocks; a ```text block is what the block before it
/// prints (its last command).
fn steps(doc: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut exports: Vec<String> = Vec::new();
    let mut block: Option<(String, Vec<String>)> = None;
    for line in doc.lines() {
        match (&mut block, line.strip_prefix("```")) {
            (None, Some(info)) => block = Some((info.trim().to_string(), Vec::new())),
            (Some((info, lines)), Some(_)) => {
                match info.as_str() {
                    "sh" => {
                        let joined = lines.join("\n").replace("\\\n", " ");
                        for cmd in joined.lines().map(str::trim) {
                            if cmd.is_empty() || cmd.starts_with('#') {
                                continue;
                            }
                            if cmd.starts_with("export ") {
                                exports.push(cmd.to_string());
                                continue;
                            }
                            steps.push(Step {
                                script: exports.join("\n"),
                                command: cmd.to_string(),
                                expect: Vec::new(),
                                serves: cmd.contains("# 常驻运行"),
                            });
                        }
                    }
                    "text" => {
                        let last = steps.last_mut().expect("a ```text block follows a command");
                        last.expect
                            .extend(lines.iter().filter(|l| !l.trim().is_empty()).cloned());
                    }
                    other => panic!("README.zh-CN.md: a ```{other} block (use sh or text)"),
                }
                block = None;
            }
            (Some((_, lines)), None) => lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    assert!(block.is_none(), "README.zh-CN.md: an unclosed ``` block");
    steps
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether one line of `out` holds the parts of `pattern` between its `…`, in order (runs of
/// white space count as one space).
fn prints(out: &str, pattern: &str) -> bool {
    let parts: Vec<String> = pattern
        .split('…')
        .map(squash)
        .filter(|p| !p.is_empty())
        .collect();
    out.lines().map(squash).any(|line| {
        let mut rest = line.as_str();
        parts.iter().all(|p| match rest.find(p.as_str()) {
            Some(i) => {
                rest = &rest[i + p.len()..];
                true
            }
            None => false,
        })
    })
}

/// Kills a child process when dropped (also when the test fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A shell in the deployment folder, as a user's: `duban` on the PATH, no secrets of the tests.
fn shell(dir: &Path, api: &str, step: &Step) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_duban"))
        .parent()
        .expect("bin dir");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let exec = if step.serves { "exec " } else { "" };
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -e\n{}\n{exec}{}", step.script, step.command))
        .current_dir(dir)
        .env("PATH", path)
        .env("DUBAN_API_URL", api)
        .env_remove(duban::engine::PSEUDONYM_KEY_ENV)
        .env_remove("DUBAN_LOG")
        .env_remove("DUBAN_API_TOKEN")
        .env_remove("DUBAN_API_TOKENS")
        .env_remove("DUBAN_CLOCK_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn missing<'a>(out: &str, expect: &'a [String]) -> Vec<&'a String> {
    expect.iter().filter(|p| !prints(out, p)).collect()
}

/// Run a server step until it has printed its lines, then stop it.
fn run_server(dir: &Path, api: &str, step: &Step) {
    let mut child = Running(shell(dir, api, step).spawn().expect("bash runs"));
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut out = String::new();
    while !missing(&out, &step.expect).is_empty() {
        let left = WAIT.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(_) => {
                let _ = child.0.kill();
                let err = child
                    .0
                    .stderr
                    .take()
                    .map(|mut e| {
                        let mut s = String::new();
                        let _ = std::io::Read::read_to_string(&mut e, &mut s);
                        s
                    })
                    .unwrap_or_default();
                panic!(
                    "`{}` stopped or went quiet without printing {:?}\nstdout:\n{out}\nstderr:\n{err}",
                    step.command,
                    missing(&out, &step.expect)
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_quick_start_commands_run_as_written() {
    // A deployment folder: var/data from a small demo, config/duban.toml for the real broker.
    let dir = tmpdir("quickstart");
    let data = dir.join("var/data");
    run_ok(duban().args(["demo", "--size", "300", "--out"]).arg(&data));
    let mut alerts: Vec<duban::record::Alert> = std::fs::read_to_string(data.join("alerts.jsonl"))
        .expect("the demo writes alerts.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an alert"))
        .collect();
    for a in &mut alerts {
        // As the engine raises them: the lifecycle on Kafka takes them up.
        a.level = AlertLevel::Yellow;
        a.lifecycle = Default::default();
    }
    // The document's example line is a crowd alert's (…名群众反映…).
    let target = alerts
        .iter()
        .find(|a| a.trigger == AlertTrigger::CrowdConcentration)
        .expect("the demo raised a crowd alert")
        .clone();
    let prefix = unique("quickstart");
    std::fs::create_dir_all(dir.join("config")).expect("config dir");
    std::fs::write(
        dir.join("config/duban.toml"),
        format!(
            "data_dir = {data:?}\n[kafka]\nbootstrap_servers = {:?}\ntopic_prefix = {prefix:?}\n\
             [lifecycle]\ngroup_id = \"{prefix}-lifecycle\"\nhttp_bind = \"127.0.0.1:0\"\n\
             [lifecycle.tokens]\n{SUPERVISOR:?} = \"supervisor\"\n{UNIT:?} = \"unit:{}\"\n",
            bootstrap(),
            target.unit,
            data = data.display().to_string(),
        ),
    )
    .expect("config");
    let cfg = duban::config::Config::load(&dir.join("config/duban.toml")).expect("config loads");
    let bus = duban::pipeline::kafka::connect(&cfg)
        .await
        .expect("Kafka reachable");
    let topics = bus.topics();
    for t in [&topics.alerts, &topics.alerts_raised, &topics.labels] {
        duban::lifecycle::run::read_to_end(&bootstrap(), t).expect("topic ready");
    }
    let raised: Vec<(String, Vec<u8>)> = alerts
        .iter()
        .map(|a| (a.alert_id.clone(), serde_json::to_vec(a).expect("json")))
        .collect();
    bus.send_all(&topics.alerts_raised, &raised)
        .await
        .expect("raised alerts sent");

    // The lifecycle on the broker, serving the alerts API the document's commands call.
    let log = dir.join("lifecycle.log");
    let addr_file = data.join("lifecycle-api.addr");
    let _lifecycle = Running(
        Command::new(env!("CARGO_BIN_EXE_duban"))
            .args(["lifecycle", "--config", "config/duban.toml"])
            .current_dir(&dir)
            .env_remove("DUBAN_CLOCK_FILE")
            .env_remove("DUBAN_API_TOKENS")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("duban lifecycle starts"),
    );
    let board = || -> Vec<duban::record::Alert> {
        duban::lifecycle::run::read_to_end(&bootstrap(), &topics.alerts)
            .expect("board topic readable")
            .iter()
            .map(|(_, v)| serde_json::from_slice(v).expect("board record is an alert"))
            .collect()
    };
    let start = Instant::now();
    let api = loop {
        let up = std::fs::read_to_string(&addr_file).unwrap_or_default();
        if !up.is_empty() && board().iter().any(|a| a.alert_id == target.alert_id) {
            break format!("http://{}", up.trim());
        }
        assert!(
            start.elapsed() < WAIT,
            "the lifecycle did not take up the alerts: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    // The document with its placeholders filled in.
    let yesterday = chrono::Utc::now()
        .with_timezone(&duban::record::local_offset())
        .date_naive()
        .pred_opt()
        .expect("a day");
    let doc = std::fs::read_to_string(repo("README.zh-CN.md"))
        .expect("README.zh-CN.md")
        .replace("<督办令牌>", SUPERVISOR)
        .replace("<单位令牌>", UNIT)
        .replace("<预警编号>", &target.alert_id)
        .replace("<日期>", &yesterday.to_string())
        .replace("--port 8090", "--port 0");
    let steps = steps(&doc);
    let commands: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
    for want in [
        "serve",
        "alerts list",
        "alerts feedback",
        "alerts verify",
        "report",
        "sql",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c.starts_with(&format!("duban {want}"))),
            "the quick start lost its `duban {want}`: {commands:?}"
        );
    }
    for step in &steps {
        assert!(
            !step.command.contains('<') && !step.script.contains('<'),
            "an unknown placeholder in `{}`",
            step.command
        );
        if step.serves {
            run_server(&dir, &api, step);
            continue;
        }
        let out = shell(&dir, &api, step).output().expect("bash runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "`{}` failed: {stderr}\nlifecycle: {}",
            step.command,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let lost = missing(&stdout, &step.expect);
        assert!(
            lost.is_empty(),
            "`{}` did not print {lost:?}:\n{stdout}",
            step.command
        );
        if step.command.starts_with("duban sql") {
            // An analyst's session needs no key and warns about none.
            assert!(stderr.is_empty(), "`{}` wrote: {stderr}", step.command);
        }
    }

    // The commands acted on the broker's board: the unit's feedback and the bureau's check.
    let done = board()
        .into_iter()
        .rfind(|a| a.alert_id == target.alert_id)
        .expect("the alert is on the board");
    assert_eq!(
        (done.level, done.lifecycle.status),
        (AlertLevel::Green, AlertStatus::Closed)
    );
    let steps_taken: Vec<(TransitionKind, &str)> = done
        .lifecycle
        .history
        .iter()
        .map(|t| (t.action, t.role.as_str()))
        .collect();
    let unit_role = format!("unit:{}", target.unit);
    assert_eq!(
        steps_taken,
        [
            (TransitionKind::Raise, "system"),
            (TransitionKind::Feedback, unit_role.as_str()),
            (TransitionKind::Verify, "supervisor"),
        ]
    );
    assert!(dir.join("hot-issues.csv").is_file(), "the CSV export");
}

#[test]
fn prints_matches_parts_in_order_on_one_line() {
    assert!(prints("a\n| board | 61 |\n", "| board      | … |"));
    assert!(!prints("| 61 | board |\n", "| board | … | 61"));
    assert!(!prints("x yellow\nassigned\n", "…yellow…assigned…"));
    assert!(prints(
        "AL-1\tyellow\tassigned\t2026-12-01\n",
        "AL-1	yellow	assigned	…"
    ));
}
