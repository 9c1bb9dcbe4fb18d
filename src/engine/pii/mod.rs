//! Personal data inside free text: citizens write their name, phone and identity-card number into
//! the complaint itself ("我叫张三，电话138…，身份证…"). Before a text reaches analytics tables it
//! goes through [`mask_personal_in_text`]: contact data (phones in any written form, card numbers,
//! e-mail addresses, IM ids: [`contacts`]), the record's own complainant name wherever it
//! appears, and names introduced by a self-introduction cue (我叫 / 姓名： / 联系人 …) are masked.
//! A masked name keeps its surname: 张三 → 张某, 欧阳小明 → 欧阳某某.

mod contacts;

pub use contacts::{mask_contacts_in_text, mask_phone};

/// Phrases after which a person's name follows. A strong cue (我叫, 姓名) is followed by a name
/// whatever its surname; after a weak one (投诉人, 户主) a name is only taken when it starts with a
/// known surname, since the cue is as often followed by a verb (投诉人反映…).
const CUES: [(&str, bool); 14] = [
    ("我的名字叫", true),
    ("我的名字是", true),
    ("本人姓名", true),
    ("我叫", true),
    ("本人叫", true),
    ("姓名", true),
    ("联系人", true),
    ("署名", true),
    ("投诉人", false),
    ("反映人", false),
    ("举报人", false),
    ("来电人", false),
    ("申请人", false),
    ("户主", false),
];

/// Compound surnames first (longest match), then common single-character surnames.
const COMPOUND_SURNAMES: [&str; 12] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "长孙", "夏侯",
];
const SURNAMES: &str = "傅萧王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘\
于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾\
毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘\
祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时\
穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁\
沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";

/// Characters that end a name: what usually follows one ("张三，" "张三是" "张三住在").
const AFTER_NAME: &str = "是住在的家电联今男女系现从来向反投和与同手身号想要于因为对请，。、；：,.;:!！?？（()） 0123456789";

/// Mask personal data in a complaint text; `name` is the complainant's name from the record, if any.
pub fn mask_personal_in_text(text: &str, name: Option<&str>) -> String {
    let mut text = mask_contacts_in_text(text);
    // Only a real personal name (a known surname, 2–4 characters): a channel's placeholder such
    // as 市民 or 网友 is not masked out of the text.
    let real_name = |n: &&str| (2..=4).contains(&n.chars().count()) && surname_len(n).is_some();
    if let Some(name) = name.map(str::trim).filter(real_name)
        && text.contains(name)
    {
        text = text.replace(name, &masked_name(name));
    }
    mask_introduced_names(&text)
}

/// A name with everything after its surname replaced by 某.
pub fn masked_name(name: &str) -> String {
    let surname = surname_len(name).unwrap_or(1);
    let mut out: String = name.chars().take(surname).collect();
    for _ in surname..name.chars().count() {
        out.push('某');
    }
    out
}

/// Characters of the surname `s` starts with, if it starts with a known one.
fn surname_len(s: &str) -> Option<usize> {
    if COMPOUND_SURNAMES.iter().any(|c| s.starts_with(c)) {
        return Some(2);
    }
    let first = s.chars().next()?;
    SURNAMES.contains(first).then_some(1)
}

fn is_han(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// Names after a cue: the cue, optional separators, then a surname and one or two given-name
/// characters that are not followed by further name characters.
fn mask_introduced_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for (cue, strong) in CUES {
            if let Some(after) = rest.strip_prefix(cue) {
                out.push_str(cue);
                let sep_len: usize = after
                    .chars()
                    .take_while(|c| matches!(c, ':' | '：' | ' ' | '为' | '是'))
                    .map(char::len_utf8)
                    .sum();
                out.push_str(&after[..sep_len]);
                let after = &after[sep_len..];
                if let Some(n) = name_at(after, strong) {
                    let name: String = after.chars().take(n).collect();
                    out.push_str(&masked_name(&name));
                    rest = &after[name.len()..];
                } else {
                    rest = after;
                }
                continue 'scan;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Length in characters of a name at the start of `s`: a surname (a known one, or any Han
/// character after a strong cue), then 1–2 Han characters of the given name that are not
/// characters which usually end a name.
fn name_at(s: &str, strong: bool) -> Option<usize> {
    let ends = |c: &char| !is_han(*c) || AFTER_NAME.contains(*c);
    let surname = match surname_len(s) {
        Some(n) => n,
        None if strong && s.chars().next().is_some_and(|c| !ends(&c)) => 1,
        None => return None,
    };
    let given: Vec<char> = s.chars().skip(surname).take(3).collect();
    let n = given.iter().take_while(|c| !ends(c)).count().min(2);
    // A third name character means this is not a name but a word (e.g. 王家村委会).
    if n == 0 || (n == 2 && given.get(2).is_some_and(|c| !ends(c))) {
        return None;
    }
    Some(surname + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_names_after_cues_and_keeps_the_surname() {
        assert_eq!(
            mask_personal_in_text("我叫张三，住在幸福小区。", None),
            "我叫张某，住在幸福小区。"
        );
        assert_eq!(
            mask_personal_in_text("联系人：欧阳小明 电话13912345678", None),
            "联系人：欧阳某某 电话*******5678"
        );
        assert_eq!(
            mask_personal_in_text("本人姓名李四光，反映一个问题", None),
            "本人姓名李某某，反映一个问题"
        );
        // A cue followed by a word, not a name, is left alone.
        assert_eq!(
            mask_personal_in_text("投诉人反映噪音扰民", None),
            "投诉人反映噪音扰民"
        );
        assert_eq!(
            mask_personal_in_text("联系人王家村委会", None),
            "联系人王家村委会"
        );
        // After a strong cue any surname is taken, after a weak one only a known surname.
        assert_eq!(
            mask_personal_in_text("我叫蔺小，有事打电话", None),
            "我叫蔺某，有事打电话"
        );
        assert_eq!(mask_personal_in_text("户主蔺小说", None), "户主蔺小说");
        assert_eq!(mask_personal_in_text("户主张伟，", None), "户主张某，");
    }

    #[test]
    fn masks_the_records_own_name_anywhere() {
        assert_eq!(
            mask_personal_in_text("周文华多次投诉无果，周文华要求答复", Some("周文华")),
            "周某某多次投诉无果，周某某要求答复"
        );
        // A one-character name would mask too much text: left to the cue rule.
        assert_eq!(mask_personal_in_text("路面坑洼", Some("路")), "路面坑洼");
        assert_eq!(mask_personal_in_text("市民反映", Some("市民")), "市民反映");
    }
}
