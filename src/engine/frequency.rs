//! Abnormal-frequency statistics (单人投诉明显超出正常频次): the `[frequency]` configuration and,
//! per horizon, the population's histogram of counts and the test a complainant's count must pass.
//! Pure statistics: a zero-truncated Poisson tail with a Bonferroni correction over the population
//! and the horizons, plus a robust modified z-score; no I/O. The state lives in `people.rs`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Thresholds of the frequency rule (`[frequency]` in config/duban.toml).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FrequencyConfig {
    /// Sliding windows (horizons), in days, each judged against the population at that horizon.
    /// Default 30, 90 and 365.
    pub horizons_days: Vec<i64>,
    /// How long a complainant's filings are kept (their times and text sketches): resubmissions
    /// are linked to filings this old, and the longest horizon is counted over them. At least the
    /// longest horizon. Default 365.
    pub retention_days: i64,
    /// Estimated Jaccard similarity (character 3-grams of the body) from which a complainant's
    /// filing is a resubmission of one of their earlier filings. Default 0.25.
    pub resubmission_similarity: f64,
    /// Estimated Jaccard similarity from which a resubmission within the shortest horizon is a
    /// copy, counted once (below it, a re-filing in other words counts as a filing). Default 0.5.
    pub copy_similarity: f64,
    /// Never flag fewer complaints than this in a window. Default 5.
    pub min_complaints: u32,
    /// Family-wise false-alarm rate over the population and the horizons (Bonferroni).
    /// Default 0.05.
    pub alpha: f64,
    /// The baseline's Poisson λ is the mean count of the ordinary complainants: those within
    /// `median + baseline_fence_z × scale` at the horizon (the busy few under test do not raise
    /// the baseline they are judged against). Default 1.5.
    pub baseline_fence_z: f64,
    /// Minimum modified z-score (median/MAD; mean absolute deviation when MAD is 0). Default 3.5.
    pub min_z: f64,
    /// Do not judge before this many complainants are known (the baseline is unstable). Default 30.
    pub min_population: usize,
}

impl Default for FrequencyConfig {
    fn default() -> Self {
        FrequencyConfig {
            horizons_days: vec![30, 90, 365],
            retention_days: 365,
            resubmission_similarity: 0.25,
            copy_similarity: 0.5,
            min_complaints: 5,
            alpha: 0.05,
            baseline_fence_z: 1.5,
            min_z: 3.5,
            min_population: 30,
        }
    }
}

impl FrequencyConfig {
    /// The horizons, each at least a day, shortest first, without repeats (at least one).
    pub fn horizons(&self) -> Vec<i64> {
        let mut h: Vec<i64> = self.horizons_days.iter().map(|d| (*d).max(1)).collect();
        h.sort_unstable();
        h.dedup();
        if h.is_empty() {
            h.push(30);
        }
        h
    }

    /// Days filings are kept: the retention, at least the longest horizon.
    pub fn retention(&self) -> i64 {
        let longest = self.horizons().last().copied().unwrap_or(1);
        self.retention_days.max(longest)
    }
}

/// ln(k!) by summation (small k) or Stirling's series.
fn ln_factorial(k: u32) -> f64 {
    if k < 64 {
        (2..=k).map(|i| f64::from(i).ln()).sum()
    } else {
        let n = f64::from(k);
        n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
            - 1.0 / (360.0 * n.powi(3))
    }
}

/// P(X ≥ c) for X ~ Poisson(λ), summed from c upward (no cancellation for large c).
pub fn poisson_tail(lambda: f64, c: u32) -> f64 {
    if c == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    let mut term = (-lambda + f64::from(c) * lambda.ln() - ln_factorial(c)).exp();
    let mut sum = 0.0;
    let mut k = c;
    while term > sum * 1e-16 && k < c + 10_000 {
        sum += term;
        k += 1;
        term *= lambda / f64::from(k);
    }
    sum.min(1.0)
}

/// P(X ≥ c | X ≥ 1): every complainant we know filed at least once.
pub fn truncated_poisson_tail(lambda: f64, c: u32) -> f64 {
    let p0 = (-lambda).exp();
    if c <= 1 {
        return 1.0;
    }
    (poisson_tail(lambda, c) / (1.0 - p0)).min(1.0)
}

/// The population's counts at one horizon (each complainant's most distinct complaints in any
/// window of that many days), as a histogram.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    counts: BTreeMap<u32, u64>,
    sum: u64,
}

/// What a count is judged against at one horizon: the Poisson λ (the mean count of the ordinary
/// complainants: those within `median + fence_z × scale`), the median and robust scale, and the
/// population size.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Baseline {
    pub lambda: f64,
    pub median: f64,
    pub scale: f64,
    pub n: u64,
}

/// A count's judgement at one horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub flagged: bool,
    /// P(X ≥ count | X ≥ 1) under the baseline (before the correction).
    pub p_value: f64,
    pub z_score: f64,
}

impl Histogram {
    pub fn add(&mut self, v: u32) {
        *self.counts.entry(v).or_default() += 1;
        self.sum += u64::from(v);
    }

    pub fn remove(&mut self, v: u32) {
        if let Some(c) = self.counts.get_mut(&v) {
            *c -= 1;
            if *c == 0 {
                self.counts.remove(&v);
            }
            self.sum -= u64::from(v);
        }
    }

    /// Complainants counted.
    pub fn n(&self) -> u64 {
        self.counts.values().sum()
    }

