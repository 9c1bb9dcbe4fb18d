//! duban (督办): streaming complaint ingestion and analytics for a law-enforcement supervision bureau.
//! Feeds → connectors → bus (Kafka or in-process) → DataFusion engine → complaints, alerts, Parquet lake.

pub mod auth;
pub mod bus;
pub mod classify;
pub mod config;
pub mod connectors;
pub mod engine;
pub mod ids;
pub mod labels;
pub mod lake;
pub mod lifecycle;
pub mod ops;
pub mod pipeline;
pub mod query;
pub mod record;
pub mod redact;
pub mod report;
pub mod score;
pub mod sim;
pub mod sink;
pub mod util;
pub mod web;
