//! Places as people write them: every place a complaint names, reduced to a canonical key, and a
//! per-block registry that tells which keys are one place (containment, string similarity, aliases).
//!
//! People write one estate many ways: with the administrative units before it (A市A2区, 暮云街道),
//! with a character glued on from the word before (李丽发新城), with a company before it
//! (富绿物业丽发新城), with another suffix (丽发新城 / 丽发小区 / 丽发新城社区), in a shorter or a
//! longer form (滨河苑 / 伊景园滨河苑). A key keeps the place's kind (estate, road, site) and its
//! core: the name without administrative prefixes and, for estates, without the suffixes people
//! vary. Two keys of one block are one place when one core ends with the other (what is glued on
//! comes before a name) or when they are nearly the same string (Jaro-Winkler, for typos and
//! one-character variants); two keys that keep being named by near-identical texts are one place
//! once they share some of their characters (learned aliases). Nothing here is keyed to a name:
//! the rules are general vocabulary of Chinese place names.

use std::collections::{BTreeMap, HashMap};

use crate::engine::cluster::FastHash;

/// What a place is: a residential estate or neighbourhood, a road, or another site (a school, a
/// company, a factory, a park...). Keys of different kinds never match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Estate,
    Road,
    Site,
}

impl Kind {
    fn tag(self) -> char {
        match self {
            Kind::Estate => 'E',
            Kind::Road => 'R',
            Kind::Site => 'S',
        }
    }
}

/// Suffixes that end a place name, with its kind. Longest first at lookup.
const SUFFIXES: &[(&str, Kind)] = &[
    ("小区", Kind::Estate),
    ("社区", Kind::Estate),
    ("花园", Kind::Estate),
    ("家园", Kind::Estate),
    ("新村", Kind::Estate),
    ("新城", Kind::Estate),
    ("公寓", Kind::Estate),
    ("山庄", Kind::Estate),
    ("公馆", Kind::Estate),
    ("华庭", Kind::Estate),
    ("安置区", Kind::Estate),
    ("苑", Kind::Estate),
    ("府", Kind::Estate),
    ("城", Kind::Estate),
    ("庭", Kind::Estate),
    ("村", Kind::Estate),
    ("大厦", Kind::Estate),
    ("大楼", Kind::Estate),
    ("大道", Kind::Road),
    ("道路", Kind::Road),
    ("公路", Kind::Road),
    ("马路", Kind::Road),
    ("线路", Kind::Road),
    ("路", Kind::Road),
    ("街", Kind::Road),
    ("巷", Kind::Road),
    ("立交", Kind::Road),
    ("大桥", Kind::Road),
    ("桥", Kind::Road),
    ("广场", Kind::Site),
    ("公园", Kind::Site),
    ("车站", Kind::Site),
    ("地铁站", Kind::Site),
    ("公交站", Kind::Site),
    ("站", Kind::Site),
    ("码头", Kind::Site),
    ("市场", Kind::Site),
    ("商场", Kind::Site),
    ("超市", Kind::Site),
    ("酒店", Kind::Site),
    ("宾馆", Kind::Site),
    ("饭店", Kind::Site),
    ("餐馆", Kind::Site),
    ("餐厅", Kind::Site),
    ("药房", Kind::Site),
    ("药店", Kind::Site),
    ("店", Kind::Site),
    ("网吧", Kind::Site),
    ("酒吧", Kind::Site),
    ("健身房", Kind::Site),
    ("影院", Kind::Site),
    ("银行", Kind::Site),
    ("诊所", Kind::Site),
    ("驾校", Kind::Site),
    ("养殖场", Kind::Site),
    ("停车场", Kind::Site),
    ("医院", Kind::Site),
    ("卫生院", Kind::Site),
    ("学校", Kind::Site),
    ("中学", Kind::Site),
    ("小学", Kind::Site),
    ("幼儿园", Kind::Site),
    ("学院", Kind::Site),
    ("大学", Kind::Site),
    ("工地", Kind::Site),
    ("工厂", Kind::Site),
    ("厂", Kind::Site),
    ("公司", Kind::Site),
    ("有限公司", Kind::Site),
    ("有限责任公司", Kind::Site),
    ("搅拌站", Kind::Site),
    ("搅拌厂", Kind::Site),
    ("垃圾站", Kind::Site),
    ("加油站", Kind::Site),
    ("水泥厂", Kind::Site),
    ("集团", Kind::Site),
    ("工业园", Kind::Site),
    ("产业园", Kind::Site),
    ("园区", Kind::Site),
    ("中心", Kind::Site),
    ("馆", Kind::Site),
];

