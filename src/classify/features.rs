//! Text → sparse feature vector: jieba words, (optional) word bigrams and character n-grams of title
//! and body (a title-less body's first characters weighted like a title), signed-hashed into 2^k
//! buckets. The hash (`HASH_VERSION`) is part of the model file format.

use jieba_rs::Jieba;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Bumped whenever the mapping text → (bucket, sign) changes; stored in every model file.
/// Version 2 takes a title-less body's lead (`lead_chars`) from the body's own segmentation
/// (a word counts as lead when it starts in the lead, a character n-gram when it ends there);
/// version 1 segmented the lead a second time. Models of both versions are read and featurize
/// as they were trained.
pub const HASH_VERSION: u32 = 2;

/// The oldest feature hash version this build still featurizes.
pub const OLDEST_HASH_VERSION: u32 = 1;

/// The process-wide jieba segmenter with its default dictionary (loaded once, ~0.3 s).
pub fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// How text becomes features. Saved in the model header, so a model always featurizes as trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// log2 of the number of hash buckets (e.g. 20 → 1,048,576).
    pub buckets_log2: u8,
    /// Term counts from the title are multiplied by this (a title is a summary of the body).
    pub title_weight: f32,
    /// Longest character n-gram (1..=3 is the usual setting; 0 disables character n-grams).
    pub char_ngram_max: u8,
    /// Add word bigrams (adjacent jieba tokens).
    pub word_bigrams: bool,
    /// Use jieba's HMM for out-of-vocabulary words.
    pub hmm: bool,
    /// Which hash function (`HASH_VERSION` when trained).
    pub hash_version: u32,
    /// Without a title, the first this many characters of the body (where such messages put
    /// their subject) count `title_weight` times as well (0 = off).
    #[serde(default)]
    pub lead_chars: u16,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            buckets_log2: 18,
            // 3 was best for the linear model alone; with the neighbour votes 2 is (5-fold CV on
            // six fold seeds: 0.9151 against 0.9135; see docs/classification-research.md).
            title_weight: 2.0,
            char_ngram_max: 2,
            word_bigrams: false,
            hmm: true,
            hash_version: HASH_VERSION,
            lead_chars: 25,
        }
    }
}

// Feature kinds, mixed into the hash so that e.g. the word "路" and the character "路" differ.
const KIND_WORD: u64 = 1;
const KIND_BIGRAM: u64 = 2;
const KIND_CHAR: u64 = 3; // + n

#[inline]
fn mix64(mut z: u64) -> u64 {
    // splitmix64 finalizer: a fixed, platform-independent bijection.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a over bytes, then mixed; stable across platforms and releases.
#[inline]
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// Characters that carry content: letters, digits, CJK. Punctuation and spaces split n-grams.
#[inline]
fn is_content(c: char) -> bool {
    // Fast paths for ASCII and the CJK block; the Unicode tables only for the rest.
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else if ('\u{4E00}'..='\u{9FFF}').contains(&c) {
        true
    } else {
        c.is_alphanumeric()
    }
}

/// Full-width ASCII → ASCII, ASCII letters lower-cased, every digit → '0' (numbers are rarely
/// topical, but "there is a number here" is).
#[inline]
fn normalize_char(c: char) -> char {
    let c = match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    };
    if c.is_ascii_digit() {
        '0'
    } else {
        c.to_ascii_lowercase()
    }
}

/// Reusable per-thread buffers: the normalized text and a small open-addressing table that sums the
/// signed counts of one document's features per bucket.
#[derive(Debug, Default)]
pub struct Scratch {
    text: String,
    chars: Vec<char>,
    word_hashes: Vec<u64>,
    keys: Vec<u32>,
    vals: Vec<f32>,
    used: Vec<u32>,
    mask: usize,
}

const EMPTY: u32 = u32::MAX;

impl Scratch {
    fn reset(&mut self, expected: usize) {
        let want = (expected * 2).next_power_of_two().max(256);
        if self.keys.len() < want {
            self.keys = vec![EMPTY; want];
            self.vals = vec![0.0; want];
            self.mask = want - 1;
            self.used.clear();
        } else {
            for &slot in &self.used {
                self.keys[slot as usize] = EMPTY;
            }
            self.used.clear();
        }
    }

