//! The report as documents: one `doc::Document` built from `ReportData`, written as a
//! self-contained HTML page (inline CSS and SVG, nothing fetched at view time) and as Markdown.

use std::fmt::Write;

use super::chart::{self, Bar};
use super::data::{AlertSection, Count, FREQUENT_MIN_30D, ReportData, level_label, pct};
use super::doc::{
    Block, Card, ColKind, Document, Inline, ParaKind, Picture, Table, Text, cards_table,
    change_text, para, text,
};

const BLUE: &str = "#1f5fa8";
const YELLOW: &str = "#d9a400";
const RED: &str = "#c0392b";
const GREEN: &str = "#2e8b57";
const GREY: &str = "#7f8c8d";

use ColKind::{Change, Free, Num, Short};

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("—")
}

/// A lifecycle number, or a dash where the lake has no lifecycle data (said once beside it).
fn opt_n(n: Option<u64>) -> String {
    n.map_or_else(|| "—".to_string(), |n| n.to_string())
}

fn lifecycle_gap(a: &AlertSection) -> Option<&'static str> {
    (a.escalated_red.is_none() || a.recurrences.is_none())
        .then_some("升级红色、销号绿色、复发：无生命周期数据（“—”）。")
}

fn num(n: impl ToString) -> Text {
    text(n.to_string())
}

fn change(c: i64, p: Option<f64>) -> Text {
    vec![Inline::Change(c, p)]
}

/// The one-paragraph summary that opens both documents.
pub fn lead(d: &ReportData) -> String {
    let c = &d.complaints;
    let mut s = format!(
        "本期（{}至{}）共受理诉求{}件，较上期{}，涉及投诉人{}名，其中重复提交{}件。",
        d.start,
        d.end,
        c.total,
        change_text(c.change, c.change_pct),
        c.complainants,
        c.duplicates
    );
    if let Some(top) = c.by_domain.first().filter(|x| x.count > 0) {
        let _ = write!(s, "诉求最多的领域为{}（{}件）。", top.label, top.count);
    }
    if let Some(h) = d.hot_issues.first() {
        let _ = write!(s, "最热问题：{}（{}名投诉人）。", h.title, h.complainants);
    }
    let a = &d.alerts;
    let _ = write!(
        s,
        "新增黄色预警{}条，期末在办{}条，其中超期{}条。",
        a.new_yellow, a.open, a.overdue
    );
    s
}

/// Counts by channel, domain or district against the previous period, with their sums.
fn count_table(head: &'static str, rows: &[Count]) -> Block {
    Block::Table(Table {
        id: None,
        columns: vec![(head, Free), ("本期", Num), ("上期", Num), ("变化", Change)],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    text(&r.label),
                    num(r.count),
                    num(r.previous),
                    change(r.change, r.change_pct),
                ]
            })
            .collect(),
        total: Some(vec![
            text("合计"),
            num(rows.iter().map(|r| r.count).sum::<u64>()),
            num(rows.iter().map(|r| r.previous).sum::<u64>()),
            Vec::new(),
        ]),
    })
}

fn count_bars(rows: &[Count]) -> Vec<Bar<'_>> {
    rows.iter()
        .map(|r| Bar {
            label: &r.label,
            value: r.count,
            previous: Some(r.previous),
            color: BLUE,
        })
        .collect()
}

