//! Shared record types: channels, the raw envelope, the canonical complaint and the alert.
//! The Arrow schema of a complaint lives here and is checked against `schemas/complaint.schema.json`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One of the four public channels complaints arrive through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 12345 政务服务便民热线: work orders via REST API and CSV exports.
    Hotline,
    /// 人民网领导留言板: paginated JSON list + detail.
    Board,
    /// 市政府门户网站 (市长信箱): scraped HTML list + detail pages.
    Portal,
    /// 皖事通 app: signed webhooks pushed to duban.
    Wanshitong,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Hotline,
        Channel::Board,
        Channel::Portal,
        Channel::Wanshitong,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Hotline => "hotline",
            Channel::Board => "board",
            Channel::Portal => "portal",
            Channel::Wanshitong => "wanshitong",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown channel `{s}` (expected hotline, board, portal or wanshitong)")
            })
    }
}

use chrono::{DateTime, FixedOffset};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};

/// Time zone of every timestamp duban writes (the city's local time).
pub const TZ: &str = "+08:00";

pub fn local_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// `complaint_id` is derived from (channel, source id) only, so the same source record always
/// gets the same id, whichever connector or replay delivered it.
pub fn complaint_id(channel: &str, source_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(channel.as_bytes());
    h.update([0x1f]);
    h.update(source_id.trim().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// What a connector writes to the raw topic (schemas/raw-envelope.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawEnvelope {
    pub channel: Channel,
    pub source_id: String,
    pub fetched_at: DateTime<FixedOffset>,
    pub position: serde_json::Value,
    pub payload: serde_json::Value,
    /// The source's version of the record (e.g. the hotline's `updated_at`): a record changed
    /// after it was first seen is sent again with a new version. None: the source has no versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl RawEnvelope {
    /// Topic key: `channel:source_id`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.channel, self.source_id)
    }
}

/// A record a stage could not process (schemas/dead-letter.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub stage: String,
    pub channel: Option<String>,
    pub reason: String,
    pub origin: String,
    pub key: Option<String>,
    pub original_base64: String,
    pub at: DateTime<FixedOffset>,
}

impl DeadLetter {
    pub fn new(
        stage: &str,
        channel: Option<&str>,
        reason: String,
        origin: &str,
        key: Option<&[u8]>,
        original: &[u8],
    ) -> Self {
        use base64::Engine as _;
        // Reasons and origins may carry outside text (ids, file names): one line, bounded.
        DeadLetter {
            stage: stage.to_string(),
            channel: channel.map(str::to_string),
            reason: crate::redact::printable(&reason, crate::redact::MAX_REASON_CHARS),
            origin: crate::redact::printable(origin, crate::redact::MAX_REASON_CHARS),
            key: key.map(|k| String::from_utf8_lossy(k).into_owned()),
            original_base64: base64::engine::general_purpose::STANDARD.encode(original),
            at: chrono::Utc::now().with_timezone(&local_offset()),
        }
    }

    pub fn original(&self) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&self.original_base64)
            .unwrap_or_default()
    }
}

/// One canonical complaint (schemas/complaint.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Complaint {
    pub complaint_id: String,
    pub channel: String,
    pub source_id: String,
    pub received_at: DateTime<FixedOffset>,
    pub fetched_at: DateTime<FixedOffset>,
    pub title: String,
    pub body: String,
    pub complainant: Option<String>,
    pub phone_masked: Option<String>,
    pub district: Option<String>,
    pub address: Option<String>,
    pub domain: String,
    pub domain_confidence: f64,
    pub source_category: Option<String>,
    pub source_status: Option<String>,
    pub likes: Option<i64>,
    pub content_hash: String,
    pub duplicate_of: Option<String>,
    pub duplicate_group: String,
    pub place: Option<String>,
    pub issue_id: Option<String>,
    pub flags: String,
    /// The source's version when the record changed after first seen (hotline `updated_at`).
    pub source_version: Option<String>,
    /// The version of the classifier that set `domain` (a model folder's version, a model file's
    /// name and checksum, `taxonomy-model-…` or `vocabulary`).
    #[serde(default)]
    pub classifier_version: Option<String>,
}