    /// (value, complainants) pairs, smallest value first.
    pub fn entries(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (*k, *v))
    }

    fn median_of(hist: &BTreeMap<u32, f64>, n: f64) -> f64 {
        let mut acc = 0.0;
        for (v, c) in hist {
            acc += c;
            if acc >= n / 2.0 {
                return f64::from(*v);
            }
        }
        0.0
    }

    /// λ = mean count of the complainants within `median + fence_z × scale`, median, robust
    /// scale (MAD; mean absolute deviation when MAD is 0).
    pub fn baseline(&self, fence_z: f64) -> Baseline {
        let n = self.n();
        if n == 0 {
            return Baseline::default();
        }
        let nf = n as f64;
        let h: BTreeMap<u32, f64> = self.counts.iter().map(|(k, v)| (*k, *v as f64)).collect();
        let median = Self::median_of(&h, nf);
        // MAD over integer deviations, times 2 to keep half-steps (deviations are |v - median|).
        let mut dev: BTreeMap<u32, f64> = BTreeMap::new();
        let mut mean_ad = 0.0;
        for (v, c) in &h {
            let d = (f64::from(*v) - median).abs();
            *dev.entry((d * 2.0) as u32).or_default() += c;
            mean_ad += d * c;
        }
        mean_ad /= nf;
        let mad = Self::median_of(&dev, nf) / 2.0;
        let scale = if mad > 0.0 {
            mad / 0.6745
        } else {
            1.253_314 * mean_ad
        };
        let fence = median + fence_z * scale;
        let (mut in_sum, mut in_n) = (0.0, 0.0);
        for (v, c) in h.iter().filter(|(v, _)| f64::from(**v) <= fence) {
            in_sum += f64::from(*v) * c;
            in_n += c;
        }
        let lambda = if in_n > 0.0 {
            in_sum / in_n
        } else {
            self.sum as f64 / nf
        };
        Baseline {
            lambda,
            median,
            scale,
            n,
        }
    }
}

impl Baseline {
    /// Judge `count` against this baseline when `tests` hypotheses are tested in all (the whole
    /// population times the horizons: Bonferroni).
    pub fn judge(&self, cfg: &FrequencyConfig, count: u32, tests: f64) -> Verdict {
        let tail = truncated_poisson_tail(self.lambda, count);
        let z = if self.scale > 0.0 {
            (f64::from(count) - self.median) / self.scale
        } else {
            f64::INFINITY
        };
        let flagged = self.n as usize >= cfg.min_population
            && count >= cfg.min_complaints
            && tail * tests <= cfg.alpha
            && z >= cfg.min_z;
        Verdict {
            flagged,
            p_value: tail,
            z_score: if z.is_finite() { z } else { f64::MAX },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_matches_direct_sums() {
        let direct = |l: f64, c: u32| {
            1.0 - (0..c)
                .map(|k| (-l).exp() * l.powi(k as i32) / (1..=k).map(f64::from).product::<f64>())
                .sum::<f64>()
        };
        for (l, c) in [(1.0, 3), (2.5, 5), (0.5, 1), (4.0, 10)] {
            assert!(
                (poisson_tail(l, c) - direct(l, c)).abs() < 1e-12,
                "λ={l} c={c}"
            );
        }
        assert!(poisson_tail(1.1, 92) < 1e-100);
        assert!(poisson_tail(1.1, 92) > 0.0);
        assert_eq!(truncated_poisson_tail(1.0, 1), 1.0);
    }

    fn histogram(counts: &[(usize, u32)]) -> Histogram {
        let mut h = Histogram::default();
        for (people, each) in counts {
            for _ in 0..*people {
                h.add(*each);
            }
        }
        h
    }

    #[test]
    fn the_outlier_is_flagged_not_the_ordinary_busy() {
        let cfg = FrequencyConfig::default();
        // 300 people file once, 40 twice, 5 three times, one six times, one twenty times.
        let h = histogram(&[(300, 1), (40, 2), (5, 3), (1, 6), (1, 20)]);
        let b = h.baseline(cfg.baseline_fence_z);
        // The busy do not raise λ: with MAD 0 and a small mean deviation, only the 300 who filed
        // once are within the fence.
        assert_eq!((b.lambda, b.median), (1.0, 1.0), "{b:?}");
        let tests = h.n() as f64 * 3.0;
        let flagged: Vec<u32> = [1, 2, 3, 6, 20]
            .into_iter()
            .filter(|c| b.judge(&cfg, *c, tests).flagged)
            .collect();
        assert_eq!(flagged, vec![20]);
        // More tests (a larger population elsewhere, more horizons) ask for stronger evidence.
        let p = b.judge(&cfg, 6, tests).p_value;
        assert!(p > 0.0 && p < 0.01, "{p}");
        assert!(!b.judge(&cfg, 20, 1e30).flagged);
    }

    #[test]
    fn no_judgement_on_a_tiny_population_and_removal_restores() {
        let cfg = FrequencyConfig::default();
        let mut h = histogram(&[(3, 1), (1, 30)]);
        assert!(
            !h.baseline(cfg.baseline_fence_z)
                .judge(&cfg, 30, 4.0)
                .flagged
        );
        h.remove(30);
        h.add(2);
        assert_eq!(h, histogram(&[(3, 1), (1, 2)]));
        assert_eq!(h.entries().collect::<Vec<_>>(), vec![(1, 3), (2, 1)]);
    }

    #[test]
    fn horizons_are_sorted_and_retention_covers_the_longest() {
        let cfg = FrequencyConfig {
            horizons_days: vec![365, 30, 0, 30],
            retention_days: 100,
            ..FrequencyConfig::default()
        };
        assert_eq!(cfg.horizons(), vec![1, 30, 365]);
        assert_eq!(cfg.retention(), 365);
        let none = FrequencyConfig {
            horizons_days: vec![],
            ..FrequencyConfig::default()
        };
        assert_eq!(none.horizons(), vec![30]);
    }
}
