use super::*;
use crate::config::{DedupConfig, RuleConfig};
use crate::engine::cluster::IssueConfig;
use crate::engine::minhash::MinHasher;
use crate::engine::rules::AnalyticState;
use crate::engine::units::units;
use crate::record::Complaint;

const DAY: i64 = 86_400;
const T0: i64 = 1_700_000_000;

fn with_cx(freq: FrequencyConfig, f: impl FnOnce(&RuleContext)) {
    let (rules, dedup, issues) = (
        RuleConfig::default(),
        DedupConfig::default(),
        IssueConfig::default(),
    );
    f(&RuleContext {
        rules: &rules,
        dedup: &dedup,
        issues: &issues,
        frequency: &freq,
        units: units(),
    })
}

/// An event of `who` filing `text` (its own duplicate group) at `day`.
fn event(who: &str, id: &str, text: &str, day: f64) -> PersonEvent {
    let d = DedupConfig::default();
    let hasher = MinHasher::new(d.ngram, d.bands, d.rows);
    PersonEvent {
        complainant: who.into(),
        complaint_id: crate::record::complaint_id("board", id),
        duplicate_group: crate::record::complaint_id("board", id),
        at: T0 + (day * DAY as f64) as i64,
        domain: "城乡建设".into(),
        issue_id: None,
        district: Some("镜湖区".into()),
        issue_terms: Vec::new(),
        sketch: Sketch::of(&hasher.signature(text)),
    }
}

/// Texts of distinct matters (no two alike for k below 12).
fn matter(k: usize) -> String {
    const WHAT: [&str; 12] = [
        "物业公司擅自上调物业费，没有召开业主大会",
        "电梯三天两头坏，物业收了维修费却不修",
        "小区绿化带被物业改成收费停车位",
        "物业把公共收益挪作他用，账目从不公开",
        "楼道灯坏了两个月没人换，晚上老人摔倒",
        "物业保安夜里不巡逻，电动车接连被偷",
        "垃圾堆在单元门口好几天不清理，臭气熏天",
        "物业强制业主缴纳装修押金还不退",
        "地下车库漏水严重，车子被泡也不赔",
        "物业擅自停水停电催缴费用",
        "消防通道被物业出租给商户堆放货物",
        "物业合同到期后拒不退出小区",
    ];
    WHAT[k % WHAT.len()].to_string()
}

/// Background: `n` complainants filing once each, spread over `days`.
fn background(n: usize, days: f64) -> Vec<PersonEvent> {
    (0..n)
        .map(|i| {
            event(
                &format!("bg{i}"),
                &format!("bg{i}"),
                &format!("第{i}号普通投诉内容各不相同{}", "字".repeat(i % 50)),
                days * i as f64 / n as f64,
            )
        })
        .collect()
}

fn sorted(mut events: Vec<PersonEvent>) -> Vec<PersonEvent> {
    events.sort_by_key(|e| e.at);
    events
}

#[test]
fn a_refiling_months_later_is_linked_to_the_first_and_other_texts_are_not() {
    with_cx(FrequencyConfig::default(), |cx| {
        let mut ops = Complainants::new(1);
        let first = "我家楼下的烧烤店每天晚上营业到凌晨两点，油烟直接排进居民楼，噪音也很大，多次向城管反映都没有结果，希望有关部门尽快处理，还居民一个安静的夜晚。";
        let edited = "我家楼下的烧烤店每天晚上都营业到凌晨两三点，油烟直接排进居民楼，噪声很大，多次向城管反映没有结果，再次反映，希望有关部门尽快处理，还居民一个安静的夜晚。";
        let events = vec![
            event("p1", "a", first, 0.0),
            event("p1", "b", &matter(1), 10.0),
            event("p2", "c", edited, 20.0),
            event("p1", "d", edited, 200.0),
        ];
        let (_, links) = ops.apply(cx, &events);
        assert_eq!(
            links,
            vec![Link {
                complaint_id: events[3].complaint_id.clone(),
                resubmission_of: events[0].complaint_id.clone(),
            }],
            "only the same person's re-filing, 200 days on, is linked"
        );
        let p = &ops.people["p1"];
        assert_eq!((p.complaints, p.resubmissions), (3, 1));
        assert_eq!(ops.links(p), links);
        // Filed again 200 days later: counted again (a copy within the shortest horizon is not).
        assert_eq!(p.distinct, 3);
        let (_, again) = ops.apply(cx, &[event("p1", "e", edited, 201.0)]);
        assert_eq!(again[0].resubmission_of, events[0].complaint_id);
        assert_eq!(
            ops.people["p1"].distinct, 3,
            "a copy a day later counts once"
        );
    });
}

