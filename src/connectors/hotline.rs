//! 12345 hotline connector: the work-order API (updated-since cursor, records re-emitted as a new
//! version when they change) and the folder of daily exports (CSV in UTF-8/GBK/GB18030, `.xlsx`).
//! Both yield the API's record shape (schemas/raw/hotline.schema.json).

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::feed::{Feed, HttpPolicy};
use super::fields::FieldMap;
use super::{Commit, Mode, Positions, Sink, check_url, dead_letter, envelope, pause};
use crate::record::Channel;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotlineConfig {
    pub api: ApiConfig,
    pub exports: ExportsConfig,
}

impl HotlineConfig {
    pub fn validate(&self) -> Result<()> {
        check_url("api.url", &self.api.url)?;
        self.api.http.validate("api.http")?;
        if !(1..=500).contains(&self.api.page_size) {
            anyhow::bail!(
                "`api.page_size` must be between 1 and 500, got {}",
                self.api.page_size
            );
        }
        self.api.field_map()?;
        if !self.exports.columns.values().any(|f| f == "order_no") {
            anyhow::bail!("`[exports.columns]` maps no column to `order_no`");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub url: String,
    /// Records per request (1..=500). Default 200.
    #[serde(default = "default_page")]
    pub page_size: u32,
    /// Pause after the feed is drained, before asking again, seconds. Default 5.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Timeouts, retries, rate limit, circuit breaker, auth.
    #[serde(default)]
    pub http: HttpPolicy,
    /// Raw-shape field → the API's names for it (first present wins); others go to `extra`.
    #[serde(default)]
    pub fields: BTreeMap<String, Vec<String>>,
    /// Fields a work order must carry; without one it goes to the dead-letter topic.
    #[serde(default)]
    pub required: Vec<String>,
}

impl ApiConfig {
    pub fn field_map(&self) -> Result<FieldMap> {
        FieldMap::checked("api.", &self.fields, &self.required)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportsConfig {
    pub dir: PathBuf,
    /// Pause between looks at the folder, seconds. Default 5.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// A file is read only once unmodified for this long (a half-written file is not), seconds.
    /// Files named `.*`, `*.tmp`, `*.part` are never read. Default 2.
    #[serde(default = "default_settle")]
    pub settle_secs: u64,
    /// Rows per commit. Default 500.
    #[serde(default = "default_rows")]
    pub rows_per_commit: usize,
    /// Header → API field name (CSV header row, first row of an `.xlsx` sheet).
    pub columns: BTreeMap<String, String>,
}

fn default_page() -> u32 {
    200
}
fn default_poll() -> u64 {
    5
}
fn default_settle() -> u64 {
    2
}
fn default_rows() -> usize {
    500
}

/// The API cursor: records with (updated_at, order_no) after it are new.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    pub updated_since: Option<String>,
    pub after_id: Option<String>,
}

impl Cursor {
    pub fn from_position(p: Option<&Value>) -> Cursor {
        let s = |k: &str| {
            p.and_then(|p| p.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Cursor {
            updated_since: s("updated_since"),
            after_id: s("after_id"),
        }
    }
    pub fn to_position(&self) -> Value {
        json!({"updated_since": self.updated_since, "after_id": self.after_id})
    }
    /// Is (updated_at, id) after the cursor? Times compare as instants when both parse.
    pub fn before(&self, updated_at: &str, id: &str) -> bool {
        let Some(since) = &self.updated_since else {
            return true;
        };
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
        let ord = match (t(since), t(updated_at)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => since.as_str().cmp(updated_at),
        };
        ord.then_with(|| self.after_id.as_deref().unwrap_or("").cmp(id))
            .is_lt()
    }
}

/// One API page turned into a commit; the cursor advances over every item it passes.
pub fn api_page(
    items: &[Value],
    cursor: &mut Cursor,
    map: &FieldMap,
    origin: &str,
) -> (
    Vec<crate::record::RawEnvelope>,
    Vec<crate::record::DeadLetter>,
) {
    let (mut envs, mut dead) = (Vec::new(), Vec::new());
    for item in items {
        let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(id), Some(updated)) = (s("order_no"), s("updated_at")) else {
            dead.push(dead_letter(
                Channel::Hotline,
                "hotline work order without order_no or updated_at".into(),
                origin,
                item.to_string().as_bytes(),
            ));
            continue;
        };
        if !cursor.before(&updated, &id) {
            continue; // a page served again: already taken
        }
        *cursor = Cursor {
            updated_since: Some(updated.clone()),
            after_id: Some(id.clone()),
        };
        match map.apply(item) {
            Ok(payload) => envs.push(envelope(
                Channel::Hotline,
                &id,
                cursor.to_position(),
                payload,
                Some(updated),
            )),
            Err(why) => dead.push(dead_letter(
                Channel::Hotline,
                format!("hotline work order {id} (updated {updated}): {why}"),
                &format!("{origin}?updated_since={updated}&after_id={id}"),
                item.to_string().as_bytes(),
            )),
        }
    }
    (envs, dead)
}

pub async fn run_api(cfg: &ApiConfig, sink: &Sink, pos: Positions, mode: Mode) -> Result<()> {
    let feed = Feed::new(
        "hotline-api",
        &cfg.http,
        mode,
        sink.metrics.clone(),
        &cfg.url,
    )?;
    let map = cfg.field_map()?;
    let mut cursor = Cursor::from_position(pos.get(""));
    loop {
        let mut query = vec![("limit", cfg.page_size.to_string())];
        if let Some(s) = &cursor.updated_since {
            query.push(("updated_since", s.clone()));
        }
        if let Some(a) = &cursor.after_id {
            query.push(("after_id", a.clone()));
        }
        let body = feed.get(&cfg.url, &query).await?;
        let page: Value = serde_json::from_slice(&body)
            .with_context(|| format!("hotline API page is not JSON ({} bytes)", body.len()))?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .context("hotline API page has no `items` list")?;
        sink.metrics.received(items.len(), body.len());
        let before = cursor.clone();
        let (records, dead) = api_page(items, &mut cursor, &map, &cfg.url);
        if cursor != before || !dead.is_empty() {
            sink.commit(Commit {
                records,
                dead,
                positions: vec![(String::new(), cursor.to_position())],
            })
            .await?;
        }
        let more = page
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !more {
            if mode == Mode::Drain {
                return Ok(());
            }
            pause(cfg.poll_interval_secs).await;
        }
    }
}

/// Decode an export's bytes: UTF-8 (with or without BOM), else GB18030 (a superset of GBK).
pub fn decode_export(bytes: &[u8]) -> (String, &'static str) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return (String::from_utf8_lossy(rest).into_owned(), "utf-8");
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), "utf-8"),
        Err(_) => {
            let (s, _, _) = encoding_rs::GB18030.decode(bytes);
            (s.into_owned(), "gb18030")
        }
    }
}

/// A row of an export that could not be read: its line, the reason and its raw text.
pub type BadRow = (u64, String, Vec<u8>);

/// The rows of one export: (line, work order in the API shape), and the bad rows.
pub type ExportRows = (Vec<(u64, Value)>, Vec<BadRow>);

/// Parse one export (CSV or `.xlsx` by name) into work orders in the API shape. Rows that do
/// not fit become errors with their line number.
pub fn parse_export(
    name: &str,
    bytes: &[u8],
    columns: &BTreeMap<String, String>,
) -> Result<ExportRows> {
    let table = if name.to_ascii_lowercase().ends_with(".xlsx") {
        xlsx_rows(name, bytes)?
    } else {
        csv_rows(name, bytes)?
    };
    rows_to_orders(name, table, columns)
}

/// (line, cells, raw text) of each row; the first is the header.
type Table = Vec<(u64, Result<Vec<String>, String>, Vec<u8>)>;

fn csv_rows(name: &str, bytes: &[u8]) -> Result<Table> {
    let (text, _) = decode_export(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 1;
        match rec {
            Ok(r) => {
                let raw = r.iter().collect::<Vec<_>>().join(",").into_bytes();
                out.push((line, Ok(r.iter().map(str::to_string).collect()), raw))
            }
            Err(e) => out.push((
                line,
                Err(format!("hotline export {name} line {line}: {e}")),
                vec![],
            )),
        }
    }
    Ok(out)
}

fn xlsx_rows(name: &str, bytes: &[u8]) -> Result<Table> {
    use calamine::{Reader, Xlsx};
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec()))
        .with_context(|| format!("hotline export {name}: not a readable .xlsx file"))?;
    let sheet = wb
        .sheet_names()
        .first()
        .cloned()
        .with_context(|| format!("hotline export {name}: the workbook has no sheet"))?;
    let range = wb
        .worksheet_range(&sheet)
        .with_context(|| format!("hotline export {name}: cannot read sheet {sheet}"))?;
    let mut out = Vec::new();
    for (i, row) in range.rows().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
        let raw = cells.join(",").into_bytes();
        // Trailing empty cells (a shorter row) are not missing fields in a spreadsheet.
        out.push((i as u64 + 1, Ok(cells), raw));
    }
    Ok(out)
}

