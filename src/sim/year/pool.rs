//! The real-text pool of `duban sim year`: the shared teddy messages, read at run time (never
//! copied), split into sentences and tagged with their matter and the place names they contain.

use anyhow::{Context, bail};
use std::collections::HashSet;
use std::path::Path;

/// The files read, and the names their title and body columns have.
const FILES: [&str; 4] = [
    "messages_hot.csv",
    "messages_replied.csv",
    "messages_unlabeled.csv",
    "train.csv",
];
const TITLE_COLUMNS: [&str; 2] = ["留言主题", "title"];
const BODY_COLUMNS: [&str; 2] = ["留言详情", "body"];

/// A body longer than this is cut at a sentence end (a few real messages run to 9,000 chars).
const MAX_BODY_CHARS: usize = 3000;
const MIN_BODY_CHARS: usize = 40;

/// Matters people complain about, by the words that name them. A text's matter is the one whose
/// words it uses most; the generator keeps one matter per place and issue.
pub const MATTERS: &[(&str, &[&str])] = &[
    ("噪音", &["噪音", "噪声", "扰民", "吵闹", "音响", "广场舞"]),
    ("物业", &["物业费", "物业", "业委会", "维修基金", "公摊"]),
    ("施工", &["施工", "工地", "渣土", "打桩", "夜间作业"]),
    ("停车", &["停车", "车位", "车库", "乱停"]),
    (
        "房屋质量",
        &["漏水", "渗水", "裂缝", "质量问题", "墙体", "交房"],
    ),
    ("产权办证", &["房产证", "不动产", "办证", "产权"]),
    ("违建", &["违建", "违章", "搭建", "加建", "私搭"]),
    ("垃圾", &["垃圾", "清运", "焚烧"]),
    ("油烟异味", &["油烟", "烧烤", "异味", "臭味", "恶臭"]),
    ("污染", &["污染", "排放", "粉尘", "污水", "排污", "扬尘"]),
    ("供水", &["停水", "自来水", "水压", "供水", "水质"]),
    (
        "供电燃气",
        &["停电", "供电", "电压", "燃气", "天然气", "电费"],
    ),
    ("电梯", &["电梯"]),
    (
        "道路",
        &["路面", "修路", "坑洼", "路灯", "人行道", "断头路"],
    ),
    ("交通", &["公交", "红绿灯", "拥堵", "地铁", "班车", "交警"]),
    (
        "教育",
        &["学校", "学位", "入学", "幼儿园", "教师", "学生", "招生"],
    ),
    ("拆迁", &["拆迁", "征收", "安置", "征地", "补偿款"]),
    ("劳动工资", &["工资", "欠薪", "拖欠", "劳动合同", "加班"]),
    ("消费", &["商家", "退款", "消费者", "退费", "价格", "售后"]),
    ("医疗", &["医院", "医生", "看病", "医保", "药"]),
    (
        "社保户籍",
        &[
            "社保",
            "养老",
            "公积金",
            "低保",
            "户口",
            "落户",
            "居住证",
            "退休",
        ],
    ),
    (
        "补贴政策",
        &["补贴", "政策", "人才", "申领", "补助", "资格"],
    ),
];

/// Words of the matters that concern the whole city rather than one place.
const POLICY_WORDS: &[&str] = &[
    "政策",
    "补贴",
    "社保",
    "公积金",
    "落户",
    "户口",
    "医保",
    "养老",
    "收费标准",
    "人才",
    "规定",
    "待遇",
    "居住证",
    "退休",
    "条例",
    "办理",
];

/// Suffixes that end a place name (no lone 府 or 城: 政府 and 县城 are no places).
pub const PLACE_SUFFIXES: &[&str] = &[
    "小区",
    "花园",
    "新城",
    "家园",
    "公寓",
    "大厦",
    "名都",
    "华府",
    "新村",
    "社区",
    "广场",
    "商城",
    "名城",
    "苑",
    "村",
    "大道",
    "路",
    "街",
    "巷",
    "学校",
    "学院",
    "中学",
    "小学",
    "幼儿园",
    "医院",
    "公司",
    "市场",
    "工地",
    "酒店",
    "超市",
    "公园",
    "厂",
];

