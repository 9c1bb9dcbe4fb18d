//! duban's internal events as types, after Vector's: each is named `<Namespace><Noun><Verb>` and
//! emits its log line and its metrics in one place, so logs and metrics never disagree.
//!
//! Naming scheme (one for all): the event `ConnectorRecordsSent` is the metric
//! `duban_connector_sent_records_total` (`duban_<namespace>_<verb>_<noun>[_<unit>]`, counters end
//! in `_total`, durations are histograms in `_seconds`, gauges are plain nouns) and log lines
//! under the target `duban::<namespace>` with snake_case fields: identities (`connector`, `stage`,
//! `partition`, `topic`, `component`, `service`, `alert`, `trigger`), counts as plural nouns
//! (`records`, `bytes`, `complaints`, `alerts`), durations as `<what>_ms`, and `event` = the type.

use std::time::Duration;

use super::outage::Service;

/// An internal event: emitting it writes its log line (if any) and records its metrics.
pub trait InternalEvent: Sized {
    fn emit(self);
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Counters and histograms are recorded only once the recorder is installed (on first use).
macro_rules! counter {
    ($($t:tt)*) => {{
        super::recorder::init();
        ::metrics::counter!($($t)*)
    }};
}
macro_rules! gauge {
    ($($t:tt)*) => {{
        super::recorder::init();
        ::metrics::gauge!($($t)*)
    }};
}
macro_rules! histogram {
    ($($t:tt)*) => {{
        super::recorder::init();
        ::metrics::histogram!($($t)*)
    }};
}

// ---------------------------------------------------------------------------------- connectors

/// Records read from a feed (before parsing), with their bytes.
pub struct ConnectorRecordsReceived<'a> {
    pub connector: &'a str,
    pub records: usize,
    pub bytes: usize,
}

impl InternalEvent for ConnectorRecordsReceived<'_> {
    fn emit(self) {
        let c = self.connector.to_string();
        counter!("duban_connector_received_records_total", "connector" => c.clone())
            .increment(self.records as u64);
        counter!("duban_connector_received_bytes_total", "connector" => c)
            .increment(self.bytes as u64);
    }
}

/// Records committed to the raw topic, with their bytes.
pub struct ConnectorRecordsSent<'a> {
    pub connector: &'a str,
    pub records: usize,
    pub bytes: usize,
}

impl InternalEvent for ConnectorRecordsSent<'_> {
    fn emit(self) {
        let c = self.connector.to_string();
        counter!("duban_connector_sent_records_total", "connector" => c.clone())
            .increment(self.records as u64);
        counter!("duban_connector_sent_bytes_total", "connector" => c).increment(self.bytes as u64);
    }
}

/// Records not forwarded to the raw topic (dead-lettered, or re-deliveries collapsed).
pub struct ConnectorRecordsDropped<'a> {
    pub connector: &'a str,
    pub records: usize,
    pub bytes: usize,
}

impl InternalEvent for ConnectorRecordsDropped<'_> {
    fn emit(self) {
        let c = self.connector.to_string();
        counter!("duban_connector_dropped_records_total", "connector" => c.clone())
            .increment(self.records as u64);
        counter!("duban_connector_dropped_bytes_total", "connector" => c)
            .increment(self.bytes as u64);
    }
}

/// A failed request, refused webhook or failed commit of a connector (each logged where it
/// happens, with its own context).
pub struct ConnectorErrorOccurred<'a> {
    pub connector: &'a str,
}

impl InternalEvent for ConnectorErrorOccurred<'_> {
    fn emit(self) {
        counter!("duban_connector_errors_total", "connector" => self.connector.to_string())
            .increment(1);
    }
}

// -------------------------------------------------------------------------------------- engine

/// One transaction of the engine committed: its records, the complaints and alerts it published,
/// how long applying the batch and committing it took.
pub struct EngineBatchCommitted {
    pub read: usize,
    pub records: usize,
    pub complaints: usize,
    pub alerts: usize,
    pub apply: Duration,
    pub commit: Duration,
}

