//! JSON API sources of a connector profile: the list walked page by page (newest first) with the
//! profile's paging, then each new item's detail (parts picked by a field's value), mapped.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

use super::mapping::{Mapping, Pointer, text_of};
use super::request::RequestSpec;
use super::template::Var;
use super::{Kind, Paging, PagingKind, Profile};
use crate::connectors::board::{Fetched, ItemSource, ListWalk, Taken, take_items_with};
use crate::connectors::feed::{self, Answer, Feed, Refused};
use crate::connectors::{Commit, Mode, Positions, Sink, dead_letter, envelope, pause};

/// Where a walk over a list's pages is, and when it stops.
pub struct Pager<'a> {
    spec: Option<&'a Paging>,
    pub page: i64,
    pub offset: i64,
    pub cursor: String,
    /// The next page's URL (next-link paging).
    pub next: Option<String>,
    pages: u64,
    quiet: u32,
}

/// What one list page showed.
#[derive(Debug, Default)]
pub struct PageSeen {
    pub records: usize,
    /// Did it bring an id not taken and not seen earlier in this walk?
    pub news: bool,
    pub cursor: Option<String>,
    pub next: Option<String>,
    pub total_pages: Option<i64>,
    pub has_more: Option<bool>,
}

impl<'a> Pager<'a> {
    pub fn new(spec: Option<&'a Paging>) -> Pager<'a> {
        Pager {
            spec,
            page: spec.map_or(1, |g| g.first_page),
            offset: 0,
            cursor: spec.map(|g| g.first_cursor.clone()).unwrap_or_default(),
            next: None,
            pages: 0,
            quiet: 0,
        }
    }

    /// The first page is being asked.
    pub fn first(&self) -> bool {
        self.pages == 0
    }

    /// Pages asked so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// `${cursor}`, `${page}`, `${offset}`, `${page_size}` of the next request.
    pub fn vars(&self) -> Vec<(&'static str, Var)> {
        vec![
            ("cursor", Var::Text(self.cursor.clone())),
            ("page", Var::Int(self.page)),
            ("offset", Var::Int(self.offset)),
            ("page_size", Var::Int(self.spec.map_or(20, |g| g.page_size))),
        ]
    }

    /// After a page: move on, or stop (false). An empty page, an empty or repeated cursor, a
    /// missing next link, `has_more = false`, the last of `total_pages`, `max_pages`, and more
    /// than `lookback_pages` pages without news stop the walk; so does a short page when the
    /// profile says so.
    pub fn advance(&mut self, seen: PageSeen) -> bool {
        self.pages += 1;
        let Some(g) = self.spec else {
            return false;
        };
        if g.kind == PagingKind::None || seen.records == 0 {
            return false;
        }
        if self.pages >= g.max_pages {
            tracing::warn!(target: "duban::connectors", pages = self.pages, "stopping at max_pages");
            return false;
        }
        if g.short_page_stops && (seen.records as i64) < g.page_size {
            return false;
        }
        if seen.has_more == Some(false) {
            return false;
        }
        if seen
            .total_pages
            .is_some_and(|t| self.page - g.first_page + 1 >= t)
        {
            return false;
        }
        if seen.news {
            self.quiet = 0;
        } else {
            self.quiet += 1;
            if self.quiet > g.lookback_pages {
                return false;
            }
        }
        self.offset += seen.records as i64;
        match g.kind {
            PagingKind::None => return false,
            PagingKind::Page | PagingKind::Offset => self.page += 1,
            PagingKind::Cursor => match seen.cursor {
                Some(c) if !c.is_empty() && c != self.cursor => self.cursor = c,
                _ => return false,
            },
            PagingKind::Next => match seen.next {
                Some(n) if self.next.as_ref() != Some(&n) => self.next = Some(n),
                _ => return false,
            },
        }
        true
    }
}

/// An answer as JSON; anything else is retried as a throttled answer.
pub fn json_answer(a: &Answer) -> Result<Value, String> {
    serde_json::from_slice(&a.body).map_err(|e| format!("the answer is not JSON ({e})"))
}

/// Send `req` until its answer passes `check`; a failing answer is asked again `retries` times
/// with backoff. The answer, or the feed's last failure message with its answer.
async fn fetch_checked(
    feed: &Feed,
    req: &feed::Request,
    check: Option<&super::Check>,
) -> Result<Result<Value, (String, Value)>> {
    let mut tries = 0u32;
    loop {
        let doc = feed.send_parsed(req, json_answer).await?;
        let Some((c, msg)) = check.and_then(|c| c.failure(&doc).map(|m| (c, m))) else {
            return Ok(Ok(doc));
        };
        if tries >= c.retries {
            return Ok(Err((msg, doc)));
        }
        let d = feed::backoff(feed.policy(), tries);
        tries += 1;
        tracing::warn!(target: "duban::connectors", feed = %feed.name, "the feed answered a failure ({msg}); asking again in {d:?}");
        tokio::time::sleep(d).await;
    }
}

/// The next request of a list: the profile's, or a next-page link (same host only).
pub fn page_request(p: &Profile, list: &RequestSpec, pager: &Pager) -> Result<feed::Request> {
    match &pager.next {
        Some(next) => Ok(feed::Request::get(next)),
        None => list.build(p, pager.vars(), None, pager.first()),
    }
}

/// The id of a list record, whether the feed sends it as a number or as text.
fn id_of(record: &Value, id: &Pointer) -> Option<String> {
    id.get(record).and_then(text_of)
}

/// Walk the list from its newest page; the new records (not taken), oldest first, with their
/// ids. Stops early once `limit` new records are found.
async fn walk(
    p: &Profile,
    list: &RequestSpec,
    feed: &Feed,
    taken: &Taken,
    limit: Option<usize>,
) -> Result<Vec<(String, Value)>> {
    let id_ptr = Pointer::new(list.id.as_deref().unwrap_or("/id"));
    let records_ptr = list.records.clone().unwrap_or_else(Pointer::root);
    let mut walk = ListWalk::new(taken);
    let mut items: HashMap<String, Value> = HashMap::new();
    let mut pager = Pager::new(list.paging.as_ref());
    loop {
        let req = page_request(p, list, &pager)?;
        let n = pager.pages() + 1;
        let doc = match fetch_checked(feed, &req, list.success.as_ref()).await? {
            Ok(doc) => doc,
            Err((msg, _)) => bail!(
                "{}: list page {n}: the feed answered a failure: {msg}",
                p.name
            ),
        };
        // A null list is an empty page; no list at all is a profile that does not fit the feed.
        let records = match records_ptr.get(&doc) {
            Some(Value::Array(a)) => a.as_slice(),
            Some(Value::Null) => &[],
            _ => bail!(
                "{}: list page {n} has no list at `records` ({})",
                p.name,
                records_ptr.as_str()
            ),
        };
        let mut ids = Vec::with_capacity(records.len());
        for r in records {
            match id_of(r, &id_ptr) {
                Some(id) => {
                    items.entry(id.clone()).or_insert_with(|| r.clone());
                    ids.push(id);
                }
                None => {
                    tracing::warn!(target: "duban::connectors", profile = %p.name, page = n, "a list record without an id at {} is skipped", id_ptr.as_str())
                }
            }
        }
        let news = walk.page(&ids);
        let g = list.paging.as_ref();
        let at = |ptr: Option<&Pointer>| ptr.and_then(|x| x.get(&doc));
        let seen = PageSeen {
            records: records.len(),
            news,
            cursor: at(g.and_then(|g| g.cursor.as_ref()))
                .and_then(text_of)
                .or_else(|| {
                    let ptr = g.and_then(|g| g.cursor_item.as_ref())?;
                    records.last().and_then(|r| ptr.get(r)).and_then(text_of)
                }),
            next: at(g.and_then(|g| g.next.as_deref()).map(Pointer::new).as_ref())
                .and_then(text_of)
                .map(|n| feed::resolve(&req.url, &n))
                .transpose()?
                // A next link off the feed's host is not followed: the walk ends there.
                .filter(|u| feed.owns(u))
                .map(|u| u.to_string()),
            total_pages: at(g.and_then(|g| g.total_pages.as_ref()))
                .and_then(|v| text_of(v)?.parse().ok()),
            has_more: at(g.and_then(|g| g.has_more.as_ref()))
                .map(|v| v == &Value::Bool(true) || text_of(v).as_deref() == Some("true")),
        };
        if limit.is_some_and(|l| walk.len() >= l) || !pager.advance(seen) {
            break;
        }
    }
    Ok(finish_walk(walk, items, limit))
}

/// The new items of a walk, oldest first, with their list records; with a `limit`, the
/// newest `limit` of them.
pub fn finish_walk(
    walk: ListWalk,
    mut items: HashMap<String, Value>,
    limit: Option<usize>,
) -> Vec<(String, Value)> {
    let mut new = walk.oldest_first();
    if let Some(l) = limit {
        new = new.split_off(new.len().saturating_sub(l));
    }
    new.into_iter()
        .filter_map(|id| items.remove(&id).map(|r| (id, r)))
        .collect()
}

/// The new items of one pass and how each becomes a record.
struct Items<'a> {
    p: &'a Profile,
    items: HashMap<String, Value>,
}

