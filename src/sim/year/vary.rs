//! How `duban sim year` varies real texts: generated places and the many ways people write one
//! (suffix, prefix, short and long forms, stray characters), and edits of the words and sentences.

use super::pool;
use crate::sim::rng::SimRng;

/// Characters of generated place names (none of them a place suffix).
const NAME_CHARS: &[&str] = &[
    "安", "澜", "碧", "波", "滨", "晨", "曦", "春", "晖", "翠", "竹", "丹", "枫", "东", "方", "芳",
    "凤", "凰", "福", "华", "光", "明", "桂", "香", "海", "棠", "和", "平", "荷", "红", "湖", "畔",
    "嘉", "禾", "金", "锦", "绣", "景", "泰", "兰", "亭", "蓝", "湾", "丽", "莲", "林", "溪", "柳",
    "龙", "腾", "梅", "美", "南", "宁", "鹏", "祥", "青", "清", "秋", "瑞", "润", "山", "水", "盛",
    "世", "纪", "书", "恒", "松", "鹤", "天", "悦", "桐", "万", "象", "文", "西", "霞", "新", "星",
    "雅", "阳", "怡", "逸", "银", "樱", "玉", "裕", "云", "泽", "长", "兴", "中", "紫", "馨", "晴",
];
/// Developers' brands that people put before an estate's name, or leave out.
const BRANDS: &[&str] = &[
    "万科", "保利", "恒大", "中海", "绿地", "融创", "金茂", "华润", "龙湖", "招商", "世茂", "富力",
    "旭辉", "新城",
];
const ESTATE_SUFFIXES: &[&str] = &[
    "小区", "花园", "新城", "家园", "苑", "公寓", "名都", "华府", "新村", "城",
];
/// The suffixes people swap for an estate's own (or drop: "").
const FOLDED_SUFFIXES: &[&str] = &["小区", "新城", "花园", ""];
const ROAD_SUFFIXES: &[&str] = &["路", "大道", "街", "东路", "西路", "北路", "南路"];
const STREET_SUFFIXES: &[&str] = &["街道", "镇"];
/// Words written right before a place name with no break, which a reader may take for part of
/// the name (the "stray leading character").
const GLUED: &[&str] = &[
    "东",
    "西",
    "老",
    "新",
    "原",
    "近",
    "临",
    "邻",
    "毗",
    "挨",
    "城南",
    "城北",
    "对面",
    "隔壁",
    "楼下",
    "片区",
    "一期",
    "业主",
    "物业",
    "开发商",
    "强占",
    "挖走",
    "占用",
    "紧挨",
];
/// How a place's own residents refer to it when they do not name it.
pub const UNNAMED: &[&str] = &["我们小区", "本小区", "我们这个小区", "我家小区", "这个小区"];

/// A generated place: `[brand]core suffix` on a road, in a district and a town/street.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GenPlace {
    pub district: &'static str,
    pub street: String,
    pub road: String,
    pub brand: Option<&'static str>,
    pub core: String,
    pub suffix: &'static str,
}

impl GenPlace {
    /// The place's full name: brand, core and suffix.
    pub fn name(&self) -> String {
        format!("{}{}{}", self.brand.unwrap_or(""), self.core, self.suffix)
    }