impl Complaint {
    /// A complaint of `channel` with id `source_id`, received (and fetched) at `at`, with its text
    /// and nothing else known yet: no personal or location fields, `unclassified`, its own
    /// duplicate group, no issue. What the pipeline learns later is set with struct update
    /// syntax (`Complaint { domain, ..Complaint::new(…) }`), which is how tests build their rows.
    pub fn new(
        channel: &str,
        source_id: &str,
        at: DateTime<FixedOffset>,
        title: &str,
        body: &str,
    ) -> Complaint {
        let id = complaint_id(channel, source_id);
        Complaint {
            duplicate_group: id.clone(),
            complaint_id: id,
            channel: channel.into(),
            source_id: source_id.into(),
            received_at: at,
            fetched_at: at,
            title: title.into(),
            body: body.into(),
            complainant: None,
            phone_masked: None,
            district: None,
            address: None,
            domain: crate::engine::taxonomy::UNCLASSIFIED.into(),
            domain_confidence: 0.0,
            source_category: None,
            source_status: None,
            likes: None,
            content_hash: crate::engine::content_hash(body),
            duplicate_of: None,
            place: None,
            issue_id: None,
            flags: String::new(),
            source_version: None,
            classifier_version: None,
        }
    }

    /// Local calendar day of `received_at`: the lake's partition.
    pub fn day(&self) -> chrono::NaiveDate {
        self.received_at.with_timezone(&local_offset()).date_naive()
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(TZ.into()))
}

static COMPLAINT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("complaint_id", false),
        s("channel", false),
        s("source_id", false),
        Field::new("received_at", ts_type(), false),
        Field::new("fetched_at", ts_type(), false),
        s("title", false),
        s("body", false),
        s("complainant", true),
        s("phone_masked", true),
        s("district", true),
        s("address", true),
        s("domain", false),
        Field::new("domain_confidence", DataType::Float64, false),
        s("source_category", true),
        s("source_status", true),
        Field::new("likes", DataType::Int64, true),
        s("content_hash", false),
        s("duplicate_of", true),
        s("duplicate_group", false),
        s("place", true),
        s("issue_id", true),
        s("flags", false),
        s("source_version", true),
        s("classifier_version", true),
    ]))
});

/// The Arrow schema of a complaint; the same fields as schemas/complaint.schema.json.
pub fn complaint_schema() -> SchemaRef {
    COMPLAINT_SCHEMA.clone()
}

/// Complaints → one Arrow batch in the canonical schema.
pub fn complaints_to_batch(rows: &[Complaint]) -> datafusion::error::Result<RecordBatch> {
    fn strs<'a>(rows: &'a [Complaint], f: impl Fn(&'a Complaint) -> &'a str) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    }
    fn opts<'a>(rows: &'a [Complaint], f: impl Fn(&'a Complaint) -> Option<&'a str>) -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(f)))
    }
    fn ts(rows: &[Complaint], f: impl Fn(&Complaint) -> &DateTime<FixedOffset>) -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|r| f(r).timestamp_micros()),
            )
            .with_timezone(TZ),
        )
    }
    let cols: Vec<ArrayRef> = vec![
        strs(rows, |r| &r.complaint_id),
        strs(rows, |r| &r.channel),
        strs(rows, |r| &r.source_id),
        ts(rows, |r| &r.received_at),
        ts(rows, |r| &r.fetched_at),
        strs(rows, |r| &r.title),
        strs(rows, |r| &r.body),
        opts(rows, |r| r.complainant.as_deref()),
        opts(rows, |r| r.phone_masked.as_deref()),
        opts(rows, |r| r.district.as_deref()),
        opts(rows, |r| r.address.as_deref()),
        strs(rows, |r| &r.domain),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.domain_confidence),
        )),
        opts(rows, |r| r.source_category.as_deref()),
        opts(rows, |r| r.source_status.as_deref()),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.likes))),
        strs(rows, |r| &r.content_hash),
        opts(rows, |r| r.duplicate_of.as_deref()),
        strs(rows, |r| &r.duplicate_group),
        opts(rows, |r| r.place.as_deref()),
        opts(rows, |r| r.issue_id.as_deref()),
        strs(rows, |r| &r.flags),
        opts(rows, |r| r.source_version.as_deref()),
        opts(rows, |r| r.classifier_version.as_deref()),
    ];
    Ok(RecordBatch::try_new(complaint_schema(), cols)?)
}