/// Suffixes an estate's name is written with or without (丽发新城小区 = 丽发新城 = 丽发小区),
/// and phases of one estate (二期): stripped from an estate's core, longest first.
const ESTATE_VARIANTS: &[&str] = &[
    "小区",
    "社区",
    "新城",
    "花园",
    "家园",
    "新村",
    "公寓",
    "山庄",
    "公馆",
    "华庭",
    "安置区",
    "一期",
    "二期",
    "三期",
    "四期",
    "五期",
    "六期",
    "东区",
    "西区",
    "南区",
    "北区",
    "苑",
    "府",
    "城",
    "庭",
    "园",
    "村",
];

/// Characters a place name never holds: function words, pronouns, verbs of telling that end the
/// phrase before a name (在丽发新城 → 丽发新城).
const STOP_CHARS: &[char] = &[
    '的', '在', '是', '我', '你', '他', '她', '它', '们', '了', '与', '及', '或', '对', '向', '从',
    '到', '于', '有', '个', '这', '那', '该', '把', '被', '让', '请', '求', '说', '要', '想', '将',
    '就', '都', '也', '还', '又', '很', '太', '最', '更', '没', '不', '未', '已', '给', '叫', '等',
    '其', '因', '但', '而', '却', '吗', '呢', '吧', '啊', '着', '过', '能', '会', '可', '每', '些',
    '几', '多', '第', '为', '被', '并', '且', '如', '若', '买', '卖', '住', '近', '旁', '边', '里',
    '内', '外', '前', '后', '去', '来', '以', '用', '做', '搞', '占', '堵', '挡',
];

/// Words that end what precedes a place name without being part of it (位于丽发新城, 违建搅拌站).
const BOUNDARY_WORDS: &[&str] = &[
    "投诉",
    "反映",
    "反应",
    "举报",
    "关于",
    "位于",
    "地处",
    "坐落",
    "希望",
    "要求",
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
    "隔壁",
    "侧面",
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
    "购买",
    "认购",
    "商品房",
    "二手房",
    "房子",
    "房屋",
    "楼盘",
    "入住",
    "居住",
    "租住",
    "所在",
    "就读",
    "开发商",
    "建设",
    "修建",
    "新建",
    "违建",
    "在建",
    "扩建",
    "开设",
    "设立",
    "搬迁",
    "通过",
    "加强",
    "其他",
    "一个",
    "一家",
    "一所",
    "这家",
    "那家",
    "大型",
    "特大",
    "门口",
    "黑心",
    "非法",
    "违法",
    "违规",
    "无证",
    "无资质",
    "混凝土",
    "混泥土",
    "水泥",
    "物业",
    "以及",
    "还有",
    "包括",
    "整个",
    "全体",
    "广大",
    "所有",
    "部分",
    "联合",
    "要求",
    "强制",
    "底商",
    "楼下",
    "一楼",
    "底层",
];

