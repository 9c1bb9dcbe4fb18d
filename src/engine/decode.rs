//! Decode raw envelopes into typed rows: each channel's payload fields mapped to one shape.
//! A record that is not JSON, names an unknown channel or misses a required field becomes a DeadLetter.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::engine::normalize::parse_time;
use crate::record::{Channel, DeadLetter, RawEnvelope};

/// One raw record as it came off the bus.
#[derive(Debug, Clone)]
pub struct RawInput {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Where it came from: `topic/partition/offset` (Kafka) or `topic/offset` (in-process).
    pub origin: String,
}

/// A decoded record: the channel's fields mapped to common names, not yet normalized.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedRow {
    pub channel: String,
    pub source_id: String,
    /// The source's version of the record (hotline `updated_at`), when it has versions.
    pub version: Option<String>,
    pub received_at: Option<DateTime<FixedOffset>>,
    pub fetched_at: Option<DateTime<FixedOffset>>,
    pub title: Option<String>,
    pub body: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub user_id: Option<String>,
    pub district: Option<String>,
    pub address: Option<String>,
    pub category: Option<String>,
    pub status: Option<String>,
    pub likes: Option<i64>,
    pub handling_unit: Option<String>,
    pub reply: Option<String>,
    pub reply_unit: Option<String>,
    pub replied_at: Option<DateTime<FixedOffset>>,
}

/// Field mapping of one channel: common name → JSON paths in the payload, first present wins.
/// Every channel also reads the names a connector profile maps to (`received_at`, `name`,
/// `district`, `reply`, `replied_at`, ...; see connectors/profiles/README.md), after its own.
struct Mapping {
    time: &'static [&'static str],
    title: &'static [&'static str],
    body: &'static [&'static str],
    name: &'static [&'static str],
    phone: &'static [&'static str],
    user_id: &'static [&'static str],
    district: &'static [&'static str],
    address: &'static [&'static str],
    category: &'static [&'static str],
    status: &'static [&'static str],
    likes: &'static [&'static str],
    handling_unit: &'static [&'static str],
    reply: &'static [&'static str],
    reply_unit: &'static [&'static str],
    replied_at: &'static [&'static str],
}

fn mapping(channel: Channel) -> Mapping {
    match channel {
        Channel::Hotline => Mapping {
            time: &["call_time", "updated_at", "received_at"],
            title: &["title"],
            body: &["content"],
            name: &["caller", "name"],
            phone: &["phone"],
            user_id: &["user_id"],
            district: &["district"],
            address: &["address"],
            category: &["category"],
            status: &["status"],
            likes: &["likes"],
            handling_unit: &["handling_unit"],
            reply: &["reply"],
            reply_unit: &["reply_unit"],
            replied_at: &["replied_at", "reply_at"],
        },
        Channel::Board => Mapping {
            time: &["created_at", "received_at"],
            title: &["title"],
            body: &["content"],
            name: &["user", "name"],
            phone: &["phone"],
            user_id: &["user_id"],
            district: &["area", "district"],
            address: &["address"],
            category: &["domain", "category"],
            status: &["status"],
            likes: &["likes"],
            handling_unit: &["handling_unit"],
            reply: &["reply"],
            reply_unit: &["reply_unit"],
            replied_at: &["reply_at", "replied_at"],
        },
        Channel::Portal => Mapping {
            time: &["time", "date", "received_at"],
            title: &["title"],
            body: &["content"],
            name: &["writer", "name"],
            phone: &["phone"],
            user_id: &["user_id"],
            district: &["area", "district"],
            address: &["address"],
            category: &["category"],
            status: &["status"],
            likes: &["likes"],
            handling_unit: &["unit", "handling_unit"],
            reply: &["reply"],
            reply_unit: &["reply_unit"],
            replied_at: &["reply_at", "replied_at"],
        },
        Channel::Wanshitong => Mapping {
            time: &["submitted_at", "received_at"],
            title: &["title"],
            body: &["content"],
            name: &["user/name", "name"],
            phone: &["user/mobile", "phone"],
            user_id: &["user/uid", "user_id"],
            district: &["region", "district"],
            address: &["location", "address"],
            category: &["category"],
            status: &["status"],
            likes: &["likes"],
            handling_unit: &["handling_unit"],
            reply: &["reply"],
            reply_unit: &["reply_unit"],
            replied_at: &["replied_at"],
        },
    }
}

