//! People's Daily message-board connector: walks the paginated list (newest first), then fetches
//! the details of the messages not taken yet, oldest first. Position: the ids taken.

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

use super::feed::{Feed, HttpPolicy, Refused, path_segment};
use super::fields::FieldMap;
use super::{Commit, Mode, Positions, Sink, check_url, dead_letter, envelope, pause};
use crate::record::Channel;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    pub list_url: String,
    /// Detail URL with `{id}` for the message id.
    pub detail_url: String,
    /// Messages per list page (1..=100). Default 50.
    #[serde(default = "default_page")]
    pub page_size: u32,
    /// Pause between passes over the list, seconds. Default 5.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Messages per commit. Default 50.
    #[serde(default = "default_batch")]
    pub records_per_commit: usize,
    /// Ids remembered (the most recent ones); older messages are never on the first pages. Default 50000.
    #[serde(default = "default_remember")]
    pub remember_ids: usize,
    /// Timeouts, retries, rate limit, circuit breaker, auth.
    #[serde(default)]
    pub http: HttpPolicy,
    /// Raw-shape field → the detail's names for it (first present wins); others go to `extra`.
    #[serde(default)]
    pub fields: BTreeMap<String, Vec<String>>,
    /// Fields a message must carry; without one it goes to the dead-letter topic.
    #[serde(default)]
    pub required: Vec<String>,
}

impl BoardConfig {
    pub fn validate(&self) -> Result<()> {
        check_url("list_url", &self.list_url)?;
        check_url("detail_url", &self.detail_url)?;
        self.http.validate("http")?;
        if !self.detail_url.contains("{id}") {
            anyhow::bail!("`detail_url` must contain {{id}}");
        }
        if !(1..=100).contains(&self.page_size) {
            anyhow::bail!(
                "`page_size` must be between 1 and 100, got {}",
                self.page_size
            );
        }
        FieldMap::checked("", &self.fields, &self.required)?;
        Ok(())
    }
}

fn default_page() -> u32 {
    50
}
fn default_poll() -> u64 {
    5
}
fn default_batch() -> usize {
    50
}
fn default_remember() -> usize {
    50_000
}

/// Ids taken, oldest first (bounded), as stored in the position.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    order: std::collections::VecDeque<String>,
    set: HashSet<String>,
    cap: usize,
}

impl Taken {
    pub fn from_position(p: Option<&Value>, cap: usize) -> Taken {
        let mut t = Taken::bounded(cap);
        for id in p
            .and_then(|p| p.get("taken"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            t.insert(id.to_string());
        }
        t
    }
    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }
    /// Remember `id`; returns the ids forgotten to stay within the bound (oldest first).
    pub fn insert(&mut self, id: String) -> Vec<String> {
        let mut evicted = Vec::new();
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                    evicted.push(old);
                }
            }
        }
        evicted
    }
    /// The ids that `n` new insertions would forget to stay within the bound (oldest first).
    pub fn evicted_by(&self, n: usize) -> Vec<String> {
        let over = (self.order.len() + n).saturating_sub(self.cap);
        self.order.iter().take(over).cloned().collect()
    }
    /// An empty set holding at most `cap` ids.
    pub fn bounded(cap: usize) -> Taken {
        Taken {
            cap: cap.max(1),
            ..Taken::default()
        }
    }
    pub fn to_position(&self) -> Value {
        json!({ "taken": self.order })
    }
}

/// One pass over a newest-first list: the new ids, newest first. Stops at the first page whose
/// items were all taken before the pass began (older pages were taken too: we take oldest first).
pub struct ListWalk<'a> {
    taken: &'a Taken,
    found: Vec<String>,
    found_set: HashSet<String>,
}