fn chart(
    caption: Option<(String, Option<&'static str>)>,
    svg: String,
    in_text: Vec<Block>,
) -> Block {
    Block::Figure {
        caption,
        picture: Picture::Chart(svg),
        in_text,
    }
}

fn card(value: Text, label: &'static str, color: Option<&'static str>) -> Card {
    Card {
        value,
        label,
        color,
    }
}

fn h2(t: &str) -> Block {
    Block::Heading(2, t.to_string())
}

fn h3(t: &str) -> Block {
    Block::Heading(3, t.to_string())
}

fn head(d: &ReportData, out: &mut Vec<Block>) {
    out.push(Block::Para {
        kind: ParaKind::Meta,
        id: None,
        text: text(format!(
            "报告编号 {} · 统计区间 {} 至 {} · 对比上期 {} 至 {} · 生成于 {}",
            d.report_id, d.start, d.end, d.previous_start, d.previous_end, d.generated_at
        )),
    });
    if !d.has_data {
        out.push(Block::Para {
            kind: ParaKind::Warning,
            id: Some("no-data"),
            text: text("本期无数据：统计区间内没有受理诉求，也没有预警变化。"),
        });
    }
    out.push(Block::Para {
        kind: ParaKind::Lead,
        id: None,
        text: text(lead(d)),
    });
}

fn changes(d: &ReportData, out: &mut Vec<Block>) {
    out.push(h2("一、变化最大"));
    if d.changes.is_empty() {
        out.push(para(text("与上期相比没有变化。")));
        return;
    }
    out.push(Block::List {
        id: Some("changes"),
        class: None,
        items: d
            .changes
            .iter()
            .map(|c| {
                vec![
                    Inline::Text(format!(
                        "{}「{}」：本期{}，上期{}，",
                        c.dimension, c.label, c.count, c.previous
                    )),
                    Inline::Change(c.change, c.change_pct),
                ]
            })
            .collect(),
    });
}

fn complaints(d: &ReportData, out: &mut Vec<Block>) {
    let c = &d.complaints;
    out.push(h2("二、诉求受理"));
    out.push(Block::Figure {
        caption: None,
        picture: Picture::Cards(vec![
            card(num(c.total), "受理诉求（件）", None),
            card(num(c.previous_total), "上期（件）", Some("grey")),
            card(change(c.change, c.change_pct), "较上期", None),
            card(num(c.complainants), "投诉人（名）", Some("grey")),
            card(num(c.duplicates), "重复提交（件）", Some("grey")),
        ]),
        in_text: vec![para(vec![
            Inline::Text("受理诉求 ".into()),
            Inline::Strong(c.total.to_string()),
            Inline::Text(format!(" 件（上期 {}，", c.previous_total)),
            Inline::Change(c.change, c.change_pct),
            Inline::Text(format!(
                "），投诉人 {} 名，重复提交 {} 件。",
                c.complainants, c.duplicates
            )),
        ])],
    });
    let pts: Vec<(String, u64)> = d
        .trend
        .iter()
        .map(|p| (p.day.format("%m-%d").to_string(), p.count))
        .collect();
    let n = d.trend.len();
    let days = Table {
        id: None,
        columns: vec![("日期", Free), ("诉求", Num)],
        rows: d
            .trend
            .iter()
            .map(|p| vec![num(p.day), num(p.count)])
            .collect(),
        total: None,
    };
    out.push(chart(
        Some((format!("近{n}日诉求趋势"), None)),
        chart::trend("chart-trend", &format!("近{n}日每日受理诉求"), &pts),
        vec![Block::Table(days)],
    ));
    for (id, name, head, rows) in [
        ("chart-channel", "按渠道", "渠道", &c.by_channel),
        ("chart-domain", "按领域", "领域", &c.by_domain),
        ("chart-district", "按区县", "区县", &c.by_district),
    ] {
        out.push(chart(
            Some((name.to_string(), Some("竖线为上期"))),
            chart::bars(id, &format!("{name}受理诉求"), &count_bars(rows)),
            Vec::new(),
        ));
        out.push(count_table(head, rows));
    }
}

fn hot_issues(d: &ReportData, out: &mut Vec<Block>) {
    out.push(h2("三、热点问题"));
    if d.hot_issues.is_empty() {
        out.push(para(text("本期没有归入问题的诉求。")));
        return;
    }
    let rows = d.hot_issues.iter().enumerate().map(|(i, h)| {
        let mut title = text(&h.title);
        if !h.flags.is_empty() {
            title.push(Inline::Note(h.flags.join("、")));
        }
        vec![
            num(i + 1),
            title,
            text(opt(&h.place)),
            vec![
                Inline::Text(opt(&h.district).into()),
                Inline::Break,
                Inline::Text(opt(&h.domain).into()),
            ],
            num(h.complainants),
            num(h.complaints),
            change(
                h.growth,
                pct(h.complainants as i64, h.previous_complainants as i64),
            ),
        ]
    });
    out.push(Block::Table(Table {
        id: Some("hot-issues"),
        columns: vec![
            ("序号", Num),
            ("问题（代表性诉求）", Free),
            ("地点", Short),
            ("区县/领域", Short),
            ("投诉人", Num),
            ("诉求", Num),
            ("较上期（投诉人）", Change),
        ],
        rows: rows.collect(),
        total: None,
    }));
}

fn complainants(d: &ReportData, out: &mut Vec<Block>) {
    let p = &d.complainants;
    out.push(h2("四、高频投诉人"));
    out.push(para(text(format!(
        "本期有投诉的已标记高频投诉人{}名（以化名显示；列表含近30日投诉{FREQUENT_MIN_30D}件及以上者）。",
        p.flagged_active
    ))));
    if p.rows.is_empty() {
        out.push(para(text("本期没有高频投诉人。")));
        return;
    }
    let rows = p.rows.iter().map(|r| {
        vec![
            text(&r.pseudonym),
            num(r.complaints),
            num(r.complaints_30d),
            text(if r.flagged { "是" } else { "否" }),
            text(format!(
                "{}（{:.0}%）",
                opt(&r.focus_domain),
                r.focus_share * 100.0
            )),
            text(opt(&r.focus_issue)),
        ]
    });
    out.push(Block::Table(Table {
        id: Some("complainants"),
        columns: vec![
            ("化名", Free),
            ("本期", Num),
            ("近30日", Num),
            ("高频标记", Num),
            ("主要领域", Short),
            ("主要问题", Free),
        ],
        rows: rows.collect(),
        total: None,
    }));
}

fn alert_bars(a: &AlertSection) -> Vec<Bar<'static>> {
    let bar = |label, value, color| Bar {
        label,
        value,
        previous: None,
        color,
    };
    let mut bars = vec![bar("新增黄色", a.new_yellow, YELLOW)];
    if let Some(n) = a.escalated_red {
        bars.push(bar("升级红色", n, RED));
    }
    if let Some(n) = a.closed_green {
        bars.push(bar("销号绿色", n, GREEN));
    }
    bars.push(bar("期末在办", a.open, BLUE));
    bars.push(bar("超期", a.overdue, GREY));
    bars
}

