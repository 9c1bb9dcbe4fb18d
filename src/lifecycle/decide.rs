//! The alert lifecycle's decisions: `decide(state, event, now)` → (new state, outputs), pure (no
//! I/O, no clock). Yellow → (feedback) → green, or → red on a missed deadline or a finding; red →
//! green on verification; green → yellow only by reopen (a recurrence opens a new alert instead).

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use super::calendar::WorkCalendar;
use crate::record::{
    Alert, AlertLevel, AlertLifecycle, AlertStatus, AlertTransition, TransitionKind,
};

/// The deadlines the lifecycle applies.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Warning period of a yellow alert in working days, when its domain has none of its own.
    pub warning_working_days: u32,
    /// Per-domain warning periods (domain name → working days).
    pub warning_by_domain: BTreeMap<String, u32>,
    /// Red: working days the unit has for its written reply.
    pub reply_working_days: u32,
    pub calendar: WorkCalendar,
}

impl Default for Policy {
    /// The policy of the default `[rules]` and `[lifecycle]`, on the built-in calendar.
    fn default() -> Self {
        super::config::LifecycleConfig::default().policy_on(
            &crate::config::RuleConfig::default(),
            WorkCalendar::builtin(),
        )
    }
}

impl Policy {
    pub fn warning_days(&self, domain: Option<&str>) -> u32 {
        domain
            .and_then(|d| self.warning_by_domain.get(d))
            .copied()
            .unwrap_or(self.warning_working_days)
    }
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// The supervision bureau: assign, verify, escalate, reopen.
    Supervisor,
    /// An enforcement unit: feedback on its own alerts only.
    Unit(String),
    /// Deadlines and engine evidence.
    System,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "supervisor" => Some(Role::Supervisor),
            "system" => Some(Role::System),
            other => other
                .strip_prefix("unit:")
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| Role::Unit(u.to_string())),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Supervisor => f.write_str("supervisor"),
            Role::Unit(u) => write!(f, "unit:{u}"),
            Role::System => f.write_str("system"),
        }
    }
}

/// What a bureau or unit action asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Assign,
    Feedback,
    Verify,
    Escalate,
    Reopen,
    /// The alert's domain was corrected (a label on its issue): the unit responsible for the new
    /// domain takes it over (`domain`, `unit`).
    Reroute,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Assign => "assign",
            ActionKind::Feedback => "feedback",
            ActionKind::Verify => "verify",
            ActionKind::Escalate => "escalate",
            ActionKind::Reopen => "reopen",
            ActionKind::Reroute => "reroute",
        }
    }
}

/// The finding behind a manual escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// 不作为: the unit failed to act.
    Inaction,
    /// 乱作为: the unit acted unlawfully or improperly.
    Misconduct,
}

impl Finding {
    pub fn label_zh(self) -> &'static str {
        match self {
            Finding::Inaction => "不作为",
            Finding::Misconduct => "乱作为",
        }
    }
}

/// One record of `<prefix>.alert-actions` (schemas/alert-action.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertAction {
    /// Unique per action (the API makes a UUID-like id); actions are applied once per id.
    pub action_id: String,
    pub alert_id: String,
    pub action: ActionKind,
    /// Who acts: the name of the token's holder (the API sets it from the credential).
    pub actor: String,
    /// Who the caller said acts (`X-Duban-Actor`), unverified; bounded and plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_note: Option<String>,
    /// `supervisor` or `unit:<unit name>`.
    pub role: String,
    pub at: DateTime<FixedOffset>,
    /// Comment; the feedback text for `feedback`; required for `escalate` and a rejecting `verify`.
    #[serde(default)]
    pub reason: String,
    /// `assign`: the unit to assign to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `verify`: false rejects the unit's fix (back to the unit). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    /// `escalate`: 不作为 / 乱作为.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
    /// `reroute`: the corrected domain (with `unit`, the unit responsible for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// What happens to an alert. An event lives for one `decide` call and is never held in bulk, so
/// an action is kept inline (it is the common event) rather than boxed.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// The engine raised the alert or updated its evidence.
    Raised(Box<Alert>),
    /// A bureau or unit action.
    Action(AlertAction),
    /// Time passed: check deadlines.
    Tick,
}