/// Suffixes of homes and estates: the place a complaint is usually about.
pub const ESTATE_SUFFIXES: &[&str] = &[
    "小区", "花园", "新城", "名城", "家园", "公寓", "大厦", "名都", "华府", "新村", "社区", "苑",
];

/// Endings that look like a place name and are not one (所有村民 → 有村 is no village).
const NOT_A_PLACE: &[&str] = &[
    "全村",
    "本村",
    "农村",
    "乡村",
    "该村",
    "邻村",
    "各村",
    "进村",
    "出村",
    "有村",
    "个村",
    "村村",
    "道路",
    "马路",
    "公路",
    "出路",
    "思路",
    "一路",
    "走路",
    "修路",
    "门路",
    "线路",
    "电路",
    "套路",
    "让路",
    "过路",
    "铁路",
    "退路",
    "生路",
    "领路",
    "无路",
    "找路",
    "上路",
    "老路",
    "弯路",
    "半路",
    "大街",
    "上街",
    "逛街",
    "满街",
    "沿街",
    "临街",
    "当街",
    "该公司",
    "本公司",
    "家公司",
    "其公司",
];

/// Characters that do not belong to a place name: function words, pronouns, counters and the
/// administrative markers that precede one.
const NOT_IN_NAME: &str = "的在是我们你他她它了和与及对向从到于有个这那该住家旁边里内外前后为把被让请求给离近往由将也都就还而但或又等一二三四五六七八九十几条座栋所区县市省镇乡，。、：；！？,.:;!? ";

/// One real message, ready to be varied.
#[derive(Debug, Clone)]
pub struct BaseText {
    pub title: String,
    pub sentences: Vec<String>,
    /// Index into [`MATTERS`]; `None` when no matter word occurs.
    pub matter: Option<usize>,
    /// Distinct place names of the body, the text's own place (its first estate-like name, else
    /// its first name) first.
    pub places: Vec<String>,
    /// Place names only the title has.
    pub title_places: Vec<String>,
    /// About a city-wide policy, fee or service, and naming no place.
    pub policy: bool,
}

impl BaseText {
    pub fn chars(&self) -> usize {
        self.sentences.iter().map(|s| s.chars().count()).sum()
    }
}

/// Reads the four teddy files of `dir` (those present; at least one), drops short bodies and
/// repeats (same first 40 chars), and tags each message.
pub fn load(dir: &Path) -> anyhow::Result<Vec<BaseText>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut files = 0;
    for name in FILES {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for (title, body) in
            read_rows(&bytes).with_context(|| format!("parsing {}", path.display()))?
        {
            let key: String = body
                .chars()
                .filter(|c| !c.is_whitespace())
                .take(40)
                .collect();
            if body.chars().count() < MIN_BODY_CHARS || !seen.insert(key) {
                continue;
            }
            out.push(tag(title, &body));
        }
    }
    if files == 0 {
        bail!(
            "no teddy messages in {} (expected {}): set --teddy or DUBAN_SHARED_DIR",
            dir.display(),
            FILES.join(", ")
        );
    }
    Ok(out)
}

/// (title, body) of each row, by the columns' names (UTF-8 with or without BOM, else GB18030).
fn read_rows(bytes: &[u8]) -> anyhow::Result<Vec<(String, String)>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s.trim_start_matches('\u{feff}').to_string(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .context("reading the header row")?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let find = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let (Some(title), Some(body)) = (find(&TITLE_COLUMNS), find(&BODY_COLUMNS)) else {
        bail!(
            "expected a title ({}) and a body ({}) column, found {}",
            TITLE_COLUMNS.join("/"),
            BODY_COLUMNS.join("/"),
            headers.join(",")
        );
    };
    let mut rows = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("row {}", n + 2))?;
        let field = |i: usize| row.get(i).unwrap_or("").trim().to_string();
        rows.push((field(title), field(body)));
    }
    Ok(rows)
}

