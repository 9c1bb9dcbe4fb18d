//! The trained linear model: per-bucket idf and class weights, softmax confidence, and the
//! versioned binary model file (`DUBANCLS` format, documented below and in README "Classification").
//!
//! File layout (all integers and floats little-endian):
//!
//! ```text
//! magic        8 bytes  "DUBANCLS"
//! version      u32      FORMAT_VERSION (2; version 1 files, without neighbours, still load)
//! header_len   u32      length of the JSON header in bytes
//! header       JSON     ModelHeader: labels, feature config, bias, temperature, training info
//! rows         header.rows × (bucket u32, idf f32, weight f32 × labels.len())
//!                       only buckets seen in training (idf > 0), ascending bucket order
//! neighbours            only when header.neighbours is set (see `knn::Neighbours::write`):
//!                       pool_rows × class u32, then per indexed bucket ascending:
//!                       bucket u32, postings u32, postings × (pool row u32, value f32)
//! checksum     u64      FNV-1a 64 of every byte before it
//! ```

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::util::mem::prefetch;

use super::features::{FeatureConfig, Featurizer, HASH_VERSION, OLDEST_HASH_VERSION, Scratch};
use super::knn::{KnnHeader, Neighbours};

pub const MAGIC: &[u8; 8] = b"DUBANCLS";
pub const FORMAT_VERSION: u32 = 2;

/// The oldest model format this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// How a model was made (for humans and for `duban eval`; not used to score).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainInfo {
    /// `supervised` (labeled CSV) or `weak` (taxonomy vocabulary, with unlabeled messages from
    /// `duban train --weak`, without them for the engine's taxonomy model).
    pub kind: String,
    pub seed: u64,
    /// Labeled (or seed-labeled) rows, and pseudo-labeled rows added by self-training.
    pub rows: usize,
    pub pseudo_rows: usize,
    pub c: f32,
    pub epochs: usize,
}

/// The JSON header of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelHeader {
    pub labels: Vec<String>,
    pub features: FeatureConfig,
    /// Per-class bias (intercept).
    pub bias: Vec<f32>,
    /// Confidence = softmax(temperature × margins).
    pub temperature: f32,
    /// Number of stored rows.
    pub rows: usize,
    pub trained: TrainInfo,
    /// The nearest-neighbour index after the weight rows (format version 2), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbours: Option<KnnHeader>,
}

/// A one-vs-rest linear model over hashed tf-idf features. `table` holds, per bucket, the idf
/// followed by one weight per class, so scoring touches one cache line per feature.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub labels: Vec<String>,
    pub featurizer: Featurizer,
    pub bias: Vec<f32>,
    pub temperature: f32,
    pub trained: TrainInfo,
    table: Vec<f32>,
    /// Neighbour votes added to the margins (`knn`), if trained with them.
    pub neighbours: Option<Neighbours>,
}

/// Sublinear term frequency that keeps the sign of a signed-hashed count.
#[inline]
pub fn sublinear(c: f32) -> f32 {
    let a = c.abs();
    if a > 1.0 {
        c.signum() * (1.0 + a.ln())
    } else {
        c
    }
}

impl LinearModel {
    /// `idf[b]` (0 = bucket unseen in training) and `weights[b * K + k]`.
    pub fn from_parts(
        labels: Vec<String>,
        features: FeatureConfig,
        idf: &[f32],
        weights: &[f32],
        bias: Vec<f32>,
        temperature: f32,
        trained: TrainInfo,
    ) -> LinearModel {
        let k = labels.len();
        let featurizer = Featurizer::new(features);
        let n = featurizer.buckets();
        assert_eq!(idf.len(), n);
        assert_eq!(weights.len(), n * k);
        let mut table = vec![0f32; n * (k + 1)];
        for b in 0..n {
            if idf[b] > 0.0 {
                table[b * (k + 1)] = idf[b];
                table[b * (k + 1) + 1..(b + 1) * (k + 1)]
                    .copy_from_slice(&weights[b * k..(b + 1) * k]);
            }
        }
        LinearModel {
            labels,
            featurizer,
            bias,
            temperature,
            trained,
            table,
            neighbours: None,
        }
    }

    /// The model with neighbour votes blended into its margins.
    pub fn with_neighbours(self, neighbours: Option<Neighbours>) -> LinearModel {
        LinearModel { neighbours, ..self }
    }

