//! Scheduled reports in `duban run`: on each cron firing, the report of the last complete period is
//! written to the reports folder and published to `<prefix>.reports`. The folder and the topic are
//! the record: ids are deterministic, a report present in both is never produced again, one present
//! in only one is copied to the other, and missed firings since the last produced report are caught
//! up on start. Time comes from a `Clock`, so tests drive it.

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cron::Cron;
use super::{Period, Report, ReportData, ReportSpec};
use crate::bus::KafkaBus;
use crate::config::Config;

/// Largest HTML carried on the topic; bigger pages stay in the folder only (Kafka's default limit
/// on a record is 1 MB).
const MAX_HTML_ON_TOPIC: usize = 800_000;

/// Where the scheduler gets the time from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= t`.
    fn wait_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// The system's wall clock (re-checked at least every minute, so clock changes are noticed).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn wait_until(&self, t: DateTime<Utc>) {
        loop {
            let left = t - Utc::now();
            if left <= Duration::zero() {
                return;
            }
            let step = left.to_std().unwrap_or_default();
            tokio::time::sleep(step.min(std::time::Duration::from_secs(60))).await;
        }
    }
}

/// A clock that moves only when told (for tests and replays).
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<tokio::sync::watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Arc::new(tokio::sync::watch::Sender::new(t)),
        }
    }
    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_replace(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }
    async fn wait_until(&self, t: DateTime<Utc>) {
        let mut rx = self.now.subscribe();
        // The sender lives as long as self; an error would mean it is gone and time stopped.
        let _ = rx.wait_for(|now| *now >= t).await;
    }
}

/// What `<prefix>.reports` carries, keyed by report id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportMessage {
    pub report_id: String,
    pub data: ReportData,
    pub markdown: String,
    /// The HTML page, unless it was too big for the topic.
    pub html: Option<String>,
}

impl ReportMessage {
    fn of(r: &Report) -> ReportMessage {
        ReportMessage {
            report_id: r.id().to_string(),
            data: r.data.clone(),
            markdown: r.markdown.clone(),
            html: (r.html.len() <= MAX_HTML_ON_TOPIC).then(|| r.html.clone()),
        }
    }
}

/// What a pass did with one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Computed from the lake, written and published.
    Produced(String),
    /// In the folder only: published from the folder's files.
    Published(String),
    /// On the topic only: the folder's files restored from the topic.
    Restored(String),
}

/// The produced reports, as the folder and the topic record them.
pub struct Record {
    topic: String,
    dir: PathBuf,
    on_topic: BTreeMap<String, ReportData>,
    in_folder: BTreeMap<String, ReportData>,
    /// Full messages of the topic, kept only until the folder has them.
    topic_messages: BTreeMap<String, ReportMessage>,
}

pub fn reports_topic(cfg: &Config) -> String {
    cfg.kafka.topic("reports")
}

impl Record {
    /// Read the folder and the whole topic.
    pub async fn load(cfg: &Config, bus: &KafkaBus) -> Result<Record> {
        let topic = reports_topic(cfg);
        let dir = cfg.reports.reports_dir(&cfg.data_dir());
        ensure_topic(bus, &topic).await?;
        let records = read_topic(&bus.config.bootstrap_servers, &topic).await?;
        let mut topic_messages = BTreeMap::new();
        for (key, value) in records {
            let m: ReportMessage = serde_json::from_slice(&value)
                .with_context(|| format!("topic {topic}: record {key} is not a report message"))?;
            topic_messages.insert(m.report_id.clone(), m);
        }
        let in_folder = read_folder(&dir)?;
        let on_topic = topic_messages
            .iter()
            .map(|(k, m)| (k.clone(), m.data.clone()))
            .collect();
        topic_messages.retain(|k, _| !in_folder.contains_key(k));
        Ok(Record {
            topic,
            dir,
            on_topic,
            in_folder,
            topic_messages,
        })
    }

