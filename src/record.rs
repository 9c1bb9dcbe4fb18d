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
        DeadLetter {
            stage: stage.to_string(),
            channel: channel.map(str::to_string),
            reason,
            origin: origin.to_string(),
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
}

impl Complaint {
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
    Yellow,
    Red,
    Green,
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

/// Alerts (latest state) → Arrow batch for the lake table `alerts`.
pub fn alerts_to_batch(rows: &[Alert]) -> datafusion::error::Result<RecordBatch> {
    use datafusion::arrow::array::{Date32Array, UInt64Array};
    let date = |d: chrono::NaiveDate| {
        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
    };
    let schema = alert_schema();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.alert_id.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.trigger.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(
            |a| match a.level {
                AlertLevel::Yellow => "yellow",
                AlertLevel::Red => "red",
                AlertLevel::Green => "green",
            },
        ))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.subject.as_str()),
        )),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|a| date(a.window_start)),
        )),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|a| date(a.window_end)),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.summary.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|a| a.domain.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|a| a.district.as_deref()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.unit.as_str()),
        )),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|a| date(a.deadline)),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.complaint_ids.join(",")),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|a| a.complaint_count),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|a| a.distinct_complainants),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|a| a.key_terms.join(",")),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|a| a.version),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|a| a.raised_at.timestamp_micros()),
            )
            .with_timezone(TZ),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|a| a.updated_at.timestamp_micros()),
            )
            .with_timezone(TZ),
        ),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|a| a.merged_into.as_deref()),
        )),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// Arrow schema of the lake table `alerts` (list fields flattened to comma-joined strings).
pub fn alert_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
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
        Field::new("complaint_count", DataType::UInt64, false),
        Field::new("distinct_complainants", DataType::UInt64, false),
        s("key_terms", false),
        Field::new("version", DataType::UInt64, false),
        Field::new("raised_at", ts_type(), false),
        Field::new("updated_at", ts_type(), false),
        s("merged_into", true),
    ]))
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
        assert_eq!(complaint_id("hotline", "A1"), complaint_id("hotline", "A1"));
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

    pub(crate) fn sample() -> Complaint {
        let t = DateTime::parse_from_rfc3339("2026-11-01T09:00:00+08:00").expect("time");
        Complaint {
            complaint_id: complaint_id("hotline", "RX1"),
            channel: "hotline".into(),
            source_id: "RX1".into(),
            received_at: t,
            fetched_at: t,
            title: "t".into(),
            body: "b".into(),
            complainant: Some("p_00".into()),
            phone_masked: None,
            district: Some("镜湖区".into()),
            address: None,
            domain: "城市管理".into(),
            domain_confidence: 0.9,
            source_category: None,
            source_status: None,
            likes: None,
            content_hash: "h".into(),
            duplicate_of: None,
            duplicate_group: complaint_id("hotline", "RX1"),
            place: None,
            issue_id: None,
            flags: String::new(),
            source_version: None,
        }
    }
}
