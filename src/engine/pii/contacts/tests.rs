//! Contact masking: the forms of issue 21, what must stay (dates, amounts, house and order
//! numbers), and two properties over generated texts: no mobile number survives in any written
//! form, and masking is idempotent.

use super::*;
use proptest::prelude::*;

fn m(s: &str) -> String {
    mask_contacts_in_text(s)
}

#[test]
fn masks_mobiles_in_every_written_form() {
    for (text, want) in [
        ("联系电话13912345678 3栋", "联系电话*******5678 3栋"),
        ("电话:13912345678，", "电话:*******5678，"),
        ("+86 138 1234 5672", "+86 *** **** 5672"),
        ("+86-13812345672", "+86-*******5672"),
        // 15 digits in one piece read as a card number: first 3 and last 4 stay.
        ("008613812345672", "008********5672"),
        ("0086 138-1234-5672", "0086 ***-****-5672"),
        ("手机138.1234.5672。", "手机***.****.5672。"),
        ("86138 1234 5672", "86*** **** 5672"),
        ("号码1381234 5672", "号码******* 5672"),
        ("一三八一二三四五六七五", "*******五六七五"),
        ("幺三八 幺二三四 五六七五", "*** **** 五六七五"),
        ("１３８１２３４５６７２", "*******５６７２"),
        // Glued inside a longer run, or two in a row.
        ("房号50113912345678", "房号501*******5678"),
        ("房号120113912345678", "房号120********5678"),
        ("1391234567813812345672", "******************5672"),
    ] {
        assert_eq!(m(text), want, "{text}");
    }
}

#[test]
fn masks_landlines_cards_addresses_and_ids() {
    for (text, want) in [
        ("座机0553-5123456", "座机0553-*****56"),
        ("(0553)5123456", "(0553)*****56"),
        ("（0553）5123456", "（0553）*****56"),
        ("010 8765 4321", "010 **** **21"),
        ("05535123456", "0553*****56"),
        ("联系电话：5123456，", "联系电话：*****56，"),
        ("电话号码 512 3456", "电话号码 *** **56"),
        (
            "身份证34020219800101123X，门牌12号",
            "身份证340***********123X，门牌12号",
        ),
        ("卡号6222020200112233445", "卡号622************3445"),
        ("6222 0202 0011 2233", "622* **** **** 2233"),
        ("身份证号：430322195", "身份证号：430******"),
        ("邮箱zhang.san@163.com，", "邮箱z***@163.com，"),
        ("13912345678@qq.com", "1***@qq.com"),
        (
            "QQ：123456789 微信号wx_zhang88",
            "QQ：1******** 微信号w*********",
        ),
    ] {
        assert_eq!(m(text), want, "{text}");
    }
}

#[test]
fn leaves_ordinary_numbers_alone() {
    for text in [
        "2019.12.13 我们",
        "2019年3月5日 10:52:03",
        "2019-02-21 10:52:03",
        "拖欠工资1234567元",
        "门牌12号，3栋2单元501室",
        "2-3-501/1-11-2-4021",
        "工单编号201911220001",
        "国标GB50500-2013规定",
        "占地120亩，投资3.5亿元",
        "拨打12345热线",
        "0000-00000000",
        "一个二三十人的小区",
        "微信公众号",
        "QQ群",
        // Decimals glued in a table row read as dotted groups, not a card number.
        "成绩71.2030.4466.5041.8070.12否",
        // A class name after 微信 is no WeChat id (those have 6+ characters).
        "初中2班微信c2101群",
    ] {
        assert_eq!(m(text), text);
    }
    // A date before a phone stays a date.
    assert_eq!(m("2019.12.13 13912345678"), "2019.12.13 *******5678");
}

#[test]
fn phone_fields_keep_few_digits() {
    assert_eq!(mask_phone("13812341234").as_deref(), Some("*******1234"));
    assert_eq!(
        mask_phone("+86 138-1234-1234").as_deref(),
        Some("*******1234")
    );
    assert_eq!(mask_phone("0553-1234567").as_deref(), Some("*********67"));
    assert_eq!(mask_phone("5123456").as_deref(), Some("*****56"));
    assert_eq!(mask_phone("123"), None);
}