fn alerts(d: &ReportData, out: &mut Vec<Block>) {
    let a = &d.alerts;
    out.push(h2("五、预警督办"));
    let cards = vec![
        card(num(a.new_yellow), "新增黄色预警", Some("yellow")),
        card(text(opt_n(a.escalated_red)), "升级红色", Some("red")),
        card(text(opt_n(a.closed_green)), "销号绿色", Some("green")),
        card(num(a.open), "期末在办", None),
        card(num(a.overdue), "超期", Some("red")),
        card(text(opt_n(a.recurrences)), "复发", Some("grey")),
    ];
    out.push(Block::Figure {
        caption: None,
        in_text: vec![cards_table(&cards)],
        picture: Picture::Cards(cards),
    });
    if let Some(gap) = lifecycle_gap(a) {
        out.push(Block::Para {
            kind: ParaKind::Note,
            id: Some("no-lifecycle"),
            text: text(gap),
        });
    }
    out.push(chart(
        None,
        chart::bars("chart-alerts", "预警督办", &alert_bars(a)),
        Vec::new(),
    ));
    if !a.by_level.is_empty() {
        let levels: Vec<String> = a
            .by_level
            .iter()
            .map(|(k, v)| format!("{}{}条", level_label(k), v))
            .collect();
        out.push(para(text(format!(
            "期末各级预警（当前等级）：{}。",
            levels.join("，")
        ))));
    }
    if !a.by_unit.is_empty() {
        let lc = |n: u64| {
            if a.lifecycle { num(n) } else { text("—") }
        };
        out.push(h3("按责任单位"));
        out.push(Block::Table(Table {
            id: Some("alerts-by-unit"),
            columns: vec![
                ("责任单位", Free),
                ("新增黄色", Num),
                ("升级红色", Num),
                ("销号绿色", Num),
                ("在办", Num),
                ("超期", Num),
            ],
            rows: a
                .by_unit
                .iter()
                .map(|u| {
                    vec![
                        text(&u.unit),
                        num(u.new_yellow),
                        lc(u.escalated_red),
                        lc(u.closed_green),
                        num(u.open),
                        num(u.overdue),
                    ]
                })
                .collect(),
            total: None,
        }));
    }
    out.push(h3("复发预警"));
    match a.recurrences {
        None => out.push(para(text("无生命周期数据。"))),
        Some(0) => out.push(para(text("本期没有复发预警。"))),
        Some(_) => out.push(Block::List {
            id: Some("recurrences"),
            class: None,
            items: a
                .recurrent
                .iter()
                .map(|r| {
                    text(format!(
                        "{}（{}，{}），前次预警 {}",
                        r.subject,
                        r.trigger,
                        r.unit,
                        opt(&r.recurrence_of)
                    ))
                })
                .collect(),
        }),
    }
    if let Some(actions) = &a.actions {
        let list: Vec<String> = actions.iter().map(|(k, v)| format!("{k} {v}次")).collect();
        let list = if list.is_empty() {
            "无".to_string()
        } else {
            list.join("，")
        };
        out.push(para(text(format!("本期处置记录：{list}。"))));
    }
    if !a.list.is_empty() {
        let date =
            |d: Option<chrono::NaiveDate>| text(d.map(|d| d.to_string()).unwrap_or_default());
        out.push(h3("本期新增及超期预警"));
        out.push(Block::Table(Table {
            id: Some("alerts"),
            columns: vec![
                ("等级", Short),
                ("类型", Short),
                ("对象", Free),
                ("责任单位", Short),
                ("发起", Short),
                ("期限", Short),
            ],
            rows: a
                .list
                .iter()
                .map(|r| {
                    vec![
                        vec![
                            Inline::Level(r.level.clone()),
                            Inline::Text(if r.overdue { " 超期" } else { "" }.into()),
                        ],
                        text(&r.trigger),
                        text(&r.subject),
                        text(&r.unit),
                        date(r.raised),
                        date(r.deadline),
                    ]
                })
                .collect(),
            total: None,
        }));
    }
}

