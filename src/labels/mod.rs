//! Supervisors' domain corrections (labels): the record on the compacted `<prefix>.labels` topic
//! and the lake table `labels`, which open alerts a correction re-routes, and training rows.
//!
//! A correction sets the domain of one complaint or of one issue (all its complaints). The latest
//! correction per complaint or issue counts (the topic is keyed `complaint:<id>` / `issue:<id>`
//! and compacted). An issue's correction re-routes its open crowd alerts to the unit responsible
//! for the new domain through the lifecycle (`reroute` actions, recorded in their history), when
//! that unit differs; a complaint's correction is a training label only.

pub mod api;

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::engine::units::UnitTable;
use crate::lifecycle::decide::{ActionKind, AlertAction};
use crate::record::{Alert, AlertStatus, AlertTrigger, TZ};

/// What a correction is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelTarget {
    Complaint,
    Issue,
}

impl LabelTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelTarget::Complaint => "complaint",
            LabelTarget::Issue => "issue",
        }
    }
}

/// One correction (schemas/label.schema.json): a record of `<prefix>.labels` and a row of the
/// lake table `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Unique per correction.
    pub label_id: String,
    pub target: LabelTarget,
    /// The complaint corrected (target `complaint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_id: Option<String>,
    /// The issue corrected (target `issue`), or the corrected complaint's issue when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_id: Option<String>,
    /// The domain before the correction, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_domain: Option<String>,
    /// The corrected domain.
    pub domain: String,
    /// Who corrected it (the caller's name or role).
    pub actor: String,
    pub role: String,
    pub at: DateTime<FixedOffset>,
    #[serde(default)]
    pub reason: String,
}

impl Label {
    /// The key on the compacted topic: the latest correction of each complaint and issue counts.
    pub fn key(&self) -> String {
        match self.target {
            LabelTarget::Complaint => format!(
                "complaint:{}",
                self.complaint_id.as_deref().unwrap_or_default()
            ),
            LabelTarget::Issue => {
                format!("issue:{}", self.issue_id.as_deref().unwrap_or_default())
            }
        }
    }
}

/// The latest correction per key (records of the topic in order: later ones win).
pub fn latest(labels: impl IntoIterator<Item = Label>) -> BTreeMap<String, Label> {
    let mut out = BTreeMap::new();
    for l in labels {
        out.insert(l.key(), l);
    }
    out
}

/// Arrow schema of the lake table `labels`.
pub fn labels_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("label_id", false),
        s("target", false),
        s("complaint_id", true),
        s("issue_id", true),
        s("old_domain", true),
        s("domain", false),
        s("actor", false),
        s("role", false),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(TZ.into())),
            false,
        ),
        s("reason", false),
    ]))
}

pub fn labels_to_batch(rows: &[&Label]) -> Result<RecordBatch> {
    let strs = |f: &dyn Fn(&Label) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(|l| f(l))))
    };
    let cols: Vec<ArrayRef> = vec![
        strs(&|l| Some(&l.label_id)),
        strs(&|l| Some(l.target.as_str())),
        strs(&|l| l.complaint_id.as_deref()),
        strs(&|l| l.issue_id.as_deref()),
        strs(&|l| l.old_domain.as_deref()),
        strs(&|l| Some(&l.domain)),
        strs(&|l| Some(&l.actor)),
        strs(&|l| Some(&l.role)),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|l| l.at.timestamp_micros()),
            )
            .with_timezone(TZ),
        ),
        strs(&|l| Some(&l.reason)),
    ];
    Ok(RecordBatch::try_new(labels_schema(), cols)?)
}

/// Write the lake table `labels` (`lake/labels/labels.parquet`): the latest corrections.
pub fn write_lake(lake: &Path, labels: &BTreeMap<String, Label>) -> Result<()> {
    let rows: Vec<&Label> = labels.values().collect();
    crate::lake::write_parquet(
        &lake.join("labels").join("labels.parquet"),
        &labels_to_batch(&rows)?,
    )
    .context("writing the lake table labels")
}