/// A message for the responsible unit, sent on state changes only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `<alert_id>#<history seq>`: stable, so the notification log never sends one twice.
    pub notification_id: String,
    pub alert_id: String,
    pub unit: String,
    pub action: TransitionKind,
    pub level: AlertLevel,
    pub title: String,
    pub text: String,
    pub deadline: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_no: Option<String>,
    pub at: DateTime<FixedOffset>,
}

/// What `decide` asks the driver to do besides storing the new state.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Notify(Notification),
    /// Render the supervision recommendation of the new state (its `document_no` is set).
    Document,
    /// Store a new alert (a recurrence) beside this one.
    Open(Box<Alert>),
    /// An action was applied.
    Applied {
        action_id: String,
    },
    /// An action was refused; `forbidden`: the role may not do it (HTTP 403), else it does not fit
    /// the alert's state (409) or names no alert (404).
    Rejected {
        action_id: String,
        alert_id: String,
        reason: String,
        forbidden: bool,
    },
}

/// Inputs besides the state that a decision may need.
pub struct Ctx<'a> {
    pub policy: &'a Policy,
    /// The number the next supervision recommendation gets (used only when one is issued).
    pub next_document_no: &'a str,
}

/// Local calendar day of an instant.
fn day(t: DateTime<FixedOffset>) -> NaiveDate {
    t.with_timezone(&crate::record::local_offset()).date_naive()
}

/// True when `now` is past the end of the `deadline` day.
pub fn overdue(deadline: NaiveDate, now: DateTime<FixedOffset>) -> bool {
    day(now) > deadline
}

fn active(a: &Alert) -> bool {
    matches!(
        a.lifecycle.status,
        AlertStatus::Assigned | AlertStatus::FeedbackReceived
    )
}

struct Step<'a> {
    action_id: Option<&'a str>,
    actor: &'a str,
    role: String,
    action: TransitionKind,
    reason: String,
}

/// Append a transition and move the alert to `(level, status)`.
fn record(
    a: &mut Alert,
    now: DateTime<FixedOffset>,
    step: Step,
    level: AlertLevel,
    status: AlertStatus,
    first: bool,
) -> AlertTransition {
    let t = AlertTransition {
        seq: a.lifecycle.history.len() as u32 + 1,
        at: now,
        actor: step.actor.to_string(),
        role: step.role,
        action: step.action,
        from_level: (!first).then_some(a.level),
        to_level: level,
        from_status: a.lifecycle.status,
        to_status: status,
        reason: step.reason,
        action_id: step.action_id.map(str::to_string),
    };
    a.level = level;
    a.lifecycle.status = status;
    a.lifecycle.history.push(t.clone());
    t
}

fn notification(a: &Alert, t: &AlertTransition) -> Notification {
    let what = match t.action {
        TransitionKind::Raise if a.lifecycle.recurrent => "屡治屡犯，重新预警",
        TransitionKind::Raise => "新预警",
        TransitionKind::Assign => "改派",
        TransitionKind::Escalate => "升级为红色督办",
        TransitionKind::ReplyOverdue => "督办书面回复逾期",
        TransitionKind::Verify => "核实办结，绿色清零",
        TransitionKind::Reject => "整改未通过核实，请继续办理",
        TransitionKind::Reopen => "重新打开",
        TransitionKind::Reroute => "领域更正，改派",
        TransitionKind::Feedback | TransitionKind::Recur | TransitionKind::Merge => "状态变化",
    };
    Notification {
        notification_id: format!("{}#{}", a.alert_id, t.seq),
        alert_id: a.alert_id.clone(),
        unit: a.unit.clone(),
        action: t.action,
        level: a.level,
        title: format!("【{}】{}：{}", a.level.label_zh(), what, a.alert_id),
        text: format!(
            "{}。办理期限：{}。{}",
            a.summary,
            a.deadline,
            if t.reason.is_empty() {
                String::new()
            } else {
                format!("说明：{}", t.reason)
            }
        ),
        deadline: a.deadline,
        document_no: a.lifecycle.document_no.clone(),
        at: t.at,
    }
}

