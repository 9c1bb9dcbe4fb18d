//! Per-connector counters (received, sent, errors, dropped; records and bytes): kept in the
//! connector for its own use and recorded through the `metrics` facade (`ops::events`), whose
//! Prometheus text every long-running process serves at `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use crate::ops::InternalEvent;
use crate::ops::events::{
    ConnectorErrorOccurred, ConnectorRecordsDropped, ConnectorRecordsReceived, ConnectorRecordsSent,
};

/// Records and their bytes that went one way (received, sent or dropped).
#[derive(Debug, Default)]
pub struct Flow {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
}

impl Flow {
    fn add(&self, records: usize, bytes: usize) {
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// The counters of one connector. Every connector counts the same events (as Vector's do).
#[derive(Debug, Default)]
pub struct ConnectorMetrics {
    /// The connector's name (the `connector` label).
    pub name: String,
    pub received: Flow,
    pub sent: Flow,
    pub dropped: Flow,
    pub errors: AtomicU64,
}

impl ConnectorMetrics {
    /// Records read from the feed (before parsing), with their bytes.
    pub fn received(&self, records: usize, bytes: usize) {
        self.received.add(records, bytes);
        ConnectorRecordsReceived {
            connector: &self.name,
            records,
            bytes,
        }
        .emit();
    }
    /// Records committed to the raw topic.
    pub fn sent(&self, records: usize, bytes: usize) {
        self.sent.add(records, bytes);
        ConnectorRecordsSent {
            connector: &self.name,
            records,
            bytes,
        }
        .emit();
    }
    /// Records not forwarded to the raw topic (dead-lettered or collapsed duplicates).
    pub fn dropped(&self, records: usize, bytes: usize) {
        self.dropped.add(records, bytes);
        ConnectorRecordsDropped {
            connector: &self.name,
            records,
            bytes,
        }
        .emit();
    }
    /// A failed request, refused webhook or failed commit.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        ConnectorErrorOccurred {
            connector: &self.name,
        }
        .emit();
    }
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

static REGISTRY: LazyLock<Mutex<BTreeMap<String, Arc<ConnectorMetrics>>>> =
    LazyLock::new(Default::default);

/// The counters of the connector `name` (created on first use; shared by later instances).
pub fn connector(name: &str) -> Arc<ConnectorMetrics> {
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_string())
        .or_insert_with(|| {
            Arc::new(ConnectorMetrics {
                name: name.to_string(),
                ..ConnectorMetrics::default()
            })
        })
        .clone()
}

/// Prometheus text exposition (format 0.0.4) of the process's metrics, the connectors' included.
pub fn render() -> String {
    crate::ops::recorder::render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_per_connector() {
        let m = connector("unit-test-metrics");
        m.received(3, 300);
        m.sent(2, 200);
        m.dropped(1, 100);
        m.error();
        let text = render();
        for event in ["received", "sent", "dropped"] {
            for unit in ["records", "bytes"] {
                let name = format!("duban_connector_{event}_{unit}_total");
                assert!(text.contains(&format!("# TYPE {name} counter\n")), "{name}");
            }
        }
        assert!(
            text.contains(
                "duban_connector_dropped_bytes_total{connector=\"unit-test-metrics\"} 100"
            )
        );
        assert!(text.contains("# TYPE duban_connector_sent_records_total counter"));
        assert!(
            text.contains("duban_connector_sent_records_total{connector=\"unit-test-metrics\"} 2")
        );
        assert!(
            text.contains(
                "duban_connector_received_bytes_total{connector=\"unit-test-metrics\"} 300"
            )
        );
        assert!(text.contains("duban_connector_errors_total{connector=\"unit-test-metrics\"} 1"));
    }
}
