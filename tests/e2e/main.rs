//! End-to-end tests on a real Kafka broker (DUBAN_KAFKA_BOOTSTRAP, started by scripts/test.sh).
//! All heavy tests live in this one binary so they share one broker and one build; each area has
//! its own module, each test its own topic prefix.

mod analytics;
mod board;
mod classify;
mod common;
mod connect;
mod golden;
mod hardening;
mod lifecycle;
mod outage;
mod quickstart;
mod report;
mod score;
mod spine;
mod sql;
mod state;
