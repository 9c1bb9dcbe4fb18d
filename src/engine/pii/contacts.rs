//! Contact data inside free text and in phone fields: mobile and landline numbers in any written
//! form, identity-card and bank-card numbers, e-mail addresses and QQ / WeChat ids, masked.
//!
//! A number is read from *digit groups*: runs of digits, where a digit is ASCII, full-width or a
//! Chinese numeral (一三八…, 〇/零, 幺), so `一三八一二三四五六七八` and `１３８…` are numbers too.
//! Groups one to three separator characters apart (space, `-`, `.`, `)` and their full-width
//! forms) form a *chain*: `+86 138-1234-5678`, `(0553)5123456`. Within a chain:
//! - a **mobile** (11 digits `1[3-9]…`) is found inside any group (`联系电话13912345678`,
//!   `8613912345678`, `0139…`), or across whole groups of 3+ digits (`138 1234 5678`,
//!   `138.1234.5678`), one end of which may cut into a glued group (`86138 1234 5678`), both ends
//!   in the 3-4-4 shape; it keeps its last 4 digits;
//! - a **landline** with an area code (`010`, `02x`, `0[3-9]xx`) and a 7–8 digit number, apart
//!   (`0553-5123456`, `(0553)5123456`, also glued to digits around) or glued (`05535123456`),
//!   keeps its area code and last 2;
//! - an **identity-card or bank-card number** (a group of 15+ digits, or 15–19 digits in groups as
//!   cards are printed: 4-4-4-4-3, 6-8-4, 6-4-4-4) keeps its first 3 and last 4 characters;
//! - after a phone cue (电话, 手机, 座机, tel …) any 7–12 digit number keeps its last 2, and after a
//!   card cue (身份证, 卡号, 账号 …) a 6+ digit number keeps its first 3 (and last 4 from 15).
//!
//! Masking replaces each hidden digit by `*` (separators stay), so a masked number never reads as
//! a number again, and it is repeated until nothing changes: masking is idempotent.

/// Digits a mobile number keeps when masked: its last 4 (`*******5678`, the 尾号 people quote).
const MOBILE_KEPT: usize = 4;
/// Digits any other phone number keeps when masked: its last 2.
const OTHER_KEPT: usize = 2;
/// Characters between two digit groups of one number.
const MAX_GAP: usize = 3;
/// Characters between a cue and its number (`电话：`, `卡号 为`).
const MAX_CUE_GAP: usize = 4;

