//! The process's metrics recorder: the `metrics` facade's Prometheus exporter (no HTTP listener of
//! its own; [`super::server`] serves its text), installed on first use so that every metric any
//! part of duban records is kept, in the binary and in tests alike.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Bucket bounds (seconds) of the duration histograms: batch apply and commit, restore, SQL.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the Prometheus recorder as the global one (once; later calls are free). `None` when
/// another recorder was installed first (a program embedding duban with its own).
pub fn init() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(target: "duban::ops", "metrics recorder not installed: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition (format 0.0.4) of every metric recorded so far.
pub fn render() -> String {
    init().map(PrometheusHandle::render).unwrap_or_default()
}

/// Drain histogram samples into their buckets (the exporter's periodic upkeep).
pub fn upkeep() {
    if let Some(h) = init() {
        h.run_upkeep();
    }
}
