//! The report as one document of blocks (headings, paragraphs, lists, tables, figures), built once
//! from the numbers, and its two writers: a self-contained HTML page and Markdown.

use std::fmt::Write;

use super::chart::escape;
use super::data::level_label;

/// A piece of running text.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    /// A number against the previous period: `+3 (+12.5%)`; coloured on the page.
    Change(i64, Option<f64>),
    /// An alert level key (`yellow`, `red`, `green`): a coloured badge on the page.
    Level(String),
    Strong(String),
    /// A line break inside a table cell (` / ` in Markdown).
    Break,
    /// A small second line inside a table cell (in brackets in Markdown).
    Note(String),
}

pub type Text = Vec<Inline>;

pub fn text(s: impl Into<String>) -> Text {
    vec![Inline::Text(s.into())]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParaKind {
    Plain,
    /// The line under the title (ids and dates).
    Meta,
    /// The summary that opens the report.
    Lead,
    /// Something the reader must not miss (no data).
    Warning,
    /// A small remark.
    Note,
}

/// What a column holds: it sets the column's width class on the page and its alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// Free text taking the remaining width.
    Free,
    /// A number, right-aligned.
    Num,
    /// A short text of fixed width (dates, units).
    Short,
    /// A change against the previous period.
    Change,
}

