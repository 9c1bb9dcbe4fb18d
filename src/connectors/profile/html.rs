//! HTML page sources of a connector profile: list pages by page number or next link, one row per
//! item with its link, and the detail page's `label：value` tables and selected fields.

use anyhow::Result;
use scraper::{ElementRef, Html, Selector};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

use super::Profile;
use super::http::{PageSeen, Pager, finish_walk, page_request, to_fetched};
use super::request::RequestSpec;
use crate::connectors::board::{Fetched, ListWalk, Taken};
use crate::connectors::feed::{self, Answer, Feed};

/// The text of a page: the charset forced by the profile, else the one the answer or the page
/// declares, else UTF-8 when it is valid, else GB18030 (a superset of GBK and GB2312).
pub fn page_text(a: &Answer, forced: Option<&'static encoding_rs::Encoding>) -> String {
    let label = |s: &str| -> Option<&'static encoding_rs::Encoding> {
        let at = s.to_ascii_lowercase().find("charset=")?;
        let rest = &s[at + 8..];
        let rest = rest.trim_start_matches(['"', '\'']);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        encoding_rs::Encoding::for_label(&rest.as_bytes()[..end])
    };
    let head = String::from_utf8_lossy(&a.body[..a.body.len().min(2048)]);
    let enc = forced
        .or_else(|| a.content_type.as_deref().and_then(label))
        .or_else(|| label(&head));
    match enc {
        Some(e) => e.decode(&a.body).0.into_owned(),
        None => crate::connectors::table::decode_export(&a.body).0,
    }
}

/// An element's text: its text nodes, with a newline for `<br>` and after each block
/// (paragraph, division, list item, table row); scripts and styles left out; trimmed.
fn text(e: ElementRef) -> String {
    fn walk(e: ElementRef, out: &mut String) {
        for child in e.children() {
            if let Some(t) = child.value().as_text() {
                out.push_str(t);
            } else if let Some(el) = ElementRef::wrap(child) {
                match el.value().name() {
                    "br" => out.push('\n'),
                    "script" | "style" => {}
                    name => {
                        walk(el, out);
                        if matches!(name, "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4") {
                            out.push('\n');
                        }
                    }
                }
            }
        }
    }
    let mut out = String::new();
    walk(e, &mut out);
    out.trim().to_string()
}

/// A label as a key: whitespace (and the padding spaces of aligned labels) removed, the
/// trailing colon and brackets dropped: `来 信 时 间：` → `来信时间`.
pub fn label_key(s: &str) -> String {
    let k: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    k.trim_end_matches([':', '：'])
        .trim_matches(['【', '】', '[', ']'])
        .to_string()
}

fn plausible_label(k: &str) -> bool {
    let n = k.chars().count();
    (1..=12).contains(&n) && !k.chars().any(|c| c.is_ascii_digit())
}

/// The label / value pairs of a detail page: consecutive `cells` (label cell, value cell;
/// rows of two or four cells), and `label：value` texts of `inline` elements. The first value
/// of a label wins.
pub fn labels(
    doc: &Html,
    cells: Option<&Selector>,
    inline: Option<&Selector>,
) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(sel) = cells {
        let texts: Vec<String> = doc.select(sel).map(text).collect();
        for pair in texts.windows(2) {
            let k = label_key(&pair[0]);
            if plausible_label(&k) && !out.contains_key(&k) {
                out.insert(k, Value::String(pair[1].clone()));
            }
        }
        // A cell holding both: `来信时间：2024-05-01`.
        for t in &texts {
            split_inline(t, &mut out);
        }
    }
    if let Some(sel) = inline {
        for e in doc.select(sel) {
            split_inline(&text(e), &mut out);
        }
    }
    out
}

fn split_inline(t: &str, out: &mut Map<String, Value>) {
    let Some(at) = t.find(['：', ':']) else {
        return;
    };
    let k = label_key(&t[..at]);
    let colon = t[at..].chars().next().map_or(1, char::len_utf8);
    let v = t[at + colon..].trim();
    if plausible_label(&k) && !v.is_empty() && !out.contains_key(&k) {
        out.insert(k, Value::String(v.to_string()));
    }
}

/// Named fields by selector in `root`: the first match's text.
fn selected(root: ElementRef, select: &[(String, Selector)], out: &mut Map<String, Value>) {
    for (name, sel) in select {
        if let Some(e) = root.select(sel).next() {
            out.insert(name.clone(), Value::String(text(e)));
        }
    }
}

