//! Tests of the lifecycle's decisions: transitions, deadlines, documents, recurrence, roles, and
//! property tests of the three invariants (nothing leaves green but reopen; every deadline ends
//! green or red; histories only grow).

use chrono::{DateTime, Duration, FixedOffset, NaiveDate};
use proptest::prelude::*;

use super::board::Board;
use super::decide::*;
use crate::record::{Alert, AlertLevel, AlertStatus, AlertTrigger, TransitionKind, alert_id};

const UNIT: &str = "镜湖区城市管理局";

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("time")
}

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn engine_alert(ids: &[String]) -> Alert {
    let raised = t("2026-11-19T09:00:00+08:00");
    Alert {
        alert_id: alert_id(
            AlertTrigger::CrowdConcentration,
            "issue-1",
            NaiveDate::default(),
        ),
        trigger: AlertTrigger::CrowdConcentration,
        level: AlertLevel::Yellow,
        subject: "issue-1".into(),
        window_start: d("2026-11-18"),
        window_end: d("2026-11-19"),
        summary: format!("镜湖区福兴花园：{}名群众反映城市管理问题", ids.len()),
        domain: Some("城市管理".into()),
        district: Some("镜湖区".into()),
        unit: UNIT.into(),
        deadline: d("2026-11-26"),
        complaint_ids: ids.to_vec(),
        complaint_count: ids.len() as u64,
        distinct_complainants: ids.len() as u64,
        key_terms: vec!["占道".into()],
        version: 1,
        raised_at: raised,
        updated_at: raised,
        merged_into: None,
        lifecycle: Default::default(),
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i:03}")).collect()
}

fn action(id: &str, kind: ActionKind, role: &str, reason: &str) -> AlertAction {
    AlertAction {
        action_id: format!("a-{}-{}-{reason}", kind.as_str(), role),
        alert_id: id.into(),
        action: kind,
        actor: "tester".into(),
        actor_note: None,
        role: role.into(),
        at: t("2026-11-20T10:00:00+08:00"),
        reason: reason.into(),
        unit: None,
        accepted: None,
        finding: None,
        domain: None,
    }
}

fn policy() -> Policy {
    Policy::default()
}

fn run(state: Option<Alert>, e: &Event, now: &str) -> (Option<Alert>, Vec<Output>) {
    let p = policy();
    decide(
        state,
        e,
        t(now),
        &Ctx {
            policy: &p,
            next_document_no: "芜督建〔2026〕1号",
        },
    )
}

fn raised() -> Alert {
    let (a, out) = run(
        None,
        &Event::Raised(Box::new(engine_alert(&ids(5)))),
        "2026-11-20T10:00:00+08:00",
    );
    let a = a.expect("opened");
    assert!(
        matches!(&out[..], [Output::Notify(n)] if n.unit == UNIT && n.action == TransitionKind::Raise)
    );
    a
}

#[test]
fn raised_alert_is_yellow_with_a_working_day_deadline() {
    let a = raised();
    assert_eq!(
        (a.level, a.lifecycle.status),
        (AlertLevel::Yellow, AlertStatus::Assigned)
    );
    // Friday 20 Nov + 5 working days = Friday 27 Nov (the engine's own deadline is replaced).
    assert_eq!(a.deadline, d("2026-11-27"));
    assert_eq!(a.lifecycle.history.len(), 1);
    assert_eq!(a.lifecycle.history[0].action, TransitionKind::Raise);
    assert_eq!(
        a.lifecycle.source_alert_id.as_deref(),
        Some(a.alert_id.as_str())
    );
}

#[test]
fn per_domain_warning_period_and_holidays_set_the_deadline() {
    let mut p = policy();
    p.warning_by_domain.insert("城市管理".into(), 2);
    let cx = Ctx {
        policy: &p,
        next_document_no: "x",
    };
    // Friday 2026-09-18 + 2 working days: Sunday 20 Sep is an adjusted working day.
    let (a, _) = decide(
        None,
        &Event::Raised(Box::new(engine_alert(&ids(5)))),
        t("2026-09-18T10:00:00+08:00"),
        &cx,
    );
    assert_eq!(a.expect("opened").deadline, d("2026-09-21"));
}

