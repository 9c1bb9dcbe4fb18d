//! Per-connector counters (received, sent, errors, dropped; records and bytes) and their
//! Prometheus text exposition, served at `/metrics` by the ingest process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

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
    pub received: Flow,
    pub sent: Flow,
    pub dropped: Flow,
    pub errors: AtomicU64,
}

impl ConnectorMetrics {
    /// Records read from the feed (before parsing), with their bytes.
    pub fn received(&self, records: usize, bytes: usize) {
        self.received.add(records, bytes);
    }
    /// Records committed to the raw topic.
    pub fn sent(&self, records: usize, bytes: usize) {
        self.sent.add(records, bytes);
    }
    /// Records not forwarded to the raw topic (dead-lettered or collapsed duplicates).
    pub fn dropped(&self, records: usize, bytes: usize) {
        self.dropped.add(records, bytes);
    }
    /// A failed request, refused webhook or failed commit.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
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

type FlowOf = fn(&ConnectorMetrics) -> &Flow;

/// Prometheus text exposition (format 0.0.4) of every connector's counters.
pub fn render() -> String {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = String::new();
    let mut series = |name: &str, help: &str, get: &dyn Fn(&ConnectorMetrics) -> &AtomicU64| {
        s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for (connector, m) in reg.iter() {
            s.push_str(&format!(
                "{name}{{connector=\"{connector}\"}} {}\n",
                ConnectorMetrics::get(get(m))
            ));
        }
    };
    let flows: [(&str, &str, FlowOf); 3] = [
        ("received", "read from the feed", |m| &m.received),
        ("sent", "committed to the raw topic", |m| &m.sent),
        (
            "dropped",
            "not forwarded: dead-lettered or collapsed duplicates",
            |m| &m.dropped,
        ),
    ];
    for (event, what, flow) in flows {
        series(
            &format!("duban_connector_{event}_records_total"),
            &format!("Records {what}."),
            &|m| &flow(m).records,
        );
        series(
            &format!("duban_connector_{event}_bytes_total"),
            &format!("Bytes of records {what}."),
            &|m| &flow(m).bytes,
        );
    }
    series(
        "duban_connector_errors_total",
        "Failed requests, refused webhooks and failed commits.",
        &|m| &m.errors,
    );
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
