//! The board's labeling queue (标注队列): the recent complaints whose labels would teach the
//! classifier most (`classify::active`: uncertainty and diversity with a trained model, diversity
//! alone with the vocabulary), not yet labeled, for a supervisor to label with one click each
//! (`POST /api/labels`, the lifecycle API's correction route).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

use super::Shared;
use super::auth::{error, role};
use crate::classify::active::{self, Embedding, SuggestConfig};
use crate::classify::features::{FeatureConfig, Featurizer};
use crate::lifecycle::decide::Role;

/// Recent complaints the queue chooses from.
const RECENT: usize = 2000;
/// Characters of a complaint's text shown.
const BODY_CHARS: usize = 300;

#[derive(Deserialize)]
pub(crate) struct QueueQuery {
    n: Option<usize>,
}

#[derive(Serialize)]
struct Item {
    complaint_id: String,
    received_at: String,
    title: String,
    body: String,
    /// The domain the engine gave it.
    domain: Option<String>,
    issue_id: Option<String>,
    /// The current model's guess and how unsure it is.
    guess: String,
    confidence: f64,
    uncertainty: Option<f32>,
}

#[derive(Serialize)]
struct Queue {
    /// The domains a label may be (one button each).
    domains: Vec<String>,
    model_version: String,
    /// `uncertainty+diversity` (a trained model) or `diversity` (the vocabulary scorer).
    mode: &'static str,
    items: Vec<Item>,
    /// Recent complaints considered, and how many of them are labeled already.
    considered: usize,
    labeled: usize,
}

fn cut(s: &str, n: usize) -> String {
    let mut t: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        t.push('…');
    }
    t
}

pub(crate) async fn queue(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let r = match role(&shared, &headers) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if r != Role::Supervisor {
        return error(
            StatusCode::FORBIDDEN,
            "标注队列仅供监督局使用 (supervisors only)",
        );
    }
    let n = q.n.unwrap_or(10).clamp(1, 100);
    let lake = shared.data.join("lake");
    let rows = match async {
        let t = crate::report::lake::LakeTables::open(&lake).await?;
        if !t.has("complaints") {
            return Ok(None);
        }
        t.rows(&format!(
            "select complaint_id, received_at, title, body, domain, issue_id from complaints \
             order by received_at desc, complaint_id limit {RECENT}"
        ))
        .await
        .map(Some)
    }
    .await
    {
        Ok(Some(rows)) => rows,
        Ok(None) => {
            return Json(Queue {
                domains: shared.domains.clone(),
                model_version: shared.classifier.version(),
                mode: "diversity",
                items: Vec::new(),
                considered: 0,
                labeled: 0,
            })
            .into_response();
        }
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("读取数据湖失败：{e:#}"),
            );
        }
    };
    let labeled: HashSet<String> = shared.alerts().labels.keys().cloned().collect();
    let shared2 = shared.clone();
    let out = tokio::task::spawn_blocking(move || {
        let get = |r: &[Option<String>], c: &str| rows.get(r, c).unwrap_or_default().to_string();
        // One row per complaint id (the newest first), labeled ones skipped.
        let mut seen = HashSet::new();
        let mut cands = Vec::new();
        let mut n_labeled = 0;
        for r in &rows.rows {
            let id = get(r, "complaint_id");
            if id.is_empty() || !seen.insert(id.clone()) {
                continue;
            }
            let issue = rows.get(r, "issue_id").map(str::to_string);
            let done = labeled.contains(&format!("complaint:{id}"))
                || issue
                    .as_ref()
                    .is_some_and(|i| labeled.contains(&format!("issue:{i}")));
            if done {
                n_labeled += 1;
            } else {
                cands.push(r.clone());
            }
        }
        let texts: Vec<crate::classify::data::Example> = cands
            .iter()
            .map(|r| crate::classify::data::Example {
                title: get(r, "title"),
                body: get(r, "body"),
                label: None,
            })
            .collect();
        let f = Featurizer::new(FeatureConfig::default());
        let raw =
            crate::classify::train::featurize_all(&f, &texts, &indicatif::ProgressBar::hidden());
        let cfg = SuggestConfig::default();
        let e = Embedding::new(&raw, f.buckets(), &cfg);
        let c = &shared2.classifier;
        c.refresh();
        let probs: Vec<Option<Vec<f32>>> = texts
            .iter()
            .map(|t| c.probabilities(&t.title, &t.body))
            .collect();
        let with_model = probs.iter().any(Option::is_some);
        let unc: Option<Vec<Option<f32>>> = with_model.then(|| {
            probs
                .iter()
                .map(|p| active::uncertainty_of(p.as_deref()))
                .collect()
        });
        let skip = vec![false; texts.len()];
        let picks = active::suggest(&e, &skip, unc.as_deref(), n, &cfg);
        let items = picks
            .iter()
            .map(|s| {
                let r = &cands[s.row];
                let t = &texts[s.row];
                let (guess, confidence) = c.classify(&t.title, &t.body);
                Item {
                    complaint_id: get(r, "complaint_id"),
                    received_at: get(r, "received_at"),
                    title: t.title.clone(),
                    body: cut(&t.body, BODY_CHARS),
                    domain: rows.get(r, "domain").map(str::to_string),
                    issue_id: rows.get(r, "issue_id").map(str::to_string),
                    guess,
                    confidence,
                    uncertainty: s.uncertainty,
                }
            })
            .collect();
        Queue {
            domains: shared2.domains.clone(),
            model_version: c.version(),
            mode: if with_model {
                "uncertainty+diversity"
            } else {
                "diversity"
            },
            items,
            considered: seen.len(),
            labeled: n_labeled,
        }
    })
    .await;
    match out {
        Ok(q) => Json(q).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("标注队列计算失败：{e}"),
        ),
    }
}