fn focus(d: &ReportData, out: &mut Vec<Block>) {
    out.push(h2("六、三类重点诉求"));
    out.push(Block::Table(Table {
        id: Some("focus"),
        columns: vec![
            ("类别", Short),
            ("本期诉求", Num),
            ("上期", Num),
            ("变化", Change),
            ("涉及问题", Num),
            ("主要问题", Free),
        ],
        rows: d
            .focus
            .iter()
            .map(|f| {
                vec![
                    text(&f.category),
                    num(f.complaints),
                    num(f.previous),
                    change(f.change, pct(f.complaints as i64, f.previous as i64)),
                    num(f.issues),
                    text(f.examples.join("；")),
                ]
            })
            .collect(),
        total: None,
    }));
    if !d.notes.is_empty() {
        out.push(h2("说明"));
        out.push(Block::List {
            id: None,
            class: Some("notes"),
            items: d.notes.iter().map(text).collect(),
        });
    }
}

/// The report's content, section by section, once for both documents.
pub fn document(d: &ReportData) -> Document {
    let mut blocks = Vec::new();
    for section in [
        head,
        changes,
        complaints,
        hot_issues,
        complainants,
        alerts,
        focus,
    ] {
        section(d, &mut blocks);
    }
    Document {
        title: d.title.clone(),
        id: d.report_id.clone(),
        blocks,
    }
}

pub fn html(d: &ReportData) -> String {
    super::doc::html(&document(d))
}