/// Names that are a kind of place, not a place (物业公司 is any estate's manager; 政府 is no
/// place of a complaint).
const GENERIC: &[&str] = &[
    "物业",
    "开发",
    "施工",
    "建筑",
    "装修",
    "保安",
    "保洁",
    "家政",
    "中介",
    "快递",
    "外卖",
    "培训",
    "教育",
    "科技",
    "房产",
    "地产",
    "商贸",
    "附近",
    "周边",
    "当地",
    "本地",
    "小",
    "新",
    "老",
    "大",
    "本",
    "该",
    "某",
    "某某",
    "各",
    "全",
    "整",
    "公交",
    "地铁",
    "搅拌",
    "人民",
    "市政",
    "有关",
    "相关",
    "政府",
    "上述",
    "同一",
    "单位",
    "部门",
    "学生",
    "职工",
    "员工",
    "这",
    "那",
    "一",
    "安置",
    "高速",
    "配套",
    "全市",
    "全省",
    "全区",
    "全县",
    "城中",
    "烧烤",
    "餐饮",
    "小吃",
    "早餐",
    "夜宵",
    "水果",
    "理发",
    "美容",
    "美发",
    "洗车",
    "健身",
    "便利",
    "小卖",
    "饭",
    "面",
    "酒",
    "茶",
    "宵夜",
    "麻将",
    "棋牌",
    "大排档",
    "商铺",
    "门面",
    "门店",
    "沿街",
    "临街",
    "路边",
    "黑",
    "无证",
];

/// Administrative units before a name: (unit, characters after it that make it a word instead,
/// e.g. 市场, 区域).
const ADMIN: &[(&str, &[char])] = &[
    ("省", &['份', '内', '外', '里', '级']),
    (
        "市",
        &[
            '场', '民', '政', '区', '内', '里', '中', '面', '值', '级', '容', '外',
        ],
    ),
    ("区", &['域', '别', '间', '内', '里', '块', '级', '外']),
    ("县", &['城', '里', '内', '级', '外']),
    ("街道", &['办', '口']),
    ("镇", &['上', '里', '内', '级', '政']),
    ("乡", &['村', '下', '里', '镇', '级']),
];

/// Longest name (before its suffix) looked at, in characters.
const MAX_NAME: usize = 10;

fn is_name_char(c: char) -> bool {
    (('\u{4E00}'..='\u{9FFF}').contains(&c) || c.is_ascii_alphanumeric())
        && !STOP_CHARS.contains(&c)
}

/// The suffix (and its kind) ending at char `end` (exclusive), longest first.
fn suffix_ending(chars: &[char], end: usize) -> Option<(usize, Kind)> {
    suffixes_ending(chars, end).next()
}

/// Every suffix (and its kind) ending at char `end` (exclusive), longest first.
fn suffixes_ending(chars: &[char], end: usize) -> impl Iterator<Item = (usize, Kind)> + '_ {
    /// Suffixes by their last character, longest first.
    type ByLast = HashMap<char, Vec<(Vec<char>, Kind)>>;
    static BY_LAST: std::sync::LazyLock<ByLast> = std::sync::LazyLock::new(|| {
        let mut m: ByLast = HashMap::new();
        for (s, k) in SUFFIXES {
            let cs: Vec<char> = s.chars().collect();
            if let Some(last) = cs.last() {
                m.entry(*last).or_default().push((cs, *k));
            }
        }
        for v in m.values_mut() {
            v.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        }
        m
    });
    end.checked_sub(1)
        .and_then(|i| chars.get(i))
        .and_then(|last| BY_LAST.get(last))
        .into_iter()
        .flatten()
        .filter(move |(s, _)| end >= s.len() && chars[end - s.len()..end] == s[..])
        .map(|(s, k)| (s.len(), *k))
}