impl<'a> ListWalk<'a> {
    pub fn new(taken: &'a Taken) -> ListWalk<'a> {
        ListWalk {
            taken,
            found: Vec::new(),
            found_set: HashSet::new(),
        }
    }
    /// Add a page's ids; returns false when the page brought nothing new (every id taken
    /// before the pass, or seen earlier in it): the walk can stop.
    pub fn page(&mut self, ids: &[String]) -> bool {
        let mut news = false;
        for id in ids {
            if !self.taken.contains(id) && self.found_set.insert(id.clone()) {
                self.found.push(id.clone());
                news = true;
            }
        }
        news
    }
    /// New ids found so far.
    pub fn len(&self) -> usize {
        self.found.len()
    }
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
    /// The new ids, oldest first.
    pub fn oldest_first(self) -> Vec<String> {
        self.found.into_iter().rev().collect()
    }
}

/// What fetching one new item gave: a record, or a dead letter naming it and why.
#[derive(Debug)]
pub enum Fetched {
    Record(crate::record::RawEnvelope),
    Dead(crate::record::DeadLetter),
}

/// A list-and-detail feed's way of turning one new item (by its list id) into a record.
pub trait ItemSource {
    /// Fetch the item `id`. `Ok(None)` skips it (it is not taken); an error ends the pass.
    fn fetch(&self, feed: &Feed, id: &str) -> impl Future<Output = Result<Option<Fetched>>>;
}

/// Fetch the new items `new` (oldest first) and commit them `per_commit` at a time with the
/// ids taken, so a restart goes on after the last committed item.
pub async fn take_items<S: ItemSource>(
    src: &S,
    feed: &Feed,
    sink: &Sink,
    taken: &mut Taken,
    new: &[String],
    per_commit: usize,
) -> Result<()> {
    take_items_with(src, feed, sink, taken, new, per_commit, |_, _| None).await
}

/// As [`take_items`]; `also` may add a position (sub key, value) for an item, committed with it.
pub async fn take_items_with<S: ItemSource>(
    src: &S,
    feed: &Feed,
    sink: &Sink,
    taken: &mut Taken,
    new: &[String],
    per_commit: usize,
    mut also: impl FnMut(&str, &Fetched) -> Option<(String, Value)>,
) -> Result<()> {
    for chunk in new.chunks(per_commit.max(1)) {
        let mut c = Commit::default();
        for id in chunk {
            let Some(f) = src.fetch(feed, id).await? else {
                continue;
            };
            c.positions.extend(also(id, &f));
            match f {
                Fetched::Record(e) => c.records.push(e),
                Fetched::Dead(d) => c.dead.push(d),
            }
            taken.insert(id.clone());
        }
        c.positions.push((String::new(), taken.to_position()));
        sink.commit(c).await?;
    }
    Ok(())
}

/// The items of a list-and-detail feed (board messages, portal letters): what they are called,
/// where each one's detail is and how a detail becomes the record's payload.
pub struct Details<U, P> {
    pub channel: Channel,
    /// What an item is, for dead-letter reasons (`board message`).
    pub noun: &'static str,
    /// The key of the item's id in its envelope's position (`tid`).
    pub id_key: &'static str,
    /// The detail URL of an item; None skips it (not taken).
    pub url_of: U,
    pub parse: P,
}

impl<U, P> ItemSource for Details<U, P>
where
    U: Fn(&str) -> Option<String>,
    P: Fn(&[u8]) -> Result<Value, String>,
{
    /// A detail becomes a raw envelope, or a dead letter naming the item and why (a refused
    /// request, a detail that does not parse); any other feed error ends the pass.
    async fn fetch(&self, feed: &Feed, id: &str) -> Result<Option<Fetched>> {
        let (channel, noun) = (self.channel, self.noun);
        let Some(url) = (self.url_of)(id) else {
            return Ok(None);
        };
        let body = match feed.get(&url, &[]).await {
            Ok(b) => b,
            Err(e) if e.downcast_ref::<Refused>().is_some() => {
                let why = format!("{noun} {id}: detail {e:#}");
                return Ok(Some(Fetched::Dead(dead_letter(channel, why, &url, &[]))));
            }
            Err(e) => return Err(e),
        };
        feed.metrics().received(1, body.len());
        Ok(Some(match (self.parse)(&body) {
            Ok(payload) => {
                let position = json!({ self.id_key: id });
                Fetched::Record(envelope(channel, id, position, payload, None))
            }
            Err(why) => {
                let why = format!("{noun} {id}: {why}");
                Fetched::Dead(dead_letter(channel, why, &url, &body))
            }
        }))
    }
}

impl<U, P> Details<U, P>
where
    U: Fn(&str) -> Option<String>,
    P: Fn(&[u8]) -> Result<Value, String>,
{
    /// Fetch the details of `new` (oldest first) and commit them `per_commit` at a time.
    pub async fn take(
        &self,
        feed: &Feed,
        sink: &Sink,
        taken: &mut Taken,
        new: &[String],
        per_commit: usize,
    ) -> Result<()> {
        take_items(self, feed, sink, taken, new, per_commit).await
    }
}

fn tid_of(item: &Value) -> Option<String> {
    let t = item.get("tid")?;
    Some(
        t.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| t.to_string()),
    )
}

