//! The report as documents: a self-contained HTML page (inline CSS and SVG, nothing fetched at
//! view time) and the same content as Markdown. Both are pure functions of `ReportData`.

use std::fmt::Write;

use super::chart::{self, Bar, escape};
use super::data::{Count, ReportData, level_label};

const BLUE: &str = "#1f5fa8";
const YELLOW: &str = "#d9a400";
const RED: &str = "#c0392b";
const GREEN: &str = "#2e8b57";
const GREY: &str = "#7f8c8d";

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

fn change_text(change: i64, pct: Option<f64>) -> String {
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

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("—")
}

/// A lifecycle number, or a dash where the lake has no lifecycle data (said once beside it).
fn opt_n(n: Option<u64>) -> String {
    n.map_or_else(|| "—".to_string(), |n| n.to_string())
}

fn lifecycle_gap(a: &super::data::AlertSection) -> Option<&'static str> {
    (a.escalated_red.is_none() || a.recurrences.is_none())
        .then_some("升级红色、销号绿色、复发：无生命周期数据（“—”）。")
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

fn count_table_html(s: &mut String, name: &str, rows: &[Count]) {
    let _ = write!(
        s,
        r#"<table><thead><tr><th>{name}</th><th class="n">本期</th><th class="n">上期</th><th class="c">变化</th></tr></thead><tbody>"#
    );
    for r in rows {
        let _ = write!(
            s,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="c">{}</td></tr>"#,
            escape(&r.label),
            r.count,
            r.previous,
            change_html(r.change, r.change_pct)
        );
    }
    let total: u64 = rows.iter().map(|r| r.count).sum();
    let prev: u64 = rows.iter().map(|r| r.previous).sum();
    let _ = write!(
        s,
        r#"<tr><th>合计</th><th class="n">{total}</th><th class="n">{prev}</th><th class="w"></th></tr></tbody></table>"#
    );
}

fn count_bars<'a>(rows: &'a [Count]) -> Vec<Bar<'a>> {
    rows.iter()
        .map(|r| Bar {
            label: &r.label,
            value: r.count,
            previous: Some(r.previous),
            color: BLUE,
        })
        .collect()
}

