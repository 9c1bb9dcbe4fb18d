//! duban (督办): streaming complaint ingestion and analytics for a law-enforcement supervision bureau.
//! Feeds → connectors → bus (Kafka or in-process) → DataFusion engine → complaints, alerts, Parquet lake.

pub mod bus;
pub mod classify;
pub mod config;
pub mod connectors;
pub mod console;
pub mod engine;
pub mod ids;
pub mod labels;
pub mod lake;
pub mod lifecycle;
pub mod mem;
pub mod ops;
pub mod par;
pub mod pipeline;
pub mod query;
pub mod record;
pub mod report;
pub mod score;
pub mod sim;
pub mod sink;
pub mod web;