/// Open `a` (fresh from the engine, or a recurrence) as a yellow alert assigned to its unit.
fn open(
    mut a: Alert,
    now: DateTime<FixedOffset>,
    cx: &Ctx,
    reason: String,
) -> (Alert, Vec<Output>) {
    a.level = AlertLevel::Yellow;
    a.lifecycle.status = AlertStatus::Raised;
    a.lifecycle.opened_at = Some(now);
    a.deadline = cx
        .policy
        .calendar
        .add_working_days(day(now), cx.policy.warning_days(a.domain.as_deref()));
    a.lifecycle.revision += 1;
    if let Some(into) = a.merged_into.clone() {
        let step = Step {
            action_id: None,
            actor: "system",
            role: "system".into(),
            action: TransitionKind::Merge,
            reason: format!("已并入{into}"),
        };
        record(
            &mut a,
            now,
            step,
            AlertLevel::Yellow,
            AlertStatus::Merged,
            true,
        );
        return (a, vec![]);
    }
    let step = Step {
        action_id: None,
        actor: "system",
        role: "system".into(),
        action: TransitionKind::Raise,
        reason,
    };
    let t = record(
        &mut a,
        now,
        step,
        AlertLevel::Yellow,
        AlertStatus::Assigned,
        true,
    );
    let n = notification(&a, &t);
    (a, vec![Output::Notify(n)])
}

/// Red: escalation time, reply deadline, a numbered recommendation.
fn escalate(a: &mut Alert, now: DateTime<FixedOffset>, cx: &Ctx, step: Step) -> Vec<Output> {
    a.lifecycle.escalated_at = Some(now);
    a.lifecycle.reply_deadline = Some(
        cx.policy
            .calendar
            .add_working_days(day(now), cx.policy.reply_working_days),
    );
    a.lifecycle.document_no = Some(cx.next_document_no.to_string());
    a.lifecycle.document_path = Some(super::document::relative_path(cx.next_document_no));
    a.lifecycle.revision += 1;
    let status = a.lifecycle.status;
    let t = record(a, now, step, AlertLevel::Red, status, false);
    vec![Output::Document, Output::Notify(notification(a, &t))]
}

/// Copy the engine's evidence onto the lifecycle's state (never its lifecycle fields or unit).
fn update_evidence(a: &mut Alert, e: &Alert) -> bool {
    let before = (
        a.complaint_ids.clone(),
        a.summary.clone(),
        a.merged_into.clone(),
    );
    if a.lifecycle.recurrent {
        let closed: BTreeSet<&String> = {
            let new: BTreeSet<&String> = a.lifecycle.new_complaint_ids.iter().collect();
            a.complaint_ids
                .iter()
                .filter(|i| !new.contains(i))
                .collect()
        };
        a.lifecycle.new_complaint_ids = e
            .complaint_ids
            .iter()
            .filter(|i| !closed.contains(i))
            .cloned()
            .collect();
    }
    a.window_start = e.window_start;
    a.window_end = e.window_end;
    a.summary = e.summary.clone();
    a.complaint_ids = e.complaint_ids.clone();
    a.complaint_count = e.complaint_count;
    a.distinct_complainants = e.distinct_complainants;
    a.key_terms = e.key_terms.clone();
    a.version = a.version.max(e.version);
    a.updated_at = e.updated_at;
    a.merged_into = e.merged_into.clone();
    let changed = before
        != (
            a.complaint_ids.clone(),
            a.summary.clone(),
            a.merged_into.clone(),
        );
    if changed {
        a.lifecycle.revision += 1;
    }
    changed
}

/// The id of the `n`-th recurrence of the engine alert `source`.
pub fn recurrence_id(source: &str, n: u32) -> String {
    format!("{source}-R{n}")
}