/// Which rule raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTrigger {
    /// 群众诉求集中: many distinct complainants raise one issue.
    CrowdConcentration,
    /// 单人投诉明显超出正常频次: one complainant files far more often than normal.
    HighFrequency,
}

impl AlertTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertTrigger::CrowdConcentration => "crowd_concentration",
            AlertTrigger::HighFrequency => "high_frequency",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            AlertTrigger::CrowdConcentration => "群众诉求集中",
            AlertTrigger::HighFrequency => "单人高频投诉",
        }
    }
}

/// The three colours of 三色管理.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    /// 黄色预警: assigned to a unit, to be resolved within the warning period.
    Yellow,
    /// 红色督办: formal supervision with a written recommendation.
    Red,
    /// 绿色清零: the fix was verified; closed (对账销号).
    Green,
}

impl AlertLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Yellow => "yellow",
            AlertLevel::Red => "red",
            AlertLevel::Green => "green",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            AlertLevel::Yellow => "黄色预警",
            AlertLevel::Red => "红色督办",
            AlertLevel::Green => "绿色清零",
        }
    }
}

/// Where an alert stands inside its colour (the lifecycle's own field; the engine leaves `raised`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised by the engine, not yet taken up by the lifecycle.
    #[default]
    Raised,
    /// Assigned to its unit, waiting for the unit's feedback.
    Assigned,
    /// The unit reported its fix; waiting for the bureau's verification.
    FeedbackReceived,
    /// Verified and closed (green).
    Closed,
    /// Its issue turned out to be part of another alert's (`merged_into`); no more deadlines.
    Merged,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Raised => "raised",
            AlertStatus::Assigned => "assigned",
            AlertStatus::FeedbackReceived => "feedback_received",
            AlertStatus::Closed => "closed",
            AlertStatus::Merged => "merged",
        }
    }
}

/// What one step of an alert's history did (`AlertTransition::action`, a notification's
/// `action`). The wire names (serde and `as_str`) are schemas/alert-history.schema.json's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// Opened yellow (a new alert, or a recurrence's new linked alert).
    Raise,
    /// Reassigned to another unit by the bureau.
    Assign,
    /// The unit reported its fix.
    Feedback,
    /// The bureau verified the fix: green.
    Verify,
    /// The bureau did not accept the fix: back to the unit.
    Reject,
    /// To red: deadline missed, or a 不作为/乱作为 finding.
    Escalate,
    /// Red's written reply deadline passed.
    ReplyOverdue,
    /// Green back to yellow.
    Reopen,
    /// New complaints after closing: a new linked alert was opened.
    Recur,
    /// The issue merged into another alert's.
    Merge,
    /// The issue's domain was corrected: the unit responsible for the new domain took it over.
    Reroute,
}

impl TransitionKind {
    pub const ALL: [TransitionKind; 11] = [
        TransitionKind::Raise,
        TransitionKind::Assign,
        TransitionKind::Feedback,
        TransitionKind::Verify,
        TransitionKind::Reject,
        TransitionKind::Escalate,
        TransitionKind::ReplyOverdue,
        TransitionKind::Reopen,
        TransitionKind::Recur,
        TransitionKind::Merge,
        TransitionKind::Reroute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Raise => "raise",
            TransitionKind::Assign => "assign",
            TransitionKind::Feedback => "feedback",
            TransitionKind::Verify => "verify",
            TransitionKind::Reject => "reject",
            TransitionKind::Escalate => "escalate",
            TransitionKind::ReplyOverdue => "reply_overdue",
            TransitionKind::Reopen => "reopen",
            TransitionKind::Recur => "recur",
            TransitionKind::Merge => "merge",
            TransitionKind::Reroute => "reroute",
        }
    }
}

/// One step of an alert's history: who did what, when, from which state to which, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// 1, 2, 3 … within the alert; histories only grow.
    pub seq: u32,
    pub at: DateTime<FixedOffset>,
    /// Who: a token's name, a unit, or `system` for deadlines and engine evidence.
    pub actor: String,
    /// `supervisor`, `unit:<unit name>` or `system`.
    pub role: String,
    pub action: TransitionKind,
    pub from_level: Option<AlertLevel>,
    pub to_level: AlertLevel,
    pub from_status: AlertStatus,
    pub to_status: AlertStatus,
    pub reason: String,
    /// The action that caused it (bureau and unit actions); applied once per id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
}

