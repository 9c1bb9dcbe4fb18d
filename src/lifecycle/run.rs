//! The lifecycle's Kafka process: restores the board from the compacted `alerts` topic, consumes
//! `alerts-raised` (engine) and `alert-actions` (bureau, units), checks deadlines on a timer, and
//! writes board records, notification-log records and its input offsets in one transaction.
//!
//! Delivery guarantee: exactly once for transitions (a restarted instance fences the old one,
//! aborts its open transaction, restores the committed board and resumes from the committed
//! offsets; deadlines are in the board, so due escalations are re-derived at start). Webhooks:
//! see notify.rs. Runs as one instance per deployment (the transactional id is fixed).

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::api::{Api, View};
use super::board::{Board, Effects};
use super::clock::Clock;
use super::decide::{AlertAction, Event};
use super::notify::{Delivery, DeliveryStatus, NotificationRecord};
use crate::bus::{Bus, KafkaBus, Topics};
use crate::config::Config;
use crate::ops::InternalEvent;
use crate::ops::events::{LifecycleAlertTransitioned, LifecycleBoardMeasured};
use crate::record::{Alert, DeadLetter};

/// Transactional id of a deployment's lifecycle.
pub fn transactional_id(topics: &Topics) -> String {
    let prefix = topics.raw.strip_suffix(".raw").unwrap_or(&topics.raw);
    format!("{prefix}.lifecycle")
}

/// Files the lifecycle keeps in the data folder: lake tables, alerts.jsonl, documents.
pub fn write_outputs(data_dir: &Path, board: &Board, documents: &[String]) -> Result<()> {
    for id in documents {
        if let Some(a) = board.alerts.get(id) {
            super::document::write(data_dir, a)?;
        }
    }
    let alerts: Vec<Alert> = board.alerts.values().cloned().collect();
    let lake = data_dir.join("lake");
    crate::lake::write_parquet(
        &lake.join("alerts").join("alerts.parquet"),
        &crate::record::alerts_to_batch(&alerts)?,
    )?;
    crate::lake::write_parquet(
        &lake.join("alert_history").join("alert_history.parquet"),
        &crate::record::alert_history_to_batch(&alerts)?,
    )?;
    crate::pipeline::write_alerts_jsonl(data_dir, &board.alerts)?;
    Ok(())
}