    #[inline]
    fn add(&mut self, bucket: u32, v: f32) {
        let mut slot = (bucket as usize).wrapping_mul(0x9E37_79B1) >> 7 & self.mask;
        loop {
            let k = self.keys[slot];
            if k == bucket {
                self.vals[slot] += v;
                return;
            }
            if k == EMPTY {
                self.keys[slot] = bucket;
                self.vals[slot] = v;
                self.used.push(slot as u32);
                return;
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// The document's (bucket, signed count) pairs, in insertion order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, f32)> + Clone + '_ {
        self.used
            .iter()
            .map(|&s| (self.keys[s as usize], self.vals[s as usize]))
    }

    pub fn len(&self) -> usize {
        self.used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

/// Turns (title, body) into raw signed term counts per bucket (before idf and normalization).
#[derive(Debug, Clone, PartialEq)]
pub struct Featurizer {
    pub config: FeatureConfig,
    mask: u64,
}

impl Featurizer {
    pub fn new(config: FeatureConfig) -> Featurizer {
        let mask = (1u64 << config.buckets_log2) - 1;
        Featurizer { config, mask }
    }

    pub fn buckets(&self) -> usize {
        1usize << self.config.buckets_log2
    }

    #[inline]
    fn emit(&self, scratch: &mut Scratch, h: u64, weight: f32) {
        let h = mix64(h);
        let bucket = (h & self.mask) as u32;
        let sign = if h >> 63 == 0 { weight } else { -weight };
        scratch.add(bucket, sign);
    }

    /// Fill `scratch` with the features of one complaint; read them with `scratch.entries()`.
    pub fn featurize(&self, title: &str, body: &str, scratch: &mut Scratch) {
        scratch.reset(3 * (title.len() + body.len()) / 2 + 16);
        let tw = self.config.title_weight;
        if !title.trim().is_empty() {
            self.featurize_part(title, tw, scratch);
        } else if self.config.lead_chars > 0 && tw > 1.0 && self.config.hash_version >= 2 {
            self.featurize_text(body, 1.0, self.config.lead_chars as usize, tw, scratch);
            return;
        } else if self.config.lead_chars > 0 && tw > 1.0 {
            let end = body
                .char_indices()
                .nth(self.config.lead_chars as usize)
                .map_or(body.len(), |(i, _)| i);
            self.featurize_part(&body[..end], tw - 1.0, scratch);
        }
        self.featurize_part(body, 1.0, scratch);
    }

    fn featurize_part(&self, text: &str, weight: f32, scratch: &mut Scratch) {
        self.featurize_text(text, weight, 0, weight, scratch);
    }

    /// Features of `text` with `weight`; those within its first `lead` characters (words that
    /// start there, character n-grams that end there) with `lead_weight` instead.
    fn featurize_text(
        &self,
        text: &str,
        weight: f32,
        lead: usize,
        lead_weight: f32,
        scratch: &mut Scratch,
    ) {
        let mut norm = std::mem::take(&mut scratch.text);
        norm.clear();
        norm.extend(text.chars().map(normalize_char));
        // Byte end of the lead in the normalized text (normalization keeps the character count).
        let lead_end = if lead == 0 {
            0
        } else {
            norm.char_indices().nth(lead).map_or(norm.len(), |(i, _)| i)
        };

        // Words and word bigrams. A token's byte offset is where the previous one ended (jieba
        // returns consecutive slices of the input).
        let mut words = std::mem::take(&mut scratch.word_hashes);
        words.clear();
        let mut lead_words = 0;
        let mut offset = 0;
        for tok in jieba().cut(&norm, self.config.hmm) {
            if tok.word.chars().any(is_content) {
                words.push(hash_bytes(tok.word.as_bytes()));
                if offset < lead_end {
                    lead_words = words.len();
                }
            }
            offset += tok.word.len();
        }
        for (i, &w) in words.iter().enumerate() {
            let wt = if i < lead_words { lead_weight } else { weight };
            self.emit(
                scratch,
                w ^ KIND_WORD.wrapping_mul(0xD6E8_FEB8_6659_FD93),
                wt,
            );
            if self.config.word_bigrams && i > 0 {
                let b = words[i - 1].rotate_left(23)
                    ^ w
                    ^ KIND_BIGRAM.wrapping_mul(0xD6E8_FEB8_6659_FD93);
                self.emit(scratch, b, wt);
            }
        }
        scratch.word_hashes = words;

        // Character n-grams within runs of content characters.
        let nmax = self.config.char_ngram_max as usize;
        if nmax > 0 {
            let mut chars = std::mem::take(&mut scratch.chars);
            chars.clear();
            // Entries of `chars` that come from the lead.
            let mut lead_len = 0;
            for (j, c) in norm.chars().enumerate() {
                if is_content(c) {
                    chars.push(c);
                } else if chars.last().is_some_and(|&l| l != ' ') {
                    chars.push(' ');
                }
                if j < lead {
                    lead_len = chars.len();
                }
            }
            for i in 0..chars.len() {
                let mut key: u64 = 0;
                for n in 1..=nmax {
                    let Some(&c) = chars.get(i + n - 1) else {
                        break;
                    };
                    if c == ' ' {
                        break;
                    }
                    key = (key << 21) | c as u64;
                    let kind = (KIND_CHAR + n as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
                    let wt = if i + n <= lead_len {
                        lead_weight
                    } else {
                        weight
                    };
                    self.emit(scratch, key ^ kind, wt);
                }
            }
            scratch.chars = chars;
        }
        scratch.text = norm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats(f: &Featurizer, title: &str, body: &str) -> Vec<(u32, f32)> {
        let mut s = Scratch::default();
        f.featurize(title, body, &mut s);
        let mut v: Vec<(u32, f32)> = s.entries().collect();
        v.sort_by_key(|e| e.0);
        v
    }

    #[test]
    fn same_text_same_features_and_scratch_is_reusable() {
        let f = Featurizer::new(FeatureConfig::default());
        let a = feats(&f, "小区物业乱收费", "物业公司每月多收停车费");
        let mut s = Scratch::default();
        f.featurize("别的", "完全不同的一段话，很长很长", &mut s);
        f.featurize("小区物业乱收费", "物业公司每月多收停车费", &mut s);
        let mut b: Vec<(u32, f32)> = s.entries().collect();
        b.sort_by_key(|e| e.0);
        assert_eq!(a, b);
        assert!(a.iter().all(|(k, _)| (*k as usize) < f.buckets()));
    }

    #[test]
    fn title_counts_are_weighted_and_digits_normalized() {
        let f = Featurizer::new(FeatureConfig {
            lead_chars: 0,
            ..FeatureConfig::default()
        });
        let body_only = feats(&f, "", "噪音");
        let title_only = feats(&f, "噪音", "");
        assert_eq!(body_only.len(), title_only.len());
        for ((k1, v1), (k2, v2)) in body_only.iter().zip(&title_only) {
            assert_eq!(k1, k2);
            assert_eq!(*v2, v1 * f.config.title_weight);
        }
        assert_eq!(feats(&f, "", "电话123"), feats(&f, "", "电话９８７"));
        assert!(feats(&f, "", " ，。！").is_empty());
    }

    #[test]
    fn the_lead_from_one_segmentation_matches_the_separately_segmented_lead() {
        let v = |hash_version, lead_chars| {
            Featurizer::new(FeatureConfig {
                lead_chars,
                hash_version,
                ..FeatureConfig::default()
            })
        };
        // The lead ends at a punctuation mark: both versions weight the same words and n-grams.
        let body = "噪音扰民。楼下工地夜间施工，影响休息";
        assert_eq!(feats(&v(1, 4), "", body), feats(&v(2, 4), "", body));
        // It ends inside a word ("楼|下"): version 2 weights the word that starts in the lead,
        // version 1 the pieces of the cut lead.
        let body = "噪音扰民楼下工地夜间施工，影响休息";
        assert_ne!(feats(&v(1, 5), "", body), feats(&v(2, 5), "", body));
        // With a title both featurize alike.
        assert_eq!(feats(&v(1, 5), "标题", body), feats(&v(2, 5), "标题", body));
    }

    #[test]
    fn a_title_less_body_weights_its_lead_like_a_title() {
        let f = Featurizer::new(FeatureConfig {
            lead_chars: 2,
            ..FeatureConfig::default()
        });
        let tw = f.config.title_weight;
        // "噪音" is the whole lead: every feature counts title_weight times.
        let plain = Featurizer::new(FeatureConfig {
            lead_chars: 0,
            ..FeatureConfig::default()
        });
        let lead = feats(&f, "", "噪音");
        let once = feats(&plain, "", "噪音");
        assert_eq!(lead.len(), once.len());
        for ((k1, v1), (k2, v2)) in lead.iter().zip(&once) {
            assert_eq!(k1, k2);
            assert_eq!(*v1, v2 * tw);
        }
        // With a title, the body's lead is not weighted.
        assert_eq!(
            feats(&f, "标题", "噪音扰民"),
            feats(&plain, "标题", "噪音扰民")
        );
        // A longer body: more weight in total than without the lead, less than all as a title.
        let sum = |v: &[(u32, f32)]| v.iter().map(|e| e.1.abs()).sum::<f32>();
        let long = "楼下工地夜间施工噪音扰民";
        assert!(sum(&feats(&f, "", long)) > sum(&feats(&plain, "", long)));
        assert!(sum(&feats(&f, "", long)) < sum(&feats(&plain, long, "")));
    }
}