/// The parts of a detail answer, picked by their field's value.
fn parts(detail: &RequestSpec, answer: &Value) -> Map<String, Value> {
    let list = detail
        .records
        .as_ref()
        .and_then(|r| r.get(answer))
        .and_then(Value::as_array);
    let mut out = Map::new();
    for rule in &detail.parts {
        let mut matching = list.into_iter().flatten().filter(|el| {
            rule.field
                .get(el)
                .is_some_and(|v| super::loose_eq(&rule.equals, v))
        });
        let pick = if rule.last {
            matching.next_back()
        } else {
            matching.next()
        };
        if let Some(v) = pick {
            out.insert(rule.name.clone(), v.clone());
        }
    }
    out
}

/// A detail the feed refused (a 4xx, too large, on another host) is a dead letter naming the
/// item, with its list record; any other error ends the pass.
pub fn refused_detail(p: &Profile, id: &str, e: anyhow::Error, item: &Value) -> Result<Fetched> {
    if e.downcast_ref::<Refused>().is_none() {
        return Err(e);
    }
    let why = format!("{} record {id}: detail {e:#}", p.name);
    let bytes = serde_json::to_vec(item).unwrap_or_default();
    let origin = format!("{}:{id}", p.name);
    Ok(Fetched::Dead(dead_letter(p.channel, why, &origin, &bytes)))
}

