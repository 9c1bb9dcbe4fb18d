//! Apache Kafka through rdkafka: topic creation, acknowledged sends, consumers.
//! Producers are idempotent with acks=all; a send returns only after the broker stored the record.

use anyhow::{Context, Result, anyhow};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::time::Duration;

use super::Topics;
use crate::config::KafkaConfig;
use crate::ops::outage::{Service, Transient};

pub struct KafkaBus {
    pub config: KafkaConfig,
    producer: FutureProducer,
}

impl KafkaBus {
    pub fn connect(config: &KafkaConfig) -> Result<KafkaBus> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000")
            .create()
            .with_context(|| {
                format!(
                    "cannot create Kafka producer for {}",
                    config.bootstrap_servers
                )
            })?;
        Ok(KafkaBus {
            config: config.clone(),
            producer,
        })
    }

    pub fn topics(&self) -> Topics {
        Topics::new(&self.config.topic_prefix)
    }

    /// Create duban's topics if missing: raw, complaints, dlq, alert-actions, the engine's
    /// repartition topics (delete policy), alerts, alerts-raised, alert-notifications, labels,
    /// issues and the engine's changelog (compacted).
    pub async fn ensure_topics(&self) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.config.bootstrap_servers)
            .create()
            .context("cannot create Kafka admin client")?;
        let t = self.topics();
        let rf = self.config.replication_factor;
        let parts = self.config.partitions;
        let new = [
            NewTopic::new(&t.raw, parts, TopicReplication::Fixed(rf)),
            NewTopic::new(&t.complaints, parts, TopicReplication::Fixed(rf)),
            NewTopic::new(&t.dlq, 1, TopicReplication::Fixed(rf)),
            NewTopic::new(&t.alerts, parts, TopicReplication::Fixed(rf))
                .set("cleanup.policy", "compact"),
            NewTopic::new(&t.issues, parts, TopicReplication::Fixed(rf))
                .set("cleanup.policy", "compact"),
            NewTopic::new(&t.repartition_block, parts, TopicReplication::Fixed(rf)),
            NewTopic::new(
                &t.repartition_complainant,
                parts,
                TopicReplication::Fixed(rf),
            ),
            NewTopic::new(&t.changelog, parts, TopicReplication::Fixed(rf))
                .set("cleanup.policy", "compact"),
            NewTopic::new(&t.alerts_raised, parts, TopicReplication::Fixed(rf))
                .set("cleanup.policy", "compact"),
            NewTopic::new(&t.alert_actions, parts, TopicReplication::Fixed(rf)),
            NewTopic::new(&t.alert_notifications, 1, TopicReplication::Fixed(rf))
                .set("cleanup.policy", "compact"),
            NewTopic::new(&t.labels, 1, TopicReplication::Fixed(rf))
                .set("cleanup.policy", "compact"),
        ];
        let opts =
            AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(30))));
        let results = admin
            .create_topics(&new, &opts)
            .await
            .with_context(|| format!("cannot reach Kafka at {}", self.config.bootstrap_servers))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(anyhow!("cannot create topic {name}: {code}")),
            }
        }
        Ok(())
    }

    /// Send and wait for every acknowledgement.
    pub async fn send_all(&self, topic: &str, records: &[(String, Vec<u8>)]) -> Result<()> {
        let sends = records.iter().map(|(k, v)| {
            self.producer.send(
                FutureRecord::to(topic)
                    .key(k.as_bytes())
                    .payload(v.as_slice()),
                Timeout::After(Duration::from_secs(60)),
            )
        });
        for r in futures::future::join_all(sends).await {
            r.map_err(|(e, _)| anyhow!("Kafka did not store a record on {topic}: {e}"))?;
        }
        Ok(())
    }

    /// A consumer in `group` that starts at the earliest offset and commits only when told.
    pub fn consumer(&self, group: &str) -> Result<StreamConsumer> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.config.bootstrap_servers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("session.timeout.ms", "10000")
            .create()
            .context("cannot create Kafka consumer")
    }
}

/// Read `topic` (one `partition`, or all of them) from the beginning to its end at the time of
/// the call, committed records only, handing each record's key and value to `each`. Transaction
/// markers and aborted records take offsets without being records, so reading ends at the
/// positions, not at a count. A topic created a moment ago is waited for (up to 120 s in all).
pub fn read_to_end(
    bootstrap: &str,
    topic: &str,
    partition: Option<i32>,
    mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::{Message, Offset, TopicPartitionList};
    use std::time::Instant;
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}.restore"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .with_context(|| format!("cannot create a consumer to read {topic}"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let retry = |e: &dyn std::fmt::Display| {
        tracing::debug!("waiting for {topic}: {e}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let parts: Vec<i32> = match partition {
        Some(p) => vec![p],
        None => loop {
            match c.fetch_metadata(Some(topic), Duration::from_secs(10)) {
                Ok(m)
                    if m.topics()
                        .first()
                        .is_some_and(|t| !t.partitions().is_empty()) =>
                {
                    break m.topics()[0].partitions().iter().map(|p| p.id()).collect();
                }
                Ok(_) if Instant::now() < deadline => retry(&"no partitions yet"),
                Err(e) if Instant::now() < deadline => retry(&e),
                Ok(_) => return Err(anyhow!("topic {topic} has no partitions")),
                Err(e) => return Err(e).with_context(|| format!("cannot read {topic}")),
            }
        },
    };
    let mut highs = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        // A topic just created may not have its leaders yet: retry until the deadline.
        let (_, high) = loop {
            match c.fetch_watermarks(topic, p, Duration::from_secs(10)) {
                Ok(w) => break w,
                Err(e) if Instant::now() < deadline => retry(&e),
                Err(e) => return Err(e).with_context(|| format!("cannot read {topic}/{p}")),
            }
        };
        if high > 0 {
            highs.push((p, high));
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    if highs.is_empty() {
        return Ok(());
    }
    c.assign(&tpl)?;
    loop {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => each(m.key().unwrap_or_default(), m.payload().unwrap_or_default())?,
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => return Err(e).with_context(|| format!("reading {topic}")),
        }
        let pos = c.position()?;
        let done = highs.iter().all(|(p, high)| {
            matches!(pos.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *high)
        });
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow::Error::new(Transient(
                Service::Kafka,
                format!("could not read {topic} to its end within 120 s"),
            )));
        }
    }
}
