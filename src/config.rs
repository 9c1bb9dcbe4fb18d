//! duban's configuration: `config/duban.toml` plus one TOML per channel in `connectors/`.
//! Every field has a documented default; unknown or mistyped fields fail at load naming file and field.

use anyhow::{Context, Result};
use serde::{Deserialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// The whole configuration (`duban run --config FILE`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub engine: EngineConfig,
    pub rules: RuleConfig,
    pub dedup: DedupConfig,
    pub issues: crate::engine::cluster::IssueConfig,
    pub frequency: crate::engine::frequency::FrequencyConfig,
    pub taxonomy: TaxonomyRef,
    pub units: UnitsRef,
    pub connectors: ConnectorsConfig,
    /// Scheduled reports (`[reports]`).
    pub reports: crate::report::ReportsConfig,
    /// Optional sinks (`[sinks.clickhouse]`).
    pub sinks: crate::sink::SinksConfig,
    /// The alert lifecycle (deadlines, API, notifications).
    pub lifecycle: crate::lifecycle::LifecycleConfig,
    /// Folder written by `run`: the lake and alerts. Default `var/data`.
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Broker list. Default `127.0.0.1:9092`; the env var DUBAN_KAFKA_BOOTSTRAP overrides it.
    pub bootstrap_servers: String,
    /// Topics are `<prefix>.raw`, `<prefix>.complaints`, `<prefix>.alerts`, `<prefix>.dlq`. Default `duban`.
    pub topic_prefix: String,
    /// Partitions of topics duban creates. Default 3.
    pub partitions: i32,
    /// Replication factor of topics duban creates. Default 1.
    pub replication_factor: i32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic_prefix: "duban".into(),
            partitions: 3,
            replication_factor: 1,
        }
    }
}

impl KafkaConfig {
    pub fn topic(&self, name: &str) -> String {
        format!("{}.{}", self.topic_prefix, name)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Consumer group of the engine. Default `duban-engine`.
    pub group_id: String,
    /// Most raw records per micro-batch. Default 500.
    pub batch_max_records: usize,
    /// How long a micro-batch waits to fill, in milliseconds. Default 200.
    pub batch_linger_ms: u64,
    /// Minimum confidence for a domain; below it a complaint is `unclassified`. Default 0.34.
    pub min_domain_confidence: f64,
    /// A model written by `duban train`; without one, `classifier` decides.
    pub model: Option<PathBuf>,
    /// A folder of published model versions (`duban train --publish DIR`): the engine uses the
    /// one `DIR/CURRENT` names and switches to a newly published one at a batch boundary (a file
    /// that does not load is refused and the version in use kept). Until the folder has one,
    /// `model` or `classifier` serves.
    pub model_dir: Option<PathBuf>,
    /// With `model_dir`: when `duban run` retrains from the lake's corrections and complaints and
    /// publishes a new version (cron, 6 fields with seconds or 5, local time; e.g.
    /// `0 30 2 * * *`). Off by default; `duban train --from-lake LAKE --publish DIR` does it on
    /// demand.
    pub retrain_schedule: Option<String>,
    /// Without `model`: `taxonomy-model` (default; a linear model trained at start on the
    /// taxonomy's descriptions, terms and example complaints: the best model without labels) or
    /// `vocabulary` (matches the taxonomy's terms literally: the fastest, less often right).
    pub classifier: DefaultClassifier,
    /// Where the pseudonym key comes from: never the file (a secret stays in the environment,
    /// `DUBAN_PSEUDONYM_KEY`); `duban demo` and tests set it in code.
    #[serde(skip)]
    pub pseudonym_key: crate::engine::PseudonymKey,
}

/// The engine's classifier when no model file is configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultClassifier {
    Vocabulary,
    #[default]
    TaxonomyModel,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            group_id: "duban-engine".into(),
            batch_max_records: 500,
            batch_linger_ms: 200,
            min_domain_confidence: 0.34,
            model: None,
            model_dir: None,
            retrain_schedule: None,
            classifier: DefaultClassifier::TaxonomyModel,
            pseudonym_key: crate::engine::PseudonymKey::Env,
        }
    }
}

