//! Per-connector counters (received, sent, errors, dropped; records and bytes) and their
//! Prometheus text exposition, served at `/metrics` by the ingest process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// The counters of one connector. Every connector counts the same events (as Vector's do).
#[derive(Debug, Default)]
pub struct ConnectorMetrics {
    pub received_records: AtomicU64,
    pub received_bytes: AtomicU64,
    pub sent_records: AtomicU64,
    pub sent_bytes: AtomicU64,
    pub errors: AtomicU64,
    pub dropped_records: AtomicU64,
    pub dropped_bytes: AtomicU64,
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

impl ConnectorMetrics {
    /// Records read from the feed (before parsing), with their bytes.
    pub fn received(&self, records: usize, bytes: usize) {
        add(&self.received_records, records);
        add(&self.received_bytes, bytes);
    }
    /// Records committed to the raw topic.
    pub fn sent(&self, records: usize, bytes: usize) {
        add(&self.sent_records, records);
        add(&self.sent_bytes, bytes);
    }
    /// Records not forwarded to the raw topic (dead-lettered or collapsed duplicates).
    pub fn dropped(&self, records: usize, bytes: usize) {
        add(&self.dropped_records, records);
        add(&self.dropped_bytes, bytes);
    }
    /// A failed request, refused webhook or failed commit.
    pub fn error(&self) {
        add(&self.errors, 1);
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
        .or_default()
        .clone()
}

/// (metric name, help, the counter of a connector).
type Series = (
    &'static str,
    &'static str,
    fn(&ConnectorMetrics) -> &AtomicU64,
);

/// Prometheus text exposition (format 0.0.4) of every connector's counters.
pub fn render() -> String {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = String::new();
    let series: [Series; 7] = [
        (
            "duban_connector_received_records_total",
            "Records read from the feed.",
            |m| &m.received_records,
        ),
        (
            "duban_connector_received_bytes_total",
            "Bytes of records read from the feed.",
            |m| &m.received_bytes,
        ),
        (
            "duban_connector_sent_records_total",
            "Records committed to the raw topic.",
            |m| &m.sent_records,
        ),
        (
            "duban_connector_sent_bytes_total",
            "Bytes committed to the raw topic.",
            |m| &m.sent_bytes,
        ),
        (
            "duban_connector_errors_total",
            "Failed requests, refused webhooks and failed commits.",
            |m| &m.errors,
        ),
        (
            "duban_connector_dropped_records_total",
            "Records not forwarded: dead-lettered or collapsed duplicates.",
            |m| &m.dropped_records,
        ),
        (
            "duban_connector_dropped_bytes_total",
            "Bytes of records not forwarded.",
            |m| &m.dropped_bytes,
        ),
    ];
    for (name, help, get) in series {
        s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for (connector, m) in reg.iter() {
            s.push_str(&format!(
                "{name}{{connector=\"{connector}\"}} {}\n",
                ConnectorMetrics::get(get(m))
            ));
        }
    }
    s
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