/// Where the name of a run `chars[start..end]` begins once administrative prefixes and leading
/// boundary words are dropped (A市A2区丽发新城 → 丽发新城).
fn name_start(chars: &[char], mut start: usize, end: usize) -> usize {
    static WORDS: std::sync::LazyLock<Vec<Vec<char>>> =
        std::sync::LazyLock::new(|| BOUNDARY_WORDS.iter().map(|w| w.chars().collect()).collect());
    static UNITS: std::sync::LazyLock<Vec<(Vec<char>, &'static [char])>> =
        std::sync::LazyLock::new(|| {
            ADMIN
                .iter()
                .map(|(u, n)| (u.chars().collect(), *n))
                .collect()
        });
    // The last boundary word in the run (or straddling its start: 在建搅拌站) ends what
    // precedes the name.
    let lo = start.saturating_sub(1);
    for w in WORDS.iter() {
        if w.len() > end.saturating_sub(lo) {
            continue;
        }
        for at in lo..=end - w.len() {
            if chars[at..at + w.len()] == w[..] {
                start = start.max(at + w.len());
            }
        }
    }
    // Administrative units: everything up to the last one that leaves a name of two characters.
    let mut cut = start;
    for (unit, not_after) in UNITS.iter() {
        for at in start..end.saturating_sub(unit.len()) {
            let after = at + unit.len();
            if chars[at..after] == unit[..]
                && at > start
                && end - after >= 2
                && !not_after.contains(&chars[after])
            {
                cut = cut.max(after);
            }
        }
    }
    cut
}

/// A name that is an administrative unit itself (A市, 镜湖区): no place of a complaint.
fn is_admin(name: &str) -> bool {
    ADMIN.iter().any(|(unit, _)| name.ends_with(unit))
}

/// One place a complaint names.
#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    /// Canonical key (kind tag and core): equal keys are one place.
    pub key: String,
    /// The name as written, administrative prefixes dropped (for display).
    pub name: String,
    /// Named in the title (else the body).
    pub in_title: bool,
    /// The last place of a chain of adjacent places (劳动东路魅力之城小区: the estate), the most
    /// specific one.
    pub specific: bool,
}

/// The canonical key of a place name of a kind: its core, prefixed by the kind's tag. Estates
/// lose the suffixes people vary (丽发新城小区, 丽发小区, 丽发新城社区 → E丽发); other kinds keep
/// their name. `None` when no name is left (a bare suffix, a generic word).
pub fn key_of(name: &str, kind: Kind) -> Option<String> {
    let mut core: Vec<char> = name.chars().collect();
    if kind == Kind::Estate {
        static VARIANTS: std::sync::LazyLock<Vec<Vec<char>>> = std::sync::LazyLock::new(|| {
            let mut v: Vec<Vec<char>> = ESTATE_VARIANTS
                .iter()
                .map(|s| s.chars().collect())
                .collect();
            v.sort_by_key(|s| std::cmp::Reverse(s.len()));
            v
        });
        'strip: loop {
            for s in VARIANTS.iter() {
                if core.len() >= s.len() + 2 && core.ends_with(s) {
                    core.truncate(core.len() - s.len());
                    continue 'strip;
                }
            }
            break;
        }
    }
    let core: String = core.into_iter().collect();
    if core.chars().count() < 2 || GENERIC.contains(&core.as_str()) {
        return None;
    }
    let mut key = String::with_capacity(core.len() + 1);
    key.push(kind.tag());
    key.push_str(&core);
    Some(key)
}

/// Characters after a suffix that make it part of another word (城管, 街道, 村民, 路灯...).
fn suffix_continues(suffix_last: char, next: Option<char>) -> bool {
    let Some(next) = next else { return false };
    let words: &[char] = match suffix_last {
        '城' => &['管', '市', '区', '乡', '镇', '建', '投', '际'],
        '街' => &['道', '头', '坊'],
        '站' => &['长', '点', '台'],
        '村' => &['民', '委', '干', '组', '里'],
        '厂' => &['家', '商', '长', '区', '房'],
        '场' => &['监', '所', '地', '景'],
        '路' => &[
            '线', '灯', '面', '况', '边', '段', '上', '过', '费', '基', '牌', '障',
        ],
        '馆' => &['长'],
        '店' => &['员', '主', '家', '铺', '面', '长'],
        '房' => &['东', '子', '屋', '价', '产', '租'],
        '心' => &['里', '中'],
        '司' => &['机', '法'],
        '园' => &['区', '长'],
        '桥' => &['梁', '下', '上'],
        _ => &[],
    };
    words.contains(&next)
}

