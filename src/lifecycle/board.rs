//! The board: every alert's latest lifecycle state, with the routing of engine alerts to their
//! newest recurrence. Applies events through `decide` and collects what must be written and sent.

use chrono::{DateTime, Datelike, FixedOffset};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::decide::{Ctx, Event, Notification, Output, Policy, decide};
use super::document::DocumentNo;
use crate::record::{Alert, AlertStatus};

/// The outcome of one action, for the API to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionResult {
    pub action_id: String,
    pub alert_id: String,
    pub applied: bool,
    pub forbidden: bool,
    pub reason: String,
}

/// What applying events produced: board records to write, notifications to log and send,
/// documents to render, action outcomes.
#[derive(Debug, Default)]
pub struct Effects {
    pub changed: BTreeMap<String, Alert>,
    pub notifications: Vec<Notification>,
    pub documents: Vec<String>,
    pub results: Vec<ActionResult>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.notifications.is_empty() && self.results.is_empty()
    }

    pub fn extend(&mut self, other: Effects) {
        self.changed.extend(other.changed);
        self.notifications.extend(other.notifications);
        self.documents.extend(other.documents);
        self.results.extend(other.results);
    }
}

/// Recurrence counts (屡治屡犯): per issue (the engine alert) and per unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecurrenceCounts {
    pub by_issue: BTreeMap<String, u32>,
    pub by_unit: BTreeMap<String, u32>,
}

/// Recurrence counts of these alerts: per issue its highest recurrence, per unit its recurrent
/// alerts.
pub fn recurrence_counts<'a>(alerts: impl Iterator<Item = &'a Alert>) -> RecurrenceCounts {
    let mut c = RecurrenceCounts::default();
    for a in alerts.filter(|a| a.lifecycle.recurrent) {
        let issue = a
            .lifecycle
            .source_alert_id
            .clone()
            .unwrap_or_else(|| a.alert_id.clone());
        let e = c.by_issue.entry(issue).or_default();
        *e = (*e).max(a.lifecycle.recurrence);
        *c.by_unit.entry(a.unit.clone()).or_default() += 1;
    }
    c
}

pub struct Board {
    pub alerts: BTreeMap<String, Alert>,
    /// Engine alert id → id of its newest lifecycle alert (itself or its latest recurrence).
    current: HashMap<String, String>,
    /// Actions already applied (from the histories), so a re-sent action applies once.
    applied: BTreeSet<String>,
    pub policy: Policy,
}

impl Board {
    /// A board restored from the latest alert records (the compacted alerts topic).
    pub fn new(policy: Policy, alerts: impl IntoIterator<Item = Alert>) -> Board {
        let mut b = Board {
            alerts: BTreeMap::new(),
            current: HashMap::new(),
            applied: BTreeSet::new(),
            policy,
        };
        for a in alerts {
            b.index(&a);
            b.alerts.insert(a.alert_id.clone(), a);
        }
        b
    }

    fn index(&mut self, a: &Alert) {
        let source = a
            .lifecycle
            .source_alert_id
            .clone()
            .unwrap_or_else(|| a.alert_id.clone());
        let newer = match self.current.get(&source).and_then(|id| self.alerts.get(id)) {
            Some(cur) => a.lifecycle.recurrence >= cur.lifecycle.recurrence,
            None => true,
        };
        if newer {
            self.current.insert(source, a.alert_id.clone());
        }
        self.applied.extend(
            a.lifecycle
                .history
                .iter()
                .filter_map(|t| t.action_id.clone()),
        );
    }

    fn next_document_no(&self, now: DateTime<FixedOffset>) -> String {
        DocumentNo::next(
            now.year(),
            self.alerts
                .values()
                .filter_map(|a| a.lifecycle.document_no.as_deref()),
        )
        .to_string()
    }

    /// The alert an event is about (engine alerts go to their newest recurrence).
    fn target(&self, event: &Event) -> Option<String> {
        match event {
            Event::Raised(e) => Some(
                self.current
                    .get(&e.alert_id)
                    .cloned()
                    .unwrap_or_else(|| e.alert_id.clone()),
            ),
            Event::Action(a) => Some(a.alert_id.clone()),
            Event::Tick => None,
        }
    }

    fn decide_one(&mut self, id: &str, event: &Event, now: DateTime<FixedOffset>) -> Effects {
        let mut fx = Effects::default();
        let doc_no = self.next_document_no(now);
        let cx = Ctx {
            policy: &self.policy,
            next_document_no: &doc_no,
        };
        let before = self.alerts.get(id).cloned();
        let (after, outputs) = decide(before.clone(), event, now, &cx);
        for o in outputs {
            match o {
                Output::Notify(n) => fx.notifications.push(n),
                Output::Document => fx.documents.push(id.to_string()),
                Output::Open(next) => {
                    self.index(&next);
                    fx.changed.insert(next.alert_id.clone(), (*next).clone());
                    self.alerts.insert(next.alert_id.clone(), *next);
                }
                Output::Applied { action_id } => {
                    self.applied.insert(action_id.clone());
                    fx.results.push(ActionResult {
                        action_id,
                        alert_id: id.to_string(),
                        applied: true,
                        forbidden: false,
                        reason: String::new(),
                    });
                }
                Output::Rejected {
                    action_id,
                    alert_id,
                    reason,
                    forbidden,
                } => {
                    tracing::warn!(target: "duban::lifecycle", %action_id, %alert_id, forbidden, "action refused: {reason}");
                    fx.results.push(ActionResult {
                        action_id,
                        alert_id,
                        applied: false,
                        forbidden,
                        reason,
                    })
                }
            }
        }
        if let Some(a) = after
            && before.as_ref() != Some(&a)
        {
            self.index(&a);
            fx.changed.insert(a.alert_id.clone(), a.clone());
            self.alerts.insert(a.alert_id.clone(), a);
        }
        fx
    }

    /// Apply one event from the engine or an actor.
    pub fn apply(&mut self, event: &Event, now: DateTime<FixedOffset>) -> Effects {
        if let Event::Action(a) = event
            && self.applied.contains(&a.action_id)
        {
            return Effects::default();
        }
        match self.target(event) {
            Some(id) => self.decide_one(&id, event, now),
            None => self.tick(now),
        }
    }

    /// Check every open alert's deadlines at `now`.
    pub fn tick(&mut self, now: DateTime<FixedOffset>) -> Effects {
        let open: Vec<String> = self
            .alerts
            .values()
            .filter(|a| {
                matches!(
                    a.lifecycle.status,
                    AlertStatus::Assigned | AlertStatus::FeedbackReceived
                )
            })
            .map(|a| a.alert_id.clone())
            .collect();
        let mut fx = Effects::default();
        for id in open {
            fx.extend(self.decide_one(&id, &Event::Tick, now));
        }
        fx
    }

    pub fn recurrences(&self) -> RecurrenceCounts {
        recurrence_counts(self.alerts.values())
    }
}