    /// (bucket, idf, one weight per class) of every bucket seen in training, ascending.
    pub fn weight_rows(&self) -> impl Iterator<Item = (usize, f32, &[f32])> {
        let stride = self.labels.len() + 1;
        self.table
            .chunks_exact(stride)
            .enumerate()
            .filter(|(_, r)| r[0] > 0.0)
            .map(|(b, r)| (b, r[0], &r[1..]))
    }

    pub fn num_classes(&self) -> usize {
        self.labels.len()
    }

    /// Margins per class of one complaint, or `None` if none of its features was seen in training.
    pub fn margins(&self, title: &str, body: &str, scratch: &mut Scratch) -> Option<Vec<f32>> {
        self.featurizer.featurize(title, body, scratch);
        self.margins_of(scratch.entries()).map(|(m, _)| m)
    }

    /// Margins (neighbour votes included) and the number of known features, from raw signed
    /// counts per bucket (as `Featurizer` produces them).
    pub fn margins_of(
        &self,
        entries: impl Iterator<Item = (u32, f32)> + Clone,
    ) -> Option<(Vec<f32>, usize)> {
        let k = self.labels.len();
        let stride = k + 1;
        let mut acc = vec![0f32; k];
        let mut norm2 = 0f32;
        let mut known = 0usize;
        // Rows are at hashed positions in a table larger than the cache: load them `AHEAD`
        // entries early so the misses overlap.
        const AHEAD: usize = 8;
        let row_start = |b: u32| self.table.get(b as usize * stride);
        entries
            .clone()
            .take(AHEAD)
            .filter_map(|(b, _)| row_start(b))
            .for_each(prefetch);
        let mut ahead = entries.clone().skip(AHEAD);
        for (b, c) in entries.clone() {
            if let Some(x) = ahead.next().and_then(|(a, _)| row_start(a)) {
                prefetch(x);
            }
            let row = &self.table[b as usize * stride..(b as usize + 1) * stride];
            let idf = row[0];
            if idf == 0.0 {
                continue;
            }
            let v = sublinear(c) * idf;
            norm2 += v * v;
            known += 1;
            for (a, w) in acc.iter_mut().zip(&row[1..]) {
                *a += v * w;
            }
        }
        if norm2 <= 0.0 {
            return None;
        }
        let inv = 1.0 / norm2.sqrt();
        let mut m: Vec<f32> = acc
            .iter()
            .zip(&self.bias)
            .map(|(a, b)| a * inv + b)
            .collect();
        if let Some(n) = &self.neighbours {
            let q = entries.filter_map(|(b, c)| {
                let idf = self.table[b as usize * stride];
                (idf != 0.0).then(|| (b, sublinear(c) * idf * inv))
            });
            n.add_votes(q, &mut m);
        }
        Some((m, known))
    }

    /// (best class, confidence) from raw counts; `None` if no feature was seen in training.
    /// Confidence = softmax probability × evidence discount (see `evidence`).
    pub fn predict_raw(&self, raw: &[(u32, f32)]) -> Option<(usize, f32)> {
        self.predict_entries(raw.iter().copied())
    }

    fn predict_entries(
        &self,
        entries: impl Iterator<Item = (u32, f32)> + Clone,
    ) -> Option<(usize, f32)> {
        let (m, known) = self.margins_of(entries)?;
        let (c, p) = argmax(&softmax(&m, self.temperature));
        Some((c, p * evidence(known)))
    }

    /// Class probabilities (softmax of temperature-scaled margins, no evidence discount);
    /// `None` for featureless text.
    pub fn probabilities(
        &self,
        title: &str,
        body: &str,
        scratch: &mut Scratch,
    ) -> Option<Vec<f32>> {
        self.margins(title, body, scratch)
            .map(|m| softmax(&m, self.temperature))
    }

    /// (best class index, confidence), or `None` for featureless text.
    pub fn predict(&self, title: &str, body: &str, scratch: &mut Scratch) -> Option<(usize, f32)> {
        self.featurizer.featurize(title, body, scratch);
        self.predict_entries(scratch.entries())
    }

