//! Behaviour of the trained classifier on the shared teddy2020c data (read at run time from
//! `DUBAN_SHARED_DIR`, default `../shared`; the tests fail if it is missing).

use indicatif::ProgressBar;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::data::{self, Example};
use super::features::{FeatureConfig, Featurizer};
use super::model::LinearModel;
use super::train::{self, Prepared, TrainConfig};
use super::weak::{self, WeakConfig};
use super::{TrainedClassifier, load_model};
use crate::engine::taxonomy::{Taxonomy, UNCLASSIFIED};

fn teddy(file: &str) -> PathBuf {
    let p = data::shared_dir().join("data/teddy2020c").join(file);
    assert!(
        p.exists(),
        "{} is missing: set DUBAN_SHARED_DIR to the shared folder",
        p.display()
    );
    p
}

fn labeled() -> &'static Vec<Example> {
    static ROWS: OnceLock<Vec<Example>> = OnceLock::new();
    ROWS.get_or_init(|| data::read_labeled(&teddy("train.csv")).expect("train.csv reads"))
}

/// Settings that keep a dev-profile (unoptimized) test run short.
fn quick_config() -> TrainConfig {
    TrainConfig {
        epochs: 12,
        calibration_folds: 0,
        ..TrainConfig::default()
    }
}

/// Train on the rows of `idx` of train.csv.
fn train_on(idx: &[usize], cfg: &TrainConfig) -> LinearModel {
    let rows = labeled();
    let (labels, ys) = train::index_labels(rows);
    let subset: Vec<Example> = idx.iter().map(|&i| rows[i].clone()).collect();
    let ys: Vec<usize> = idx.iter().map(|&i| ys[i]).collect();
    let raw = train::featurize_all(
        &Featurizer::new(cfg.features.clone()),
        &subset,
        &ProgressBar::hidden(),
    );
    let p = Prepared {
        labels: &labels,
        raw: &raw,
        ys: &ys,
        unlabeled: &[],
        prior: None,
        row_weight: None,
    };
    let all: Vec<usize> = (0..ys.len()).collect();
    train::fit(&p, &all, cfg, "test", &ProgressBar::hidden())
}

/// A small model (every 4th row) shared by the tests that only need some model.
fn small_model() -> &'static LinearModel {
    static M: OnceLock<LinearModel> = OnceLock::new();
    M.get_or_init(|| {
        let idx: Vec<usize> = (0..labeled().len()).step_by(4).collect();
        let cfg = TrainConfig {
            features: FeatureConfig {
                buckets_log2: 16,
                ..FeatureConfig::default()
            },
            calibration_folds: 2,
            ..quick_config()
        };
        train_on(&idx, &cfg)
    })
}

/// Every 9th row of train.csv: the rows of the tiny models that file-format tests train.
fn tiny_rows() -> Vec<usize> {
    (0..labeled().len()).step_by(9).collect()
}

