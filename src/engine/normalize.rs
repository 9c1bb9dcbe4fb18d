//! Per-record text normalization: width folding, whitespace, phone masking, pseudonyms, times,
//! titles, districts and places. Pure functions; the engine exposes them to SQL as UDFs.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::record::local_offset;

/// Fold full-width ASCII (！ to ～) and the ideographic space to half-width; collapse runs of
/// whitespace to one space; trim.
pub fn normalize_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for ch in s.chars() {
        let c = match ch {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
            _ => ch,
        };
        if c.is_whitespace() || c == '\u{200B}' || c == '\u{FEFF}' {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// `char::is_alphanumeric` with the common cases first (ASCII, CJK Unified Ideographs, every one
/// of which is alphabetic), skipping the Unicode table lookup for them.
#[inline]
pub fn is_alphanumeric(c: char) -> bool {
    c.is_ascii_alphanumeric() || ('\u{4E00}'..='\u{9FEF}').contains(&c) || c.is_alphanumeric()
}

/// Keyed-hash pseudonym of a complainant identity: `p_` + 10 base-62 digits of HMAC-SHA256(key,
/// id) (`crate::ids`).
pub fn pseudonym(key: &[u8], identity: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(identity.as_bytes());
    crate::ids::pseudonym_of(crate::ids::digest_number(&mac.finalize().into_bytes()))
}

/// The identity a pseudonym is derived from: the phone's digits when there are enough, else the
/// channel's user id (scoped by channel), else the name (scoped by channel). `None` when anonymous.
pub fn identity(
    channel: &str,
    phone: Option<&str>,
    user_id: Option<&str>,
    name: Option<&str>,
) -> Option<String> {
    let digits: String = phone
        .map(|p| {
            normalize_text(p)
                .chars()
                .filter(char::is_ascii_digit)
                .collect()
        })
        .unwrap_or_default();
    if digits.len() >= 7 && !digits.contains("0000000") {
        let d = if digits.len() > 11 {
            &digits[digits.len() - 11..]
        } else {
            &digits
        };
        return Some(format!("tel:{d}"));
    }
    let clean = |s: Option<&str>| {
        s.map(normalize_text)
            .filter(|s| !s.is_empty() && !s.chars().all(|c| c == '*'))
    };
    if let Some(u) = clean(user_id) {
        return Some(format!("{channel}:uid:{u}"));
    }
    clean(name).map(|n| format!("{channel}:name:{n}"))
}

/// Parse the time forms feeds use: RFC 3339, `2026-11-01 09:12:33`, `2019/2/21 10:52:03`,
/// `2026-11-01 09:12`, `2026-11-01`, and Unix seconds. Times without an offset are local (+08:00).
pub fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = normalize_text(s);
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Some(t.with_timezone(&local_offset()));
    }
    let tz = local_offset();
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y年%m月%d日 %H:%M:%S",
        "%Y年%m月%d日 %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&s, f) {
            return tz.from_local_datetime(&n).single();
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日"] {
        if let Ok(d) = NaiveDate::parse_from_str(&s, f) {
            return tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).single();
        }
    }
    if s.len() == 10 && s.chars().all(|c| c.is_ascii_digit()) {
        return DateTime::from_timestamp(s.parse().ok()?, 0).map(|t| t.with_timezone(&tz));
    }
    None
}

/// The title, or the first sentence of the body (at most 30 characters) when the title is empty.
pub fn derive_title(title: &str, body: &str) -> String {
    let t = title.trim();
    if !t.is_empty() {
        return t.to_string();
    }
    let first: String = body
        .chars()
        .take_while(|c| !matches!(c, '。' | '！' | '？' | '!' | '?' | '；' | ';' | '\n'))
        .collect();
    let first = first.trim();
    let source = if first.is_empty() { body.trim() } else { first };
    let mut out: String = source.chars().take(30).collect();
    if source.chars().count() > 30 {
        out.push('…');
    }
    out
}

/// The city's districts and counties (from config/units.toml).
pub fn known_districts() -> &'static [String] {
    &crate::engine::units::units().districts
}

