//! Triage flags for the seed's three focus categories: 职责争议 (units dispute responsibility,
//! complaints bounced between departments), 共性问题 (many complainants), 社会影响 (safety risks,
//! vulnerable groups, mass or media attention). Word lists are general vocabulary, in one place.

/// 职责争议.
pub const RESPONSIBILITY_DISPUTE: &str = "职责争议";
/// 共性问题.
pub const COMMON_ISSUE: &str = "共性问题";
/// 社会影响.
pub const SOCIAL_IMPACT: &str = "社会影响";

/// Phrases of complaints bounced between departments or refused as "not ours".
const DISPUTE: &[&str] = &[
    "推诿",
    "踢皮球",
    "互相推",
    "推来推去",
    "相互推",
    "都说不归",
    "不归我们管",
    "不属于我们",
    "不是我们管",
    "让我找",
    "叫我去找",
    "多个部门",
    "几个部门",
    "各部门",
    "没有部门管",
    "无人管",
    "没人管",
    "没有人管",
    "没有人来管",
    "没人来管",
    "管不了",
    "不归他们管",
    "职责不清",
    "谁来管",
    "到底归谁管",
    "转来转去",
    "来回转",
];

/// Safety risks, vulnerable groups, mass or media attention.
const IMPACT: &[&str] = &[
    "安全隐患",
    "生命安全",
    "人身安全",
    "火灾",
    "着火",
    "爆炸",
    "坍塌",
    "倒塌",
    "触电",
    "漏电",
    "中毒",
    "溺水",
    "伤亡",
    "受伤",
    "死亡",
    "危险",
    "老人",
    "老年人",
    "儿童",
    "小孩",
    "孩子",
    "学生",
    "孕妇",
    "残疾",
    "病人",
    "低保",
    "农民工",
    "群体",
    "集体",
    "上百",
    "几百",
    "上千",
    "媒体",
    "曝光",
    "记者",
    "网上",
    "热搜",
    "上访",
    "聚集",
    "维权",
];

/// Flags of one complaint from its text.
pub fn complaint_flags(text: &str) -> Vec<&'static str> {
    // One pass over the text for both lists (patterns: DISPUTE, then IMPACT).
    static MATCHER: std::sync::LazyLock<aho_corasick::AhoCorasick> =
        std::sync::LazyLock::new(|| {
            aho_corasick::AhoCorasick::new(DISPUTE.iter().chain(IMPACT)).expect("triage words")
        });
    let mut dispute = false;
    let mut impact: Vec<usize> = Vec::new();
    for m in MATCHER.find_overlapping_iter(text) {
        let p = m.pattern().as_usize();
        if p < DISPUTE.len() {
            dispute = true;
        } else if !impact.contains(&p) {
            impact.push(p);
        }
    }
    let mut flags = Vec::new();
    if dispute {
        flags.push(RESPONSIBILITY_DISPUTE);
    }
    if impact.len() >= 2 {
        flags.push(SOCIAL_IMPACT);
    }
    flags
}

/// Flags of an issue: its complaints' flags when at least `share` of them carry one, and 共性问题
/// when it has at least `common_min` distinct complainants.
pub fn issue_flags(
    flag_counts: &[(&str, usize)],
    complaints: usize,
    complainants: usize,
    common_min: usize,
) -> Vec<String> {
    let mut out: Vec<String> = flag_counts
        .iter()
        .filter(|(_, n)| *n * 5 >= complaints.max(1))
        .map(|(f, _)| f.to_string())
        .collect();
    if complainants >= common_min {
        out.push(COMMON_ISSUE.to_string());
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_text() {
        assert_eq!(
            complaint_flags("打了好几个电话，城管说不归我们管，让我找住建局"),
            vec![RESPONSIBILITY_DISPUTE]
        );
        assert_eq!(
            complaint_flags("电线裸露有安全隐患，小区里老人和孩子很多"),
            vec![SOCIAL_IMPACT]
        );
        assert!(complaint_flags("路灯不亮").is_empty());
    }

    #[test]
    fn issue_flags_need_a_share_and_a_crowd() {
        assert_eq!(
            issue_flags(&[(SOCIAL_IMPACT, 1)], 10, 2, 5),
            Vec::<String>::new()
        );
        assert_eq!(
            issue_flags(&[(SOCIAL_IMPACT, 3)], 10, 6, 5),
            vec![COMMON_ISSUE.to_string(), SOCIAL_IMPACT.to_string()]
        );
    }
}
