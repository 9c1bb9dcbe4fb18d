//! Decode raw envelopes into typed rows: each channel's payload fields mapped to one shape.
//! A record that is not JSON, names an unknown channel, misses a required field or is dated
//! outside its time bounds becomes a DeadLetter whose reason names the record and the field,
//! never a field's value.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use serde_json::Value;

use crate::engine::normalize::parse_time;
use crate::record::{Channel, DeadLetter, RawEnvelope, local_offset};
use crate::redact;

/// When a record may be dated: not after the time it was fetched plus a tolerance (a record of
/// year 9999 would move its partition's record clock past every later one and evict the state),
/// not before a floor. `[engine] max_future_secs`, `oldest_record_date`. "Now" is the clock of
/// `[lifecycle] clock_file` / `DUBAN_CLOCK_FILE` when one is set (drills run on their own time),
/// else the system's.
#[derive(Debug, Clone)]
pub struct TimeBounds {
    pub max_future: chrono::Duration,
    pub oldest: DateTime<FixedOffset>,
    pub clock: crate::lifecycle::clock::Clock,
}

impl TimeBounds {
    pub fn new(max_future_secs: u64, oldest: NaiveDate) -> TimeBounds {
        let midnight = oldest.and_time(chrono::NaiveTime::MIN);
        TimeBounds {
            max_future: i64::try_from(max_future_secs)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .unwrap_or(chrono::Duration::MAX),
            oldest: local_offset()
                .from_local_datetime(&midnight)
                .single()
                .unwrap_or_else(|| midnight.and_utc().fixed_offset()),
            clock: crate::lifecycle::clock::Clock::System,
        }
    }

    /// The decoding time: the clock's (the system's when a clock file cannot be read, logged).
    pub fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().unwrap_or_else(|e| {
            tracing::warn!(target: "duban::engine", "{e:#}; dating records against the system clock");
            chrono::Utc::now().with_timezone(&local_offset())
        })
    }

    pub fn of(cfg: &crate::config::Config) -> TimeBounds {
        TimeBounds {
            clock: crate::lifecycle::clock::Clock::new(cfg.lifecycle.clock_file()),
            ..TimeBounds::new(cfg.engine.max_future_secs, cfg.engine.oldest_record_date)
        }
    }

    /// Why `t` is out of bounds for a record fetched at `fetched` and decoded at `now`, if it is.
    /// The fetch time counts only up to `now`, so an envelope dated ahead cannot widen the bound.
    fn check(
        &self,
        t: DateTime<FixedOffset>,
        fetched: DateTime<FixedOffset>,
        now: DateTime<FixedOffset>,
    ) -> Option<String> {
        let fetched = fetched.min(now);
        // Past the calendar's end the bound is no bound.
        let after = fetched
            .checked_add_signed(self.max_future)
            .is_some_and(|latest| t > latest);
        if after {
            Some(format!(
                "dated {} after it was fetched (at {}), more than the {} s allowed",
                human(t - fetched),
                fetched.to_rfc3339(),
                self.max_future.num_seconds()
            ))
        } else if t < self.oldest {
            Some(format!(
                "dated before {}, the oldest date accepted",
                self.oldest.date_naive()
            ))
        } else {
            None
        }
    }
}

impl Default for TimeBounds {
    fn default() -> Self {
        let c = crate::config::EngineConfig::default();
        TimeBounds::new(c.max_future_secs, c.oldest_record_date)
    }
}

/// A duration as days, hours or seconds.
fn human(d: chrono::Duration) -> String {
    if d.num_days() >= 2 {
        format!("{} days", d.num_days())
    } else if d.num_hours() >= 2 {
        format!("{} hours", d.num_hours())
    } else {
        format!("{} s", d.num_seconds())
    }
}

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