/// Canonical district name: exact, or by its stem (`镜湖` → `镜湖区`); else the first district named
/// in `text`. `None` when neither names one.
pub fn canonical_district(field: Option<&str>, text: &str) -> Option<String> {
    let ds = known_districts();
    let stem = |d: &str| d.trim_end_matches(['区', '县', '市']).to_string();
    if let Some(f) = field.map(normalize_text).filter(|f| !f.is_empty())
        && let Some(d) = ds
            .iter()
            .find(|d| f.contains(d.as_str()) || f.contains(&stem(d)))
    {
        return Some(d.clone());
    }
    ds.iter()
        .filter_map(|d| text.find(&stem(d)).map(|pos| (pos, d)))
        .min_by_key(|(pos, _)| *pos)
        .map(|(_, d)| d.clone())
}

/// Suffixes that end the name of a place people complain about.
const PLACE_SUFFIXES: &[&str] = &[
    // housing and neighbourhoods
    "小区",
    "花园",
    "公寓",
    "家园",
    "新村",
    "新城",
    "苑",
    "府",
    "城",
    "社区",
    "村",
    "大厦",
    "大楼",
    // roads and public space
    "大道",
    "路",
    "街",
    "巷",
    "路口",
    "交叉口",
    "桥",
    "广场",
    "公园",
    "停车场",
    "公交站",
    "车站",
    "站台",
    "码头",
    // trade and services
    "市场",
    "农贸市场",
    "菜市场",
    "商场",
    "商业街",
    "超市",
    "店",
    "饭店",
    "酒店",
    "宾馆",
    "餐馆",
    "网吧",
    "药房",
    "药店",
    "健身房",
    "加油站",
    "银行",
    "中心",
    // work sites and firms
    "工地",
    "搅拌站",
    "工厂",
    "厂",
    "公司",
    "有限公司",
    "产业园",
    "工业园",
    "园区",
    "养殖场",
    "驾校",
    // schools and health
    "学校",
    "培训学校",
    "中学",
    "小学",
    "幼儿园",
    "医院",
    "卫生院",
    "诊所",
    "体育馆",
];

/// Characters that cannot be part of a place name: function words and verbs that precede one.
const NOT_IN_PLACE: &[char] = &[
    '的', '在', '是', '我', '们', '了', '和', '与', '及', '对', '向', '从', '到', '于', '有', '个',
    '这', '那', '该', '附', '近', '位', '住', '家', '门', '口', '旁', '边', '里', '内', '外', '前',
    '后', '去', '来', '为', '把', '被', '让', '请', '求', '区', '县', '市',
];

/// Words that precede a place name without being part of it (反映翠湖小区 → 翠湖小区).
const LEADING_NOT_PLACE: &[&str] = &[
    "反映",
    "投诉",
    "举报",
    "关于",
    "位于",
    "地处",
    "希望",
    "要求",
    "请求",
    "建议",
    "咨询",
    "市民",
    "居民",
    "业主",
    "本人",
    "附近",
    "周边",
    "旁边",
    "对面",
    "经过",
    "路过",
    "靠近",
    "发现",
    "目前",
    "现在",
    "最近",
    "今天",
    "昨天",
    "每天",
    "晚上",
    "白天",
    "导致",
    "造成",
    "今年",
    "去年",
    "前年",
    "当年",
    "购买",
    "购置",
    "购得",
    "买了",
    "买的",
    "认购",
    "商品房",
    "二手房",
    "房子",
    "房屋",
    "楼盘",
    "新房",
    "入住",
    "居住",
    "租住",
    "所在",
    "就读",
    "开发商",
];

/// Words that make a kind of place, not a name (物业公司 is any estate's management company).
const GENERIC_NAMES: &[&str] = &[
    "物业", "开发", "施工", "建筑", "装修", "保安", "保洁", "家政", "中介", "快递", "外卖", "培训",
    "教育", "科技", "房产", "地产", "商贸", "附近", "周边", "当地", "本地", "这家", "那家", "一家",
    "该家", "某某", "这所", "那所",
];

