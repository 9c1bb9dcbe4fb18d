//! Profiles: the shipped files load, invalid ones name file, line and field, requests are built
//! and signed as the real feeds expect, and sources run against the simulator's stand-ins.

use super::*;
use crate::connectors::board::Fetched;
use crate::connectors::output::Commit;
use crate::record::{DeadLetter, RawEnvelope};
use std::collections::{BTreeMap, HashSet};

pub(crate) fn shipped(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("connectors/profiles")
        .join(name);
    Profile::load(&path).expect("a shipped profile loads")
}

fn temp_profile(name: &str, text: &str) -> (PathBuf, anyhow::Result<Profile>) {
    let dir = std::env::temp_dir().join(format!("duban-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    let r = Profile::load(&path);
    (path, r)
}

#[test]
fn every_shipped_profile_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/profiles");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).expect("profiles") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            let p = Profile::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
            names.push(p.name.clone());
            assert!(
                p.kind == Kind::Export || p.base_url.starts_with("https://"),
                "{}: a pulled profile keeps the real feed's address",
                p.name
            );
        }
    }
    names.sort();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "profile names are connector names: {names:?}"
    );
    assert!(names.len() >= 2, "{names:?}");
}

const MINIMAL: &str = r#"name = "t"
channel = "board"
kind = "json"
base_url = "http://127.0.0.1:9"

[list]
path = "/list"
records = "/items"

[fields]
source_id = "/item/id"
content = "/item/text"
received_at = "/item/at"
"#;