/// The first non-empty value at one of `paths` (`a/b`: field `b` of object field `a`).
fn get<'a>(payload: &'a Value, paths: &[&str]) -> Option<&'a Value> {
    paths
        .iter()
        .filter_map(|p| p.split('/').try_fold(payload, |v, key| v.get(key)))
        .find(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()))
}

fn text(payload: &Value, paths: &[&str]) -> Option<String> {
    get(payload, paths).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Decode one raw record; the error is one line naming the record and the field.
pub fn decode(input: &RawInput) -> Result<DecodedRow, (Option<String>, String)> {
    let env: RawEnvelope = serde_json::from_slice(&input.value).map_err(|e| {
        (
            None,
            format!("raw record at {}: not a raw envelope: {e}", input.origin),
        )
    })?;
    let ch = env.channel.as_str().to_string();
    let fail = |msg: String| {
        (
            Some(ch.clone()),
            format!("{} record {} at {}: {msg}", ch, env.source_id, input.origin),
        )
    };
    if env.source_id.trim().is_empty() {
        return Err(fail("field source_id is empty".into()));
    }
    if !env.payload.is_object() {
        return Err(fail("payload is not a JSON object".into()));
    }
    let m = mapping(env.channel);
    let p = &env.payload;
    let time_text = text(p, m.time).ok_or_else(|| fail(format!("missing field {}", m.time[0])))?;
    let received_at = Some(parse_time(&time_text).ok_or_else(|| {
        fail(format!(
            "field {}: cannot parse time `{time_text}`",
            m.time[0]
        ))
    })?);
    let body = text(p, m.body).ok_or_else(|| fail(format!("missing field {}", m.body[0])))?;
    let replied_at = match text(p, m.replied_at) {
        None => None,
        Some(t) => Some(
            parse_time(&t)
                .ok_or_else(|| fail(format!("field {}: cannot parse time", m.replied_at[0])))?,
        ),
    };
    let likes = match get(p, m.likes) {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| fail(format!("field {}: not an integer: {v}", m.likes[0])))?,
        ),
    };
    Ok(DecodedRow {
        channel: ch.clone(),
        source_id: env.source_id.trim().to_string(),
        version: env.version.clone(),
        received_at,
        fetched_at: Some(env.fetched_at),
        title: text(p, m.title),
        body,
        name: text(p, m.name),
        phone: text(p, m.phone),
        user_id: text(p, m.user_id),
        district: text(p, m.district),
        address: text(p, m.address),
        category: text(p, m.category),
        status: text(p, m.status),
        likes,
        handling_unit: text(p, m.handling_unit),
        reply: text(p, m.reply),
        reply_unit: text(p, m.reply_unit),
        replied_at,
    })
}