    /// One way a person writes this place. `oddity` (0–1) scales how often it is not the name.
    pub fn variant(&self, rng: &mut SimRng, oddity: f64) -> String {
        if !rng.chance(oddity) {
            return self.name();
        }
        let brand = self.brand.unwrap_or("");
        match rng.below(9) {
            // Suffix folded to another, or dropped.
            0 | 1 => {
                let mut s = rng.pick(FOLDED_SUFFIXES);
                while s == self.suffix {
                    s = rng.pick(FOLDED_SUFFIXES);
                }
                let s = if s.is_empty() && self.core.chars().count() < 3 && brand.is_empty() {
                    "小区"
                } else {
                    s
                };
                format!("{brand}{}{s}", self.core)
            }
            // Short form: no brand, or the brand and no suffix.
            2 => match self.brand {
                Some(b) if rng.chance(0.5) => format!("{b}{}", self.core),
                _ => format!("{}{}", self.core, self.suffix),
            },
            // Long forms: administrative prefixes, the road, 小区 after the suffix.
            3 => format!("{}{}", self.district, self.name()),
            4 => format!("芜湖市{}{}{}", self.district, self.road, self.name()),
            5 => format!("{}{}", self.road, self.name()),
            6 => format!("{}{}{}", self.district, self.street, self.name()),
            7 if self.suffix != "小区" => format!("{}小区", self.name()),
            // A word glued before the name.
            _ => format!("{}{}", rng.pick(GLUED), self.name()),
        }
    }
}

/// Makes places whose names never repeat (core and suffix unique over the corpus).
pub struct PlaceMaker {
    used: std::collections::HashSet<String>,
}

impl PlaceMaker {
    pub fn new() -> PlaceMaker {
        PlaceMaker {
            used: Default::default(),
        }
    }

    /// A name core of two (mostly) or three characters not used before with `suffix`.
    pub fn core(&mut self, rng: &mut SimRng, suffix: &str) -> String {
        loop {
            let n = if rng.chance(0.8) { 2 } else { 3 };
            let mut core = String::new();
            while core.chars().count() < n {
                let c = rng.pick(NAME_CHARS);
                if !core.contains(c) {
                    core.push_str(c);
                }
            }
            if self.used.insert(format!("{core}{suffix}")) {
                return core;
            }
        }
    }

    pub fn estate(&mut self, rng: &mut SimRng, district: &'static str) -> GenPlace {
        let suffix = rng.pick(ESTATE_SUFFIXES);
        let core = self.core(rng, suffix);
        let road_suffix = rng.pick(ROAD_SUFFIXES);
        let road = format!("{}{road_suffix}", self.core(rng, road_suffix));
        let street_suffix = rng.pick(STREET_SUFFIXES);
        let street = format!("{}{street_suffix}", self.core(rng, street_suffix));
        GenPlace {
            district,
            street,
            road,
            brand: rng.chance(0.25).then(|| rng.pick(BRANDS)),
            core,
            suffix,
        }
    }

    /// A fresh name in place of a real one, of the same kind (same suffix).
    pub fn like(&mut self, rng: &mut SimRng, real: &str) -> String {
        let suffix = pool::PLACE_SUFFIXES
            .iter()
            .filter(|s| real.ends_with(*s))
            .max_by_key(|s| s.len())
            .copied()
            .unwrap_or("路");
        format!("{}{suffix}", self.core(rng, suffix))
    }
}

impl Default for PlaceMaker {
    fn default() -> Self {
        PlaceMaker::new()
    }
}

/// Word swaps people make between writing the same thing twice (either direction).
const SYNONYMS: &[(&str, &str)] = &[
    ("反映", "反应"),
    ("希望", "恳请"),
    ("尽快", "尽早"),
    ("相关部门", "有关部门"),
    ("解决", "处理"),
    ("居民", "住户"),
    ("目前", "现在"),
    ("影响", "干扰"),
    ("谢谢", "感谢"),
    ("噪音", "噪声"),
    ("孩子", "小孩"),
    ("立即", "马上"),
    ("一直", "始终"),
    ("多次", "好几次"),
    ("投诉", "举报"),
    ("请问", "想问一下"),
    ("非常", "特别"),
    ("但是", "可是"),
    ("因为", "由于"),
    ("所以", "因此"),
    ("没有", "没"),
    ("领导", "政府"),
    ("严重", "厉害"),
    ("业主", "住户"),
    ("要求", "请求"),
    ("问题", "情况"),
];
/// Sentences people add of their own.
const OWN_SENTENCES: &[&str] = &[
    "您好！",
    "尊敬的领导：",
    "我是附近的居民。",
    "麻烦尽快处理。",
    "希望早日得到答复。",
    "谢谢！",
    "这个问题困扰我们很久了。",
    "周边住户都有同感。",
    "请相关部门重视。",
    "实在没有办法才在这里留言。",
    "盼复。",
    "望领导百忙之中关注一下。",
    "大家都很着急。",
    "再这样下去真的没法生活了。",
    "希望能给老百姓一个说法。",
];
/// What a person writes when filing the same complaint again.
const AGAIN: &[&str] = &[
    "这是我第二次反映这个问题了。",
    "之前反映过，至今没有结果，再次反映。",
    "上次留言后没有任何回复。",
    "问题依旧没有解决，再次留言。",
    "已经反映过好几次，请给个答复。",
    "前段时间反映的问题到现在还是老样子。",
];

