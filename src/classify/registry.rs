//! Model versions without a restart: a folder of published models (`duban train --publish DIR`
//! writes `DIR/<version>.model`, then points `DIR/CURRENT` at it), and the engine's slot that
//! switches to the newest good version at a batch boundary and keeps the old one when a new file
//! is refused.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::model::LinearModel;
use crate::engine::taxonomy::DomainClassifier;

/// The file in a model folder naming its current version.
pub const CURRENT: &str = "CURRENT";

/// A classifier with the version recorded on every complaint it classifies.
pub struct Versioned {
    pub version: String,
    pub classifier: Arc<dyn DomainClassifier>,
}

/// The version name of a model file's bytes: `stem`, then its checksum (the file's last 8
/// bytes) in hex; `|` (the engine's column separator) becomes `_`.
pub fn version_of(stem: &str, bytes: &[u8]) -> String {
    let sum = bytes
        .len()
        .checked_sub(8)
        .and_then(|at| bytes[at..].try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or_default();
    format!("{}-{:08x}", stem.replace('|', "_"), sum as u32)
}

/// Publish `model` into `dir`: `DIR/<version>.model` (version `v<UTC time>-<checksum>`), then
/// `DIR/CURRENT` replaced atomically. Returns the version.
pub fn publish(dir: &Path, model: &LinearModel) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bytes = model.to_bytes();
    // What the engine will refuse is never published.
    LinearModel::from_bytes(&bytes).context("the trained model does not read back")?;
    let stamp = chrono::Utc::now().format("v%Y%m%dT%H%M%S%3f");
    let version = version_of(&stamp.to_string(), &bytes);
    let file = dir.join(format!("{version}.model"));
    let tmp = dir.join(format!("{version}.model.tmp"));
    std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))?;
    point_current(dir, &version)?;
    Ok(version)
}

/// Point `DIR/CURRENT` at `version` (atomically: written aside, then renamed).
pub fn point_current(dir: &Path, version: &str) -> Result<()> {
    let tmp = dir.join(format!("{CURRENT}.tmp"));
    std::fs::write(&tmp, format!("{version}\n"))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(CURRENT))
        .with_context(|| format!("cannot update {}", dir.join(CURRENT).display()))
}

/// The version `DIR/CURRENT` names (None: no such file yet).
fn current_name(dir: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(dir.join(CURRENT)) {
        Ok(s) => {
            let v = s.trim();
            if v.is_empty() || v.contains(['/', '\\']) || v.starts_with('.') {
                bail!("{}: not a version name", dir.join(CURRENT).display());
            }
            Ok(Some(v.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.join(CURRENT).display())),
    }
}

/// Load `DIR/<version>.model` as the engine's classifier; a model with a label outside
/// `domains` (when given) is refused.
fn load_version(
    dir: &Path,
    version: &str,
    min_confidence: f64,
    domains: &[String],
) -> Result<Versioned> {
    let path = dir.join(format!("{version}.model"));
    let model = LinearModel::load(&path)?;
    if let Some(l) = model
        .labels
        .iter()
        .find(|l| !domains.is_empty() && !domains.contains(l))
    {
        bail!(
            "{}: label `{l}` is not a domain of the taxonomy",
            path.display()
        );
    }
    super::features::jieba();
    let classifier =
        super::TrainedClassifier::new(model, min_confidence).with_version(version.to_string());
    Ok(Versioned {
        version: version.to_string(),
        classifier: Arc::new(classifier),
    })
}

/// The engine's classifier: the version pinned for the batch being normalized, and where newer
/// versions come from. Every complaint of a batch is classified by the same version.
pub struct ModelSlot {
    pinned: RwLock<Arc<Versioned>>,
    dir: Option<PathBuf>,
    min_confidence: f64,
    /// The labels a version may have (the taxonomy's domains; empty: any).
    domains: Vec<String>,
    /// The last `CURRENT` seen (a refused version is not retried until `CURRENT` changes).
    seen: Mutex<Option<String>>,
}

impl ModelSlot {
    /// A slot that never changes.
    pub fn fixed(v: Versioned) -> Arc<ModelSlot> {
        Arc::new(ModelSlot {
            pinned: RwLock::new(Arc::new(v)),
            dir: None,
            min_confidence: 0.0,
            domains: Vec::new(),
            seen: Mutex::new(None),
        })
    }

    /// A slot following the model folder `dir`: its current version if there is a good one
    /// (labels among `domains`), else `fallback` until one is published.
    pub fn watching(
        dir: &Path,
        fallback: Versioned,
        min_confidence: f64,
        domains: Vec<String>,
    ) -> Arc<ModelSlot> {
        let slot = Arc::new(ModelSlot {
            pinned: RwLock::new(Arc::new(fallback)),
            dir: Some(dir.to_path_buf()),
            min_confidence,
            domains,
            seen: Mutex::new(None),
        });
        slot.pin();
        slot
    }

    /// The version the current batch uses.
    pub fn current(&self) -> Arc<Versioned> {
        self.pinned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// At a batch boundary: switch to the folder's current version if it changed and loads; a
    /// file that does not load is refused (one warning naming it) and the pinned version stays.
    pub fn pin(&self) -> Arc<Versioned> {
        let Some(dir) = &self.dir else {
            return self.current();
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let name = match current_name(dir) {
            Ok(n) => n,
            Err(e) => {
                // Warn once per broken state, not once per batch.
                let key = Some(format!("!{e}"));
                if *seen != key {
                    *seen = key;
                    self.refuse(None, &e);
                }
                return self.current();
            }
        };
        if name.is_none() || *seen == name {
            return self.current();
        }
        seen.clone_from(&name);
        drop(seen);
        let Some(name) = name else {
            return self.current();
        };
        match load_version(dir, &name, self.min_confidence, &self.domains) {
            Ok(v) => {
                let v = Arc::new(v);
                tracing::info!(target: "duban::engine", version = %v.version, "classifier model switched");
                *self.pinned.write().unwrap_or_else(|e| e.into_inner()) = v.clone();
                v
            }
            Err(e) => {
                self.refuse(Some(&name), &e);
                self.current()
            }
        }
    }

    fn refuse(&self, name: Option<&str>, e: &anyhow::Error) {
        tracing::warn!(target: "duban::engine", refused = name.unwrap_or("?"), keeps = %self.current().version, "classifier model refused, the current one is kept: {e:#}");
    }
}

impl DomainClassifier for ModelSlot {
    fn classify(&self, title: &str, body: &str) -> (String, f64) {
        self.current().classifier.classify(title, body)
    }

    fn version(&self) -> String {
        self.current().version.clone()
    }

    fn probabilities(&self, title: &str, body: &str) -> Option<Vec<f32>> {
        self.current().classifier.probabilities(title, body)
    }

    fn refresh(&self) {
        self.pin();
    }

    fn labels(&self) -> Vec<String> {
        self.current().classifier.labels()
    }

    fn classify_versioned(&self, title: &str, body: &str) -> (String, f64, String) {
        let v = self.current();
        let (d, c) = v.classifier.classify(title, body);
        (d, c, v.version.clone())
    }
}
