//! The requests of a connector profile: `[list]` and `[detail]` compiled (method, path, query,
//! headers, a form or JSON body, selectors of HTML pages) and built for one page or one item.

use anyhow::{Result, anyhow};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

use super::mapping::{Pointer, text_of};
use super::template::{Lookup, Template, Var};
use super::{
    Check, CheckFile, FieldError, Kind, Paging, PagingFile, PagingKind, PartRule, Profile, Stop,
    at, toml_to_json,
};
use crate::connectors::feed::{self, path_segment};

/// How a request's body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`; a field written `{ json = { … } }` is sent as a string holding the
    /// JSON of its table (compact, keys in the order written).
    Json,
}

/// `[list]` or `[detail]` as written. One set of keys for both sections and all kinds; which
/// apply where is checked when the profile is compiled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFile {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    first_path: Option<String>,
    #[serde(default)]
    query: toml::Table,
    #[serde(default)]
    headers: toml::Table,
    #[serde(default)]
    body_format: Option<BodyFormat>,
    #[serde(default)]
    body: toml::Table,
    #[serde(default)]
    records: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    success: Option<CheckFile>,
    #[serde(default)]
    paging: Option<PagingFile>,
    #[serde(default)]
    parts: toml::Table,
    #[serde(default)]
    rows: Option<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    select: toml::Table,
    #[serde(default)]
    cells: Option<String>,
    #[serde(default)]
    inline: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

/// Which section a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    List,
    Detail,
}

/// A JSON body template: values keep their order as written.
#[derive(Debug, Clone)]
pub enum JsonTpl {
    Str(Template),
    Raw(Value),
    Obj(Vec<(String, JsonTpl)>),
    Arr(Vec<JsonTpl>),
    /// Sent as a string holding this value's compact JSON.
    Encoded(Box<JsonTpl>),
}

/// A request body.
#[derive(Debug, Clone, Default)]
pub enum Body {
    #[default]
    None,
    Form(Vec<(String, Template)>),
    Json(Vec<(String, JsonTpl)>),
}

/// `[list]` or `[detail]`, compiled.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: reqwest::Method,
    /// Below `base_url`; may hold a query. An HTML detail without one follows the list's link.
    pub path: Option<Template>,
    /// The first list page's path when it differs (`/index.html` before `/index_2.html`).
    pub first_path: Option<Template>,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub body: Body,
    /// JSON: where the list's records (or the detail's parts) are; the whole answer if "".
    pub records: Option<Pointer>,
    /// JSON list: the record's id (default `/id`). HTML list: a selector in the row (default:
    /// the link's URL).
    pub id: Option<String>,
    pub success: Option<Check>,
    pub paging: Option<Paging>,
    pub parts: Vec<PartRule>,
    /// HTML list: one element per item.
    pub rows: Option<scraper::Selector>,
    /// HTML list: the item's link to its detail page (in the row).
    pub link: Option<scraper::Selector>,
    /// HTML: named fields by selector (a row's, or the detail page's).
    pub select: Vec<(String, scraper::Selector)>,
    /// HTML detail: the cells of label / value tables.
    pub cells: Option<scraper::Selector>,
    /// HTML detail: elements holding `label：value`.
    pub inline: Option<scraper::Selector>,
    /// HTML: the pages' charset when they do not say (default: detected).
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

fn selector(path: &str, s: &str) -> Result<scraper::Selector, FieldError> {
    scraper::Selector::parse(s)
        .map_err(|e| at(path)(anyhow!("`{s}` is not a valid CSS selector: {e}")))
}

fn templates(table: &toml::Table, path: &str) -> Result<Vec<(String, Template)>, FieldError> {
    table
        .iter()
        .map(|(k, v)| {
            let p = format!("{path}.{k}");
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                    v.to_string()
                }
                _ => return Err(at(p)(anyhow!("must be text or a number"))),
            };
            Ok((k.clone(), Template::parse(&text).map_err(at(p))?))
        })
        .collect()
}

