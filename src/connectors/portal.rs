//! City-portal connector (市长信箱): scrapes the HTML list pages and each letter's detail page with
//! the CSS selectors of connectors/portal.toml. Position: the set of letter numbers taken.

use anyhow::{Result, anyhow};
use scraper::{Html, Selector};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

use super::board::{Details, ListWalk, Taken};
use super::feed::{Feed, HttpPolicy};
use super::{Mode, Positions, Sink, pause};
use crate::record::Channel;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    pub list_url: String,
    /// Pause between passes over the list, seconds. Default 10.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Letters per commit. Default 50.
    #[serde(default = "default_batch")]
    pub records_per_commit: usize,
    /// Letter numbers remembered (the most recent ones). Default 50000.
    #[serde(default = "default_remember")]
    pub remember_ids: usize,
    /// Timeouts, retries, rate limit, circuit breaker, auth.
    #[serde(default)]
    pub http: HttpPolicy,
    pub list: ListSelectors,
    /// Detail field → selector.
    pub detail: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSelectors {
    pub row: String,
    pub link: String,
    pub id: String,
    pub next: String,
}

fn default_poll() -> u64 {
    10
}
fn default_batch() -> usize {
    50
}
fn default_remember() -> usize {
    50_000
}

const REQUIRED: [&str; 4] = ["title", "no", "time", "content"];

fn selector(field: &str, s: &str) -> Result<Selector> {
    Selector::parse(s).map_err(|e| {
        anyhow!("connectors/portal.toml: selector for `{field}` is invalid ({s}): {e}")
    })
}

/// Compiled selectors; invalid ones fail at start naming the field.
pub struct Scraper {
    row: Selector,
    link: Selector,
    id: Selector,
    next: Selector,
    detail: Vec<(String, Selector)>,
}

impl Scraper {
    pub fn new(cfg: &PortalConfig) -> Result<Scraper> {
        for f in REQUIRED {
            if !cfg.detail.contains_key(f) {
                anyhow::bail!("[detail] lacks the required field `{f}`");
            }
        }
        Ok(Scraper {
            row: selector("list.row", &cfg.list.row)?,
            link: selector("list.link", &cfg.list.link)?,
            id: selector("list.id", &cfg.list.id)?,
            next: selector("list.next", &cfg.list.next)?,
            detail: cfg
                .detail
                .iter()
                .map(|(k, v)| Ok((k.clone(), selector(&format!("detail.{k}"), v)?)))
                .collect::<Result<_>>()?,
        })
    }

    /// (letter number, detail href) per row, and the next page's href.
    pub fn list(&self, html: &str) -> (Vec<(String, String)>, Option<String>) {
        let doc = Html::parse_document(html);
        let rows = doc
            .select(&self.row)
            .filter_map(|r| {
                let id = r
                    .select(&self.id)
                    .next()?
                    .text()
                    .collect::<String>()
                    .trim()
                    .to_string();
                let href = r
                    .select(&self.link)
                    .next()?
                    .value()
                    .attr("href")?
                    .to_string();
                (!id.is_empty()).then_some((id, href))
            })
            .collect();
        let next = doc
            .select(&self.next)
            .next()
            .and_then(|a| a.value().attr("href"))
            .map(str::to_string);
        (rows, next)
    }

    /// The detail page's fields; an error names the missing required field.
    pub fn detail(&self, html: &str) -> Result<Value> {
        let doc = Html::parse_document(html);
        let mut obj = Map::new();
        for (field, sel) in &self.detail {
            if let Some(el) = doc.select(sel).next() {
                let text = el.text().collect::<Vec<_>>().join("");
                obj.insert(field.clone(), Value::String(text.trim().to_string()));
            }
        }
        for f in REQUIRED {
            if obj.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                anyhow::bail!("field `{f}` is missing or empty");
            }
        }
        Ok(Value::Object(obj))
    }
}

