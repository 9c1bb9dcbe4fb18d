//! 行政执法监督建议书 (administrative-enforcement supervision recommendation): the numbered document
//! a red alert produces, rendered as Markdown and HTML into `<data>/documents/`.

use anyhow::{Context, Result};
use chrono::Datelike;
use std::path::{Path, PathBuf};

use crate::record::{Alert, TransitionKind};

/// Issuing office of the recommendations.
pub const ISSUER: &str = "芜湖市司法局";
/// The legal basis every recommendation cites.
pub const BASIS: &str = "《芜湖市行政执法监督办法》";
/// How many evidence complaints the document lists by id (the rest are counted).
const MAX_LISTED: usize = 50;

/// A recommendation number: `芜督建〔YYYY〕N号`, numbered per year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DocumentNo {
    pub year: i32,
    pub seq: u32,
}

impl DocumentNo {
    pub fn parse(s: &str) -> Option<DocumentNo> {
        let rest = s.strip_prefix("芜督建〔")?;
        let (year, rest) = rest.split_once('〕')?;
        let seq = rest.strip_suffix('号')?;
        Some(DocumentNo {
            year: year.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The file name stem: `SR-YYYY-NNNN`.
    pub fn stem(&self) -> String {
        format!("SR-{}-{:04}", self.year, self.seq)
    }

    /// The next number of `year` after the numbers already issued.
    pub fn next<'a>(year: i32, issued: impl IntoIterator<Item = &'a str>) -> DocumentNo {
        let seq = issued
            .into_iter()
            .filter_map(DocumentNo::parse)
            .filter(|d| d.year == year)
            .map(|d| d.seq)
            .max()
            .unwrap_or(0);
        DocumentNo { year, seq: seq + 1 }
    }
}

impl std::fmt::Display for DocumentNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "芜督建〔{}〕{}号", self.year, self.seq)
    }
}

/// Where the Markdown of document `no` lives, relative to the data folder.
pub fn relative_path(no: &str) -> String {
    let stem = DocumentNo::parse(no)
        .map(|d| d.stem())
        .unwrap_or_else(|| format!("SR-{}", hex::encode(no.as_bytes())));
    format!("documents/{stem}.md")
}

/// The document's text blocks, rendered to both formats.
enum Block {
    Title(String),
    Center(String),
    Heading(String),
    Para(String),
    List(Vec<String>),
    Table(Vec<String>, Vec<Vec<String>>),
    Right(String),
}

fn blocks(a: &Alert) -> Vec<Block> {
    let no = a.lifecycle.document_no.clone().unwrap_or_default();
    let escalated = a.lifecycle.escalated_at.map(|t| t.date_naive());
    let reply = a
        .lifecycle
        .reply_deadline
        .map(|d| d.to_string())
        .unwrap_or_else(|| "—".into());
    let reason = a
        .lifecycle
        .history
        .iter()
        .rev()
        .find(|t| t.action == TransitionKind::Escalate)
        .map(|t| t.reason.clone())
        .unwrap_or_default();
    let mut listed: Vec<String> = a
        .complaint_ids
        .iter()
        .take(MAX_LISTED)
        .map(|c| format!("投诉 {c}"))
        .collect();
    if a.complaint_ids.len() > MAX_LISTED {
        listed.push(format!(
            "另有{}件，见预警 {} 的证据清单",
            a.complaint_ids.len() - MAX_LISTED,
            a.alert_id
        ));
    }
    // The document as issued: the history up to (and with) its escalation.
    let issued = a
        .lifecycle
        .history
        .iter()
        .rposition(|t| t.action == TransitionKind::Escalate)
        .map_or(a.lifecycle.history.len(), |i| i + 1);
    let history: Vec<Vec<String>> = a.lifecycle.history[..issued]
        .iter()
        .map(|t| {
            vec![
                t.seq.to_string(),
                t.at.format("%Y-%m-%d %H:%M").to_string(),
                format!("{}（{}）", t.actor, t.role),
                action_zh(t.action).to_string(),
                format!(
                    "{} → {}",
                    t.from_level.map(|l| l.label_zh()).unwrap_or("—"),
                    t.to_level.label_zh()
                ),
                t.reason.clone(),
            ]
        })
        .collect();
    let mut issue = vec![
        format!("预警编号：{}（{}）", a.alert_id, a.trigger.label_zh()),
        format!("问题概要：{}", a.summary),
        format!(
            "领域：{}；区域：{}；时间范围：{} 至 {}",
            a.domain.as_deref().unwrap_or("未分类"),
            a.district.as_deref().unwrap_or("全市"),
            a.window_start,
            a.window_end
        ),
        format!(
            "涉及投诉{}件，投诉人{}名；关键词：{}",
            a.complaint_count,
            a.distinct_complainants,
            a.key_terms.join("、")
        ),
        format!("黄色预警办理期限：{}；升级原因：{}", a.deadline, reason),
    ];
    if a.lifecycle.recurrent {
        issue.push(format!(
            "该问题属屡治屡犯（第{}次复发，前次预警 {}）",
            a.lifecycle.recurrence,
            a.lifecycle.recurrence_of.as_deref().unwrap_or("—")
        ));
    }
    vec![
        Block::Title("行政执法监督建议书".into()),
        Block::Center(no),
        Block::Para(format!("{}：", a.unit)),
        Block::Para(format!(
            "根据{BASIS}，本机关在行政执法监督工作中发现你单位承办的下列问题经黄色预警后未在期限内整改到位，现予红色督办，并提出监督建议如下。"
        )),
        Block::Heading("一、问题".into()),
        Block::List(issue),
        Block::Heading("二、证据（群众投诉）".into()),
        Block::List(listed),
        Block::Heading("三、办理经过".into()),
        Block::Table(
            ["序号", "时间", "经办", "动作", "等级", "说明"]
                .map(String::from)
                .to_vec(),
            history,
        ),
        Block::Heading("四、监督建议".into()),
        Block::Para(format!(
            "请你单位依法履行职责，立即组织整改，并于{reply}前将整改落实情况书面回复本机关。逾期未回复或整改不到位的，本机关将依照{BASIS}的规定进一步处理。"
        )),
        Block::Heading("五、依据".into()),
        Block::Para(BASIS.into()),
        Block::Right(format!(
            "{ISSUER}\n{}",
            escalated
                .map(|d| format!("{}年{}月{}日", d.year(), d.month(), d.day()))
                .unwrap_or_default()
        )),
    ]
}

