//! The domain taxonomy (config/taxonomy.toml: the ten key enforcement domains, each with a
//! description and vocabulary), what the engine asks of a domain classifier, and the fastest one:
//! the vocabulary scorer. The trained classifiers are in `crate::classify` (a model file from
//! `duban train`, or the taxonomy model trained from this taxonomy).

use serde::Deserialize;
use std::sync::Arc;

pub const UNCLASSIFIED: &str = "unclassified";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    pub domain: Vec<DomainDef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainDef {
    pub name: String,
    pub description: String,
    pub vocabulary: Vec<String>,
    /// Short complaints written for the domain: training rows of the taxonomy model (the
    /// vocabulary scorer ignores them).
    #[serde(default)]
    pub examples: Vec<String>,
}

const BUILTIN: &str = include_str!("../../config/taxonomy.toml");

impl Taxonomy {
    pub fn builtin() -> Taxonomy {
        crate::config::parse_toml(BUILTIN, "config/taxonomy.toml")
            .expect("built-in taxonomy parses")
    }

    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Taxonomy> {
        let Some(p) = path else {
            return Ok(Taxonomy::builtin());
        };
        let tax: Taxonomy = crate::config::load_toml(p)?;
        tax.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        Ok(tax)
    }

    /// A classifier is trained from it: two or more domains, named, distinct, each with
    /// vocabulary.
    fn check(&self) -> Result<(), String> {
        if self.domain.len() < 2 {
            return Err(format!(
                "needs at least two [[domain]] entries, found {}",
                self.domain.len()
            ));
        }
        for (i, d) in self.domain.iter().enumerate() {
            if d.name.trim().is_empty() {
                return Err(format!("domain {} has an empty `name`", i + 1));
            }
            if self.domain[..i].iter().any(|e| e.name == d.name) {
                return Err(format!("domain `{}` is defined twice", d.name));
            }
            if d.vocabulary.iter().all(|t| t.trim().is_empty()) {
                return Err(format!("domain `{}` has an empty `vocabulary`", d.name));
            }
        }
        Ok(())
    }
}

/// What the engine needs of a classifier: a domain (or `unclassified`) and a confidence in 0..=1.
/// The vocabulary scorer below is the default (`[engine] classifier`); trained models
/// (src/classify) implement it too.
pub trait DomainClassifier: Send + Sync {
    fn classify(&self, title: &str, body: &str) -> (String, f64);

    /// The version recorded on the complaints it classifies (`classifier_version`).
    fn version(&self) -> String;

    /// The probability of each of `labels()` for one complaint, when the classifier has them
    /// (a trained model: what `label suggest` measures uncertainty by); None otherwise.
    fn probabilities(&self, _title: &str, _body: &str) -> Option<Vec<f32>> {
        None
    }

    /// Take up a newly published model version, if the classifier follows a model folder (the
    /// engine does it at each batch boundary, the board before each labeling queue).
    fn refresh(&self) {}

    /// The labels `probabilities` are of.
    fn labels(&self) -> Vec<String> {
        Vec::new()
    }

    /// (domain, confidence, version) of one complaint, all from the same model.
    fn classify_versioned(&self, title: &str, body: &str) -> (String, f64, String) {
        let (d, c) = self.classify(title, body);
        (d, c, self.version())
    }
}

impl DomainClassifier for KeywordClassifier {
    fn classify(&self, title: &str, body: &str) -> (String, f64) {
        KeywordClassifier::classify(self, title, body)
    }

    fn version(&self) -> String {
        "vocabulary".to_string()
    }
}

/// Vocabulary scorer. A term scores its length in characters (longer terms are more specific),
/// doubled in the title; confidence is the winner's share of all scores.
#[derive(Debug, Clone)]
pub struct KeywordClassifier {
    domains: Vec<String>,
    /// (term, domain index), longest terms first.
    terms: Vec<(String, usize)>,
    /// One automaton over all terms (overlapping matches), so a text is scanned once.
    matcher: aho_corasick::AhoCorasick,
    /// A term's score: its length in characters.
    weights: Vec<f64>,
    min_confidence: f64,
}

