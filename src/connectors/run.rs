//! The connectors' Kafka stage (`duban ingest`, and half of `duban run`): every enabled connector
//! writing to the raw topic, the Wanshitong receiver included.

use anyhow::Result;
use std::sync::Arc;

use super::{ConnectorFiles, Mode, Output, run_pollers, wanshitong};
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
    let receiver = if enabled.contains(&crate::record::Channel::Wanshitong) {
        Some(wanshitong::start(&files.wanshitong, out.clone()).await?)
    } else {
        None
    };
    let result = tokio::select! {
        r = run_pollers(files, enabled, out, Mode::Follow) => r,
        () = stop => Ok(()),
    };
    if let Some(r) = receiver {
        r.shutdown().await;
    }
    result
}