#[test]
fn feedback_then_verification_turns_green() {
    let a = raised();
    let id = a.alert_id.clone();
    let fb = action(
        &id,
        ActionKind::Feedback,
        &format!("unit:{UNIT}"),
        "已清理占道摊点",
    );
    let (a, out) = run(Some(a), &Event::Action(fb), "2026-11-23T10:00:00+08:00");
    let a = a.expect("state");
    assert_eq!(a.lifecycle.status, AlertStatus::FeedbackReceived);
    assert_eq!(a.lifecycle.feedback.as_deref(), Some("已清理占道摊点"));
    assert!(out.iter().any(|o| matches!(o, Output::Applied { .. })));
    let v = action(&id, ActionKind::Verify, "supervisor", "");
    let (a, out) = run(Some(a), &Event::Action(v), "2026-11-24T10:00:00+08:00");
    let a = a.expect("state");
    assert_eq!(
        (a.level, a.lifecycle.status),
        (AlertLevel::Green, AlertStatus::Closed)
    );
    assert_eq!(a.lifecycle.closed_at, Some(t("2026-11-24T10:00:00+08:00")));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Notify(n) if n.action == TransitionKind::Verify))
    );
    let h: Vec<(&str, &str)> = a
        .lifecycle
        .history
        .iter()
        .map(|t| (t.action.as_str(), t.role.as_str()))
        .collect();
    assert_eq!(
        h,
        vec![
            ("raise", "system"),
            ("feedback", "unit:镜湖区城市管理局"),
            ("verify", "supervisor")
        ]
    );
    // A tick long after the deadline changes nothing on a green alert.
    let (after, out) = run(Some(a.clone()), &Event::Tick, "2026-12-31T10:00:00+08:00");
    assert_eq!(after, Some(a));
    assert!(out.is_empty());
}

#[test]
fn a_domain_correction_reroutes_an_open_alert_with_its_history() {
    let a = raised();
    let id = a.alert_id.clone();
    let new_unit = "镜湖区生态环境分局";
    let reroute = |domain: Option<&str>, unit: Option<&str>, role: &str| AlertAction {
        domain: domain.map(Into::into),
        unit: unit.map(Into::into),
        ..action(&id, ActionKind::Reroute, role, "标注更正")
    };
    // A unit may not re-route; a re-route without its domain or unit does not fit.
    let (_, out) = run(
        Some(a.clone()),
        &Event::Action(reroute(
            Some("生态环境"),
            Some(new_unit),
            &format!("unit:{UNIT}"),
        )),
        "2026-11-23T10:00:00+08:00",
    );
    assert!(matches!(
        &out[..],
        [Output::Rejected {
            forbidden: true,
            ..
        }]
    ));
    let (_, out) = run(
        Some(a.clone()),
        &Event::Action(reroute(None, Some(new_unit), "supervisor")),
        "2026-11-23T10:00:00+08:00",
    );
    assert!(matches!(
        &out[..],
        [Output::Rejected {
            forbidden: false,
            ..
        }]
    ));
    // Monday: the new unit gets the alert with a full warning period, and is notified.
    let (r, out) = run(
        Some(a),
        &Event::Action(reroute(Some("生态环境"), Some(new_unit), "supervisor")),
        "2026-11-23T10:00:00+08:00",
    );
    let r = r.expect("state");
    assert_eq!(
        (r.unit.as_str(), r.domain.as_deref()),
        (new_unit, Some("生态环境"))
    );
    assert_eq!(
        (r.level, r.lifecycle.status),
        (AlertLevel::Yellow, AlertStatus::Assigned)
    );
    assert_eq!(r.deadline, d("2026-11-30"));
    let last = r.lifecycle.history.last().expect("history");
    assert_eq!(
        (last.action.as_str(), last.role.as_str()),
        ("reroute", "supervisor")
    );
    assert!(
        last.reason.contains("城市管理→生态环境") && last.reason.contains(UNIT),
        "{}",
        last.reason
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Notify(n) if n.unit == new_unit && n.action == TransitionKind::Reroute))
    );
    // The engine's later evidence keeps the corrected domain and unit.
    let (r, _) = run(
        Some(r),
        &Event::Raised(Box::new(engine_alert(&ids(7)))),
        "2026-11-24T10:00:00+08:00",
    );
    let r = r.expect("state");
    assert_eq!((r.unit.as_str(), r.complaint_count), (new_unit, 7));
    // A correction that keeps the unit records the domain without a notification; a closed
    // alert is not re-routed.
    let (same, out) = run(
        Some(r.clone()),
        &Event::Action(AlertAction {
            action_id: "again".into(),
            ..reroute(Some("城乡建设"), Some(new_unit), "supervisor")
        }),
        "2026-11-24T11:00:00+08:00",
    );
    let same = same.expect("state");
    assert_eq!(same.domain.as_deref(), Some("城乡建设"));
    assert_eq!(same.deadline, r.deadline);
    assert!(!out.iter().any(|o| matches!(o, Output::Notify(_))));
    let mut closed = same;
    closed.lifecycle.status = AlertStatus::Closed;
    let (_, out) = run(
        Some(closed),
        &Event::Action(AlertAction {
            action_id: "late".into(),
            ..reroute(Some("生态环境"), Some(UNIT), "supervisor")
        }),
        "2026-11-25T10:00:00+08:00",
    );
    assert!(matches!(
        &out[..],
        [Output::Rejected {
            forbidden: false,
            ..
        }]
    ));
}