impl KeywordClassifier {
    pub fn new(tax: &Taxonomy, min_confidence: f64) -> Arc<KeywordClassifier> {
        let mut terms: Vec<(String, usize)> = tax
            .domain
            .iter()
            .enumerate()
            .flat_map(|(i, d)| d.vocabulary.iter().map(move |t| (t.clone(), i)))
            .collect();
        terms.sort_by(|a, b| {
            b.0.chars()
                .count()
                .cmp(&a.0.chars().count())
                .then(a.0.cmp(&b.0))
        });
        terms.dedup_by(|a, b| a.0 == b.0);
        let matcher = aho_corasick::AhoCorasick::new(terms.iter().map(|(t, _)| t.as_str()))
            .expect("taxonomy terms build an automaton");
        Arc::new(KeywordClassifier {
            domains: tax.domain.iter().map(|d| d.name.clone()).collect(),
            weights: terms
                .iter()
                .map(|(t, _)| t.chars().count() as f64)
                .collect(),
            terms,
            matcher,
            min_confidence,
        })
    }

    /// (domain or `unclassified`, confidence in 0..=1).
    pub fn classify(&self, title: &str, body: &str) -> (String, f64) {
        let mut scores = vec![0f64; self.domains.len()];
        let mut in_body = vec![0u8; self.terms.len()];
        for m in self.matcher.find_overlapping_iter(title) {
            let i = m.pattern().as_usize();
            scores[self.terms[i].1] += 2.0 * self.weights[i];
        }
        for m in self.matcher.find_overlapping_iter(body) {
            let i = m.pattern().as_usize();
            // A term counts at most three times in the body.
            if in_body[i] < 3 {
                in_body[i] += 1;
                scores[self.terms[i].1] += self.weights[i];
            }
        }
        let total: f64 = scores.iter().sum();
        let (best, score) =
            scores.iter().enumerate().fold(
                (0, 0f64),
                |acc, (i, s)| if *s > acc.1 { (i, *s) } else { acc },
            );
        if total <= 0.0 {
            return (UNCLASSIFIED.to_string(), 0.0);
        }
        let conf = score / total;
        if conf < self.min_confidence {
            (UNCLASSIFIED.to_string(), conf)
        } else {
            (self.domains[best].clone(), conf)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn builtin_taxonomy_has_the_ten_domains() {
        let t = Taxonomy::builtin();
        let names: Vec<&str> = t.domain.iter().map(|d| d.name.as_str()).collect();
        // The simulator writes complaints of these ten; the taxonomy must describe each.
        for d in crate::sim::text::DOMAINS {
            assert!(names.contains(&d), "{d}");
        }
        assert_eq!(names.len(), crate::sim::text::DOMAINS.len(), "{names:?}");
    }

    #[test]
    fn a_taxonomy_a_classifier_cannot_be_trained_from_is_refused_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("duban-tax-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cases = [
            (
                "[[domain]]\nname = \"a\"\ndescription = \"\"\nvocabulary = [\"x\"]\n",
                "at least two",
            ),
            (
                "[[domain]]\nname = \"a\"\ndescription = \"\"\nvocabulary = [\"x\"]\n\
                 [[domain]]\nname = \"a\"\ndescription = \"\"\nvocabulary = [\"y\"]\n",
                "`a` is defined twice",
            ),
            (
                "[[domain]]\nname = \"a\"\ndescription = \"\"\nvocabulary = [\"x\"]\n\
                 [[domain]]\nname = \"b\"\ndescription = \"\"\nvocabulary = []\n",
                "`b` has an empty `vocabulary`",
            ),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let p = dir.join(format!("t{i}.toml"));
            std::fs::write(&p, text).expect("write");
            let err = Taxonomy::load(Some(&p)).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains(&p.display().to_string()),
                "{err}"
            );
        }
        let p = dir.join("ok.toml");
        std::fs::write(&p, BUILTIN).expect("write");
        assert_eq!(
            Taxonomy::load(Some(&p)).expect("the built-in file loads"),
            Taxonomy::builtin()
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// What every default classifier of the built-in taxonomy gets right: plain complaints of
    /// two domains, and greetings left `unclassified`.
    pub(crate) fn classifies_plain_complaints_and_refuses_greetings(c: &dyn DomainClassifier) {
        assert_eq!(
            c.classify("拖欠工资", "包工头拖欠农民工工资三个月").0,
            "劳动保障"
        );
        assert_eq!(
            c.classify("", "搅拌站粉尘污染严重，晚上还有噪声").0,
            "生态环境"
        );
        for text in ["请问一下", "谢谢"] {
            assert_eq!(c.classify("你好", text).0, UNCLASSIFIED, "{text}");
        }
    }

    #[test]
    fn classifies_by_vocabulary_and_refuses_when_unsure() {
        let c = KeywordClassifier::new(&Taxonomy::builtin(), 0.34);
        classifies_plain_complaints_and_refuses_greetings(c.as_ref());
        // No term at all: confidence 0.
        assert_eq!(c.classify("你好", "请问一下").1, 0.0);
    }
}