fn rows_to_orders(
    name: &str,
    table: Table,
    columns: &BTreeMap<String, String>,
) -> Result<ExportRows> {
    let mut rows = table.into_iter();
    let headers = match rows.next() {
        Some((_, Ok(h), _)) => h,
        _ => anyhow::bail!("hotline export {name}: no header row"),
    };
    let fields: Vec<Option<&String>> = headers.iter().map(|h| columns.get(h.trim())).collect();
    if !fields.iter().flatten().any(|f| f.as_str() == "order_no") {
        anyhow::bail!(
            "hotline export {name}: no column maps to order_no (headers: {})",
            headers.join(",")
        );
    }
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (line, rec, raw) in rows {
        match rec {
            Ok(r) if r.iter().all(|c| c.trim().is_empty()) => {}
            Ok(r) if r.len() == headers.len() => {
                let mut obj = Map::new();
                let mut extra = Map::new();
                for ((f, v), h) in fields.iter().zip(r.iter()).zip(headers.iter()) {
                    match f {
                        Some(f) => {
                            obj.insert((*f).clone(), Value::String(v.to_string()));
                        }
                        None if !h.trim().is_empty() => {
                            extra.insert(h.trim().to_string(), Value::String(v.to_string()));
                        }
                        None => {}
                    }
                }
                if !extra.is_empty() {
                    obj.insert("extra".into(), Value::Object(extra));
                }
                good.push((line, Value::Object(obj)));
            }
            Ok(r) => bad.push((
                line,
                format!(
                    "hotline export {name} line {line}: {} fields, header has {}",
                    r.len(),
                    headers.len()
                ),
                raw,
            )),
            Err(e) => bad.push((line, e, raw)),
        }
    }
    Ok((good, bad))
}

