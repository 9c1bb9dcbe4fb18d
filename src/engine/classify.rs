//! The domain taxonomy (config/taxonomy.toml: the ten key enforcement domains, each with a
//! description and vocabulary) and what the engine asks of a domain classifier. The classifiers
//! are in `crate::classify`: a model file from `duban train`, else the taxonomy model trained at
//! start from this taxonomy.

use serde::Deserialize;

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
pub trait DomainClassifier: Send + Sync {
    fn classify(&self, title: &str, body: &str) -> (String, f64);
}

#[cfg(test)]
mod tests {
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
}
