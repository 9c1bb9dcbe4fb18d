//! Outside text in logs, errors and dead-letter reasons: escaped so that no value can start a log
//! line of its own, truncated, and JSON errors told without the values they would quote.
//! Reasons name the record, the field and what is wrong, never a field's value.

/// Longest piece of outside text (an id, a file name) put into a message, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest reason of a dead letter, in characters.
pub const MAX_REASON_CHARS: usize = 400;

/// `s` on one line: control characters (line breaks, escapes of terminals, …) written as `\n`,
/// `\u{1b}`, …; cut at `max` characters with `…`.
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A name from outside (a record id, a file name) for a message.
pub fn name(s: &str) -> String {
    printable(s, MAX_NAME_CHARS)
}

/// A JSON error without the input it may quote: its kind and position, and for a data error its
/// message with quoted values replaced by `…` (field and type names stay).
pub fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("at line {} column {}", e.line(), e.column());
    match e.classify() {
        Category::Io => format!("read error {at}"),
        Category::Syntax => format!("not valid JSON {at}"),
        Category::Eof => format!("JSON ends early {at}"),
        Category::Data => {
            let msg = e.to_string();
            // serde_json appends " at line L column C" itself.
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            format!("{} {at}", printable(&without_quoted(msg), 160))
        }
    }
}

/// `s` with the content of every `"…"` string replaced by `…`, and of every `` `…` `` that is not
/// a name (a field or type name: ASCII letters, digits and `_` from a letter), such as a number.
fn without_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['"', '`']) {
        out.push_str(&rest[..i]);
        let q = &rest[i..i + 1];
        let after = &rest[i + 1..];
        let Some(j) = after.find(q) else {
            out.push_str(q);
            out.push('…');
            return out;
        };
        let inner = &after[..j];
        let name = q == "`"
            && inner.len() <= 40
            && inner.starts_with(|c: char| c.is_ascii_alphabetic())
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(q);
        out.push_str(if name { inner } else { "…" });
        out.push_str(q);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_value_starts_a_line_or_runs_long() {
        assert_eq!(printable("a\nERROR forged", 100), "a\\nERROR forged");
        assert_eq!(printable("x\u{1b}[2J", 10), "x\\u{1b}[2J");
        assert_eq!(printable("一二三四五", 3), "一二三…");
        assert_eq!(name(&"9".repeat(100)).chars().count(), MAX_NAME_CHARS + 1);
    }

    #[test]
    fn json_errors_do_not_quote_the_input() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            phone: u64,
        }
        let e = serde_json::from_str::<T>(r#"{"phone": "13812345678"}"#).expect_err("a string");
        let m = json_error(&e);
        assert!(!m.contains("1381234") && m.contains("invalid type"), "{m}");
        assert!(m.contains("line 1"), "{m}");
        let e = serde_json::from_str::<T>("{\"phone\": 1").expect_err("eof");
        assert!(json_error(&e).starts_with("JSON ends early"));
        let e = serde_json::from_str::<T>("{}").expect_err("missing");
        assert!(json_error(&e).contains("missing field `phone`"));
        let e = serde_json::from_str::<String>("13812345678").expect_err("a number");
        let m = json_error(&e);
        assert!(m.contains("integer `…`") && !m.contains("138"), "{m}");
    }
}
