//! Tests of `duban sim year` on a pool of made-up messages (and one on the shared real texts).

use super::*;
use std::collections::{BTreeMap, BTreeSet};

const MADE_UP: &[(&str, &str)] = &[
    (
        "噪音扰民",
        "{p}楼下的酒吧每天晚上音响声音很大，噪音扰民严重。我们多次找物业，没有用。希望有关部门尽快处理。",
    ),
    (
        "物业乱收费",
        "{p}物业今年突然上调物业费，没有开业主大会。物业服务也很差，电梯经常坏。请求相关部门调查。",
    ),
    (
        "工地夜间施工",
        "{p}旁边的工地每天夜间施工到凌晨，打桩声音很大。渣土车进出扬尘严重。请求依法查处。",
    ),
    (
        "停车难",
        "{p}车位严重不足，车辆乱停乱放，消防通道被堵。物业不作为。希望尽快规划停车位。",
    ),
    (
        "垃圾清运",
        "{p}的垃圾站长期无人清运，臭味很大。夏天蚊蝇很多。请环卫部门尽快清理。",
    ),
    (
        "公积金咨询",
        "请问公积金提取的政策是什么？异地工作的人怎么办理？希望给予答复。",
    ),
    (
        "社保补贴",
        "人才补贴政策什么时候发放？社保缴纳满一年是否有资格申领？谢谢。",
    ),
    (
        "落户政策",
        "请问A市落户政策有没有变化？本科学历需要什么材料办理户口？",
    ),
];

/// A pool of made-up messages: each template at many made-up places (a real pool has thousands).
fn pool() -> Vec<BaseText> {
    let mut rng = SimRng::new(1);
    let mut maker = vary::PlaceMaker::new();
    let mut out = Vec::new();
    for k in 0..240 {
        let (title, body) = MADE_UP[k % MADE_UP.len()];
        let place = maker.estate(&mut rng, "镜湖区").name();
        let body = format!(
            "{}第{k}次说明。",
            body.replace("{p}", &format!("A市A3区{place}"))
        );
        out.push(pool::tag(title.to_string(), &body));
    }
    out
}

fn corpus(rows: usize, seed: u64) -> YearCorpus {
    let end = NaiveDate::from_ymd_opt(2024, 12, 31).expect("date");
    generate_from(rows, 365, seed, end, &pool()).expect("generate")
}

#[test]
fn same_seed_same_export_other_seed_another() {
    let a = corpus(3000, 7);
    let b = corpus(3000, 7);
    let c = corpus(3000, 8);
    let texts = |x: &YearCorpus| x.rows.iter().map(|r| r.body.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&a), texts(&b));
    assert_eq!(
        a.rows.iter().map(|r| r.issue).collect::<Vec<_>>(),
        b.rows.iter().map(|r| r.issue).collect::<Vec<_>>()
    );
    assert_ne!(texts(&a), texts(&c));
}

#[test]
fn truth_is_consistent() {
    let c = corpus(4000, 3);
    assert_eq!(c.rows.len(), 4000);
    let by_id: BTreeMap<u64, &YearRow> = c.rows.iter().map(|r| (r.row_id, r)).collect();
    let mut resubs = 0;
    for r in &c.rows {
        if let Some(of) = r.resubmission_of {
            let o = by_id[&of];
            assert_eq!(
                o.person, r.person,
                "a resubmission is filed by the same person"
            );
            assert_eq!(
                o.issue, r.issue,
                "a resubmission stays in its original's issue"
            );
            assert!(o.at < r.at && r.at - o.at <= Duration::days(331));
            resubs += 1;
        }
        assert!(
            !r.body.contains("A市") && !r.body.contains("A3区"),
            "coded names are decoded: {}",
            r.body
        );
    }
    assert!(resubs >= 4000 * 5 / 100, "{resubs} resubmissions");
    // Every kind is planted, every issue has two filings or more, and only posters and
    // resubmissions bring one person into an issue twice.
    for kind in [
        IssueKind::Place,
        IssueKind::City,
        IssueKind::Template,
        IssueKind::Poster,
    ] {
        assert!(c.issues.iter().any(|i| i.kind == kind), "no {kind:?} issue");
    }
    let mut seen: BTreeSet<(usize, usize)> = BTreeSet::new();
    for r in c.rows.iter().filter(|r| r.resubmission_of.is_none()) {
        if let Some(i) = r.issue
            && c.issues[i].kind != IssueKind::Poster
        {
            assert!(
                seen.insert((i, r.person)),
                "person {} twice in {}",
                r.person,
                c.issues[i].id
            );
        }
    }
    assert!(
        c.issues.iter().all(|i| i.rows >= 2),
        "an issue of one filing"
    );
    // Template groups of one campaign: one district and matter, each its own place.
    let mut sets: BTreeMap<&str, Vec<&PlantedIssue>> = BTreeMap::new();
    for i in c.issues.iter().filter(|i| i.kind == IssueKind::Template) {
        sets.entry(i.template.as_deref().expect("set"))
            .or_default()
            .push(i);
    }
    for groups in sets.values() {
        assert!(groups.len() >= 4);
        let places: BTreeSet<_> = groups.iter().map(|g| g.place.clone()).collect();
        assert_eq!(places.len(), groups.len());
        assert!(
            groups
                .iter()
                .all(|g| g.district == groups[0].district && g.matter == groups[0].matter)
        );
    }
    // Several matters at one place.
    let mut per_place: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in c.issues.iter().filter(|i| i.kind == IssueKind::Place) {
        per_place
            .entry(i.place.as_deref().expect("place"))
            .or_default()
            .insert(i.matter);
    }
    assert!(per_place.values().any(|m| m.len() >= 2));
}