/// A record of a profile from its document, or a dead letter naming it and the field at fault.
pub fn to_fetched(p: &Profile, mapping: &Mapping, id: &str, doc: Value, origin: &str) -> Fetched {
    match mapping.apply(&doc, p.zone) {
        Ok(mut payload) => {
            let source_id = payload
                .get("source_id")
                .and_then(text_of)
                .unwrap_or_else(|| id.to_string());
            // With [revisit], an unanswered record is version 0 and an answered one
            // `1|<replied_at>`: the engine keeps the newer when it comes again with its reply.
            let version = payload.get("version").and_then(text_of).or_else(|| {
                p.revisit.as_ref().map(|_| match payload.get("reply") {
                    Some(_) => format!(
                        "1|{}",
                        payload
                            .get("replied_at")
                            .and_then(text_of)
                            .unwrap_or_default()
                    ),
                    None => "0".to_string(),
                })
            });
            payload.insert("source".into(), doc);
            Fetched::Record(envelope(
                p.channel,
                &source_id,
                json!({ "profile": p.name, "id": id }),
                Value::Object(payload),
                version,
            ))
        }
        Err(why) => {
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            Fetched::Dead(dead_letter(
                p.channel,
                format!("{} record {id}: {why}", p.name),
                origin,
                &bytes,
            ))
        }
    }
}

