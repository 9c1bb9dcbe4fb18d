//! Kafka mode: follow the compacted board topic `<prefix>.alerts` from its beginning (committed
//! records only) and keep the board's view of it. The lifecycle process is the board's one writer;
//! an action sent by the page is known applied when an alert arrives whose history holds its id.

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::BoardEvent;
use crate::bus::Topics;
use crate::config::Config;
use crate::lifecycle::api::View;
use crate::lifecycle::board::ActionResult;
use crate::record::Alert;

/// Apply one board record to the view; true when it changed the board.
pub(crate) fn apply_record(view: &mut View, a: Alert) -> bool {
    if let Some(old) = view.alerts.get(&a.alert_id)
        && (old.lifecycle.revision > a.lifecycle.revision || *old == a)
    {
        return false;
    }
    for t in &a.lifecycle.history {
        if let Some(id) = &t.action_id {
            view.results
                .entry(id.clone())
                .or_insert_with(|| ActionResult {
                    action_id: id.clone(),
                    alert_id: a.alert_id.clone(),
                    applied: true,
                    forbidden: false,
                    reason: String::new(),
                });
        }
    }
    view.alerts.insert(a.alert_id.clone(), a);
    true
}

/// A consumer that reads committed records only, for partitions assigned by hand (no group
/// rebalancing; its unique group id is never committed). `eof` asks for end-of-partition events.
fn follower_consumer(
    bootstrap: &str,
    prefix: &str,
    role: &str,
    eof: bool,
) -> Result<StreamConsumer> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("{prefix}.{role}-{}-{nanos:x}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", if eof { "true" } else { "false" })
        .create()?)
}

/// A consumer of every partition of `topic` from its beginning (committed records only).
pub(crate) fn topic_follower(bootstrap: &str, prefix: &str, topic: &str) -> Result<StreamConsumer> {
    let consumer = follower_consumer(bootstrap, prefix, "board", false)
        .with_context(|| format!("cannot create a Kafka consumer to follow {topic}"))?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .with_context(|| format!("cannot read the metadata of {topic}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in md
        .topics()
        .first()
        .map(|t| t.partitions())
        .unwrap_or_default()
    {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    if tpl.count() == 0 {
        anyhow::bail!("topic {topic} has no partitions");
    }
    consumer
        .assign(&tpl)
        .with_context(|| format!("cannot read {topic}"))?;
    Ok(consumer)
}

/// Follow the board topic in a task until `stop`. It lives through broker outages: errors are
/// told once per interval (`ops::outage`), the board is not ready meanwhile, and the consumer
/// resumes where it was. Ready once every partition has been read to its end.
pub(crate) fn start(
    cfg: &Config,
    topics: &Topics,
    view: Arc<RwLock<View>>,
    events: tokio::sync::broadcast::Sender<BoardEvent>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let topic = topics.alerts.clone();
    let consumer = follower_consumer(
        &cfg.kafka.bootstrap_servers,
        &cfg.kafka.topic_prefix,
        "board",
        true,
    )
    .context("board: cannot create the Kafka consumer")?;
    let health = crate::ops::Component::register("board");
    let mut outage = crate::ops::Outage::new("board", Some(health.clone()));
    Ok(tokio::spawn(async move {
        // The topic's partitions, waited for through an outage.
        let parts = loop {
            let md = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .with_context(|| format!("board: cannot read the metadata of {topic}"));
            let err = match md {
                Ok(md) => {
                    let parts: Vec<i32> = md
                        .topics()
                        .first()
                        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                        .unwrap_or_default();
                    if parts.is_empty() {
                        anyhow::bail!("board: topic {topic} has no partitions");
                    }
                    break parts;
                }
                Err(e) => e,
            };
            let delay = outage.failed(err)?;
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        };
        let mut tpl = TopicPartitionList::new();
        for p in &parts {
            tpl.add_partition_offset(&topic, *p, Offset::Beginning)?;
        }
        consumer
            .assign(&tpl)
            .with_context(|| format!("board: cannot read {topic}"))?;
        tracing::info!(target: "duban::web", %topic, "following the board topic");
        let mut at_end: std::collections::BTreeSet<i32> = Default::default();
        loop {
            let m = tokio::select! {
                m = consumer.recv() => m,
                _ = stop.wait_for(|s| *s) => return Ok(()),
                () = tokio::time::sleep(Duration::from_secs(1)), if outage.ongoing() => {
                    // Idle in an outage, no record comes to say it ended: ask the broker.
                    if crate::ops::outage::kafka_answers(&consumer) {
                        outage.ok();
                    }
                    continue;
                }
            };
            let m = match m {
                Ok(m) => m,
                Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                    outage.ok();
                    at_end.insert(p);
                    if at_end.len() >= parts.len() && !health.is_ready() {
                        health.ready();
                    }
                    continue;
                }
                Err(e) => {
                    // An error queued while the broker was away may come after it is back: only
                    // one the broker does not contradict is an outage.
                    if !crate::ops::outage::kafka_answers(&consumer) {
                        outage.failed(
                            anyhow::Error::new(e).context(format!("board: reading {topic}")),
                        )?;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            };
            outage.ok();
            let Some(payload) = m.payload() else { continue };
            let a = match serde_json::from_slice::<Alert>(payload) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(target: "duban::web", "{topic}/{}/{}: not a valid alert record, skipped: {e}", m.partition(), m.offset());
                    continue;
                }
            };
            let event = {
                let mut v = view.write().unwrap_or_else(|e| e.into_inner());
                let event = BoardEvent::of(&a, v.alerts.get(&a.alert_id));
                apply_record(&mut v, a).then_some(event)
            };
            if let Some(event) = event {
                let _ = events.send(event);
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(revision: u64, action_id: Option<&str>) -> Alert {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00").expect("t");
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("d");
        let mut a = Alert {
            alert_id: "AL-1".into(),
            trigger: crate::record::AlertTrigger::CrowdConcentration,
            level: crate::record::AlertLevel::Yellow,
            subject: "IS-1".into(),
            window_start: d,
            window_end: d,
            summary: String::new(),
            domain: None,
            district: None,
            unit: "U".into(),
            deadline: d,
            complaint_ids: vec![],
            complaint_count: 0,
            distinct_complainants: 0,
            key_terms: vec![],
            version: 1,
            raised_at: t,
            updated_at: t,
            merged_into: None,
            lifecycle: Default::default(),
        };
        a.lifecycle.revision = revision;
        if let Some(id) = action_id {
            a.lifecycle.history.push(crate::record::AlertTransition {
                seq: 1,
                at: t,
                actor: "x".into(),
                role: "supervisor".into(),
                action: crate::record::TransitionKind::Verify,
                from_level: None,
                to_level: crate::record::AlertLevel::Green,
                from_status: crate::record::AlertStatus::FeedbackReceived,
                to_status: crate::record::AlertStatus::Closed,
                reason: String::new(),
                action_id: Some(id.into()),
            });
        }
        a
    }

    #[test]
    fn board_records_apply_newest_first_and_mark_actions_applied() {
        let mut v = View::default();
        assert!(apply_record(&mut v, alert(2, Some("act-1"))));
        assert!(v.results["act-1"].applied);
        // An older revision (a replay of the compacted topic's history) never wins.
        assert!(!apply_record(&mut v, alert(1, None)));
        assert_eq!(v.alerts["AL-1"].lifecycle.revision, 2);
        // The same record again changes nothing (no event).
        assert!(!apply_record(&mut v, alert(2, Some("act-1"))));
        assert!(apply_record(&mut v, alert(3, None)));
    }
}