#[test]
fn missed_deadline_escalates_once_with_a_document_and_a_reply_deadline() {
    let a = raised();
    let (same, out) = run(Some(a.clone()), &Event::Tick, "2026-11-27T23:59:59+08:00");
    assert_eq!(same.as_ref(), Some(&a), "not overdue on the deadline day");
    assert!(out.is_empty());
    let (r, out) = run(Some(a), &Event::Tick, "2026-11-28T00:00:01+08:00");
    let r = r.expect("state");
    assert_eq!(r.level, AlertLevel::Red);
    assert_eq!(
        r.lifecycle.document_no.as_deref(),
        Some("芜督建〔2026〕1号")
    );
    assert_eq!(
        r.lifecycle.document_path.as_deref(),
        Some("documents/SR-2026-0001.md")
    );
    // Saturday 28 Nov + 10 working days = Friday 11 Dec.
    assert_eq!(r.lifecycle.reply_deadline, Some(d("2026-12-11")));
    assert!(out.contains(&Output::Document));
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Notify(n) if n.action == TransitionKind::Escalate))
            .count(),
        1
    );
    let (again, out) = run(Some(r.clone()), &Event::Tick, "2026-11-30T09:00:00+08:00");
    assert_eq!(again.as_ref(), Some(&r), "escalates once");
    assert!(out.is_empty());
    // Past the reply deadline: one reminder, the level stays red.
    let (late, out) = run(Some(r), &Event::Tick, "2026-12-12T09:00:00+08:00");
    let late = late.expect("state");
    assert_eq!(late.level, AlertLevel::Red);
    assert_eq!(
        late.lifecycle.history.last().map(|t| t.action.as_str()),
        Some("reply_overdue")
    );
    assert_eq!(out.len(), 1);
    let (_, out) = run(Some(late), &Event::Tick, "2026-12-14T09:00:00+08:00");
    assert!(out.is_empty(), "reminded once");
    // The document names the unit, the basis, the evidence and the reply deadline.
}

#[test]
fn document_holds_issue_evidence_history_deadline_and_basis() {
    let a = raised();
    let (r, _) = run(Some(a), &Event::Tick, "2026-11-28T00:00:01+08:00");
    let r = r.expect("state");
    let md = super::document::markdown(&r);
    let html = super::document::html(&r);
    for want in [
        "行政执法监督建议书",
        "芜督建〔2026〕1号",
        UNIT,
        "《芜湖市行政执法监督办法》",
        "c004",
        "2026-12-11",
        "升级督办",
    ] {
        assert!(md.contains(want), "markdown lacks {want}:\n{md}");
        assert!(html.contains(want), "html lacks {want}");
    }
    assert!(html.starts_with("<!doctype html>"));
    // Outside text (evidence, feedback) is escaped in the Markdown (issue 21, item 10).
    let mut hostile = r.clone();
    hostile.summary = "<script>alert(1)</script>[x](javascript:y)".into();
    let md2 = super::document::markdown(&hostile);
    assert!(
        !md2.contains("<script") && !md2.contains("[x](") && md2.contains("&lt;script&gt;"),
        "{md2}"
    );
    // The document stays as issued when the history grows afterwards.
    let (later, _) = run(Some(r.clone()), &Event::Tick, "2026-12-12T09:00:00+08:00");
    assert_eq!(super::document::markdown(&later.expect("state")), md);
}