/// Latest state of one alert (schemas/alert.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub trigger: AlertTrigger,
    pub level: AlertLevel,
    pub subject: String,
    pub window_start: chrono::NaiveDate,
    pub window_end: chrono::NaiveDate,
    pub summary: String,
    pub domain: Option<String>,
    pub district: Option<String>,
    pub unit: String,
    pub deadline: chrono::NaiveDate,
    pub complaint_ids: Vec<String>,
    pub complaint_count: u64,
    pub distinct_complainants: u64,
    pub key_terms: Vec<String>,
    pub version: u64,
    pub raised_at: DateTime<FixedOffset>,
    pub updated_at: DateTime<FixedOffset>,
    /// Set when re-clustering found the alert's issue to be part of another: the alert that
    /// carries on (its evidence includes this one's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// Lifecycle fields: written by the lifecycle (src/lifecycle) only; the engine leaves the
    /// defaults, so an engine record never carries (or resets) a lifecycle state.
    #[serde(flatten)]
    pub lifecycle: AlertLifecycle,
}

/// The lifecycle's part of an alert (flattened into the alert's JSON).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertLifecycle {
    #[serde(default)]
    pub status: AlertStatus,
    /// When the lifecycle assigned the alert (the warning period counts from this day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<DateTime<FixedOffset>>,
    /// Red: the unit's written reply is due by this day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_deadline: Option<chrono::NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<FixedOffset>>,
    /// The unit's latest feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_at: Option<DateTime<FixedOffset>>,
    /// 屡治屡犯: the green alert of the same issue this one reopens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_of: Option<String>,
    #[serde(default)]
    pub recurrent: bool,
    /// 0 for the first alert of an issue, n for its n-th recurrence.
    #[serde(default)]
    pub recurrence: u32,
    /// The engine's alert id this alert follows (its own id unless it is a recurrence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_alert_id: Option<String>,
    /// Complaints that arrived after the previous alert of the issue was closed (recurrences).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_complaint_ids: Vec<String>,
    /// 行政执法监督建议书 number, once red.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_no: Option<String>,
    /// The document's Markdown file, relative to the data folder (the HTML beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_path: Option<String>,
    /// Grows by one with every lifecycle write (`version` counts evidence changes).
    #[serde(default)]
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<AlertTransition>,
}

/// Alert ids are derived from (trigger, subject, window), so re-raising never duplicates.
pub fn alert_id(trigger: AlertTrigger, subject: &str, window_start: chrono::NaiveDate) -> String {
    let mut h = Sha256::new();
    h.update(trigger.as_str().as_bytes());
    h.update([0x1f]);
    h.update(subject.as_bytes());
    h.update([0x1f]);
    h.update(window_start.to_string().as_bytes());
    format!("AL-{}", &hex::encode(h.finalize())[..20])
}