/// How much a text is changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EditStrength {
    /// Chance each sentence is dropped (one is always kept).
    pub drop: f64,
    /// Chance of swapping each pair of neighbouring sentences.
    pub swap: f64,
    /// Chance each synonym pair is applied.
    pub synonym: f64,
    /// Own sentences added (0..=n).
    pub insert: usize,
    /// Characters deleted or doubled (typos, 0..=n).
    pub typos: usize,
    /// Chance of keeping only the first one or two sentences (a short note).
    pub short: f64,
}

impl EditStrength {
    /// Punctuation and a word or two: template texts sent by many.
    pub const LIGHT: EditStrength = EditStrength {
        drop: 0.0,
        swap: 0.0,
        synonym: 0.05,
        insert: 0,
        typos: 1,
        short: 0.0,
    };
    /// What another person writing about the same thing, or the same person again, changes.
    pub const MEDIUM: EditStrength = EditStrength {
        drop: 0.08,
        swap: 0.15,
        synonym: 0.25,
        insert: 2,
        typos: 2,
        short: 0.05,
    };
    /// A reused text made into another person's complaint.
    pub const STRONG: EditStrength = EditStrength {
        drop: 0.12,
        swap: 0.25,
        synonym: 0.4,
        insert: 3,
        typos: 3,
        short: 0.04,
    };
}

/// Edits sentences: drops, swaps, own sentences, a short note.
pub fn edit_sentences(rng: &mut SimRng, sentences: &[String], e: EditStrength) -> Vec<String> {
    let mut out: Vec<String> = if sentences.len() > 2 && rng.chance(e.short) {
        sentences[..rng.range(1, 2) as usize].to_vec()
    } else {
        let kept: Vec<String> = sentences
            .iter()
            .filter(|_| !rng.chance(e.drop))
            .cloned()
            .collect();
        if kept.is_empty() {
            sentences.iter().take(1).cloned().collect()
        } else {
            kept
        }
    };
    for i in 1..out.len() {
        if rng.chance(e.swap) {
            out.swap(i - 1, i);
        }
    }
    for _ in 0..rng.range(0, e.insert as i64) {
        let at = rng.below(out.len() + 1);
        out.insert(at, rng.pick(OWN_SENTENCES).to_string());
    }
    out
}

/// A sentence saying this is filed again, inserted after the first.
pub fn add_again(rng: &mut SimRng, sentences: &mut Vec<String>) {
    let at = 1.min(sentences.len());
    sentences.insert(at, rng.pick(AGAIN).to_string());
}