/// An export file is read once complete: a data file name (`.csv`, `.xlsx`), not a hidden or
/// temporary name, unmodified for `settle`.
pub fn is_ready(name: &str, age: Duration, settle: Duration) -> Option<bool> {
    let lower = name.to_ascii_lowercase();
    let data = lower.ends_with(".csv") || lower.ends_with(".xlsx");
    if !data || name.starts_with('.') || name.starts_with("~$") {
        return None;
    }
    Some(age >= settle)
}

/// The exports position: files done, and the file in progress with its last committed line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportsPosition {
    pub done: BTreeSet<String>,
    pub file: Option<String>,
    pub line: u64,
}

impl ExportsPosition {
    pub fn from_position(p: Option<&Value>) -> ExportsPosition {
        let Some(p) = p else {
            return ExportsPosition::default();
        };
        ExportsPosition {
            done: p
                .get("done")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            file: p.get("file").and_then(Value::as_str).map(str::to_string),
            line: p.get("line").and_then(Value::as_u64).unwrap_or(0),
        }
    }
    pub fn to_position(&self) -> Value {
        json!({"done": self.done, "file": self.file, "line": self.line})
    }
}

pub async fn run_exports(
    cfg: &ExportsConfig,
    sink: &Sink,
    pos: Positions,
    mode: Mode,
) -> Result<()> {
    let mut at = ExportsPosition::from_position(pos.get(""));
    let settle = Duration::from_secs(cfg.settle_secs);
    loop {
        let (ready, unsettled) = list_exports(&cfg.dir, settle)?;
        for path in ready {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if at.done.contains(&name) {
                continue;
            }
            read_one(cfg, sink, &path, &name, &mut at).await?;
        }
        if unsettled == 0 && mode == Mode::Drain {
            return Ok(());
        }
        if mode == Mode::Drain {
            // Files still being written: look again once they may have settled.
            tokio::time::sleep(settle.max(Duration::from_millis(200)) / 2).await;
        } else {
            pause(cfg.poll_interval_secs).await;
        }
    }
}

