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
    /// Where long-running commands serve `/metrics`, `/healthz`, `/readyz` (`[ops]`).
    pub ops: crate::ops::OpsConfig,
    /// Limits of analysts' queries (`duban sql`, `duban serve-sql`).
    pub sql: crate::query::SqlLimits,
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
    /// How long a micro-batch waits to fill, in milliseconds. Default 50 (each stage of the
    /// engine waits up to this once on a record's way to an alert; was 200).
    pub batch_linger_ms: u64,
    /// How far behind the wall clock an idle raw partition promises its next record's timestamp
    /// will be, in milliseconds. A record held in flight longer than this between its producer
    /// and the broker (an outage, a stalled producer) arrives late: applied exactly once all the
    /// same, but its place in the engine's order then depends on timing. Every record waits this
    /// long for idle partitions before it is applied, so it bounds latency with sparse traffic.
    /// Default 250 (was 3000).
    pub idle_margin_ms: u64,
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
    /// A record dated more than this many seconds after it was fetched goes to the dead-letter
    /// topic (a year-9999 record would move its partition's record clock and evict the state).
    /// Default 86400 (one day: feeds' clocks and time zones are not always right).
    pub max_future_secs: u64,
    /// A record dated before this day goes to the dead-letter topic. Default 2000-01-01.
    pub oldest_record_date: chrono::NaiveDate,
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
            batch_linger_ms: 50,
            idle_margin_ms: 250,
            min_domain_confidence: 0.34,
            model: None,
            max_future_secs: 86_400,
            oldest_record_date: chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default(),
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

    /// The default configuration's lake: the `--lake` of commands that read one, unless given.
    pub fn default_lake_dir() -> PathBuf {
        Config::default().data_dir().join("lake")
    }

    /// The default configuration's reports folder (`duban report --out` unless given).
    pub fn default_reports_dir() -> PathBuf {
        let cfg = Config::default();
        cfg.reports.reports_dir(&cfg.data_dir())
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

    /// Keys of `config/duban.toml` set on purpose to something other than the code's default,
    /// each with the reason. Empty: the shipped file shows the defaults and nothing else.
    const DEPLOYMENT_OVERRIDES: &[(&str, &str)] = &[];

    /// Every value key of a TOML table, as its dotted path and a one-key document holding it.
    fn one_key_documents(table: &toml::Table, path: &[&str], out: &mut Vec<(String, toml::Value)>) {
        for (key, value) in table {
            let mut here = path.to_vec();
            here.push(key);
            match value {
                toml::Value::Table(t) => one_key_documents(t, &here, out),
                leaf => {
                    let doc = here.iter().rev().fold(leaf.clone(), |inner, k| {
                        toml::Value::Table(toml::Table::from_iter([(k.to_string(), inner)]))
                    });
                    out.push((here.join("."), doc));
                }
            }
        }
    }

    #[test]
    fn shipped_config_shows_the_code_defaults() {
        let text = include_str!("../config/duban.toml");
        let file: toml::Table = toml::from_str(text).expect("config/duban.toml parses");
        let mut keys = Vec::new();
        one_key_documents(&file, &[], &mut keys);
        assert!(keys.len() >= 40, "only {} keys found", keys.len());
        let default = format!("{:?}", Config::default());
        let mut wrong = Vec::new();
        for (key, doc) in &keys {
            let shown = doc.to_string();
            let cfg: Config = doc
                .clone()
                .try_into()
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            let is_default = format!("{cfg:?}") == default;
            let overridden = DEPLOYMENT_OVERRIDES.iter().any(|(k, _)| k == key);
            if is_default == overridden {
                wrong.push(format!("{key} ({})", shown.trim()));
            }
        }
        assert!(
            wrong.is_empty(),
            "config/duban.toml differs from the code's defaults without being a listed \
             override, or a listed override equals the default: {wrong:?}"
        );
        // A listed override names a key the file still has.
        for (k, _) in DEPLOYMENT_OVERRIDES {
            assert!(
                keys.iter().any(|(key, _)| key == k),
                "override {k} is not in the file"
            );
        }
        // The check itself can fail: a changed value is caught.
        let changed: Config = parse_toml("[dedup]\nbands = 17\n", "t.toml").expect("parses");
        assert_ne!(format!("{changed:?}"), default);
    }

    #[test]
    fn commented_defaults_in_shipped_config_are_the_resolved_ones() {
        // `# key = value   # the default…` lines state a default the code resolves elsewhere
        // (an unset Option); each must equal what the code uses when the key is absent.
        let cfg = Config::default();
        let resolved = [
            ("data_dir", cfg.data_dir().display().to_string()),
            ("ops.http_bind", crate::ops::DEFAULT_BIND.to_string()),
            (
                "reports.dir",
                Config::default_reports_dir().display().to_string(),
            ),
            (
                "lifecycle.warning_working_days",
                cfg.rules.warning_working_days.to_string(),
            ),
        ];
        let mut section = String::new();
        let mut checked = Vec::new();
        for line in include_str!("../config/duban.toml").lines() {
            if let Some(s) = line.strip_prefix('[') {
                section = s.split(']').next().unwrap_or_default().to_string();
                continue;
            }
            let Some((assignment, comment)) = line
                .strip_prefix("# ")
                .and_then(|l| l.split_once(" # the default"))
            else {
                continue;
            };
            let (key, value) = assignment.split_once(" = ").expect("`# key = value`");
            let path = [section.as_str(), key.trim()]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(".");
            let value: toml::Table = toml::from_str(&format!("v = {value}")).expect("a value");
            let shown = match &value["v"] {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let code = resolved
                .iter()
                .find(|(k, _)| *k == path)
                .unwrap_or_else(|| panic!("{path}: a commented default this test cannot resolve"));
            assert_eq!(shown, code.1, "{path} ({comment})");
            checked.push(path);
        }
        assert_eq!(checked.len(), resolved.len(), "checked only {checked:?}");
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
        let err = parse_toml::<Config>("[frequency]\nwindow_days = \"x\"\n", "d.toml")
            .expect_err("bad type");
        assert!(err.to_string().contains("d.toml:2"), "{err}");
    }
}