/// Every record of `topic` (all partitions) up to its end at the time of the call, committed only.
pub fn read_to_end(bootstrap: &str, topic: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    crate::bus::kafka::read_to_end(bootstrap, topic, None, |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

type Keyed = Vec<(String, Vec<u8>)>;

/// One transaction: records on several topics, plus the consumer offsets they cover.
async fn transact(
    producer: &crate::bus::txn::TxnProducer,
    batches: &[(&str, &Keyed)],
    offsets: Option<(
        &StreamConsumer<crate::ops::events::LagContext>,
        TopicPartitionList,
    )>,
) -> Result<()> {
    if batches.iter().all(|(_, r)| r.is_empty()) && offsets.is_none() {
        return Ok(());
    }
    let offsets = match offsets {
        Some((consumer, tpl)) => Some((
            tpl,
            consumer
                .group_metadata()
                .context("the consumer has no group metadata")?,
        )),
        None => None,
    };
    let records = batches.iter().flat_map(|(topic, recs)| {
        recs.iter()
            .map(move |(k, v)| (*topic, None, k.as_bytes(), v.as_slice()))
    });
    let records = records.collect();
    crate::bus::txn::transact(producer, records, offsets)
        .await
        .context("lifecycle transaction aborted")
}

/// The running lifecycle's moving parts.
struct Runner {
    board: Board,
    units: crate::engine::units::UnitTable,
    data_dir: PathBuf,
    view: Arc<RwLock<View>>,
    log: BTreeMap<String, NotificationRecord>,
    delivery: Delivery,
    client: reqwest::Client,
    clock: Clock,
    delivered_tx: tokio::sync::mpsc::UnboundedSender<NotificationRecord>,
    /// Notifications being delivered (across runs: a restore does not send them again).
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Runner {
    fn send_pending(&self, recs: &[NotificationRecord]) {
        for r in recs
            .iter()
            .filter(|r| r.status == DeliveryStatus::Pending)
            .cloned()
        {
            if !self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(r.notification.notification_id.clone())
            {
                continue;
            }
            let (d, c, clock, tx) = (
                self.delivery.clone(),
                self.client.clone(),
                self.clock.clone(),
                self.delivered_tx.clone(),
            );
            tokio::spawn(async move {
                let done = d.deliver(&c, r, &clock).await;
                let _ = tx.send(done);
            });
        }
    }

    /// Turn effects into the records of one transaction.
    fn records(&self, fx: &Effects) -> Result<(Keyed, Vec<NotificationRecord>)> {
        let board: Keyed = fx
            .changed
            .values()
            .map(|a| Ok((a.alert_id.clone(), serde_json::to_vec(a)?)))
            .collect::<Result<_>>()?;
        let notes: Vec<NotificationRecord> = fx
            .notifications
            .iter()
            .filter(|n| !self.log.contains_key(&n.notification_id))
            .map(|n| NotificationRecord::new(n.clone(), self.units.webhook(&n.unit)))
            .collect();
        Ok((board, notes))
    }

    /// After a commit: files, the API's view, webhooks.
    fn committed(&mut self, fx: Effects, notes: Vec<NotificationRecord>) -> Result<()> {
        for n in &notes {
            self.log
                .insert(n.notification.notification_id.clone(), n.clone());
        }
        if !fx.changed.is_empty() {
            write_outputs(&self.data_dir, &self.board, &fx.documents)?;
        }
        {
            let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
            for (id, a) in &fx.changed {
                // The transitions this commit added: those past the history the view had.
                let seen = v
                    .alerts
                    .get(id)
                    .map_or(0, |old| old.lifecycle.history.len());
                for t in a.lifecycle.history.iter().skip(seen) {
                    LifecycleAlertTransitioned {
                        alert: &a.alert_id,
                        action: t.action.as_str(),
                        from_level: t.from_level.map_or("none", |l| l.as_str()),
                        level: t.to_level.as_str(),
                        status: t.to_status.as_str(),
                        unit: &a.unit,
                    }
                    .emit();
                }
                v.alerts.insert(id.clone(), a.clone());
            }
            // Outcomes are kept for the API's waiting callers; old ones are dropped.
            if v.results.len() > 10_000 {
                v.results.clear();
            }
            for r in &fx.results {
                v.results.insert(r.action_id.clone(), r.clone());
            }
        }
        self.send_pending(&notes);
        self.measure()
    }

    /// The board's gauges: alerts by level and status, overdue ones, notifications by status.
    fn measure(&self) -> Result<()> {
        let now = self.clock.now()?;
        let mut by: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut overdue = 0;
        for a in self.board.alerts.values() {
            *by.entry((a.level.as_str(), a.lifecycle.status.as_str()))
                .or_default() += 1;
            if a.lifecycle.status != crate::record::AlertStatus::Closed
                && super::decide::overdue(a.deadline, now)
            {
                overdue += 1;
            }
        }
        let mut notes: BTreeMap<&str, usize> = ["pending", "delivered", "failed", "no_webhook"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
        for r in self.log.values() {
            *notes.entry(status_name(r.status)).or_default() += 1;
        }
        let by: Vec<((&str, &str), usize)> = by.into_iter().collect();
        let notes: Vec<(&str, usize)> = notes.into_iter().collect();
        LifecycleBoardMeasured {
            by_level_status: &by,
            overdue,
            notifications: &notes,
        }
        .emit();
        Ok(())
    }
}

fn encode_notes(notes: &[NotificationRecord]) -> Result<Keyed> {
    notes
        .iter()
        .map(|n| {
            Ok((
                n.notification.notification_id.clone(),
                serde_json::to_vec(n)?,
            ))
        })
        .collect()
}

/// Run the lifecycle on Kafka until `stop` resolves.
///
/// It lives through broker outages: a consumer error is told once per interval (`ops::outage`);
/// a failed transaction, or a restore that cannot read the topics, sends it back to its committed
/// state — producer created anew (fencing nothing but its own earlier self and settling the open
/// transaction), board and notification log restored from their compacted topics, consumer resumed
/// from the committed offsets — after a delay that grows to a few seconds, not ready meanwhile.
/// The alerts API keeps answering (from the last board it had). Fenced by a newer instance and
/// errors that are not outages end it.
pub async fn run_kafka(
    config: &Config,
    bus: Arc<KafkaBus>,
    data_dir: &Path,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let lc = &config.lifecycle;
    let policy = lc.policy(&config.rules)?;
    let units = crate::engine::units::load(config.units.path.as_deref())?;
    let tokens = lc.all_tokens()?;
    let clock = Clock::new(lc.clock_file());
    let health = crate::ops::Component::register("lifecycle");
    let mut outage = crate::ops::Outage::new("lifecycle", Some(health.clone()));
    let view = Arc::new(RwLock::new(View::default()));
    let (delivered_tx, mut delivered_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut shared = Shared {
        in_flight: Arc::default(),
        unsaved: Vec::new(),
        server: None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Domain corrections: the API's view of them and the lake table `labels`.
    let labels = crate::labels::follow(
        &config.kafka.bootstrap_servers,
        &bus.topics().labels,
        view.clone(),
        Some(data_dir.join("lake")),
        stop_rx.clone(),
    )?;
    tokio::pin!(stop);
    let result = loop {
        let run = Once {
            config,
            bus: &bus,
            data_dir,
            policy: policy.clone(),
            units: units.clone(),
            tokens: &tokens,
            clock: &clock,
            view: &view,
            health: &health,
            outage: &mut outage,
            delivered_tx: delivered_tx.clone(),
            stop_rx: stop_rx.clone(),
        };
        let err = match run.go(&mut shared, &mut delivered_rx, stop.as_mut()).await {
            Ok(()) => break Ok(()),
            Err(e) => e,
        };
        health.not_ready("restarting from the committed state after a Kafka error");
        let delay = match outage.failed(err.context("lifecycle")) {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.as_mut() => break Ok(()),
        }
    };
    let _ = stop_tx.send(true);
    if let Some(s) = shared.server.take() {
        let _ = s.await;
    }
    match labels.await {
        Ok(Err(e)) if result.is_ok() => return Err(e),
        _ => {}
    }
    result
}

/// What outlives one run of the lifecycle.
struct Shared {
    /// Notifications being delivered (not sent again by a restore).
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Delivery results not yet committed to the notification log.
    unsaved: Vec<NotificationRecord>,
    /// The alerts API (started after the first restore, kept across runs).
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// One run of the lifecycle: restore, then consume until a stop or an error.
struct Once<'a> {
    config: &'a Config,
    bus: &'a Arc<KafkaBus>,
    data_dir: &'a Path,
    policy: super::decide::Policy,
    units: crate::engine::units::UnitTable,
    tokens: &'a crate::auth::Credentials,
    clock: &'a Clock,
    view: &'a Arc<RwLock<View>>,
    health: &'a crate::ops::Component,
    outage: &'a mut crate::ops::Outage,
    delivered_tx: tokio::sync::mpsc::UnboundedSender<NotificationRecord>,
    stop_rx: tokio::sync::watch::Receiver<bool>,
}

impl Once<'_> {
    async fn go(
        self,
        shared: &mut Shared,
        delivered_rx: &mut tokio::sync::mpsc::UnboundedReceiver<NotificationRecord>,
        mut stop: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<()> {
        let Once {
            config,
            bus,
            data_dir,
            policy,
            units,
            tokens,
            clock,
            view,
            health,
            outage,
            delivered_tx,
            stop_rx,
        } = self;
        let lc = &config.lifecycle;
        let topics = bus.topics();
        let bootstrap = config.kafka.bootstrap_servers.clone();
        health.not_ready("restoring the board");

        // Fence any previous instance first: its open transaction is aborted before we restore.
        let producer =
            crate::bus::txn::producer(&bootstrap, &transactional_id(&topics), 20_000, "lifecycle")
                .await?;

        let (b, t) = (bootstrap.clone(), topics.alerts.clone());
        let board_recs = tokio::task::spawn_blocking(move || read_to_end(&b, &t)).await??;
        let mut latest: BTreeMap<String, Alert> = BTreeMap::new();
        for (k, v) in &board_recs {
            match serde_json::from_slice::<Alert>(v) {
                Ok(a) => {
                    latest.insert(a.alert_id.clone(), a);
                }
                Err(e) => {
                    tracing::warn!(target: "duban::lifecycle", key = %String::from_utf8_lossy(k), "skipping an unreadable board record: {e}")
                }
            }
        }
        let (b, t) = (bootstrap.clone(), topics.alert_notifications.clone());
        let log_recs = tokio::task::spawn_blocking(move || read_to_end(&b, &t)).await??;
        let mut log = BTreeMap::new();
        for (_, v) in &log_recs {
            if let Ok(r) = serde_json::from_slice::<NotificationRecord>(v) {
                log.insert(r.notification.notification_id.clone(), r);
            }
        }
        let board = Board::new(policy, latest.into_values());
        tracing::info!(target: "duban::lifecycle", alerts = board.alerts.len(), notifications = log.len(), "board restored");
        {
            let mut v = view.write().unwrap_or_else(|e| e.into_inner());
            v.alerts = board.alerts.clone();
        }
        let mut runner = Runner {
            board,
            units,
            data_dir: data_dir.to_path_buf(),
            view: view.clone(),
            log,
            delivery: Delivery::from_config(lc),
            client: reqwest::Client::new(),
            clock: clock.clone(),
            delivered_tx,
            in_flight: shared.in_flight.clone(),
        };
        // Delivery results a failed transaction kept from the log are committed first.
        if !shared.unsaved.is_empty() {
            let log = encode_notes(&shared.unsaved)?;
            transact(&producer, &[(&topics.alert_notifications, &log)], None).await?;
            for r in shared.unsaved.drain(..) {
                runner.log.insert(r.notification.notification_id.clone(), r);
            }
        }
        // Documents a crash kept from being written, the lake, pending webhooks.
        let reds: Vec<String> = runner
            .board
            .alerts
            .values()
            .filter(|a| {
                a.lifecycle
                    .document_path
                    .as_ref()
                    .is_some_and(|p| !data_dir.join(p).exists())
            })
            .map(|a| a.alert_id.clone())
            .collect();
        write_outputs(data_dir, &runner.board, &reds)?;
        let pending: Vec<NotificationRecord> = runner.log.values().cloned().collect();
        runner.send_pending(&pending);
        runner.measure()?;

        if shared.server.is_none() && !lc.http_bind.is_empty() {
            let api = Api::new(
                view.clone(),
                tokens.clone(),
                Bus::Kafka(bus.clone()),
                topics.alert_actions.clone(),
                clock.clone(),
                lc.action_rate(),
            )
            .with_labels(crate::labels::api::LabelDesk::from_config(
                config,
                &topics,
                Some(data_dir),
            )?);
            let listener = tokio::net::TcpListener::bind(&lc.http_bind)
                .await
                .with_context(|| format!("lifecycle API: cannot bind {}", lc.http_bind))?;
            let addr = listener.local_addr()?;
            std::fs::create_dir_all(data_dir)?;
            std::fs::write(data_dir.join("lifecycle-api.addr"), addr.to_string())?;
            tracing::info!(target: "duban::lifecycle", "alerts API on http://{addr}/api/alerts");
            let mut rx = stop_rx.clone();
            shared.server = Some(tokio::spawn(async move {
                axum::serve(listener, super::api::router(api))
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await
            }));
        }

        let consumer: StreamConsumer<crate::ops::events::LagContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &lc.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("session.timeout.ms", "10000")
            .set(
                "fetch.wait.max.ms",
                crate::pipeline::kafka::FETCH_WAIT_MAX_MS,
            )
            .set(
                "statistics.interval.ms",
                crate::ops::events::LagContext::INTERVAL_MS,
            )
            .create_with_context(crate::ops::events::LagContext::new(&lc.group_id))
            .context("cannot create the lifecycle consumer")?;
        consumer
            .subscribe(&[topics.alerts_raised.as_str(), topics.alert_actions.as_str()])
            .context("cannot subscribe to the lifecycle's inputs")?;
        health.ready();

        let mut ticker = tokio::time::interval(Duration::from_millis(lc.tick_interval_ms.max(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.as_mut() => return Ok(()),
                m = consumer.recv() => {
                    let first = match m {
                        Ok(m) => m.detach(),
                        Err(e) => {
                            // librdkafka retries on its own; the outage is told once per interval.
                            // An error queued while the broker was away may come after it is
                            // back: only one the broker does not contradict is an outage.
                            if !crate::ops::outage::kafka_answers(&consumer) {
                                outage.failed(anyhow::Error::new(e).context("lifecycle consumer"))?;
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            continue;
                        }
                    };
                    outage.ok();
                    let mut msgs = vec![first];
                    let until = Instant::now() + Duration::from_millis(50);
                    while msgs.len() < 500 {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() { break; }
                        match tokio::time::timeout(left, consumer.recv()).await {
                            Ok(Ok(m)) => msgs.push(m.detach()),
                            Ok(Err(_)) => break,
                            Err(_) => break,
                        }
                    }
                    let now = clock.now()?;
                    let mut fx = Effects::default();
                    let mut dead: Keyed = Vec::new();
                    let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
                    for m in &msgs {
                        offsets.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
                        let payload = m.payload().unwrap_or_default();
                        let origin = format!("{}/{}/{}", m.topic(), m.partition(), m.offset());
                        let event = if m.topic() == topics.alerts_raised {
                            serde_json::from_slice::<Alert>(payload).map(|a| Event::Raised(Box::new(a)))
                        } else {
                            serde_json::from_slice::<AlertAction>(payload).map(Event::Action)
                        };
                        match event {
                            Ok(e) => fx.extend(runner.board.apply(&e, now)),
                            Err(e) => {
                                let reason = format!("{origin}: not a valid {} record: {}", if m.topic() == topics.alerts_raised { "alert" } else { "alert action" }, crate::redact::json_error(&e));
                                tracing::warn!(target: "duban::lifecycle", "{reason}");
                                crate::ops::events::DlqRecordsWritten { stage: "lifecycle", reason: &reason, records: 1 }.emit();
                                let d = DeadLetter::new("lifecycle", None, reason, &origin, m.key(), payload);
                                dead.push((origin.clone(), serde_json::to_vec(&d)?));
                            }
                        }
                    }
                    let mut tpl = TopicPartitionList::new();
                    for ((t, p), o) in &offsets {
                        tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
                    }
                    let (board, notes) = runner.records(&fx)?;
                    let log = encode_notes(&notes)?;
                    transact(
                        &producer,
                        &[(&topics.alerts, &board), (&topics.alert_notifications, &log), (&topics.dlq, &dead)],
                        Some((&consumer, tpl)),
                    )
                    .await?;
                    runner.committed(fx, notes)?;
                }
                _ = ticker.tick() => {
                    // Idle in an outage, no record comes to say it ended: ask the broker.
                    if outage.ongoing() && crate::ops::outage::kafka_answers(&consumer) {
                        outage.ok();
                    }
                    let now = match clock.now() {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::warn!(target: "duban::lifecycle", "deadline check skipped: {e:#}");
                            continue;
                        }
                    };
                    let fx = runner.board.tick(now);
                    if fx.is_empty() {
                        runner.measure()?;
                        continue;
                    }
                    let (board, notes) = runner.records(&fx)?;
                    let log = encode_notes(&notes)?;
                    transact(&producer, &[(&topics.alerts, &board), (&topics.alert_notifications, &log)], None).await?;
                    runner.committed(fx, notes)?;
                }
                Some(rec) = delivered_rx.recv() => {
                    let mut done = vec![rec];
                    while let Ok(r) = delivered_rx.try_recv() { done.push(r); }
                    {
                        let mut f = runner.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                        for r in &done {
                            f.remove(&r.notification.notification_id);
                        }
                    }
                    for r in &done {
                        crate::ops::events::LifecycleNotificationSettled { status: status_name(r.status) }.emit();
                    }
                    let log = encode_notes(&done)?;
                    if let Err(e) = transact(&producer, &[(&topics.alert_notifications, &log)], None).await {
                        shared.unsaved.extend(done);
                        return Err(e);
                    }
                    for r in done {
                        runner.log.insert(r.notification.notification_id.clone(), r);
                    }
                }
            }
        }
    }
}

/// The name of a delivery status (its serialized form).
fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::NoWebhook => "no_webhook",
    }
}