/// The value of a digit in any form a number is written with.
fn digit(c: char) -> Option<u8> {
    Some(match c {
        '0'..='9' => c as u8 - b'0',
        '０'..='９' => (c as u32 - '０' as u32) as u8,
        '〇' | '零' => 0,
        '一' | '幺' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

/// Characters that separate the digit groups of one written number.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{3000}' | '-' | '－' | '—' | '–' | '.' | '．' | '·' | ')' | '）'
    )
}

/// Eleven digits of a mainland mobile number: `1[3-9]` and nine more.
fn is_mobile(d: &[u8]) -> bool {
    d.len() == 11 && d[0] == 1 && (3..=9).contains(&d[1])
}

/// Length of the area code a landline starts with: 3 for `010` / `02x`, 4 for `0[3-9]xx`.
fn area_code_len(d: &[u8]) -> Option<usize> {
    match d {
        [0, 1, 0, ..] | [0, 2, _, ..] => Some(3),
        [0, 3..=9, _, _, ..] => Some(4),
        _ => None,
    }
}

/// A subscriber number after an area code: 7 or 8 digits, not starting with 0 or 1.
fn is_subscriber(d: &[u8]) -> bool {
    (7..=8).contains(&d.len()) && d[0] >= 2
}

/// Mask a phone number field: a mobile (11 digits from `1[3-9]`, after an optional +86 / 0086
/// prefix) keeps only its last 4 digits (`*******5678`), any other number of 7 or more digits
/// only its last 2. `None` with fewer than 7 digits.
pub fn mask_phone(phone: &str) -> Option<String> {
    let digits: Vec<char> = phone.chars().filter(|c| digit(*c).is_some()).collect();
    let values: Vec<u8> = digits.iter().filter_map(|c| digit(*c)).collect();
    let n = values.len();
    if n < 7 {
        return None;
    }
    let (len, kept) = if n >= 11 && is_mobile(&values[n - 11..]) {
        (11, MOBILE_KEPT)
    } else {
        (n, OTHER_KEPT)
    };
    let mut out = "*".repeat(len - kept);
    out.extend(&digits[n - kept..]);
    Some(out)
}

/// Mask contact data in a text (see the module comment). Idempotent.
pub fn mask_contacts_in_text(s: &str) -> String {
    let mut text = std::borrow::Cow::Borrowed(s);
    // Each pass that changes the text hides at least one digit or one address, so this ends.
    while let Some(next) = mask_pass(&text) {
        text = std::borrow::Cow::Owned(next);
    }
    text.into_owned()
}

/// One pass over the text: `None` when it hides nothing.
fn mask_pass(s: &str) -> Option<String> {
    let ids = mask_addresses(s);
    let text = ids.as_deref().unwrap_or(s);
    let numbers = mask_numbers(text);
    numbers.or(ids)
}

// ---------------------------------------------------------------------------------- numbers

/// One run of digits: its chars' positions and values.
struct Group {
    pos: Vec<usize>,
    val: Vec<u8>,
}

impl Group {
    fn len(&self) -> usize {
        self.val.len()
    }
    fn start(&self) -> usize {
        self.pos[0]
    }
    fn end(&self) -> usize {
        self.pos[self.pos.len() - 1] + 1
    }
}

/// Positions of a text to hide.
struct Marks(Vec<bool>);

impl Marks {
    /// Hide `pos` except its first `first` and last `last`.
    fn hide(&mut self, pos: &[usize], first: usize, last: usize) {
        let n = pos.len();
        for (k, p) in pos.iter().enumerate() {
            if k >= first && k + last < n {
                self.0[*p] = true;
            }
        }
    }

    fn any(&self, pos: &[usize]) -> bool {
        pos.iter().any(|p| self.0[*p])
    }
}

fn mask_numbers(s: &str) -> Option<String> {
    // Most texts hold no number of six digits or more: no work beyond one scan.
    s.chars().filter(|c| digit(*c).is_some()).nth(5)?;
    let chars: Vec<char> = s.chars().collect();
    let groups = digit_groups(&chars);
    let mut marks = Marks(vec![false; chars.len()]);
    let mut chain_start = 0;
    for i in 1..=groups.len() {
        let joined = i < groups.len() && {
            let gap = &chars[groups[i - 1].end()..groups[i].start()];
            gap.len() <= MAX_GAP && gap.iter().all(|c| is_separator(*c))
        };
        if !joined {
            mask_chain(&groups[chain_start..i], &chars, &mut marks);
            chain_start = i;
        }
    }
    mask_after_cues(&groups, &chars, &mut marks);
    if !marks.0.iter().any(|m| *m) {
        return None;
    }
    Some(
        chars
            .iter()
            .zip(&marks.0)
            .map(|(c, m)| if *m { '*' } else { *c })
            .collect(),
    )
}

fn digit_groups(chars: &[char]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut prev_digit = false;
    for (i, c) in chars.iter().enumerate() {
        match digit(*c) {
            Some(v) => {
                if !prev_digit {
                    groups.push(Group {
                        pos: Vec::new(),
                        val: Vec::new(),
                    });
                }
                if let Some(g) = groups.last_mut() {
                    g.pos.push(i);
                    g.val.push(v);
                }
                prev_digit = true;
            }
            None => prev_digit = false,
        }
    }
    groups
}

/// Positions and values of groups `gs` one after the other.
fn concat(gs: &[Group]) -> (Vec<usize>, Vec<u8>) {
    let pos = gs.iter().flat_map(|g| g.pos.iter().copied()).collect();
    let val = gs.iter().flat_map(|g| g.val.iter().copied()).collect();
    (pos, val)
}

/// Whether an identity card's final `X` follows the group.
fn x_after(g: &Group, chars: &[char]) -> bool {
    chars
        .get(g.end())
        .is_some_and(|c| matches!(c, 'X' | 'x' | 'Ｘ'))
}

/// The rules within one chain of digit groups.
fn mask_chain(chain: &[Group], chars: &[char], marks: &mut Marks) {
    for (i, g) in chain.iter().enumerate() {
        let n = g.len();
        // Identity-card and bank-card numbers written in one piece.
        if n >= 15 {
            let last = if x_after(g, chars) { 3 } else { 4 };
            marks.hide(&g.pos, 3, last);
        }
        // Mobiles inside a run of digits.
        if n >= 11 {
            for w in 0..=n - 11 {
                if is_mobile(&g.val[w..w + 11]) {
                    marks.hide(&g.pos[w..w + 11], 0, MOBILE_KEPT);
                }
            }
        }
        // A landline with its area code glued on.
        if (10..=12).contains(&n)
            && let Some(a) = area_code_len(&g.val)
            && is_subscriber(&g.val[a..])
        {
            marks.hide(&g.pos[a..], 0, OTHER_KEPT);
        }
        mask_across(&chain[i..], chars, marks);
    }
}

/// Numbers that start at the chain's first group and span several groups.
fn mask_across(gs: &[Group], chars: &[char], marks: &mut Marks) {
    let first = &gs[0];
    // Cards written in groups: 15–19 digits in 3+ groups as cards are printed (4-4-4-4-3,
    // 6-8-4, 6-4-4-4).
    let mut total = 0;
    for (j, g) in gs.iter().enumerate() {
        let n = g.len();
        // Spaces or dashes between them: dots join decimals (`69.1027.6478.8047`), not cards.
        if j > 0
            && (dotted(chars, &gs[j - 1], g) || chars[gs[j - 1].end()..g.start()].contains(&'·'))
        {
            break;
        }
        let printed = n == 4 || (j == 0 && n == 6) || (j == 1 && n == 8 && first.len() == 6);
        let last_group = (1..=4).contains(&n);
        if !printed && !last_group {
            break;
        }
        total += n;
        if j >= 2 && (15..=19).contains(&total) {
            let (pos, _) = concat(&gs[..=j]);
            let last = if x_after(g, chars) { 3 } else { 4 };
            marks.hide(&pos, 3, last);
        }
        if !printed {
            break;
        }
    }
    // A landline: an area code group (maybe glued to digits before it), then 7–8 digits in two
    // groups, or 7–12 in one (glued to digits after it).
    // Dots join decimals in tables (`69.1027.6478`), not landlines.
    if area_code_ends(&first.val) && gs.len() > 1 && !dotted(chars, first, &gs[1]) {
        let one = &gs[1];
        if (7..=12).contains(&one.len()) && one.val[0] >= 2 {
            marks.hide(&one.pos, 0, OTHER_KEPT);
        }
        if let Some(two) = gs.get(2).filter(|two| !dotted(chars, one, two)) {
            let (pos, val) = concat(&gs[1..=2]);
            if one.len() >= 3 && two.len() >= 3 && is_subscriber(&val) {
                marks.hide(&pos, 0, OTHER_KEPT);
            }
        }
    }
    // A mobile over whole groups of 3+ digits, where either end may cut into a glued group
    // (`86138 1234 5678`, `138 1234 56780`), but not both.
    for j in 1..gs.len() {
        let inner = &gs[1..j];
        if inner.iter().any(|g| g.len() < 3) {
            break;
        }
        let inner_len: usize = inner.iter().map(Group::len).sum();
        if inner_len > 11 {
            break;
        }
        let last = &gs[j];
        let (head, tail) = (first.len(), last.len());
        let (ipos, ival) = concat(inner);
        // Whole groups.
        if head >= 3 && tail >= 3 && head + inner_len + tail == 11 {
            try_mobile(
                [&first.pos[..], &ipos, &last.pos],
                [&first.val[..], &ival, &last.val],
                marks,
            );
        }
        // The start cuts into the first group.
        if tail >= 3 && inner_len + tail < 11 {
            let need = 11 - inner_len - tail;
            if need >= 3 && need < head {
                let k = head - need;
                try_mobile(
                    [&first.pos[k..], &ipos, &last.pos],
                    [&first.val[k..], &ival, &last.val],
                    marks,
                );
            }
        }
        // Both ends cut into glued groups, in the 3-4-4 shape only (`7138 1234 567812`): a
        // looser shape would take dates and decimals.
        if j == 2 && inner_len == 4 && head > 3 && tail > 4 {
            try_mobile(
                [&first.pos[head - 3..], &ipos, &last.pos[..4]],
                [&first.val[head - 3..], &ival, &last.val[..4]],
                marks,
            );
        }
        // The end cuts into the last group.
        if head >= 3 && head + inner_len < 11 {
            let need = 11 - head - inner_len;
            if need >= 3 && need < tail {
                try_mobile(
                    [&first.pos[..], &ipos, &last.pos[..need]],
                    [&first.val[..], &ival, &last.val[..need]],
                    marks,
                );
            }
        }
    }
}

/// Whether a dot stands between groups `a` and `b` (as between the decimals of a table row).
fn dotted(chars: &[char], a: &Group, b: &Group) -> bool {
    chars[a.end()..b.start()]
        .iter()
        .any(|c| matches!(c, '.' | '．'))
}

/// Whether a group is, or ends in, an area code (`0553`, `70553`).
fn area_code_ends(d: &[u8]) -> bool {
    [3, 4]
        .iter()
        .any(|&n| d.len() >= n && area_code_len(&d[d.len() - n..]) == Some(n))
}

fn try_mobile(pos: [&[usize]; 3], val: [&[u8]; 3], marks: &mut Marks) {
    let v: Vec<u8> = val.concat();
    if is_mobile(&v) {
        marks.hide(&pos.concat(), 0, MOBILE_KEPT);
    }
}

/// Words after which a phone number follows (Latin ones in any case).
/// (`电话号码：` and `手机号是` end in filler, see [`cue_filler`].)
const PHONE_CUES: [&str; 10] = [
    "电话",
    "手机",
    "座机",
    "固话",
    "联系方式",
    "致电",
    "拨打",
    "tel",
    "phone",
    "mobile",
];
/// Words after which an identity-card or bank-card number follows.
const CARD_CUES: [&str; 6] = ["身份证", "证件号", "卡号", "银行卡", "账号", "帐号"];

/// Characters allowed between a cue and its number.
fn cue_filler(c: char) -> bool {
    matches!(
        c,
        ':' | '：' | ' ' | '\u{3000}' | '是' | '为' | '号' | '码' | '(' | '（' | ',' | '，'
    )
}

/// Whether one of `cues` ends just before char `at` (only filler in between).
fn cue_before(chars: &[char], at: usize, cues: &[&str]) -> bool {
    let mut end = at;
    while end > 0 && at - end < MAX_CUE_GAP && cue_filler(chars[end - 1]) {
        end -= 1;
    }
    // Try every end inside the filler: `号码` is both a cue and filler.
    (end..=at).any(|e| {
        cues.iter().any(|cue| {
            let n = cue.chars().count();
            e >= n
                && chars[e - n..e]
                    .iter()
                    .zip(cue.chars())
                    .all(|(a, b)| a.to_ascii_lowercase() == b)
        })
    })
}

/// Numbers a cue announces: a phone after 电话 / 手机 …, a card after 身份证 / 卡号 ….
fn mask_after_cues(groups: &[Group], chars: &[char], marks: &mut Marks) {
    for (i, g) in groups.iter().enumerate() {
        if marks.any(&g.pos) {
            continue;
        }
        if g.len() >= 6 && cue_before(chars, g.start(), &CARD_CUES) {
            let last = if g.len() >= 15 { 4 } else { 0 };
            marks.hide(&g.pos, 3, last);
            continue;
        }
        if !cue_before(chars, g.start(), &PHONE_CUES) {
            continue;
        }
        // The number: this group and the next ones of 3+ digits in its chain (`512 3456`),
        // without a leading area code (kept, as for landlines), of 7–12 digits in all.
        let mut parts = vec![g];
        for h in &groups[i + 1..] {
            let prev = parts[parts.len() - 1];
            let gap = &chars[prev.end()..h.start()];
            if parts.len() == 3
                || h.len() < 3
                || gap.len() > MAX_GAP
                || !gap.iter().all(|c| is_separator(*c))
            {
                break;
            }
            parts.push(h);
        }
        if parts.len() > 1 && area_code_len(&g.val) == Some(g.len()) {
            parts.remove(0);
        }
        let mut pos: Vec<usize> = Vec::new();
        for p in parts {
            if pos.len() + p.len() > 12 {
                break;
            }
            pos.extend(&p.pos);
        }
        if (7..=12).contains(&pos.len()) && !marks.any(&pos) {
            marks.hide(&pos, 0, OTHER_KEPT);
        }
    }
}

// ------------------------------------------------------------------ e-mail addresses, IM ids

/// Characters of an e-mail address's local part and domain.
fn local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}
fn domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// Words after which a QQ or WeChat id follows.
const IM_CUES: [&str; 6] = ["qq", "微信", "wechat", "weixin", "wx", "vx"];