// ------------------------------------------------------------------------------ properties

/// A digit in one of its written forms.
fn written_digit(d: u8, form: u8) -> char {
    const CN: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    match form % 3 {
        0 => char::from(b'0' + d),
        1 => char::from_u32('０' as u32 + u32::from(d)).unwrap_or('0'),
        _ => CN[usize::from(d)],
    }
}

/// The digits of a text, in ASCII, with separators and prefix signs dropped: a surviving mobile
/// shows here as its 11 digits in a row.
fn digits_only(s: &str) -> String {
    s.chars()
        .filter(|c| !is_separator(*c) && !matches!(c, '+' | '(' | '（'))
        .map(|c| digit(c).map_or(c, |d| char::from(b'0' + d)))
        .collect()
}

fn mobile() -> impl Strategy<Value = Vec<u8>> {
    (3u8..=9, proptest::collection::vec(0u8..=9, 9)).prop_map(|(second, rest)| {
        let mut d = vec![1, second];
        d.extend(rest);
        d
    })
}

/// Text around a number: Chinese, Latin, punctuation, digits, separators and cue words.
fn context() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("电话".to_string()),
        Just("联系".to_string()),
        Just("手机号：".to_string()),
        Just("年".to_string()),
        Just("号".to_string()),
        Just("，".to_string()),
        Just(" ".to_string()),
        Just("-".to_string()),
        Just(".".to_string()),
        Just("一".to_string()),
        Just("小区".to_string()),
        Just("abc".to_string()),
        "[0-9]{1,4}",
        "[\\u4e00-\\u9fa5]{1,3}",
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A mobile written in any form — plain, 3-4-4 / 3-8 / 7-4 groups with any separator, a
    /// +86 / 0086 / 86 prefix, ASCII, full-width or Chinese digits, glued to digits on one side —
    /// never survives, whatever text surrounds it.
    #[test]
    fn no_mobile_survives(
        number in mobile(),
        forms in proptest::collection::vec(0u8..3, 11),
        split in 0usize..4,
        sep in prop::sample::select(vec![" ", "-", ".", "－", "—", "　", "．", "·"]),
        prefix in prop::sample::select(vec!["", "+86", "+86 ", "+86-", "0086", "0086 ", "86", "(+86)", "0"]),
        glue_after in "[0-9]{0,2}",
        joiners in (prop::sample::select(vec!["", "，"]), prop::sample::select(vec!["", "，"])),
        before in context(),
        after in context(),
    ) {
        let written: Vec<char> = number.iter().zip(&forms).map(|(d, f)| written_digit(*d, *f)).collect();
        let cuts: &[usize] = [&[][..], &[3, 7], &[3], &[7]][split];
        let mut body = String::new();
        for (i, c) in written.iter().enumerate() {
            if cuts.contains(&i) {
                body.push_str(sep);
            }
            body.push(*c);
        }
        // Digits glued on both sides of a split number make one long number of no known form:
        // glue a split number on one side only (a prefix ending in a digit is glue too).
        let (jb, ja) = joiners;
        let touches_before = prefix.ends_with(|c: char| c.is_ascii_digit())
            || (prefix.is_empty() && jb.is_empty() && before.ends_with(|c| digit(c).is_some()));
        let (tail, ja) = if split > 0 && touches_before { ("", "，") } else { (glue_after.as_str(), ja) };
        let text = format!("{before}{jb}{prefix}{body}{tail}{ja}{after}");
        let masked = mask_contacts_in_text(&text);
        let plain: String = number.iter().map(|d| char::from(b'0' + d)).collect();
        prop_assert!(!digits_only(&masked).contains(&plain), "{text} → {masked}");
    }

    /// Masking twice changes nothing more than masking once, and leaves no run of digits that
    /// holds a mobile number.
    #[test]
    fn masking_is_idempotent(text in "[0-9一二三八〇 .\\-()（）+@a-z电话手机身份证卡号QQ微信：，年月日*Xx]{0,60}") {
        let once = mask_contacts_in_text(&text);
        prop_assert_eq!(mask_contacts_in_text(&once), once.clone(), "{}", text);
        for g in digit_groups(&once.chars().collect::<Vec<_>>()) {
            prop_assert!(g.val.windows(11).all(|w| !is_mobile(w)), "{} → {}", text, once);
        }
    }
}