#[test]
fn a_year_long_heavy_poster_is_flagged_at_the_long_horizon_only() {
    let cfg = FrequencyConfig::default();
    with_cx(cfg.clone(), |cx| {
        let mut events = background(400, 360.0);
        // Fifteen matters over the year: about one a month, never five in 30 days.
        events.extend(
            (0..15).map(|k| event("heavy", &format!("h{k}"), &matter(k), 24.0 * k as f64 + 0.5)),
        );
        // Four a year: busy but ordinary.
        events.extend((0..4).map(|k| {
            event(
                "busy",
                &format!("b{k}"),
                &matter(k + 50),
                90.0 * k as f64 + 1.5,
            )
        }));
        let mut ops = Complainants::new(1);
        let (alerts, _) = ops.apply(cx, &sorted(events));
        let flagged: Vec<&str> = alerts.iter().map(|a| a.subject.as_str()).collect();
        assert_eq!(flagged, vec!["heavy"]);
        let p = &ops.people["heavy"];
        assert_eq!(cfg.horizons()[p.horizon], 365, "the year decided");
        assert!(
            p.max_in[0].0 < cfg.min_complaints,
            "no month alone is unusual"
        );
        assert!(
            alerts[0].summary.contains("365天内投诉15件"),
            "{}",
            alerts[0].summary
        );
        // With the 30-day horizon alone (the old rule) nobody is flagged.
        let month = FrequencyConfig {
            horizons_days: vec![30],
            ..cfg.clone()
        };
        with_cx(month, |cx| {
            let mut ops = Complainants::new(1);
            let mut events = background(400, 360.0);
            events.extend(
                (0..15)
                    .map(|k| event("heavy", &format!("h{k}"), &matter(k), 24.0 * k as f64 + 0.5)),
            );
            assert!(ops.apply(cx, &sorted(events)).0.is_empty());
        });
    });
}