async fn read_one(
    cfg: &ExportsConfig,
    sink: &Sink,
    path: &Path,
    name: &str,
    at: &mut ExportsPosition,
) -> Result<()> {
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("hotline: reading {}", path.display()))?;
    let skip_to = if at.file.as_deref() == Some(name) {
        at.line
    } else {
        0
    };
    let parsed = parse_export(name, &bytes, &cfg.columns);
    let (rows, bad) = match parsed {
        Ok(x) => x,
        Err(e) => {
            at.done.insert(name.to_string());
            at.file = None;
            at.line = 0;
            sink.metrics.received(1, bytes.len());
            return sink
                .commit(Commit {
                    dead: vec![dead_letter(
                        Channel::Hotline,
                        format!("{e:#}"),
                        name,
                        &bytes,
                    )],
                    positions: vec![(String::new(), at.to_position())],
                    ..Commit::default()
                })
                .await;
        }
    };
    let mut items: Vec<(u64, Result<Value, BadRow>)> = rows
        .into_iter()
        .map(|(l, v)| (l, Ok(v)))
        .chain(bad.into_iter().map(|b| (b.0, Err(b))))
        .filter(|(l, _)| *l > skip_to)
        .collect();
    items.sort_by_key(|(l, _)| *l);
    sink.metrics.received(items.len(), bytes.len());
    let last_line = items.last().map(|(l, _)| *l);
    for chunk in items.chunks(cfg.rows_per_commit.max(1)) {
        let mut c = Commit::default();
        for (line, item) in chunk {
            let line = *line;
            match item {
                Ok(row) => match row
                    .get("order_no")
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                {
                    Some(id) => c.records.push(envelope(
                        Channel::Hotline,
                        id,
                        json!({"file": name, "line": line}),
                        row.clone(),
                        None,
                    )),
                    None => c.dead.push(dead_letter(
                        Channel::Hotline,
                        format!("hotline export {name} line {line}: empty 工单编号"),
                        &format!("{name}:{line}"),
                        row.to_string().as_bytes(),
                    )),
                },
                Err((_, reason, raw)) => c.dead.push(dead_letter(
                    Channel::Hotline,
                    reason.clone(),
                    &format!("{name}:{line}"),
                    raw,
                )),
            }
        }
        if chunk.last().map(|(l, _)| *l) == last_line {
            // The file's last rows: the file is done in the same transaction.
            at.done.insert(name.to_string());
            at.file = None;
            at.line = 0;
        } else {
            at.file = Some(name.to_string());
            at.line = chunk.last().map_or(at.line, |(l, _)| *l);
        }
        c.positions.push((String::new(), at.to_position()));
        sink.commit(c).await?;
    }
    if at.done.contains(name) {
        return Ok(());
    }
    at.done.insert(name.to_string());
    at.file = None;
    at.line = 0;
    sink.commit(Commit {
        positions: vec![(String::new(), at.to_position())],
        ..Commit::default()
    })
    .await
}