#[test]
fn invalid_profiles_name_the_file_the_line_and_the_field() {
    let (_, ok) = temp_profile("ok.toml", MINIMAL);
    ok.expect("the minimal profile loads");
    let cases: &[(&str, &str, &str, &str)] = &[
        // (what is replaced, by what, the line, what the message names)
        (
            "records = \"/items\"",
            "records = \"/items\"\npages = 3",
            ":9:",
            "pages",
        ),
        (
            "path = \"/list\"",
            "path = \"/list\"\npaging = { kind = \"pages\" }",
            ":8:",
            "kind",
        ),
        (
            "path = \"/list\"",
            "path = \"/list?x=${cursor|sha3}\"",
            ":7:",
            "list.path",
        ),
        (
            "content = \"/item/text\"",
            "body = \"/item/text\"",
            ":12:",
            "fields.body",
        ),
        (
            "received_at = \"/item/at\"",
            "received_at = { from = \"/item/at\", time = \"weekly\" }",
            ":13:",
            "fields.received_at.time",
        ),
        (
            "source_id = \"/item/id\"\n",
            "",
            ":10:",
            "maps no `source_id`",
        ),
        (
            "path = \"/list\"",
            "path = \"/list/${nope}\"",
            ":7:",
            "reads ${nope}",
        ),
        (
            "base_url = \"http://127.0.0.1:9\"",
            "base_url = \"http://127.0.0.1:9\"\n[vars]\nk = \"${env.DUBAN_TEST_SURELY_UNSET_VAR}\"",
            ":6:",
            "vars.k",
        ),
        (
            "path = \"/list\"",
            "path = \"list\"",
            ":7:",
            "must start with /",
        ),
        ("name = \"t\"", "name = \"t t\"", ":1:", "`name`"),
    ];
    for (from, to, line, names) in cases {
        let text = MINIMAL.replacen(from, to, 1);
        assert_ne!(text, MINIMAL, "{from}");
        let (path, r) = temp_profile("bad.toml", &text);
        let err = format!("{:#}", r.expect_err(from));
        assert!(
            err.starts_with(&path.display().to_string()),
            "names the file: {err}"
        );
        assert!(err.contains(line), "names line {line}: {err}");
        assert!(err.contains(names), "names {names}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn v1_requests_are_signed_over_the_param_as_sent() {
    let p = shipped("peoples-daily-v1.toml")
        .with_base_url("http://feed.test/pd")
        .expect("base");
    let list = p.list.as_ref().expect("list");
    let pager = super::http::Pager::new(list.paging.as_ref());
    let req = list.build(&p, pager.vars(), None, true).expect("builds");
    assert_eq!(req.url, "http://feed.test/pd/v1/threads/list/df");
    let (ct, body) = req.body.expect("a body");
    assert!(ct.starts_with("application/json"));
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    let param = body["param"].as_str().expect("param is a string");
    assert_eq!(
        param,
        r#"{"fid":"539","showUnAnswer":1,"typeId":5,"lastItem":"","position":"0","rows":10,"orderType":2}"#,
        "key order as written, no spaces, rows a number"
    );
    // The simulator's own implementation of the web app's signature agrees.
    let want =
        crate::sim::peoples::signature("/pd/v1/threads/list/df", param, "PC42ce3bfa4980a9", "");
    assert_eq!(body["signature"], want.as_str());
    assert_eq!(body["token"], "");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 4);
    // A detail request carries the item's id as text, whatever type the list sent.
    let detail = p.detail.as_ref().expect("detail");
    let item = json!({"tid": 18200042});
    let req = detail
        .build(
            &p,
            vec![("id", template::Var::Text("18200042".into()))],
            Some(&item),
            false,
        )
        .expect("builds");
    let body: Value = serde_json::from_slice(&req.body.expect("body").1).expect("JSON");
    assert_eq!(body["param"], r#"{"tid":"18200042","fromTrash":0}"#);
}

#[test]
fn the_unsigned_list_posts_a_form_with_the_cursor() {
    let p = shipped("peoples-daily-list.toml")
        .with_base_url("http://feed.test/pd/")
        .expect("base");
    let list = p.list.as_ref().expect("list");
    let mut pager = super::http::Pager::new(list.paging.as_ref());
    let body = |pager: &super::http::Pager| {
        let req = list
            .build(&p, pager.vars(), None, pager.first())
            .expect("builds");
        assert_eq!(req.url, "http://feed.test/pd/threads/queryThreadsList");
        let (ct, b) = req.body.expect("body");
        assert!(ct.starts_with("application/x-www-form-urlencoded"));
        String::from_utf8(b).expect("text")
    };
    assert_eq!(body(&pager), "fid=539&lastItem=0&pageSize=20&state=1");
    assert!(pager.advance(super::http::PageSeen {
        records: 20,
        news: true,
        cursor: Some("18200042".into()),
        ..Default::default()
    }));
    assert_eq!(
        body(&pager),
        "fid=539&lastItem=18200042&pageSize=20&state=1"
    );
    // The same cursor again ends the walk; so does an empty page.
    let same = super::http::PageSeen {
        records: 20,
        news: true,
        cursor: Some("18200042".into()),
        ..Default::default()
    };
    assert!(!pager.advance(same));
}

#[test]
fn pages_stop_after_the_lookback_without_news() {
    let p = shipped("peoples-daily-v1.toml");
    let g = p
        .list
        .as_ref()
        .and_then(|l| l.paging.as_ref())
        .expect("paging");
    assert_eq!(g.lookback_pages, 2);
    let mut pager = super::http::Pager::new(Some(g));
    let page = |c: &str, news: bool| super::http::PageSeen {
        records: 10,
        news,
        cursor: Some(c.into()),
        ..Default::default()
    };
    assert!(pager.advance(page("9", false)));
    assert!(pager.advance(page("8", false)));
    assert!(!pager.advance(page("7", false)), "third quiet page stops");
    let mut pager = super::http::Pager::new(Some(g));
    assert!(!pager.advance(page("", true)), "an empty cursor stops");
}

/// Run a profile against a simulator to its end, collecting what it commits.
pub(crate) async fn pull(p: &Profile) -> (Vec<RawEnvelope>, Vec<DeadLetter>) {
    let (sink, mut rx) = Sink::channel(&p.name);
    let run = async move {
        let r = super::run(p, &sink, Positions::new(), Mode::Drain).await;
        drop(sink);
        r
    };
    let collect = async {
        let mut all: Vec<Commit> = Vec::new();
        while let Some(c) = rx.recv().await {
            all.push(c);
        }
        all
    };
    let (r, commits) = tokio::join!(run, collect);
    r.expect("the profile drains");
    let mut envs = Vec::new();
    let mut dead = Vec::new();
    for c in commits {
        envs.extend(c.records);
        dead.extend(c.dead);
    }
    (envs, dead)
}

pub(crate) async fn sim(faults: crate::sim::faults::Faults) -> crate::sim::SimHandle {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("duban-profile-sim-{}-{n}", std::process::id()));
    crate::sim::start(crate::sim::SimConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        seed: 5,
        size: 300,
        end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
        export_dir: dir,
        push_url: None,
        faults,
        ..crate::sim::SimConfig::default()
    })
    .await
    .expect("simulator")
}

fn fast(mut p: Profile) -> Profile {
    p.http.max_requests_per_sec = 0.0;
    p.http.backoff_initial_ms = 5;
    p.http.backoff_max_ms = 50;
    p.http.circuit_open_secs = 0;
    p
}