fn json_tpl(v: &toml::Value, path: &str) -> Result<JsonTpl, FieldError> {
    Ok(match v {
        toml::Value::String(s) => JsonTpl::Str(Template::parse(s).map_err(at(path))?),
        toml::Value::Table(t) if t.len() == 1 && t.contains_key("json") => {
            let inner = t.get("json").map(|v| json_tpl(v, &format!("{path}.json")));
            JsonTpl::Encoded(Box::new(
                inner.transpose()?.unwrap_or(JsonTpl::Raw(Value::Null)),
            ))
        }
        toml::Value::Table(t) => JsonTpl::Obj(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), json_tpl(v, &format!("{path}.{k}"))?)))
                .collect::<Result<_, FieldError>>()?,
        ),
        toml::Value::Array(a) => JsonTpl::Arr(
            a.iter()
                .map(|v| json_tpl(v, path))
                .collect::<Result<_, FieldError>>()?,
        ),
        other => JsonTpl::Raw(toml_to_json(other)),
    })
}

fn not_here(path: &str, what: &str) -> FieldError {
    at(path)(anyhow!("{what}"))
}

/// Compile `[list]` or `[detail]` of a profile of `kind`.
pub fn compile(f: &RequestFile, kind: Kind, section: Section) -> Result<RequestSpec, FieldError> {
    let sec = match section {
        Section::List => "list",
        Section::Detail => "detail",
    };
    let p = |k: &str| format!("{sec}.{k}");
    let method = match f.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("GET") => reqwest::Method::GET,
        Some("POST") => reqwest::Method::POST,
        Some(other) => return Err(at(p("method"))(anyhow!("`{other}`: GET or POST"))),
    };
    let tpl = |k: &str, v: &Option<String>| -> Result<Option<Template>, FieldError> {
        v.as_deref()
            .map(|s| {
                if !s.starts_with('/') {
                    return Err(at(p(k))(anyhow!(
                        "must start with / (it goes below base_url), got {s:?}"
                    )));
                }
                Template::parse(s).map_err(at(p(k)))
            })
            .transpose()
    };
    let path = tpl("path", &f.path)?;
    let first_path = tpl("first_path", &f.first_path)?;
    let needs_path = !(kind == Kind::Html && section == Section::Detail);
    if path.is_none() && needs_path {
        return Err(at(sec)(anyhow!("needs a `path`")));
    }
    let body = match (f.body_format, f.body.is_empty()) {
        (None, true) => Body::None,
        (None, false) => {
            return Err(at(p("body_format"))(anyhow!(
                "a body needs body_format = \"form\" or \"json\""
            )));
        }
        (Some(_), _) if method == reqwest::Method::GET => {
            return Err(at(p("body"))(anyhow!(
                "a GET request has no body (method = \"POST\")"
            )));
        }
        (Some(BodyFormat::Form), _) => Body::Form(templates(&f.body, &p("body"))?),
        (Some(BodyFormat::Json), _) => Body::Json(
            f.body
                .iter()
                .map(|(k, v)| Ok((k.clone(), json_tpl(v, &p(&format!("body.{k}")))?)))
                .collect::<Result<_, FieldError>>()?,
        ),
    };
    let json = kind == Kind::Json;
    let html = kind == Kind::Html;
    let list = section == Section::List;
    let only = |cond: bool, key: &str, present: bool, what: &str| {
        if present && !cond {
            Err(not_here(&p(key), what))
        } else {
            Ok(())
        }
    };
    only(
        json,
        "records",
        f.records.is_some(),
        "only JSON profiles have `records`",
    )?;
    only(list, "paging", f.paging.is_some(), "only [list] has paging")?;
    only(list, "id", f.id.is_some(), "only [list] has an `id`")?;
    only(
        json && !list,
        "parts",
        !f.parts.is_empty(),
        "only a JSON [detail] has parts",
    )?;
    only(
        html && list,
        "rows",
        f.rows.is_some(),
        "only an HTML [list] has `rows`",
    )?;
    only(
        html && list,
        "link",
        f.link.is_some(),
        "only an HTML [list] has `link`",
    )?;
    only(
        html && list,
        "first_path",
        f.first_path.is_some(),
        "only an HTML [list] has `first_path`",
    )?;
    only(
        html && !list,
        "cells",
        f.cells.is_some(),
        "only an HTML [detail] has `cells`",
    )?;
    only(
        html && !list,
        "inline",
        f.inline.is_some(),
        "only an HTML [detail] has `inline`",
    )?;
    only(
        html,
        "select",
        !f.select.is_empty(),
        "only HTML profiles have `select`",
    )?;
    only(
        html,
        "encoding",
        f.encoding.is_some(),
        "only HTML profiles have `encoding`",
    )?;
    if json && list && f.records.is_none() {
        return Err(at(sec)(anyhow!(
            "needs `records`: the pointer to the list's records (\"\" for the whole answer)"
        )));
    }
    if html && list && (f.rows.is_none() || (f.link.is_none() && f.id.is_none())) {
        return Err(at(sec)(anyhow!(
            "needs `rows`, and `link` (each row's detail page) or `id` (a page whose rows are the records)"
        )));
    }
    let records = f.records.as_deref().map(|r| {
        if r.is_empty() {
            Pointer::root()
        } else {
            Pointer::new(r)
        }
    });
    let success = f.success.as_ref().map(|c| Check {
        pointer: Pointer::new(&c.pointer),
        equals: c.equals.as_ref().map(toml_to_json),
        message: c.message.iter().map(|m| Pointer::new(m)).collect(),
        retries: c.retries,
    });
    let mut parts = Vec::new();
    for (name, v) in &f.parts {
        let pp = p(&format!("parts.{name}"));
        let t = v.as_table().ok_or_else(|| {
            at(pp.clone())(anyhow!("must be {{ field = \"/dataType\", equals = 1 }}"))
        })?;
        let field = t
            .get("field")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| at(pp.clone())(anyhow!("needs `field`, a pointer in the part")))?;
        let equals = t
            .get("equals")
            .map(toml_to_json)
            .ok_or_else(|| at(pp.clone())(anyhow!("needs `equals`, the field's value")))?;
        let last = match t.get("pick").and_then(toml::Value::as_str) {
            None | Some("first") => false,
            Some("last") => true,
            Some(o) => return Err(at(pp)(anyhow!("`pick = \"{o}\"`: first or last"))),
        };
        if let Some(k) = t
            .keys()
            .find(|k| !["field", "equals", "pick"].contains(&k.as_str()))
        {
            return Err(at(pp)(anyhow!("unknown key `{k}` (field, equals, pick)")));
        }
        parts.push(PartRule {
            name: name.clone(),
            field: Pointer::new(field),
            equals,
            last,
        });
    }
    if !parts.is_empty() && f.records.is_none() {
        return Err(at(p("parts"))(anyhow!(
            "parts need `records`, the pointer to the detail's list of parts"
        )));
    }
    if let Some(clash) = parts
        .iter()
        .find(|x| ["item", "detail"].contains(&x.name.as_str()))
    {
        return Err(at(p("parts"))(anyhow!(
            "a part cannot be called `{}`",
            clash.name
        )));
    }
    let paging = f
        .paging
        .as_ref()
        .map(|g| compile_paging(g, &p("paging")))
        .transpose()?;
    let sel = |k: &str, v: &Option<String>| v.as_deref().map(|s| selector(&p(k), s)).transpose();
    let select = f
        .select
        .iter()
        .map(|(k, v)| {
            let s = v
                .as_str()
                .ok_or_else(|| at(p(&format!("select.{k}")))(anyhow!("must be a CSS selector")))?;
            Ok((k.clone(), selector(&p(&format!("select.{k}")), s)?))
        })
        .collect::<Result<_, FieldError>>()?;
    let encoding = f
        .encoding
        .as_deref()
        .map(|l| {
            encoding_rs::Encoding::for_label(l.as_bytes())
                .ok_or_else(|| at(p("encoding"))(anyhow!("unknown encoding `{l}`")))
        })
        .transpose()?;
    if html && list && f.id.as_deref().is_some() {
        selector(&p("id"), f.id.as_deref().unwrap_or(""))?;
    }
    Ok(RequestSpec {
        method,
        path,
        first_path,
        query: templates(&f.query, &p("query"))?,
        headers: templates(&f.headers, &p("headers"))?,
        body,
        records,
        id: f.id.clone(),
        success,
        paging,
        parts,
        rows: sel("rows", &f.rows)?,
        link: sel("link", &f.link)?,
        select,
        cells: sel("cells", &f.cells)?,
        inline: sel("inline", &f.inline)?,
        encoding,
    })
}