impl InternalEvent for EngineBatchCommitted {
    fn emit(self) {
        tracing::info!(
            target: "duban::engine",
            event = "EngineBatchCommitted",
            read = self.read,
            records = self.records,
            complaints = self.complaints,
            alerts = self.alerts,
            apply_ms = ms(self.apply),
            commit_ms = ms(self.commit),
            "batch committed"
        );
        counter!("duban_engine_committed_batches_total").increment(1);
        counter!("duban_engine_published_complaints_total").increment(self.complaints as u64);
        histogram!("duban_engine_batch_apply_seconds").record(self.apply.as_secs_f64());
        histogram!("duban_engine_batch_commit_seconds").record(self.commit.as_secs_f64());
    }
}

/// Records a stage of the engine applied (`normalize`, `issues`, `complainants`).
pub struct EngineRecordsApplied<'a> {
    pub stage: &'a str,
    pub records: usize,
}

impl InternalEvent for EngineRecordsApplied<'_> {
    fn emit(self) {
        if self.records > 0 {
            counter!("duban_engine_applied_records_total", "stage" => self.stage.to_string())
                .increment(self.records as u64);
        }
    }
}

/// A state partition restored from the changelog: records replayed, time taken.
pub struct EngineStateRestored {
    pub partition: usize,
    pub replayed: usize,
    pub duration: Duration,
}

impl InternalEvent for EngineStateRestored {
    fn emit(self) {
        tracing::info!(
            target: "duban::engine",
            event = "EngineStateRestored",
            partition = self.partition,
            replayed = self.replayed,
            duration_ms = ms(self.duration),
            "state restored from the changelog"
        );
        counter!("duban_engine_restored_records_total").increment(self.replayed as u64);
        histogram!("duban_engine_restore_seconds").record(self.duration.as_secs_f64());
    }
}

/// The size of a state partition held: records applied (its changelog length), and what the
/// state keeps live (issues, complainants).
pub struct EngineStateMeasured<'a> {
    pub stage: &'a str,
    pub partition: usize,
    pub records: u64,
    pub entries: usize,
}

impl InternalEvent for EngineStateMeasured<'_> {
    fn emit(self) {
        let (s, p) = (self.stage.to_string(), self.partition.to_string());
        gauge!("duban_engine_state_records", "stage" => s.clone(), "partition" => p.clone())
            .set(self.records as f64);
        gauge!("duban_engine_state_entries", "stage" => s, "partition" => p)
            .set(self.entries as f64);
    }
}

/// The state partitions a worker stopped holding (rebalance, outage): their gauges go.
pub struct EngineStateReleased<'a> {
    pub stage: &'a str,
    pub partition: usize,
}

impl InternalEvent for EngineStateReleased<'_> {
    fn emit(self) {
        let (s, p) = (self.stage.to_string(), self.partition.to_string());
        gauge!("duban_engine_state_records", "stage" => s.clone(), "partition" => p.clone())
            .set(0.0);
        gauge!("duban_engine_state_entries", "stage" => s, "partition" => p).set(0.0);
    }
}

/// Alerts the engine raised (first version) or updated, by trigger.
pub struct EngineAlertsRaised<'a> {
    pub trigger: &'a str,
    pub raised: usize,
    pub updated: usize,
}

impl InternalEvent for EngineAlertsRaised<'_> {
    fn emit(self) {
        let t = self.trigger.to_string();
        if self.raised > 0 {
            counter!("duban_engine_raised_alerts_total", "trigger" => t.clone())
                .increment(self.raised as u64);
        }
        if self.updated > 0 {
            counter!("duban_engine_updated_alerts_total", "trigger" => t)
                .increment(self.updated as u64);
        }
    }
}

/// A transaction of the engine was aborted; the worker goes back to its committed state.
pub struct EngineTransactionAborted<'a> {
    pub error: &'a str,
}