pub fn html(d: &ReportData) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{t}</title><style>{CSS}</style></head><body><main data-report-id="{id}"><h1>{t}</h1><p class="meta">报告编号 {id} · 统计区间 {s0} 至 {e0} · 对比上期 {ps} 至 {pe} · 生成于 {g}</p>"#,
        t = escape(&d.title),
        id = escape(&d.report_id),
        s0 = d.start,
        e0 = d.end,
        ps = d.previous_start,
        pe = d.previous_end,
        g = escape(&d.generated_at),
    );
    if !d.has_data {
        s.push_str(r#"<p class="nodata" id="no-data">本期无数据：统计区间内没有受理诉求，也没有预警变化。</p>"#);
    }
    let _ = write!(s, r#"<p class="lead">{}</p>"#, escape(&lead(d)));

    // What changed most.
    s.push_str("<h2>一、变化最大</h2>");
    if d.changes.is_empty() {
        s.push_str("<p>与上期相比没有变化。</p>");
    } else {
        s.push_str(r#"<ul id="changes">"#);
        for c in &d.changes {
            let _ = write!(
                s,
                "<li>{}「{}」：本期{}，上期{}，{}</li>",
                escape(&c.dimension),
                escape(&c.label),
                c.count,
                c.previous,
                change_html(c.change, c.change_pct)
            );
        }
        s.push_str("</ul>");
    }

    // Complaints.
    let c = &d.complaints;
    let _ = write!(
        s,
        r#"<h2>二、诉求受理</h2><div class="cards"><div class="card"><b>{}</b><span class="lbl">受理诉求（件）</span></div><div class="card grey"><b>{}</b><span class="lbl">上期（件）</span></div><div class="card"><b>{}</b><span class="lbl">较上期</span></div><div class="card grey"><b>{}</b><span class="lbl">投诉人（名）</span></div><div class="card grey"><b>{}</b><span class="lbl">重复提交（件）</span></div></div>"#,
        c.total,
        c.previous_total,
        change_html(c.change, c.change_pct),
        c.complainants,
        c.duplicates
    );
    let pts: Vec<(String, u64)> = d
        .trend
        .iter()
        .map(|p| (p.day.format("%m-%d").to_string(), p.count))
        .collect();
    let _ = write!(
        s,
        r#"<h3>近{n}日诉求趋势</h3><div class="panel">{}</div>"#,
        chart::trend(
            "chart-trend",
            &format!("近{}日每日受理诉求", d.trend.len()),
            &pts
        ),
        n = d.trend.len()
    );
    for (id, name, head, rows) in [
        ("chart-channel", "按渠道", "渠道", &c.by_channel),
        ("chart-domain", "按领域", "领域", &c.by_domain),
        ("chart-district", "按区县", "区县", &c.by_district),
    ] {
        let _ = write!(
            s,
            r#"<h3>{name}（竖线为上期）</h3><div class="panel">{}</div>"#,
            chart::bars(id, &format!("{name}受理诉求"), &count_bars(rows))
        );
        count_table_html(&mut s, head, rows);
    }

    // Hot issues.
    s.push_str("<h2>三、热点问题</h2>");
    if d.hot_issues.is_empty() {
        s.push_str("<p>本期没有归入问题的诉求。</p>");
    } else {
        s.push_str(r#"<table id="hot-issues"><thead><tr><th class="n">序号</th><th>问题（代表性诉求）</th><th class="w">地点</th><th class="w">区县/领域</th><th class="n">投诉人</th><th class="n">诉求</th><th class="c">较上期（投诉人）</th></tr></thead><tbody>"#);
        for (i, h) in d.hot_issues.iter().enumerate() {
            let flags = if h.flags.is_empty() {
                String::new()
            } else {
                format!("<br><small>{}</small>", escape(&h.flags.join("、")))
            };
            let _ = write!(
                s,
                r#"<tr><td class="n">{}</td><td>{}{flags}</td><td class="w">{}</td><td class="w">{}<br>{}</td><td class="n">{}</td><td class="n">{}</td><td class="c">{}</td></tr>"#,
                i + 1,
                escape(&h.title),
                escape(opt(&h.place)),
                escape(opt(&h.district)),
                escape(opt(&h.domain)),
                h.complainants,
                h.complaints,
                change_html(
                    h.growth,
                    super::data::pct(h.complainants as i64, h.previous_complainants as i64)
                ),
            );
        }
        s.push_str("</tbody></table>");
    }

    // Complainants.
    let p = &d.complainants;
    let _ = write!(
        s,
        "<h2>四、高频投诉人</h2><p>本期有投诉的已标记高频投诉人{}名（以化名显示；列表含近30日投诉{}件及以上者）。</p>",
        p.flagged_active,
        super::data::FREQUENT_MIN_30D
    );
    if p.rows.is_empty() {
        s.push_str("<p>本期没有高频投诉人。</p>");
    } else {
        s.push_str(r#"<table id="complainants"><thead><tr><th>化名</th><th class="n">本期</th><th class="n">近30日</th><th class="n">高频标记</th><th class="w">主要领域</th><th>主要问题</th></tr></thead><tbody>"#);
        for r in &p.rows {
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="w">{}（{:.0}%）</td><td>{}</td></tr>"#,
                escape(&r.pseudonym),
                r.complaints,
                r.complaints_30d,
                if r.flagged { "是" } else { "否" },
                escape(opt(&r.focus_domain)),
                r.focus_share * 100.0,
                escape(opt(&r.focus_issue))
            );
        }
        s.push_str("</tbody></table>");
    }

    // Alerts.
    let a = &d.alerts;
    let _ = write!(
        s,
        r#"<h2>五、预警督办</h2><div class="cards"><div class="card yellow"><b>{}</b><span class="lbl">新增黄色预警</span></div><div class="card red"><b>{}</b><span class="lbl">升级红色</span></div><div class="card green"><b>{}</b><span class="lbl">销号绿色</span></div><div class="card"><b>{}</b><span class="lbl">期末在办</span></div><div class="card red"><b>{}</b><span class="lbl">超期</span></div><div class="card grey"><b>{}</b><span class="lbl">复发</span></div></div>"#,
        a.new_yellow,
        opt_n(a.escalated_red),
        opt_n(a.closed_green),
        a.open,
        a.overdue,
        opt_n(a.recurrences)
    );
    if let Some(gap) = lifecycle_gap(a) {
        let _ = write!(s, r#"<p class="notes" id="no-lifecycle">{gap}</p>"#);
    }
    let mut alert_bars = vec![Bar {
        label: "新增黄色",
        value: a.new_yellow,
        previous: None,
        color: YELLOW,
    }];
    if let Some(n) = a.escalated_red {
        alert_bars.push(Bar {
            label: "升级红色",
            value: n,
            previous: None,
            color: RED,
        });
    }
    if let Some(n) = a.closed_green {
        alert_bars.push(Bar {
            label: "销号绿色",
            value: n,
            previous: None,
            color: GREEN,
        });
    }
    alert_bars.push(Bar {
        label: "期末在办",
        value: a.open,
        previous: None,
        color: BLUE,
    });
    alert_bars.push(Bar {
        label: "超期",
        value: a.overdue,
        previous: None,
        color: GREY,
    });
    let _ = write!(
        s,
        r#"<div class="panel">{}</div>"#,
        chart::bars("chart-alerts", "预警督办", &alert_bars)
    );
    if !a.by_level.is_empty() {
        let levels: Vec<String> = a
            .by_level
            .iter()
            .map(|(k, v)| format!("{}{}条", level_label(k), v))
            .collect();
        let _ = write!(
            s,
            "<p>期末各级预警（当前等级）：{}。</p>",
            levels.join("，")
        );
    }
    if !a.by_unit.is_empty() {
        s.push_str(r#"<h3>按责任单位</h3><table id="alerts-by-unit"><thead><tr><th>责任单位</th><th class="n">新增黄色</th><th class="n">升级红色</th><th class="n">销号绿色</th><th class="n">在办</th><th class="n">超期</th></tr></thead><tbody>"#);
        for u in &a.by_unit {
            let lc = |n: u64| {
                if a.lifecycle {
                    n.to_string()
                } else {
                    "—".to_string()
                }
            };
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                escape(&u.unit),
                u.new_yellow,
                lc(u.escalated_red),
                lc(u.closed_green),
                u.open,
                u.overdue
            );
        }
        s.push_str("</tbody></table>");
    }
    match a.recurrences {
        None => s.push_str("<h3>复发预警</h3><p>无生命周期数据。</p>"),
        Some(0) => s.push_str("<h3>复发预警</h3><p>本期没有复发预警。</p>"),
        Some(_) => {
            s.push_str(r#"<h3>复发预警</h3><ul id="recurrences">"#);
            for r in &a.recurrent {
                let _ = write!(
                    s,
                    "<li>{}（{}，{}），前次预警 {}</li>",
                    escape(&r.subject),
                    escape(&r.trigger),
                    escape(&r.unit),
                    escape(opt(&r.recurrence_of))
                );
            }
            s.push_str("</ul>");
        }
    }
    if let Some(actions) = &a.actions {
        let list: Vec<String> = actions.iter().map(|(k, v)| format!("{k} {v}次")).collect();
        let _ = write!(
            s,
            "<p>本期处置记录：{}。</p>",
            if list.is_empty() {
                "无".to_string()
            } else {
                escape(&list.join("，"))
            }
        );
    }
    if !a.list.is_empty() {
        s.push_str(r#"<h3>本期新增及超期预警</h3><table id="alerts"><thead><tr><th class="w">等级</th><th class="w">类型</th><th>对象</th><th class="w">责任单位</th><th class="w">发起</th><th class="w">期限</th></tr></thead><tbody>"#);
        for r in &a.list {
            let _ = write!(
                s,
                r#"<tr><td class="w"><span class="lv {lv}">{}</span>{}</td><td class="w">{}</td><td>{}</td><td class="w">{}</td><td class="w">{}</td><td class="w">{}</td></tr>"#,
                level_label(&r.level),
                if r.overdue { " 超期" } else { "" },
                escape(&r.trigger),
                escape(&r.subject),
                escape(&r.unit),
                r.raised.map(|d| d.to_string()).unwrap_or_default(),
                r.deadline.map(|d| d.to_string()).unwrap_or_default(),
                lv = escape(&r.level),
            );
        }
        s.push_str("</tbody></table>");
    }

    // Focus categories.
    s.push_str(r#"<h2>六、三类重点诉求</h2><table id="focus"><thead><tr><th class="w">类别</th><th class="n">本期诉求</th><th class="n">上期</th><th class="c">变化</th><th class="n">涉及问题</th><th>主要问题</th></tr></thead><tbody>"#);
    for f in &d.focus {
        let _ = write!(
            s,
            r#"<tr><td class="w">{}</td><td class="n">{}</td><td class="n">{}</td><td class="c">{}</td><td class="n">{}</td><td>{}</td></tr>"#,
            escape(&f.category),
            f.complaints,
            f.previous,
            change_html(
                f.change,
                super::data::pct(f.complaints as i64, f.previous as i64)
            ),
            f.issues,
            escape(&f.examples.join("；"))
        );
    }
    s.push_str("</tbody></table>");
    if !d.notes.is_empty() {
        s.push_str(r#"<h2>说明</h2><ul class="notes">"#);
        for n in &d.notes {
            let _ = write!(s, "<li>{}</li>", escape(n));
        }
        s.push_str("</ul>");
    }
    s.push_str("</main></body></html>\n");
    s
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_count_table(s: &mut String, head: &str, rows: &[Count]) {
    let _ = writeln!(s, "| {head} | 本期 | 上期 | 变化 |\n|---|---:|---:|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            md_cell(&r.label),
            r.count,
            r.previous,
            change_text(r.change, r.change_pct)
        );
    }
    let _ = writeln!(
        s,
        "| **合计** | **{}** | **{}** | |\n",
        rows.iter().map(|r| r.count).sum::<u64>(),
        rows.iter().map(|r| r.previous).sum::<u64>()
    );
}

pub fn markdown(d: &ReportData) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", d.title);
    let _ = writeln!(
        s,
        "报告编号 {} · 统计区间 {} 至 {} · 对比上期 {} 至 {} · 生成于 {}\n",
        d.report_id, d.start, d.end, d.previous_start, d.previous_end, d.generated_at
    );
    if !d.has_data {
        s.push_str("> **本期无数据：统计区间内没有受理诉求，也没有预警变化。**\n\n");
    }
    let _ = writeln!(s, "{}\n", lead(d));
    s.push_str("## 一、变化最大\n\n");
    if d.changes.is_empty() {
        s.push_str("与上期相比没有变化。\n\n");
    } else {
        for c in &d.changes {
            let _ = writeln!(
                s,
                "- {}「{}」：本期{}，上期{}，{}",
                c.dimension,
                c.label,
                c.count,
                c.previous,
                change_text(c.change, c.change_pct)
            );
        }
        s.push('\n');
    }
    let c = &d.complaints;
    let _ = writeln!(
        s,
        "## 二、诉求受理\n\n受理诉求 **{}** 件（上期 {}，{}），投诉人 {} 名，重复提交 {} 件。\n",
        c.total,
        c.previous_total,
        change_text(c.change, c.change_pct),
        c.complainants,
        c.duplicates
    );
    let _ = writeln!(
        s,
        "### 近{}日诉求趋势\n\n| 日期 | 诉求 |\n|---|---:|",
        d.trend.len()
    );
    for p in &d.trend {
        let _ = writeln!(s, "| {} | {} |", p.day, p.count);
    }
    s.push('\n');
    for (name, head, rows) in [
        ("按渠道", "渠道", &c.by_channel),
        ("按领域", "领域", &c.by_domain),
        ("按区县", "区县", &c.by_district),
    ] {
        let _ = writeln!(s, "### {name}\n");
        md_count_table(&mut s, head, rows);
    }
    s.push_str("## 三、热点问题\n\n");
    if d.hot_issues.is_empty() {
        s.push_str("本期没有归入问题的诉求。\n\n");
    } else {
        s.push_str("| 序号 | 问题（代表性诉求） | 地点 | 区县 | 领域 | 投诉人 | 诉求 | 较上期（投诉人） | 重点类别 |\n|---:|---|---|---|---|---:|---:|---|---|\n");
        for (i, h) in d.hot_issues.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                i + 1,
                md_cell(&h.title),
                md_cell(opt(&h.place)),
                md_cell(opt(&h.district)),
                md_cell(opt(&h.domain)),
                h.complainants,
                h.complaints,
                change_text(
                    h.growth,
                    super::data::pct(h.complainants as i64, h.previous_complainants as i64)
                ),
                h.flags.join("、")
            );
        }
        s.push('\n');
    }
    let p = &d.complainants;
    let _ = writeln!(
        s,
        "## 四、高频投诉人\n\n本期有投诉的已标记高频投诉人 {} 名（以化名显示；列表含近30日投诉{}件及以上者）。\n",
        p.flagged_active,
        super::data::FREQUENT_MIN_30D
    );
    if p.rows.is_empty() {
        s.push_str("本期没有高频投诉人。\n\n");
    } else {
        s.push_str("| 化名 | 本期 | 近30日 | 高频标记 | 主要领域 | 主要问题 |\n|---|---:|---:|---|---|---|\n");
        for r in &p.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {}（{:.0}%） | {} |",
                r.pseudonym,
                r.complaints,
                r.complaints_30d,
                if r.flagged { "是" } else { "否" },
                md_cell(opt(&r.focus_domain)),
                r.focus_share * 100.0,
                md_cell(opt(&r.focus_issue))
            );
        }
        s.push('\n');
    }
    let a = &d.alerts;
    let _ = writeln!(
        s,
        "## 五、预警督办\n\n| 新增黄色 | 升级红色 | 销号绿色 | 期末在办 | 超期 | 复发 |\n|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |\n",
        a.new_yellow,
        opt_n(a.escalated_red),
        opt_n(a.closed_green),
        a.open,
        a.overdue,
        opt_n(a.recurrences)
    );
    if let Some(gap) = lifecycle_gap(a) {
        let _ = writeln!(s, "{gap}\n");
    }
    if !a.by_unit.is_empty() {
        s.push_str("### 按责任单位\n\n| 责任单位 | 新增黄色 | 升级红色 | 销号绿色 | 在办 | 超期 |\n|---|---:|---:|---:|---:|---:|\n");
        for u in &a.by_unit {
            let lc = |n: u64| {
                if a.lifecycle {
                    n.to_string()
                } else {
                    "—".to_string()
                }
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                md_cell(&u.unit),
                u.new_yellow,
                lc(u.escalated_red),
                lc(u.closed_green),
                u.open,
                u.overdue
            );
        }
        s.push('\n');
    }
    s.push_str("### 复发预警\n\n");
    match a.recurrences {
        None => s.push_str("无生命周期数据。\n\n"),
        Some(0) => s.push_str("本期没有复发预警。\n\n"),
        Some(_) => {
            for r in &a.recurrent {
                let _ = writeln!(
                    s,
                    "- {}（{}，{}），前次预警 {}",
                    r.subject,
                    r.trigger,
                    r.unit,
                    opt(&r.recurrence_of)
                );
            }
            s.push('\n');
        }
    }
    if !a.list.is_empty() {
        s.push_str("### 本期新增及超期预警\n\n| 等级 | 类型 | 对象 | 责任单位 | 发起 | 期限 |\n|---|---|---|---|---|---|\n");
        for r in &a.list {
            let _ = writeln!(
                s,
                "| {}{} | {} | {} | {} | {} | {} |",
                level_label(&r.level),
                if r.overdue { " 超期" } else { "" },
                r.trigger,
                md_cell(&r.subject),
                md_cell(&r.unit),
                r.raised.map(|d| d.to_string()).unwrap_or_default(),
                r.deadline.map(|d| d.to_string()).unwrap_or_default()
            );
        }
        s.push('\n');
    }
    s.push_str("## 六、三类重点诉求\n\n| 类别 | 本期诉求 | 上期 | 变化 | 涉及问题 | 主要问题 |\n|---|---:|---:|---|---:|---|\n");
    for f in &d.focus {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            f.category,
            f.complaints,
            f.previous,
            change_text(
                f.change,
                super::data::pct(f.complaints as i64, f.previous as i64)
            ),
            f.issues,
            md_cell(&f.examples.join("；"))
        );
    }
    if !d.notes.is_empty() {
        s.push_str("\n## 说明\n\n");
        for n in &d.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}