fn compile_paging(g: &PagingFile, path: &str) -> Result<Paging, FieldError> {
    let p = |k: &str| format!("{path}.{k}");
    let ptr = |v: &Option<String>| v.as_deref().map(Pointer::new);
    match g.kind {
        PagingKind::Cursor if g.cursor.is_none() && g.cursor_item.is_none() => {
            return Err(at(p("kind"))(anyhow!(
                "cursor paging needs `cursor` (a pointer in the answer) or `cursor_item` (a pointer in the last record)"
            )));
        }
        PagingKind::Next if g.next.is_none() => {
            return Err(at(p("kind"))(anyhow!(
                "next paging needs `next`, where the next page's link is"
            )));
        }
        _ => {}
    }
    if g.page_size < 1 {
        return Err(at(p("page_size"))(anyhow!("must be at least 1")));
    }
    Ok(Paging {
        kind: g.kind,
        first_page: g.first_page,
        page_size: g.page_size,
        cursor: ptr(&g.cursor),
        cursor_item: ptr(&g.cursor_item),
        first_cursor: g.first_cursor.clone(),
        next: g.next.clone(),
        total_pages: ptr(&g.total_pages),
        has_more: ptr(&g.has_more),
        short_page_stops: g.stop.contains(&Stop::ShortPage),
        lookback_pages: g.lookback_pages,
        max_pages: g.max_pages.max(1),
    })
}

