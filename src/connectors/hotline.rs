//! 12345 hotline connector: the work-order API (updated-since cursor, records re-emitted as a new
//! version when they change) and the folder of daily exports (CSV in UTF-8/GBK/GB18030, `.xlsx`).
//! Both yield the API's record shape (schemas/raw/hotline.schema.json).

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::board::Fetched;
use super::feed::{Feed, HttpPolicy};
use super::fields::FieldMap;
use super::table::{
    ExportReader, ReadOptions, Table, commit_rows, commit_unreadable, follow_folder, read_table,
};
pub use super::table::{ExportsPosition, decode_export, is_ready};
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
    let opts = ReadOptions {
        what: "hotline export",
        ..ReadOptions::default()
    };
    rows_to_orders(name, read_table(name, bytes, opts)?, columns)
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

pub async fn run_exports(
    cfg: &ExportsConfig,
    sink: &Sink,
    pos: Positions,
    mode: Mode,
) -> Result<()> {
    follow_folder(
        cfg,
        &cfg.dir,
        cfg.settle_secs,
        cfg.poll_interval_secs,
        sink,
        pos,
        mode,
    )
    .await
}

impl ExportReader for ExportsConfig {
    async fn read(
        &self,
        sink: &Sink,
        path: &Path,
        name: &str,
        at: &mut ExportsPosition,
    ) -> Result<()> {
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("hotline: reading {}", path.display()))?;
        let (rows, bad) = match parse_export(name, &bytes, &self.columns) {
            Ok(x) => x,
            Err(e) => {
                return commit_unreadable(sink, Channel::Hotline, name, &e, &bytes, at).await;
            }
        };
        sink.metrics.received(rows.len() + bad.len(), bytes.len());
        let dead = |line: u64, why: String, raw: &[u8]| {
            Fetched::Dead(dead_letter(
                Channel::Hotline,
                why,
                &format!("{name}:{line}"),
                raw,
            ))
        };
        let mut items: Vec<(u64, Fetched)> = rows
            .into_iter()
            .map(|(line, row)| {
                let id = row
                    .get("order_no")
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_string);
                let f = match id {
                    Some(id) => Fetched::Record(envelope(
                        Channel::Hotline,
                        &id,
                        json!({"file": name, "line": line}),
                        row,
                        None,
                    )),
                    None => dead(
                        line,
                        format!("hotline export {name} line {line}: empty 工单编号"),
                        row.to_string().as_bytes(),
                    ),
                };
                (line, f)
            })
            .collect();
        items.extend(
            bad.into_iter()
                .map(|(line, why, raw)| (line, dead(line, why, &raw))),
        );
        commit_rows(sink, name, items, at, self.rows_per_commit).await
    }
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