// --------------------------------------------------------------------------- real messages

/// The shared real messages' titles and bodies (`DUBAN_SHARED_DIR`; the test fails without them).
fn real_texts() -> Vec<String> {
    let dir = crate::classify::data::shared_dir().join("data/teddy2020c");
    let mut texts = Vec::new();
    for f in [
        "train.csv",
        "messages_hot.csv",
        "messages_replied.csv",
        "messages_unlabeled.csv",
    ] {
        let path = dir.join(f);
        let rows = crate::classify::data::read_unlabeled(&path)
            .unwrap_or_else(|e| panic!("{e:#} (set DUBAN_SHARED_DIR to the shared folder)"));
        for r in rows {
            texts.extend([r.title, r.body].into_iter().filter(|t| !t.is_empty()));
        }
    }
    texts
}

/// Ordinary numbers of a text: ASCII digit runs of 1–6 digits followed by a unit or a date
/// separator (`2019年`, `3月`, `12号`, `501室`, `500元`, `2019-02-21`, `2019/2/21`), as (char
/// position, length).
fn ordinary_numbers(chars: &[char]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let before_ok = start == 0 || !matches!(chars[start - 1], '-' | '.' | '/' | ' ');
        let unit = chars
            .get(i)
            .is_some_and(|c| "年月日号栋室元楼层万亿".contains(*c));
        // A year, then a month: `2019-02-21`, `2019/2/21`.
        let year = i - start == 4 && matches!(chars[start..start + 2], ['1', '9'] | ['2', '0']);
        let month = chars
            .get(i + 1..)
            .map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count());
        let date = year
            && matches!(chars.get(i), Some('-' | '/'))
            && (1..=2).contains(&month)
            && chars.get(i + 1 + month) == chars.get(i);
        if i - start <= 6 && before_ok && (unit || date) {
            out.push((start, i - start));
        }
    }
    out
}

/// A deterministic random stream (splitmix64) for planting contacts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// A generated contact in one of the forms people write, and the secret part that must not
/// survive masking (digits as ASCII).
fn planted(rng: &mut Rng) -> (&'static str, String, String) {
    let mobile = format!("1{}{}", 3 + rng.below(7), rng.digits(9));
    let cn = |s: &str| -> String {
        s.chars()
            .map(|c| written_digit(c as u8 - b'0', 2))
            .collect()
    };
    let (a, b, c) = (&mobile[..3], &mobile[3..7], &mobile[7..]);
    let area = ["010", "021", "0553", "0731", "0551"][rng.below(5)];
    let local_len = 6 + rng.below(2);
    let local = format!("{}{}", 2 + rng.below(8), rng.digits(local_len));
    let user = ["zhang", "li.ming", "wang_88", "chen2019"][rng.below(4)];
    match rng.below(12) {
        0 => ("mobile", mobile.clone(), mobile),
        1 => ("mobile 3-4-4", format!("{a} {b} {c}"), mobile),
        2 => ("mobile 3-4-4", format!("{a}-{b}-{c}"), mobile),
        3 => ("mobile 3-4-4", format!("{a}.{b}.{c}"), mobile),
        4 => ("mobile +86", format!("+86 {mobile}"), mobile),
        5 => ("mobile +86", format!("0086-{a} {b} {c}"), mobile),
        6 => ("mobile in Chinese digits", cn(&mobile), mobile),
        7 => ("landline", format!("{area}-{local}"), local),
        8 => ("landline", format!("({area}){local}"), local),
        9 => (
            "local number after a cue",
            format!("联系电话：{local}"),
            local,
        ),
        10 => (
            "e-mail",
            format!("{user}{}@163.com", rng.digits(3)),
            user.to_string(),
        ),
        _ => ("QQ", format!("QQ:{}", rng.digits(9)), String::new()),
    }
}