fn on_raised(
    state: Option<Alert>,
    e: &Alert,
    now: DateTime<FixedOffset>,
    cx: &Ctx,
) -> (Option<Alert>, Vec<Output>) {
    let Some(mut a) = state else {
        let mut fresh = e.clone();
        fresh.lifecycle = AlertLifecycle {
            source_alert_id: Some(e.alert_id.clone()),
            ..AlertLifecycle::default()
        };
        let reason = format!("{}：{}", e.trigger.label_zh(), e.summary);
        let (a, out) = open(fresh, now, cx, reason);
        return (Some(a), out);
    };
    match a.lifecycle.status {
        AlertStatus::Closed => {
            // 屡治屡犯: complaints the closed alert did not cover open a new, linked alert.
            let known: BTreeSet<&String> = a.complaint_ids.iter().collect();
            let new: Vec<String> = e
                .complaint_ids
                .iter()
                .filter(|i| !known.contains(i))
                .cloned()
                .collect();
            if new.is_empty() || e.merged_into.is_some() {
                return (Some(a), vec![]);
            }
            let n = a.lifecycle.recurrence + 1;
            let source = a
                .lifecycle
                .source_alert_id
                .clone()
                .unwrap_or_else(|| a.alert_id.clone());
            let id = recurrence_id(&source, n);
            let mut next = e.clone();
            next.alert_id = id.clone();
            next.unit = a.unit.clone();
            next.lifecycle = AlertLifecycle {
                recurrence_of: Some(a.alert_id.clone()),
                recurrent: true,
                recurrence: n,
                source_alert_id: Some(source),
                new_complaint_ids: new.clone(),
                ..AlertLifecycle::default()
            };
            let reason = format!(
                "屡治屡犯：{}已于{}核实办结后又收到{}件新投诉（第{}次复发）",
                a.alert_id,
                a.lifecycle.closed_at.map(day).unwrap_or_default(),
                new.len(),
                n
            );
            let step = Step {
                action_id: None,
                actor: "system",
                role: "system".into(),
                action: TransitionKind::Recur,
                reason: format!("新投诉{}件，另立复发预警{id}", new.len()),
            };
            a.lifecycle.revision += 1;
            record(
                &mut a,
                now,
                step,
                AlertLevel::Green,
                AlertStatus::Closed,
                false,
            );
            let (next, mut out) = open(next, now, cx, reason);
            out.insert(0, Output::Open(Box::new(next)));
            (Some(a), out)
        }
        AlertStatus::Merged => {
            update_evidence(&mut a, e);
            (Some(a), vec![])
        }
        _ => {
            let was_merged = a.merged_into.is_some();
            update_evidence(&mut a, e);
            if !was_merged && let Some(into) = a.merged_into.clone() {
                let step = Step {
                    action_id: None,
                    actor: "system",
                    role: "system".into(),
                    action: TransitionKind::Merge,
                    reason: format!("已并入{into}，由其继续办理"),
                };
                let level = a.level;
                record(&mut a, now, step, level, AlertStatus::Merged, false);
            }
            (Some(a), vec![])
        }
    }
}

fn on_tick(
    state: Option<Alert>,
    now: DateTime<FixedOffset>,
    cx: &Ctx,
) -> (Option<Alert>, Vec<Output>) {
    let Some(mut a) = state else {
        return (None, vec![]);
    };
    if !active(&a) {
        return (Some(a), vec![]);
    }
    match a.level {
        AlertLevel::Yellow if overdue(a.deadline, now) => {
            let step = Step {
                action_id: None,
                actor: "system",
                role: "system".into(),
                action: TransitionKind::Escalate,
                reason: format!("预警期限{}届满，未经核实办结", a.deadline),
            };
            let out = escalate(&mut a, now, cx, step);
            (Some(a), out)
        }
        AlertLevel::Red => {
            let due = a.lifecycle.reply_deadline;
            let last_escalation = a
                .lifecycle
                .history
                .iter()
                .rposition(|t| t.action == TransitionKind::Escalate);
            let reminded = a
                .lifecycle
                .history
                .iter()
                .rposition(|t| t.action == TransitionKind::ReplyOverdue);
            let already = matches!((last_escalation, reminded), (Some(e), Some(r)) if r > e);
            match due {
                Some(d) if overdue(d, now) && !already => {
                    a.lifecycle.revision += 1;
                    let step = Step {
                        action_id: None,
                        actor: "system",
                        role: "system".into(),
                        action: TransitionKind::ReplyOverdue,
                        reason: format!("书面回复期限{d}已过，未见核实办结"),
                    };
                    let status = a.lifecycle.status;
                    let t = record(&mut a, now, step, AlertLevel::Red, status, false);
                    let n = notification(&a, &t);
                    (Some(a), vec![Output::Notify(n)])
                }
                _ => (Some(a), vec![]),
            }
        }
        _ => (Some(a), vec![]),
    }
}

fn reject(act: &AlertAction, reason: impl Into<String>, forbidden: bool) -> Output {
    Output::Rejected {
        action_id: act.action_id.clone(),
        alert_id: act.alert_id.clone(),
        reason: reason.into(),
        forbidden,
    }
}