/// A message tagged: sentences, matter, places, policy.
pub fn tag(title: String, body: &str) -> BaseText {
    let body = crate::sim::text::truncate_sentences(body, MAX_BODY_CHARS);
    let sentences = split_sentences(&body);
    let all = format!("{title}。{body}");
    let matter = matter_of(&all);
    // The text's own place is named in the body: the first estate-like name there, else its
    // first name; names only the title has are kept apart (they are replaced, never planted).
    let mut places: Vec<String> = Vec::new();
    for span in place_spans(&body) {
        if !places.contains(&span) {
            places.push(span);
        }
    }
    if let Some(i) = places.iter().position(|p| is_estate(p)) {
        let p = places.remove(i);
        places.insert(0, p);
    }
    let mut title_places = Vec::new();
    for span in place_spans(&title) {
        if !places.contains(&span) && !title_places.contains(&span) {
            title_places.push(span);
        }
    }
    let policy = places.is_empty()
        && title_places.is_empty()
        && POLICY_WORDS.iter().any(|w| all.contains(w));
    BaseText {
        title,
        sentences,
        matter,
        places,
        title_places,
        policy,
    }
}

/// The text in sentences, each keeping its closing mark.
pub fn split_sentences(text: &str) -> Vec<String> {
    text.split_inclusive(['。', '！', '？', '!', '?', '；'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The matter whose words occur most often in `text` (first listed wins a tie).
pub fn matter_of(text: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, (_, words)) in MATTERS.iter().enumerate() {
        let n: usize = words.iter().map(|w| text.matches(w).count()).sum();
        if n > 0 && best.is_none_or(|(_, b)| n > b) {
            best = Some((i, n));
        }
    }
    best.map(|(i, _)| i)
}

pub fn is_estate(place: &str) -> bool {
    ESTATE_SUFFIXES.iter().any(|s| place.ends_with(s))
}

/// Place names in `text`: a place suffix with two to six name characters before it (CJK or
/// alphanumeric, none of [`NOT_IN_NAME`]), left to right, not overlapping.
pub fn place_spans(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let suffixes: Vec<Vec<char>> = PLACE_SUFFIXES.iter().map(|s| s.chars().collect()).collect();
    let mut out = Vec::new();
    let (mut i, mut floor) = (0, 0);
    while i < chars.len() {
        let Some(n) = suffixes
            .iter()
            .filter(|s| chars[i..].starts_with(s))
            .map(Vec::len)
            .max()
        else {
            i += 1;
            continue;
        };
        let mut start = i;
        while start > floor && i - start < 6 && name_char(chars[start - 1]) {
            start -= 1;
        }
        let span: String = chars[start..i + n].iter().collect();
        // 村民 is villagers, whatever precedes it.
        let villagers = span.ends_with('村') && chars.get(i + n) == Some(&'民');
        if i - start >= 2 && !villagers && !NOT_A_PLACE.iter().any(|w| span.ends_with(w)) {
            out.push(span);
            floor = i + n;
            i += n;
        } else {
            i += 1;
        }
    }
    out
}

fn name_char(c: char) -> bool {
    (('\u{4E00}'..='\u{9FFF}').contains(&c) || c.is_ascii_alphanumeric())
        && !NOT_IN_NAME.contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_places_and_matters() {
        assert_eq!(
            place_spans("我住在翠湖花园，楼下的东方路每天施工。"),
            vec!["翠湖花园".to_string(), "东方路".to_string()]
        );
        assert!(place_spans("我们小区的这个小区").is_empty());
        assert!(place_spans("全体村民向有关政府部门反映，县城里也是").is_empty());
        let b = tag(
            "咨询公积金提取政策".into(),
            "请问公积金可以网上提取吗？谢谢。",
        );
        assert!(b.policy && b.places.is_empty());
        assert_eq!(b.sentences.len(), 2);
        let b = tag(
            "噪音".into(),
            "东方路旁的锦绣小区夜里噪音扰民，广场舞音响太吵。",
        );
        assert_eq!(b.places[0], "锦绣小区");
        assert_eq!(MATTERS[b.matter.unwrap()].0, "噪音");
        assert!(!b.policy);
    }
}