    /// The latest scheduled firing recorded for `period`.
    fn last_fired(&self, period: Period, tz: FixedOffset) -> Option<NaiveDateTime> {
        self.on_topic
            .values()
            .chain(self.in_folder.values())
            .filter(|d| d.period == period.as_str())
            .filter_map(|d| d.scheduled_for.as_deref())
            .filter_map(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&tz).naive_local())
            .max()
    }

    /// Produce every report due at `now` that the record does not hold yet.
    pub async fn pass(
        &mut self,
        cfg: &Config,
        bus: &KafkaBus,
        lake: &Path,
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>> {
        let tz = cfg.reports.offset()?;
        let local_now = super::cron::whole_seconds(now.with_timezone(&tz).naive_local());
        let oldest = local_now - Duration::days(i64::from(cfg.reports.catch_up_days));
        let mut out = Vec::new();
        // The folder and the topic hold the same reports: copy what only one of them has.
        let only_topic: Vec<String> = self
            .on_topic
            .keys()
            .filter(|k| !self.in_folder.contains_key(*k))
            .cloned()
            .collect();
        let only_folder: Vec<String> = self
            .in_folder
            .keys()
            .filter(|k| !self.on_topic.contains_key(*k))
            .cloned()
            .collect();
        for id in only_topic.into_iter().chain(only_folder) {
            out.extend(self.sync(bus, &id).await?);
        }
        for (period, cron) in cfg.reports.schedules()? {
            for fire in due_firings(&cron, self.last_fired(period, tz), local_now, oldest) {
                let spec = ReportSpec::last_complete(period, fire.date());
                let fired = fire
                    .and_local_timezone(tz)
                    .single()
                    .ok_or_else(|| anyhow!("no local time {fire}"))?;
                if let Some(o) = self.one(bus, lake, &spec, fired, &tz, now).await? {
                    out.push(o);
                }
            }
        }
        Ok(out)
    }

    async fn one(
        &mut self,
        bus: &KafkaBus,
        lake: &Path,
        spec: &ReportSpec,
        fired: DateTime<FixedOffset>,
        tz: &FixedOffset,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>> {
        let id = spec.id();
        if self.in_folder.contains_key(&id) || self.on_topic.contains_key(&id) {
            return self.sync(bus, &id).await;
        }
        let generated = now
            .with_timezone(tz)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut report = super::generate(lake, spec, &generated).await?;
        report.data.scheduled_for = Some(fired.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        report.json = serde_json::to_string_pretty(&report.data)?;
        report.write(&self.dir)?;
        self.in_folder.insert(id.clone(), report.data.clone());
        self.publish(bus, &report).await?;
        tracing::info!(target: "duban::report", report = %id, complaints = report.data.complaints.total, "report produced");
        Ok(Some(Outcome::Produced(id)))
    }

    /// Copy report `id` to whichever of folder and topic lacks it.
    async fn sync(&mut self, bus: &KafkaBus, id: &str) -> Result<Option<Outcome>> {
        let id = id.to_string();
        match (
            self.in_folder.contains_key(&id),
            self.on_topic.contains_key(&id),
        ) {
            (true, true) | (false, false) => Ok(None),
            (true, false) => {
                let report = read_report(&self.dir, &id)?;
                self.publish(bus, &report).await?;
                tracing::info!(target: "duban::report", report = %id, "published from the folder");
                Ok(Some(Outcome::Published(id)))
            }
            (false, true) => {
                let m = self
                    .topic_messages
                    .remove(&id)
                    .ok_or_else(|| anyhow!("report {id} is on the topic but was not kept"))?;
                let html = match m.html {
                    Some(h) => h,
                    None => super::render::html(&m.data),
                };
                let report = Report {
                    json: serde_json::to_string_pretty(&m.data)?,
                    html,
                    markdown: m.markdown,
                    data: m.data,
                };
                report.write(&self.dir)?;
                self.in_folder.insert(id.clone(), report.data);
                tracing::info!(target: "duban::report", report = %id, "restored from the topic");
                Ok(Some(Outcome::Restored(id)))
            }
        }
    }

    async fn publish(&mut self, bus: &KafkaBus, report: &Report) -> Result<()> {
        let m = ReportMessage::of(report);
        bus.send_all(
            &self.topic,
            &[(m.report_id.clone(), serde_json::to_vec(&m)?)],
        )
        .await?;
        self.on_topic.insert(m.report_id.clone(), m.data);
        Ok(())
    }
}

/// The firings of `cron` due at `now` (local times), oldest first: every firing after the last
/// recorded one, none older than `oldest`; with nothing recorded, only the latest firing.
pub fn due_firings(
    cron: &Cron,
    last: Option<NaiveDateTime>,
    now: NaiveDateTime,
    oldest: NaiveDateTime,
) -> Vec<NaiveDateTime> {
    match last {
        Some(last) => cron.between(last.max(oldest), now),
        None => cron
            .last_at_or_before(now)
            .filter(|t| *t > oldest)
            .into_iter()
            .collect(),
    }
}

/// One pass at `now` (what `run` does at each firing): load the record, produce what is due.
pub async fn run_due(
    cfg: &Config,
    bus: &KafkaBus,
    lake: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>> {
    let mut record = Record::load(cfg, bus).await?;
    record.pass(cfg, bus, lake, now).await
}

/// The scheduler task of `duban run`: catch up, then produce each report when its firing comes,
/// until `stop`. A failed pass is logged and retried a minute later.
pub async fn run<C: Clock>(
    cfg: &Config,
    bus: Arc<KafkaBus>,
    lake: PathBuf,
    clock: C,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    if !cfg.reports.enabled {
        return Ok(());
    }
    let schedules = cfg.reports.schedules()?;
    if schedules.is_empty() {
        return Ok(());
    }
    let tz = cfg.reports.offset()?;
    // Waits for the broker through an outage (told once per interval).
    let mut record = crate::ops::outage::retry("reports", || Record::load(cfg, &bus)).await?;
    tokio::pin!(stop);
    loop {
        let now = clock.now();
        let wake = match record.pass(cfg, &bus, &lake, now).await {
            Ok(_) => {
                let local = super::cron::whole_seconds(now.with_timezone(&tz).naive_local());
                schedules
                    .iter()
                    .filter_map(|(_, c)| c.next_after(local))
                    .min()
                    .and_then(|t| t.and_local_timezone(tz).single())
                    .map(|t| t.with_timezone(&Utc))
            }
            Err(e) => {
                tracing::error!(target: "duban::report", "report run failed, retrying in a minute: {e:#}");
                Some(now + Duration::minutes(1))
            }
        };
        let Some(wake) = wake else {
            stop.await;
            return Ok(());
        };
        tokio::select! {
            () = clock.wait_until(wake) => {}
            () = &mut stop => return Ok(()),
        }
    }
}

/// Create `<prefix>.reports` if missing: compacted, one partition (reports are few and ordered).
pub async fn ensure_topic(bus: &KafkaBus, topic: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bus.config.bootstrap_servers)
        .create()
        .context("cannot create Kafka admin client")?;
    let new = NewTopic::new(
        topic,
        1,
        TopicReplication::Fixed(bus.config.replication_factor),
    )
    .set("cleanup.policy", "compact");
    let opts = AdminOptions::new()
        .operation_timeout(Some(Timeout::After(std::time::Duration::from_secs(30))));
    let results = admin
        .create_topics(&[new], &opts)
        .await
        .with_context(|| format!("cannot reach Kafka at {}", bus.config.bootstrap_servers))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(anyhow!("cannot create topic {name}: {code}")),
        }
    }
    Ok(())
}