/// The Chinese name of a history action.
pub fn action_zh(action: TransitionKind) -> &'static str {
    match action {
        TransitionKind::Raise => "预警下发",
        TransitionKind::Assign => "改派",
        TransitionKind::Feedback => "单位反馈",
        TransitionKind::Verify => "核实办结",
        TransitionKind::Reject => "核实未通过",
        TransitionKind::Escalate => "升级督办",
        TransitionKind::ReplyOverdue => "回复逾期",
        TransitionKind::Reopen => "重新打开",
        TransitionKind::Recur => "复发",
        TransitionKind::Merge => "合并",
        TransitionKind::Reroute => "领域更正改派",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The document as Markdown; every text is escaped (evidence and feedback come from outside).
pub fn markdown(a: &Alert) -> String {
    use crate::report::doc::md_escape as md;
    let mut s = String::new();
    for b in blocks(a) {
        match b {
            Block::Title(t) => s.push_str(&format!("# {}\n\n", md(&t))),
            Block::Center(t) | Block::Para(t) => s.push_str(&format!("{}\n\n", md(&t))),
            Block::Heading(t) => s.push_str(&format!("## {}\n\n", md(&t))),
            Block::List(items) => {
                for i in items {
                    s.push_str(&format!("- {}\n", md(&i)));
                }
                s.push('\n');
            }
            Block::Table(head, rows) => {
                let head: Vec<String> = head.iter().map(|h| md(h)).collect();
                s.push_str(&format!("| {} |\n", head.join(" | ")));
                s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for r in rows {
                    let cells: Vec<String> = r.iter().map(|c| md(c)).collect();
                    s.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
                s.push('\n');
            }
            Block::Right(t) => {
                for l in t.lines() {
                    s.push_str(&format!("{}  \n", md(l)));
                }
            }
        }
    }
    s
}

/// The document as a standalone HTML page.
pub fn html(a: &Alert) -> String {
    let no = a.lifecycle.document_no.clone().unwrap_or_default();
    let mut s = format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{} {}</title>\n<style>body{{font-family:serif;max-width:46em;margin:2em auto;line-height:1.7}}h1,.center{{text-align:center}}.right{{text-align:right}}table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #999;padding:.2em .4em;font-size:.9em}}</style></head><body>\n",
        esc("行政执法监督建议书"),
        esc(&no)
    );
    for b in blocks(a) {
        match b {
            Block::Title(t) => s.push_str(&format!("<h1>{}</h1>\n", esc(&t))),
            Block::Center(t) => s.push_str(&format!("<p class=\"center\">{}</p>\n", esc(&t))),
            Block::Para(t) => s.push_str(&format!("<p>{}</p>\n", esc(&t))),
            Block::Heading(t) => s.push_str(&format!("<h2>{}</h2>\n", esc(&t))),
            Block::List(items) => {
                s.push_str("<ul>\n");
                for i in items {
                    s.push_str(&format!("<li>{}</li>\n", esc(&i)));
                }
                s.push_str("</ul>\n");
            }
            Block::Table(head, rows) => {
                s.push_str("<table><thead><tr>");
                for h in head {
                    s.push_str(&format!("<th>{}</th>", esc(&h)));
                }
                s.push_str("</tr></thead><tbody>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        s.push_str(&format!("<td>{}</td>", esc(&c)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</tbody></table>\n");
            }
            Block::Right(t) => {
                let lines: Vec<String> = t.lines().map(esc).collect();
                s.push_str(&format!("<p class=\"right\">{}</p>\n", lines.join("<br>")));
            }
        }
    }
    s.push_str("</body></html>\n");
    s
}

/// Write the alert's document (Markdown and HTML) under `data_dir`; returns the Markdown path.
/// The content is the document as issued (history up to the escalation), so a rewrite after a
/// restart gives the same document under the same number.
pub fn write(data_dir: &Path, a: &Alert) -> Result<PathBuf> {
    let rel = a
        .lifecycle
        .document_path
        .clone()
        .context("the alert has no document")?;
    let md = data_dir.join(&rel);
    let dir = md.parent().context("document path has a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, text) in [
        (md.clone(), markdown(a)),
        (md.with_extension("html"), html(a)),
    ] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_and_continue_per_year() {
        let d = DocumentNo { year: 2026, seq: 7 };
        assert_eq!(d.to_string(), "芜督建〔2026〕7号");
        assert_eq!(DocumentNo::parse(&d.to_string()), Some(d));
        assert_eq!(relative_path(&d.to_string()), "documents/SR-2026-0007.md");
        let issued = ["芜督建〔2026〕7号", "芜督建〔2025〕9号", "x"];
        assert_eq!(
            DocumentNo::next(2026, issued),
            DocumentNo { year: 2026, seq: 8 }
        );
        assert_eq!(
            DocumentNo::next(2027, issued),
            DocumentNo { year: 2027, seq: 1 }
        );
    }
}
