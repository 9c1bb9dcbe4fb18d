//! The templates of a connector profile: `${name}` placeholders in paths, query, headers, bodies
//! and the signing input, with defaults (`${env.X:-dflt}`) and filters (`${v|md5|first(16)}`).

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use md5::Digest as _;

/// A value a template reads: text, or a number (page counters) that a JSON body sends as one.
#[derive(Debug, Clone, PartialEq)]
pub enum Var {
    Text(String),
    Int(i64),
}

impl Var {
    pub fn text(&self) -> String {
        match self {
            Var::Text(s) => s.clone(),
            Var::Int(n) => n.to_string(),
        }
    }
}

/// Where a template finds its variables.
pub trait Lookup {
    fn var(&self, name: &str) -> Option<Var>;
}

impl<F: Fn(&str) -> Option<Var>> Lookup for F {
    fn var(&self, name: &str) -> Option<Var> {
        self(name)
    }
}

/// A transformation applied to a placeholder's value, left to right.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Lower-case hex MD5 of the value.
    Md5,
    /// Lower-case hex SHA-256 of the value.
    Sha256,
    Upper,
    Lower,
    Trim,
    /// The first n characters.
    First(usize),
    /// Percent-encoded for a URL query or form value.
    UrlEncode,
    Base64,
    /// Escaped for the inside of a JSON string.
    Json,
}

impl Filter {
    fn parse(s: &str) -> Result<Filter> {
        let s = s.trim();
        if let Some(n) = s.strip_prefix("first(").and_then(|r| r.strip_suffix(')')) {
            let n = n
                .trim()
                .parse()
                .map_err(|_| anyhow!("`first(N)` needs a number, got `{s}`"))?;
            return Ok(Filter::First(n));
        }
        Ok(match s {
            "md5" => Filter::Md5,
            "sha256" => Filter::Sha256,
            "upper" => Filter::Upper,
            "lower" => Filter::Lower,
            "trim" => Filter::Trim,
            "urlencode" => Filter::UrlEncode,
            "base64" => Filter::Base64,
            "json" => Filter::Json,
            other => bail!(
                "unknown filter `{other}` (md5, sha256, upper, lower, trim, first(N), urlencode, base64, json)"
            ),
        })
    }

    fn apply(&self, v: String) -> String {
        match self {
            Filter::Md5 => hex::encode(md5::Md5::digest(v.as_bytes())),
            Filter::Sha256 => hex::encode(sha2::Sha256::digest(v.as_bytes())),
            Filter::Upper => v.to_uppercase(),
            Filter::Lower => v.to_lowercase(),
            Filter::Trim => v.trim().to_string(),
            Filter::First(n) => v.chars().take(*n).collect(),
            Filter::UrlEncode => {
                percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            }
            Filter::Base64 => base64::engine::general_purpose::STANDARD.encode(v.as_bytes()),
            Filter::Json => {
                let quoted = serde_json::Value::String(v).to_string();
                quoted[1..quoted.len() - 1].to_string()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var {
        name: String,
        default: Option<String>,
        filters: Vec<Filter>,
    },
}

/// A parsed template. `$${` writes a literal `${`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                lit.push_str(&rest[..at - 1]);
                lit.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            lit.push_str(&rest[..at]);
            let inner = &rest[at + 2..];
            let end = inner
                .find('}')
                .ok_or_else(|| anyhow!("`${{` without a closing `}}` in {text:?}"))?;
            let expr = &inner[..end];
            let mut pieces = expr.split('|');
            let head = pieces.next().unwrap_or("").trim();
            let (name, default) = match head.split_once(":-") {
                Some((n, d)) => (n.trim(), Some(d.to_string())),
                None => (head, None),
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_.-/~".contains(c))
            {
                bail!("`${{{expr}}}` does not name a variable");
            }
            let filters = pieces.map(Filter::parse).collect::<Result<Vec<_>>>()?;
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var {
                name: name.to_string(),
                default,
                filters,
            });
            rest = &inner[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            parts,
            source: text.to_string(),
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names of the variables it reads.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, .. } => Some(name.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Is `name` read without a default?
    pub fn needs(&self, name: &str) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var { name: n, default: None, .. } if n == name))
    }

    /// The text with every placeholder replaced; a variable that is unknown and has no default
    /// is an error naming it.
    pub fn render(&self, cx: &dyn Lookup) -> Result<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var { .. } => out.push_str(&self.value_of(p, cx)?.text()),
            }
        }
        Ok(out)
    }

    /// As `render`, but a template that is one unfiltered placeholder of a number stays a number
    /// (so a JSON body sends `"rows": 10`, not `"rows": "10"`).
    pub fn render_var(&self, cx: &dyn Lookup) -> Result<Var> {
        if let [p @ Part::Var { filters, .. }] = self.parts.as_slice()
            && filters.is_empty()
        {
            return self.value_of(p, cx);
        }
        self.render(cx).map(Var::Text)
    }

    fn value_of(&self, p: &Part, cx: &dyn Lookup) -> Result<Var> {
        let Part::Var {
            name,
            default,
            filters,
        } = p
        else {
            return Ok(Var::Text(String::new()));
        };
        let v = match (lookup(name, cx), default) {
            (Some(Var::Text(t)), Some(d)) if t.is_empty() => Var::Text(d.clone()),
            (Some(v), _) => v,
            (None, Some(d)) => Var::Text(d.clone()),
            (None, None) => bail!("`${{{name}}}` is not set"),
        };
        if filters.is_empty() {
            return Ok(v);
        }
        Ok(Var::Text(
            filters.iter().fold(v.text(), |acc, f| f.apply(acc)),
        ))
    }
}