/// Every place named in `text`, left to right (each key once).
fn scan(text: &str, in_title: bool, out: &mut Vec<Mention>) {
    let chars: Vec<char> = text.chars().collect();
    // Spans (start, end, kind) of place names; a suffix right after a name extends it
    // (翠湖花园小区), adjacent names form a chain (劳动东路翠湖花园).
    let mut spans: Vec<(usize, usize, Kind)> = Vec::new();
    let suffix_at = |end: usize| {
        suffix_ending(&chars, end)
            .filter(|_| !suffix_continues(chars[end - 1], chars.get(end).copied()))
    };
    let mut floor = 0;
    let mut end = 1;
    while end <= chars.len() {
        if suffix_at(end).is_none() {
            end += 1;
            continue;
        }
        // The longest suffix that leaves a name (化工厂: 化工 + 厂, not 化 + 工厂).
        let found = suffixes_ending(&chars, end).find_map(|(n, kind)| {
            let suffix_start = end - n;
            let mut start = suffix_start;
            while start > floor && suffix_start - start < MAX_NAME && is_name_char(chars[start - 1])
            {
                start -= 1;
            }
            let named = name_start(&chars, start, suffix_start);
            let name: String = chars[named..suffix_start].iter().collect();
            (suffix_start >= named + 2 && !GENERIC.contains(&name.as_str()) && !is_admin(&name))
                .then_some((named, kind))
        });
        let Some((named, kind)) = found else {
            end += 1;
            continue;
        };
        // Estate suffixes that follow extend an estate's name (花园 + 小区).
        let mut last = end;
        while kind == Kind::Estate
            && let Some(e) = (last + 1..=(last + 3).min(chars.len()))
                .find(|&e| suffix_at(e).is_some_and(|(m, k)| e - m == last && k == Kind::Estate))
        {
            last = e;
        }
        spans.push((named, last, kind));
        floor = last;
        end = last + 1;
    }
    // The most specific place of a chain of adjacent places (劳动东路翠湖花园, 翠湖花园底商某店):
    // its last estate (estates name a place most reliably; a shop is often named by its kind),
    // else its last place.
    let mut specific = vec![false; spans.len()];
    let mut first = 0;
    for i in 0..spans.len() {
        let chain_ends = spans.get(i + 1).is_none_or(|next| next.0 != spans[i].1);
        if chain_ends {
            let chain = first..=i;
            let pick = chain
                .clone()
                .rev()
                .find(|&k| spans[k].2 == Kind::Estate)
                .unwrap_or(i);
            specific[pick] = true;
            first = i + 1;
        }
    }
    for (i, &(a, b, kind)) in spans.iter().enumerate() {
        let name: String = chars[a..b].iter().collect();
        let specific = specific[i];
        if name.ends_with("政府") {
            continue;
        }
        if let Some(key) = key_of(&name, kind)
            && !out.iter().any(|m| m.key == key)
        {
            out.push(Mention {
                key,
                name,
                in_title,
                specific,
            });
        }
    }
}

/// Most places kept per complaint.
pub const MAX_MENTIONS: usize = 8;

/// Every place a complaint names: the title's first, then the body's (each key once, at most
/// `MAX_MENTIONS`). The first is the complaint's primary place (see `primary`).
pub fn mentions(title: &str, body: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    scan(title, true, &mut out);
    scan(body, false, &mut out);
    out.truncate(MAX_MENTIONS);
    out
}

/// The place a complaint is about: the most specific place its title names (the last of a
/// chain), else the body's first most specific one.
pub fn primary(mentions: &[Mention]) -> Option<&Mention> {
    mentions
        .iter()
        .find(|m| m.in_title && m.specific)
        .or_else(|| mentions.iter().find(|m| m.specific))
        .or_else(|| mentions.first())
}