impl InternalEvent for EngineTransactionAborted<'_> {
    fn emit(self) {
        tracing::warn!(
            target: "duban::engine",
            event = "EngineTransactionAborted",
            "transaction aborted, restarting from the committed offsets: {}",
            self.error
        );
        counter!("duban_engine_aborted_transactions_total").increment(1);
    }
}

// ----------------------------------------------------------------------------------- dead letters

/// Records written to the dead-letter topic by a stage, by kind of reason.
pub struct DlqRecordsWritten<'a> {
    pub stage: &'a str,
    pub reason: &'a str,
    pub records: usize,
}

impl InternalEvent for DlqRecordsWritten<'_> {
    fn emit(self) {
        counter!(
            "duban_dlq_written_records_total",
            "stage" => self.stage.to_string(),
            "reason" => reason_kind(self.reason)
        )
        .increment(self.records as u64);
    }
}

/// The kind of a dead letter's reason, a label of few values (the reason itself names records).
pub fn reason_kind(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("not json") || r.contains("not valid json") || r.contains("expected value") {
        "not_json"
    } else if r.contains("missing") || r.contains("lacks") || r.contains("finds nothing") {
        "missing_field"
    } else if r.contains("time") && (r.contains("parse") || r.contains("invalid")) {
        "bad_time"
    } else if r.contains("not a valid") || r.contains("not a ") || r.contains("not an ") {
        "bad_record"
    } else if r.contains("fields, header has") || r.contains("unreadable") {
        "bad_file"
    } else {
        "other"
    }
}

// ----------------------------------------------------------------------------------------- kafka

/// Lag of a consumer group on one partition (high watermark − committed offset), from the
/// client's statistics.
pub struct KafkaConsumerLagMeasured<'a> {
    pub group: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub lag: i64,
}

impl InternalEvent for KafkaConsumerLagMeasured<'_> {
    fn emit(self) {
        gauge!(
            "duban_kafka_consumer_lag",
            "group" => self.group.to_string(),
            "topic" => self.topic.to_string(),
            "partition" => self.partition.to_string()
        )
        .set(self.lag as f64);
    }
}

/// A Kafka client context that turns the client's statistics into consumer-lag gauges (set
/// `statistics.interval.ms` to [`LagContext::INTERVAL_MS`] on the consumer).
pub struct LagContext {
    group: String,
}

impl LagContext {
    pub const INTERVAL_MS: &'static str = "5000";

    pub fn new(group: &str) -> LagContext {
        LagContext {
            group: group.to_string(),
        }
    }

    /// Record the lag of every partition the consumer fetches: the end of the partition (last
    /// stable offset, for read_committed) minus the committed offset, or minus the position the
    /// application has read to when offsets are committed through transactions (which the
    /// client's own lag does not see).
    pub fn record(&self, stats: &rdkafka::Statistics) {
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                // -1 is the client's internal "unassigned" partition.
                if *p < 0 || !part.desired {
                    continue;
                }
                let end = if part.ls_offset >= 0 {
                    part.ls_offset
                } else {
                    part.hi_offset
                };
                let lag = if part.consumer_lag >= 0 {
                    part.consumer_lag
                } else if end >= 0 && part.app_offset >= 0 {
                    (end - part.app_offset).max(0)
                } else {
                    continue;
                };
                KafkaConsumerLagMeasured {
                    group: &self.group,
                    topic,
                    partition: *p,
                    lag,
                }
                .emit();
            }
        }
    }
}

impl rdkafka::ClientContext for LagContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.record(&statistics);
    }
}

impl rdkafka::consumer::ConsumerContext for LagContext {}

// ------------------------------------------------------------------------------------- lifecycle

/// An alert's lifecycle transition was committed to the board.
pub struct LifecycleAlertTransitioned<'a> {
    pub alert: &'a str,
    pub action: &'a str,
    pub from_level: &'a str,
    pub level: &'a str,
    pub status: &'a str,
    pub unit: &'a str,
}