/// Both People's Daily profiles against the stand-in, which throttles (403, 429, empty
/// bodies) and breaks some details: every message once with its full text, time and reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peoples_daily_profiles_bring_every_message_once_in_full() {
    let faults = crate::sim::faults::Faults {
        peoples_daily: crate::sim::faults::FeedFaults {
            throttle_rate: 0.15,
            malformed_rate: 0.05,
            ..Default::default()
        },
        ..Default::default()
    };
    let sim = sim(faults).await;
    let base = format!("{}/pd", sim.base_url());
    let board = {
        let threads = sim.pd_threads();
        threads
            .into_iter()
            .map(|t| (t.tid.to_string(), t))
            .collect::<BTreeMap<_, _>>()
    };
    let cut = board
        .values()
        .filter(|t| t.content.chars().count() > 100)
        .count();
    assert!(cut > 20, "the stand-in cuts {cut} list texts");
    let broken: HashSet<String> = sim.pd_malformed().into_iter().collect();
    assert!(!broken.is_empty());
    for file in ["peoples-daily-v1.toml", "peoples-daily-list.toml"] {
        let p = fast(shipped(file).with_base_url(&base).expect("base"));
        let (envs, dead) = pull(&p).await;
        let ids: Vec<&str> = envs.iter().map(|e| e.source_id.as_str()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{file}: each message once");
        assert_eq!(
            envs.len() + dead.len(),
            board.len(),
            "{file}: every message, as a record or a dead letter"
        );
        for d in &dead {
            let tid = d.origin.rsplit(':').next().unwrap_or("");
            assert!(broken.contains(tid), "{file}: {}", d.reason);
            assert!(d.reason.contains("`content`"), "{}", d.reason);
        }
        for e in &envs {
            let t = &board[&e.source_id];
            assert_eq!(e.payload["content"], t.content.trim(), "{file}: full text");
            assert_eq!(e.payload["title"], t.subject.trim());
            let at = chrono::DateTime::parse_from_rfc3339(
                e.payload["received_at"].as_str().expect("time"),
            )
            .expect("rfc3339");
            assert_eq!(at.naive_local(), t.at, "{file}: Asia/Shanghai local time");
            assert_eq!(at.offset().local_minus_utc(), 8 * 3600);
            match &t.reply {
                Some(r) => {
                    assert_eq!(e.payload["reply"], r.trim(), "{file}: the full reply");
                    assert!(e.payload["replied_at"].is_string());
                    assert_eq!(
                        e.payload["reply_unit"],
                        t.organization.as_deref().unwrap_or("")
                    );
                }
                None => assert!(e.payload.get("reply").is_none()),
            }
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_signature_fails_with_the_feeds_own_message() {
    let sim = sim(Default::default()).await;
    let base = format!("{}/pd", sim.base_url());
    let mut p = fast(
        shipped("peoples-daily-v1.toml")
            .with_base_url(&base)
            .expect("base"),
    );
    p.vars.insert("app_code".into(), "not-the-app-code".into());
    let (sink, _rx) = Sink::channel(&p.name);
    let err = super::run(&p, &sink, Positions::new(), Mode::Drain)
        .await
        .expect_err("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("SN0006") && msg.contains("数据格式错误"),
        "{msg}"
    );
    assert!(msg.contains("list page 1"), "{msg}");
    sim.shutdown().await;
}

/// The three 12345 export profiles over the simulator's orders written in five real layouts
/// (XLSX with date cells, a GBK CSV with 12345-prefixed headers, an XLSX with a title row and
/// plain Excel serial days, a GB18030 CSV with dates only, a BOM CSV with category paths):
/// every order once, ids without prefixes, text, time (to the layout's precision), paths.
#[test]
fn export_profiles_read_every_real_layout() {
    use crate::sim::layouts::{self, Layout};
    let dir = std::env::temp_dir().join(format!("duban-layouts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = crate::sim::SimConfig {
        seed: 9,
        size: 300,
        end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
        push_url: None,
        ..crate::sim::SimConfig::default()
    };
    let corpus = crate::sim::corpus(&cfg).expect("corpus");
    let orders: Vec<crate::sim::wire::HotlineOrder> = corpus
        .of_channel(crate::record::Channel::Hotline)
        .map(|c| crate::sim::wire::hotline_order(c, &corpus.people[c.person]))
        .collect();
    let broken: HashSet<String> = orders
        .iter()
        .step_by(40)
        .map(|o| o.order_no.clone())
        .collect();
    layouts::write_layouts(&dir, &orders, &broken).expect("exports");
    let profiles = [
        ("12345-city-export.toml", "city"),
        ("12345-district-exports.toml", "district"),
        ("12345-pushed-export.toml", "pushed"),
    ];
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (file, folder) in profiles {
        let p = shipped(file);
        for e in std::fs::read_dir(dir.join(folder)).expect("folder") {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("read");
            let rows =
                export::rows(&p, &name, &bytes).unwrap_or_else(|e| panic!("{file} {name}: {e:#}"));
            for (_, f) in rows {
                match f {
                    Fetched::Record(e) => {
                        *seen.entry(e.source_id.clone()).or_default() += 1;
                        let o = orders
                            .iter()
                            .find(|o| o.order_no == e.source_id)
                            .unwrap_or_else(|| panic!("{name}: unknown id {}", e.source_id));
                        let layout = layouts::layout_of(&o.order_no);
                        assert_eq!(layout.folder(), folder);
                        assert_eq!(e.payload["content"], o.content.trim(), "{name}");
                        let want = chrono::NaiveDateTime::parse_from_str(
                            &o.call_time,
                            "%Y-%m-%d %H:%M:%S",
                        )
                        .expect("time")
                        .and_utc()
                        .timestamp();
                        let got = chrono::DateTime::parse_from_rfc3339(
                            e.payload["received_at"].as_str().expect("time"),
                        )
                        .expect("rfc3339");
                        let got = got.naive_local().and_utc().timestamp();
                        let step = layout.time_precision_secs();
                        assert_eq!(
                            got,
                            want - want.rem_euclid(step),
                            "{name} {}: time",
                            o.order_no
                        );
                        let path = o.category.replacen('-', ">", 1);
                        assert_eq!(e.payload["category"], path.as_str(), "{name}");
                        assert_eq!(e.payload["handling_unit"], o.handling_unit.as_str());
                        if layout == Layout::DistrictPrefixed {
                            assert_eq!(e.payload["district"], o.district.as_str());
                        }
                    }
                    Fetched::Dead(d) => {
                        let row = String::from_utf8_lossy(&d.original()).into_owned();
                        assert!(
                            broken.iter().any(|b| row.contains(b.as_str())),
                            "{}",
                            d.reason
                        );
                        assert!(
                            d.reason.contains("`content`") && d.reason.contains(&name),
                            "{}",
                            d.reason
                        );
                        *seen.entry(format!("dead:{}", d.origin)).or_default() += 1;
                    }
                }
            }
        }
    }
    let records = seen.keys().filter(|k| !k.starts_with("dead:")).count();
    let dead = seen.keys().filter(|k| k.starts_with("dead:")).count();
    assert!(seen.values().all(|n| *n == 1), "each order once");
    assert_eq!(dead, broken.len(), "every broken row dead-lettered");
    assert_eq!(records + dead, orders.len(), "every order");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_export_whose_header_fits_no_variant_is_one_clear_error() {
    let p = shipped("12345-district-exports.toml");
    let err = export::rows(&p, "x.csv", "编号,时间\n1,2\n".as_bytes()).expect_err("no layout");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("x.csv")
            && msg.contains("headers prefixed 12345")
            && msg.contains("plain headers"),
        "{msg}"
    );
}

/// Legacy `.xls` workbooks and Excel's "Unicode text" (UTF-16 with BOM, tab-separated `.txt`)
/// are read by the same profile: a synthetic district file (tests/fixtures, made-up texts) with a
/// title row, date cells, a plain Excel serial and prefixed ids.
#[test]
fn xls_workbooks_and_utf16_tab_texts_read_by_profile() {
    let p = shipped("12345-district-exports.toml");
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/12345-district-synthetic.xls");
    let bytes = std::fs::read(&path).expect("fixture");
    let records = |rows: Vec<(u64, Fetched)>| -> Vec<RawEnvelope> {
        rows.into_iter()
            .map(|(line, f)| match f {
                Fetched::Record(e) => e,
                Fetched::Dead(d) => panic!("line {line}: {}", d.reason),
            })
            .collect()
    };
    let got = records(export::rows(&p, "2019年工单.xls", &bytes).expect("xls"));
    let summary: Vec<(String, String, String)> = got
        .iter()
        .map(|e| {
            (
                e.source_id.clone(),
                e.payload["received_at"].as_str().unwrap_or("").to_string(),
                e.payload["category"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "2019000101".into(),
                "2019-03-05T09:30:00+08:00".into(),
                "城乡建设>市政设施>路灯".into()
            ),
            (
                "2019000102".into(),
                "2019-03-06T14:05:00+08:00".into(),
                "生态环境>大气污染".into()
            ),
            (
                "2019000103".into(),
                "2019-03-07T12:00:00+08:00".into(),
                "住房保障".into()
            ),
        ]
    );
    assert_eq!(
        got[0].payload["content"],
        "小区门口路灯不亮，夜间出行不便。"
    );
    assert_eq!(got[0].payload["reply"], "已安排维修。");
    assert!(got[1].payload.get("reply").is_none_or(Value::is_null));

    // The same layout saved as Unicode text: UTF-16LE with its BOM, cells separated by tabs.
    let text = "工单编号\t受理时间\t内容描述\t主办单位\t一级分类\n\
                SH2019000104\t2019-03-08 08:00:00\t井盖松动，有安全隐患。\t区城管局\t城乡建设\n";
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let got = records(export::rows(&p, "2019年工单.txt", &utf16).expect("utf-16"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].source_id, "2019000104");
    assert_eq!(got[0].payload["content"], "井盖松动，有安全隐患。");
    assert_eq!(got[0].payload["received_at"], "2019-03-08T08:00:00+08:00");

    // A separator can be forced; a bad one fails at load naming the file, line and field.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("connectors/profiles/12345-district-exports.toml"),
    )
    .expect("profile");
    let semi = text.replace(
        "header_scan_rows = 10",
        "header_scan_rows = 10\ndelimiter = \";\"",
    );
    let (_, p) = temp_profile("semicolons.toml", &semi);
    let p = p.expect("loads");
    let rows = export::rows(
        &p,
        "a.csv",
        "工单编号;受理时间;内容描述\n7;2019-03-09;路面塌陷\n".as_bytes(),
    );
    let got = records(rows.expect("semicolons"));
    assert_eq!(
        (got[0].source_id.as_str(), &got[0].payload["content"]),
        ("7", &json!("路面塌陷"))
    );
    let bad = text.replace(
        "header_scan_rows = 10",
        "header_scan_rows = 10\ndelimiter = \"ab\"",
    );
    let (_, err) = temp_profile("bad-delimiter.toml", &bad);
    let msg = format!("{:#}", err.expect_err("bad delimiter"));
    assert!(
        msg.contains("bad-delimiter.toml:") && msg.contains("export.delimiter"),
        "{msg}"
    );
}

/// The letter-box profile over the simulator's GB2312 pages: every public letter once with its
/// label/value fields; letters without a link are skipped; the reply kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_letter_box_profile_scrapes_label_value_pages() {
    let faults = crate::sim::faults::Faults {
        portal: crate::sim::faults::FeedFaults {
            throttle_rate: 0.1,
            ..Default::default()
        },
        ..Default::default()
    };
    let sim = sim(faults).await;
    let p = fast(
        shipped("portal-mailbox.toml")
            .with_base_url(&sim.base_url())
            .expect("base"),
    );
    let (envs, dead) = pull(&p).await;
    assert!(dead.is_empty(), "{dead:?}");
    let letters = sim.mailbox_letters();
    let public: Vec<_> = letters.iter().filter(|l| !l.private).collect();
    assert!(public.len() < letters.len(), "some letters are not public");
    assert_eq!(envs.len(), public.len());
    for l in public {
        let e = envs.iter().find(|e| e.source_id == l.no).expect("taken");
        // Paragraphs come back as lines: the same text but for its line breaks.
        let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        assert_eq!(
            squash(e.payload["content"].as_str().expect("text")),
            squash(&l.content)
        );
        assert_eq!(e.payload["title"], l.title.trim());
        assert_eq!(e.payload["name"], l.writer.as_str());
        assert_eq!(e.payload["status"], l.status.as_str());
        let at =
            chrono::DateTime::parse_from_rfc3339(e.payload["received_at"].as_str().expect("t"))
                .expect("rfc3339");
        assert_eq!(at.naive_local(), l.at);
        assert_eq!(
            e.payload.get("reply").and_then(Value::as_str),
            l.reply.as_deref().map(str::trim)
        );
        assert_eq!(
            e.payload.get("reply_unit").and_then(Value::as_str),
            l.unit.as_deref()
        );
    }
    sim.shutdown().await;
}

#[test]
fn labels_pair_cells_and_inline_texts() {
    let html = r#"<table class="t"><tr><th>信件编号：</th><td>A1</td><th>来 信 人：</th><td>张**</td></tr>
        <tr><th>标　　题：</th><td>路灯</td></tr><tr><td>来信时间：2024-05-01 10:00</td></tr></table>
        <div class="i"><span>受理编号: B2</span><span>回复：已处理</span></div>"#;
    let doc = scraper::Html::parse_document(html);
    let cells = scraper::Selector::parse("table.t th, table.t td").expect("sel");
    let inline = scraper::Selector::parse("div.i span").expect("sel");
    let m = html::labels(&doc, Some(&cells), Some(&inline));
    assert_eq!(m["信件编号"], "A1");
    assert_eq!(m["来信人"], "张**");
    assert_eq!(m["标题"], "路灯");
    assert_eq!(m["来信时间"], "2024-05-01 10:00");
    assert_eq!(m["受理编号"], "B2");
    assert_eq!(m["回复"], "已处理");
}

/// A feed that answers one request with a failure envelope (a hiccup) and a list whose last page
/// is `null`: the hiccup is asked again, the null page ends the walk, nothing is lost.
#[tokio::test]
async fn a_failure_envelope_is_asked_again_and_a_null_page_is_empty() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/list",
        axum::routing::get(move |q: axum::extract::Query<BTreeMap<String, String>>| {
            let n = h.fetch_add(1, Ordering::SeqCst);
            async move {
                let page = q.get("page").cloned().unwrap_or_default();
                let body = match (n, page.as_str()) {
                    (0, _) => json!({"ok": false, "msg": "系统繁忙"}),
                    (_, "1") => json!({"ok": true, "items": [
                        {"id": 2, "text": "b", "at": "2026-11-02 10:00:00"},
                        {"id": "1", "text": "a", "at": "2026-11-01 10:00:00"}]}),
                    _ => json!({"ok": true, "items": null}),
                };
                axum::Json(body)
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    let text = MINIMAL
        .replace("http://127.0.0.1:9", &format!("http://{addr}"))
        .replace(
            "records = \"/items\"",
            "records = \"/items\"\nsuccess = { pointer = \"/ok\", equals = true, message = [\"/msg\"] }\nquery = { page = \"${page}\" }\npaging = { kind = \"page\" }",
        );
    let (_, p) = temp_profile("hiccup.toml", &text);
    let p = fast(p.expect("loads"));
    let (envs, dead) = pull(&p).await;
    assert!(dead.is_empty());
    let ids: Vec<&str> = envs.iter().map(|e| e.source_id.as_str()).collect();
    assert_eq!(ids, ["1", "2"], "oldest first, numbers and strings alike");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "the hiccup, page 1, the null page 2"
    );
}

#[test]
fn a_signature_can_go_in_a_header_and_pages_can_start_at_another_path() {
    let text = r#"name = "t"
channel = "portal"
kind = "html"
base_url = "http://site.test/"

[vars]
key = "${env.DUBAN_TEST_SURELY_UNSET_KEY:-k3y}"

[sign]
digest = "hmac-sha256"
key = "${key}"
input = "${path}?${query.pageIndex}"
encoding = "hex-upper"

[list]
first_path = "/xx/index.html"
path = "/xx/index_${page}.html"
query = { pageIndex = "${page}" }
headers = { X-Sign = "${signature}", Referer = "${base_url}/xx/" }
rows = "li"
link = "a"
paging = { kind = "page", first_page = 1 }

[fields]
source_id = "/item/id"
content = "/detail/内容"
received_at = "/detail/时间"
"#;
    let (_, p) = temp_profile("signed-header.toml", text);
    let p = p.expect("loads");
    let list = p.list.as_ref().expect("list");
    let mut pager = super::http::Pager::new(list.paging.as_ref());
    let req = list
        .build(&p, pager.vars(), None, pager.first())
        .expect("page 1");
    assert_eq!(req.url, "http://site.test/xx/index.html?pageIndex=1");
    let header = |r: &crate::connectors::feed::Request, k: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let want = template::sign(
        template::Digest::HmacSha256,
        b"k3y",
        b"/xx/index.html?1",
        template::Encoding::HexUpper,
    );
    assert_eq!(header(&req, "X-Sign"), Some(want));
    assert_eq!(
        header(&req, "Referer").as_deref(),
        Some("http://site.test/xx/")
    );
    assert!(pager.advance(super::http::PageSeen {
        records: 20,
        news: true,
        ..Default::default()
    }));
    let req = list
        .build(&p, pager.vars(), None, pager.first())
        .expect("page 2");
    assert_eq!(req.url, "http://site.test/xx/index_2.html?pageIndex=2");
}

/// Messages taken before they were answered are fetched again once the feed answers them, and
/// come again as a newer version with the reply; then they are forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_messages_are_fetched_again_until_their_reply() {
    let sim = sim(Default::default()).await;
    let mut p = fast(
        shipped("peoples-daily-v1.toml")
            .with_base_url(&format!("{}/pd", sim.base_url()))
            .expect("base"),
    );
    p.revisit.as_mut().expect("revisit").interval_secs = 0;
    let bus = crate::bus::MemoryBus::new();
    let topics = crate::bus::Topics::new("t");
    let sink = Sink::open(&crate::bus::Bus::Memory(bus.clone()), &topics, &p.name)
        .await
        .expect("sink");
    let drain = || async {
        let pos = sink.restore().await.expect("positions");
        super::run(&p, &sink, pos, Mode::Drain)
            .await
            .expect("drains");
        bus.read(&topics.raw, 0)
            .iter()
            .map(|r| serde_json::from_slice::<RawEnvelope>(&r.value).expect("envelope"))
            .collect::<Vec<_>>()
    };
    let first = drain().await;
    let unanswered: Vec<&RawEnvelope> = first
        .iter()
        .filter(|e| e.payload.get("reply").is_none())
        .collect();
    assert!(!unanswered.is_empty() && unanswered.len() < first.len());
    assert!(unanswered.iter().all(|e| e.version.as_deref() == Some("0")));
    assert!(
        first
            .iter()
            .filter(|e| e.payload.get("reply").is_some())
            .all(|e| e.version.as_deref().is_some_and(|v| v.starts_with("1|")))
    );
    // Nothing new and nothing answered: a second pass sends nothing.
    assert_eq!(drain().await.len(), first.len());
    let answered: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/sim/pd/answer", sim.base_url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(answered["answered"], unanswered.len());
    let second = drain().await;
    let again = &second[first.len()..];
    assert_eq!(
        again.len(),
        unanswered.len(),
        "each unanswered message once more"
    );
    for e in again {
        assert!(e.payload["reply"].as_str().is_some_and(|r| !r.is_empty()));
        let v = e.version.as_deref().expect("a version");
        assert!(v.starts_with("1|") && v > "0", "{v}");
    }
    // Answered now: not fetched again.
    assert_eq!(drain().await.len(), second.len());
    sim.shutdown().await;
}

/// Offset paging stops at a short page; next-link paging follows relative and absolute links on
/// the feed's host and ends at a link to another host (never asked). Every record once.
#[tokio::test]
async fn offset_and_next_link_paging_walk_the_whole_list() {
    use std::sync::{Arc, Mutex};
    // Eight records, newest first; ids alternate numbers and strings.
    let rows: Vec<Value> = (1..=8)
        .rev()
        .map(|i| {
            let id = if i % 2 == 0 {
                json!(i)
            } else {
                json!(i.to_string())
            };
            json!({"id": id, "text": format!("t{i}"), "at": 1_700_000_000 + i * 60})
        })
        .collect();
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let (r1, r2, a1, a2) = (rows.clone(), rows.clone(), asked.clone(), asked.clone());
    let app = axum::Router::new()
        .route(
            "/offset",
            axum::routing::get(move |q: axum::extract::Query<BTreeMap<String, String>>| {
                let off: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(99);
                a1.lock().expect("log").push(format!("offset={off}"));
                let page: Vec<Value> = r1.iter().skip(off).take(3).cloned().collect();
                async move { axum::Json(json!({"data": {"rows": page}})) }
            }),
        )
        .route(
            "/next",
            axum::routing::get(
                move |headers: axum::http::HeaderMap,
                      q: axum::extract::Query<BTreeMap<String, String>>| {
                    let host = headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let from: usize = q.get("from").and_then(|o| o.parse().ok()).unwrap_or(0);
                    a2.lock().expect("log").push(format!("from={from}"));
                    let page: Vec<Value> = r2.iter().skip(from).take(3).cloned().collect();
                    let next = match from {
                        0 => json!("next?from=3"),
                        3 => json!(format!("http://{host}/next?from=6")),
                        _ => json!("http://elsewhere.invalid/next?from=9"),
                    };
                    async move { axum::Json(json!({"rows": page, "links": {"next": next}})) }
                },
            ),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    let base = MINIMAL
        .replace("http://127.0.0.1:9", &format!("http://{addr}"))
        .replace(
            "received_at = \"/item/at\"",
            "received_at = { from = \"/item/at\", time = [\"unix_s\"] }",
        );
    let offset = base.replace(
        "path = \"/list\"\nrecords = \"/items\"",
        "path = \"/offset\"\nrecords = \"/data/rows\"\nquery = { offset = \"${offset}\", limit = \"${page_size}\" }\npaging = { kind = \"offset\", page_size = 3, stop = [\"short_page\"] }",
    );
    let next = base.replace(
        "path = \"/list\"\nrecords = \"/items\"",
        "path = \"/next\"\nrecords = \"/rows\"\npaging = { kind = \"next\", next = \"/links/next\" }",
    );
    let want: Vec<String> = (1..=8).map(|i| i.to_string()).collect();
    for (name, text, log) in [
        (
            "offset.toml",
            offset,
            vec!["offset=0", "offset=3", "offset=6"],
        ),
        ("next.toml", next, vec!["from=0", "from=3", "from=6"]),
    ] {
        asked.lock().expect("log").clear();
        let (_, p) = temp_profile(name, &text);
        let p = fast(p.expect("loads"));
        let (envs, dead) = pull(&p).await;
        assert!(dead.is_empty(), "{name}: {dead:?}");
        let ids: Vec<&str> = envs.iter().map(|e| e.source_id.as_str()).collect();
        assert_eq!(ids, want, "{name}: every record once, oldest first");
        assert_eq!(*asked.lock().expect("log"), log, "{name}: the pages asked");
        assert_eq!(
            envs[0].payload["received_at"],
            json!("2023-11-15T06:14:20+08:00"),
            "{name}"
        );
    }
}

/// A page whose rows are the records (a reply digest: no detail pages): without a `link`
/// selector each row with an id is a record, read from its cells; header rows are skipped.
#[tokio::test]
async fn an_html_page_whose_rows_are_the_records() {
    let page = |n: u32| -> String {
        let rows: String = match n {
            1 => "<tr><td class=\"no\">X3</td><td class=\"t\">噪音</td><td class=\"d\">2024-05-03</td><td class=\"c\">夜间施工噪音扰民</td><td class=\"r\">已责令停工</td></tr>\
                  <tr><td class=\"no\">X2</td><td class=\"t\">路灯</td><td class=\"d\">2024-05-02</td><td class=\"c\">路灯不亮</td><td class=\"r\"></td></tr>".into(),
            2 => "<tr><td class=\"no\">X1</td><td class=\"t\">井盖</td><td class=\"d\">2024-05-01</td><td class=\"c\">井盖松动</td><td class=\"r\">已更换</td></tr>".into(),
            _ => String::new(),
        };
        format!(
            "<html><body><table class=\"list\"><tr><th>编号</th><th>标题</th></tr>{rows}</table></body></html>"
        )
    };
    let app = axum::Router::new().route(
        "/reply",
        axum::routing::get(move |q: axum::extract::Query<BTreeMap<String, String>>| {
            let n = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
            async move { axum::response::Html(page(n)) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    let text = format!(
        r#"name = "digest"
channel = "portal"
kind = "html"
base_url = "http://{addr}"

[list]
path = "/reply?page=${{page}}"
rows = "table.list tr"
id = "td.no"
paging = {{ kind = "page", first_page = 1 }}

[list.select]
title = "td.t"
date = "td.d"
content = "td.c"
reply = "td.r"

[fields]
source_id = "/item/id"
title = "/item/title"
content = "/item/content"
received_at = {{ from = "/item/date", time = ["%Y-%m-%d"] }}
reply = "/item/reply"
"#
    );
    let (_, p) = temp_profile("digest.toml", &text);
    let p = fast(p.expect("loads"));
    let (envs, dead) = pull(&p).await;
    assert!(dead.is_empty(), "{dead:?}");
    let got: Vec<(&str, &Value, &Value)> = envs
        .iter()
        .map(|e| {
            (
                e.source_id.as_str(),
                &e.payload["content"],
                &e.payload["received_at"],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "X1",
                &json!("井盖松动"),
                &json!("2024-05-01T00:00:00+08:00")
            ),
            (
                "X2",
                &json!("路灯不亮"),
                &json!("2024-05-02T00:00:00+08:00")
            ),
            (
                "X3",
                &json!("夜间施工噪音扰民"),
                &json!("2024-05-03T00:00:00+08:00")
            ),
        ]
    );
    assert_eq!(envs[2].payload["reply"], "已责令停工");
    assert!(envs[1].payload.get("reply").is_none_or(Value::is_null));
    // Such a page has nothing to fetch again.
    let (_, err) = temp_profile(
        "digest-revisit.toml",
        &format!("{text}\n[revisit]\ndays = 30\n"),
    );
    let msg = format!("{:#}", err.expect_err("revisit"));
    assert!(
        msg.contains("digest-revisit.toml:") && msg.contains("revisit"),
        "{msg}"
    );
}