#[test]
fn posters_median_one_or_two_heavy_ones_ten_or_more() {
    let c = corpus(6000, 11);
    let mut filings: BTreeMap<usize, usize> = BTreeMap::new();
    for r in &c.rows {
        *filings.entry(r.person).or_default() += 1;
    }
    let mut counts: Vec<usize> = filings.values().copied().collect();
    counts.sort_unstable();
    assert!(
        counts[counts.len() / 2] <= 2,
        "median {}",
        counts[counts.len() / 2]
    );
    let heavy: Vec<usize> = filings
        .iter()
        .filter(|(p, _)| c.classes[**p] == RateClass::Heavy)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(heavy.len(), (6000.0f64 / 307.0).round() as usize);
    assert!(heavy.iter().all(|&n| n >= 10));
    assert!(
        filings
            .iter()
            .all(|(p, &n)| c.classes[*p] == RateClass::Heavy || n < 10 + 5)
    );
}

#[test]
fn writes_an_export_the_board_mapping_reads_and_its_truth() {
    let c = corpus(1000, 5);
    let dir = std::env::temp_dir().join(format!("duban-sim-year-{}", std::process::id()));
    c.write(&dir, &serde_json::json!({})).expect("write");
    let mut r = csv::Reader::from_path(dir.join(EXPORT_FILE)).expect("export");
    assert_eq!(
        r.headers().expect("header").iter().collect::<Vec<_>>(),
        EXPORT_HEADER
    );
    assert_eq!(r.records().count(), 1000);
    let mut t = csv::Reader::from_path(dir.join(TRUTH_FILE)).expect("truth");
    assert_eq!(
        t.headers().expect("header").iter().collect::<Vec<_>>(),
        TRUTH_HEADER
    );
    assert_eq!(t.records().count(), 1000);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(SUMMARY_FILE)).expect("json"))
            .expect("parse");
    assert_eq!(summary["rows"], 1000);
    std::fs::remove_dir_all(&dir).ok();
}

/// On the shared real texts (`DUBAN_SHARED_DIR`): texts of realistic length, none copied whole.
#[test]
fn real_texts_varied_to_a_realistic_length() {
    let dir = default_teddy_dir();
    assert!(
        dir.join("messages_hot.csv").exists(),
        "{} is missing: set DUBAN_SHARED_DIR",
        dir.display()
    );
    let pool = pool::load(&dir).expect("pool");
    assert!(pool.len() > 10_000);
    let end = NaiveDate::from_ymd_opt(2024, 12, 31).expect("date");
    let c = generate_from(5000, 365, 2, end, &pool).expect("generate");
    let mean = c.mean_body_chars();
    assert!((300.0..=420.0).contains(&mean), "mean text {mean:.0} chars");
    let originals: HashSet<String> = pool.iter().map(|b| b.sentences.concat()).collect();
    let copied = c
        .rows
        .iter()
        .filter(|r| originals.contains(&r.body))
        .count();
    assert!(
        copied * 100 < c.rows.len(),
        "{copied} rows are a real text unchanged"
    );
}