impl InternalEvent for LifecycleAlertTransitioned<'_> {
    fn emit(self) {
        tracing::info!(
            target: "duban::lifecycle",
            event = "LifecycleAlertTransitioned",
            alert = self.alert,
            action = self.action,
            level = self.level,
            status = self.status,
            unit = self.unit,
            "board updated"
        );
        counter!(
            "duban_lifecycle_transitioned_alerts_total",
            "action" => self.action.to_string(),
            "from" => self.from_level.to_string(),
            "to" => self.level.to_string()
        )
        .increment(1);
    }
}

/// The board as it stands: alerts by level and status, those past their deadline, and
/// notifications by delivery status.
pub struct LifecycleBoardMeasured<'a> {
    pub by_level_status: &'a [((&'a str, &'a str), usize)],
    pub overdue: usize,
    pub notifications: &'a [(&'a str, usize)],
}

impl InternalEvent for LifecycleBoardMeasured<'_> {
    fn emit(self) {
        for ((level, status), n) in self.by_level_status {
            gauge!("duban_lifecycle_alerts", "level" => level.to_string(), "status" => status.to_string())
                .set(*n as f64);
        }
        gauge!("duban_lifecycle_overdue_alerts").set(self.overdue as f64);
        for (status, n) in self.notifications {
            gauge!("duban_lifecycle_notifications", "status" => status.to_string()).set(*n as f64);
        }
    }
}

/// A notification's delivery ended (delivered or failed for good).
pub struct LifecycleNotificationSettled<'a> {
    pub status: &'a str,
}

impl InternalEvent for LifecycleNotificationSettled<'_> {
    fn emit(self) {
        counter!("duban_lifecycle_settled_notifications_total", "status" => self.status.to_string())
            .increment(1);
    }
}

// ------------------------------------------------------------------------------------------ sql

/// A SQL query ran (`interface`: `flight`, `cli`, `board`), with its duration.
pub struct SqlQueryExecuted<'a> {
    pub interface: &'a str,
    pub ok: bool,
    pub duration: Duration,
}

impl InternalEvent for SqlQueryExecuted<'_> {
    fn emit(self) {
        let i = self.interface.to_string();
        let outcome = if self.ok { "ok" } else { "error" };
        counter!("duban_sql_executed_queries_total", "interface" => i.clone(), "outcome" => outcome)
            .increment(1);
        histogram!("duban_sql_query_duration_seconds", "interface" => i)
            .record(self.duration.as_secs_f64());
    }
}

/// Times one query from its start to the end of its result (dropped: the query ended, or its
/// reader went away) and emits [`SqlQueryExecuted`] then.
pub struct SqlQueryTimer {
    interface: &'static str,
    started: std::time::Instant,
    ok: bool,
}

impl SqlQueryTimer {
    pub fn start(interface: &'static str) -> SqlQueryTimer {
        SqlQueryTimer {
            interface,
            started: std::time::Instant::now(),
            ok: true,
        }
    }

    pub fn failed(&mut self) {
        self.ok = false;
    }
}

impl Drop for SqlQueryTimer {
    fn drop(&mut self) {
        SqlQueryExecuted {
            interface: self.interface,
            ok: self.ok,
            duration: self.started.elapsed(),
        }
        .emit();
    }
}

// ----------------------------------------------------------------------------------------- sink

/// Rows a sink wrote to a table.
pub struct SinkRowsWritten<'a> {
    pub sink: &'a str,
    pub table: &'a str,
    pub rows: usize,
}

impl InternalEvent for SinkRowsWritten<'_> {
    fn emit(self) {
        if self.rows > 0 {
            counter!("duban_sink_written_rows_total", "sink" => self.sink.to_string(), "table" => self.table.to_string())
                .increment(self.rows as u64);
        }
    }
}

// ------------------------------------------------------------------------------- ops: outages

/// A component lost a service (first error of an outage).
pub struct ServiceOutageStarted<'a> {
    pub component: &'a str,
    pub service: Service,
    pub error: &'a str,
}

