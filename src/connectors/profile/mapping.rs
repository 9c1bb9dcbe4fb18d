//! Field mapping of a connector profile: the feed's record (JSON, a table row, a scraped page)
//! → the fields of a complaint, by JSON pointer, with per-field time parsing and clean-ups.

use anyhow::{Result, anyhow, bail};
use chrono::FixedOffset;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::time::{self, TimeFormat};

/// What a mapped field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    /// A time, written as RFC 3339 in Asia/Shanghai.
    Time,
    Integer,
}

/// The fields a profile maps to (the raw payload of every profile-fed record; the engine reads
/// them on every channel).
pub const TARGETS: &[(&str, FieldType, &str)] = &[
    (
        "source_id",
        FieldType::Text,
        "the feed's id of the record (required)",
    ),
    ("title", FieldType::Text, "title or subject"),
    (
        "content",
        FieldType::Text,
        "the complaint's full text (required)",
    ),
    (
        "received_at",
        FieldType::Time,
        "when the citizen filed it (required)",
    ),
    (
        "name",
        FieldType::Text,
        "the complainant's name or nickname",
    ),
    (
        "user_id",
        FieldType::Text,
        "the feed's id of the complainant",
    ),
    ("phone", FieldType::Text, "the complainant's phone"),
    ("district", FieldType::Text, "district or county"),
    ("address", FieldType::Text, "where the problem is"),
    (
        "category",
        FieldType::Text,
        "the feed's category (a path like a>b>c is kept)",
    ),
    ("type", FieldType::Text, "kind: 投诉, 求助, 建言, 咨询 ..."),
    (
        "status",
        FieldType::Text,
        "handling status: 已办理, 办理中 ...",
    ),
    ("likes", FieldType::Integer, "supporters, likes"),
    ("handling_unit", FieldType::Text, "the unit handling it"),
    ("reply", FieldType::Text, "the official reply"),
    ("reply_unit", FieldType::Text, "who replied"),
    ("replied_at", FieldType::Time, "when the reply was given"),
    (
        "version",
        FieldType::Text,
        "the record's version: a new version is sent again",
    ),
];

/// Fields every profile maps.
pub const REQUIRED: [&str; 3] = ["source_id", "content", "received_at"];

/// Where a value is read: a JSON pointer (`/message/content`), or a plain key (a column header,
/// a page label) that may itself contain `/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pointer(String);

impl Pointer {
    pub fn new(s: &str) -> Pointer {
        if s.starts_with('/') {
            Pointer(s.to_string())
        } else {
            Pointer(format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        }
    }
    /// The whole document.
    pub fn root() -> Pointer {
        Pointer(String::new())
    }
    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        doc.pointer(&self.0)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value as text: strings trimmed, numbers as written (ids that arrive as `123` and `"123"`
/// are the same), null and empty text absent.
pub fn text_of(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => a.iter().filter_map(text_of).collect::<Vec<_>>().join(","),
        Value::Object(_) => v.to_string(),
    };
    (!s.is_empty()).then_some(s)
}

/// Remove HTML markup from a feed's text and decode its entities: line breaks (`<br>`, `</p>`,
/// `</div>` ...) become newlines, the tags of HTML's own elements and comments are dropped, and
/// only those: a citizen's `<A市新图>` or `温度<30度` is text and stays.
pub fn strip_html(s: &str) -> String {
    if !s.contains('<') && !s.contains('&') {
        return s.to_string();
    }
    static RES: std::sync::LazyLock<[regex::Regex; 4]> = std::sync::LazyLock::new(|| {
        let re = |p: &str| regex::Regex::new(p).expect("valid regex");
        [
            re(r"(?is)<!--.*?-->|<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>"),
            re(r"(?i)<br\s*/?>|</(?:p|div|li|tr|h[1-6])\s*>"),
            re(concat!(
                r"(?i)</?(?:p|br|div|span|a|img|font|b|strong|em|i|u|s|table|tbody|thead|tr|td|th",
                r"|ul|ol|li|h[1-6]|section|article|label|hr|pre|code|blockquote|center|sup|sub",
                r"|small|big|o:p)(?:\s[^<>]*)?/?>"
            )),
            re(
                r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|nbsp|amp|lt|gt|quot|apos|ldquo|rdquo|lsquo|rsquo|mdash|hellip|middot);",
            ),
        ]
    });
    let s = RES[0].replace_all(s, "");
    let s = RES[1].replace_all(&s, "\n");
    let s = RES[2].replace_all(&s, "");
    RES[3]
        .replace_all(&s, |c: &regex::Captures| {
            let e = &c[1];
            let ch = match e {
                "nbsp" => Some('\u{a0}'),
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "ldquo" => Some('“'),
                "rdquo" => Some('”'),
                "lsquo" => Some('‘'),
                "rsquo" => Some('’'),
                "mdash" => Some('—'),
                "hellip" => Some('…'),
                "middot" => Some('·'),
                n => {
                    let code = match n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => n.strip_prefix('#').and_then(|d| d.parse().ok()),
                    };
                    code.and_then(char::from_u32)
                }
            };
            ch.map_or_else(|| c[0].to_string(), String::from)
        })
        .into_owned()
}