/// E-mail addresses keep the first character of their local part (`z***@163.com`); a QQ or
/// WeChat id after its cue keeps its first character (`QQ：1********`). `None` when there is none.
fn mask_addresses(s: &str) -> Option<String> {
    if !s.contains('@') && !has_im_cue(s) {
        return None;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut i = 0;
    while i < chars.len() {
        if let Some((local, end)) = email_at(&chars, i) {
            out.push(chars[i]);
            out.push_str("***");
            out.extend(&chars[i + local..end]);
            i = end;
            changed = true;
            continue;
        }
        if let Some((start, end)) = im_id_at(&chars, i) {
            out.extend(&chars[i..=start]);
            out.extend(std::iter::repeat_n('*', end - start - 1));
            i = end;
            changed = true;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    changed.then_some(out)
}

/// An e-mail address starting at `i` (not inside a longer local part): the local part's length
/// (at least 2) and the address's end.
fn email_at(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if !local_char(chars[i]) || (i > 0 && local_char(chars[i - 1])) {
        return None;
    }
    let local = chars[i..].iter().take_while(|c| local_char(**c)).count();
    if local < 2 || chars.get(i + local) != Some(&'@') {
        return None;
    }
    let d0 = i + local + 1;
    let domain = &chars[d0..];
    let n = domain.iter().take_while(|c| domain_char(**c)).count();
    // The longest prefix ending in a dot and 2+ letters (`163.com`; `163.com2019` glued to
    // digits after it ends at `com`).
    let mut end = None;
    let mut label = 0;
    for (k, c) in domain[..n].iter().enumerate() {
        label = if c.is_ascii_alphabetic() {
            label + 1
        } else {
            0
        };
        let ends_label = domain.get(k + 1).is_none_or(|c| !c.is_ascii_alphabetic());
        if label >= 2 && ends_label && k >= label && domain[k - label] == '.' && k > label {
            end = Some(d0 + k + 1);
        }
    }
    end.map(|e| (local, e))
}

/// A QQ number (5+ digits) or WeChat id (6–20 ASCII letters, digits, `_` or `-`, from a
/// letter) after its cue, at `i`: the positions of its first character and of its end.
fn im_id_at(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let cue = IM_CUES.iter().find(|cue| {
        let n = cue.chars().count();
        chars.len() >= i + n
            && chars[i..i + n]
                .iter()
                .zip(cue.chars())
                .all(|(a, b)| a.to_ascii_lowercase() == b)
    })?;
    // A Latin cue written in lower case must not be the end of a longer word (`mqq`, `vvx`).
    if cue.is_ascii() && chars[i].is_ascii_lowercase() && i > 0 && chars[i - 1].is_ascii_lowercase()
    {
        return None;
    }
    let mut start = i + cue.chars().count();
    let filler = chars[start..]
        .iter()
        .take(MAX_CUE_GAP)
        .take_while(|c| cue_filler(**c))
        .count();
    start += filler;
    let is_id = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    let id = &chars[start..];
    // A QQ number (5+ digits: one glued to other digits is hidden with them), or a WeChat id
    // (6–20 characters from a letter).
    let qq = id.iter().take_while(|c| c.is_ascii_digit()).count();
    if qq >= 5 {
        return Some((start, start + qq));
    }
    let n = id.iter().take_while(|c| is_id(c)).count();
    let wechat = (6..=20).contains(&n) && id[0].is_ascii_alphabetic();
    wechat.then_some((start, start + n))
}

/// Whether an IM cue occurs at all (most texts have none: no second pass over their chars).
fn has_im_cue(s: &str) -> bool {
    IM_CUES.iter().any(|cue| {
        s.as_bytes()
            .windows(cue.len())
            .any(|w| w.eq_ignore_ascii_case(cue.as_bytes()))
    })
}

#[cfg(test)]
mod tests;
