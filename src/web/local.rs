//! In-process mode: the lifecycle's `Board` (the same `decide`) runs here on the in-process bus,
//! seeded from the folder's `alerts.jsonl`. Engine alerts not yet taken up (status `raised`) are
//! opened as yellow alerts; lifecycle states (a folder written by `run` or an earlier `serve`) are
//! restored as they are. Actions from the API arrive on the in-process `alert-actions` topic;
//! deadlines are checked on the lifecycle's tick. Every change is written back to the folder
//! (alerts.jsonl, lake `alerts` and `alert_history`, recommendation documents). Notifications are
//! logged, not sent (webhooks belong to the Kafka lifecycle with its notification log).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::BoardEvent;
use crate::bus::{MemoryBus, Topics};
use crate::config::Config;
use crate::lifecycle::api::View;
use crate::lifecycle::board::{Board, Effects};
use crate::lifecycle::clock::Clock;
use crate::lifecycle::decide::{AlertAction, Event};
use crate::record::{Alert, AlertStatus};

/// The alerts of `alerts.jsonl` (an absent file is an empty board). Errors name the line.
pub(crate) fn read_alerts(data: &Path) -> Result<Vec<Alert>> {
    let path = data.join("alerts.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Alert>(l)
                .with_context(|| format!("{}:{}: not a valid alert", path.display(), i + 1))
        })
        .collect()
}

struct Local {
    board: Board,
    data: PathBuf,
    view: Arc<RwLock<View>>,
    events: tokio::sync::broadcast::Sender<BoardEvent>,
}

impl Local {
    fn commit(&mut self, fx: Effects) -> Result<()> {
        if fx.is_empty() {
            return Ok(());
        }
        if !fx.changed.is_empty() {
            crate::lifecycle::run::write_outputs(&self.data, &self.board, &fx.documents)?;
        }
        for n in &fx.notifications {
            tracing::info!(target: "duban::web", unit = %n.unit, alert = %n.alert_id, "notification (in-process mode: logged, not sent): {}", n.title);
        }
        let mut events = Vec::new();
        {
            let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
            for (id, a) in &fx.changed {
                events.push(BoardEvent::of(a, v.alerts.get(id)));
                v.alerts.insert(id.clone(), a.clone());
            }
            for r in &fx.results {
                v.results.insert(r.action_id.clone(), r.clone());
            }
        }
        for e in events {
            let _ = self.events.send(e);
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
    cfg: &Config,
    data: &Path,
    bus: MemoryBus,
    topics: &Topics,
    view: Arc<RwLock<View>>,
    events: tokio::sync::broadcast::Sender<BoardEvent>,
    clock: Clock,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let policy = cfg.lifecycle.policy(&cfg.rules)?;
    let all = read_alerts(data)?;
    let (fresh, kept): (Vec<Alert>, Vec<Alert>) = all
        .into_iter()
        .partition(|a| a.lifecycle.status == AlertStatus::Raised);
    let mut local = Local {
        board: Board::new(policy, kept),
        data: data.to_path_buf(),
        view: view.clone(),
        events,
    };
    let now = clock.now()?;
    let mut fx = Effects::default();
    for a in fresh {
        fx.extend(local.board.apply(&Event::Raised(Box::new(a)), now));
    }
    fx.extend(local.board.tick(now));
    {
        let mut v = view.write().unwrap_or_else(|e| e.into_inner());
        v.alerts = local.board.alerts.clone();
        // Corrections made by an earlier `serve` of this folder.
        v.labels = crate::labels::latest(crate::labels::read_lake(&data.join("lake"))?);
    }
    let opened = fx.changed.len();
    local.commit(fx)?;
    tracing::info!(target: "duban::web", alerts = local.board.alerts.len(), opened, "in-process lifecycle seeded from {}", data.join("alerts.jsonl").display());

    let actions = topics.alert_actions.clone();
    let labels = topics.labels.clone();
    let tick_every = Duration::from_millis(cfg.lifecycle.tick_interval_ms.max(10));
    Ok(tokio::spawn(async move {
        let (mut offset, mut labels_offset) = (0usize, 0usize);
        let mut poll = tokio::time::interval(Duration::from_millis(20));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(()),
                _ = poll.tick() => {
                    let corrections = bus.read(&labels, labels_offset);
                    labels_offset += corrections.len();
                    let records = corrections
                        .iter()
                        .enumerate()
                        .map(|(i, r)| (format!("{labels}/{}", labels_offset - corrections.len() + i), r.value.as_slice()));
                    if crate::labels::apply_records(&local.view, records) {
                        crate::labels::write_view(&local.data.join("lake"), &local.view)?;
                    }
                    let recs = bus.read(&actions, offset);
                    if recs.is_empty() { continue; }
                    offset += recs.len();
                    let now = clock.now()?;
                    let mut fx = Effects::default();
                    for r in recs {
                        match serde_json::from_slice::<AlertAction>(&r.value) {
                            Ok(a) => fx.extend(local.board.apply(&Event::Action(a), now)),
                            Err(e) => tracing::warn!(target: "duban::web", "{actions}: not a valid alert action, skipped: {e}"),
                        }
                    }
                    local.commit(fx)?;
                }
                _ = tick.tick() => {
                    let now = match clock.now() {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::warn!(target: "duban::web", "deadline check skipped: {e:#}");
                            continue;
                        }
                    };
                    let fx = local.board.tick(now);
                    local.commit(fx)?;
                }
            }
        }
    }))
}
