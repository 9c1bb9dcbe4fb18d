//! Where a connector's output goes: raw records, dead letters and the connector's new source
//! position, committed together — one Kafka transaction, or one append on the in-process bus.
//!
//! Delivery guarantee (Kafka): exactly once. Records and the position that covers them are
//! written in one transaction on a producer whose `transactional.id` is derived from (topic
//! prefix, connector name), so a restarted instance fences the old one and aborts its open
//! transaction. Positions are records keyed `<connector>` (or `<connector>/<sub key>`) on the
//! compacted `<prefix>.connect-offsets` topic, restored at start by reading it (read_committed).

use anyhow::{Context, Result, anyhow};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::metrics::{self, ConnectorMetrics};
use crate::bus::{Bus, MemoryBus, Topics};
use crate::record::{DeadLetter, RawEnvelope};

/// The restored positions of one connector: sub key ("" = the main position) → value.
pub type Positions = BTreeMap<String, Value>;

/// One unit of output: written all together or not at all.
#[derive(Debug, Default)]
pub struct Commit {
    pub records: Vec<RawEnvelope>,
    pub dead: Vec<DeadLetter>,
    /// (sub key, position); "" is the connector's main position. `Value::Null` deletes the key.
    pub positions: Vec<(String, Value)>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.dead.is_empty() && self.positions.is_empty()
    }
}

/// The offsets topic of a deployment.
pub fn offsets_topic(topics: &Topics) -> String {
    let prefix = topics.raw.strip_suffix(".raw").unwrap_or(&topics.raw);
    format!("{prefix}.connect-offsets")
}

/// Stable transactional id of a connector of a deployment.
pub fn transactional_id(topics: &Topics, connector: &str) -> String {
    let prefix = topics.raw.strip_suffix(".raw").unwrap_or(&topics.raw);
    format!("{prefix}.connect.{connector}")
}

fn offset_key(connector: &str, sub: &str) -> String {
    if sub.is_empty() {
        connector.to_string()
    } else {
        format!("{connector}/{sub}")
    }
}

/// The sub key of an offsets-topic key if it belongs to `connector`.
fn sub_key<'a>(connector: &str, key: &'a str) -> Option<&'a str> {
    if key == connector {
        return Some("");
    }
    key.strip_prefix(connector)?.strip_prefix('/')
}

/// Fold offsets-topic records (in order) into the positions of `connector`.
pub fn fold_positions<'a>(
    connector: &str,
    records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Positions {
    let mut out = Positions::new();
    for (k, v) in records {
        let Ok(k) = std::str::from_utf8(k) else {
            continue;
        };
        let Some(sub) = sub_key(connector, k) else {
            continue;
        };
        match serde_json::from_slice::<Value>(v) {
            Ok(Value::Null) | Err(_) => {
                out.remove(sub);
            }
            Ok(v) => {
                out.insert(sub.to_string(), v);
            }
        }
    }
    out
}

/// A connector's writer. One per running connector instance.
pub struct Sink {
    pub name: String,
    pub metrics: Arc<ConnectorMetrics>,
    kind: SinkKind,
}

enum SinkKind {
    Memory {
        bus: MemoryBus,
        topics: Topics,
    },
    Kafka {
        producer: crate::bus::txn::TxnProducer,
        topics: Topics,
        bootstrap: String,
        /// One transaction at a time on a transactional producer.
        lock: tokio::sync::Mutex<()>,
    },
}

impl Sink {
    /// Open the connector's writer. On Kafka: creates the offsets topic if missing and
    /// initialises the transactional producer (fencing and aborting a previous instance).
    pub async fn open(bus: &Bus, topics: &Topics, name: &str) -> Result<Sink> {
        let metrics = metrics::connector(name);
        let kind = match bus {
            Bus::Memory(m) => SinkKind::Memory {
                bus: m.clone(),
                topics: topics.clone(),
            },
            Bus::Kafka(k) => {
                let bootstrap = k.config.bootstrap_servers.clone();
                ensure_offsets_topic(&bootstrap, topics, k.config.replication_factor).await?;
                let producer = crate::bus::txn::producer(
                    &bootstrap,
                    &transactional_id(topics, name),
                    20_000,
                    name,
                )
                .await?;
                SinkKind::Kafka {
                    producer,
                    topics: topics.clone(),
                    bootstrap,
                    lock: tokio::sync::Mutex::new(()),
                }
            }
        };
        Ok(Sink {
            name: name.to_string(),
            metrics,
            kind,
        })
    }

    /// The connector's committed positions (read_committed, to the end of the offsets topic).
    pub async fn restore(&self) -> Result<Positions> {
        match &self.kind {
            SinkKind::Memory { bus, topics } => {
                let recs = bus.read(&offsets_topic(topics), 0);
                Ok(fold_positions(
                    &self.name,
                    recs.iter()
                        .map(|r| (r.key.as_deref().unwrap_or_default(), r.value.as_slice())),
                ))
            }
            SinkKind::Kafka {
                topics, bootstrap, ..
            } => {
                let (name, topic, bootstrap) =
                    (self.name.clone(), offsets_topic(topics), bootstrap.clone());
                tokio::task::spawn_blocking(move || read_positions(&bootstrap, &topic, &name))
                    .await
                    .context("restoring positions panicked")?
            }
        }
    }

