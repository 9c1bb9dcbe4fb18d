//! SVG charts drawn by hand for the HTML report: horizontal bars (with the previous period's
//! value as a tick) and a trend line. Text widths are estimated so labels stay inside the chart.

use std::fmt::Write;

/// Font size of chart text, in SVG user units.
const FONT: f64 = 13.0;
/// Chart width in user units; the SVG scales to its container.
const WIDTH: f64 = 640.0;
const ROW: f64 = 24.0;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Estimated width of `s` at `size`: CJK and full-width characters are square, others narrower.
pub fn text_width(s: &str, size: f64) -> f64 {
    s.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 1.0 } else { 0.62 })
        .sum::<f64>()
        * size
}

/// Cut `s` to at most `max` estimated width, ending with … when cut.
pub fn fit(s: &str, max: f64, size: f64) -> String {
    if text_width(s, size) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        let next = format!("{out}{c}…");
        if text_width(&next, size) > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// One bar: label, value, the previous period's value (drawn as a tick) and a colour.
pub struct Bar<'a> {
    pub label: &'a str,
    pub value: u64,
    pub previous: Option<u64>,
    pub color: &'a str,
}

/// Horizontal bar chart. Each bar is a `rect.bar` whose width is proportional to its value (zero
/// width for zero), each previous value a `line.prev`.
pub fn bars(id: &str, title: &str, bars: &[Bar]) -> String {
    let label_w = bars
        .iter()
        .map(|b| text_width(b.label, FONT))
        .fold(0.0, f64::max)
        .min(WIDTH * 0.35);
    let max = bars
        .iter()
        .map(|b| b.value.max(b.previous.unwrap_or(0)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let value_w = bars
        .iter()
        .map(|b| text_width(&value_text(b), FONT))
        .fold(0.0, f64::max);
    let x0 = label_w + 12.0;
    let span = (WIDTH - x0 - value_w - 12.0).max(40.0);
    let height = ROW * bars.len().max(1) as f64 + 8.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{id}" class="chart bars" role="img" aria-label="{t}" viewBox="0 0 {WIDTH} {height}" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = escape(title)
    );
    if bars.is_empty() {
        let _ = write!(
            s,
            r#"<text class="empty" x="8" y="{}" font-size="{FONT}">无数据</text>"#,
            ROW * 0.7
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let w = b.value as f64 / max * span;
        let _ = write!(
            s,
            r#"<text class="label" x="{lx:.1}" y="{ty:.1}" font-size="{FONT}" text-anchor="end">{l}</text><rect class="bar" x="{x0:.1}" y="{by:.1}" width="{w:.1}" height="{bh:.1}" fill="{c}" rx="2"><title>{l}: {v}</title></rect>"#,
            lx = label_w + 4.0,
            ty = y + ROW * 0.62,
            l = escape(&fit(b.label, label_w, FONT)),
            by = y + 3.0,
            bh = ROW - 8.0,
            c = b.color,
            v = b.value,
        );
        if let Some(p) = b.previous {
            let px = x0 + p as f64 / max * span;
            let _ = write!(
                s,
                r##"<line class="prev" x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}" stroke="#333" stroke-width="2"><title>上期 {p}</title></line>"##,
                y + 1.0,
                y + ROW - 3.0
            );
        }
        let vx = x0 + w.max(b.previous.map_or(0.0, |p| p as f64 / max * span)) + 6.0;
        let _ = write!(
            s,
            r##"<text class="value" x="{vx:.1}" y="{ty:.1}" font-size="{FONT}" fill="#333">{}</text>"##,
            escape(&value_text(b)),
            ty = y + ROW * 0.62,
        );
    }
    s.push_str("</svg>");
    s
}

fn value_text(b: &Bar) -> String {
    match b.previous {
        Some(p) => {
            let d = b.value as i64 - p as i64;
            format!("{} ({d:+})", b.value)
        }
        None => b.value.to_string(),
    }
}

/// Line chart of daily values: a `polyline.trend-line` and one `circle.point` per day.
pub fn trend(id: &str, title: &str, points: &[(String, u64)]) -> String {
    let height = 220.0;
    let (left, right, top, bottom) = (44.0, 16.0, 16.0, 36.0);
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let n = points.len().max(2) as f64;
    let x = |i: usize| left + (WIDTH - left - right) * i as f64 / (n - 1.0);
    let y = |v: u64| top + (height - top - bottom) * (1.0 - v as f64 / max);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{id}" class="chart trend" role="img" aria-label="{t}" viewBox="0 0 {WIDTH} {height}" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = escape(title)
    );
    // Axes and the top value.
    let _ = write!(
        s,
        r##"<line class="axis" x1="{left}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}" stroke="#999"/><line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{b:.1}" stroke="#999"/><text class="tick" x="{tx:.1}" y="{ty:.1}" font-size="{FONT}" text-anchor="end">{m}</text><text class="tick" x="{tx:.1}" y="{b:.1}" font-size="{FONT}" text-anchor="end">0</text>"##,
        b = height - bottom,
        r = WIDTH - right,
        tx = left - 6.0,
        ty = top + FONT * 0.4,
        m = max as u64,
    );
    let coords: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.1)))
        .collect();
    let _ = write!(
        s,
        r##"<polyline class="trend-line" fill="none" stroke="#1f5fa8" stroke-width="2" points="{}"/>"##,
        coords.join(" ")
    );
    for (i, (label, v)) in points.iter().enumerate() {
        let _ = write!(
            s,
            r##"<circle class="point" cx="{:.1}" cy="{:.1}" r="3" fill="#1f5fa8"><title>{}: {v}</title></circle>"##,
            x(i),
            y(*v),
            escape(label)
        );
    }
    // Dates under the first, middle and last points; anchored so they stay inside the chart.
    let last = points.len().saturating_sub(1);
    for (i, anchor) in [(0, "start"), (last / 2, "middle"), (last, "end")] {
        if let Some((label, _)) = points.get(i) {
            let tx = match anchor {
                "start" => x(i) - 4.0,
                "end" => x(i) + 4.0,
                _ => x(i),
            };
            let _ = write!(
                s,
                r#"<text class="tick" x="{tx:.1}" y="{:.1}" font-size="{FONT}" text-anchor="{anchor}">{}</text>"#,
                height - bottom + FONT + 8.0,
                escape(label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_and_escaped() {
        let svg = bars(
            "c",
            "a<b",
            &[
                Bar {
                    label: "城乡建设",
                    value: 10,
                    previous: Some(5),
                    color: "#1f5fa8",
                },
                Bar {
                    label: "R&D",
                    value: 0,
                    previous: Some(2),
                    color: "#1f5fa8",
                },
            ],
        );
        assert_eq!(svg.matches(r#"class="bar""#).count(), 2);
        assert_eq!(svg.matches(r#"class="prev""#).count(), 2);
        assert!(svg.contains(r#"width="0.0""#), "a zero is a zero-width bar");
        assert!(svg.contains("a&lt;b") && svg.contains("R&amp;D"));
        assert!(svg.contains("10 (+5)") && svg.contains("0 (-2)"));
    }

    #[test]
    fn trend_has_one_point_per_day() {
        let pts: Vec<(String, u64)> = (0..30).map(|i| (format!("11-{i:02}"), i % 7)).collect();
        let svg = trend("t", "趋势", &pts);
        assert_eq!(svg.matches(r#"class="point""#).count(), 30);
        assert_eq!(svg.matches(r#"class="trend-line""#).count(), 1);
    }

    #[test]
    fn long_labels_are_cut_to_fit() {
        let s = fit("鸠江区人力资源和社会保障局劳动保障监察支队", 100.0, 13.0);
        assert!(s.ends_with('…'));
        assert!(text_width(&s, 13.0) <= 100.0);
        assert_eq!(fit("镜湖区", 100.0, 13.0), "镜湖区");
    }
}