/// Decode one raw record (`now`: the decoding time, see [`TimeBounds`]); the error is one line
/// naming the record and the field.
pub fn decode(
    input: &RawInput,
    bounds: &TimeBounds,
    now: DateTime<FixedOffset>,
) -> Result<DecodedRow, (Option<String>, String)> {
    let env: RawEnvelope = serde_json::from_slice(&input.value).map_err(|e| {
        (
            None,
            format!(
                "raw record at {}: not a raw envelope: {}",
                input.origin,
                redact::json_error(&e)
            ),
        )
    })?;
    let ch = env.channel.as_str().to_string();
    let fail = |msg: String| {
        (
            Some(ch.clone()),
            format!(
                "{} record {} at {}: {msg}",
                ch,
                redact::name(&env.source_id),
                input.origin
            ),
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
    let received_at = parse_time(&time_text).ok_or_else(|| {
        fail(format!(
            "field {}: not a time in a known form ({} characters)",
            m.time[0],
            time_text.chars().count()
        ))
    })?;
    if let Some(why) = bounds.check(received_at, env.fetched_at, now) {
        return Err(fail(format!("field {}: {why}", m.time[0])));
    }
    let body = text(p, m.body).ok_or_else(|| fail(format!("missing field {}", m.body[0])))?;
    let replied_at = match text(p, m.replied_at) {
        None => None,
        Some(t) => Some(parse_time(&t).ok_or_else(|| {
            fail(format!(
                "field {}: not a time in a known form ({} characters)",
                m.replied_at[0],
                t.chars().count()
            ))
        })?),
    };
    let likes = match get(p, m.likes) {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| fail(format!("field {}: not an integer", m.likes[0])))?,
        ),
    };
    Ok(DecodedRow {
        channel: ch.clone(),
        source_id: env.source_id.trim().to_string(),
        version: env.version.clone(),
        received_at: Some(received_at),
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
pub fn decode_all(inputs: &[RawInput], bounds: &TimeBounds) -> (Vec<DecodedRow>, Vec<DeadLetter>) {
    let now = bounds.now();
    let mut rows = Vec::with_capacity(inputs.len());
    let mut dead = Vec::new();
    for i in inputs {
        match decode(i, bounds, now) {
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

    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-02T00:00:00+08:00").expect("now")
    }

    fn one(v: Value) -> Result<DecodedRow, (Option<String>, String)> {
        decode(&raw(v), &TimeBounds::default(), now())
    }

    fn raw(v: Value) -> RawInput {
        RawInput {
            key: None,
            value: serde_json::to_vec(&v).expect("json"),
            origin: "t/0/1".into(),
        }
    }

    #[test]
    fn decodes_each_channel_shape() {
        let r = one(json!({"channel":"wanshitong","source_id":"W1","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"submitted_at":"2026-11-01T09:00:00+08:00","user":{"uid":"u9","name":"李四","mobile":"13900001111"},"title":"t","content":"内容","region":"镜湖区"}}))
        .expect("decodes");
        assert_eq!(r.phone.as_deref(), Some("13900001111"));
        assert_eq!(r.user_id.as_deref(), Some("u9"));
        assert_eq!(r.district.as_deref(), Some("镜湖区"));
        let r = one(json!({"channel":"board","source_id":"B1","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"created_at":"2026/11/1 09:00:00","title":"t","content":"c","likes":"7"}}))
        .expect("decodes");
        assert_eq!(r.likes, Some(7));
    }

    #[test]
    fn bad_records_name_what_is_wrong() {
        let (rows, dead) = decode_all(
            &[
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
            ],
            &TimeBounds::default(),
        );
        assert!(rows.is_empty());
        assert_eq!(dead.len(), 4);
        assert!(dead[0].reason.contains("duban.raw/0/5") && dead[0].original() == b"not json");
        assert!(
            dead[1].reason.contains("RX1") && dead[1].reason.contains("call_time"),
            "{}",
            dead[1].reason
        );
        // The field is named, its value is not repeated.
        assert!(
            dead[2].reason.contains("field call_time: not a time")
                && !dead[2].reason.contains("soon"),
            "{}",
            dead[2].reason
        );
        assert!(dead[3].reason.contains("fax"), "{}", dead[3].reason);
    }

    #[test]
    fn replies_and_profile_names_decode_on_every_channel() {
        let r = one(json!({"channel":"board","source_id":"9","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"received_at":"2026-11-01T09:00:00+08:00","content":"c","name":"陈***","district":"镜湖区",
                "reply":"已转交","reply_unit":"镜湖区城管局","replied_at":"2026-11-03T09:00:00+08:00","handling_unit":"市城管局"}}))
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
        let r = one(json!({"channel":"portal","source_id":"L1","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"time":"2026-11-01 09:00:00","content":"c","unit":"区住建局","reply":""}}))
        .expect("decodes");
        assert_eq!(
            (r.handling_unit.as_deref(), r.reply.as_deref()),
            (Some("区住建局"), None)
        );
        let (_, dead) = decode_all(
            &[raw(
                json!({"channel":"board","source_id":"8","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"created_at":"2026-11-01 09:00:00","content":"c","reply_at":"later"}}),
            )],
            &TimeBounds::default(),
        );
        assert!(
            dead[0].reason.contains("field reply_at: not a time")
                && !dead[0].reason.contains("later"),
            "{}",
            dead[0].reason
        );
    }

    #[test]
    fn records_dated_far_ahead_of_their_fetch_or_before_the_floor_are_dead_letters() {
        let rec = |time: &str, fetched: &str| {
            json!({"channel":"hotline","source_id":"T1","fetched_at":fetched,"position":{},
                "payload":{"content":"x","call_time":time}})
        };
        let fetched = "2026-11-01T10:00:00+08:00";
        assert!(one(rec("2026-11-01 09:00:00", fetched)).is_ok());
        // Within a day of the fetch: a feed's clock or time zone may be off.
        assert!(one(rec("2026-11-02 09:00:00", fetched)).is_ok());
        let (_, why) = one(rec("9999-12-31 23:59:59", fetched)).expect_err("year 9999");
        assert!(
            why.contains("field call_time: dated 29") && why.contains("86400 s allowed"),
            "{why}"
        );
        let (_, why) = one(rec("1970-01-01 08:00:00", fetched)).expect_err("before the floor");
        assert!(why.contains("dated before 2000-01-01"), "{why}");
        // An envelope that claims a later fetch than now cannot widen the bound.
        let (_, why) = one(rec("9999-01-01", "9999-01-01T00:00:00+08:00")).expect_err("forged");
        assert!(why.contains("after it was fetched"), "{why}");
        // Configurable: no tolerance at all.
        let strict = TimeBounds::new(0, NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"));
        let r = decode(&raw(rec("2026-11-01 10:00:01", fetched)), &strict, now());
        assert!(r.is_err());
    }

    #[test]
    fn a_clock_file_is_the_decoding_time() {
        let dir = std::env::temp_dir().join(format!("duban-decode-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("clock");
        let drill = DateTime::parse_from_rfc3339("2099-06-01T09:00:00+08:00").expect("time");
        crate::lifecycle::clock::Clock::set(&file, drill).expect("clock file");
        let bounds = TimeBounds {
            clock: crate::lifecycle::clock::Clock::new(Some(file)),
            ..TimeBounds::default()
        };
        assert_eq!(bounds.now(), drill);
        // A record of the drill's day, fetched then, is in bounds on the drill's clock only.
        let input = raw(
            json!({"channel":"hotline","source_id":"C1","fetched_at":"2099-06-01T08:00:00+08:00","position":{},
            "payload":{"content":"x","call_time":"2099-06-01 07:00:00"}}),
        );
        let (rows, dead) = decode_all(std::slice::from_ref(&input), &bounds);
        assert_eq!((rows.len(), dead.len()), (1, 0), "{dead:?}");
        let (rows, dead) = decode_all(std::slice::from_ref(&input), &TimeBounds::default());
        assert_eq!((rows.len(), dead.len()), (0, 1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reasons_never_repeat_values_or_break_lines() {
        let (_, why) = one(json!({"channel":"board","source_id":"B\nINFO forged line","fetched_at":"2026-11-01T10:00:00+08:00","position":{},
            "payload":{"created_at":"2026-11-01 09:00:00","content":"c","likes":"13812345678x"}}))
        .expect_err("likes");
        assert!(!why.contains('\n') && why.contains("B\\nINFO"), "{why}");
        assert!(
            why.contains("field likes: not an integer") && !why.contains("1381234"),
            "{why}"
        );
        // serde's message would quote the wrong value: only its kind and place are kept.
        let bad = br#"{"channel":"hotline","source_id":13812345678,"fetched_at":"x","position":{},"payload":{}}"#;
        let input = RawInput {
            key: None,
            value: bad.to_vec(),
            origin: "t/0/9".into(),
        };
        let (_, why) = decode(&input, &TimeBounds::default(), now()).expect_err("not an envelope");
        assert!(
            why.contains("not a raw envelope") && !why.contains("1381234"),
            "{why}"
        );
    }

    use proptest::prelude::*;

    /// Every field name a channel's mapping reads.
    const FIELDS: [&str; 26] = [
        "call_time",
        "updated_at",
        "title",
        "content",
        "caller",
        "phone",
        "district",
        "address",
        "category",
        "status",
        "created_at",
        "user",
        "user_id",
        "area",
        "domain",
        "date",
        "likes",
        "location",
        "region",
        "submitted_at",
        "time",
        "writer",
        "order_no",
        "id",
        "name",
        "body",
    ];

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            "\\PC{0,40}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            Just(Value::Null),
            Just(json!([1, "x"])),
            Just(json!({"x": 1})),
            // Times near the bounds and past the calendar's ends.
            prop_oneof![
                Just("9999-12-31 23:59:59"),
                Just("0000-01-01"),
                Just("-262143-01-01"),
                Just("1970-01-01 08:00:00"),
                Just("99999999999999"),
                Just("-99999999999"),
                Just("2026-02-30 25:61:61"),
                Just("２０２６－１１－０１")
            ]
            .prop_map(Value::from),
        ]
    }

    // Hardening (issue 21, fuzzing): no input makes decode panic or write a reason over two lines.
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn any_bytes_decode_or_fail_on_one_line(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let input = RawInput { key: None, value: bytes, origin: "t/0/1".into() };
            if let Err((_, why)) = decode(&input, &TimeBounds::default(), now()) {
                prop_assert!(!why.contains('\n') && !why.is_empty());
            }
        }

        #[test]
        fn any_envelope_decodes_or_fails_on_one_line(
            channel in prop_oneof![Just("hotline"), Just("board"), Just("portal"), Just("wanshitong"), Just("fax")],
            source_id in "\\PC{0,20}",
            fetched in prop_oneof![Just("2026-11-01T10:00:00+08:00"), Just("9999-12-31T23:59:59+14:00"), Just("0001-01-01T00:00:00-12:00")],
            fields in proptest::collection::vec((0..FIELDS.len(), value()), 0..12),
        ) {
            let payload: serde_json::Map<String, Value> =
                fields.into_iter().map(|(i, v)| (FIELDS[i].to_string(), v)).collect();
            let input = raw(json!({"channel": channel, "source_id": source_id, "fetched_at": fetched,
                "position": {}, "payload": payload}));
            let now = now();
            match decode(&input, &TimeBounds::default(), now) {
                Ok(row) => prop_assert!(row.received_at.is_none_or(|t| t <= now + chrono::Duration::days(1))),
                Err((_, why)) => prop_assert!(!why.contains('\n') && !why.is_empty()),
            }
        }

        #[test]
        fn any_text_parses_as_a_time_or_not(s in "\\PC{0,40}", n in any::<i64>()) {
            let _ = crate::engine::normalize::parse_time(&s);
            let _ = crate::engine::normalize::parse_time(&n.to_string());
        }
    }
}
