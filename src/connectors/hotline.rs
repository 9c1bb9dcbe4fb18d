//! 12345 hotline connector: the work-order API (updated-since cursor) and the folder of daily CSV
//! exports (UTF-8, GBK or GB18030). Both yield the API's record shape (schemas/raw/hotline.schema.json).

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Mode, Output, envelope, get_with_retry, http_client};
use crate::record::Channel;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotlineConfig {
    pub api: ApiConfig,
    pub exports: ExportsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub url: String,
    #[serde(default = "default_page")]
    pub page_size: u32,
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportsConfig {
    pub dir: PathBuf,
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// CSV header → API field name.
    pub columns: BTreeMap<String, String>,
}

fn default_page() -> u32 {
    200
}
fn default_poll() -> u64 {
    5
}
fn default_timeout() -> u64 {
    10
}

/// The API cursor: records with (updated_at, order_no) after it are new.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    pub updated_since: Option<String>,
    pub after_id: Option<String>,
}

pub async fn run_api(cfg: &ApiConfig, out: Output, mode: Mode) -> Result<()> {
    let client = http_client(cfg.timeout_secs)?;
    let mut cursor = Cursor::default();
    loop {
        let mut query = vec![("limit", cfg.page_size.to_string())];
        if let Some(s) = &cursor.updated_since {
            query.push(("updated_since", s.clone()));
        }
        if let Some(a) = &cursor.after_id {
            query.push(("after_id", a.clone()));
        }
        let resp = get_with_retry(&client, "hotline", &cfg.url, &query).await?;
        let body = resp
            .bytes()
            .await
            .context("hotline: reading API response")?;
        let page: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                out.dead_letter(
                    Channel::Hotline,
                    format!("hotline API page is not JSON: {e}"),
                    &cfg.url,
                    &body,
                )
                .await?;
                tokio::time::sleep(Duration::from_secs(cfg.poll_interval_secs)).await;
                continue;
            }
        };
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut envs = Vec::with_capacity(items.len());
        for item in &items {
            let id = item
                .get("order_no")
                .and_then(Value::as_str)
                .map(str::to_string);
            let updated = item
                .get("updated_at")
                .and_then(Value::as_str)
                .map(str::to_string);
            match (id, updated) {
                (Some(id), Some(updated)) => {
                    cursor = Cursor {
                        updated_since: Some(updated),
                        after_id: Some(id.clone()),
                    };
                    let pos =
                        json!({"updated_since": cursor.updated_since, "after_id": cursor.after_id});
                    envs.push(envelope(Channel::Hotline, &id, pos, item.clone()));
                }
                _ => {
                    let bytes = serde_json::to_vec(item)?;
                    out.dead_letter(
                        Channel::Hotline,
                        "hotline work order without order_no or updated_at".into(),
                        &cfg.url,
                        &bytes,
                    )
                    .await?;
                }
            }
        }
        out.emit(&envs).await?;
        let more = page
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !more {
            if mode == Mode::Drain {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(cfg.poll_interval_secs)).await;
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

/// Parse one export into work orders in the API shape. Rows that do not fit become errors with
/// their line number.
pub fn parse_export(
    name: &str,
    bytes: &[u8],
    columns: &BTreeMap<String, String>,
) -> Result<ExportRows> {
    let (text, _) = decode_export(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .with_context(|| format!("hotline export {name}: no header row"))?
        .clone();
    let fields: Vec<Option<&String>> = headers.iter().map(|h| columns.get(h.trim())).collect();
    if !fields.iter().flatten().any(|f| f.as_str() == "order_no") {
        anyhow::bail!(
            "hotline export {name}: no column maps to order_no (headers: {})",
            headers.iter().collect::<Vec<_>>().join(",")
        );
    }
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        match rec {
            Ok(r) if r.len() == headers.len() => {
                let mut obj = Map::new();
                for (f, v) in fields.iter().zip(r.iter()) {
                    if let Some(f) = f {
                        obj.insert((*f).clone(), Value::String(v.to_string()));
                    }
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
                r.as_slice().as_bytes().to_vec(),
            )),
            Err(e) => bad.push((
                line,
                format!("hotline export {name} line {line}: {e}"),
                Vec::new(),
            )),
        }
    }
    Ok((good, bad))
}

pub async fn run_exports(cfg: &ExportsConfig, out: Output, mode: Mode) -> Result<()> {
    // File name → size when read; a file that changes size is read again (its rows collapse by id).
    let mut done: HashMap<PathBuf, u64> = HashMap::new();
    loop {
        for path in list_exports(&cfg.dir)? {
            let bytes = tokio::fs::read(&path)
                .await
                .with_context(|| format!("hotline: reading {}", path.display()))?;
            if done.get(&path) == Some(&(bytes.len() as u64)) {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (rows, bad) = match parse_export(&name, &bytes, &cfg.columns) {
                Ok(x) => x,
                Err(e) => {
                    out.dead_letter(Channel::Hotline, format!("{e:#}"), &name, &bytes)
                        .await?;
                    done.insert(path, bytes.len() as u64);
                    continue;
                }
            };
            for (line, reason, raw) in bad {
                out.dead_letter(Channel::Hotline, reason, &format!("{name}:{line}"), &raw)
                    .await?;
            }
            let mut envs = Vec::with_capacity(rows.len());
            for (line, row) in rows {
                match row
                    .get("order_no")
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                {
                    Some(id) => envs.push(envelope(
                        Channel::Hotline,
                        id,
                        json!({"file": name, "line": line}),
                        row.clone(),
                    )),
                    None => {
                        out.dead_letter(
                            Channel::Hotline,
                            format!("hotline export {name} line {line}: empty 工单编号"),
                            &format!("{name}:{line}"),
                            row.to_string().as_bytes(),
                        )
                        .await?
                    }
                }
            }
            out.emit(&envs).await?;
            done.insert(path, bytes.len() as u64);
        }
        if mode == Mode::Drain {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(cfg.poll_interval_secs)).await;
    }
}

/// Complete export files in the folder, oldest name first. Files still being written use another
/// name (`.tmp`, `.part`) and are skipped. A missing folder is empty.
fn list_exports(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("hotline: listing {}", dir.display())),
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
        .collect();
    files.sort();
    Ok(files)
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
}