pub fn markdown(d: &ReportData) -> String {
    super::doc::markdown(&document(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small report with text that needs escaping in both documents.
    fn sample(lifecycle: bool) -> ReportData {
        let count = |label: &str, count: u64, previous: u64| {
            json!({"key": label, "label": label, "count": count, "previous": previous,
                   "change": count as i64 - previous as i64,
                   "change_pct": pct(count as i64, previous as i64)})
        };
        let alert = |id: &str, level: &str, overdue: bool| {
            json!({"alert_id": id, "trigger": "群众诉求集中", "level": level, "subject": "A<1>",
                   "unit": "甲单位", "raised": "2026-11-17", "deadline": "2026-11-24",
                   "overdue": overdue, "recurrence_of": "A0"})
        };
        let n = |v: u64| if lifecycle { json!(v) } else { json!(null) };
        serde_json::from_value(json!({
            "report_id": "week-2026-11-16", "period": "week", "title": "周报 <测试>",
            "start": "2026-11-16", "end": "2026-11-22",
            "previous_start": "2026-11-09", "previous_end": "2026-11-15",
            "generated_at": "2026-11-23T07:30:00+08:00", "has_data": lifecycle,
            "complaints": {"total": 12, "previous_total": 8, "change": 4, "change_pct": 50.0,
                "duplicates": 1, "complainants": 9,
                "by_channel": [count("12345热线", 7, 5), count("市长信箱", 5, 3)],
                "by_domain": [count("城乡建设", 12, 8)], "by_district": [count("镜湖区", 12, 8)]},
            "trend": [{"day": "2026-11-21", "count": 4}, {"day": "2026-11-22", "count": 8}],
            "hot_issues": [{"issue_id": "i1", "title": "物业费 a|b <上调>", "place": "香荷小区",
                "district": "南陵县", "domain": null, "complainants": 5, "complaints": 6,
                "previous_complainants": 1, "growth": 4, "flags": ["共性问题", "职责争议"]}],
            "complainants": {"flagged_active": 1, "rows": [{"pseudonym": "p_ab12",
                "complaints": 4, "complaints_30d": 9, "flagged": true,
                "focus_domain": "城乡建设", "focus_share": 0.75, "focus_issue": null}]},
            "alerts": {"lifecycle": lifecycle, "new_yellow": 2, "escalated_red": n(1),
                "closed_green": n(1), "open": 3, "overdue": 1,
                "by_level": {"red": 1, "yellow": 2},
                "by_unit": [{"unit": "甲单位", "new_yellow": 2, "escalated_red": 1,
                    "closed_green": 1, "open": 3, "overdue": 1}],
                "recurrences": n(1), "recurrent": [alert("A4", "yellow", false)],
                "actions": if lifecycle { json!({"raise": 2}) } else { json!(null) },
                "list": [alert("A4", "yellow", false), alert("A2", "red", true)]},
            "focus": [{"category": "职责争议", "complaints": 3, "previous": 0, "change": 3,
                "issues": 1, "examples": ["物业费"]}],
            "changes": [{"dimension": "渠道", "label": "12345热线", "count": 7, "previous": 5,
                "change": 2, "change_pct": 40.0}],
            "notes": ["湖中尚无诉求表"]
        }))
        .expect("sample report")
    }

    fn tables(doc: &Document) -> Vec<&Table> {
        let mut out = Vec::new();
        for b in &doc.blocks {
            match b {
                Block::Table(t) => out.push(t),
                Block::Figure { in_text, .. } => out.extend(in_text.iter().filter_map(|b| {
                    if let Block::Table(t) = b {
                        Some(t)
                    } else {
                        None
                    }
                })),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn both_documents_carry_every_section_and_table() {
        for lifecycle in [true, false] {
            let d = sample(lifecycle);
            let (h, m) = (html(&d), markdown(&d));
            for heading in [
                "一、变化最大",
                "二、诉求受理",
                "三、热点问题",
                "四、高频投诉人",
            ] {
                assert!(h.contains(&format!("<h2>{heading}</h2>")), "{heading}");
                assert!(m.contains(&format!("## {heading}\n")), "{heading}");
            }
            for id in [
                "changes",
                "hot-issues",
                "complainants",
                "alerts-by-unit",
                "alerts",
                "focus",
            ] {
                assert!(
                    h.contains(&format!(r#"<table id="{id}">"#))
                        || h.contains(&format!(r#"<ul id="{id}">"#)),
                    "{id}"
                );
            }
            for chart in [
                "chart-trend",
                "chart-channel",
                "chart-domain",
                "chart-district",
                "chart-alerts",
            ] {
                assert!(h.contains(&format!(r#"<svg id="{chart}""#)), "{chart}");
            }
            // Markdown: every table has as many cells in each row as in its head.
            for block in m.split("\n\n").filter(|b| b.starts_with('|')) {
                let cells = |line: &str| line.replace("\\|", "").matches('|').count();
                let lines: Vec<&str> = block.lines().collect();
                assert!(lines.iter().all(|l| cells(l) == cells(lines[0])), "{block}");
            }
            // Text is escaped for each format, never lost.
            assert!(h.contains("物业费 a|b &lt;上调&gt;<br><small>共性问题、职责争议</small>"));
            assert!(m.contains(
                "| 物业费 a\\|b &lt;上调&gt;（共性问题、职责争议） | 香荷小区 | 南陵县 / — |"
            ));
            assert!(
                h.contains("<title>周报 &lt;测试&gt;</title>")
                    && m.starts_with("# 周报 &lt;测试&gt;\n")
            );
            assert_eq!(h.contains(r#"id="no-data""#), !lifecycle);
            assert_eq!(m.contains("> **本期无数据"), !lifecycle);
            assert_eq!(h.contains(r#"id="no-lifecycle""#), !lifecycle);
            assert_eq!(m.contains("无生命周期数据（“—”）"), !lifecycle);
        }
    }

    /// Issue 21, item 10: complaint text reached the `.md` raw, `<script>` and all.
    #[test]
    fn outside_text_is_inert_in_markdown() {
        let mut d = sample(true);
        let hostile =
            "<script>alert(1)</script> [点我](javascript:x) **粗** `c`\n# 标题 <!-- x -->";
        d.hot_issues[0].title = hostile.into();
        d.title = format!("周报{hostile}");
        let m = markdown(&d);
        for raw in [
            "<script",
            "</script",
            "[点我](",
            "**粗**",
            "`c`",
            "\n# 标题",
            "<!--",
        ] {
            assert!(!m.contains(raw), "{raw} survives:\n{m}");
        }
        // Shown as written: each mark escaped, the tags as entities.
        assert!(
            m.contains(
                "&lt;script&gt;alert(1)&lt;/script&gt; \\[点我\\](javascript:x) \\*\\*粗\\*\\* \\`c\\` \\# 标题 &lt;!-- x --&gt;"
            ),
            "{m}"
        );
        assert_eq!(crate::report::doc::md_escape("- a"), "\\- a");
        assert_eq!(crate::report::doc::md_escape("a-b"), "a-b");
    }

    #[test]
    fn figures_stand_in_markdown_by_their_text() {
        let d = sample(true);
        let (h, m) = (html(&d), markdown(&d));
        // Cards on the page, a sentence or a one-row table in Markdown.
        assert!(h.contains(
            r#"<div class="card"><b>12</b><span class="lbl">受理诉求（件）</span></div>"#
        ));
        assert!(
            m.contains("受理诉求 **12** 件（上期 8，+4 (+50.0%)），投诉人 9 名，重复提交 1 件。")
        );
        assert!(m.contains("| 新增黄色预警 | 升级红色 | 销号绿色 | 期末在办 | 超期 | 复发 |\n|---:|---:|---:|---:|---:|---:|\n| 2 | 1 | 1 | 3 | 1 | 1 |\n"));
        // The trend chart is a table of days in Markdown; bar charts only on the page.
        assert!(
            m.contains("### 近2日诉求趋势\n\n| 日期 | 诉求 |\n|---|---:|\n| 2026-11-21 | 4 |\n")
        );
        assert!(h.contains("<h3>按渠道（竖线为上期）</h3><div class=\"panel\"><svg"));
        assert!(m.contains("### 按渠道\n\n| 渠道 | 本期 | 上期 | 变化 |") && !m.contains("<svg"));
        // Sums close the count tables in both.
        assert!(m.contains("| **合计** | **12** | **8** | |"));
        assert!(h.contains(
            r#"<tr><th>合计</th><th class="n">12</th><th class="n">8</th><th class="c"></th></tr>"#
        ));
        // Changes are coloured on the page, plain in Markdown.
        assert!(h.contains(
            r#"<span class="up"><span class="nw">+2</span><span class="nw"> (+40.0%)</span></span>"#
        ));
        assert!(m.contains("- 渠道「12345热线」：本期7，上期5，+2 (+40.0%)\n"));
        // Alert levels: a badge on the page, the word in Markdown.
        assert!(h.contains(r#"<td class="w"><span class="lv red">红色</span> 超期</td>"#));
        assert!(m.contains(
            "| 红色 超期 | 群众诉求集中 | A&lt;1&gt; | 甲单位 | 2026-11-17 | 2026-11-24 |"
        ));
        // The same cells in both: every table of the document, row by row.
        let doc = document(&d);
        let all = tables(&doc);
        assert_eq!(
            all.len(),
            10,
            "alert cards, trend, 3 counts, issues, people, units, alerts, focus"
        );
        for t in all {
            for row in &t.rows {
                let plain: Vec<String> =
                    row.iter().map(crate::report::doc::markdown_cell).collect();
                assert!(
                    m.contains(&format!("| {} |", plain.join(" | "))),
                    "{plain:?}"
                );
            }
        }
    }
}
