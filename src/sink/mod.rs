//! Sinks that copy duban's tables to other analytics stores; today ClickHouse (`[sinks.clickhouse]`).
//! A sink runs as its own consumer of the complaints and alerts topics plus the lake's snapshots.

pub mod clickhouse;

use serde::Deserialize;

/// `[sinks]` in duban.toml: each sink is off unless its section is present.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    pub clickhouse: Option<clickhouse::ClickHouseConfig>,
}