/// Complete export files in the folder (oldest name first), and how many are not yet settled.
/// A missing folder is empty.
fn list_exports(dir: &Path, settle: Duration) -> Result<(Vec<PathBuf>, usize)> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
        Err(e) => return Err(e).with_context(|| format!("hotline: listing {}", dir.display())),
    };
    let now = SystemTime::now();
    let mut files = Vec::new();
    let mut unsettled = 0;
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let age = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        match is_ready(&name, age, settle) {
            Some(true) => files.push(path),
            Some(false) => unsettled += 1,
            None => {}
        }
    }
    files.sort();
    Ok((files, unsettled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> BTreeMap<String, String> {
        let cfg: HotlineConfig = crate::config::load_toml(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/connectors/hotline.toml"
        )))
        .expect("config");
        cfg.exports.columns
    }

    #[test]
    fn reads_gbk_and_utf8_exports() {
        let csv = "工单编号,来电时间,诉求内容\nRX1,2026-11-01 09:00:00,路灯不亮\nRX2,2026-11-01 10:00:00\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(csv);
        let (rows, bad) = parse_export("a.csv", &gbk, &columns()).expect("parses");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1["content"], "路灯不亮");
        assert_eq!(bad.len(), 1);
        assert!(bad[0].1.contains("a.csv line 3"), "{}", bad[0].1);
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(csv.as_bytes());
        let (rows2, _) = parse_export("b.csv", &bom, &columns()).expect("parses");
        assert_eq!(rows2[0].1, rows[0].1);
        assert!(parse_export("c.csv", "x,y\n1,2\n".as_bytes(), &columns()).is_err());
    }

    #[test]
    fn reads_xlsx_exports_and_keeps_unknown_columns() {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (c, h) in ["工单编号", "诉求内容", "新字段"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).expect("cell");
        }
        for (c, v) in ["RX9", "井盖缺失，行人易摔倒", "x"].iter().enumerate() {
            ws.write_string(1, c as u16, *v).expect("cell");
        }
        let bytes = wb.save_to_buffer().expect("xlsx");
        let (rows, bad) = parse_export("d.xlsx", &bytes, &columns()).expect("parses");
        assert!(bad.is_empty());
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].1["order_no"], "RX9");
        assert_eq!(rows[0].1["content"], "井盖缺失，行人易摔倒");
        assert_eq!(rows[0].1["extra"]["新字段"], "x");
        assert!(parse_export("e.xlsx", &bytes[..bytes.len() / 2], &columns()).is_err());
    }

    #[test]
    fn only_settled_data_files_are_ready() {
        let s = Duration::from_secs(2);
        assert_eq!(
            is_ready("hotline-1.csv", Duration::from_secs(5), s),
            Some(true)
        );
        assert_eq!(
            is_ready("hotline-1.XLSX", Duration::from_secs(5), s),
            Some(true)
        );
        assert_eq!(
            is_ready("hotline-1.csv", Duration::from_millis(300), s),
            Some(false)
        );
        assert_eq!(
            is_ready(".hotline-1.csv.tmp", Duration::from_secs(5), s),
            None
        );
        assert_eq!(
            is_ready("hotline-1.csv.part", Duration::from_secs(5), s),
            None
        );
        assert_eq!(is_ready(".hidden.csv", Duration::from_secs(5), s), None);
    }

    #[test]
    fn cursor_skips_served_items_and_versions_updates() {
        let map = FieldMap {
            names: BTreeMap::new(),
            required: vec!["content".into()],
        };
        let item = |id: &str, t: &str, content: Option<&str>| {
            let mut v = json!({"order_no": id, "updated_at": t});
            if let Some(c) = content {
                v["content"] = json!(c);
            }
            v
        };
        let mut cur = Cursor::default();
        let page = [
            item("RX1", "2026-11-01T09:00:00+08:00", Some("a")),
            item("RX2", "2026-11-01T09:00:00+08:00", None),
        ];
        let (envs, dead) = api_page(&page, &mut cur, &map, "u");
        assert_eq!((envs.len(), dead.len()), (1, 1));
        assert!(dead[0].reason.contains("RX2") && dead[0].reason.contains("`content`"));
        assert_eq!(
            envs[0].version.as_deref(),
            Some("2026-11-01T09:00:00+08:00")
        );
        // The same page again (duplicate page), then RX1 updated later: only the new version.
        let again = [
            page[0].clone(),
            page[1].clone(),
            item("RX1", "2026-11-02T10:00:00+08:00", Some("b")),
        ];
        let (envs, dead) = api_page(&again, &mut cur, &map, "u");
        assert_eq!((envs.len(), dead.len()), (1, 0));
        assert_eq!(
            envs[0].version.as_deref(),
            Some("2026-11-02T10:00:00+08:00")
        );
        assert_eq!(Cursor::from_position(Some(&cur.to_position())), cur);
    }
}