#[test]
fn findings_escalate_and_red_closes_green_on_verification() {
    let a = raised();
    let id = a.alert_id.clone();
    let mut e = action(&id, ActionKind::Escalate, "supervisor", "多次反映未处理");
    e.finding = Some(Finding::Inaction);
    let (r, _) = run(Some(a), &Event::Action(e), "2026-11-23T10:00:00+08:00");
    let r = r.expect("state");
    assert_eq!(r.level, AlertLevel::Red);
    assert!(
        r.lifecycle
            .history
            .last()
            .expect("h")
            .reason
            .starts_with("不作为")
    );
    let fb = action(
        &id,
        ActionKind::Feedback,
        &format!("unit:{UNIT}"),
        "已书面回复并整改",
    );
    let (r, _) = run(Some(r), &Event::Action(fb), "2026-11-24T10:00:00+08:00");
    let v = action(&id, ActionKind::Verify, "supervisor", "");
    let (g, _) = run(r, &Event::Action(v), "2026-11-25T10:00:00+08:00");
    assert_eq!(g.expect("state").level, AlertLevel::Green);
}

#[test]
fn an_actor_note_is_kept_as_unverified_beside_the_holder() {
    let a = raised();
    let mut fb = action(
        &a.alert_id,
        ActionKind::Feedback,
        &format!("unit:{UNIT}"),
        "已整改",
    );
    fb.actor_note = Some("王五".into());
    let (a, _) = run(Some(a), &Event::Action(fb), "2026-11-21T10:00:00+08:00");
    let last = a
        .expect("alert")
        .lifecycle
        .history
        .pop()
        .expect("transition");
    assert_eq!(last.actor, "tester");
    assert_eq!(last.reason, "已整改〔未核实署名：王五〕");
}

