//! Optional replay corpus: reads `messages_unlabeled.csv` of the teddy data set (UTF-8 or GBK)
//! so the simulator can serve real message texts instead of generated ones. Nothing is copied.

use anyhow::{Context, bail};
use chrono::NaiveDateTime;
use std::path::Path;

/// One message of the replay CSV (留言编号,留言用户,留言主题,留言时间,留言详情).
#[derive(Debug, Clone, PartialEq)]
pub struct TeddyMessage {
    pub id: String,
    pub user: String,
    pub title: String,
    pub time: NaiveDateTime,
    pub body: String,
}

/// `Ok(None)` when the directory has no `messages_unlabeled.csv`.
pub fn load(dir: &Path) -> anyhow::Result<Option<Vec<TeddyMessage>>> {
    let path = dir.join("messages_unlabeled.csv");
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes)
        .with_context(|| format!("parsing {}", path.display()))
        .map(Some)
}

/// Decodes (UTF-8 with or without BOM, else GB18030) and parses the CSV.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Vec<TeddyMessage>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s.trim_start_matches('\u{feff}').to_string(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .context("reading the header row")?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(id), Some(user), Some(title), Some(time), Some(body)) = (
        col("留言编号"),
        col("留言用户"),
        col("留言主题"),
        col("留言时间"),
        col("留言详情"),
    ) else {
        bail!(
            "expected columns 留言编号,留言用户,留言主题,留言时间,留言详情, found {}",
            headers.join(",")
        );
    };
    let mut out = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("row {}", n + 2))?;
        let field = |i: usize| row.get(i).unwrap_or("").trim().to_string();
        let Some(at) = parse_time(&field(time)) else {
            // A message without a readable time cannot be placed in the window; skip it.
            continue;
        };
        let body_text = field(body);
        if body_text.is_empty() {
            continue;
        }
        out.push(TeddyMessage {
            id: field(id),
            user: field(user),
            title: field(title),
            time: at,
            body: body_text,
        });
    }
    Ok(out)
}

/// `2019/2/21 10:52:03` or `2019-02-21 10:52:03`.
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().replace('/', "-");
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_time_forms_and_gbk() {
        let csv = "留言编号,留言用户,留言主题,留言时间,留言详情\n1,A00001,路灯不亮,2019/2/21 10:52:03,小区路灯坏了很久\n2,A00002,噪音,2019-02-22 08:00:00,\"楼下施工, 很吵\"\n3,A3,坏时间,昨天,内容\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(csv);
        for bytes in [csv.as_bytes(), &gbk[..]] {
            let m = parse(bytes).unwrap();
            assert_eq!(m.len(), 2);
            assert_eq!(m[0].time.to_string(), "2019-02-21 10:52:03");
            assert_eq!(m[1].body, "楼下施工, 很吵");
        }
    }
}