/// One list page: (id, item) per row that links to a detail page (or, without a `link`
/// selector, per row with an id: the row is the record), and the next page's link.
pub fn list_page(
    list: &RequestSpec,
    html: &str,
    page_url: &str,
) -> (Vec<(String, Value)>, Option<String>) {
    let doc = Html::parse_document(html);
    let mut rows = Vec::new();
    let Some(row_sel) = &list.rows else {
        return (rows, None);
    };
    let id_sel = list.id.as_deref().and_then(|s| Selector::parse(s).ok());
    for row in doc.select(row_sel) {
        let link = match &list.link {
            // A row without a link is a letter that is not public: it has no detail page.
            Some(link_sel) => {
                let Some(href) = row
                    .select(link_sel)
                    .next()
                    .and_then(|a| a.value().attr("href"))
                else {
                    continue;
                };
                let Ok(link) = feed::resolve(page_url, href) else {
                    continue;
                };
                Some(link.to_string())
            }
            None => None,
        };
        let id = match (&id_sel, &link) {
            (Some(s), _) => row.select(s).next().map(text).filter(|t| !t.is_empty()),
            (None, link) => link.clone(),
        };
        // A row without an id is a header or a spacer row.
        let Some(id) = id else { continue };
        let mut item = Map::new();
        item.insert("id".into(), Value::String(id.clone()));
        if let Some(link) = link {
            item.insert("link".into(), Value::String(link));
        }
        selected(row, &list.select, &mut item);
        rows.push((id, Value::Object(item)));
    }
    let next = list
        .paging
        .as_ref()
        .and_then(|g| g.next.as_deref())
        .and_then(|s| Selector::parse(s).ok())
        .and_then(|s| {
            doc.select(&s)
                .next()?
                .value()
                .attr("href")
                .map(str::to_string)
        })
        .and_then(|h| feed::resolve(page_url, &h).ok())
        .map(|u| u.to_string());
    (rows, next)
}

/// A detail page as a document: its labels and its selected fields.
pub fn detail_page(detail: Option<&RequestSpec>, html: &str) -> Value {
    let doc = Html::parse_document(html);
    let Some(d) = detail else {
        return json!({});
    };
    let mut out = labels(&doc, d.cells.as_ref(), d.inline.as_ref());
    selected(doc.root_element(), &d.select, &mut out);
    Value::Object(out)
}

pub(super) async fn walk(
    p: &Profile,
    list: &RequestSpec,
    feed: &Feed,
    taken: &Taken,
    limit: Option<usize>,
) -> Result<Vec<(String, Value)>> {
    let mut walk = ListWalk::new(taken);
    let mut items: HashMap<String, Value> = HashMap::new();
    let mut pager = Pager::new(list.paging.as_ref());
    loop {
        let req = page_request(p, list, &pager)?;
        let answer = feed.send(&req).await?;
        let html = page_text(&answer, list.encoding);
        let (rows, next) = list_page(list, &html, &req.url);
        let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
        let n = rows.len();
        for (id, item) in rows {
            items.entry(id).or_insert(item);
        }
        let news = walk.page(&ids);
        // A next link off the feed's host is not followed.
        let next = next.filter(|n| url::Url::parse(n).is_ok_and(|u| feed.owns(&u)));
        let seen = PageSeen {
            records: n,
            news,
            next,
            ..PageSeen::default()
        };
        if limit.is_some_and(|l| walk.len() >= l) || !pager.advance(seen) {
            break;
        }
    }
    Ok(finish_walk(walk, items, limit))
}

/// The detail page of the new item `id` (its `item` from the list) as a record or a dead letter.
pub(super) async fn fetch(p: &Profile, feed: &Feed, id: &str, item: &Value) -> Result<Fetched> {
    let origin = format!("{}:{id}", p.name);
    let link = item.get("link").and_then(Value::as_str);
    let req = match (p.detail.as_ref().filter(|d| d.path.is_some()), link) {
        (Some(d), _) => d.build(
            p,
            vec![("id", super::template::Var::Text(id.to_string()))],
            Some(item),
            false,
        )?,
        (None, Some(link)) => feed::Request::get(link),
        // A page whose rows are the records: nothing more to ask.
        (None, None) => {
            feed.metrics().received(1, item.to_string().len());
            let doc = json!({"item": item, "detail": {}});
            return Ok(to_fetched(p, &p.mapping, id, doc, &origin));
        }
    };
    let answer = match feed.send(&req).await {
        Ok(a) => a,
        Err(e) => return super::http::refused_detail(p, id, e, item),
    };
    feed.metrics().received(1, answer.body.len());
    let encoding = p.detail.as_ref().and_then(|d| d.encoding);
    let detail = detail_page(p.detail.as_ref(), &page_text(&answer, encoding));
    let doc = json!({"item": item, "detail": detail});
    Ok(to_fetched(p, &p.mapping, id, doc, &origin))
}