/// The corrections of the lake table `labels` (none when the table does not exist yet).
pub fn read_lake(lake: &Path) -> Result<Vec<Label>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let path = lake.join("labels").join("labels.parquet");
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .with_context(|| format!("{}: not a labels table", path.display()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("{}: unreadable", path.display()))?;
        let col = |name: &str| -> Result<&StringArray> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .with_context(|| format!("{}: no text column `{name}`", path.display()))
        };
        let get = |name: &str, r: usize| -> Result<Option<String>> {
            let c = col(name)?;
            Ok((!c.is_null(r)).then(|| c.value(r).to_string()))
        };
        let at = batch
            .column_by_name("at")
            .and_then(|c| {
                c.as_primitive_opt::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
            })
            .with_context(|| format!("{}: no timestamp column `at`", path.display()))?;
        for r in 0..batch.num_rows() {
            let target = match get("target", r)?.as_deref() {
                Some("issue") => LabelTarget::Issue,
                _ => LabelTarget::Complaint,
            };
            let at = DateTime::from_timestamp_micros(at.value(r))
                .context("label time out of range")?
                .with_timezone(&crate::record::local_offset());
            out.push(Label {
                label_id: get("label_id", r)?.unwrap_or_default(),
                target,
                complaint_id: get("complaint_id", r)?,
                issue_id: get("issue_id", r)?,
                old_domain: get("old_domain", r)?,
                domain: get("domain", r)?.unwrap_or_default(),
                actor: get("actor", r)?.unwrap_or_default(),
                role: get("role", r)?.unwrap_or_default(),
                at,
                reason: get("reason", r)?.unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// The `reroute` actions an issue's correction asks for: one per open crowd alert of the issue
/// (or merged into it) whose domain differs, with the unit responsible for the new domain in
/// the alert's district (`units`, the town/street level from its summary). A complaint's
/// correction re-routes nothing.
pub fn reroutes(
    label: &Label,
    alerts: &BTreeMap<String, Alert>,
    units: &UnitTable,
) -> Vec<AlertAction> {
    let (LabelTarget::Issue, Some(issue)) = (label.target, label.issue_id.as_deref()) else {
        return Vec::new();
    };
    alerts
        .values()
        .filter(|a| a.trigger == AlertTrigger::CrowdConcentration && a.subject == issue)
        .filter(|a| {
            matches!(
                a.lifecycle.status,
                AlertStatus::Assigned | AlertStatus::FeedbackReceived
            )
        })
        .filter(|a| a.domain.as_deref() != Some(label.domain.as_str()))
        .map(|a| {
            let unit = units.responsible_at(
                Some(&label.domain),
                a.district.as_deref(),
                &[a.summary.as_str()],
            );
            AlertAction {
                action_id: format!("{}-{}", label.label_id, a.alert_id),
                alert_id: a.alert_id.clone(),
                action: ActionKind::Reroute,
                actor: label.actor.clone(),
                actor_note: None,
                role: label.role.clone(),
                at: label.at,
                reason: label.reason.clone(),
                unit: Some(unit),
                accepted: None,
                finding: None,
                domain: Some(label.domain.clone()),
            }
        })
        .collect()
}

/// Apply label records (topic values, in order) to the view's latest corrections; true when any
/// changed. A record that is not a label is skipped with a warning naming its origin.
pub fn apply_records<'a>(
    view: &std::sync::RwLock<crate::lifecycle::api::View>,
    records: impl IntoIterator<Item = (String, &'a [u8])>,
) -> bool {
    let mut v = view.write().unwrap_or_else(|e| e.into_inner());
    let mut changed = false;
    for (origin, bytes) in records {
        match serde_json::from_slice::<Label>(bytes) {
            Ok(l) => {
                if v.labels.get(&l.key()) != Some(&l) {
                    v.labels.insert(l.key(), l);
                    changed = true;
                }
            }
            Err(e) => {
                tracing::warn!(target: "duban::labels", "{origin}: not a valid label record, skipped: {e}")
            }
        }
    }
    changed
}

/// Write the view's corrections to the lake table `labels` of `lake`.
pub fn write_view(
    lake: &Path,
    view: &std::sync::RwLock<crate::lifecycle::api::View>,
) -> Result<()> {
    let labels = view
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .labels
        .clone();
    write_lake(lake, &labels)
}

/// Follow the compacted labels topic from its beginning (committed records only) into the
/// view's corrections; with `lake`, rewrite the lake table `labels` after each change (the
/// lifecycle does; a board following the same deployment only reads). Ends when `stop` is set.
pub fn follow(
    bootstrap: &str,
    topic: &str,
    view: std::sync::Arc<std::sync::RwLock<crate::lifecycle::api::View>>,
    lake: Option<std::path::PathBuf>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    use rdkafka::Message;
    let prefix = topic.strip_suffix(".labels").unwrap_or(topic);
    let consumer = crate::web::topic_follower(bootstrap, prefix, topic)?;
    let topic = topic.to_string();
    // It lives through broker outages like the board's follower: an error the broker does not
    // contradict is told once per interval and the consumer resumes where it was.
    let mut outage = crate::ops::Outage::new("labels", None);
    Ok(tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                m = consumer.recv() => m,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    if !crate::ops::outage::kafka_answers(&consumer) {
                        let delay = outage.failed(
                            anyhow::Error::new(e).context(format!("labels: reading {topic}")),
                        )?;
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            _ = stop.wait_for(|s| *s) => return Ok(()),
                        }
                    }
                    continue;
                }
            };
            outage.ok();
            let origin = format!("{topic}/{}/{}", m.partition(), m.offset());
            let Some(payload) = m.payload() else { continue };
            if apply_records(&view, [(origin, payload)])
                && let Some(lake) = &lake
            {
                write_view(lake, &view)?;
            }
        }
    }))
}

#[cfg(test)]
mod tests;