/// Drop leading words that are not part of a name; `None` when nothing of a name is left
/// (投诉小区 is no place).
fn strip_leading_words(chars: &[char], mut start: usize, end: usize) -> Option<usize> {
    // Such a word anywhere in the run ends what precedes the name (去年购买商品房金色家园: the
    // run may begin mid-phrase, cut at ten chars).
    static WORDS: std::sync::LazyLock<Vec<Vec<char>>> = std::sync::LazyLock::new(|| {
        LEADING_NOT_PLACE
            .iter()
            .map(|w| w.chars().collect())
            .collect()
    });
    let mut cut = start;
    for w in WORDS.iter() {
        for at in start..end.saturating_sub(w.len()) {
            if chars[at..at + w.len()] == w[..] {
                cut = cut.max(at + w.len());
            }
        }
    }
    if end - cut >= 2 {
        start = cut;
    }
    'again: loop {
        for w in LEADING_NOT_PLACE {
            let n = w.chars().count();
            if end - start >= n && w.chars().eq(chars[start..start + n].iter().copied()) {
                start += n;
                continue 'again;
            }
        }
        let name: String = chars[start..end].iter().collect();
        return (end - start >= 2 && !GENERIC_NAMES.contains(&name.as_str())).then_some(start);
    }
}

/// The suffixes as char arrays, longest first (built once).
static SUFFIX_CHARS: std::sync::LazyLock<Vec<Vec<char>>> = std::sync::LazyLock::new(|| {
    let mut v: Vec<Vec<char>> = PLACE_SUFFIXES.iter().map(|s| s.chars().collect()).collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
});

/// The suffixes by their first char, longest first (most chars start none: one lookup).
static SUFFIX_BY_FIRST: std::sync::LazyLock<std::collections::HashMap<char, Vec<Vec<char>>>> =
    std::sync::LazyLock::new(|| {
        let mut m: std::collections::HashMap<char, Vec<Vec<char>>> = Default::default();
        for s in SUFFIX_CHARS.iter() {
            m.entry(s[0]).or_default().push(s.clone());
        }
        m
    });

/// Chars of the Basic Multilingual Plane that begin a place suffix, one bit each: most chars of
/// a text begin none, and this answers without hashing.
static SUFFIX_FIRST_BITS: std::sync::LazyLock<Vec<u64>> = std::sync::LazyLock::new(|| {
    let mut bits = vec![0u64; 0x10000 / 64];
    for c in SUFFIX_BY_FIRST.keys() {
        let c = *c as usize;
        if c < 0x10000 {
            bits[c / 64] |= 1 << (c % 64);
        }
    }
    bits
});

/// Length in chars of the longest place suffix starting at `i`.
fn suffix_at(chars: &[char], i: usize) -> Option<usize> {
    let c = *chars.get(i)?;
    if (c as usize) < 0x10000 && SUFFIX_FIRST_BITS[c as usize / 64] & (1 << (c as usize % 64)) == 0
    {
        return None;
    }
    SUFFIX_BY_FIRST
        .get(&c)?
        .iter()
        .find(|s| chars.len() >= i + s.len() && chars[i..i + s.len()] == s[..])
        .map(Vec::len)
}

fn place_char(c: char) -> bool {
    (('\u{4E00}'..='\u{9FFF}').contains(&c) || c.is_ascii_alphanumeric())
        && !NOT_IN_PLACE.contains(&c)
}

/// Named places in `text`, left to right: runs (2–10 chars) of CJK or digits ending in a place
/// suffix, not crossing punctuation or function words; `(start, end)` in chars. Found lazily:
/// a caller that needs the first few stops the scan there.
fn place_spans(chars: &[char]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let (mut i, mut floor) = (0, 0);
    std::iter::from_fn(move || {
        let span = next_place_span(chars, &mut i, floor)?;
        floor = span.1;
        Some(span)
    })
}

/// The next named place from char `*i` on, not starting before `floor` (the previous span's end).
fn next_place_span(chars: &[char], i: &mut usize, floor: usize) -> Option<(usize, usize)> {
    while *i < chars.len() {
        let Some(n) = suffix_at(chars, *i) else {
            *i += 1;
            continue;
        };
        let i0 = *i;
        let mut start = i0;
        while start > floor && i0 - start < 10 && place_char(chars[start - 1]) {
            start -= 1;
        }
        if let Some(start) = strip_leading_words(chars, start, i0) {
            // A suffix right after a suffix extends the name (翠湖花园 + 小区).
            let mut end = i0 + n;
            while let Some(m) = suffix_at(chars, end).filter(|m| *m >= 2) {
                end += m;
            }
            *i = end;
            return Some((start, end));
        }
        *i += 1;
    }
    None
}

