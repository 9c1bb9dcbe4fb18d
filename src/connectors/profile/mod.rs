//! Connector profiles (`connectors/profiles/*.toml`): a feed described without code — how to ask
//! it (HTTP JSON APIs, HTML pages, export files) and how its records map onto a complaint.
//!
//! A profile is loaded into a [`Profile`] (every template, pointer, selector and field rule
//! compiled; an invalid one fails naming the file, the line and the field), and run by
//! [`run`] as a connector of its own (`duban ingest`) or by `duban connector check`.

pub mod check;
pub mod export;
pub mod html;
pub mod http;
pub mod mapping;
pub mod request;
pub mod template;
pub mod time;

use anyhow::{Context, Result, anyhow, bail};
use chrono::FixedOffset;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::feed::HttpPolicy;
use super::{Mode, Positions, Sink};
use crate::record::Channel;
use mapping::{FieldRule, Mapping, Pointer};
use request::RequestSpec;
use template::{Digest, Encoding, Template};

/// What a profile reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An HTTP API answering JSON: a list (paged) and optionally a detail per item.
    Json,
    /// HTML pages: list pages and a detail page per item.
    Html,
    /// Export files (CSV in UTF-8/GBK/GB18030, XLSX) dropped in a folder.
    Export,
}

/// How list pages follow each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PagingKind {
    /// One request, no pages.
    None,
    /// `${page}` counts from `first_page`.
    Page,
    /// `${offset}` counts the records before the page.
    Offset,
    /// `${cursor}` comes from the answer (`cursor`) or from the last record (`cursor_item`).
    Cursor,
    /// The next page's URL is in the answer (`next`: a pointer, or a selector on HTML pages).
    Next,
}

/// When the walk over the list stops (besides an empty page and an empty or repeated cursor,
/// which always stop it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    EmptyPage,
    /// A page with fewer records than `page_size`.
    ShortPage,
    EmptyCursor,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PagingFile {
    kind: PagingKind,
    #[serde(default = "one")]
    first_page: i64,
    #[serde(default = "twenty")]
    page_size: i64,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    cursor_item: Option<String>,
    #[serde(default)]
    first_cursor: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    total_pages: Option<String>,
    #[serde(default)]
    has_more: Option<String>,
    #[serde(default = "default_stop")]
    stop: Vec<Stop>,
    #[serde(default = "one_u32")]
    lookback_pages: u32,
    #[serde(default = "max_pages")]
    max_pages: u64,
}

fn one() -> i64 {
    1
}
fn one_u32() -> u32 {
    1
}
fn twenty() -> i64 {
    20
}
fn max_pages() -> u64 {
    100_000
}
fn default_stop() -> Vec<Stop> {
    vec![Stop::EmptyPage, Stop::EmptyCursor]
}

/// `[list.paging]`, compiled.
#[derive(Debug, Clone)]
pub struct Paging {
    pub kind: PagingKind,
    pub first_page: i64,
    pub page_size: i64,
    /// Pointer to the next cursor in the answer.
    pub cursor: Option<Pointer>,
    /// Pointer to the next cursor in the page's last record.
    pub cursor_item: Option<Pointer>,
    pub first_cursor: String,
    /// Pointer (JSON) or selector (HTML) of the next page's link.
    pub next: Option<String>,
    pub total_pages: Option<Pointer>,
    pub has_more: Option<Pointer>,
    pub short_page_stops: bool,
    /// Pages walked past the first page that brought nothing new (items published late).
    pub lookback_pages: u32,
    pub max_pages: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    pointer: String,
    #[serde(default)]
    equals: Option<toml::Value>,
    #[serde(default)]
    message: Vec<String>,
    #[serde(default = "two_u32")]
    retries: u32,
}

fn two_u32() -> u32 {
    2
}

/// A success check of an answer: the value at `pointer` equals `equals` (or, without it, is
/// present and not null or false). On failure the feed's own message (at `message`) is told.
#[derive(Debug, Clone)]
pub struct Check {
    pub pointer: Pointer,
    pub equals: Option<Value>,
    pub message: Vec<Pointer>,
    /// A failed answer is asked again this many times (with backoff) before it counts: a
    /// feed that answers a passing hiccup with a failure envelope loses nothing. Default 2.
    pub retries: u32,
}