/// The place a text is about (`primary` of its mentions), as written: the complaint's `place`.
pub fn place_of(text: &str) -> Option<String> {
    primary(&mentions(text, "")).map(|m| m.name.clone())
}

/// Whether two keys of one block name one place: one core ends with the other (a name with
/// something glued on before it), or the two are nearly the same string.
pub fn same_place(a: &str, b: &str) -> bool {
    let (mut ca, mut cb) = (a.chars(), b.chars());
    if ca.next() != cb.next() {
        return false; // another kind
    }
    let (x, y) = (ca.as_str(), cb.as_str());
    if x == y {
        return true;
    }
    let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
    let short_n = short.chars().count();
    if short_n >= 2 && long.ends_with(short) {
        return true;
    }
    short_n >= 4 && strsim::jaro_winkler(x, y) >= 0.88
}

/// Weaker than `same_place`: the two cores share a pair of adjacent characters. Aliases learned
/// from co-occurring texts need at least this much (template texts naming different estates
/// share none of their names).
fn related(a: &str, b: &str) -> bool {
    let (mut ca, mut cb) = (a.chars(), b.chars());
    if ca.next() != cb.next() {
        return false;
    }
    let y: Vec<char> = cb.collect();
    let x: Vec<char> = ca.collect();
    x.windows(2).any(|w| y.windows(2).any(|v| v == w))
}

/// A place of a block: its keys are its names; merged places point at the survivor.
#[derive(Debug, Clone)]
struct Place {
    /// The place this one was found to be (an alias learned later), or itself.
    parent: u32,
    /// Latest record time it was named.
    last_seen: i64,
}

/// Times two places must be named by near-identical texts before they are taken for one.
const ALIAS_EVIDENCE: u32 = 2;

/// The places of every block: keys resolved to place ids (stable numbers, never reused), learned
/// aliases, eviction by record time.
#[derive(Debug, Default, Clone)]
pub struct PlaceRegistry {
    /// (block, key) → place id.
    by_key: HashMap<(u64, Box<str>), u32, FastHash>,
    /// (block, kind tag, first char of the core... any bigram) → place ids holding it, for
    /// similarity candidates.
    grams: HashMap<(u64, [char; 2]), Vec<u32>, FastHash>,
    /// Place id → its record; `keys[id]` is its first key.
    places: HashMap<u32, Place, FastHash>,
    keys: HashMap<u32, Box<str>, FastHash>,
    next: u32,
    /// (place, place) → near-identical texts that named one and the other.
    evidence: BTreeMap<(u32, u32), u32>,
}

fn grams(key: &str) -> Vec<[char; 2]> {
    let c: Vec<char> = key.chars().skip(1).collect();
    let tag = key.chars().next().unwrap_or('?');
    let mut g: Vec<[char; 2]> = c.windows(2).map(|w| [w[0], w[1]]).collect();
    // The kind tag with the first character: keys of two characters have one bigram only.
    if let Some(first) = c.first() {
        g.push([tag, *first]);
    }
    g.sort_unstable();
    g.dedup();
    g
}

impl PlaceRegistry {
    /// The place id of `key` in `block` at time `at`: the place it was matched to before, else a
    /// known place it names (`same_place`; the lowest id of the best), else a new place.
    /// Whether place `id` is an estate (by its root's first key; false once evicted).
    pub fn is_estate(&self, id: u32) -> bool {
        self.keys
            .get(&self.root(id))
            .is_some_and(|k| k.starts_with(Kind::Estate.tag()))
    }