/// One mapped field, compiled.
#[derive(Debug, Clone)]
pub struct FieldRule {
    pub target: String,
    pub kind: FieldType,
    pub from: Vec<Pointer>,
    pub times: Vec<TimeFormat>,
    pub strip_prefix: Vec<String>,
    pub values: BTreeMap<String, String>,
    pub join: Option<String>,
    pub strip_html: bool,
    pub pattern: Option<regex::Regex>,
    pub value: Option<String>,
    pub default: Option<String>,
    pub required: bool,
}

fn strings(v: &toml::Value, what: &str) -> Result<Vec<String>> {
    match v {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("{what} must be text or a list of texts"))
            })
            .collect(),
        _ => bail!("{what} must be text or a list of texts"),
    }
}

const KEYS: &str =
    "from, time, strip_prefix, values, join, strip_html, pattern, value, default, required";

impl FieldRule {
    /// Compile `[fields] target = …`: a pointer, a list of pointers (first present wins), or a
    /// table. An error names the key at fault (`time`, `pattern` …) without the field's path.
    pub fn compile(
        target: &str,
        v: &toml::Value,
    ) -> Result<FieldRule, (Option<String>, anyhow::Error)> {
        let kind = TARGETS
            .iter()
            .find(|(t, _, _)| *t == target)
            .map(|(_, k, _)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = TARGETS.iter().map(|(t, _, _)| *t).collect();
                (
                    None,
                    anyhow!("unknown field `{target}` (fields: {})", names.join(", ")),
                )
            })?;
        let mut rule = FieldRule {
            target: target.to_string(),
            kind,
            from: Vec::new(),
            times: Vec::new(),
            strip_prefix: Vec::new(),
            values: BTreeMap::new(),
            join: None,
            strip_html: false,
            pattern: None,
            value: None,
            default: None,
            required: REQUIRED.contains(&target),
        };
        let table = match v {
            toml::Value::Table(t) => t,
            other => {
                rule.from = strings(other, "a field")
                    .map_err(|e| (None, e))?
                    .iter()
                    .map(|p| Pointer::new(p))
                    .collect();
                return rule.checked().map_err(|e| (None, e));
            }
        };
        for (k, v) in table {
            let at = |e: anyhow::Error| (Some(k.clone()), e);
            match k.as_str() {
                "from" => {
                    rule.from = strings(v, "`from`")
                        .map_err(at)?
                        .iter()
                        .map(|p| Pointer::new(p))
                        .collect()
                }
                "time" => {
                    rule.times = strings(v, "`time`")
                        .map_err(at)?
                        .iter()
                        .map(|f| TimeFormat::parse(f))
                        .collect::<Result<_>>()
                        .map_err(at)?
                }
                "strip_prefix" => rule.strip_prefix = strings(v, "`strip_prefix`").map_err(at)?,
                "values" => {
                    let t = v.as_table().ok_or_else(|| {
                        at(anyhow!("`values` must be a table of value = \"text\""))
                    })?;
                    for (from, to) in t {
                        let to = match to {
                            toml::Value::String(s) => s.clone(),
                            toml::Value::Integer(n) => n.to_string(),
                            _ => return Err(at(anyhow!("`values.{from}` must be text"))),
                        };
                        rule.values.insert(from.clone(), to);
                    }
                }
                "join" => {
                    rule.join = Some(
                        v.as_str()
                            .ok_or_else(|| at(anyhow!("`join` must be text, e.g. \">\"")))?
                            .to_string(),
                    )
                }
                "strip_html" => {
                    rule.strip_html = v
                        .as_bool()
                        .ok_or_else(|| at(anyhow!("`strip_html` must be true or false")))?
                }
                "required" => {
                    let r = v
                        .as_bool()
                        .ok_or_else(|| at(anyhow!("`required` must be true or false")))?;
                    if !r && REQUIRED.contains(&target) {
                        return Err(at(anyhow!("`{target}` is always required")));
                    }
                    rule.required = r;
                }
                "pattern" => {
                    let p = v
                        .as_str()
                        .ok_or_else(|| at(anyhow!("`pattern` must be a regular expression")))?;
                    rule.pattern =
                        Some(regex::Regex::new(p).map_err(|e| {
                            at(anyhow!("`pattern` is not a regular expression: {e}"))
                        })?);
                }
                "value" | "default" => {
                    let s = match v {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(n) => n.to_string(),
                        _ => return Err(at(anyhow!("`{k}` must be text"))),
                    };
                    if k == "value" {
                        rule.value = Some(s);
                    } else {
                        rule.default = Some(s);
                    }
                }
                other => return Err(at(anyhow!("unknown key `{other}` (keys: {KEYS})"))),
            }
        }
        rule.checked().map_err(|e| (None, e))
    }

    fn checked(mut self) -> Result<FieldRule> {
        if self.from.is_empty() && self.value.is_none() && self.default.is_none() {
            bail!("names no `from` pointer and no `value`");
        }
        if self.kind == FieldType::Time && self.times.is_empty() {
            self.times = vec![TimeFormat::Auto];
        }
        if self.kind != FieldType::Time && !self.times.is_empty() {
            bail!("`time` applies to received_at and replied_at only");
        }
        Ok(self)
    }

    /// The field's value in `doc`; the error names the field and why, never the value.
    fn apply(&self, doc: &Value, zone: FixedOffset) -> Result<Option<Value>, String> {
        let mut found: Vec<String> = self
            .from
            .iter()
            .filter_map(|p| p.get(doc).and_then(text_of))
            .collect();
        if let Some(re) = &self.pattern {
            found = found
                .iter()
                .filter_map(|s| {
                    let c = re.captures(s)?;
                    let m = c.get(1).or_else(|| c.get(0))?;
                    Some(m.as_str().trim().to_string()).filter(|m| !m.is_empty())
                })
                .collect();
        }
        let picked = match (&self.value, &self.join) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(sep)) => (!found.is_empty()).then(|| found.join(sep)),
            (None, None) => found.into_iter().next(),
        };
        let Some(mut s) = picked.or_else(|| self.default.clone()) else {
            if self.required {
                let looked: Vec<&str> = self.from.iter().map(Pointer::as_str).collect();
                return Err(format!(
                    "missing required field `{}` (looked at {})",
                    self.target,
                    looked.join(", ")
                ));
            }
            return Ok(None);
        };
        if let Some(rest) = self
            .strip_prefix
            .iter()
            .find_map(|p| s.strip_prefix(p.as_str()))
        {
            s = rest.trim().to_string();
        }
        if let Some(v) = self.values.get(&s) {
            s = v.clone();
        }
        if self.strip_html {
            s = strip_html(&s).trim().to_string();
        }
        if s.is_empty() {
            return if self.required {
                Err(format!("required field `{}` is empty", self.target))
            } else {
                Ok(None)
            };
        }
        match self.kind {
            FieldType::Text => Ok(Some(Value::String(s))),
            FieldType::Integer => s
                .parse::<i64>()
                .map(|n| Some(Value::from(n)))
                .map_err(|_| format!("field `{}` is not an integer", self.target)),
            FieldType::Time => match time::parse(&s, &self.times, zone) {
                Some(t) => Ok(Some(Value::String(t.to_rfc3339()))),
                None => Err(format!(
                    "field `{}`: not a time in the profile's formats ({})",
                    self.target,
                    self.times
                        .iter()
                        .map(format_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
        }
    }
}

fn format_name(f: &TimeFormat) -> String {
    match f {
        TimeFormat::UnixSeconds => "unix_s".into(),
        TimeFormat::UnixMillis => "unix_ms".into(),
        TimeFormat::Excel => "excel".into(),
        TimeFormat::Rfc3339 => "rfc3339".into(),
        TimeFormat::Auto => "auto".into(),
        TimeFormat::Pattern(p) => p.clone(),
    }
}

/// A profile's compiled `[fields]`.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub rules: Vec<FieldRule>,
}

impl Mapping {
    /// The complaint fields of `doc` (a payload for the raw topic); the error names the field.
    pub fn apply(&self, doc: &Value, zone: FixedOffset) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for r in &self.rules {
            if let Some(v) = r.apply(doc, zone)? {
                out.insert(r.target.clone(), v);
            }
        }
        Ok(out)
    }

    /// The rule of `target`, if mapped.
    pub fn rule(&self, target: &str) -> Option<&FieldRule> {
        self.rules.iter().find(|r| r.target == target)
    }

    /// Check that the required fields are mapped; `what` names the mapping in the error.
    pub fn check_required(&self) -> Result<()> {
        for f in REQUIRED {
            if self.rule(f).is_none() {
                bail!("maps no `{f}` (every profile maps source_id, content and received_at)");
            }
        }
        Ok(())
    }

    /// This mapping with `over`'s rules replacing (or adding to) its own.
    pub fn overlaid(&self, over: &Mapping) -> Mapping {
        let mut rules: Vec<FieldRule> = self
            .rules
            .iter()
            .filter(|r| over.rule(&r.target).is_none())
            .cloned()
            .collect();
        rules.extend(over.rules.iter().cloned());
        Mapping { rules }
    }

    /// The plain keys (column headers, labels) the required fields read, for picking a layout.
    pub fn required_keys(&self) -> Vec<Vec<String>> {
        self.rules
            .iter()
            .filter(|r| r.required && r.value.is_none() && r.default.is_none())
            .map(|r| {
                r.from
                    .iter()
                    .filter_map(|p| {
                        let s = p.as_str().strip_prefix('/')?;
                        (!s.contains('/')).then(|| s.replace("~1", "/").replace("~0", "~"))
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(target: &str, toml_text: &str) -> FieldRule {
        let v: toml::Value = toml::from_str::<toml::Table>(&format!("x = {toml_text}"))
            .expect("toml")
            .remove("x")
            .expect("x");
        FieldRule::compile(target, &v)
            .map_err(|(_, e)| e)
            .expect("compiles")
    }

    fn zone() -> FixedOffset {
        crate::record::local_offset()
    }

    #[test]
    fn maps_by_pointer_with_times_prefixes_paths_and_values() {
        let doc = json!({"item": {"tid": 123, "dateline": 1700000000, "content": "cut..."},
            "message": {"content": "<p>全文</p>第二行", "subject": " 标题 "}, "工单编号": "SH20240001",
            "一级分类": "城乡建设", "二级分类": "施工管理", "三级分类": "", "state": 4});
        let m = Mapping {
            rules: vec![
                rule("source_id", r#""/item/tid""#),
                rule(
                    "content",
                    r#"{ from = ["/message/content", "/item/content"], strip_html = true }"#,
                ),
                rule("title", r#"["/message/subject", "/item/subject"]"#),
                rule(
                    "received_at",
                    r#"{ from = "/item/dateline", time = "unix_s" }"#,
                ),
                rule(
                    "user_id",
                    r#"{ from = "工单编号", strip_prefix = ["12345", "SH"] }"#,
                ),
                rule(
                    "category",
                    r#"{ from = ["一级分类", "二级分类", "三级分类"], join = ">" }"#,
                ),
                rule(
                    "status",
                    r#"{ from = "/state", values = { "4" = "已办理" } }"#,
                ),
                rule("type", r#"{ value = "投诉" }"#),
            ],
        };
        let out = m.apply(&doc, zone()).expect("maps");
        assert_eq!(out["source_id"], "123", "a numeric id is text");
        assert_eq!(out["content"], "全文\n第二行");
        assert_eq!(out["title"], "标题");
        assert_eq!(out["received_at"], "2023-11-15T06:13:20+08:00");
        assert_eq!(out["user_id"], "20240001");
        assert_eq!(out["category"], "城乡建设>施工管理");
        assert_eq!(out["status"], "已办理");
        assert_eq!(out["type"], "投诉");
        assert_eq!(
            m.apply(
                &json!({"item": {"tid": "123"}, "message": {"content": "x"}, "item2": 1}),
                zone()
            )
            .map(|_| ())
            .expect_err("no time"),
            "missing required field `received_at` (looked at /item/dateline)"
        );
        let bad_time =
            json!({"item": {"tid": 1, "dateline": "tomorrow"}, "message": {"content": "x"}});
        let err = m.apply(&bad_time, zone()).expect_err("bad time");
        assert!(
            err.contains("`received_at`") && err.contains("unix_s") && !err.contains("tomorrow"),
            "{err}"
        );
        let p = rule(
            "received_at",
            r#"{ from = "通话编号", pattern = '^(\d+)-', time = "unix_s" }"#,
        );
        assert_eq!(
            p.apply(&json!({"通话编号": "1700000000-17"}), zone())
                .expect("ok"),
            Some(json!("2023-11-15T06:13:20+08:00"))
        );
        assert_eq!(m.required_keys().len(), 3);
    }

    #[test]
    fn bad_rules_name_the_key() {
        let compile = |t: &str, s: &str| {
            let v: toml::Value = toml::from_str::<toml::Table>(&format!("x = {s}"))
                .expect("toml")
                .remove("x")
                .expect("x");
            FieldRule::compile(t, &v)
                .map(|_| ())
                .map_err(|(k, e)| (k, e.to_string()))
        };
        assert_eq!(
            compile("received_at", r#"{ from = "a", time = "weekly" }"#)
                .expect_err("bad")
                .0
                .as_deref(),
            Some("time")
        );
        let (k, e) = compile("content", r#"{ form = "a" }"#).expect_err("typo");
        assert_eq!(k.as_deref(), Some("form"));
        assert!(e.contains("unknown key `form`"), "{e}");
        assert!(
            compile("body", r#""a""#)
                .expect_err("unknown")
                .1
                .contains("unknown field `body`")
        );
        assert!(compile("title", r#"{ from = "a", time = "auto" }"#).is_err());
        assert!(compile("content", r#"{ from = "a", required = false }"#).is_err());
        assert_eq!(
            compile("title", r#"{ from = "a", pattern = "(" }"#)
                .expect_err("re")
                .0
                .as_deref(),
            Some("pattern")
        );
        assert!(compile("title", "{ }").is_err(), "no source");
    }

    #[test]
    fn html_is_stripped_without_eating_citizens_brackets() {
        assert_eq!(strip_html("温度<30度 &amp; 湿度"), "温度<30度 & 湿度");
        assert_eq!(strip_html("a<br/>b&nbsp;c"), "a\nb\u{a0}c");
        assert_eq!(strip_html("plain"), "plain");
        // Document titles in angle brackets are text, ASCII letters or not.
        for t in [
            "关于印发<A市火车南站站前东广场>的通知",
            "<<建筑工程质量管理>>",
            "<中华人民共和国城乡规划法>",
        ] {
            assert_eq!(strip_html(t), t);
        }
        assert_eq!(
            strip_html("<p class=\"x\">您好：</p><P>已处理&gt;</P><!-- c --><script>x()</script>"),
            "您好：\n已处理>\n"
        );
        assert_eq!(strip_html("a&isPre=1 &#20013;&#x6587;"), "a&isPre=1 中文");
    }

    #[test]
    fn the_targets_are_the_documented_raw_shape() {
        let schema: Value =
            serde_json::from_str(include_str!("../../../schemas/raw/profile.schema.json"))
                .expect("schema");
        let props = schema["properties"].as_object().expect("properties");
        for (name, kind, _) in TARGETS {
            let p = &props[*name];
            let want = match kind {
                FieldType::Integer => "integer",
                FieldType::Text | FieldType::Time => "string",
            };
            assert_eq!(p["type"], want, "{name}");
            assert_eq!(
                p.get("format").is_some(),
                *kind == FieldType::Time,
                "{name}"
            );
        }
        assert_eq!(props.len(), TARGETS.len() + 1, "the targets and `source`");
        for r in REQUIRED {
            assert!(
                schema["required"]
                    .as_array()
                    .expect("required")
                    .contains(&json!(r))
            );
        }
    }
}