impl Check {
    /// None when the answer is a success, else the feed's message (or what was found).
    pub fn failure(&self, answer: &Value) -> Option<String> {
        let got = self.pointer.get(answer);
        let ok = match (&self.equals, got) {
            (_, None) => false,
            (None, Some(v)) => !v.is_null() && v != &Value::Bool(false),
            (Some(want), Some(v)) => loose_eq(want, v),
        };
        if ok {
            return None;
        }
        let said: Vec<String> = self
            .message
            .iter()
            .filter_map(|p| p.get(answer).and_then(mapping::text_of))
            .collect();
        Some(if said.is_empty() {
            format!("{} is not as expected", self.pointer.as_str())
        } else {
            said.join(" ")
        })
    }
}

/// Equality that takes `1` and `"1"` (and `true` and `"true"`) as the same.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    a == b || matches!((mapping::text_of(a), mapping::text_of(b)), (Some(x), Some(y)) if x == y)
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(n) => json!(n),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// One part of a detail answer, picked by a field's value (never by position).
#[derive(Debug, Clone)]
pub struct PartRule {
    pub name: String,
    pub field: Pointer,
    pub equals: Value,
    /// The last match instead of the first.
    pub last: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignFile {
    digest: Digest,
    input: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    encoding: Encoding,
}

/// `[sign]`: `${signature}` = digest(input) in every request's templates.
#[derive(Debug, Clone)]
pub struct Sign {
    pub digest: Digest,
    pub input: Template,
    pub key: Option<Template>,
    pub encoding: Encoding,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    #[serde(default)]
    dir: Option<PathBuf>,
    #[serde(default = "two")]
    settle_secs: u64,
    #[serde(default = "rows")]
    rows_per_commit: usize,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default = "ten")]
    header_scan_rows: usize,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
}

fn two() -> u64 {
    2
}
fn ten() -> usize {
    10
}
fn rows() -> usize {
    500
}

/// `[export]`: the folder watched and how its files are read.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub dir: Option<PathBuf>,
    pub settle_secs: u64,
    pub rows_per_commit: usize,
    /// The sheet of an `.xlsx` file (default the first).
    pub sheet: Option<String>,
    /// Rows searched for the header row (title rows above it are skipped).
    pub header_scan_rows: usize,
    /// Forced text encoding of CSV files (`gbk`, `utf-8` …); default: detected.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// The cell separator of text files (`,`, `\t`, `;`, `|` …); default: a tab when the first
    /// line has more tabs than commas, else a comma.
    pub delimiter: Option<u8>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantFile {
    name: String,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    fields: toml::Table,
}

/// A layout of an export (a year's headers): picked when the header row has all `columns`.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub columns: Vec<String>,
    /// The profile's `[fields]` with this variant's rules over them.
    pub mapping: Mapping,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevisitFile {
    #[serde(default = "thirty")]
    days: u32,
    #[serde(default = "six_hours")]
    interval_secs: u64,
    #[serde(default = "two_hundred")]
    per_pass: usize,
}

fn thirty() -> u32 {
    30
}
fn six_hours() -> u64 {
    6 * 3600
}
fn two_hundred() -> usize {
    200
}

/// `[revisit]`: a record taken before it was answered is fetched again (its detail) every
/// `interval_secs` for `days` after it was filed, `per_pass` at most per pass; once the feed has a
/// reply, the record is sent again as a new version (`source_version` 0 → `1|<replied_at>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Revisit {
    pub days: u32,
    pub interval_secs: u64,
    pub per_pass: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    channel: Channel,
    kind: Kind,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default = "shanghai")]
    time_zone: String,
    #[serde(default = "poll")]
    poll_interval_secs: u64,
    #[serde(default = "per_commit")]
    records_per_commit: usize,
    #[serde(default = "remember")]
    remember_ids: usize,
    #[serde(default)]
    vars: toml::Table,
    #[serde(default)]
    http: HttpPolicy,
    #[serde(default)]
    sign: Option<SignFile>,
    #[serde(default)]
    list: Option<request::RequestFile>,
    #[serde(default)]
    detail: Option<request::RequestFile>,
    #[serde(default)]
    export: Option<ExportFile>,
    #[serde(default)]
    fields: toml::Table,
    #[serde(default)]
    variants: Vec<VariantFile>,
    #[serde(default)]
    revisit: Option<RevisitFile>,
}