/// 2^14 buckets and 5 epochs: a tiny model, trained in a moment.
fn tiny_config() -> TrainConfig {
    TrainConfig {
        features: FeatureConfig {
            buckets_log2: 14,
            ..FeatureConfig::default()
        },
        epochs: 5,
        ..quick_config()
    }
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duban-classify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn held_out_fold_macro_f1_is_above_the_bar() {
    let rows = labeled();
    let (labels, ys) = train::index_labels(rows);
    assert_eq!(labels.len(), 7);
    let folds = train::stratified_folds(&ys, 5, 7);
    let train_idx: Vec<usize> = (0..rows.len()).filter(|&i| folds[i] != 0).collect();
    let test_idx: Vec<usize> = (0..rows.len()).filter(|&i| folds[i] == 0).collect();
    // Stratified: every class is in the held-out fold in proportion.
    for c in 0..labels.len() {
        let n = ys.iter().filter(|&&y| y == c).count();
        let held = test_idx.iter().filter(|&&i| ys[i] == c).count();
        assert!(held.abs_diff(n / 5) <= 1, "class {c}: {held} of {n}");
    }
    let model = train_on(&train_idx, &quick_config());
    assert!(
        model.neighbours.is_some(),
        "neighbour votes are on by default"
    );
    // Without the votes (`--no-knn`): the same weights (the quick settings fix the temperature).
    let linear = model.clone().with_neighbours(None);
    let truth: Vec<usize> = test_idx.iter().map(|&i| ys[i]).collect();
    let mut scratch = Default::default();
    let mut held_out = |m: &LinearModel, what: &str| {
        let pred: Vec<Option<usize>> = test_idx
            .iter()
            .map(|&i| {
                m.predict(&rows[i].title, &rows[i].body, &mut scratch)
                    .map(|(c, _)| c)
            })
            .collect();
        let s = train::score(&labels, &truth, &pred);
        eprintln!(
            "held-out fold, {what}: macro-F1 {:.4}, accuracy {:.4}",
            s.macro_f1, s.accuracy
        );
        (pred, s)
    };
    let (pred, s) = held_out(&model, "defaults");
    let (linear_pred, l) = held_out(&linear, "without neighbour votes");
    // Measured 0.923 on this fold with the quick settings, 0.914 without the votes (5-fold CV
    // with the defaults: 0.915 and 0.907); the bar leaves a margin for platform and ordering
    // differences.
    for s in [&s, &l] {
        assert!(s.macro_f1 >= 0.89, "macro-F1 {:.4}", s.macro_f1);
        assert!(s.per_class.iter().all(|c| c.f1 >= 0.7), "{:?}", s.per_class);
    }
    // The votes are applied when scoring, not only stored.
    assert!(pred != linear_pred, "the votes changed no prediction");
}

#[test]
fn a_model_with_neighbours_round_trips_and_format_1_files_still_load() {
    let idx = tiny_rows();
    let cfg = tiny_config();
    let m = train_on(&idx, &cfg);
    let bytes = m.to_bytes();
    assert!(train_on(&idx, &cfg).to_bytes() == bytes, "deterministic");
    let n = m.neighbours.as_ref().expect("trained with neighbours");
    assert_eq!(n.pool_rows(), idx.len());
    assert!(n.postings() > 0);
    let loaded = LinearModel::from_bytes(&bytes).expect("loads");
    assert_eq!(loaded, m);
    // The votes move the margins of rows whose two highest linear margins are closer than the
    // weight, and leave the other rows as the linear model scores them.
    let linear = loaded.clone().with_neighbours(None);
    let gap = |m: &[f32]| {
        let mut v = m.to_vec();
        v.sort_by(|a, b| b.total_cmp(a));
        v[0] - v[1]
    };
    let (mut moved, mut decided) = (0, 0);
    let mut s = Default::default();
    for r in labeled().iter().skip(1).step_by(9) {
        let with = loaded.margins(&r.title, &r.body, &mut s).expect("known");
        let without = linear.margins(&r.title, &r.body, &mut s).expect("known");
        if gap(&without) >= n.params.weight {
            assert_eq!(with, without);
            decided += 1;
        } else if with != without {
            moved += 1;
        }
    }
    assert!(moved > 0 && decided > 0, "{moved} moved, {decided} decided");
    // A model without neighbours, written as format 1 (as earlier builds did), loads.
    let mut v1 = linear.to_bytes();
    v1.truncate(v1.len() - 8);
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    let sum = crate::ids::fnv1a64(&v1);
    v1.extend_from_slice(&sum.to_le_bytes());
    assert_eq!(
        LinearModel::from_bytes(&v1).expect("format 1 loads"),
        linear
    );
}

#[test]
fn same_seed_same_bytes_and_save_load_round_trip() {
    let idx = tiny_rows();
    let cfg = tiny_config();
    let a = train_on(&idx, &cfg).to_bytes();
    let b = train_on(&idx, &cfg).to_bytes();
    assert!(a == b, "same data and seed must give identical model bytes");
    let other = train_on(&idx, &TrainConfig { seed: 7, ..cfg });
    assert!(other.to_bytes() != a, "the seed drives the shuffles");

    let m = small_model();
    let path = temp_path("round-trip.model");
    m.save(&path).expect("save");
    let loaded = LinearModel::load(&path).expect("load");
    assert_eq!(&loaded, m);
    assert!(loaded.to_bytes() == m.to_bytes());
    let clf = load_model(&path, 0.34).expect("engine loads it");
    let r = &labeled()[1];
    let direct = TrainedClassifier::new(m.clone(), 0.34).classify(&r.title, &r.body);
    assert_eq!(clf.classify(&r.title, &r.body), direct);
}

#[test]
fn wrong_or_corrupt_files_give_one_line_naming_the_file() {
    let good = small_model().to_bytes();
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0x40;
    let mut version = good.clone();
    version[8] = 99;
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "foreign.model",
            b"PK\x03\x04 not a model at all".to_vec(),
            "magic",
        ),
        ("empty.model", Vec::new(), "magic"),
        ("flipped.model", flipped, "checksum"),
        (
            "truncated.model",
            good[..good.len() - 100].to_vec(),
            "checksum",
        ),
        ("version.model", version, "version 99"),
    ];
    for (name, bytes, why) in cases {
        let path = temp_path(name);
        std::fs::write(&path, bytes).expect("write");
        let err = format!("{:#}", load_model(&path, 0.34).err().expect(name));
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(why), "{name}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    let missing = temp_path("missing.model");
    let err = format!("{:#}", load_model(&missing, 0.34).err().expect("missing"));
    assert!(
        err.contains("missing.model") && !err.contains('\n'),
        "{err}"
    );
}