/// Word and character edits of a whole text: synonyms, punctuation, typos.
pub fn edit_words(rng: &mut SimRng, text: &str, e: EditStrength) -> String {
    let mut t = text.to_string();
    for (a, b) in SYNONYMS {
        if rng.chance(e.synonym) {
            t = if rng.chance(0.5) {
                t.replace(a, b)
            } else {
                t.replace(b, a)
            };
        }
    }
    if rng.chance(0.3) {
        t = t.replace('，', ",");
    }
    if rng.chance(0.15) {
        t = t.replace('。', ".");
    }
    if rng.chance(0.2) {
        t = t.replace('！', "!");
    }
    let mut chars: Vec<char> = t.chars().collect();
    for _ in 0..rng.range(0, e.typos as i64) {
        if chars.len() < 20 {
            break;
        }
        let at = rng.below(chars.len());
        if rng.chance(0.5) {
            chars.remove(at);
        } else {
            chars.insert(at, chars[at]);
        }
    }
    chars.into_iter().collect()
}

/// Replaces the teddy files' coded city and districts (`A市`, `A3区`, `A7县`) with `city` and
/// `district` (the coded districts all map to the one given).
pub fn decode_admin(text: &str, city: &str, district: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == 'A' && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            match chars.get(j) {
                Some('市') if j == i + 1 => {
                    out.push_str(city);
                    i = j + 1;
                    continue;
                }
                Some('区' | '县' | '市') if j > i + 1 => {
                    out.push_str(district);
                    i = j + 1;
                    continue;
                }
                _ => {}
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Replaces whole place names in `text` by their mapped strings (longest first, so that a name
/// containing another is replaced as a whole).
pub fn replace_places(text: &str, map: &[(String, String)]) -> String {
    let mut order: Vec<&(String, String)> = map.iter().filter(|(k, _)| !k.is_empty()).collect();
    order.sort_by_key(|(k, _)| std::cmp::Reverse(k.chars().count()));
    // Placeholders first, so a replacement is never replaced again.
    let mut t = text.to_string();
    for (n, (k, _)) in order.iter().enumerate() {
        t = t.replace(k.as_str(), &format!("\u{1}{n}\u{2}"));
    }
    for (n, (_, v)) in order.iter().enumerate() {
        t = t.replace(&format!("\u{1}{n}\u{2}"), v);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_coded_admin_names() {
        assert_eq!(
            decode_admin("A市A3区某路，A7县和B市", "芜湖市", "镜湖区"),
            "芜湖市镜湖区某路，镜湖区和B市"
        );
        assert_eq!(decode_admin("PA市", "芜湖市", "X"), "PA市");
    }

    #[test]
    fn place_variants_keep_the_core_and_names_never_repeat() {
        let mut rng = SimRng::new(5);
        let mut maker = PlaceMaker::new();
        let p = maker.estate(&mut rng, "镜湖区");
        let q = maker.estate(&mut rng, "镜湖区");
        assert_ne!(p.name(), q.name());
        let mut forms = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let v = p.variant(&mut rng, 1.0);
            assert!(v.contains(&p.core), "{v} lacks {}", p.core);
            forms.insert(v);
        }
        assert!(forms.len() >= 8, "{forms:?}");
        assert_eq!(p.variant(&mut rng, 0.0), p.name());
    }

    #[test]
    fn replaces_longest_names_first_and_once() {
        let map = vec![
            ("翠湖".to_string(), "X".to_string()),
            ("翠湖花园".to_string(), "锦绣小区".to_string()),
            ("东方路".to_string(), "翠湖".to_string()),
        ];
        assert_eq!(
            replace_places("翠湖花园在东方路，翠湖", &map),
            "锦绣小区在翠湖，X"
        );
    }

    #[test]
    fn edits_change_but_keep_some_text() {
        let mut rng = SimRng::new(9);
        let s: Vec<String> = ["一二三四五六。", "七八九十。", "甲乙丙丁。", "子丑寅卯。"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for _ in 0..50 {
            let e = edit_sentences(&mut rng, &s, EditStrength::STRONG);
            assert!(!e.is_empty());
            let light = edit_words(&mut rng, &s.concat(), EditStrength::LIGHT);
            let diff = light.chars().count() as i64 - s.concat().chars().count() as i64;
            assert!(diff.abs() <= 1);
        }
    }
}