impl InternalEvent for ServiceOutageStarted<'_> {
    fn emit(self) {
        tracing::warn!(
            target: "duban::ops",
            event = "ServiceOutageStarted",
            component = self.component,
            service = self.service.as_str(),
            "{} unreachable, retrying (not ready until it answers): {}",
            self.service.as_str(),
            self.error
        );
        let labels = [
            ("component", self.component.to_string()),
            ("service", self.service.as_str().to_string()),
        ];
        counter!("duban_service_outages_total", &labels).increment(1);
        counter!("duban_service_errors_total", &labels).increment(1);
        gauge!("duban_service_up", &labels).set(0.0);
    }
}

/// An outage goes on (told once per interval, with the errors since the last line).
pub struct ServiceOutageContinued<'a> {
    pub component: &'a str,
    pub service: Service,
    pub down: Duration,
    pub errors: u64,
    pub error: &'a str,
}

impl InternalEvent for ServiceOutageContinued<'_> {
    fn emit(self) {
        tracing::warn!(
            target: "duban::ops",
            event = "ServiceOutageContinued",
            component = self.component,
            service = self.service.as_str(),
            down_ms = ms(self.down),
            errors = self.errors,
            "{} still unreachable after {} s, retrying: {}",
            self.service.as_str(),
            self.down.as_secs(),
            self.error
        );
        ServiceErrorCounted {
            component: self.component,
            service: self.service,
        }
        .emit();
    }
}

/// An error during an outage, between its lines (counted, not logged).
pub struct ServiceErrorCounted<'a> {
    pub component: &'a str,
    pub service: Service,
}

impl InternalEvent for ServiceErrorCounted<'_> {
    fn emit(self) {
        counter!(
            "duban_service_errors_total",
            "component" => self.component.to_string(),
            "service" => self.service.as_str()
        )
        .increment(1);
    }
}

/// The service answers again.
pub struct ServiceOutageEnded<'a> {
    pub component: &'a str,
    pub service: Service,
    pub down: Duration,
    pub errors: u64,
}

impl InternalEvent for ServiceOutageEnded<'_> {
    fn emit(self) {
        tracing::info!(
            target: "duban::ops",
            event = "ServiceOutageEnded",
            component = self.component,
            service = self.service.as_str(),
            down_ms = ms(self.down),
            errors = self.errors,
            "{} reachable again after {:.1} s, resuming",
            self.service.as_str(),
            self.down.as_secs_f64()
        );
        gauge!("duban_service_up", "component" => self.component.to_string(), "service" => self.service.as_str())
            .set(1.0);
    }
}

/// A component became ready or not ready.
pub struct ComponentReadinessChanged<'a> {
    pub component: &'a str,
    pub ready: bool,
    pub reason: &'a str,
}