fn absolute(base: &str, href: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        return href.to_string();
    }
    let origin_end = base
        .find("://")
        .and_then(|s| base[s + 3..].find('/').map(|p| s + 3 + p))
        .unwrap_or(base.len());
    if href.starts_with('/') {
        format!("{}{href}", &base[..origin_end])
    } else if href.starts_with('?') {
        let path_end = base.find('?').unwrap_or(base.len());
        format!("{}{href}", &base[..path_end])
    } else {
        let dir_end = base[..base.find('?').unwrap_or(base.len())]
            .rfind('/')
            .map_or(base.len(), |p| p + 1);
        format!("{}{href}", &base[..dir_end])
    }
}

pub async fn run(cfg: &PortalConfig, sink: &Sink, pos: Positions, mode: Mode) -> Result<()> {
    let scraper = Scraper::new(cfg)?;
    let feed = Feed::new("portal", &cfg.http, mode, sink.metrics.clone())?;
    let mut taken = Taken::from_position(pos.get(""), cfg.remember_ids);
    loop {
        // Walk the list pages (newest first) and note each new letter's detail link.
        let mut links: HashMap<String, String> = HashMap::new();
        let new = {
            let mut walk = ListWalk::new(&taken);
            let mut url = cfg.list_url.clone();
            let mut pages = 0;
            loop {
                pages += 1;
                let body = feed.get(&url, &[]).await?;
                let html = String::from_utf8_lossy(&body);
                let (rows, next) = scraper.list(&html);
                let ids: Vec<String> = rows.iter().map(|(no, _)| no.clone()).collect();
                for (no, href) in rows {
                    links.entry(no).or_insert_with(|| absolute(&url, &href));
                }
                let go_on = walk.page(&ids);
                match next {
                    Some(n) if go_on && pages < 100_000 => url = absolute(&url, &n),
                    _ => break,
                }
            }
            walk.oldest_first()
        };
        let details = Details {
            channel: Channel::Portal,
            noun: "portal letter",
            id_key: "no",
            url_of: |no: &str| links.get(no).cloned(),
            parse: |page: &[u8]| {
                scraper
                    .detail(&String::from_utf8_lossy(page))
                    .map_err(|e| e.to_string())
            },
        };
        details
            .take(&feed, sink, &mut taken, &new, cfg.records_per_commit)
            .await?;
        if mode == Mode::Drain {
            return Ok(());
        }
        pause(cfg.poll_interval_secs).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PortalConfig {
        crate::config::load_toml(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/connectors/portal.toml"
        )))
        .expect("config")
    }

    #[test]
    fn scrapes_list_and_detail() {
        let s = Scraper::new(&cfg()).expect("selectors");
        let (rows, next) = s.list(r#"<table class="letter-list"><tr><td class="no">L1</td><td class="title"><a href="/portal/letters/L1.html">t</a></td></tr></table><a class="next" href="/portal/letters?page=2">下一页</a>"#);
        assert_eq!(
            rows,
            vec![("L1".to_string(), "/portal/letters/L1.html".to_string())]
        );
        assert_eq!(next.as_deref(), Some("/portal/letters?page=2"));
        let d = s
            .detail(r#"<div class="letter"><h1 class="title">路灯 &amp; 井盖</h1><span class="no">L1</span><span class="time">2026-11-01 10:00:00</span><div class="content">内容</div></div>"#)
            .expect("detail");
        assert_eq!(d["title"], "路灯 & 井盖");
        let err = s
            .detail(r#"<div class="letter"><h1 class="title">t</h1></div>"#)
            .expect_err("missing fields");
        assert!(
            err.to_string().contains("`content`") || err.to_string().contains("`no`"),
            "{err}"
        );
    }

    #[test]
    fn bad_selector_names_the_field() {
        let mut c = cfg();
        c.list.row = "tr[".into();
        let err = Scraper::new(&c).err().expect("invalid selector");
        assert!(err.to_string().contains("list.row"), "{err}");
    }

    #[test]
    fn resolves_links() {
        assert_eq!(
            absolute(
                "http://h:1/portal/letters?page=1",
                "/portal/letters/L1.html"
            ),
            "http://h:1/portal/letters/L1.html"
        );
        assert_eq!(
            absolute("http://h:1/portal/letters?page=1", "?page=2"),
            "http://h:1/portal/letters?page=2"
        );
        assert_eq!(
            absolute("http://h:1/portal/letters?page=1", "L1.html"),
            "http://h:1/portal/L1.html"
        );
    }
}