impl ColKind {
    fn class(self) -> Option<&'static str> {
        match self {
            ColKind::Free => None,
            ColKind::Num => Some("n"),
            ColKind::Short => Some("w"),
            ColKind::Change => Some("c"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub id: Option<&'static str>,
    pub columns: Vec<(&'static str, ColKind)>,
    pub rows: Vec<Vec<Text>>,
    /// A closing row in bold (sums).
    pub total: Option<Vec<Text>>,
}

/// A number with its label, shown as a card on the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub value: Text,
    pub label: &'static str,
    /// Colour class of the card's top border (`yellow`, `red`, `green`, `grey`); None is blue.
    pub color: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Picture {
    /// An SVG chart (see `chart`).
    Chart(String),
    Cards(Vec<Card>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Level 2 (sections) or 3 (subsections); the title is the document's level 1.
    Heading(u8, String),
    Para {
        kind: ParaKind,
        id: Option<&'static str>,
        text: Text,
    },
    List {
        id: Option<&'static str>,
        class: Option<&'static str>,
        items: Vec<Text>,
    },
    Table(Table),
    /// A picture for the page, under an optional subsection heading (with a hint on how to read
    /// the picture), and the blocks that stand in its place in Markdown.
    Figure {
        caption: Option<(String, Option<&'static str>)>,
        picture: Picture,
        in_text: Vec<Block>,
    },
}

pub fn para(text: Text) -> Block {
    Block::Para {
        kind: ParaKind::Plain,
        id: None,
        text,
    }
}

/// Cards as a one-row table: what Markdown shows in their place.
pub fn cards_table(cards: &[Card]) -> Block {
    Block::Table(Table {
        id: None,
        columns: cards.iter().map(|c| (c.label, ColKind::Num)).collect(),
        rows: vec![cards.iter().map(|c| c.value.clone()).collect()],
        total: None,
    })
}

pub struct Document {
    pub title: String,
    pub id: String,
    pub blocks: Vec<Block>,
}

pub fn change_text(change: i64, pct: Option<f64>) -> String {
    match pct {
        _ if change == 0 => "持平".to_string(),
        Some(p) => format!("{change:+} ({p:+.1}%)"),
        None => format!("{change:+} (上期为0)"),
    }
}

fn change_html(change: i64, pct: Option<f64>) -> String {
    let class = match change.signum() {
        1 => "up",
        -1 => "down",
        _ => "",
    };
    // The number and the percentage each stay whole; a narrow column breaks between them.
    let text = change_text(change, pct);
    let parts = match text.find(" (") {
        Some(i) => format!(
            r#"<span class="nw">{}</span><span class="nw">{}</span>"#,
            escape(&text[..i]),
            escape(&text[i..])
        ),
        None => format!(r#"<span class="nw">{}</span>"#, escape(&text)),
    };
    format!(r#"<span class="{class}">{parts}</span>"#)
}

// ---- HTML ----

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#222;font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei","PingFang SC",sans-serif;font-size:15px;line-height:1.6}
main{max-width:1000px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:32px 0 12px;border-left:4px solid #1f5fa8;padding-left:10px}
h3{font-size:16px;margin:18px 0 8px}
.meta{color:#666;font-size:13px}
.lead{background:#fff;border-radius:6px;padding:14px 16px;margin:16px 0}
.nodata{background:#fff4d6;border:1px solid #e6c35c;border-radius:6px;padding:12px 16px;margin:16px 0;font-weight:bold}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:12px 0}
.card{background:#fff;border-radius:6px;padding:10px 14px;border-top:4px solid #1f5fa8}
.card b{display:block;font-size:24px;overflow-wrap:anywhere}
.card .lbl{display:block;color:#555;font-size:13px}
.card.yellow{border-color:#d9a400}.card.red{border-color:#c0392b}.card.green{border-color:#2e8b57}.card.grey{border-color:#7f8c8d}
.panel{background:#fff;border-radius:6px;padding:12px 16px;margin:12px 0;overflow:hidden}
svg.chart{display:block;width:100%;height:auto;max-width:760px}
table{width:100%;border-collapse:collapse;background:#fff;table-layout:fixed;margin:8px 0}
th,td{border:1px solid #dde1e6;padding:5px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere;word-break:break-word}
th{background:#eef2f7;font-weight:600}
td.n,th.n{text-align:right;width:5.5em}
td.w,th.w{width:9em}
td.c,th.c{width:8.5em}
.nw{white-space:nowrap}
.card .nw{white-space:normal}
.up{color:#c0392b}.down{color:#2e8b57}
ul{padding-left:22px}
.notes{color:#666;font-size:13px}
.lv{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
.lv.yellow{background:#d9a400}.lv.red{background:#c0392b}.lv.green{background:#2e8b57}
@media (max-width:700px){body{font-size:12px}main{padding:12px 6px 32px}h1{font-size:19px}h2{font-size:16px}th,td{padding:3px}td.n,th.n{width:2.9em}td.w,th.w{width:4.8em}td.c,th.c{width:6.6em}.card b{font-size:18px}.cards{grid-template-columns:repeat(auto-fit,minmax(100px,1fr))}}
@media (max-width:420px){body{font-size:11px}td.n,th.n{width:2.6em}td.w,th.w{width:3.8em}td.c,th.c{width:6.2em}}
"#;

fn html_text(t: &Text) -> String {
    let mut s = String::new();
    for i in t {
        match i {
            Inline::Text(x) => s.push_str(&escape(x)),
            Inline::Change(c, p) => s.push_str(&change_html(*c, *p)),
            Inline::Level(l) => {
                let _ = write!(
                    s,
                    r#"<span class="lv {}">{}</span>"#,
                    escape(l),
                    level_label(l)
                );
            }
            Inline::Strong(x) => {
                let _ = write!(s, "<b>{}</b>", escape(x));
            }
            Inline::Break => s.push_str("<br>"),
            Inline::Note(x) => {
                let _ = write!(s, "<br><small>{}</small>", escape(x));
            }
        }
    }
    s
}

/// ` class="…"` and ` id="…"` where set.
fn attrs(class: Option<&str>, id: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(class) = class {
        let _ = write!(s, r#" class="{class}""#);
    }
    if let Some(id) = id {
        let _ = write!(s, r#" id="{id}""#);
    }
    s
}

fn html_table(s: &mut String, t: &Table) {
    let _ = write!(s, "<table{}><thead><tr>", attrs(None, t.id));
    for (head, kind) in &t.columns {
        let _ = write!(s, "<th{}>{head}</th>", attrs(kind.class(), None));
    }
    s.push_str("</tr></thead><tbody>");
    let rows = t.rows.iter().map(|r| ("td", r));
    for (cell, row) in rows.chain(t.total.iter().map(|r| ("th", r))) {
        s.push_str("<tr>");
        for ((_, kind), value) in t.columns.iter().zip(row) {
            let _ = write!(
                s,
                "<{cell}{}>{}</{cell}>",
                attrs(kind.class(), None),
                html_text(value)
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
}

fn html_block(s: &mut String, b: &Block) {
    match b {
        Block::Heading(level, t) => {
            let _ = write!(s, "<h{level}>{}</h{level}>", escape(t));
        }
        Block::Para { kind, id, text } => {
            let class = match kind {
                ParaKind::Plain => None,
                ParaKind::Meta => Some("meta"),
                ParaKind::Lead => Some("lead"),
                ParaKind::Warning => Some("nodata"),
                ParaKind::Note => Some("notes"),
            };
            let _ = write!(s, "<p{}>{}</p>", attrs(class, *id), html_text(text));
        }
        Block::List { id, class, items } => {
            let _ = write!(s, "<ul{}>", attrs(*class, *id));
            for i in items {
                let _ = write!(s, "<li>{}</li>", html_text(i));
            }
            s.push_str("</ul>");
        }
        Block::Table(t) => html_table(s, t),
        Block::Figure {
            caption, picture, ..
        } => {
            if let Some((title, hint)) = caption {
                let hint = hint.map(|h| format!("（{h}）")).unwrap_or_default();
                let _ = write!(s, "<h3>{}{hint}</h3>", escape(title));
            }
            match picture {
                Picture::Chart(svg) => {
                    let _ = write!(s, r#"<div class="panel">{svg}</div>"#);
                }
                Picture::Cards(cards) => {
                    s.push_str(r#"<div class="cards">"#);
                    for c in cards {
                        let class = c.color.map(|c| format!("card {c}"));
                        let _ = write!(
                            s,
                            r#"<div class="{}"><b>{}</b><span class="lbl">{}</span></div>"#,
                            class.as_deref().unwrap_or("card"),
                            html_text(&c.value),
                            c.label
                        );
                    }
                    s.push_str("</div>");
                }
            }
        }
    }
}

/// The page: inline CSS and SVG, nothing fetched at view time.
pub fn html(doc: &Document) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{t}</title><style>{CSS}</style></head><body><main data-report-id="{id}"><h1>{t}</h1>"#,
        t = escape(&doc.title),
        id = escape(&doc.id),
    );
    for b in &doc.blocks {
        html_block(&mut s, b);
    }
    s.push_str("</main></body></html>\n");
    s
}

// ---- Markdown ----

/// Text as Markdown that shows exactly that text: `<`, `>` and `&` as entities (no tag, script or
/// comment reaches the file), Markdown's marks backslash-escaped (no emphasis, link, code or
/// table cell), a line break as a space and a leading list or heading mark escaped (no text starts
/// a block of its own). Complaint texts, unit names and feedback go through it (issue 21, item 10).
pub fn md_escape(x: &str) -> String {
    let mut s = String::with_capacity(x.len() + 8);
    for (i, c) in x.chars().enumerate() {
        match c {
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '&' => s.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                s.push('\\');
                s.push(c);
            }
            '-' | '+' | '=' if i == 0 => {
                s.push('\\');
                s.push(c);
            }
            '\n' | '\r' => s.push(' '),
            _ => s.push(c),
        }
    }
    s
}

fn md_text(t: &Text) -> String {
    let mut s = String::new();
    for i in t {
        match i {
            Inline::Text(x) => s.push_str(&md_escape(x)),
            Inline::Change(c, p) => s.push_str(&change_text(*c, *p)),
            Inline::Level(l) => s.push_str(level_label(l)),
            Inline::Strong(x) => {
                let _ = write!(s, "**{}**", md_escape(x));
            }
            Inline::Break => s.push_str(" / "),
            Inline::Note(x) => {
                let _ = write!(s, "（{}）", md_escape(x));
            }
        }
    }
    s
}

/// A table cell's Markdown (a `|` inside is escaped and a line break is a space, by `md_escape`).
pub fn markdown_cell(t: &Text) -> String {
    md_text(t)
}

fn md_row(cells: impl IntoIterator<Item = String>) -> String {
    let mut s = "|".to_string();
    for c in cells {
        if c.is_empty() {
            s.push_str(" |");
        } else {
            let _ = write!(s, " {c} |");
        }
    }
    s.push('\n');
    s
}

fn md_table(s: &mut String, t: &Table) {
    s.push_str(&md_row(t.columns.iter().map(|(h, _)| md_escape(h))));
    for (_, kind) in &t.columns {
        s.push_str(if *kind == ColKind::Num {
            "|---:"
        } else {
            "|---"
        });
    }
    s.push_str("|\n");
    for r in &t.rows {
        s.push_str(&md_row(r.iter().map(markdown_cell)));
    }
    if let Some(total) = &t.total {
        s.push_str(&md_row(total.iter().map(|c| {
            let c = markdown_cell(c);
            if c.is_empty() { c } else { format!("**{c}**") }
        })));
    }
    s.push('\n');
}

fn md_block(s: &mut String, b: &Block) {
    match b {
        Block::Heading(level, t) => {
            let _ = writeln!(s, "{} {}\n", "#".repeat(usize::from(*level)), md_escape(t));
        }
        Block::Para { kind, text, .. } => match kind {
            ParaKind::Warning => {
                let _ = writeln!(s, "> **{}**\n", md_text(text));
            }
            _ => {
                let _ = writeln!(s, "{}\n", md_text(text));
            }
        },
        Block::List { items, .. } => {
            for i in items {
                let _ = writeln!(s, "- {}", md_text(i));
            }
            s.push('\n');
        }
        Block::Table(t) => md_table(s, t),
        Block::Figure {
            caption, in_text, ..
        } => {
            if let Some((title, _)) = caption {
                let _ = writeln!(s, "### {}\n", md_escape(title));
            }
            for b in in_text {
                md_block(s, b);
            }
        }
    }
}

/// The same document as Markdown: figures give way to the blocks that stand in their place.
pub fn markdown(doc: &Document) -> String {
    let mut s = format!("# {}\n\n", md_escape(&doc.title));
    for b in &doc.blocks {
        md_block(&mut s, b);
    }
    s.truncate(s.trim_end().len());
    s.push('\n');
    s
}
