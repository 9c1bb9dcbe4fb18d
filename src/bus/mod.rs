//! The bus stages talk over: Apache Kafka in production, an in-process bus for `duban demo` and
//! unit tests. Both take keyed records on named topics; a send returns once the record is stored.

pub mod kafka;
pub mod memory;
pub mod txn;

use anyhow::Result;
use std::sync::Arc;

pub use kafka::KafkaBus;
pub use memory::{BusRecord, MemoryBus};

/// The topic names of one deployment (`<prefix>.raw` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub raw: String,
    pub complaints: String,
    pub alerts: String,
    pub dlq: String,
    /// Latest summary of each issue (compacted), written by the engine.
    pub issues: String,
    /// Normalized complaints re-keyed by issue block (the engine's internal topics).
    pub repartition_block: String,
    /// Complainant events re-keyed by complainant.
    pub repartition_complainant: String,
    /// The engine's state: per state partition, the records its state applied and checkpoints.
    pub changelog: String,
    /// Alerts as the engine raises and updates them (compacted); the lifecycle reads them and is
    /// the one writer of the board, `alerts`.
    pub alerts_raised: String,
    /// Bureau and unit actions on alerts.
    pub alert_actions: String,
    /// The lifecycle's notification log (compacted, by notification id).
    pub alert_notifications: String,
    /// Supervisors' domain corrections (compacted, by `complaint:<id>` / `issue:<id>`).
    pub labels: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Topics {
        Topics {
            raw: format!("{prefix}.raw"),
            complaints: format!("{prefix}.complaints"),
            alerts: format!("{prefix}.alerts"),
            dlq: format!("{prefix}.dlq"),
            issues: format!("{prefix}.issues"),
            repartition_block: format!("{prefix}.repartition-block"),
            repartition_complainant: format!("{prefix}.repartition-complainant"),
            changelog: format!("{prefix}.engine-changelog"),
            alerts_raised: format!("{prefix}.alerts-raised"),
            alert_actions: format!("{prefix}.alert-actions"),
            alert_notifications: format!("{prefix}.alert-notifications"),
            labels: format!("{prefix}.labels"),
        }
    }
}

/// A bus to send records to. Cloning shares the connection.
#[derive(Clone)]
pub enum Bus {
    Memory(MemoryBus),
    Kafka(Arc<KafkaBus>),
}

impl Bus {
    /// Send records to `topic` and wait until every one is stored (acknowledged by the broker).
    pub async fn send_all(&self, topic: &str, records: &[(String, Vec<u8>)]) -> Result<()> {
        match self {
            Bus::Memory(m) => {
                for (k, v) in records {
                    m.send(topic, Some(k.as_bytes()), v);
                }
                Ok(())
            }
            Bus::Kafka(k) => k.send_all(topic, records).await,
        }
    }

    pub async fn send(&self, topic: &str, key: &str, value: Vec<u8>) -> Result<()> {
        self.send_all(topic, &[(key.to_string(), value)]).await
    }
}
