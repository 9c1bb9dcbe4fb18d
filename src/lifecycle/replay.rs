//! The lifecycle without Kafka, for `duban demo`: replays the engine's raised alerts on the
//! simulated period's own clock (each alert opens when it was raised; deadlines are checked at
//! every day's start), then writes the board's lake tables, alerts.jsonl and documents.

use anyhow::Result;
use chrono::{DateTime, Duration, FixedOffset};
use std::collections::BTreeMap;
use std::path::Path;

use super::board::Board;
use super::decide::Event;
use crate::config::Config;
use crate::record::{Alert, local_offset};

/// Replay `raised` (the engine's latest alert states) up to `until`; returns the board.
pub fn replay(
    config: &Config,
    raised: &BTreeMap<String, Alert>,
    until: DateTime<FixedOffset>,
    out_dir: &Path,
) -> Result<Board> {
    let mut board = Board::new(config.lifecycle.policy(&config.rules)?, []);
    let mut order: Vec<&Alert> = raised.values().collect();
    order.sort_by_key(|a| (a.raised_at, a.alert_id.clone()));
    let mut documents = Vec::new();
    let midnight = |t: DateTime<FixedOffset>| {
        let d = t.with_timezone(&local_offset()).date_naive() + Duration::days(1);
        d.and_hms_opt(0, 0, 1)
            .and_then(|x| x.and_local_timezone(local_offset()).single())
            .unwrap_or(t)
    };
    let mut next_tick = order.first().map(|a| midnight(a.raised_at));
    let mut tick_until = |board: &mut Board, t: DateTime<FixedOffset>, docs: &mut Vec<String>| {
        while let Some(at) = next_tick.filter(|at| *at <= t) {
            docs.extend(board.tick(at).documents);
            next_tick = Some(at + Duration::days(1));
        }
    };
    for a in order {
        tick_until(&mut board, a.raised_at, &mut documents);
        let fx = board.apply(&Event::Raised(Box::new(a.clone())), a.raised_at);
        documents.extend(fx.documents);
    }
    tick_until(&mut board, until, &mut documents);
    documents.extend(board.tick(until).documents);
    super::run::write_outputs(out_dir, &board, &documents)?;
    Ok(board)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{AlertLevel, AlertTrigger, alert_id};

    #[test]
    fn an_old_alert_is_red_and_a_recent_one_yellow_after_the_replay() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).expect("time");
        let mk = |subject: &str, at: DateTime<FixedOffset>| Alert {
            alert_id: alert_id(
                AlertTrigger::CrowdConcentration,
                subject,
                chrono::NaiveDate::default(),
            ),
            trigger: AlertTrigger::CrowdConcentration,
            level: AlertLevel::Yellow,
            subject: subject.into(),
            window_start: at.date_naive(),
            window_end: at.date_naive(),
            summary: "s".into(),
            domain: Some("城市管理".into()),
            district: Some("镜湖区".into()),
            unit: "u".into(),
            deadline: at.date_naive(),
            complaint_ids: vec![format!("{subject}-c")],
            complaint_count: 1,
            distinct_complainants: 1,
            key_terms: vec![],
            version: 1,
            raised_at: at,
            updated_at: at,
            merged_into: None,
            lifecycle: Default::default(),
        };
        let old = mk("old", t("2026-11-02T09:00:00+08:00"));
        let new = mk("new", t("2026-11-19T09:00:00+08:00"));
        let raised: BTreeMap<String, Alert> = [
            (old.alert_id.clone(), old.clone()),
            (new.alert_id.clone(), new.clone()),
        ]
        .into();
        let dir = std::env::temp_dir().join(format!("duban-replay-{}", std::process::id()));
        let board = replay(
            &Config::default(),
            &raised,
            t("2026-11-20T18:00:00+08:00"),
            &dir,
        )
        .expect("replay");
        let o = &board.alerts[&old.alert_id];
        assert_eq!(o.level, AlertLevel::Red);
        // Monday 2 Nov + 5 working days = Monday 9 Nov; escalated at the start of 10 Nov.
        assert_eq!(
            o.lifecycle.escalated_at,
            Some(t("2026-11-10T00:00:01+08:00"))
        );
        assert_eq!(board.alerts[&new.alert_id].level, AlertLevel::Yellow);
        assert!(
            dir.join(o.lifecycle.document_path.as_deref().expect("doc"))
                .exists()
        );
        assert!(
            dir.join("lake/alert_history/alert_history.parquet")
                .exists()
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