fn shanghai() -> String {
    "Asia/Shanghai".into()
}
fn poll() -> u64 {
    60
}
fn per_commit() -> usize {
    50
}
fn remember() -> usize {
    50_000
}

/// A loaded, checked profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The connector's name: its position key, transactional id and metrics label.
    pub name: String,
    pub channel: Channel,
    pub kind: Kind,
    /// The feed's address (every request goes below it); empty for exports.
    pub base_url: String,
    /// The zone of times written without one.
    pub zone: FixedOffset,
    /// `[vars]`, resolved (environment read) at load.
    pub vars: BTreeMap<String, String>,
    pub http: HttpPolicy,
    pub sign: Option<Sign>,
    pub list: Option<RequestSpec>,
    pub detail: Option<RequestSpec>,
    pub export: Option<ExportSpec>,
    pub mapping: Mapping,
    pub variants: Vec<Variant>,
    pub poll_interval_secs: u64,
    pub records_per_commit: usize,
    pub remember_ids: usize,
    pub revisit: Option<Revisit>,
    /// The file it was loaded from.
    pub file: PathBuf,
}

/// An error of a profile at a field path (`list.paging.kind`); the loader adds file and line.
#[derive(Debug)]
pub struct FieldError {
    pub path: String,
    pub error: anyhow::Error,
}

fn at(path: impl Into<String>) -> impl FnOnce(anyhow::Error) -> FieldError {
    let path = path.into();
    move |error| FieldError { path, error }
}

/// The line where the dotted `path` is written in `text` (its deepest part that is found).
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut at = None;
    for part in path.split('.') {
        let (key, value) = table.iter().find(|(k, _)| &**k.get_ref() == part)?;
        at = Some(key.span().start);
        match value.get_ref() {
            toml::de::DeValue::Table(t) => table = t,
            toml::de::DeValue::Array(a) => {
                // `[[variants]]`: the first element's table.
                match a.iter().next().map(|v| v.get_ref()) {
                    Some(toml::de::DeValue::Table(t)) => table = t,
                    _ => break,
                }
            }
            _ => break,
        }
    }
    at.map(|start| text[..start.min(text.len())].matches('\n').count() + 1)
}

impl Profile {
    /// Load and check a profile file. Every error is one line naming the file, the line and
    /// the field.
    pub fn load(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read connector profile {}", path.display()))?;
        let file: ProfileFile = super::parse_file(&text, path)?;
        Profile::compile(file, path).map_err(|e| {
            let line = line_of(&text, &e.path).map_or(String::new(), |l| format!(":{l}"));
            anyhow!("{}{line}: `{}`: {:#}", path.display(), e.path, e.error)
        })
    }

    /// Point every request at another address (`--base-url`, tests).
    pub fn with_base_url(mut self, base_url: &str) -> Result<Profile> {
        super::check_url("base_url", base_url)?;
        self.base_url = base_url.trim_end_matches('/').to_string();
        Ok(self)
    }