    /// Serialize to the `DUBANCLS` format (version 2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let k = self.labels.len();
        let stride = k + 1;
        let rows: Vec<usize> = (0..self.featurizer.buckets())
            .filter(|&b| self.table[b * stride] > 0.0)
            .collect();
        let header = ModelHeader {
            labels: self.labels.clone(),
            features: self.featurizer.config.clone(),
            bias: self.bias.clone(),
            temperature: self.temperature,
            rows: rows.len(),
            trained: self.trained.clone(),
            neighbours: self.neighbours.as_ref().map(Neighbours::header),
        };
        let json = serde_json::to_vec(&header).expect("model header serializes");
        let mut out = Vec::with_capacity(24 + json.len() + rows.len() * (4 + 4 * stride));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        for b in rows {
            out.extend_from_slice(&(b as u32).to_le_bytes());
            for v in &self.table[b * stride..(b + 1) * stride] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        if let Some(n) = &self.neighbours {
            n.write(&mut out);
        }
        let sum = crate::ids::fnv1a64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parse the `DUBANCLS` format; errors say what is wrong (the caller adds the file name).
    pub fn from_bytes(bytes: &[u8]) -> Result<LinearModel> {
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            bail!("not a duban classifier model (missing DUBANCLS magic)");
        }
        if bytes.len() < 24 {
            bail!("truncated model file");
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into()?);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            bail!(
                "model format version {version} is not supported (this duban reads versions \
                 {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
            );
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if crate::ids::fnv1a64(body) != u64::from_le_bytes(sum.try_into()?) {
            bail!("checksum mismatch: the model file is corrupt or truncated");
        }
        let hlen = u32::from_le_bytes(body[12..16].try_into()?) as usize;
        let hend = 16usize
            .checked_add(hlen)
            .filter(|&e| e <= body.len())
            .context("header length exceeds file size")?;
        let header: ModelHeader =
            serde_json::from_slice(&body[16..hend]).context("invalid model header")?;
        if !(OLDEST_HASH_VERSION..=HASH_VERSION).contains(&header.features.hash_version) {
            bail!(
                "model uses feature hash version {}, this duban reads versions \
                 {OLDEST_HASH_VERSION} to {HASH_VERSION}",
                header.features.hash_version
            );
        }
        if !(8..=26).contains(&header.features.buckets_log2) {
            bail!("invalid bucket count 2^{}", header.features.buckets_log2);
        }
        let k = header.labels.len();
        if k < 2 || header.bias.len() != k {
            bail!("model needs at least two labels and one bias per label");
        }
        let stride = k + 1;
        let row_bytes = 4 + 4 * stride;
        let data = &body[hend..];
        let weight_bytes = header.rows * row_bytes;
        // Weight rows fill the rest of the file, unless the neighbour index follows them.
        let fits = match header.neighbours {
            None => data.len() == weight_bytes,
            Some(_) => data.len() >= weight_bytes,
        };
        if !fits {
            bail!(
                "expected {} weight rows, found {} bytes",
                header.rows,
                data.len()
            );
        }
        let (data, index) = data.split_at(weight_bytes);
        let featurizer = Featurizer::new(header.features);
        let n = featurizer.buckets();
        let mut table = vec![0f32; n * stride];
        for row in data.chunks_exact(row_bytes) {
            let b = u32::from_le_bytes(row[..4].try_into()?) as usize;
            if b >= n {
                bail!("weight row for bucket {b} outside 0..{n}");
            }
            for (i, v) in row[4..].chunks_exact(4).enumerate() {
                table[b * stride + i] = f32::from_le_bytes(v.try_into()?);
            }
        }
        let neighbours = match &header.neighbours {
            Some(h) => Some(Neighbours::read(h, k, n, index).map_err(anyhow::Error::msg)?),
            None => None,
        };
        Ok(LinearModel {
            labels: header.labels,
            featurizer,
            bias: header.bias,
            temperature: header.temperature,
            trained: header.trained,
            table,
            neighbours,
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_bytes())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Load a model file; any problem is one line naming the file.
    pub fn load(path: &Path) -> Result<LinearModel> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read model: {e}", path.display()))?;
        LinearModel::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
    }
}

/// Known features at which the evidence discount is 1 − 1/e (≈ 0.63).
pub const EVIDENCE_FEATURES: f32 = 8.0;

/// Evidence discount of the confidence: 1 − exp(−known / EVIDENCE_FEATURES). l2-normalization
/// makes a two-character greeting look as decided as a long complaint; this keeps very short or
/// mostly unknown text below the `unclassified` threshold (a 300-character complaint has hundreds
/// of known features, so its discount is 1).
pub fn evidence(known: usize) -> f32 {
    1.0 - (-(known as f32) / EVIDENCE_FEATURES).exp()
}

pub fn softmax(m: &[f32], temperature: f32) -> Vec<f32> {
    let max = m.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = m.iter().map(|x| ((x - max) * temperature).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

pub fn argmax(v: &[f32]) -> (usize, f32) {
    v.iter().cloned().enumerate().fold(
        (0, f32::NEG_INFINITY),
        |a, (i, x)| if x > a.1 { (i, x) } else { a },
    )
}
