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

    /// Create duban's topics if missing: raw, complaints, dlq, alert-actions (delete policy) and
    /// alerts, alerts-raised, alert-notifications (compacted).
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
            NewTopic::new(&t.alerts_raised, parts, TopicReplication::Fixed(rf))
                .set("cleanup.policy", "compact"),
            NewTopic::new(&t.alert_actions, parts, TopicReplication::Fixed(rf)),
            NewTopic::new(&t.alert_notifications, 1, TopicReplication::Fixed(rf))
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