/// Decode a batch: rows that decode, and dead letters (with the original bytes) for those that don't.
pub fn decode_all(inputs: &[RawInput]) -> (Vec<DecodedRow>, Vec<DeadLetter>) {
    let mut rows = Vec::with_capacity(inputs.len());
    let mut dead = Vec::new();
    for i in inputs {
        match decode(i) {
            Ok(r) => rows.push(r),
            Err((ch, reason)) => {
                tracing::warn!(target: "duban::engine", origin = %i.origin, "{reason}");
                dead.push(DeadLetter::new(
                    "engine.decode",
                    ch.as_deref(),
                    reason,
                    &i.origin,
                    i.key.as_deref(),
                    &i.value,
                ))
            }
        }
    }
    (rows, dead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> RawInput {
        RawInput {
            key: None,
            value: serde_json::to_vec(&v).expect("json"),
            origin: "t/0/1".into(),
        }
    }

    #[test]
    fn decodes_each_channel_shape() {
        let r = decode(&raw(json!({"channel":"wanshitong","source_id":"W1","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"submitted_at":"2026-11-01T09:00:00+08:00","user":{"uid":"u9","name":"李四","mobile":"13900001111"},"title":"t","content":"内容","region":"镜湖区"}})))
        .expect("decodes");
        assert_eq!(r.phone.as_deref(), Some("13900001111"));
        assert_eq!(r.user_id.as_deref(), Some("u9"));
        assert_eq!(r.district.as_deref(), Some("镜湖区"));
        let r = decode(&raw(json!({"channel":"board","source_id":"B1","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"created_at":"2026/11/1 09:00:00","title":"t","content":"c","likes":"7"}})))
        .expect("decodes");
        assert_eq!(r.likes, Some(7));
    }

    #[test]
    fn bad_records_name_what_is_wrong() {
        let (rows, dead) = decode_all(&[
            RawInput {
                key: Some(b"k".to_vec()),
                value: b"not json".to_vec(),
                origin: "duban.raw/0/5".into(),
            },
            raw(
                json!({"channel":"hotline","source_id":"RX1","fetched_at":"2026-11-01T10:00:00+08:00","position":{},"payload":{"content":"x"}}),
            ),
            raw(
                json!({"channel":"hotline","source_id":"RX2","fetched_at":"2026-11-01T10:00:00+08:00","position":{},"payload":{"content":"x","call_time":"soon"}}),
            ),
            raw(
                json!({"channel":"fax","source_id":"F","fetched_at":"2026-11-01T10:00:00+08:00","position":{},"payload":{}}),
            ),
        ]);
        assert!(rows.is_empty());
        assert_eq!(dead.len(), 4);
        assert!(dead[0].reason.contains("duban.raw/0/5") && dead[0].original() == b"not json");
        assert!(
            dead[1].reason.contains("RX1") && dead[1].reason.contains("call_time"),
            "{}",
            dead[1].reason
        );
        assert!(
            dead[2].reason.contains("cannot parse time `soon`"),
            "{}",
            dead[2].reason
        );
        assert!(dead[3].reason.contains("fax"), "{}", dead[3].reason);
    }

    #[test]
    fn replies_and_profile_names_decode_on_every_channel() {
        let r = decode(&raw(json!({"channel":"board","source_id":"9","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"received_at":"2026-11-01T09:00:00+08:00","content":"c","name":"陈***","district":"镜湖区",
                "reply":"已转交","reply_unit":"镜湖区城管局","replied_at":"2026-11-03T09:00:00+08:00","handling_unit":"市城管局"}})))
        .expect("decodes");
        assert_eq!(r.name.as_deref(), Some("陈***"));
        assert_eq!(r.district.as_deref(), Some("镜湖区"));
        assert_eq!(r.reply.as_deref(), Some("已转交"));
        assert_eq!(r.reply_unit.as_deref(), Some("镜湖区城管局"));
        assert_eq!(r.handling_unit.as_deref(), Some("市城管局"));
        assert_eq!(
            r.replied_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-03T09:00:00+08:00")
        );
        // The simulator's portal letter: its unit handles it; no reply yet.
        let r = decode(&raw(json!({"channel":"portal","source_id":"L1","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"time":"2026-11-01 09:00:00","content":"c","unit":"区住建局","reply":""}})))
        .expect("decodes");
        assert_eq!(
            (r.handling_unit.as_deref(), r.reply.as_deref()),
            (Some("区住建局"), None)
        );
        let (_, dead) = decode_all(&[raw(
            json!({"channel":"board","source_id":"8","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"created_at":"2026-11-01 09:00:00","content":"c","reply_at":"later"}}),
        )]);
        assert!(
            dead[0].reason.contains("field reply_at: cannot parse time"),
            "{}",
            dead[0].reason
        );
    }
}
