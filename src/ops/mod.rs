//! Operating duban: each long-running process's health (live, and ready per component), its
//! Prometheus metrics, the `/metrics` `/healthz` `/readyz` endpoints, and how outages are told.
//!
//! - [`events`]: internal events as types (Vector's `<Namespace><Noun><Verb>`): each emits its log
//!   line and its metrics together, so the two never disagree.
//! - [`health`]: components (engine, lifecycle, a connector, the ClickHouse sink …) say whether
//!   they are ready; `/readyz` answers 200 only when all are.
//! - [`outage`]: a component that cannot reach Kafka or ClickHouse keeps running, logs the outage
//!   once per interval, reports not ready and resumes on its own; only errors that are not
//!   outages (configuration, fenced, corrupt state) end a process.
//! - [`recorder`]: the `metrics` facade's Prometheus recorder, installed once per process.
//! - [`server`]: the HTTP endpoints on `[ops] http_bind`.

pub mod events;
pub mod health;
pub mod outage;
pub mod recorder;
pub mod server;

use serde::Deserialize;

pub use events::InternalEvent;
pub use health::Component;
pub use outage::{Outage, Service};

/// `[ops]`: where a long-running command serves `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsConfig {
    /// Address of the endpoints. Default `127.0.0.1:9464` (when another process holds that port,
    /// a free port is taken and logged); `--ops-bind` / env DUBAN_OPS_BIND override; an address
    /// set here or there that cannot be bound stops the process. Port 0: any free port.
    pub http_bind: Option<String>,
}

/// The default address of the endpoints.
pub const DEFAULT_BIND: &str = "127.0.0.1:9464";
