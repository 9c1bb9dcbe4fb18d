//! Daily hotline CSV exports (`hotline-YYYYMMDD.csv`), alternating UTF-8 with BOM, GBK and
//! GB18030 by day, written to a temporary name and renamed so readers never see half files.

use super::wire::HotlineOrder;
use anyhow::Context;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

pub const HEADER: [&str; 10] = [
    "工单编号",
    "来电时间",
    "来电人",
    "联系电话",
    "诉求内容",
    "诉求分类",
    "所属区域",
    "事发地址",
    "承办单位",
    "办理状态",
];

/// The byte encoding of one day's export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportEncoding {
    Utf8Bom,
    Gbk,
    Gb18030,
}

impl ExportEncoding {
    /// Alternates by the day's ordinal so that consecutive days differ.
    pub fn for_day(day: chrono::NaiveDate) -> ExportEncoding {
        use chrono::Datelike;
        match day.num_days_from_ce() % 3 {
            0 => ExportEncoding::Utf8Bom,
            1 => ExportEncoding::Gbk,
            _ => ExportEncoding::Gb18030,
        }
    }

    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            ExportEncoding::Utf8Bom => {
                let mut v = vec![0xEF, 0xBB, 0xBF];
                v.extend_from_slice(text.as_bytes());
                v
            }
            ExportEncoding::Gbk => encoding_rs::GBK.encode(text).0.into_owned(),
            ExportEncoding::Gb18030 => encoding_rs::GB18030.encode(text).0.into_owned(),
        }
    }
}

/// The CSV text (UTF-8, before encoding) of one day's orders.
pub fn day_csv(orders: &[&HotlineOrder]) -> anyhow::Result<String> {
    day_csv_with(orders, &HashSet::new())
}

/// As [`day_csv`]; the rows of `broken` order numbers lose their last field (malformed rows).
pub fn day_csv_with(orders: &[&HotlineOrder], broken: &HashSet<String>) -> anyhow::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    w.write_record(HEADER)?;
    for o in orders {
        if broken.contains(&o.order_no) {
            w.write_record([&o.order_no, &o.call_time, &o.caller, &o.phone, &o.content])?;
            continue;
        }
        w.write_record([
            &o.order_no,
            &o.call_time,
            &o.caller,
            &o.phone,
            &o.content,
            &o.category,
            &o.district,
            &o.address,
            &o.handling_unit,
            &o.status,
        ])?;
    }
    let bytes = w.into_inner().context("flushing the CSV writer")?;
    Ok(String::from_utf8(bytes)?)
}

/// Writes one file per call day into `dir` (created if missing); returns the files written.
pub fn write_exports(dir: &Path, orders: &[HotlineOrder]) -> anyhow::Result<Vec<PathBuf>> {
    write_exports_with(dir, orders, &HashSet::new())
}

/// As [`write_exports`], with the rows of `broken` order numbers malformed.
pub fn write_exports_with(
    dir: &Path,
    orders: &[HotlineOrder],
    broken: &HashSet<String>,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating hotline export folder {}", dir.display()))?;
    let mut by_day: BTreeMap<chrono::NaiveDate, Vec<&HotlineOrder>> = BTreeMap::new();
    for o in orders {
        let day =
            chrono::NaiveDate::parse_from_str(o.call_time.get(..10).unwrap_or(""), "%Y-%m-%d")
                .with_context(|| {
                    format!(
                        "hotline order {} has call_time {:?}",
                        o.order_no, o.call_time
                    )
                })?;
        by_day.entry(day).or_default().push(o);
    }
    let mut written = Vec::new();
    for (day, mut day_orders) in by_day {
        day_orders.sort_by(|a, b| a.order_no.cmp(&b.order_no));
        let bytes = ExportEncoding::for_day(day).encode(&day_csv_with(&day_orders, broken)?);
        let name = format!("hotline-{}.csv", day.format("%Y%m%d"));
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Decodes an export file's bytes (BOM → UTF-8, else GB18030, a superset of GBK).
pub fn decode_export(bytes: &[u8]) -> String {
    match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => String::from_utf8_lossy(rest).into_owned(),
        None => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}