impl ItemSource for Items<'_> {
    async fn fetch(&self, feed: &Feed, id: &str) -> Result<Option<Fetched>> {
        let p = self.p;
        let Some(item) = self.items.get(id) else {
            return Ok(None);
        };
        if p.kind == Kind::Html {
            return super::html::fetch(p, feed, id, item).await.map(Some);
        }
        let origin = format!("{}:{id}", p.name);
        let Some(detail) = &p.detail else {
            feed.metrics().received(1, item.to_string().len());
            return Ok(Some(to_fetched(
                p,
                &p.mapping,
                id,
                json!({ "item": item }),
                &origin,
            )));
        };
        let req = detail.build(
            p,
            vec![("id", Var::Text(id.to_string()))],
            Some(item),
            false,
        )?;
        let answer = match fetch_checked(feed, &req, detail.success.as_ref()).await {
            Ok(Ok(a)) => a,
            Ok(Err((msg, answer))) => {
                let why = format!(
                    "{} record {id}: detail: the feed answered a failure: {msg}",
                    p.name
                );
                let bytes = serde_json::to_vec(&json!({"item": item, "detail": answer}))
                    .unwrap_or_default();
                return Ok(Some(Fetched::Dead(dead_letter(
                    p.channel, why, &origin, &bytes,
                ))));
            }
            Err(e) => return refused_detail(p, id, e, item).map(Some),
        };
        feed.metrics().received(1, answer.to_string().len());
        let mut doc = parts(detail, &answer);
        doc.insert("item".into(), item.clone());
        doc.insert("detail".into(), answer);
        Ok(Some(to_fetched(
            p,
            &p.mapping,
            id,
            Value::Object(doc),
            &origin,
        )))
    }
}

/// A record taken before it was answered, to be fetched again (`[revisit]`): its list item, when
/// it was filed (Unix seconds) and last fetched (Unix milliseconds). A position of its own
/// (`pending/<id>`), deleted once answered or past `days`.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    item: Value,
    filed: i64,
    checked_ms: i64,
}

impl Pending {
    fn key(id: &str) -> String {
        format!("pending/{id}")
    }

    fn to_position(&self) -> Value {
        json!({"item": self.item, "filed": self.filed, "checked_ms": self.checked_ms})
    }

    /// The records waiting for a reply, from the connector's positions.
    fn restore(pos: &Positions) -> HashMap<String, Pending> {
        pos.iter()
            .filter_map(|(k, v)| {
                let id = k.strip_prefix("pending/")?;
                Some((
                    id.to_string(),
                    Pending {
                        item: v.get("item")?.clone(),
                        filed: v.get("filed").and_then(Value::as_i64).unwrap_or(0),
                        checked_ms: v.get("checked_ms").and_then(Value::as_i64).unwrap_or(0),
                    },
                ))
            })
            .collect()
    }
}

/// Is the record answered (it carries a reply)?
fn answered(e: &crate::record::RawEnvelope) -> bool {
    e.payload.get("reply").is_some()
}

