//! Drivers that wire the stages together: the embedded demo (in-process bus, simulator included)
//! and the Kafka stages (`run`, `ingest`, `process`). Stage logic lives in connectors/ and engine/.

pub mod backfill;
pub mod drain;
pub mod embedded;
pub mod kafka;

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

use crate::record::{Alert, Complaint};

/// Keep the latest state of each alert (by version).
pub fn merge_alerts(into: &mut BTreeMap<String, Alert>, changed: impl IntoIterator<Item = Alert>) {
    for a in changed {
        match into.get(&a.alert_id) {
            Some(old) if old.version >= a.version => {}
            _ => {
                into.insert(a.alert_id.clone(), a);
            }
        }
    }
}

/// Write `alerts.jsonl` (latest state of each alert, one JSON object a line) atomically.
pub fn write_alerts_jsonl(dir: &Path, alerts: &BTreeMap<String, Alert>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut text = String::new();
    for a in alerts.values() {
        text.push_str(&serde_json::to_string(a)?);
        text.push('\n');
    }
    let path = dir.join("alerts.jsonl");
    let tmp = dir.join("alerts.jsonl.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Counts for the summary: complaints per channel and per domain, alerts per trigger.
#[derive(Debug, Default, Clone, serde::Serialize, PartialEq)]
pub struct Summary {
    pub complaints: usize,
    pub duplicates: usize,
    pub dead_letters: usize,
    pub by_channel: BTreeMap<String, usize>,
    pub by_domain: BTreeMap<String, usize>,
    pub alerts_by_trigger: BTreeMap<String, usize>,
    /// After the lifecycle (demo): alerts per colour (`level`).
    pub alerts_by_level: BTreeMap<String, usize>,
    pub issues: usize,
    pub issues_with_crowd: usize,
    pub complainants: usize,
    pub complainants_flagged: usize,
}

impl Summary {
    pub fn add_complaints(&mut self, rows: &[Complaint]) {
        for c in rows {
            self.complaints += 1;
            self.duplicates += usize::from(c.duplicate_of.is_some());
            *self.by_channel.entry(c.channel.clone()).or_default() += 1;
            *self.by_domain.entry(c.domain.clone()).or_default() += 1;
        }
    }

    pub fn set_alerts(&mut self, alerts: &BTreeMap<String, Alert>) {
        self.alerts_by_trigger.clear();
        for a in alerts.values() {
            *self
                .alerts_by_trigger
                .entry(a.trigger.as_str().to_string())
                .or_default() += 1;
        }
    }

    /// Count the lifecycle's board by colour.
    pub fn set_board(&mut self, alerts: &BTreeMap<String, Alert>) {
        self.alerts_by_level.clear();
        for a in alerts.values() {
            *self
                .alerts_by_level
                .entry(a.level.as_str().to_string())
                .or_default() += 1;
        }
    }

    /// Counts of the engine's state: issues from its block partitions, complainants from its
    /// complainant partitions (each partition holds its own keys; nothing is copied).
    pub fn set_state(&mut self, parts: &crate::lake::StateParts<'_>, crowd_min: usize) {
        let (mut n, mut crowd) = (0, 0);
        for (_, state) in &parts.blocks {
            for i in state.all_issues().filter(|i| i.merged_into.is_none()) {
                n += 1;
                crowd += usize::from(i.complainants.len() >= crowd_min);
            }
        }
        self.issues = n;
        self.issues_with_crowd = crowd;
        let (mut people, mut flagged) = (0, 0);
        for (_, state) in &parts.people {
            let all = state.all_people();
            people += all.len();
            flagged += all.values().filter(|p| p.flagged).count();
        }
        self.complainants = people;
        self.complainants_flagged = flagged;
    }

    /// The table `duban demo` prints.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, k: &str, v: usize| {
            s.push_str(&format!(
                "  {} {v:>7}\n",
                crate::util::console::pad_right(k, 24)
            ))
        };
        s.push_str(&format!(
            "complaints: {} ({} exact duplicates), dead letters: {}\n",
            self.complaints, self.duplicates, self.dead_letters
        ));
        s.push_str("by channel\n");
        for (k, v) in &self.by_channel {
            row(&mut s, k, *v);
        }
        s.push_str("by domain\n");
        for (k, v) in &self.by_domain {
            row(&mut s, k, *v);
        }
        s.push_str(&format!(
            "issues: {} ({} raised by a crowd), complainants: {} ({} flagged high-frequency)\n",
            self.issues, self.issues_with_crowd, self.complainants, self.complainants_flagged
        ));
        s.push_str("alerts raised (by trigger)\n");
        for (k, v) in &self.alerts_by_trigger {
            row(&mut s, k, *v);
        }
        if !self.alerts_by_level.is_empty() {
            s.push_str("alert board after the lifecycle (by colour)\n");
            for (k, v) in &self.alerts_by_level {
                row(&mut s, k, *v);
            }
        }
        s
    }
}