pub async fn run(cfg: &BoardConfig, sink: &Sink, pos: Positions, mode: Mode) -> Result<()> {
    let feed = Feed::new(
        "board",
        &cfg.http,
        mode,
        sink.metrics.clone(),
        &cfg.list_url,
    )?;
    let map = FieldMap::checked("", &cfg.fields, &cfg.required)?;
    let mut taken = Taken::from_position(pos.get(""), cfg.remember_ids);
    loop {
        let new = {
            let mut walk = ListWalk::new(&taken);
            let mut page = 1u64;
            loop {
                let q = [
                    ("page", page.to_string()),
                    ("page_size", cfg.page_size.to_string()),
                ];
                let bytes = feed.get(&cfg.list_url, &q).await?;
                let list: Value = serde_json::from_slice(&bytes)
                    .with_context(|| format!("board list page {page} is not JSON"))?;
                let items = list
                    .get("items")
                    .and_then(Value::as_array)
                    .with_context(|| format!("board list page {page} has no `items`"))?;
                let total_pages = list
                    .get("total_pages")
                    .and_then(Value::as_u64)
                    .unwrap_or(page);
                let ids: Vec<String> = items.iter().filter_map(tid_of).collect();
                if !walk.page(&ids) || page >= total_pages {
                    break;
                }
                page += 1;
            }
            walk.oldest_first()
        };
        let details = Details {
            channel: Channel::Board,
            noun: "board message",
            id_key: "tid",
            url_of: |tid: &str| Some(cfg.detail_url.replace("{id}", &path_segment(tid))),
            parse: |body: &[u8]| {
                serde_json::from_slice::<Value>(body)
                    .map_err(|e| format!("detail is not JSON ({e})"))
                    .and_then(|d| map.apply(&d))
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

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn walk_takes_new_ids_oldest_first_and_stops_at_a_known_page() {
        let mut taken = Taken::from_position(None, 100);
        for id in ["3", "2", "1"] {
            taken.insert(id.into());
        }
        let mut w = ListWalk::new(&taken);
        assert!(w.page(&ids(&["7", "6", "5"])));
        // A duplicate page: items of the previous page again, then the real ones.
        assert!(w.page(&ids(&["6", "5", "4", "3"])));
        assert!(
            !w.page(&ids(&["3", "2", "1"])),
            "a known page ends the walk"
        );
        assert_eq!(w.oldest_first(), ids(&["4", "5", "6", "7"]));
    }

    #[test]
    fn taken_is_bounded_and_round_trips() {
        let mut t = Taken::from_position(None, 2);
        for id in ["a", "b", "c"] {
            t.insert(id.into());
        }
        assert!(!t.contains("a") && t.contains("b") && t.contains("c"));
        let back = Taken::from_position(Some(&t.to_position()), 2);
        assert!(back.contains("b") && back.contains("c") && !back.contains("a"));
    }

    /// Ids go into the detail URL as one encoded path segment: an id holding `/`, `..` or `?`
    /// asks for that message on the feed, never for another path.
    #[tokio::test]
    async fn ids_are_encoded_into_the_detail_url() {
        use std::sync::{Arc, Mutex};
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let a = asked.clone();
        let app = axum::Router::new()
            .route(
                "/board/api/messages",
                axum::routing::get(|| async {
                    axum::Json(json!({"items": [{"tid": "../../admin?x=1"}, {"tid": 7}], "total_pages": 1}))
                }),
            )
            .fallback(move |uri: axum::http::Uri| {
                a.lock().expect("log").push(uri.to_string());
                let tid = uri.path().rsplit('/').next().unwrap_or("").to_string();
                async move {
                    axum::Json(json!({"tid": tid, "content": "路灯不亮", "created_at": "2026-11-01 10:00:00"}))
                }
            });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });
        let cfg = BoardConfig {
            list_url: format!("http://{addr}/board/api/messages"),
            detail_url: format!("http://{addr}/board/api/messages/{{id}}"),
            page_size: 50,
            poll_interval_secs: 1,
            records_per_commit: 50,
            remember_ids: 100,
            http: HttpPolicy::default(),
            fields: BTreeMap::new(),
            required: vec!["content".into()],
        };
        let bus = crate::bus::MemoryBus::new();
        let topics = crate::bus::Topics::new("t");
        let sink = Sink::open(&crate::bus::Bus::Memory(bus.clone()), &topics, "board")
            .await
            .expect("sink");
        run(&cfg, &sink, Positions::new(), Mode::Drain)
            .await
            .expect("drains");
        let mut got = asked.lock().expect("log").clone();
        got.sort();
        assert_eq!(
            got,
            [
                "/board/api/messages/..%2F..%2Fadmin%3Fx%3D1",
                "/board/api/messages/7"
            ]
        );
        assert_eq!(bus.read(&topics.raw, 0).len(), 2, "both messages taken");
    }
}
