//! Corrections: keys and latest, the lake table, and which alerts an issue's correction re-routes.

use super::*;
use crate::record::AlertLevel;

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("time")
}

fn label(target: LabelTarget, id: &str, domain: &str, at: &str) -> Label {
    let (complaint_id, issue_id) = match target {
        LabelTarget::Complaint => (Some(id.to_string()), Some("IS-1".to_string())),
        LabelTarget::Issue => (None, Some(id.to_string())),
    };
    Label {
        label_id: format!("label-{id}-{at}"),
        target,
        complaint_id,
        issue_id,
        old_domain: Some("城市管理".into()),
        domain: domain.into(),
        actor: "王科长".into(),
        role: "supervisor".into(),
        at: t(at),
        reason: String::new(),
    }
}

fn alert(id: &str, issue: &str, status: AlertStatus) -> Alert {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("day");
    let at = t("2026-11-20T10:00:00+08:00");
    let mut a = Alert {
        alert_id: id.into(),
        trigger: AlertTrigger::CrowdConcentration,
        level: AlertLevel::Yellow,
        subject: issue.into(),
        window_start: day,
        window_end: day,
        summary: "某小区：5名群众反映问题".into(),
        domain: Some("城市管理".into()),
        district: Some("镜湖区".into()),
        unit: "镜湖区城市管理局".into(),
        deadline: day,
        complaint_ids: vec![],
        complaint_count: 5,
        distinct_complainants: 5,
        key_terms: vec![],
        version: 1,
        raised_at: at,
        updated_at: at,
        merged_into: None,
        lifecycle: Default::default(),
    };
    a.lifecycle.status = status;
    a
}

#[test]
fn the_latest_correction_of_each_complaint_and_issue_counts() {
    let all = latest([
        label(
            LabelTarget::Complaint,
            "c1",
            "生态环境",
            "2026-11-20T10:00:00+08:00",
        ),
        label(
            LabelTarget::Issue,
            "c1",
            "交通运输",
            "2026-11-20T10:00:00+08:00",
        ),
        label(
            LabelTarget::Complaint,
            "c1",
            "城乡建设",
            "2026-11-21T10:00:00+08:00",
        ),
    ]);
    assert_eq!(
        all.len(),
        2,
        "a complaint and an issue of the same id are kept apart"
    );
    assert_eq!(all["complaint:c1"].domain, "城乡建设");
    assert_eq!(all["issue:c1"].domain, "交通运输");
}

#[test]
fn the_lake_table_round_trips() {
    let dir = std::env::temp_dir().join(format!("duban-labels-{}", std::process::id()));
    assert!(read_lake(&dir).expect("no table yet").is_empty());
    let all = latest([
        label(
            LabelTarget::Complaint,
            "c1",
            "生态环境",
            "2026-11-20T10:00:00+08:00",
        ),
        label(
            LabelTarget::Issue,
            "IS-9",
            "交通运输",
            "2026-11-21T10:00:00+08:00",
        ),
    ]);
    write_lake(&dir, &all).expect("write");
    let back = latest(read_lake(&dir).expect("read"));
    assert_eq!(back, all);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_issue_correction_reroutes_its_open_crowd_alerts_to_the_new_domains_unit() {
    let units = crate::engine::units::load(None).expect("built-in units");
    let mut alerts = BTreeMap::new();
    for a in [
        alert("A-open", "IS-1", AlertStatus::Assigned),
        alert("A-feedback", "IS-1", AlertStatus::FeedbackReceived),
        alert("A-closed", "IS-1", AlertStatus::Closed),
        alert("A-other", "IS-2", AlertStatus::Assigned),
    ] {
        alerts.insert(a.alert_id.clone(), a);
    }
    let mut person = alert("A-person", "IS-1", AlertStatus::Assigned);
    person.trigger = AlertTrigger::HighFrequency;
    alerts.insert(person.alert_id.clone(), person);
    let fix = label(
        LabelTarget::Issue,
        "IS-1",
        "生态环境",
        "2026-11-22T10:00:00+08:00",
    );
    let acts = reroutes(&fix, &alerts, &units);
    let ids: Vec<&str> = acts.iter().map(|a| a.alert_id.as_str()).collect();
    assert_eq!(ids, vec!["A-feedback", "A-open"]);
    let want = units.responsible(Some("生态环境"), Some("镜湖区"));
    for a in &acts {
        assert_eq!(a.action, ActionKind::Reroute);
        assert_eq!(a.unit.as_deref(), Some(want.as_str()));
        assert_eq!(a.domain.as_deref(), Some("生态环境"));
        assert_eq!(
            (a.actor.as_str(), a.role.as_str()),
            ("王科长", "supervisor")
        );
    }
    assert_ne!(want, "镜湖区城市管理局", "the correction changes the unit");
    // The same domain again, or a complaint's correction, re-routes nothing.
    let same = label(
        LabelTarget::Issue,
        "IS-1",
        "城市管理",
        "2026-11-22T10:00:00+08:00",
    );
    assert!(reroutes(&same, &alerts, &units).is_empty());
    let one = label(
        LabelTarget::Complaint,
        "c1",
        "生态环境",
        "2026-11-22T10:00:00+08:00",
    );
    assert!(reroutes(&one, &alerts, &units).is_empty());
}

#[test]
fn records_and_lake_columns_match_the_json_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/label.schema.json")).expect("parses");
    let props = schema["properties"].as_object().expect("properties");
    let l = label(
        LabelTarget::Complaint,
        "c1",
        "生态环境",
        "2026-11-20T10:00:00+08:00",
    );
    let v = serde_json::to_value(&l).expect("serializes");
    for k in v.as_object().expect("object").keys() {
        assert!(props.contains_key(k), "{k} is not in label.schema.json");
    }
    for f in labels_schema().fields() {
        assert!(props.contains_key(f.name()), "{}", f.name());
    }
    assert_eq!(serde_json::from_value::<Label>(v).expect("round trip"), l);
}