    /// Write records, dead letters and positions atomically; returns once committed.
    pub async fn commit(&self, c: Commit) -> Result<()> {
        if c.is_empty() {
            return Ok(());
        }
        let raw: Vec<(String, Vec<u8>)> = c
            .records
            .iter()
            .map(|e| Ok((e.key(), serde_json::to_vec(e)?)))
            .collect::<Result<_>>()?;
        let dead: Vec<(String, Vec<u8>)> = c
            .dead
            .iter()
            .map(|d| Ok((d.origin.clone(), serde_json::to_vec(d)?)))
            .collect::<Result<_>>()?;
        let pos: Vec<(String, Vec<u8>)> = c
            .positions
            .iter()
            .map(|(k, v)| Ok((offset_key(&self.name, k), serde_json::to_vec(v)?)))
            .collect::<Result<_>>()?;
        let sent_bytes: usize = raw.iter().map(|(_, v)| v.len()).sum();
        let dropped_bytes: usize = c.dead.iter().map(|d| d.original().len()).sum();
        match &self.kind {
            SinkKind::Memory { bus, topics } => {
                let offsets = offsets_topic(topics);
                for (topic, recs) in [(&topics.raw, &raw), (&topics.dlq, &dead), (&offsets, &pos)] {
                    for (k, v) in recs {
                        bus.send(topic, Some(k.as_bytes()), v);
                    }
                }
            }
            SinkKind::Kafka {
                producer,
                topics,
                lock,
                ..
            } => {
                let _one_at_a_time = lock.lock().await;
                let offsets = offsets_topic(topics);
                let records = [(&topics.raw, &raw), (&topics.dlq, &dead), (&offsets, &pos)]
                    .into_iter()
                    .flat_map(|(topic, recs)| {
                        recs.iter()
                            .map(move |(k, v)| (topic.as_str(), None, k.as_bytes(), v.as_slice()))
                    })
                    .collect();
                let r = crate::bus::txn::transact(producer, records, None).await;
                if let Err(e) = r {
                    self.metrics.error();
                    return Err(e.context(format!("{}: transaction aborted", self.name)));
                }
            }
        }
        self.metrics.sent(raw.len(), sent_bytes);
        self.metrics.dropped(c.dead.len(), dropped_bytes);
        tracing::info!(
            target: "duban::connectors",
            connector = %self.name,
            sent = raw.len(),
            sent_bytes,
            dead_lettered = c.dead.len(),
            positions = pos.len(),
            "committed"
        );
        Ok(())
    }
}

async fn ensure_offsets_topic(bootstrap: &str, topics: &Topics, rf: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("cannot create Kafka admin client")?;
    let name = offsets_topic(topics);
    let new =
        [NewTopic::new(&name, 1, TopicReplication::Fixed(rf)).set("cleanup.policy", "compact")];
    let opts = AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(30))));
    for r in admin
        .create_topics(&new, &opts)
        .await
        .with_context(|| format!("cannot reach Kafka at {bootstrap}"))?
    {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((n, code)) => return Err(anyhow!("cannot create topic {n}: {code}")),
        }
    }
    Ok(())
}

/// Read the offsets topic from the beginning to its current end, committed records only.
fn read_positions(bootstrap: &str, topic: &str, connector: &str) -> Result<Positions> {
    let mut recs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    crate::bus::kafka::read_to_end(bootstrap, topic, Some(0), |k, v| {
        recs.push((k.to_vec(), v.to_vec()));
        Ok(())
    })
    .with_context(|| format!("{connector}: reading its positions"))?;
    Ok(fold_positions(
        connector,
        recs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_fold_by_connector_and_tombstones() {
        let recs: Vec<(&[u8], &[u8])> = vec![
            (b"board", br#"{"seen":["1"]}"#),
            (b"boardx", br#"{"other":1}"#),
            (b"wanshitong/W1", br#"{"d":1}"#),
            (b"board", br#"{"seen":["1","2"]}"#),
            (b"board/tmp", b"1"),
            (b"board/tmp", b"null"),
        ];
        let p = fold_positions("board", recs.iter().copied());
        assert_eq!(p.len(), 1);
        assert_eq!(p[""], serde_json::json!({"seen": ["1", "2"]}));
        let w = fold_positions("wanshitong", recs.iter().copied());
        assert_eq!(w.keys().collect::<Vec<_>>(), ["W1"]);
        let t = Topics::new("x.y");
        assert_eq!(offsets_topic(&t), "x.y.connect-offsets");
        assert_eq!(transactional_id(&t, "board"), "x.y.connect.board");
    }
}