#[test]
fn models_of_the_previous_feature_hash_version_still_load_and_score_as_trained() {
    let idx = tiny_rows();
    let cfg = |hash_version| TrainConfig {
        features: FeatureConfig {
            hash_version,
            ..tiny_config().features
        },
        ..tiny_config()
    };
    let old = train_on(&idx, &cfg(1));
    let path = temp_path("hash-v1.model");
    old.save(&path).expect("save");
    let loaded = LinearModel::load(&path).expect("a version-1 model loads");
    assert_eq!(loaded.featurizer.config.hash_version, 1);
    assert_eq!(&loaded, &old);
    // A title-less message whose 25-character lead ends inside a word ("休|息") is featurized
    // as the model was trained, not as the current version would.
    let body = "市民反映楼下工地夜间施工噪音扰民严重影响周边居民休息请有关部门处理";
    let entries = |hash_version| {
        let f = Featurizer::new(FeatureConfig {
            hash_version,
            ..old.featurizer.config.clone()
        });
        let mut s = Default::default();
        f.featurize("", body, &mut s);
        s.entries().collect::<Vec<_>>()
    };
    let mut s = Default::default();
    let scored = loaded.margins("", body, &mut s).expect("known words");
    let as_v1 = loaded.margins_of(entries(1).into_iter()).expect("known").0;
    let as_v2 = loaded.margins_of(entries(2).into_iter()).expect("known").0;
    assert_eq!(scored, as_v1);
    assert_ne!(scored, as_v2);
    // A version this build does not know fails with one clear line.
    let future = train_on(&idx, &cfg(3)).to_bytes();
    let err = format!("{:#}", LinearModel::from_bytes(&future).expect_err("v3"));
    assert!(
        err.contains("feature hash version 3") && err.contains("versions 1 to 2"),
        "{err}"
    );
}

#[test]
fn empty_and_irrelevant_text_is_unclassified() {
    let clf = TrainedClassifier::new(small_model().clone(), 0.34);
    assert_eq!(clf.classify("", ""), (UNCLASSIFIED.to_string(), 0.0));
    assert_eq!(clf.classify(" ", "，。！"), (UNCLASSIFIED.to_string(), 0.0));
    for text in ["谢谢", "你好，请问一下", "ok"] {
        let (label, conf) = clf.classify("", text);
        assert_eq!(label, UNCLASSIFIED, "{text}: {conf}");
        assert!((0.0..0.34).contains(&conf), "{text}: {conf}");
    }
    // A real complaint from a row the small model did not train on is classified.
    let rows = labeled();
    let held: Vec<&Example> = rows.iter().skip(1).step_by(4).take(200).collect();
    let classified = held
        .iter()
        .filter(|r| clf.classify(&r.title, &r.body).0 != UNCLASSIFIED)
        .count();
    eprintln!("{classified} of 200 held-out rows classified");
    assert!(classified >= 180, "{classified} of 200 classified");
}

/// The seven teddy2020c first-level categories mapped to the ten domains by their vocabulary
/// (only for evaluating the weak model). Categories whose category-tree subtree covers two
/// domains accept either.
const SEVEN_TO_TEN: &[(&str, &[&str])] = &[
    ("城乡建设", &["城乡建设", "城市管理"]),
    ("劳动和社会保障", &["劳动保障", "医疗保障"]),
    ("教育文体", &["教育培训"]),
    ("商贸旅游", &["市场监管"]),
    ("卫生计生", &["卫生健康", "医疗保障"]),
    ("环境保护", &["生态环境"]),
    ("交通运输", &["交通运输"]),
];