#[test]
fn a_complainant_judged_before_the_population_grew_is_judged_again() {
    let freq = FrequencyConfig {
        min_population: 50,
        ..FrequencyConfig::default()
    };
    with_cx(freq, |cx| {
        let mut ops = Complainants::new(1);
        // Twelve filings in the first week, when only they and a few others are known.
        let early: Vec<PersonEvent> = (0..12)
            .map(|k| event("early", &format!("e{k}"), &matter(k), 0.2 * k as f64))
            .collect();
        let (alerts, _) = ops.apply(cx, &early);
        assert!(alerts.is_empty(), "too few complainants to judge");
        // The population grows later; the early complainant files nothing more.
        let (alerts, _) = ops.apply(
            cx,
            &background(300, 60.0)
                .into_iter()
                .map(|mut e| {
                    e.at += 10 * DAY;
                    e
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            alerts
                .iter()
                .map(|a| a.subject.as_str())
                .collect::<Vec<_>>(),
            vec!["early"],
            "re-judged on a later day"
        );
        assert!(ops.people["early"].flagged);
    });
}

#[test]
fn outlier_alert_has_the_topic_focus_and_resubmissions_do_not_add_up() {
    let freq = FrequencyConfig {
        min_population: 10,
        ..FrequencyConfig::default()
    };
    with_cx(freq, |cx| {
        // Through the issue-keyed operator, as in the engine: its events carry the sketches.
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00+08:00").expect("time");
        let row = |src: String, who: &str, body: String, day: i64| Complaint {
            complainant: Some(who.into()),
            district: Some("镜湖区".into()),
            domain: "城市管理".into(),
            ..Complaint::new("hotline", &src, t + Duration::days(day), "", &body)
        };
        let mut rows: Vec<Complaint> = (0..40)
            .map(|i| {
                row(
                    format!("o{i}"),
                    &format!("p{i}"),
                    format!("第{i}号普通投诉内容各不相同{}", "字".repeat(i)),
                    0,
                )
            })
            .collect();
        rows.extend((0..12).map(|k| row(format!("f{k}"), "busy", matter(k), k as i64)));
        rows.extend((0..12).map(|k| {
            row(
                format!("r{k}"),
                "copier",
                "物业乱收费的问题请处理，谢谢".into(),
                k as i64,
            )
        }));
        let mut block = AnalyticState::new(cx.dedup);
        let out = block.apply_block(rows, cx);
        assert!(out.people.iter().all(|e| e.sketch.is_some()));
        let mut ops = Complainants::new(1);
        let (alerts, _) = ops.apply(cx, &out.people);
        let subjects: Vec<&str> = alerts.iter().map(|a| a.subject.as_str()).collect();
        assert_eq!(subjects, vec!["busy"]);
        assert_eq!(alerts[0].complaint_count, 12);
        assert_eq!(alerts[0].domain.as_deref(), Some("城市管理"));
        assert!(
            alerts[0].summary.contains("100%集中于城市管理"),
            "{}",
            alerts[0].summary
        );
        assert_eq!(ops.people["copier"].distinct, 1);
    });
}

#[test]
fn snapshot_restores_the_same_state_and_the_same_future() {
    with_cx(FrequencyConfig::default(), |cx| {
        let mut events = background(120, 100.0);
        events.extend((0..20).map(|k| {
            event(
                "heavy",
                &format!("h{k}"),
                &matter(k % 6),
                5.0 * k as f64 + 0.3,
            )
        }));
        let events = sorted(events);
        let (before, after) = events.split_at(90);
        let mut a = Complainants::new(3);
        a.keep_evicted();
        a.apply(cx, before);
        let bytes = a.snapshot();
        let mut b = Complainants::new(1);
        b.restore(&bytes).expect("restore");
        assert_eq!(a, b, "the restored state equals the snapshotted one");
        assert_eq!(b.snapshot(), bytes, "and snapshots to the same bytes");
        assert_eq!(
            a.apply(cx, after),
            b.apply(cx, after),
            "the same outputs after"
        );
        assert_eq!(a, b);
        // Compact: well under the inline size of the filings held.
        let filings: usize = a.people.values().map(|p| p.filings.len()).sum();
        assert!(
            bytes.len() < filings * FILING_BYTES,
            "{} bytes for {filings} filings",
            bytes.len()
        );
        // Another operator's or a damaged snapshot is refused with one line.
        let mut c = Complainants::new(1);
        let err = c.restore(&bytes[..bytes.len() / 2]).expect_err("truncated");
        assert!(err.to_string().contains("complainants snapshot"), "{err}");
        assert_eq!(
            c,
            Complainants::new(1),
            "a failed restore leaves the state as it was"
        );
    });
}

#[test]
fn state_per_complainant_stays_small_and_is_evicted_after_the_retention() {
    // Sizes for the 2 GiB budget at 10M complaints (README: engine state).
    const { assert!(FILING_BYTES <= 104) };
    with_cx(FrequencyConfig::default(), |cx| {
        let mut ops = Complainants::new(1);
        let events = sorted(background(1000, 300.0));
        ops.apply(cx, &events);
        let tables = ops.tables();
        let bytes: usize = tables.iter().map(|t| t.bytes).sum();
        let per = bytes / ops.people.len();
        eprintln!("complainants state: {tables:?}; {per} bytes per one-filing complainant");
        // A complainant and their one filing: 96 bytes of filing, the rest the complainant.
        assert_eq!(
            tables[1].bytes,
            1000 * FILING_BYTES,
            "one filing each, no slack"
        );
        assert!(per < 400, "{per} bytes per complainant");
        // A year and more later every one of them left; their windows stay in the baselines.
        ops.watermark(cx, T0 + 700 * DAY);
        assert!(ops.people.is_empty());
        assert_eq!(ops.known(), 1000);
        assert_eq!(ops.hist[2].n(), 1000);
        // Filing again brings their window back.
        ops.apply(cx, &[event("bg3", "again", &matter(3), 701.0)]);
        assert_eq!(ops.people["bg3"].complaints, 1);
        assert_eq!(ops.known(), 1000);
    });
}

#[test]
fn a_refiling_in_other_words_within_the_horizon_counts_and_a_copy_does_not() {
    with_cx(FrequencyConfig::default(), |cx| {
        let first = "我家楼下的烧烤店每天晚上营业到凌晨两点，油烟直接排进居民楼，噪音也很大，多次向城管反映都没有结果，希望有关部门尽快处理。";
        let reworded = "楼下烧烤店又营业到凌晨两点，油烟直接排进居民楼里，孩子咳嗽老人失眠，之前打电话说会来查，到现在也没人管，请尽快处理。";
        let (a, b) = (event("p", "a", first, 0.0), event("p", "b", reworded, 5.0));
        let sim = a
            .sketch
            .zip(b.sketch)
            .map(|(x, y)| x.similarity(&y))
            .expect("sketches");
        let f = cx.frequency;
        assert!(
            sim >= f.resubmission_similarity && sim < f.copy_similarity,
            "the reworded text is a resubmission but no copy: {sim}"
        );
        let mut ops = Complainants::new(1);
        let (_, links) = ops.apply(cx, &[a.clone(), b]);
        assert_eq!(links.len(), 1, "linked as a resubmission");
        assert_eq!(ops.people["p"].distinct, 2, "and counted as a filing");
        let (_, again) = ops.apply(cx, &[event("p", "c", first, 6.0)]);
        assert_eq!(again.len(), 1);
        assert_eq!(
            ops.people["p"].distinct, 2,
            "a copy within the horizon counts once"
        );
    });
}
