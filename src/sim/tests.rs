//! Behaviour tests of the simulator: corpus invariants (determinism, coverage, planted structure)
//! and one real-server test that reads every channel the way a connector would.

use super::*;
use crate::sim::corpus::Origin;
use crate::sim::text::{DISTRICTS, DOMAINS, normalize_for_compare};
use crate::sim::wire::{BoardMessage, BoardPage, HotlinePage};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

fn test_config(seed: u64, size: usize) -> SimConfig {
    SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        seed,
        size,
        end_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("valid date"),
        days: 30,
        export_dir: std::env::temp_dir().join(format!(
            "duban-sim-test-{}-{seed}-{size}",
            std::process::id()
        )),
        push_url: None,
        webhook_secret: "test-secret".to_string(),
        teddy_dir: None,
        pd_replay: None,
        profile_exports: None,
        faults: Default::default(),
    }
}

fn ids_of(m: &Manifest, ch: Channel) -> BTreeSet<String> {
    m.records
        .iter()
        .filter(|e| e.channel == ch)
        .map(|e| e.source_id.clone())
        .collect()
}

/// Asserts that `seen` holds every id of the channel exactly once.
fn assert_exactly_once(m: &Manifest, ch: Channel, seen: &[String]) {
    let set: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        set.len(),
        seen.len(),
        "{ch}: some records were served twice"
    );
    assert_eq!(
        set,
        ids_of(m, ch),
        "{ch}: served ids differ from the manifest"
    );
}

#[test]
fn same_seed_same_corpus_other_seed_other_corpus() {
    let a = corpus(&test_config(11, 400)).unwrap();
    let b = corpus(&test_config(11, 400)).unwrap();
    let c = corpus(&test_config(12, 400)).unwrap();
    assert_eq!(a, b);
    assert_ne!(
        a.complaints.iter().map(|x| &x.content).collect::<Vec<_>>(),
        c.complaints.iter().map(|x| &x.content).collect::<Vec<_>>()
    );
}

#[test]
fn text_lengths_stay_within_bounds_for_many_seeds() {
    for seed in 1..=6 {
        let c = corpus(&test_config(seed, DEFAULT_SIZE)).unwrap();
        for x in &c.complaints {
            let n = x.content.chars().count();
            assert!(
                (50..=800).contains(&n),
                "seed {seed}: {} has {n} characters",
                x.source_id
            );
        }
    }
}

#[test]
fn texts_coverage_and_ids() {
    let cfg = test_config(DEFAULT_SEED, DEFAULT_SIZE);
    let c = corpus(&cfg).unwrap();
    let lens: Vec<usize> = c
        .complaints
        .iter()
        .map(|x| x.content.chars().count())
        .collect();
    assert!(
        lens.iter().all(|&n| (50..=800).contains(&n)),
        "lengths out of range: {:?}",
        lens.iter()
            .filter(|&&n| !(50..=800).contains(&n))
            .collect::<Vec<_>>()
    );
    let medium = lens.iter().filter(|&&n| (100..=400).contains(&n)).count();
    assert!(
        medium * 10 >= lens.len() * 6,
        "only {medium} of {} texts are 100–400 characters",
        lens.len()
    );
    for d in DOMAINS {
        assert!(
            c.complaints.iter().any(|x| x.domain == d),
            "domain {d} missing"
        );
    }
    for d in DISTRICTS {
        assert!(
            c.complaints.iter().any(|x| x.district == d),
            "district {d} missing"
        );
    }
    for ch in Channel::ALL {
        assert!(c.count(ch) > 0, "channel {ch} missing");
        let ids: Vec<&String> = c.of_channel(ch).map(|x| &x.source_id).collect();
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "{ch} ids not unique"
        );
    }
    assert_eq!(c.manifest.records.len(), c.complaints.len());
    assert!(c.complaints.len() >= cfg.size && c.complaints.len() <= cfg.size * 11 / 10);
    // The place is named in every body and in the address field.
    assert!(
        c.complaints
            .iter()
            .all(|x| normalize_for_compare(&x.content).contains(&x.location))
    );
    let start = corpus::window_start(&cfg);
    let end = corpus::window_end(&cfg);
    assert!(
        c.complaints
            .iter()
            .all(|x| x.at >= start && x.at <= end && x.updated_at >= x.at && x.updated_at <= end)
    );
    // Some texts exercise normalization and masking downstream.
    assert!(c.complaints.iter().any(|x| {
        x.content
            .chars()
            .any(|ch| ('\u{FF10}'..='\u{FF19}').contains(&ch))
    }));
    assert!(
        c.complaints
            .iter()
            .any(|x| x.content.contains(&c.people[x.person].mobile))
    );
}