impl RequestSpec {
    /// Every template with where it is written (for checking the names they read).
    pub fn templates(&self) -> Vec<(String, &Template)> {
        let mut out: Vec<(String, &Template)> = Vec::new();
        out.extend(self.path.iter().map(|t| ("path".to_string(), t)));
        out.extend(
            self.first_path
                .iter()
                .map(|t| ("first_path".to_string(), t)),
        );
        out.extend(self.query.iter().map(|(k, t)| (format!("query.{k}"), t)));
        out.extend(
            self.headers
                .iter()
                .map(|(k, t)| (format!("headers.{k}"), t)),
        );
        match &self.body {
            Body::None => {}
            Body::Form(f) => out.extend(f.iter().map(|(k, t)| (format!("body.{k}"), t))),
            Body::Json(f) => {
                fn walk<'a>(path: String, t: &'a JsonTpl, out: &mut Vec<(String, &'a Template)>) {
                    match t {
                        JsonTpl::Str(s) => out.push((path, s)),
                        JsonTpl::Raw(_) => {}
                        JsonTpl::Obj(f) => {
                            for (k, v) in f {
                                walk(format!("{path}.{k}"), v, out);
                            }
                        }
                        JsonTpl::Arr(a) => {
                            for v in a {
                                walk(path.clone(), v, out);
                            }
                        }
                        JsonTpl::Encoded(inner) => walk(path, inner, out),
                    }
                }
                for (k, v) in f {
                    walk(format!("body.{k}"), v, &mut out);
                }
            }
        }
        out
    }

    pub fn needs_signature(&self) -> bool {
        self.templates()
            .iter()
            .any(|(_, t)| t.names().any(|n| n == "signature"))
    }

    /// The request for one page or item: `runtime` holds the page's (or item's) variables.
    /// With `[sign]`, the signature is computed over the request as sent and placed wherever
    /// `${signature}` is written.
    pub fn build(
        &self,
        p: &Profile,
        runtime: Vec<(&'static str, Var)>,
        item: Option<&Value>,
        first: bool,
    ) -> Result<feed::Request> {
        // The clock is read once: both renderings of a signed request see the same time.
        let mut runtime = runtime;
        let now = chrono::Utc::now();
        runtime.push(("now", Var::Int(now.timestamp())));
        runtime.push(("now_ms", Var::Int(now.timestamp_millis())));
        let mut scope = Scope {
            profile: p,
            runtime,
            item,
            path: String::new(),
            body: BTreeMap::new(),
            query: BTreeMap::new(),
            signature: None,
        };
        let path_tpl = match (&self.first_path, first) {
            (Some(f), true) => f,
            _ => self
                .path
                .as_ref()
                .ok_or_else(|| anyhow!("{}: a request without a path", p.name))?,
        };
        let path = path_tpl.render(&Segments(&scope))?;
        let mut url = url::Url::parse(&format!("{}{path}", p.base_url))
            .map_err(|e| anyhow!("{}: the request URL does not parse: {e}", p.name))?;
        scope.path = url.path().to_string();
        scope.signature = Some(String::new());
        let (_, _, texts, query) = self.render(&scope)?;
        if let Some(sign) = p.sign.as_ref().filter(|_| self.needs_signature()) {
            scope.body = texts;
            scope.query = query;
            let input = sign.input.render(&scope)?;
            let key = match &sign.key {
                Some(k) => k.render(&scope)?,
                None => String::new(),
            };
            scope.signature = Some(super::template::sign(
                sign.digest,
                key.as_bytes(),
                input.as_bytes(),
                sign.encoding,
            ));
        }
        let (headers, body, _, query) = self.render(&scope)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(
                self.query
                    .iter()
                    .filter_map(|(k, _)| Some((k, query.get(k)?))),
            );
        }
        Ok(feed::Request {
            method: self.method.clone(),
            url: url.to_string(),
            headers,
            body,
        })
    }

