//! City-portal connector (市长信箱): scrapes the HTML list pages and each letter's detail page with
//! the CSS selectors of connectors/portal.toml. Position: the set of letter numbers taken.

use anyhow::{Result, anyhow};
use scraper::{Html, Selector};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

use super::board::{Details, ListWalk, Taken};
use super::feed::{Feed, HttpPolicy, resolve};
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

pub async fn run(cfg: &PortalConfig, sink: &Sink, pos: Positions, mode: Mode) -> Result<()> {
    let scraper = Scraper::new(cfg)?;
    let feed = Feed::new(
        "portal",
        &cfg.http,
        mode,
        sink.metrics.clone(),
        &cfg.list_url,
    )?;
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
                    // A link that does not resolve is taken as a refused detail (dead letter).
                    let link = resolve(&url, &href).map_or(href, |u| u.to_string());
                    links.entry(no).or_insert(link);
                }
                let go_on = walk.page(&ids);
                match next.map(|n| resolve(&url, &n)) {
                    Some(Ok(n)) if go_on && pages < 100_000 && feed.owns(&n) => url = n.to_string(),
                    Some(Ok(n)) if go_on && !feed.owns(&n) => {
                        tracing::warn!(target: "duban::connectors", feed = "portal", host = n.host_str().unwrap_or(""), "the next-page link leads to another host: not followed");
                        break;
                    }
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
    use std::sync::Arc;

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

    /// A letter whose link leads to another host: never requested (so the feed's token never
    /// goes there), dead-lettered with the reason; the letter on the feed's host is taken.
    #[tokio::test]
    async fn links_to_other_hosts_are_not_followed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let serve = |app: axum::Router| async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = l.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(l, app).await });
            format!("http://{addr}")
        };
        let stolen = Arc::new(AtomicUsize::new(0));
        let s2 = stolen.clone();
        let evil = serve(axum::Router::new().fallback(move || {
            s2.fetch_add(1, Ordering::SeqCst);
            async { "<div class=\"letter\"></div>" }
        }))
        .await;
        let list = format!(
            r#"<table class="letter-list"><tr><td class="no">L2</td><td class="title"><a href="{evil}/L2.html">t</a></td></tr><tr><td class="no">L1</td><td class="title"><a href="/portal/letters/L1.html">t</a></td></tr></table>"#
        );
        let home = serve(
            axum::Router::new()
                .route("/portal/letters", axum::routing::get(move || async move { axum::response::Html(list) }))
                .route(
                    "/portal/letters/L1.html",
                    axum::routing::get(|| async {
                        axum::response::Html(r#"<div class="letter"><h1 class="title">t</h1><span class="no">L1</span><span class="time">2026-11-01 10:00:00</span><div class="content">内容</div></div>"#)
                    }),
                ),
        )
        .await;
        let mut c = cfg();
        c.list_url = format!("{home}/portal/letters?page=1");
        let bus = crate::bus::MemoryBus::new();
        let topics = crate::bus::Topics::new("t");
        let sink = Sink::open(&crate::bus::Bus::Memory(bus.clone()), &topics, "portal")
            .await
            .expect("sink");
        run(&c, &sink, Positions::new(), Mode::Drain)
            .await
            .expect("drains");
        assert_eq!(
            stolen.load(Ordering::SeqCst),
            0,
            "no request to the other host"
        );
        let raw = bus.read(&topics.raw, 0);
        assert_eq!(raw.len(), 1);
        let dead = bus.read(&topics.dlq, 0);
        assert_eq!(dead.len(), 1);
        let d: crate::record::DeadLetter = serde_json::from_slice(&dead[0].value).expect("dlq");
        assert!(
            d.reason.contains("L2") && d.reason.contains("another host"),
            "{}",
            d.reason
        );
    }
}