/// Alerts (latest state) → Arrow batch for the lake table `alerts` (columns in
/// schemas/alert.schema.json, `x-lake`).
pub fn alerts_to_batch(rows: &[Alert]) -> datafusion::error::Result<RecordBatch> {
    use datafusion::arrow::array::{BooleanArray, Date32Array, UInt64Array};
    let date = |d: chrono::NaiveDate| {
        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
    };
    let strs = |f: &dyn Fn(&Alert) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let opts = |f: &dyn Fn(&Alert) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(f)))
    };
    let u64s = |f: &dyn Fn(&Alert) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
    };
    let ts = |f: &dyn Fn(&Alert) -> Option<DateTime<FixedOffset>>| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                rows.iter().map(|a| f(a).map(|t| t.timestamp_micros())),
            )
            .with_timezone(TZ),
        )
    };
    let dates = |f: &dyn Fn(&Alert) -> Option<chrono::NaiveDate>| -> ArrayRef {
        Arc::new(Date32Array::from_iter(rows.iter().map(|a| f(a).map(date))))
    };
    let cols: Vec<ArrayRef> = vec![
        strs(&|a| &a.alert_id),
        strs(&|a| a.trigger.as_str()),
        strs(&|a| a.level.as_str()),
        strs(&|a| &a.subject),
        dates(&|a| Some(a.window_start)),
        dates(&|a| Some(a.window_end)),
        strs(&|a| &a.summary),
        opts(&|a| a.domain.as_deref()),
        opts(&|a| a.district.as_deref()),
        strs(&|a| &a.unit),
        dates(&|a| Some(a.deadline)),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.complaint_ids.join(",")),
        )),
        u64s(&|a| a.complaint_count),
        u64s(&|a| a.distinct_complainants),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.key_terms.join(",")),
        )),
        u64s(&|a| a.version),
        ts(&|a| Some(a.raised_at)),
        ts(&|a| Some(a.updated_at)),
        opts(&|a| a.merged_into.as_deref()),
        strs(&|a| a.lifecycle.status.as_str()),
        ts(&|a| a.lifecycle.opened_at),
        ts(&|a| a.lifecycle.escalated_at),
        dates(&|a| a.lifecycle.reply_deadline),
        ts(&|a| a.lifecycle.closed_at),
        opts(&|a| a.lifecycle.feedback.as_deref()),
        ts(&|a| a.lifecycle.feedback_at),
        opts(&|a| a.lifecycle.recurrence_of.as_deref()),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|a| Some(a.lifecycle.recurrent)),
        )),
        u64s(&|a| u64::from(a.lifecycle.recurrence)),
        opts(&|a| a.lifecycle.source_alert_id.as_deref()),
        opts(&|a| a.lifecycle.document_no.as_deref()),
        opts(&|a| a.lifecycle.document_path.as_deref()),
        u64s(&|a| a.lifecycle.revision),
        u64s(&|a| a.lifecycle.history.len() as u64),
    ];
    Ok(RecordBatch::try_new(alert_schema(), cols)?)
}

/// Arrow schema of the lake table `alerts` (list fields flattened to comma-joined strings).
pub fn alert_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let ts = |n: &str, null: bool| Field::new(n, ts_type(), null);
    let u = |n: &str| Field::new(n, DataType::UInt64, false);
    Arc::new(Schema::new(vec![
        s("alert_id", false),
        s("trigger", false),
        s("level", false),
        s("subject", false),
        Field::new("window_start", DataType::Date32, false),
        Field::new("window_end", DataType::Date32, false),
        s("summary", false),
        s("domain", true),
        s("district", true),
        s("unit", false),
        Field::new("deadline", DataType::Date32, false),
        s("complaint_ids", false),
        u("complaint_count"),
        u("distinct_complainants"),
        s("key_terms", false),
        u("version"),
        ts("raised_at", false),
        ts("updated_at", false),
        s("merged_into", true),
        s("status", false),
        ts("opened_at", true),
        ts("escalated_at", true),
        Field::new("reply_deadline", DataType::Date32, true),
        ts("closed_at", true),
        s("feedback", true),
        ts("feedback_at", true),
        s("recurrence_of", true),
        Field::new("recurrent", DataType::Boolean, false),
        u("recurrence"),
        s("source_alert_id", true),
        s("document_no", true),
        s("document_path", true),
        u("revision"),
        u("transitions"),
    ]))
}

/// Arrow schema of the lake table `alert_history` (schemas/alert-history.schema.json): one row
/// per transition of every alert.
pub fn alert_history_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("alert_id", false),
        Field::new("seq", DataType::UInt64, false),
        Field::new("at", ts_type(), false),
        s("actor", false),
        s("role", false),
        s("action", false),
        s("from_level", true),
        s("to_level", false),
        s("from_status", false),
        s("to_status", false),
        s("reason", false),
        s("unit", false),
    ]))
}