impl InternalEvent for ComponentReadinessChanged<'_> {
    fn emit(self) {
        if self.ready {
            tracing::info!(target: "duban::ops", event = "ComponentReadinessChanged", component = self.component, ready = true, "ready");
        } else {
            tracing::debug!(target: "duban::ops", event = "ComponentReadinessChanged", component = self.component, ready = false, reason = self.reason, "not ready");
        }
        gauge!("duban_component_ready", "component" => self.component.to_string())
            .set(if self.ready { 1.0 } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_record_their_metrics_under_one_naming_scheme() {
        ConnectorRecordsSent {
            connector: "unit-test-events",
            records: 3,
            bytes: 30,
        }
        .emit();
        DlqRecordsWritten {
            stage: "unit-test-events",
            reason: "t/0/1: field time: cannot parse time `x`",
            records: 2,
        }
        .emit();
        SqlQueryExecuted {
            interface: "unit-test-events",
            ok: true,
            duration: Duration::from_millis(30),
        }
        .emit();
        super::super::recorder::upkeep();
        let text = super::super::recorder::render();
        assert!(
            text.contains("duban_connector_sent_records_total{connector=\"unit-test-events\"} 3"),
            "{text}"
        );
        assert!(text.contains(
            "duban_dlq_written_records_total{stage=\"unit-test-events\",reason=\"bad_time\"} 2"
        ));
        assert!(text.contains("# TYPE duban_sql_query_duration_seconds histogram"));
        assert!(text.contains(
            "duban_sql_query_duration_seconds_bucket{interface=\"unit-test-events\",le=\"0.05\"} 1"
        ));
    }

    /// Every metric the shipped Grafana dashboard queries is one that duban's events record.
    #[test]
    fn the_dashboard_queries_only_recorded_metrics() {
        let d = Duration::from_millis(5);
        let (c, k) = ("unit-test-dashboard", Service::Kafka);
        ConnectorRecordsReceived {
            connector: c,
            records: 1,
            bytes: 1,
        }
        .emit();
        ConnectorRecordsSent {
            connector: c,
            records: 1,
            bytes: 1,
        }
        .emit();
        ConnectorRecordsDropped {
            connector: c,
            records: 1,
            bytes: 1,
        }
        .emit();
        ConnectorErrorOccurred { connector: c }.emit();
        EngineBatchCommitted {
            read: 1,
            records: 1,
            complaints: 1,
            alerts: 1,
            apply: d,
            commit: d,
        }
        .emit();
        EngineRecordsApplied {
            stage: c,
            records: 1,
        }
        .emit();
        EngineStateRestored {
            partition: 0,
            replayed: 1,
            duration: d,
        }
        .emit();
        EngineStateMeasured {
            stage: c,
            partition: 0,
            records: 1,
            entries: 1,
        }
        .emit();
        EngineAlertsRaised {
            trigger: c,
            raised: 1,
            updated: 1,
        }
        .emit();
        EngineTransactionAborted { error: c }.emit();
        DlqRecordsWritten {
            stage: c,
            reason: c,
            records: 1,
        }
        .emit();
        KafkaConsumerLagMeasured {
            group: c,
            topic: c,
            partition: 0,
            lag: 1,
        }
        .emit();
        LifecycleAlertTransitioned {
            alert: c,
            action: c,
            from_level: c,
            level: c,
            status: c,
            unit: c,
        }
        .emit();
        LifecycleBoardMeasured {
            by_level_status: &[((c, c), 1)],
            overdue: 1,
            notifications: &[(c, 1)],
        }
        .emit();
        LifecycleNotificationSettled { status: c }.emit();
        SqlQueryExecuted {
            interface: c,
            ok: true,
            duration: d,
        }
        .emit();
        SinkRowsWritten {
            sink: c,
            table: c,
            rows: 1,
        }
        .emit();
        ServiceOutageStarted {
            component: c,
            service: k,
            error: c,
        }
        .emit();
        ServiceOutageEnded {
            component: c,
            service: k,
            down: d,
            errors: 1,
        }
        .emit();
        ComponentReadinessChanged {
            component: c,
            ready: true,
            reason: "",
        }
        .emit();
        super::super::recorder::upkeep();
        let text = super::super::recorder::render();
        let dashboard = include_str!("../../docs/grafana/duban.json");
        let mut names: Vec<&str> = dashboard
            .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .filter(|w| w.starts_with("duban_"))
            .collect();
        names.sort();
        names.dedup();
        assert!(names.len() >= 20, "{names:?}");
        for n in names {
            assert!(
                text.contains(&format!("\n{n}")) || text.contains(&format!("\n{n}{{")),
                "{n} is not recorded"
            );
        }
    }

    #[test]
    fn dead_letter_reasons_fold_into_few_kinds() {
        assert_eq!(
            reason_kind("board detail 12: not JSON: expected value"),
            "not_json"
        );
        assert_eq!(reason_kind("t/0/1: missing field content"), "missing_field");
        assert_eq!(
            reason_kind("a/1/2: not a valid alert record: x"),
            "bad_record"
        );
        assert_eq!(
            reason_kind("hotline export a.csv line 3: 5 fields, header has 7"),
            "bad_file"
        );
        assert_eq!(reason_kind("something else"), "other");
    }
}