/// The place: the first chain of adjacent named places in `text` (road, then estate, then
/// building…), reduced to its most specific (last) name, so that `城鸠路香荷小区` and `香荷小区`
/// name the same place. Used as the v1 same-issue key.
pub fn extract_place(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut it = place_spans(&chars);
    let mut last = it.next()?;
    for s in it {
        if s.0 != last.1 {
            break;
        }
        last = s;
    }
    Some(chars[last.0..last.1].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_width_and_whitespace() {
        assert_eq!(
            normalize_text("  ＡＢＣ１２３，\u{3000}好  的\n\t了 "),
            "ABC123, 好 的 了"
        );
        assert_eq!(normalize_text("（噪音）"), "(噪音)");
    }

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let a = pseudonym(b"k1", "tel:13812341234");
        // Pinned: a complainant keeps their pseudonym across versions (same key, same identity).
        assert_eq!(a, "p_NEo3ShKd0E");
        assert_ne!(a, pseudonym(b"k2", "tel:13812341234"));
        assert!(a.starts_with("p_") && a.len() == 12);
        assert_eq!(
            identity("board", Some("138 1234 1234"), Some("u1"), None).as_deref(),
            Some("tel:13812341234")
        );
        assert_eq!(
            identity("board", None, Some("u1"), Some("张三")).as_deref(),
            Some("board:uid:u1")
        );
        assert_eq!(
            identity("portal", Some(""), None, Some("张三")).as_deref(),
            Some("portal:name:张三")
        );
        assert_eq!(identity("portal", None, None, Some("***")), None);
    }

    #[test]
    fn parses_feed_times() {
        let a = parse_time("2019/2/21 10:52:03").expect("slash form");
        let b = parse_time("2019-02-21 10:52:03").expect("dash form");
        let c = parse_time("2019-02-21T10:52:03+08:00").expect("rfc3339");
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(parse_time("2019-02-21T02:52:03Z"), Some(c));
        assert!(parse_time("yesterday").is_none());
        assert!(parse_time("").is_none());
    }

    #[test]
    fn titles_and_districts() {
        assert_eq!(
            derive_title("", "小区门口占道经营严重。每天晚上都有"),
            "小区门口占道经营严重"
        );
        assert_eq!(derive_title(" 标题 ", "x"), "标题");
        assert_eq!(canonical_district(Some("镜湖"), ""), Some("镜湖区".into()));
        assert_eq!(
            canonical_district(None, "我住在无为市某镇，弋江区也有"),
            Some("无为市".into())
        );
        assert_eq!(canonical_district(Some(""), "没有地名"), None);
    }

    #[test]
    fn extracts_places() {
        assert_eq!(
            extract_place("我家住在翠湖花园小区，物业乱收费").as_deref(),
            Some("翠湖花园小区")
        );
        assert_eq!(
            extract_place("长江东路路面坑洼").as_deref(),
            Some("长江东路")
        );
        assert_eq!(extract_place("没有地点的投诉"), None);
        assert_eq!(
            extract_place("南陵县城鸠路香荷小区物业收费").as_deref(),
            Some("香荷小区")
        );
        assert_eq!(
            extract_place("长乐街明山培训学校跑路了，长江路也有").as_deref(),
            Some("明山培训学校")
        );
        assert_eq!(
            extract_place("反映翠湖花园小区的问题").as_deref(),
            Some("翠湖花园小区")
        );
        assert_eq!(
            extract_place("明新大道湾长商贸有限公司拖欠").as_deref(),
            Some("湾长商贸有限公司")
        );
        // Leading phrases of buying or living somewhere are no part of the name.
        assert_eq!(
            extract_place("本人去年购买商品房金色家园，至今未交房").as_deref(),
            Some("金色家园")
        );
        assert_eq!(
            extract_place("我们购买的楼盘翡翠苑延期交房").as_deref(),
            Some("翡翠苑")
        );
        assert_eq!(
            extract_place("业主入住丽景小区后发现墙体开裂").as_deref(),
            Some("丽景小区")
        );
    }
}