    pub fn resolve(&mut self, block: u64, key: &str, at: i64) -> u32 {
        if let Some(&id) = self.by_key.get(&(block, Box::from(key))) {
            let root = self.root(id);
            if let Some(p) = self.places.get_mut(&root) {
                p.last_seen = p.last_seen.max(at);
            }
            return root;
        }
        let gs = grams(key);
        let mut candidates: Vec<u32> = gs
            .iter()
            .filter_map(|g| self.grams.get(&(block, *g)))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let found = candidates
            .into_iter()
            .filter(|id| self.keys.get(id).is_some_and(|k| same_place(k, key)))
            .map(|id| self.root(id))
            .min();
        let id = match found {
            Some(id) => id,
            None => {
                let id = self.next;
                self.next += 1;
                self.places.insert(
                    id,
                    Place {
                        parent: id,
                        last_seen: at,
                    },
                );
                self.keys.insert(id, key.into());
                id
            }
        };
        // The key is known from now on, and found by its own bigrams too.
        self.by_key.insert((block, key.into()), id);
        if found.is_none() {
            for g in gs {
                self.grams.entry((block, g)).or_default().push(id);
            }
        }
        if let Some(p) = self.places.get_mut(&id) {
            p.last_seen = p.last_seen.max(at);
        }
        id
    }

    /// The surviving place of `id` (itself unless it was found to be another).
    pub fn root(&self, mut id: u32) -> u32 {
        while let Some(p) = self.places.get(&id) {
            if p.parent == id {
                break;
            }
            id = p.parent;
        }
        id
    }

    /// Places `a` and `b` were named by near-identical texts; after `ALIAS_EVIDENCE` times, and
    /// when their names are related, they are one place (the older id survives). Returns the
    /// (merged, survivor) pair when that happened.
    pub fn co_occurred(&mut self, a: u32, b: u32) -> Option<(u32, u32)> {
        let (a, b) = (self.root(a), self.root(b));
        if a == b {
            return None;
        }
        let pair = (a.min(b), a.max(b));
        let n = self.evidence.entry(pair).or_default();
        *n += 1;
        if *n < ALIAS_EVIDENCE {
            return None;
        }
        let related = match (self.keys.get(&pair.0), self.keys.get(&pair.1)) {
            (Some(x), Some(y)) => related(x, y),
            _ => false,
        };
        if !related {
            return None;
        }
        self.evidence.remove(&pair);
        if let Some(p) = self.places.get_mut(&pair.1) {
            p.parent = pair.0;
        }
        Some((pair.1, pair.0))
    }