#[test]
fn weak_default_model_is_clearly_better_than_chance() {
    let tax = Taxonomy::builtin();
    let names = weak::read_category_names(&teddy("taxonomy.csv")).expect("taxonomy.csv");
    let unlabeled =
        data::read_unlabeled(&teddy("messages_unlabeled.csv")).expect("messages_unlabeled.csv");
    let cfg = TrainConfig {
        self_train_threshold: Some(0.9),
        calibration_folds: 2,
        ..quick_config()
    };
    let (model, report) = weak::train_weak(
        &tax,
        &names,
        &unlabeled,
        &WeakConfig::default(),
        &cfg,
        &ProgressBar::hidden(),
    );
    assert_eq!(model.labels.len(), 10);
    assert!(report.category_terms > 20, "{report:?}");
    assert!(report.seeds_per_domain.iter().sum::<usize>() > unlabeled.len() / 3);
    let clf = TrainedClassifier::new(model, 0.34);
    let (acc, _) = mapped_accuracy(|t, b| clf.classify(t, b).0);
    eprintln!("weak model: mapped accuracy {acc:.3}, {report:?}");
    // Chance (a uniform guess among ten domains, with the two-domain categories) is ≈ 0.15;
    // measured ≈ 0.74 with all unlabeled files in release, lower bar for this smaller setting.
    assert!(acc >= 0.65, "weak model accuracy {acc:.3}");
    assert_eq!(clf.classify("", "谢谢").0, UNCLASSIFIED);
}

#[test]
fn the_taxonomy_model_classifies_by_vocabulary_and_refuses_when_unsure() {
    let tax = Taxonomy::builtin();
    let c = super::taxonomy_model(&tax, 0.34);
    crate::engine::taxonomy::tests::classifies_plain_complaints_and_refuses_greetings(c.as_ref());
    // Trained once per process: a second engine or SQL context shares it.
    assert!(Arc::ptr_eq(&c, &super::taxonomy_model(&tax, 0.34)));
    // It is the default `[engine] classifier`; SQL contexts train it on their first
    // classification, to the same labels.
    let mut cfg = crate::config::Config::default();
    let configured = super::without_model(&cfg, false).expect("the built-in taxonomy");
    cfg.engine.classifier = crate::config::DefaultClassifier::Vocabulary;
    let vocabulary = super::without_model(&cfg, false).expect("the built-in taxonomy");
    assert!(Arc::ptr_eq(&c, &configured));
    // Messages in which the vocabulary finds none of its terms: the model still places some.
    let placed: Vec<&str> = [
        "河水变绿发黑，鱼虾都没了",
        "工厂晚上往河里放黄水",
        "空气里一股化学品味道",
    ]
    .into_iter()
    .filter(|b| vocabulary.classify("", b).0 == UNCLASSIFIED)
    .filter(|b| configured.classify("", b).0 == "生态环境")
    .collect();
    assert!(!placed.is_empty(), "the model placed none");
    let lazy = super::lazy_taxonomy_model(tax.clone(), 0.34);
    for (title, body) in [("拖欠工资", "包工头拖欠农民工工资三个月"), ("你好", "谢谢")]
    {
        assert_eq!(lazy.classify(title, body), c.classify(title, body));
    }
}

/// Mapped accuracy on train.csv (every third row) and the share left unclassified.
fn mapped_accuracy(classify: impl Fn(&str, &str) -> String) -> (f64, f64) {
    let sample: Vec<&Example> = labeled().iter().step_by(3).collect();
    let (mut correct, mut unclassified) = (0, 0);
    for r in &sample {
        let label = r.label.as_deref().unwrap_or("");
        let allowed = SEVEN_TO_TEN
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, d)| *d)
            .unwrap_or_else(|| panic!("unmapped label {label}"));
        let got = classify(&r.title, &r.body);
        correct += usize::from(allowed.contains(&got.as_str()));
        unclassified += usize::from(got == UNCLASSIFIED);
    }
    let n = sample.len() as f64;
    (correct as f64 / n, unclassified as f64 / n)
}

#[test]
fn the_taxonomy_model_does_better_than_matching_the_vocabulary_terms() {
    // The baseline: the vocabulary scorer (`[engine] classifier = "vocabulary"`).
    let tax = Taxonomy::builtin();
    let keywords = crate::engine::taxonomy::KeywordClassifier::new(&tax, 0.34);
    let by_terms = |title: &str, body: &str| keywords.classify(title, body).0;
    let model = super::taxonomy_model(&tax, 0.34);
    // Real messages (their seven categories mapped to the domains, only to evaluate).
    let (base, base_u) = mapped_accuracy(by_terms);
    let (acc, acc_u) = mapped_accuracy(|t, b| model.classify(t, b).0);
    eprintln!("real: terms {base:.3} ({base_u:.3} unclassified), model {acc:.3} ({acc_u:.3})");
    assert!(acc > base + 0.01, "model {acc:.3} against terms {base:.3}");
    assert!(
        acc_u < base_u,
        "unclassified {acc_u:.3} against {base_u:.3}"
    );
    // Generated complaints, against the domain the simulator wrote them for.
    let sim = crate::sim::SimConfig {
        seed: 7,
        size: 1500,
        ..crate::sim::SimConfig::default()
    };
    let corpus = crate::sim::corpus::corpus(&sim).expect("simulated corpus");
    let n = corpus.complaints.len() as f64;
    let hits = |f: &dyn Fn(&str, &str) -> String| {
        corpus
            .complaints
            .iter()
            .filter(|c| f(&c.title, &c.content) == c.domain)
            .count() as f64
            / n
    };
    let (base, acc) = (hits(&by_terms), hits(&|t, b| model.classify(t, b).0));
    eprintln!("simulated: terms {base:.3}, model {acc:.3}");
    assert!(acc > base + 0.01, "model {acc:.3} against terms {base:.3}");
}

