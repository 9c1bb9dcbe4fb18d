//! The three-colour alert lifecycle (三色管理): yellow → red → green with working-day deadlines,
//! supervision recommendations, recurrence, actions (topic, HTTP API, CLI) and notifications.
//! `decide` is pure; the board, the Kafka process, the API and the webhooks sit around it.

pub mod api;
pub mod board;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod decide;
pub mod document;
pub mod notify;
pub mod replay;
pub mod run;

pub use config::LifecycleConfig;
pub use decide::{ActionKind, AlertAction, Event, Output, Policy, Role, decide};

#[cfg(test)]
mod tests;