/// On the real messages: ordinary numbers (dates, amounts, house numbers) are never masked, and
/// a contact planted at a random place of a message is always hidden, without masking anything
/// else of it. Prints the counts reported in the README (`cargo test --lib real_messages --
/// --nocapture`).
#[test]
fn real_messages_keep_ordinary_numbers_and_lose_planted_contacts() {
    let texts = real_texts();
    assert!(texts.len() > 20_000, "{} texts", texts.len());
    let (mut checked, mut changed_texts) = (0usize, 0usize);
    for t in &texts {
        let masked = mask_contacts_in_text(t);
        if masked == *t {
            continue;
        }
        changed_texts += 1;
        let (a, b): (Vec<char>, Vec<char>) = (t.chars().collect(), masked.chars().collect());
        if a.len() != b.len() {
            continue;
        }
        for (at, n) in ordinary_numbers(&a) {
            checked += 1;
            assert_eq!(
                a[at..at + n],
                b[at..at + n],
                "an ordinary number was masked: {}",
                b[at.saturating_sub(12)..(at + n + 3).min(b.len())]
                    .iter()
                    .collect::<String>()
            );
        }
    }
    let all_numbers: usize = texts
        .iter()
        .map(|t| ordinary_numbers(&t.chars().collect::<Vec<_>>()).len())
        .sum();
    eprintln!(
        "{} texts, {changed_texts} with masked contacts; {checked} ordinary numbers in them kept \
         ({all_numbers} in all)",
        texts.len()
    );
    let mut rng = Rng(21);
    let mut by_kind: std::collections::BTreeMap<&str, usize> = Default::default();
    for k in 0..10_000 {
        let t = &texts[rng.below(texts.len())];
        let chars: Vec<char> = t.chars().collect();
        // Anywhere but inside a number (digits on both sides would make one number of no
        // known shape with it).
        let at = rng.below(chars.len() + 1);
        let is_digit = |i: usize| chars.get(i).is_some_and(|c| digit(*c).is_some());
        if at > 0 && is_digit(at - 1) && is_digit(at) {
            continue;
        }
        let (kind, contact, secret) = planted(&mut rng);
        // Glued to the text, or set off by a comma.
        let sep = if k % 2 == 0 { "" } else { "，" };
        let (head, tail): (String, String) =
            (chars[..at].iter().collect(), chars[at..].iter().collect());
        let text = format!("{head}{sep}{contact}{sep}{tail}");
        let masked = mask_contacts_in_text(&text);
        let digits = digits_only(&masked);
        match kind {
            "e-mail" => assert!(!masked.contains(&secret), "{kind}: {contact}"),
            "QQ" => assert!(!masked.contains(&contact), "{kind}: {contact}"),
            _ => assert!(!digits.contains(&secret), "{kind}: {contact} in {masked}"),
        }
        // Nothing else of the message is masked that is not masked in the message alone, except
        // for digits and separators touching the planted contact (one number with it), and
        // Latin letters touching an e-mail address (one address with it). (Less may be: a
        // contact planted inside a cue word, 拨|打, takes the cue from the number after it.)
        let alone: Vec<char> = mask_contacts_in_text(t).chars().collect();
        let number_char = |c: &char| {
            digit(*c).is_some() || is_separator(*c) || (kind == "e-mail" && local_char(*c))
        };
        let before = at
            - chars[..at]
                .iter()
                .rev()
                .take_while(|c| number_char(c))
                .count();
        let after = at + chars[at..].iter().take_while(|c| number_char(c)).count();
        let got: Vec<char> = masked.chars().collect();
        let suffix = alone.len() - after;
        let outside = got[..before]
            .iter()
            .zip(&alone[..before])
            .chain(got[got.len() - suffix..].iter().zip(&alone[after..]));
        for (g, a) in outside {
            assert!(
                *g != '*' || *a == '*',
                "{kind}: {contact} masked more of the message"
            );
        }
        *by_kind.entry(kind).or_default() += 1;
    }
    eprintln!("planted and hidden: {by_kind:?}");
}