/// A small ten-domain model: the taxonomy model's recipe on the built-in taxonomy, quick settings.
fn ten_domain_model() -> LinearModel {
    weak::train_weak(
        &Taxonomy::builtin(),
        &[],
        &[],
        &WeakConfig::default(),
        &quick_config(),
        &ProgressBar::hidden(),
    )
    .0
}

#[tokio::test]
async fn engine_workers_switch_to_a_published_version_at_a_batch_boundary_and_refuse_a_bad_one() {
    use crate::engine::{Engine, RawInput};
    let dir = temp_path("model-dir");
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = crate::engine::test_config();
    cfg.engine.classifier = crate::config::DefaultClassifier::Vocabulary;
    cfg.engine.model_dir = Some(dir.clone());
    let raw = |i: usize| {
        let v = serde_json::json!({"channel": "hotline", "source_id": format!("M{i}"),
            "fetched_at": "2026-11-02T08:00:00+08:00", "position": {},
            "payload": {"call_time": "2026-11-01 09:00:00", "content": format!("包工头拖欠农民工工资三个月了，第{i}次反映")}});
        RawInput {
            key: None,
            value: serde_json::to_vec(&v).expect("json"),
            origin: format!("test/{i}"),
        }
    };
    let versions = |out: &[crate::record::Complaint]| -> Vec<String> {
        out.iter()
            .map(|c| c.classifier_version.clone().unwrap_or_default())
            .collect()
    };
    // No version published yet: the configured classifier serves, and says so on each complaint.
    let mut engine = Engine::new(&cfg).expect("engine");
    let out = engine.process(&[raw(0), raw(1)]).await.expect("batch");
    assert_eq!(versions(&out.complaints), vec!["vocabulary"; 2]);
    // A model of other labels than the domains (train.csv's seven categories) is refused.
    let seven = super::registry::publish(&dir, small_model()).expect("publish");
    let out = engine.process(&[raw(2)]).await.expect("batch");
    assert_eq!(
        versions(&out.complaints),
        vec!["vocabulary"],
        "{seven} refused"
    );
    // A published ten-domain version is taken up at the next batch, by a running engine.
    let v1 = super::registry::publish(&dir, &ten_domain_model()).expect("publish");
    let out = engine.process(&[raw(10), raw(11)]).await.expect("batch");
    assert_eq!(versions(&out.complaints), vec![v1.clone(); 2]);
    assert_eq!(out.complaints[0].domain, "劳动保障");
    // A corrupt file is refused: the version in use stays.
    let bad = "v-broken";
    std::fs::write(dir.join(format!("{bad}.model")), b"DUBANCLS garbage").expect("write");
    super::registry::point_current(&dir, bad).expect("point");
    let out = engine.process(&[raw(12)]).await.expect("batch");
    assert_eq!(versions(&out.complaints), vec![v1.clone()]);
    // So is a CURRENT naming a missing file; then a good version is taken up again.
    super::registry::point_current(&dir, "v-missing").expect("point");
    let out = engine.process(&[raw(13)]).await.expect("batch");
    assert_eq!(versions(&out.complaints), vec![v1.clone()]);
    let v2 =
        super::registry::publish(&dir, &ten_domain_model().with_neighbours(None)).expect("publish");
    assert_ne!(v1, v2);
    let out = engine.process(&[raw(14), raw(15)]).await.expect("batch");
    assert_eq!(versions(&out.complaints), vec![v2.clone(); 2]);
    // A new engine starts with the folder's current version.
    let mut fresh = Engine::new(&cfg).expect("engine");
    let out = fresh.process(&[raw(16)]).await.expect("batch");
    assert_eq!(versions(&out.complaints), vec![v2]);
    std::fs::remove_dir_all(&dir).ok();
}