/// Environment variables are read as `env.NAME`; everything else comes from `cx`.
fn lookup(name: &str, cx: &dyn Lookup) -> Option<Var> {
    match name.strip_prefix("env.") {
        Some(var) => std::env::var(var).ok().map(Var::Text),
        None => cx.var(name),
    }
}

/// The digest of a request signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Digest {
    Md5,
    Sha256,
    HmacSha256,
}

/// How a digest is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Lower-case hex.
    #[default]
    Hex,
    /// Upper-case hex.
    HexUpper,
    Base64,
}

/// `digest(input)` (with `key` for HMAC), encoded.
pub fn sign(digest: Digest, key: &[u8], input: &[u8], encoding: Encoding) -> String {
    let raw: Vec<u8> = match digest {
        Digest::Md5 => md5::Md5::digest(input).to_vec(),
        Digest::Sha256 => sha2::Sha256::digest(input).to_vec(),
        Digest::HmacSha256 => {
            let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
                .expect("HMAC accepts any key length");
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
    };
    match encoding {
        Encoding::Hex => hex::encode(raw),
        Encoding::HexUpper => hex::encode_upper(raw),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<Var> {
        match name {
            "cursor" => Some(Var::Text("19302878".into())),
            "empty" => Some(Var::Text(String::new())),
            "page_size" => Some(Var::Int(10)),
            "q" => Some(Var::Text("a\"b".into())),
            _ => None,
        }
    }

    #[test]
    fn renders_placeholders_defaults_and_filters() {
        let t = Template::parse("/v1/x?c=${cursor}&n=${page_size}").expect("parses");
        assert_eq!(t.render(&vars).expect("renders"), "/v1/x?c=19302878&n=10");
        let t = Template::parse("${missing:-PC42}${empty:-dflt}").expect("parses");
        assert_eq!(t.render(&vars).expect("renders"), "PC42dflt");
        let t = Template::parse("${missing:-PC42ce3bfa4980a9|md5|first(16)}").expect("parses");
        // The People's Daily web app's key part: md5_hex(appCode)[0..16].
        assert_eq!(t.render(&vars).expect("renders"), "a2eb17f65d6f4b3f");
        assert_eq!(
            Template::parse("${q|json}")
                .expect("p")
                .render(&vars)
                .expect("r"),
            "a\\\"b"
        );
        assert_eq!(
            Template::parse("${page_size}")
                .expect("p")
                .render_var(&vars)
                .expect("r"),
            Var::Int(10)
        );
        assert_eq!(
            Template::parse("n${page_size}")
                .expect("p")
                .render_var(&vars)
                .expect("r"),
            Var::Text("n10".into())
        );
        assert_eq!(
            Template::parse("$${x}")
                .expect("p")
                .render(&vars)
                .expect("r"),
            "${x}"
        );
        let err = Template::parse("${nope}")
            .expect("p")
            .render(&vars)
            .expect_err("unset");
        assert!(err.to_string().contains("`${nope}` is not set"), "{err}");
        assert!(Template::parse("${cursor").is_err());
        assert!(Template::parse("${a|sha3}").is_err());
        assert!(Template::parse("${a b}").is_err());
        let t = Template::parse("${path}${body.param}${env.HOME|md5}").expect("p");
        assert_eq!(
            t.names().collect::<Vec<_>>(),
            ["path", "body.param", "env.HOME"]
        );
        assert!(t.needs("path") && !Template::parse("${path:-x}").expect("p").needs("path"));
    }

    #[test]
    fn digests_match_known_values() {
        assert_eq!(
            sign(Digest::Md5, b"", b"abc", Encoding::Hex),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            sign(Digest::Sha256, b"", b"abc", Encoding::Hex),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231, test case 2.
        assert_eq!(
            sign(
                Digest::HmacSha256,
                b"Jefe",
                b"what do ya want for nothing?",
                Encoding::Hex
            ),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign(Digest::Md5, b"", b"abc", Encoding::HexUpper),
            "900150983CD24FB0D6963F7D28E17F72"
        );
        assert_eq!(
            sign(Digest::Md5, b"", b"abc", Encoding::Base64),
            "kAFQmDzST7DWlj99KOF/cg=="
        );
    }
}