/// Every alert's history → Arrow batch for the lake table `alert_history`.
pub fn alert_history_to_batch(rows: &[Alert]) -> datafusion::error::Result<RecordBatch> {
    use datafusion::arrow::array::UInt64Array;
    let t: Vec<(&Alert, &AlertTransition)> = rows
        .iter()
        .flat_map(|a| a.lifecycle.history.iter().map(move |h| (a, h)))
        .collect();
    let strs = |f: &dyn Fn(&Alert, &AlertTransition) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            t.iter().map(|(a, h)| f(a, h)),
        ))
    };
    let cols: Vec<ArrayRef> = vec![
        strs(&|a, _| a.alert_id.clone()),
        Arc::new(UInt64Array::from_iter_values(
            t.iter().map(|(_, h)| u64::from(h.seq)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                t.iter().map(|(_, h)| h.at.timestamp_micros()),
            )
            .with_timezone(TZ),
        ),
        strs(&|_, h| h.actor.clone()),
        strs(&|_, h| h.role.clone()),
        strs(&|_, h| h.action.as_str().to_string()),
        Arc::new(StringArray::from_iter(
            t.iter().map(|(_, h)| h.from_level.map(AlertLevel::as_str)),
        )),
        strs(&|_, h| h.to_level.as_str().to_string()),
        strs(&|_, h| h.from_status.as_str().to_string()),
        strs(&|_, h| h.to_status.as_str().to_string()),
        strs(&|_, h| h.reason.clone()),
        strs(&|a, _| a.unit.clone()),
    ];
    Ok(RecordBatch::try_new(alert_history_schema(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow_name(dt: &DataType) -> String {
        match dt {
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
                format!("Timestamp(Microsecond, {tz})")
            }
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn arrow_schema_matches_json_schema() {
        let text = include_str!("../schemas/complaint.schema.json");
        let json: serde_json::Value = serde_json::from_str(text).expect("schema parses");
        let props = json["properties"].as_object().expect("properties");
        let required: Vec<&str> = json["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let schema = complaint_schema();
        let arrow_names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let json_names: Vec<&str> = props.keys().map(String::as_str).collect();
        let mut a = arrow_names.clone();
        let mut j = json_names.clone();
        a.sort();
        j.sort();
        assert_eq!(a, j, "same field names in Arrow and JSON Schema");
        for f in schema.fields() {
            let p = &props[f.name()];
            assert_eq!(
                p["x-arrow"].as_str(),
                Some(arrow_name(f.data_type()).as_str()),
                "type of {}",
                f.name()
            );
            assert_eq!(
                !f.is_nullable(),
                required.contains(&f.name().as_str()),
                "nullability of {}",
                f.name()
            );
            let nullable_in_json = p["type"]
                .as_array()
                .is_some_and(|t| t.iter().any(|v| v == "null"));
            assert_eq!(
                f.is_nullable(),
                nullable_in_json,
                "null type of {}",
                f.name()
            );
        }
    }

    #[test]
    fn complaint_json_has_exactly_the_schema_fields() {
        let c = sample();
        let v = serde_json::to_value(&c).expect("serializes");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), complaint_schema().fields().len());
        for f in complaint_schema().fields() {
            assert!(v.get(f.name()).is_some(), "missing {}", f.name());
        }
        let batch = complaints_to_batch(&[c.clone(), c]).expect("batch");
        assert_eq!(batch.num_rows(), 2);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        // Pinned: compacted topics and replays key by these ids across versions.
        assert_eq!(
            complaint_id("hotline", "A1"),
            "2df41ca4477cf64bc90eeb53f7a5ba98"
        );
        assert_eq!(
            alert_id(
                AlertTrigger::CrowdConcentration,
                "IS-000000001",
                chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date")
            ),
            "AL-4d89ca8ae114958a2d35"
        );
        assert_eq!(
            complaint_id("hotline", "A1"),
            complaint_id("hotline", " A1 ")
        );
        assert_ne!(complaint_id("hotline", "A1"), complaint_id("board", "A1"));
        assert_eq!(complaint_id("hotline", "A1").len(), 32);
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
        assert_eq!(
            alert_id(AlertTrigger::HighFrequency, "p_1", d),
            alert_id(AlertTrigger::HighFrequency, "p_1", d)
        );
        assert_ne!(
            alert_id(AlertTrigger::HighFrequency, "p_1", d),
            alert_id(AlertTrigger::CrowdConcentration, "p_1", d)
        );
        assert_eq!("wanshitong".parse::<Channel>(), Ok(Channel::Wanshitong));
        assert!("fax".parse::<Channel>().is_err());
    }

    #[test]
    fn transition_kinds_keep_their_wire_names() {
        // Pinned: the alerts topic, the lake's alert_history and notifications carry these names.
        let pinned = [
            "raise",
            "assign",
            "feedback",
            "verify",
            "reject",
            "escalate",
            "reply_overdue",
            "reopen",
            "recur",
            "merge",
            "reroute",
        ];
        let serde_names: Vec<serde_json::Value> = TransitionKind::ALL
            .iter()
            .map(|k| serde_json::to_value(k).expect("serializes"))
            .collect();
        assert_eq!(serde_names, pinned.map(serde_json::Value::from));
        assert_eq!(TransitionKind::ALL.map(TransitionKind::as_str), pinned);
        for (k, name) in TransitionKind::ALL.iter().zip(pinned) {
            let back: TransitionKind = serde_json::from_value(name.into()).expect("reads back");
            assert_eq!(&back, k);
        }
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../schemas/alert-history.schema.json"))
                .expect("parses");
        let listed = schema["$defs"]["transition"]["properties"]["action"]["enum"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            listed, serde_names,
            "schemas/alert-history.schema.json lists the kinds"
        );
    }

    #[test]
    fn alert_json_and_history_columns_are_in_their_schemas() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../schemas/alert.schema.json")).expect("parses");
        let props = schema["properties"].as_object().expect("properties");
        let t = DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00").expect("time");
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
        let step = AlertTransition {
            seq: 1,
            at: t,
            actor: "system".into(),
            role: "system".into(),
            action: TransitionKind::Raise,
            from_level: None,
            to_level: AlertLevel::Yellow,
            from_status: AlertStatus::Raised,
            to_status: AlertStatus::Assigned,
            reason: "r".into(),
            action_id: Some("a1".into()),
        };
        let a = Alert {
            alert_id: "AL-1".into(),
            trigger: AlertTrigger::CrowdConcentration,
            level: AlertLevel::Red,
            subject: "s".into(),
            window_start: d,
            window_end: d,
            summary: "s".into(),
            domain: None,
            district: None,
            unit: "u".into(),
            deadline: d,
            complaint_ids: vec!["c".into()],
            complaint_count: 1,
            distinct_complainants: 1,
            key_terms: vec![],
            version: 1,
            raised_at: t,
            updated_at: t,
            merged_into: Some("AL-2".into()),
            lifecycle: AlertLifecycle {
                status: AlertStatus::Assigned,
                opened_at: Some(t),
                escalated_at: Some(t),
                reply_deadline: Some(d),
                closed_at: Some(t),
                feedback: Some("f".into()),
                feedback_at: Some(t),
                recurrence_of: Some("AL-0".into()),
                recurrent: true,
                recurrence: 1,
                source_alert_id: Some("AL-0".into()),
                new_complaint_ids: vec!["c".into()],
                document_no: Some("n".into()),
                document_path: Some("p".into()),
                revision: 3,
                history: vec![step],
            },
        };
        let v = serde_json::to_value(&a).expect("serializes");
        for k in v.as_object().expect("object").keys() {
            assert!(props.contains_key(k), "{k} is not in alert.schema.json");
        }
        assert_eq!(serde_json::from_value::<Alert>(v).expect("round trip"), a);
        let h: serde_json::Value =
            serde_json::from_str(include_str!("../schemas/alert-history.schema.json"))
                .expect("parses");
        let t = serde_json::to_value(&a.lifecycle.history[0]).expect("serializes");
        for k in t.as_object().expect("object").keys() {
            assert!(
                h["$defs"]["transition"]["properties"].get(k).is_some(),
                "{k}"
            );
        }
        for f in alert_history_schema().fields() {
            assert!(h["properties"].get(f.name()).is_some(), "{}", f.name());
        }
        assert_eq!(
            alerts_to_batch(std::slice::from_ref(&a))
                .expect("batch")
                .num_rows(),
            1
        );
        assert_eq!(alert_history_to_batch(&[a]).expect("batch").num_rows(), 1);
    }

    pub(crate) fn sample() -> Complaint {
        let t = DateTime::parse_from_rfc3339("2026-11-01T09:00:00+08:00").expect("time");
        Complaint {
            complainant: Some("p_00".into()),
            district: Some("镜湖区".into()),
            domain: "城市管理".into(),
            domain_confidence: 0.9,
            content_hash: "h".into(),
            ..Complaint::new("hotline", "RX1", t, "t", "b")
        }
    }
}