    /// Forget places not named since `cutoff` (record time) whose survivor was not either.
    pub fn evict(&mut self, cutoff: i64) {
        let gone: Vec<u32> = self
            .places
            .iter()
            .filter(|(id, p)| {
                p.last_seen < cutoff
                    && self
                        .places
                        .get(&self.root(**id))
                        .is_none_or(|r| r.last_seen < cutoff)
            })
            .map(|(id, _)| *id)
            .collect();
        if gone.is_empty() {
            return;
        }
        let gone: std::collections::HashSet<u32> = gone.into_iter().collect();
        for id in &gone {
            self.places.remove(id);
            self.keys.remove(id);
        }
        self.by_key.retain(|_, id| !gone.contains(id));
        self.grams.retain(|_, l| {
            l.retain(|id| !gone.contains(id));
            !l.is_empty()
        });
        self.evidence
            .retain(|(a, b), _| !gone.contains(a) && !gone.contains(b));
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(title: &str, body: &str) -> Vec<String> {
        mentions(title, body).into_iter().map(|m| m.key).collect()
    }

    #[test]
    fn administrative_prefixes_and_suffix_variants_fold() {
        // Invented names: the rules are general, never a list of places.
        for written in [
            "A市A2区翠湖新城小区",
            "翠湖新城",
            "翠湖小区",
            "青禾街道翠湖新城社区",
            "B县翠湖新城二期",
        ] {
            let m = mentions(&format!("{written}门口占道经营"), "");
            assert_eq!(
                m.first().map(|m| m.key.as_str()),
                Some("E翠湖"),
                "{written}: {m:?}"
            );
        }
        assert_eq!(
            keys("化工厂偷排废水", ""),
            vec!["S化工厂"],
            "the suffix that leaves a name"
        );
        // A market is a site, not an administrative unit followed by a name.
        assert_eq!(keys("农贸市场门口垃圾", ""), vec!["S农贸市场"]);
        // Roads keep their name; kinds stay apart.
        assert_eq!(
            keys("云杉东路翠湖花园小区油烟", ""),
            vec!["R云杉东路", "E翠湖"]
        );
    }

    #[test]
    fn words_before_a_name_are_not_part_of_it() {
        assert_eq!(keys("投诉翠湖花园违建搅拌站", ""), vec!["E翠湖"]);
        assert_eq!(keys("", "我住在翠湖花园，旁边在建搅拌站"), vec!["E翠湖"]);
        assert!(keys("有关政府部门不作为", "").is_empty());
        assert!(
            keys("投诉小区附近噪音", "").is_empty(),
            "小区 alone is no place"
        );
    }

    #[test]
    fn a_shop_named_by_its_kind_is_no_place_and_the_estate_is_the_primary() {
        assert!(keys("楼下底商烧烤店油烟扰民", "").is_empty());
        let m = mentions("翠湖小区底商烧烤店油烟扰民", "");
        assert_eq!(primary(&m).map(|m| m.key.as_str()), Some("E翠湖"));
        let m = mentions("云杉东路青禾大药房刷医保卡", "");
        assert_eq!(primary(&m).map(|m| m.key.as_str()), Some("S青禾大药房"));
    }

    #[test]
    fn the_primary_place_is_the_titles_most_specific() {
        let m = mentions("云杉东路翠湖花园油烟扰民", "隔壁的云杉大厦也有");
        assert_eq!(primary(&m).map(|m| m.key.as_str()), Some("E翠湖"));
        let m = mentions("油烟扰民", "云杉大厦楼下的烧烤店");
        assert_eq!(primary(&m).map(|m| m.key.as_str()), Some("E云杉大厦"));
    }

    #[test]
    fn same_place_by_glued_prefix_and_near_spelling() {
        assert!(same_place("E翠湖", "E李翠湖"), "a stray leading character");
        assert!(
            same_place("E翠湖", "E柳岸物业翠湖"),
            "a company glued before"
        );
        assert!(same_place("E柳岸港湾", "E柳岸港弯"), "one character off");
        assert!(
            !same_place("E翠湖", "E翠湖湾"),
            "a longer name is another estate"
        );
        assert!(!same_place("E翠湖", "R翠湖"), "a road is not an estate");
        assert!(!same_place("E青湖", "E橙湖"));
    }

    #[test]
    fn registry_matches_variants_and_learns_related_aliases_only() {
        let mut r = PlaceRegistry::default();
        let a = r.resolve(1, "E翠湖", 0);
        assert_eq!(r.resolve(1, "E李翠湖", 1), a);
        assert_eq!(r.resolve(1, "E翠湖", 2), a);
        assert_ne!(r.resolve(2, "E翠湖", 2), a, "another block");
        let b = r.resolve(1, "E青禾", 3);
        assert_ne!(a, b);
        // Template texts naming unrelated estates never make them one.
        for _ in 0..5 {
            assert_eq!(r.co_occurred(a, b), None);
        }
        // Related names named by near-identical texts twice become one place.
        let c = r.resolve(1, "E翠湖北岸", 4);
        assert_ne!(c, a);
        assert_eq!(r.co_occurred(a, c), None);
        assert_eq!(r.co_occurred(c, a), Some((c, a)));
        assert_eq!(r.resolve(1, "E翠湖北岸", 5), a);
        // Eviction by record time.
        r.evict(5);
        assert_eq!(
            r.len(),
            2,
            "翠湖 and its alias stay, 青禾 and the other block's go"
        );
        assert_ne!(
            r.resolve(1, "E青禾", 6),
            b,
            "an evicted place comes back as a new one"
        );
    }
}
