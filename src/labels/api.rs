//! `POST /api/labels` (a supervisor corrects the domain of a complaint or an issue) and
//! `GET /api/labels` (the latest corrections), on the lifecycle's API: the correction goes to the
//! labels topic, and an issue's open alerts are re-routed through the lifecycle's actions topic.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;

use super::{Label, LabelTarget, reroutes};
use crate::engine::units::UnitTable;
use crate::lifecycle::api::{Api, caller, error, forbidden};
use crate::lifecycle::decide::Role;

/// What the API needs to accept corrections.
pub struct LabelDesk {
    /// `<prefix>.labels`.
    pub topic: String,
    /// The lake to look a corrected complaint's issue and domain up in (none: not looked up).
    pub lake: Option<PathBuf>,
    /// The taxonomy's domains: the only values a correction may set.
    pub domains: Vec<String>,
    pub units: UnitTable,
}

impl LabelDesk {
    /// The desk of a configuration: its taxonomy's domains and unit table, the labels topic of
    /// `topics`, the lake of the data folder `data` (if any).
    pub fn from_config(
        config: &crate::config::Config,
        topics: &crate::bus::Topics,
        data: Option<&std::path::Path>,
    ) -> anyhow::Result<LabelDesk> {
        let tax = crate::engine::taxonomy::Taxonomy::load(config.taxonomy.path.as_deref())?;
        Ok(LabelDesk {
            topic: topics.labels.clone(),
            lake: data.map(|d| d.join("lake")),
            domains: tax.domain.iter().map(|d| d.name.clone()).collect(),
            units: crate::engine::units::load(config.units.path.as_deref())?,
        })
    }
}

/// Body of `POST /api/labels`: exactly one of `complaint_id` and `issue_id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelBody {
    #[serde(default)]
    pub complaint_id: Option<String>,
    #[serde(default)]
    pub issue_id: Option<String>,
    pub domain: String,
    #[serde(default)]
    pub reason: Option<String>,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A complaint's issue and domain as the lake has them (its newest version).
async fn complaint_in_lake(
    lake: &std::path::Path,
    id: &str,
) -> anyhow::Result<Option<(Option<String>, Option<String>)>> {
    let tables = crate::report::lake::LakeTables::open(lake).await?;
    if !tables.has("complaints") {
        return Ok(None);
    }
    let rows = tables
        .select(
            "complaints",
            &["issue_id", "domain", "source_version"],
            &format!("where complaint_id = {}", quote(id)),
        )
        .await?;
    let newest = rows.rows.iter().max_by_key(|r| {
        rows.get(r, "source_version")
            .unwrap_or_default()
            .to_string()
    });
    Ok(newest.map(|r| {
        (
            rows.get(r, "issue_id").map(str::to_string),
            rows.get(r, "domain").map(str::to_string),
        )
    }))
}

pub(crate) async fn list(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&api, &headers) {
        return *r;
    }
    let labels: Vec<Label> = api.read().labels.values().cloned().collect();
    Json(labels).into_response()
}

pub(crate) async fn post(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Option<Json<LabelBody>>,
) -> Response {
    // The actor is the token holder's name (issue 21, item 3), never a header.
    let (role, actor, token) = match caller(&api, &headers) {
        Ok((c, t)) => (c.role.clone(), c.name.clone(), t),
        Err(r) => return *r,
    };
    if role != Role::Supervisor {
        return forbidden(&role, "label", "only a supervisor corrects domains");
    }
    if let Err(r) = api.throttle(&token, &role) {
        return *r;
    }
    let Some(desk) = api.labels_desk() else {
        return error(
            StatusCode::NOT_FOUND,
            "domain corrections are not enabled here",
        );
    };
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "a correction needs a JSON body: {\"complaint_id\" or \"issue_id\", \"domain\"}",
        );
    };
    let n = body.reason.as_deref().map_or(0, str::len);
    if n > crate::lifecycle::api::MAX_TEXT_BYTES {
        let max = crate::lifecycle::api::MAX_TEXT_BYTES;
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("`reason` has {n} bytes; at most {max}"),
        );
    }
    let domain = body.domain.trim().to_string();
    if !desk.domains.contains(&domain) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("field `domain`: `{domain}` is not a domain of the taxonomy"),
        );
    }
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let (target, complaint_id, mut issue_id) =
        match (nonempty(body.complaint_id), nonempty(body.issue_id)) {
            (Some(c), None) => (LabelTarget::Complaint, Some(c), None),
            (None, Some(i)) => (LabelTarget::Issue, None, Some(i)),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "give exactly one of the fields `complaint_id` and `issue_id`",
                );
            }
        };
    let old_domain = match (&target, &complaint_id, &desk.lake) {
        (LabelTarget::Complaint, Some(id), Some(lake)) => match complaint_in_lake(lake, id).await {
            Ok(Some((issue, old))) => {
                issue_id = issue;
                old
            }
            Ok(None) => {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no complaint {id} in the lake"),
                );
            }
            Err(e) => {
                tracing::warn!(target: "duban::labels", "looking up a complaint in the lake failed: {e:#}");
                None
            }
        },
        (LabelTarget::Issue, _, _) => {
            let view = api.read();
            let issue = issue_id.as_deref().unwrap_or_default();
            view.alerts
                .values()
                .find(|a| a.subject == issue && a.domain.is_some())
                .and_then(|a| a.domain.clone())
        }
        _ => None,
    };
    let at = match api.clock().now() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    };
    let label = Label {
        label_id: api.new_id("label"),
        target,
        complaint_id,
        issue_id,
        old_domain,
        domain,
        actor,
        role: role.to_string(),
        at,
        reason: body.reason.unwrap_or_default(),
    };
    let actions = reroutes(&label, &api.read().alerts, &desk.units);
    let bytes = match serde_json::to_vec(&label) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(e) = api.bus().send(&desk.topic, &label.key(), bytes).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"));
    }
    for a in &actions {
        let bytes = match serde_json::to_vec(a) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        if let Err(e) = api
            .bus()
            .send(api.actions_topic(), &a.alert_id, bytes)
            .await
        {
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"));
        }
    }
    tracing::info!(target: "duban::labels", label = %label.label_id, target = label.target.as_str(), domain = %label.domain, reroutes = actions.len(), "domain corrected");
    // Wait for the lifecycle to apply the re-routes, so the caller sees the outcome.
    let until = Instant::now() + api.wait();
    let (mut rerouted, mut refused) = (Vec::new(), Vec::new());
    let mut pending: Vec<&str> = actions.iter().map(|a| a.action_id.as_str()).collect();
    while !pending.is_empty() && Instant::now() < until {
        {
            let view = api.read();
            pending.retain(|id| match view.results.get(*id) {
                Some(r) if r.applied => {
                    rerouted.push(r.alert_id.clone());
                    false
                }
                Some(r) => {
                    refused.push(serde_json::json!({"alert_id": r.alert_id, "reason": r.reason}));
                    false
                }
                None => true,
            });
        }
        if !pending.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
    let status = if pending.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (
        status,
        Json(serde_json::json!({
            "label": label,
            "rerouted": rerouted,
            "refused": refused,
            "pending": pending,
        })),
    )
        .into_response()
}
