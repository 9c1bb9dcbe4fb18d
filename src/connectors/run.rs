//! The connectors' Kafka stage (`duban ingest`, and half of `duban run`): every enabled connector
//! writing to the raw topic, the Wanshitong receiver (and `/metrics`) included.

use anyhow::Result;
use std::sync::Arc;

use super::{ConnectorFiles, Mode, Output, Pollers, wanshitong};
use crate::bus::{Bus, KafkaBus};
use crate::config::Config;

/// Run the connectors against Kafka until an error (or until `stop` resolves).
pub async fn ingest_kafka(
    config: &Config,
    files: &ConnectorFiles,
    bus: Arc<KafkaBus>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let out = Output {
        bus: Bus::Kafka(bus.clone()),
        topics: bus.topics(),
    };
    let enabled = &config.connectors.enabled;
    // Every connector's transactional producer is initialised (fencing a previous process and
    // aborting its open transactions) before any connector reads its position back.
    // Both wait for the broker through an outage (told once per interval).
    let pollers =
        crate::ops::outage::retry("connectors", || Pollers::open(files, enabled, out.clone()))
            .await?;
    let receiver = if enabled.contains(&crate::record::Channel::Wanshitong) {
        Some(
            crate::ops::outage::retry("connector.wanshitong", || {
                wanshitong::start(&files.wanshitong, out.clone())
            })
            .await?,
        )
    } else {
        None
    };
    tokio::pin!(stop);
    let result = tokio::select! {
        // In follow mode the pollers end only with an error, or at once when there are none
        // (the receiver alone): then it is the receiver that runs until the stop.
        r = pollers.run(Mode::Follow) => match r {
            Ok(()) => {
                stop.as_mut().await;
                Ok(())
            }
            Err(e) => Err(e),
        },
        () = stop.as_mut() => Ok(()),
    };
    if let Some(r) = receiver {
        r.shutdown().await;
    }
    result
}