/// Every record of `topic` up to its current end, as (key, value).
pub async fn read_topic(bootstrap: &str, topic: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic_blocking(&bootstrap, &topic)).await?
}

fn read_topic_blocking(bootstrap: &str, topic: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let t = std::time::Duration::from_secs(10);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .context("cannot create Kafka consumer")?;
    // A topic created a moment ago may take a little while to show its partitions.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let parts: Vec<i32> = loop {
        let md = c
            .fetch_metadata(Some(topic), t)
            .with_context(|| format!("cannot read metadata of {topic}"))?;
        let parts: Vec<i32> = md
            .topics()
            .first()
            .map(|m| m.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if !parts.is_empty() {
            break parts;
        }
        if std::time::Instant::now() > deadline {
            return Err(anyhow!("topic {topic} has no partitions"));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in &parts {
        let (lo, hi) = c
            .fetch_watermarks(topic, *p, t)
            .with_context(|| format!("cannot read offsets of {topic}/{p}"))?;
        if hi > lo {
            ends.insert(*p, hi);
            tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    c.assign(&tpl)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut done: BTreeMap<i32, bool> = ends.keys().map(|p| (*p, false)).collect();
    while done.values().any(|d| !d) {
        if std::time::Instant::now() > deadline {
            return Err(anyhow!("reading {topic} did not reach its end"));
        }
        let Some(m) = c.poll(std::time::Duration::from_millis(500)) else {
            continue;
        };
        let m = m.with_context(|| format!("reading {topic}"))?;
        if m.offset() + 1 >= ends[&m.partition()] {
            done.insert(m.partition(), true);
        }
        if let Some(v) = m.payload() {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            out.push((key, v.to_vec()));
        }
    }
    Ok(out)
}

/// The complete reports of the folder (those with their JSON), by id.
pub fn read_folder(dir: &Path) -> Result<BTreeMap<String, ReportData>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        // A stray or damaged file is no report: it is restored from the topic or produced again.
        match serde_json::from_str::<ReportData>(&text) {
            Ok(data) => {
                out.insert(data.report_id.clone(), data);
            }
            Err(e) => {
                tracing::warn!(target: "duban::report", "{} is not a report's JSON, ignored: {e}", p.display());
            }
        }
    }
    Ok(out)
}

fn read_report(dir: &Path, id: &str) -> Result<Report> {
    let read = |ext: &str| {
        let p = dir.join(format!("{id}.{ext}"));
        std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))
    };
    let json = read("json")?;
    Ok(Report {
        data: serde_json::from_str(&json)
            .with_context(|| format!("report {id}: bad JSON in the folder"))?,
        html: read("html")?,
        markdown: read("md")?,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("time")
    }

    #[test]
    fn due_firings_catch_up_from_the_last_one() {
        let daily = Cron::parse("0 30 7 * * *").expect("cron");
        let oldest = at("2026-10-01 00:00:00");
        // First start: only the latest firing.
        assert_eq!(
            due_firings(&daily, None, at("2026-11-20 09:00:00"), oldest),
            vec![at("2026-11-20 07:30:00")]
        );
        // Before the first firing of the day: yesterday's.
        assert_eq!(
            due_firings(&daily, None, at("2026-11-20 07:29:59"), oldest),
            vec![at("2026-11-19 07:30:00")]
        );
        // After three days down: each missed firing once, the recorded one not again.
        assert_eq!(
            due_firings(
                &daily,
                Some(at("2026-11-17 07:30:00")),
                at("2026-11-20 09:00:00"),
                oldest
            ),
            vec![
                at("2026-11-18 07:30:00"),
                at("2026-11-19 07:30:00"),
                at("2026-11-20 07:30:00")
            ]
        );
        assert!(
            due_firings(
                &daily,
                Some(at("2026-11-20 07:30:00")),
                at("2026-11-20 09:00:00"),
                oldest
            )
            .is_empty()
        );
        // Never further back than the catch-up window.
        let fires = due_firings(
            &daily,
            Some(at("2025-01-01 07:30:00")),
            at("2026-11-20 09:00:00"),
            at("2026-11-10 09:00:00"),
        );
        assert_eq!(fires.first(), Some(&at("2026-11-11 07:30:00")));
        assert_eq!(fires.len(), 10);
    }

    #[test]
    fn weekly_and_monthly_firings_report_on_complete_periods() {
        let weekly = Cron::parse("0 0 8 * * MON").expect("cron");
        let fires = due_firings(
            &weekly,
            Some(at("2026-11-09 08:00:00")),
            at("2026-11-24 09:00:00"),
            at("2026-10-01 00:00:00"),
        );
        let ids: Vec<String> = fires
            .iter()
            .map(|f| ReportSpec::last_complete(Period::Week, f.date()).id())
            .collect();
        assert_eq!(ids, ["week-2026-11-09", "week-2026-11-16"]);
        let monthly = Cron::parse("0 0 8 1 * *").expect("cron");
        let fires = due_firings(
            &monthly,
            None,
            at("2026-11-24 09:00:00"),
            at("2026-10-01 00:00:00"),
        );
        assert_eq!(
            ReportSpec::last_complete(Period::Month, fires[0].date()).id(),
            "month-2026-10"
        );
    }

    #[tokio::test]
    async fn manual_clock_wakes_waiters_when_moved() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-20T07:00:00+08:00")
            .expect("time")
            .with_timezone(&Utc);
        let clock = ManualClock::new(t0);
        let target = t0 + Duration::minutes(30);
        let c = clock.clone();
        let waiter = tokio::spawn(async move { c.wait_until(target).await });
        clock.set(t0 + Duration::minutes(29));
        // Let the waiter run (single-threaded test runtime): it must still be waiting.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        clock.set(target);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("woken")
            .expect("joins");
        assert_eq!(clock.now(), target);
    }
}