#[test]
fn roles_are_enforced() {
    let a = raised();
    let id = a.alert_id.clone();
    let refused = |state: &Alert, act: AlertAction| -> (bool, String) {
        let (after, out) = run(
            Some(state.clone()),
            &Event::Action(act),
            "2026-11-23T10:00:00+08:00",
        );
        assert_eq!(
            after.as_ref(),
            Some(state),
            "a refused action changes nothing"
        );
        match &out[..] {
            [
                Output::Rejected {
                    forbidden, reason, ..
                },
            ] => (*forbidden, reason.clone()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    let own = format!("unit:{UNIT}");
    assert!(
        refused(&a, action(&id, ActionKind::Verify, &own, "")).0,
        "a unit may not verify"
    );
    assert!(refused(&a, action(&id, ActionKind::Escalate, &own, "x")).0);
    assert!(
        refused(
            &a,
            action(&id, ActionKind::Feedback, "unit:芜湖市公安局", "done")
        )
        .0,
        "not its alert"
    );
    assert!(refused(&a, action(&id, ActionKind::Feedback, "supervisor", "done")).0);
    assert!(refused(&a, action(&id, ActionKind::Verify, "nobody", "")).0);
    let (forbidden, why) = refused(&a, action(&id, ActionKind::Verify, "supervisor", ""));
    assert!(!forbidden && why.contains("no unit feedback"), "{why}");
    let (forbidden, _) = refused(&a, action(&id, ActionKind::Reopen, "supervisor", ""));
    assert!(
        !forbidden,
        "reopening a yellow alert is a conflict, not a permission matter"
    );
}

fn close(a: Alert, at: &str) -> Alert {
    let id = a.alert_id.clone();
    let fb = action(
        &id,
        ActionKind::Feedback,
        &format!("unit:{}", a.unit),
        "整改完成",
    );
    let (a, _) = run(Some(a), &Event::Action(fb), at);
    let v = action(&id, ActionKind::Verify, "supervisor", "");
    let (a, _) = run(a, &Event::Action(v), at);
    let a = a.expect("state");
    assert_eq!(a.level, AlertLevel::Green);
    a
}

#[test]
fn new_complaints_on_a_green_alert_open_a_linked_recurrent_alert() {
    let green = close(raised(), "2026-11-23T10:00:00+08:00");
    let mut update = engine_alert(&ids(7));
    update.version = 2;
    let (old, out) = run(
        Some(green.clone()),
        &Event::Raised(Box::new(update.clone())),
        "2026-12-01T10:00:00+08:00",
    );
    let old = old.expect("state");
    assert_eq!(old.level, AlertLevel::Green, "the closed alert stays green");
    assert_eq!(
        old.lifecycle.history.last().map(|t| t.action.as_str()),
        Some("recur")
    );
    let next = out
        .iter()
        .find_map(|o| match o {
            Output::Open(a) => Some(a.clone()),
            _ => None,
        })
        .expect("a new alert");
    assert_eq!(next.alert_id, format!("{}-R1", green.alert_id));
    assert_eq!(
        next.lifecycle.recurrence_of.as_deref(),
        Some(green.alert_id.as_str())
    );
    assert!(next.lifecycle.recurrent);
    assert_eq!(
        next.lifecycle.new_complaint_ids,
        vec!["c005".to_string(), "c006".to_string()]
    );
    assert_eq!(
        (next.level, next.lifecycle.status),
        (AlertLevel::Yellow, AlertStatus::Assigned)
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Notify(n) if n.alert_id == next.alert_id))
    );
    // The same evidence again is no recurrence.
    let (_, out) = run(
        Some(green),
        &Event::Raised(Box::new(engine_alert(&ids(5)))),
        "2026-12-01T10:00:00+08:00",
    );
    assert!(out.is_empty());
}

#[test]
fn board_routes_engine_updates_to_the_newest_recurrence_and_applies_actions_once() {
    let mut b = Board::new(policy(), []);
    let now = t("2026-11-20T10:00:00+08:00");
    let fx = b.apply(&Event::Raised(Box::new(engine_alert(&ids(5)))), now);
    assert_eq!(fx.changed.len(), 1);
    let id = fx.changed.keys().next().expect("id").clone();
    let fb = action(&id, ActionKind::Feedback, &format!("unit:{UNIT}"), "done");
    assert_eq!(b.apply(&Event::Action(fb.clone()), now).results.len(), 1);
    assert!(
        b.apply(&Event::Action(fb), now).is_empty(),
        "a re-sent action applies once"
    );
    b.apply(
        &Event::Action(action(&id, ActionKind::Verify, "supervisor", "")),
        now,
    );
    let fx = b.apply(
        &Event::Raised(Box::new(engine_alert(&ids(6)))),
        now + Duration::days(3),
    );
    assert_eq!(
        fx.changed.len(),
        2,
        "the green alert's history and the new alert"
    );
    let r1 = format!("{id}-R1");
    // A restored board routes the next evidence update to R1, not to the closed alert.
    let mut restored = Board::new(policy(), b.alerts.values().cloned());
    let fx = restored.apply(
        &Event::Raised(Box::new(engine_alert(&ids(8)))),
        now + Duration::days(4),
    );
    assert_eq!(fx.changed.keys().collect::<Vec<_>>(), vec![&r1]);
    let r = &restored.alerts[&r1];
    assert_eq!(r.complaint_count, 8);
    assert_eq!(r.lifecycle.new_complaint_ids.len(), 3);
    assert_eq!(restored.recurrences().by_issue.get(&id), Some(&1));
    assert_eq!(restored.recurrences().by_unit.get(UNIT), Some(&1));
}

#[test]
fn documents_are_numbered_in_sequence_across_alerts() {
    let mut b = Board::new(policy(), []);
    let now = t("2026-11-20T10:00:00+08:00");
    let mut other = engine_alert(&ids(5));
    other.alert_id = "AL-other".into();
    b.apply(&Event::Raised(Box::new(engine_alert(&ids(5)))), now);
    b.apply(&Event::Raised(Box::new(other)), now);
    let fx = b.tick(t("2026-11-30T10:00:00+08:00"));
    assert_eq!(fx.documents.len(), 2);
    let mut nos: Vec<&str> = b
        .alerts
        .values()
        .filter_map(|a| a.lifecycle.document_no.as_deref())
        .collect();
    nos.sort();
    assert_eq!(nos, vec!["芜督建〔2026〕1号", "芜督建〔2026〕2号"]);
}

/// A step of a random scenario.
#[derive(Debug, Clone)]
enum Op {
    Evidence(usize),
    Act(usize, ActionKind, bool),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        Just(ActionKind::Assign),
        Just(ActionKind::Feedback),
        Just(ActionKind::Verify),
        Just(ActionKind::Escalate),
        Just(ActionKind::Reopen),
    ];
    prop_oneof![
        (1usize..4).prop_map(Op::Evidence),
        (0usize..3, kind, any::<bool>()).prop_map(|(w, k, ok)| Op::Act(w, k, ok)),
        (1i64..200).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lifecycle_invariants_hold(ops in proptest::collection::vec(op(), 1..60)) {
        let mut b = Board::new(policy(), []);
        let mut now = t("2026-11-20T10:00:00+08:00");
        let mut n = 5;
        b.apply(&Event::Raised(Box::new(engine_alert(&ids(n)))), now);
        for (i, o) in ops.iter().enumerate() {
            let before = b.alerts.clone();
            let event = match o {
                Op::Evidence(k) => {
                    n += k;
                    Event::Raised(Box::new(engine_alert(&ids(n))))
                }
                Op::Act(which, kind, ok) => {
                    let targets: Vec<&String> = b.alerts.keys().collect();
                    let target = targets[which % targets.len()].clone();
                    let unit = b.alerts[&target].unit.clone();
                    let role = match kind {
                        ActionKind::Feedback => format!("unit:{unit}"),
                        _ => "supervisor".into(),
                    };
                    let mut a = action(&target, *kind, &role, "理由");
                    a.action_id = format!("op{i}");
                    a.accepted = Some(*ok);
                    a.unit = Some(if *ok { UNIT.into() } else { "芜湖市城市管理局".into() });
                    Event::Action(a)
                }
                Op::Advance(h) => {
                    now += Duration::hours(*h);
                    Event::Tick
                }
            };
            b.apply(&event, now);
            for (id, after) in &b.alerts {
                let Some(prev) = before.get(id) else { continue };
                // Histories only grow: the old history is a prefix of the new one.
                prop_assert!(after.lifecycle.history.len() >= prev.lifecycle.history.len());
                prop_assert_eq!(&after.lifecycle.history[..prev.lifecycle.history.len()], &prev.lifecycle.history[..]);
                for (k, t) in after.lifecycle.history.iter().enumerate() {
                    prop_assert_eq!(t.seq as usize, k + 1);
                }
                // Nothing leaves green but a reopen of that alert.
                if prev.level == AlertLevel::Green && after.level != AlertLevel::Green {
                    let reopened = matches!(&event, Event::Action(a) if a.action == ActionKind::Reopen && &a.alert_id == id);
                    prop_assert!(reopened, "{} left green on {:?}", id, event);
                }
            }
            if matches!(event, Event::Tick) {
                // Every deadline ends green or red: no open yellow alert is past its deadline.
                for a in b.alerts.values() {
                    let open_yellow = a.level == AlertLevel::Yellow
                        && matches!(a.lifecycle.status, AlertStatus::Assigned | AlertStatus::FeedbackReceived);
                    prop_assert!(!(open_yellow && overdue(a.deadline, now)), "{} yellow past {}", a.alert_id, a.deadline);
                }
            }
        }
        // Every red alert got there by an escalation recorded in its history, with a document.
        for a in b.alerts.values().filter(|a| a.level == AlertLevel::Red) {
            prop_assert!(a.lifecycle.history.iter().any(|t| t.action == TransitionKind::Escalate));
            prop_assert!(a.lifecycle.document_no.is_some());
        }
    }
}