    fn compile(f: ProfileFile, path: &Path) -> Result<Profile, FieldError> {
        if f.name.is_empty()
            || !f
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(at("name")(anyhow!(
                "must be letters, digits, - and _ (it names the connector's position and producer)"
            )));
        }
        let zone = time::parse_zone(&f.time_zone).map_err(at("time_zone"))?;
        f.http.validate("http").map_err(|e| FieldError {
            path: "http".into(),
            error: e,
        })?;
        let mut vars = BTreeMap::new();
        for (k, v) in &f.vars {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                _ => return Err(at(format!("vars.{k}"))(anyhow!("must be text or a number"))),
            };
            let t = Template::parse(&text).map_err(at(format!("vars.{k}")))?;
            let none = |_: &str| None;
            let value = t.render(&none).map_err(|e| {
                at(format!("vars.{k}"))(anyhow!(
                    "{e} (vars may read only the environment: ${{env.NAME}} or ${{env.NAME:-default}})"
                ))
            })?;
            vars.insert(k.clone(), value);
        }
        let base_url = match (&f.base_url, f.kind) {
            (Some(u), Kind::Json | Kind::Html) => {
                super::check_url("base_url", u).map_err(at("base_url"))?;
                url::Url::parse(u).map_err(|e| at("base_url")(anyhow!("{e}")))?;
                u.trim_end_matches('/').to_string()
            }
            (None, Kind::Json | Kind::Html) => {
                return Err(at("base_url")(anyhow!("is required for kind {:?}", f.kind)));
            }
            (_, Kind::Export) => String::new(),
        };
        let sign = match f.sign {
            None => None,
            Some(s) => {
                if matches!(s.digest, Digest::HmacSha256) && s.key.is_none() {
                    return Err(at("sign.key")(anyhow!(
                        "hmac-sha256 needs a `key` template"
                    )));
                }
                Some(Sign {
                    digest: s.digest,
                    input: Template::parse(&s.input).map_err(at("sign.input"))?,
                    key: s
                        .key
                        .as_deref()
                        .map(Template::parse)
                        .transpose()
                        .map_err(at("sign.key"))?,
                    encoding: s.encoding,
                })
            }
        };
        let mapping = compile_fields(&f.fields, "fields")?;
        let mut variants = Vec::new();
        for (i, v) in f.variants.iter().enumerate() {
            let over = compile_fields(&v.fields, "variants.fields")?;
            let m = mapping.overlaid(&over);
            m.check_required().map_err(|e| {
                at("variants.fields")(anyhow!("variant {} ({}) {e}", i + 1, v.name))
            })?;
            variants.push(Variant {
                name: v.name.clone(),
                columns: v.columns.clone(),
                mapping: m,
            });
        }
        if variants.is_empty() {
            mapping.check_required().map_err(at("fields"))?;
        } else if f.kind != Kind::Export {
            return Err(at("variants")(anyhow!(
                "only export profiles have variants"
            )));
        }
        if variants.is_empty() && f.kind == Kind::Export {
            variants.push(Variant {
                name: "default".into(),
                columns: Vec::new(),
                mapping: mapping.clone(),
            });
        }
        let list = f
            .list
            .as_ref()
            .map(|l| request::compile(l, f.kind, request::Section::List))
            .transpose()?;
        let detail = f
            .detail
            .as_ref()
            .map(|d| request::compile(d, f.kind, request::Section::Detail))
            .transpose()?;
        let export = match (f.kind, f.export) {
            (Kind::Export, Some(e)) => {
                let encoding = match e.encoding.as_deref() {
                    None | Some("auto") => None,
                    Some(label) => Some(
                        encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                            at("export.encoding")(anyhow!(
                                "unknown encoding `{label}` (utf-8, gbk, gb18030, auto)"
                            ))
                        })?,
                    ),
                };
                let delimiter = match e.delimiter.as_deref() {
                    None | Some("auto") => None,
                    Some(d) if d.len() == 1 && d.is_ascii() && d != "\"" => Some(d.as_bytes()[0]),
                    Some(d) => {
                        return Err(at("export.delimiter")(anyhow!(
                            "`{}` is not one ASCII character (\",\", \"\\t\", \";\", \"|\", \"auto\")",
                            d.escape_debug()
                        )));
                    }
                };
                Some(ExportSpec {
                    dir: e.dir,
                    settle_secs: e.settle_secs,
                    rows_per_commit: e.rows_per_commit.max(1),
                    sheet: e.sheet,
                    header_scan_rows: e.header_scan_rows.max(1),
                    encoding,
                    delimiter,
                })
            }
            (Kind::Export, None) => {
                return Err(at("export")(anyhow!("an export profile needs [export]")));
            }
            (_, Some(_)) => {
                return Err(at("export")(anyhow!("only export profiles have [export]")));
            }
            (_, None) => None,
        };
        match f.kind {
            Kind::Json | Kind::Html if list.is_none() => {
                return Err(at("list")(anyhow!("a {:?} profile needs [list]", f.kind)));
            }
            Kind::Export if list.is_some() || detail.is_some() => {
                return Err(at("list")(anyhow!(
                    "an export profile has no [list] or [detail]"
                )));
            }
            _ => {}
        }
        let revisit = match (f.revisit, f.kind) {
            (None, _) => None,
            (Some(_), Kind::Export) => {
                return Err(at("revisit")(anyhow!("export files are not fetched again")));
            }
            (Some(_), Kind::Html)
                if list.as_ref().is_some_and(|l| l.link.is_none())
                    && detail.as_ref().is_none_or(|d| d.path.is_none()) =>
            {
                return Err(at("revisit")(anyhow!(
                    "a page whose rows are the records has no detail to fetch again"
                )));
            }
            (Some(_), Kind::Json) if detail.is_none() => {
                return Err(at("revisit")(anyhow!(
                    "needs a [detail] request to fetch a record again"
                )));
            }
            (Some(_), _) if mapping.rule("reply").is_none() => {
                return Err(at("revisit")(anyhow!(
                    "needs a `reply` field: a record is fetched again until it has one"
                )));
            }
            (Some(r), _) => Some(Revisit {
                days: r.days,
                interval_secs: r.interval_secs,
                per_pass: r.per_pass.max(1),
            }),
        };
        let p = Profile {
            name: f.name,
            channel: f.channel,
            kind: f.kind,
            base_url,
            zone,
            vars,
            http: f.http,
            sign,
            list,
            detail,
            export,
            mapping,
            variants,
            poll_interval_secs: f.poll_interval_secs,
            records_per_commit: f.records_per_commit.max(1),
            remember_ids: f.remember_ids.max(1),
            revisit,
            file: path.to_path_buf(),
        };
        p.check_names()?;
        Ok(p)
    }

    /// Every template reads only variables that exist where it is used.
    fn check_names(&self) -> Result<(), FieldError> {
        let sections = [
            ("list", self.list.as_ref()),
            ("detail", self.detail.as_ref()),
        ];
        for (name, spec) in sections {
            let Some(spec) = spec else { continue };
            for (field, t) in spec.templates() {
                for n in t.names() {
                    self.known(n, name == "detail")
                        .map_err(at(format!("{name}.{field}")))?;
                }
            }
            if spec.needs_signature() && self.sign.is_none() {
                return Err(at(name.to_string())(anyhow!(
                    "uses ${{signature}} but the profile has no [sign]"
                )));
            }
        }
        if let Some(s) = &self.sign {
            for (field, t) in [("sign.input", Some(&s.input)), ("sign.key", s.key.as_ref())] {
                for n in t.into_iter().flat_map(Template::names) {
                    if n == "signature" {
                        return Err(at(field)(anyhow!("cannot read ${{signature}} itself")));
                    }
                    self.known(n, true).map_err(at(field))?;
                }
            }
        }
        Ok(())
    }

    fn known(&self, name: &str, detail: bool) -> Result<()> {
        if let Some(var) = name.strip_prefix("env.") {
            return match std::env::var(var) {
                Ok(_) => Ok(()),
                Err(_) => bail!(
                    "reads ${{{name}}}, and {var} is not set (give a default: ${{{name}:-…}})"
                ),
            };
        }
        let runtime = [
            "cursor",
            "page",
            "offset",
            "page_size",
            "path",
            "base_url",
            "signature",
            "now",
            "now_ms",
        ];
        if runtime.contains(&name)
            || self.vars.contains_key(name)
            || name.starts_with("body.")
            || name.starts_with("query.")
            || (detail && (name == "id" || name.starts_with("item/")))
        {
            return Ok(());
        }
        bail!(
            "reads ${{{name}}}, which is not a variable here (vars: {}; cursor, page, offset, page_size, path, base_url, signature, now, now_ms, body.X, query.X, env.X{})",
            self.vars.keys().cloned().collect::<Vec<_>>().join(", "),
            if detail { ", id, item/POINTER" } else { "" }
        )
    }
}

/// Compile a `[fields]` table; errors name `fields.<target>[.<key>]`.
fn compile_fields(t: &toml::Table, table: &str) -> Result<Mapping, FieldError> {
    let mut rules = Vec::new();
    for (target, v) in t {
        let rule = FieldRule::compile(target, v).map_err(|(key, e)| FieldError {
            path: match key {
                Some(k) => format!("{table}.{target}.{k}"),
                None => format!("{table}.{target}"),
            },
            error: e,
        })?;
        rules.push(rule);
    }
    Ok(Mapping { rules })
}

/// Run a profile's connector: pull the feed (or read the export folder), commit records, dead
/// letters and positions; in `Drain` mode until the feed is drained, else until stopped.
pub async fn run(p: &Profile, sink: &Sink, pos: Positions, mode: Mode) -> Result<()> {
    match p.kind {
        Kind::Json | Kind::Html => http::run(p, sink, pos, mode, None).await,
        Kind::Export => export::run(p, sink, pos, mode).await,
    }
}

#[cfg(test)]
mod tests;