/// When a record was filed, Unix seconds.
fn filed(e: &crate::record::RawEnvelope) -> i64 {
    e.payload
        .get("received_at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.timestamp())
}

/// One revisit pass: forget records past `days`, fetch again those due (not fetched for
/// `interval_secs`, nor in this pass), oldest check first, `per_pass` at most; an answered one is
/// sent again (its new version) and forgotten, an unanswered one waits again, one that cannot be
/// fetched any more (withdrawn) is forgotten.
async fn revisit(
    p: &Profile,
    r: &super::Revisit,
    feed: &Feed,
    sink: &Sink,
    pending: &mut HashMap<String, Pending>,
    pass_ms: i64,
) -> Result<()> {
    let now = chrono::Utc::now();
    let horizon = now.timestamp() - i64::from(r.days) * 86_400;
    let expired: Vec<String> = pending
        .iter()
        .filter(|(_, e)| e.filed < horizon)
        .map(|(id, _)| id.clone())
        .collect();
    let mut c = Commit::default();
    for id in expired {
        pending.remove(&id);
        c.positions.push((Pending::key(&id), Value::Null));
    }
    sink.commit(c).await?;
    let now_ms = now.timestamp_millis();
    let interval_ms = i64::try_from(r.interval_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut due: Vec<(i64, String)> = pending
        .iter()
        .filter(|(_, e)| {
            e.checked_ms < pass_ms && e.checked_ms.saturating_add(interval_ms) <= now_ms
        })
        .map(|(id, e)| (e.checked_ms, id.clone()))
        .collect();
    due.sort();
    due.truncate(r.per_pass);
    let src = Items {
        p,
        items: due
            .iter()
            .filter_map(|(_, id)| Some((id.clone(), pending.get(id)?.item.clone())))
            .collect(),
    };
    for chunk in due.chunks(p.records_per_commit) {
        let mut c = Commit::default();
        for (_, id) in chunk {
            let key = Pending::key(id);
            match src.fetch(feed, id).await? {
                Some(Fetched::Record(e)) if answered(&e) => {
                    c.records.push(e);
                    pending.remove(id);
                    c.positions.push((key, Value::Null));
                }
                Some(Fetched::Record(_)) => {
                    if let Some(entry) = pending.get_mut(id) {
                        entry.checked_ms = chrono::Utc::now().timestamp_millis();
                        c.positions.push((key, entry.to_position()));
                    }
                }
                Some(Fetched::Dead(d)) => {
                    tracing::info!(target: "duban::connectors", profile = %p.name, "stops waiting for a reply to a record: {}", d.reason);
                    pending.remove(id);
                    c.positions.push((key, Value::Null));
                }
                None => {}
            }
        }
        sink.commit(c).await?;
    }
    Ok(())
}

/// Run a JSON or HTML profile: each pass walks the list to the first page of items taken
/// before, then takes the new items oldest first (their details); with `[revisit]` it then
/// fetches again the records still waiting for a reply. `limit` takes only the newest that many
/// new items (`duban connector check --limit`).
pub async fn run(
    p: &Profile,
    sink: &Sink,
    pos: Positions,
    mode: Mode,
    limit: Option<usize>,
) -> Result<()> {
    let list = p
        .list
        .as_ref()
        .context("a JSON or HTML profile needs [list]")?;
    let feed = Feed::new(&p.name, &p.http, mode, sink.metrics.clone(), &p.base_url)?;
    let mut taken = Taken::from_position(pos.get(""), p.remember_ids);
    let mut pending = Pending::restore(&pos);
    loop {
        let pass_ms = chrono::Utc::now().timestamp_millis();
        let found = match p.kind {
            Kind::Html => super::html::walk(p, list, &feed, &taken, limit).await?,
            _ => walk(p, list, &feed, &taken, limit).await?,
        };
        let ids: Vec<String> = found.iter().map(|(id, _)| id.clone()).collect();
        let src = Items {
            p,
            items: found.into_iter().collect(),
        };
        let waits = |id: &str, f: &Fetched| {
            let Fetched::Record(e) = f else { return None };
            if p.revisit.is_none() || answered(e) {
                return None;
            }
            let entry = Pending {
                item: src.items.get(id)?.clone(),
                filed: filed(e),
                checked_ms: chrono::Utc::now().timestamp_millis(),
            };
            let position = (Pending::key(id), entry.to_position());
            pending.insert(id.to_string(), entry);
            Some(position)
        };
        take_items_with(
            &src,
            &feed,
            sink,
            &mut taken,
            &ids,
            p.records_per_commit,
            waits,
        )
        .await?;
        if let Some(r) = &p.revisit {
            revisit(p, r, &feed, sink, &mut pending, pass_ms).await?;
        }
        if mode == Mode::Drain {
            return Ok(());
        }
        pause(p.poll_interval_secs).await;
    }
}
