//! People's Daily message-board connector: walks the paginated list (newest first) and fetches
//! the detail of each message not seen before. Position: the set of message ids taken.

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

use super::{Mode, Output, envelope, get_with_retry, http_client};
use crate::record::Channel;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    pub list_url: String,
    /// Detail URL with `{id}` for the message id.
    pub detail_url: String,
    #[serde(default = "default_page")]
    pub page_size: u32,
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_page() -> u32 {
    50
}
fn default_poll() -> u64 {
    5
}
fn default_timeout() -> u64 {
    10
}

pub async fn run(cfg: &BoardConfig, out: Output, mode: Mode) -> Result<()> {
    let client = http_client(cfg.timeout_secs)?;
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let mut page = 1u64;
        loop {
            let q = [
                ("page", page.to_string()),
                ("page_size", cfg.page_size.to_string()),
            ];
            let resp = get_with_retry(&client, "board", &cfg.list_url, &q).await?;
            let bytes = resp.bytes().await.context("board: reading list page")?;
            let list: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    out.dead_letter(
                        Channel::Board,
                        format!("board list page {page} is not JSON: {e}"),
                        &format!("page {page}"),
                        &bytes,
                    )
                    .await?;
                    break;
                }
            };
            let items = list
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total_pages = list
                .get("total_pages")
                .and_then(Value::as_u64)
                .unwrap_or(page);
            let mut new = 0;
            let mut envs = Vec::new();
            for item in &items {
                let Some(tid) = item.get("tid").map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| t.to_string())
                }) else {
                    out.dead_letter(
                        Channel::Board,
                        format!("board list page {page}: item without tid"),
                        &format!("page {page}"),
                        item.to_string().as_bytes(),
                    )
                    .await?;
                    continue;
                };
                if seen.contains(&tid) {
                    continue;
                }
                new += 1;
                let url = cfg.detail_url.replace("{id}", &tid);
                let resp = get_with_retry(&client, "board", &url, &[]).await?;
                let body = resp.bytes().await.context("board: reading detail")?;
                match serde_json::from_slice::<Value>(&body) {
                    Ok(detail) if detail.is_object() => {
                        envs.push(envelope(
                            Channel::Board,
                            &tid,
                            json!({"page": page, "tid": tid}),
                            detail,
                        ));
                    }
                    Ok(_) | Err(_) => {
                        out.dead_letter(
                            Channel::Board,
                            format!("board message {tid}: detail is not a JSON object"),
                            &url,
                            &body,
                        )
                        .await?;
                    }
                }
                seen.insert(tid);
            }
            out.emit(&envs).await?;
            // Newest first: once a whole page is known, older pages are known too.
            if page >= total_pages || items.is_empty() || (new == 0 && !seen.is_empty() && page > 1)
            {
                break;
            }
            page += 1;
        }
        if mode == Mode::Drain {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(cfg.poll_interval_secs)).await;
    }
}