/// Whether `role` may do `kind` on an alert assigned to `unit` (the HTTP API asks this first).
pub fn permitted(role: &Role, kind: ActionKind, unit: &str) -> Result<(), String> {
    match (role, kind) {
        (Role::Supervisor, ActionKind::Feedback) => {
            Err("feedback is given by the responsible unit, not the bureau".into())
        }
        (Role::Supervisor, _) => Ok(()),
        (Role::Unit(u), ActionKind::Feedback) if u == unit => Ok(()),
        (Role::Unit(u), ActionKind::Feedback) => Err(format!(
            "unit {u} may not give feedback on an alert of {unit}"
        )),
        (Role::Unit(u), k) => Err(format!("unit {u} may not {} alerts", k.as_str())),
        (Role::System, _) => Err("system actions come from deadlines only".into()),
    }
}

fn on_action(
    state: Option<Alert>,
    act: &AlertAction,
    now: DateTime<FixedOffset>,
    cx: &Ctx,
) -> (Option<Alert>, Vec<Output>) {
    let Some(mut a) = state else {
        return (
            None,
            vec![reject(act, format!("no alert {}", act.alert_id), false)],
        );
    };
    let Some(role) = Role::parse(&act.role) else {
        return (
            Some(a),
            vec![reject(act, format!("unknown role `{}`", act.role), true)],
        );
    };
    if let Err(why) = permitted(&role, act.action, &a.unit) {
        return (Some(a), vec![reject(act, why, true)]);
    }
    let step = |action: TransitionKind, reason: String| Step {
        action_id: Some(&act.action_id),
        actor: &act.actor,
        role: role.to_string(),
        action,
        // The caller's own statement of who acts stays beside the reason, marked unverified.
        reason: match &act.actor_note {
            Some(note) => format!("{reason}〔未核实署名：{note}〕"),
            None => reason,
        },
    };
    let conflict = |a: Alert, why: String| (Some(a), vec![reject(act, why, false)]);
    let state_name = |a: &Alert| format!("{} / {}", a.level.as_str(), a.lifecycle.status.as_str());
    let mut out = Vec::new();
    match act.action {
        ActionKind::Assign => {
            let Some(unit) = act.unit.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
                return conflict(a, "assign needs the unit to assign to".into());
            };
            if !active(&a) {
                let s = state_name(&a);
                return conflict(a, format!("cannot assign an alert that is {s}"));
            }
            let from = std::mem::replace(&mut a.unit, unit.to_string());
            if a.level == AlertLevel::Yellow {
                // The new unit gets a full warning period.
                a.lifecycle.opened_at = Some(now);
                a.deadline = cx
                    .policy
                    .calendar
                    .add_working_days(day(now), cx.policy.warning_days(a.domain.as_deref()));
            }
            a.lifecycle.revision += 1;
            let (level, reason) = (a.level, format!("由{from}改派至{unit}。{}", act.reason));
            let t = record(
                &mut a,
                now,
                step(TransitionKind::Assign, reason),
                level,
                AlertStatus::Assigned,
                false,
            );
            out.push(Output::Notify(notification(&a, &t)));
        }
        ActionKind::Feedback => {
            if act.reason.trim().is_empty() {
                return conflict(a, "feedback needs a text (what was done)".into());
            }
            if !active(&a) {
                let s = state_name(&a);
                return conflict(a, format!("cannot give feedback on an alert that is {s}"));
            }
            a.lifecycle.feedback = Some(act.reason.clone());
            a.lifecycle.feedback_at = Some(now);
            a.lifecycle.revision += 1;
            let level = a.level;
            let step = step(TransitionKind::Feedback, act.reason.clone());
            record(
                &mut a,
                now,
                step,
                level,
                AlertStatus::FeedbackReceived,
                false,
            );
        }
        ActionKind::Verify => {
            if a.lifecycle.status != AlertStatus::FeedbackReceived {
                let s = state_name(&a);
                return conflict(
                    a,
                    format!("nothing to verify: the alert is {s} (no unit feedback)"),
                );
            }
            a.lifecycle.revision += 1;
            let t = if act.accepted.unwrap_or(true) {
                a.lifecycle.closed_at = Some(now);
                let reason = if act.reason.is_empty() {
                    "整改到位，核实办结".to_string()
                } else {
                    act.reason.clone()
                };
                record(
                    &mut a,
                    now,
                    step(TransitionKind::Verify, reason),
                    AlertLevel::Green,
                    AlertStatus::Closed,
                    false,
                )
            } else {
                if act.reason.trim().is_empty() {
                    return conflict(a, "rejecting a fix needs a reason".into());
                }
                let level = a.level;
                record(
                    &mut a,
                    now,
                    step(TransitionKind::Reject, act.reason.clone()),
                    level,
                    AlertStatus::Assigned,
                    false,
                )
            };
            out.push(Output::Notify(notification(&a, &t)));
        }
        ActionKind::Escalate => {
            if a.level != AlertLevel::Yellow || !active(&a) {
                let s = state_name(&a);
                return conflict(
                    a,
                    format!("only an open yellow alert can be escalated; it is {s}"),
                );
            }
            let finding = act.finding.map(Finding::label_zh).unwrap_or("督办");
            if act.reason.trim().is_empty() {
                return conflict(a, "escalation needs a reason (the finding)".into());
            }
            let reason = format!("{finding}：{}", act.reason);
            out.extend(escalate(
                &mut a,
                now,
                cx,
                step(TransitionKind::Escalate, reason),
            ));
        }
        ActionKind::Reroute => {
            let (Some(domain), Some(unit)) = (
                act.domain
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty()),
                act.unit.as_deref().map(str::trim).filter(|u| !u.is_empty()),
            ) else {
                return conflict(a, "reroute needs the corrected domain and its unit".into());
            };
            if !active(&a) {
                let s = state_name(&a);
                return conflict(a, format!("cannot re-route an alert that is {s}"));
            }
            let old_domain = a.domain.replace(domain.to_string()).unwrap_or_default();
            let from = std::mem::replace(&mut a.unit, unit.to_string());
            let moved = from != unit;
            if moved && a.level == AlertLevel::Yellow {
                // The new unit gets a full warning period, as with a manual assignment.
                a.lifecycle.opened_at = Some(now);
                a.deadline = cx
                    .policy
                    .calendar
                    .add_working_days(day(now), cx.policy.warning_days(Some(domain)));
            }
            a.lifecycle.revision += 1;
            let routed = if moved {
                format!("，由{from}改派至{unit}")
            } else {
                format!("，仍由{unit}办理")
            };
            let reason = format!("领域更正：{old_domain}→{domain}{routed}。{}", act.reason);
            let (level, status) = (a.level, a.lifecycle.status);
            let t = record(
                &mut a,
                now,
                step(TransitionKind::Reroute, reason),
                level,
                status,
                false,
            );
            if moved {
                out.push(Output::Notify(notification(&a, &t)));
            }
        }
        ActionKind::Reopen => {
            if a.lifecycle.status != AlertStatus::Closed {
                let s = state_name(&a);
                return conflict(
                    a,
                    format!("only a closed (green) alert can be reopened; it is {s}"),
                );
            }
            a.lifecycle.opened_at = Some(now);
            a.lifecycle.closed_at = None;
            a.lifecycle.escalated_at = None;
            a.lifecycle.reply_deadline = None;
            a.lifecycle.feedback = None;
            a.lifecycle.feedback_at = None;
            a.deadline = cx
                .policy
                .calendar
                .add_working_days(day(now), cx.policy.warning_days(a.domain.as_deref()));
            a.lifecycle.revision += 1;
            let reason = act.reason.clone();
            let t = record(
                &mut a,
                now,
                step(TransitionKind::Reopen, reason),
                AlertLevel::Yellow,
                AlertStatus::Assigned,
                false,
            );
            out.push(Output::Notify(notification(&a, &t)));
        }
    }
    out.push(Output::Applied {
        action_id: act.action_id.clone(),
    });
    (Some(a), out)
}

/// The lifecycle's one decision function. `state` is the alert the event is about (None: not
/// known yet); `now` is the lifecycle clock's time.
pub fn decide(
    state: Option<Alert>,
    event: &Event,
    now: DateTime<FixedOffset>,
    cx: &Ctx,
) -> (Option<Alert>, Vec<Output>) {
    match event {
        Event::Raised(e) => on_raised(state, e, now, cx),
        Event::Action(act) => on_action(state, act, now, cx),
        Event::Tick => on_tick(state, now, cx),
    }
}