/// Alert rules: when an issue or a complainant becomes a yellow alert.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    /// 群众诉求集中: distinct complainants on one issue. Default 5.
    pub crowd_min_complainants: usize,
    /// Warning period of a yellow alert, in working days (Monday–Friday). Default 5.
    pub warning_working_days: u32,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            crowd_min_complainants: 5,
            warning_working_days: 5,
        }
    }
}

/// Near-duplicate detection: MinHash over character n-grams with LSH banding.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Character n-gram length. Default 3.
    pub ngram: usize,
    /// LSH bands × rows = hash functions. Defaults 16 × 4 (candidates from Jaccard ≈ 0.5 up).
    pub bands: usize,
    pub rows: usize,
    /// Estimated Jaccard similarity at which two texts are duplicates. Default 0.7.
    pub threshold: f64,
    /// A text is matched against those of this many days before it (then evicted). Default 30.
    pub window_days: i64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            ngram: 3,
            bands: 16,
            rows: 4,
            threshold: 0.7,
            window_days: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TaxonomyRef {
    /// Path of the taxonomy TOML; default: the built-in `config/taxonomy.toml`.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UnitsRef {
    /// Path of the enforcement-unit table; default: the built-in `config/units.toml`.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorsConfig {
    /// Folder with one TOML per channel. Default `connectors`.
    pub dir: PathBuf,
    /// Channels to run. Default all four.
    pub enabled: Vec<crate::record::Channel>,
}

impl Default for ConnectorsConfig {
    fn default() -> Self {
        ConnectorsConfig {
            dir: PathBuf::from("connectors"),
            enabled: crate::record::Channel::ALL.to_vec(),
        }
    }
}

/// Parse a TOML file into `T`, with errors that name the file and the field.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    parse_toml(&text, &path.display().to_string())
}

pub fn parse_toml<T: DeserializeOwned>(text: &str, name: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(l) => anyhow::anyhow!("{name}:{l}: {msg}"),
            None => anyhow::anyhow!("{name}: {msg}"),
        }
    })
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let mut cfg: Config = load_toml(path)?;
        // Relative paths in the file are relative to the folder that holds the config's parent
        // (the repository root for config/duban.toml), so `duban run` works from the root.
        if let Ok(b) = std::env::var("DUBAN_KAFKA_BOOTSTRAP") {
            cfg.kafka.bootstrap_servers = b;
        }
        Ok(cfg)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("var/data"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_loads() {
        let cfg = Config::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/duban.toml"
        )))
        .expect("loads");
        assert_eq!(cfg.kafka.topic("raw"), "duban.raw");
        assert!(cfg.rules.crowd_min_complainants >= 2);
        assert_eq!(cfg.engine.classifier, DefaultClassifier::TaxonomyModel);
        assert_eq!(
            Config::default().engine.classifier,
            DefaultClassifier::TaxonomyModel
        );
        let model: Config =
            parse_toml("[engine]\nclassifier = \"vocabulary\"\n", "t.toml").expect("parses");
        assert_eq!(model.engine.classifier, DefaultClassifier::Vocabulary);
        let err = parse_toml::<Config>("[engine]\nclassifier = \"bert\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().starts_with("t.toml:2:"), "{err}");
    }

    #[test]
    fn bad_field_is_named() {
        let err = parse_toml::<Config>("[kafka]\nbootstrap = 1\n", "duban.toml")
            .expect_err("unknown field");
        let msg = err.to_string();
        assert!(
            msg.contains("duban.toml:2") && msg.contains("bootstrap"),
            "{msg}"
        );
        let err = parse_toml::<Config>("[frequency]\nretention_days = \"x\"\n", "d.toml")
            .expect_err("bad type");
        assert!(err.to_string().contains("d.toml:2"), "{err}");
    }
}