    /// Headers, body, the body's field texts and the query, rendered in `scope`.
    #[allow(clippy::type_complexity)]
    fn render(
        &self,
        scope: &Scope,
    ) -> Result<(
        Vec<(String, String)>,
        Option<(String, Vec<u8>)>,
        BTreeMap<String, String>,
        BTreeMap<String, String>,
    )> {
        let headers = self
            .headers
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.render(scope)?)))
            .collect::<Result<Vec<_>>>()?;
        let query = self
            .query
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.render(scope)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        let mut texts = BTreeMap::new();
        let body = match &self.body {
            Body::None => None,
            Body::Form(fields) => {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, t) in fields {
                    let v = t.render(scope)?;
                    ser.append_pair(k, &v);
                    texts.insert(k.clone(), v);
                }
                Some((
                    "application/x-www-form-urlencoded; charset=UTF-8".to_string(),
                    ser.finish().into_bytes(),
                ))
            }
            Body::Json(fields) => {
                let mut out = String::from("{");
                for (i, (k, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    let mut v = String::new();
                    write_json(t, scope, &mut v)?;
                    // The text a signature reads: a string's content, else its JSON.
                    let text = match t {
                        JsonTpl::Str(_) | JsonTpl::Encoded(_) => serde_json::from_str::<Value>(&v)
                            .ok()
                            .and_then(|x| x.as_str().map(str::to_string))
                            .unwrap_or_else(|| v.clone()),
                        _ => v.clone(),
                    };
                    out.push_str(&v);
                    texts.insert(k.clone(), text);
                }
                out.push('}');
                Some((
                    "application/json;charset=UTF-8".to_string(),
                    out.into_bytes(),
                ))
            }
        };
        Ok((headers, body, texts, query))
    }
}

/// Compact JSON of a body template, keys in the order written.
fn write_json(t: &JsonTpl, cx: &dyn Lookup, out: &mut String) -> Result<()> {
    match t {
        JsonTpl::Str(s) => match s.render_var(cx)? {
            Var::Int(n) => out.push_str(&n.to_string()),
            Var::Text(s) => out.push_str(&Value::String(s).to_string()),
        },
        JsonTpl::Raw(v) => out.push_str(&v.to_string()),
        JsonTpl::Obj(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_json(v, cx, out)?;
            }
            out.push('}');
        }
        JsonTpl::Arr(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(v, cx, out)?;
            }
            out.push(']');
        }
        JsonTpl::Encoded(inner) => {
            let mut s = String::new();
            write_json(inner, cx, &mut s)?;
            out.push_str(&Value::String(s).to_string());
        }
    }
    Ok(())
}

/// The variables of one request.
pub struct Scope<'a> {
    profile: &'a Profile,
    runtime: Vec<(&'static str, Var)>,
    item: Option<&'a Value>,
    path: String,
    body: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
    signature: Option<String>,
}

impl Lookup for Scope<'_> {
    fn var(&self, name: &str) -> Option<Var> {
        match name {
            "signature" => self.signature.clone().map(Var::Text),
            "path" => Some(Var::Text(self.path.clone())),
            "base_url" => Some(Var::Text(self.profile.base_url.clone())),
            n if n.starts_with("body.") => self.body.get(&n[5..]).cloned().map(Var::Text),
            n if n.starts_with("query.") => self.query.get(&n[6..]).cloned().map(Var::Text),
            n if n.starts_with("item/") => self
                .item
                .and_then(|i| i.pointer(&n[4..]))
                .and_then(text_of)
                .map(Var::Text),
            n => self
                .runtime
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
                .or_else(|| self.profile.vars.get(n).cloned().map(Var::Text)),
        }
    }
}

/// A scope whose values are percent-encoded as path segments (for `path` templates: an id can
/// never change which resource is asked).
struct Segments<'a>(&'a dyn Lookup);

impl Lookup for Segments<'_> {
    fn var(&self, name: &str) -> Option<Var> {
        self.0.var(name).map(|v| match v {
            Var::Text(t) => Var::Text(path_segment(&t)),
            n => n,
        })
    }
}