#[test]
fn planted_clusters_frequent_and_resubmissions() {
    let c = corpus(&test_config(DEFAULT_SEED, DEFAULT_SIZE)).unwrap();
    let m = &c.manifest;
    assert!(
        (6..=8).contains(&m.clusters.len()),
        "{} clusters",
        m.clusters.len()
    );
    let by_entry: HashMap<&ManifestEntry, &SimComplaint> =
        m.records.iter().zip(&c.complaints).collect();
    for cl in &m.clusters {
        let members: Vec<&SimComplaint> = cl.records.iter().map(|e| by_entry[e]).collect();
        let people: HashSet<usize> = members.iter().map(|x| x.person).collect();
        assert!(
            people.len() >= 8 && people.len() == cl.complainants,
            "cluster at {} has {} people",
            cl.place,
            people.len()
        );
        assert!(members.iter().all(|x| x.content.contains(&cl.place)
            && x.district == cl.district
            && x.domain == cl.domain));
        let texts: HashSet<&String> = members.iter().map(|x| &x.content).collect();
        assert_eq!(
            texts.len(),
            members.len(),
            "cluster texts must be worded differently"
        );
        let span = members.iter().map(|x| x.at).max().unwrap()
            - members.iter().map(|x| x.at).min().unwrap();
        assert!(span.num_days() <= 5);
    }
    let mut per_person: HashMap<usize, usize> = HashMap::new();
    for x in &c.complaints {
        *per_person.entry(x.person).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_person.values().copied().collect();
    counts.sort_unstable();
    let median = counts[counts.len() / 2];
    assert_eq!(m.frequent.len(), 3);
    for f in &m.frequent {
        assert!(
            f.records.len() >= 10 * median,
            "{} filed {} (median {median})",
            f.name,
            f.records.len()
        );
        let members: Vec<&SimComplaint> = f.records.iter().map(|e| by_entry[e]).collect();
        assert!(
            members
                .iter()
                .all(|x| c.people[x.person].mobile == f.phone && x.problem == f.topic)
        );
        let with_phone = members
            .iter()
            .filter(|x| x.channel != Channel::Board)
            .count();
        assert!(with_phone * 10 >= members.len() * 8);
    }
    assert!(m.resubmissions.len() >= DEFAULT_SIZE / 25);
    let exact: HashSet<&(ManifestEntry, ManifestEntry)> = m.exact_resubmissions.iter().collect();
    assert!(
        exact.len() * 3 >= m.resubmissions.len() && exact.len() * 3 <= m.resubmissions.len() * 2
    );
    for pair in &m.resubmissions {
        let (a, b) = (by_entry[&pair.0], by_entry[&pair.1]);
        assert_ne!(a.channel, b.channel);
        assert_eq!(a.person, b.person);
        assert!(b.at >= a.at);
        assert!(matches!(b.origin, Origin::Resubmission { .. }));
        if exact.contains(pair) {
            assert_ne!(a.content, b.content);
            assert_eq!(
                normalize_for_compare(&a.content),
                normalize_for_compare(&b.content)
            );
        } else {
            assert_ne!(
                normalize_for_compare(&a.content),
                normalize_for_compare(&b.content)
            );
            assert!(b.content.contains(&a.location));
        }
    }
}

#[test]
fn teddy_replay_is_used_when_present() {
    let dir = std::env::temp_dir().join(format!("duban-sim-teddy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("留言编号,留言用户,留言主题,留言时间,留言详情\n");
    for i in 0..60 {
        csv.push_str(&format!("{i},U{},小区噪音问题{i},2019/2/{} 10:52:03,\"镜湖区某小区夜间施工噪音很大，已经持续很久了，请相关部门处理。编号{i}\"\n", i % 20, 1 + i % 28));
    }
    std::fs::write(
        dir.join("messages_unlabeled.csv"),
        encoding_rs::GBK.encode(&csv).0,
    )
    .unwrap();
    let mut cfg = test_config(5, 50);
    cfg.teddy_dir = Some(dir.clone());
    let c = corpus(&cfg).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(c.manifest.replay);
    assert_eq!(c.complaints.len(), 50);
    assert!(
        c.complaints
            .iter()
            .all(|x| x.content.contains("夜间施工噪音") && x.district == "镜湖区")
    );
    assert_eq!(
        c.complaints.iter().map(|x| x.at.date()).max(),
        Some(cfg.end_date)
    );
}

/// What the in-test webhook receiver saw.
#[derive(Default)]
struct Received {
    acked: Vec<String>,
    bad_signatures: usize,
    refused_once: HashSet<String>,
}

async fn webhook_receiver(secret: &'static str) -> (String, std::sync::Arc<Mutex<Received>>) {
    let seen = std::sync::Arc::new(Mutex::new(Received::default()));
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let (ts, sig, delivery) = (
                    h("x-wst-timestamp"),
                    h("x-wst-signature"),
                    h("x-wst-delivery"),
                );
                let mut st = state.lock().unwrap();
                if sig != push::signature(secret, &ts, &body)
                    || h("content-type") != "application/json"
                {
                    st.bad_signatures += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                // Refuse the first attempt of every fifth delivery to exercise the retries.
                if delivery.ends_with('5') && st.refused_once.insert(delivery) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let sub: wire::WstSubmission = serde_json::from_slice(&body).unwrap();
                assert_eq!(sub.event, "submission.created");
                st.acked.push(sub.submission_id);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn status(client: &reqwest::Client, url: String) -> reqwest::StatusCode {
    client.get(url).send().await.unwrap().status()
}

async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> T {
    let resp = client.get(url).send().await.unwrap();
    assert!(resp.status().is_success(), "GET {url} → {}", resp.status());
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_serves_every_channel_exactly_once() {
    let (push_url, received) = webhook_receiver("test-secret").await;
    let mut cfg = test_config(77, 300);
    cfg.push_url = Some(push_url);
    std::fs::remove_dir_all(&cfg.export_dir).ok();
    let handle = start(cfg.clone()).await.unwrap();
    let base = handle.base_url();
    let m = handle.manifest().clone();
    let client = reqwest::Client::new();
    assert_eq!(status(&client, format!("{base}/healthz")).await, 200);
    let served: Manifest = get_json(&client, &format!("{base}/sim/manifest")).await;
    assert_eq!(served, m);

    // Hotline: cursor paging over (updated_at, order_no).
    let mut orders = Vec::new();
    let mut url = format!("{base}/hotline/api/v1/workorders?limit=37");
    loop {
        let page: HotlinePage = get_json(&client, &url).await;
        orders.extend(page.items.iter().cloned());
        let Some(last) = page.items.last() else { break };
        if !page.has_more {
            break;
        }
        url = format!(
            "{base}/hotline/api/v1/workorders?limit=37&updated_since={}&after_id={}",
            last.updated_at.replace('+', "%2B"),
            last.order_no
        );
    }
    let keys: Vec<(String, String)> = orders
        .iter()
        .map(|o| (o.updated_at.clone(), o.order_no.clone()))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "hotline items must be sorted by (updated_at, order_no)"
    );
    let api_nos: Vec<String> = orders.iter().map(|o| o.order_no.clone()).collect();
    assert_exactly_once(&m, Channel::Hotline, &api_nos);
    let bad = client
        .get(format!(
            "{base}/hotline/api/v1/workorders?updated_since=yesterday"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // A later status change shows up after the cursor, with the same order number.
    let last = orders.last().unwrap();
    let advanced: serde_json::Value = client
        .post(format!("{base}/sim/hotline/advance"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let changed = advanced["changed"].as_u64().unwrap() as usize;
    assert!(changed > 0);
    let after: HotlinePage = get_json(
        &client,
        &format!(
            "{base}/hotline/api/v1/workorders?limit=500&updated_since={}&after_id={}",
            last.updated_at.replace('+', "%2B"),
            last.order_no
        ),
    )
    .await;
    assert_eq!(after.items.len(), changed);
    assert!(
        after
            .items
            .iter()
            .all(|o| o.status == "已办结" && api_nos.contains(&o.order_no))
    );

    // Board: pages newest first, then one detail and an unknown tid.
    let mut tids = Vec::new();
    let mut page_no = 1;
    loop {
        let page: BoardPage = get_json(
            &client,
            &format!("{base}/board/api/messages?page={page_no}&page_size=50"),
        )
        .await;
        assert_eq!(page.total, ids_of(&m, Channel::Board).len());
        tids.extend(page.items.iter().map(|i| i.tid.to_string()));
        if page_no >= page.total_pages {
            break;
        }
        page_no += 1;
    }
    assert_exactly_once(&m, Channel::Board, &tids);
    let detail: BoardMessage =
        get_json(&client, &format!("{base}/board/api/messages/{}", tids[0])).await;
    assert!(
        ["投诉", "求助", "建言", "咨询"].contains(&detail.kind.as_str())
            && DISTRICTS.contains(&detail.area.as_str())
    );
    let missing = client
        .get(format!("{base}/board/api/messages/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.json::<serde_json::Value>().await.unwrap()["error"].is_string());

    // Portal: follow the "next" links, then scrape one detail page.
    let (row_sel, no_sel, next_sel) = (
        scraper::Selector::parse("table.letter-list tr").unwrap(),
        scraper::Selector::parse("td.no").unwrap(),
        scraper::Selector::parse("a.next").unwrap(),
    );
    let mut nos = Vec::new();
    let mut next = Some("/portal/letters".to_string());
    while let Some(path) = next.take() {
        let html = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let doc = scraper::Html::parse_document(&html);
        for row in doc.select(&row_sel) {
            if let Some(no) = row.select(&no_sel).next() {
                nos.push(no.text().collect::<String>());
            }
        }
        next = doc
            .select(&next_sel)
            .next()
            .and_then(|a| a.value().attr("href"))
            .map(str::to_string);
    }
    assert_exactly_once(&m, Channel::Portal, &nos);
    let c = corpus(&cfg).unwrap();
    let letter = c
        .of_channel(Channel::Portal)
        .find(|x| x.content.contains('，'))
        .unwrap();
    let html = client
        .get(format!("{base}/portal/letters/{}.html", letter.source_id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&html);
    let field = |class: &str| {
        let sel = scraper::Selector::parse(&format!("div.letter .{class}")).unwrap();
        doc.select(&sel)
            .next()
            .map(|e| e.text().collect::<String>())
            .unwrap_or_default()
    };
    assert_eq!(field("content"), letter.content.replace("\r\n", "\n"));
    assert_eq!(field("no"), letter.source_id);
    assert_eq!(field("phone"), c.people[letter.person].mobile);
    assert_eq!(field("area"), letter.district);
    assert_eq!(
        status(&client, format!("{base}/portal/letters/nope.html")).await,
        404
    );

    // Wanshitong: every submission acknowledged exactly once, every signature valid.
    tokio::time::timeout(std::time::Duration::from_secs(60), handle.pushes_done())
        .await
        .unwrap()
        .unwrap();
    {
        let r = received.lock().unwrap();
        assert_eq!(r.bad_signatures, 0);
        assert!(!r.refused_once.is_empty(), "no retry was exercised");
        assert_exactly_once(&m, Channel::Wanshitong, &r.acked);
    }
    let status: serde_json::Value = get_json(&client, &format!("{base}/sim/status")).await;
    assert_eq!(status["webhooks_total"], status["webhooks_acked"]);
    assert_eq!(
        status["webhooks_acked"].as_u64().unwrap() as usize,
        ids_of(&m, Channel::Wanshitong).len()
    );

    // Exports: the same order numbers as the API, in at least two encodings, no temp files.
    let mut export_nos = Vec::new();
    let mut with_bom = 0;
    let files: Vec<_> = std::fs::read_dir(&cfg.export_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("hotline-") && name.ends_with(".csv"),
            "unexpected file {name}"
        );
        let bytes = std::fs::read(path).unwrap();
        with_bom += usize::from(bytes.starts_with(&[0xEF, 0xBB, 0xBF]));
        let text = export::decode_export(&bytes);
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            rdr.headers().unwrap().iter().collect::<Vec<_>>(),
            export::HEADER
        );
        for rec in rdr.records() {
            export_nos.push(rec.unwrap()[0].to_string());
        }
    }
    assert!(with_bom > 0 && with_bom < files.len());
    assert_exactly_once(&m, Channel::Hotline, &export_nos);

    handle.shutdown().await;
    std::fs::remove_dir_all(&cfg.export_dir).ok();
}

#[tokio::test]
async fn pushes_done_is_immediate_without_push_url() {
    let cfg = test_config(3, 60);
    let handle = start(cfg.clone()).await.unwrap();
    handle.pushes_done().await.unwrap();
    assert_eq!(
        handle.counts().iter().map(|(_, n)| n).sum::<usize>(),
        handle.manifest().records.len()
    );
    handle.shutdown().await;
    std::fs::remove_dir_all(&cfg.export_dir).ok();
}

/// The documented raw schemas list exactly the fields the simulator serves.
#[test]
fn raw_schemas_match_the_wire_shapes() {
    let c = corpus(&test_config(9, 200)).unwrap();
    // What each channel's feed serves for its first complaint.
    let served = |ch: Channel| {
        let x = c.of_channel(ch).next().unwrap();
        let p = &c.people[x.person];
        match ch {
            Channel::Hotline => serde_json::to_value(wire::hotline_order(x, p)),
            Channel::Board => serde_json::to_value(wire::board_message(x, p)),
            Channel::Portal => serde_json::to_value(wire::portal_letter(x, p)),
            Channel::Wanshitong => serde_json::to_value(wire::wst_submission(x, p)),
        }
    };
    let samples = Channel::ALL.map(|ch| (ch.as_str(), served(ch)));
    for (name, value) in samples {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("schemas/raw/{name}.schema.json"));
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let keys = |v: &serde_json::Value| {
            v.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<BTreeSet<_>>()
        };
        let value = value.unwrap();
        let mut documented = keys(&schema["properties"]);
        // `extra` holds fields a connector does not know (schema drift); the feed never sends it.
        assert!(documented.remove("extra"), "{name}: `extra` documented");
        assert_eq!(
            keys(&value),
            documented,
            "{name}: fields differ from {}",
            path.display()
        );
        let required: BTreeSet<String> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(required, keys(&value), "{name}: required list differs");
    }
}

#[test]
fn serve_args_parse_into_a_config() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimServeArgs,
    }
    let cli = Cli::try_parse_from([
        "duban",
        "--no-push",
        "--end-date",
        "2026-11-27",
        "--size",
        "300",
        "--bind",
        "127.0.0.1:0",
    ])
    .unwrap();
    let cfg = cli.args.to_config();
    assert_eq!(
        (cfg.push_url, cfg.size, cfg.seed, cfg.days),
        (None, 300, DEFAULT_SEED, DEFAULT_DAYS)
    );
    assert_eq!(cfg.end_date.to_string(), "2026-11-27");
    let cli = Cli::try_parse_from(["duban"]).unwrap();
    assert_eq!(
        cli.args.to_config().push_url.as_deref(),
        Some(DEFAULT_PUSH_URL)
    );
    assert!(Cli::try_parse_from(["duban", "--no-push", "--push-url", "http://x"]).is_err());
}
