//! Abnormal-frequency complainants (单人投诉明显超出正常频次): per complainant, the most complaints
//! in any sliding window (resubmissions collapsed), judged against the whole population.
//! Pure state and statistics: a zero-truncated Poisson tail with a Bonferroni correction over the
//! population, plus a robust modified z-score; no I/O.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Thresholds of the frequency rule (`[frequency]` in config/duban.toml).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FrequencyConfig {
    /// Sliding window, in days. Default 30.
    pub window_days: i64,
    /// Never flag fewer complaints than this in a window. Default 5.
    pub min_complaints: u32,
    /// Family-wise false-alarm rate over the population (Bonferroni). Default 0.01.
    pub alpha: f64,
    /// Minimum modified z-score (median/MAD; mean absolute deviation when MAD is 0). Default 3.5.
    pub min_z: f64,
    /// Do not judge before this many complainants are known (the baseline is unstable). Default 30.
    pub min_population: usize,
}

impl Default for FrequencyConfig {
    fn default() -> Self {
        FrequencyConfig {
            window_days: 30,
            min_complaints: 5,
            alpha: 0.01,
            min_z: 3.5,
            min_population: 30,
        }
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

/// One complainant's history.
#[derive(Debug, Default, Clone)]
pub struct Person {
    /// Event times (Unix seconds) of distinct contents, sorted.
    times: Vec<i64>,
    /// Duplicate groups already counted (by `ids::complaint_key`): resubmissions count once.
    groups: HashSet<[u8; 16]>,
    pub complaint_ids: Vec<String>,
    pub domains: BTreeMap<String, u32>,
    pub issues: BTreeMap<String, u32>,
    pub districts: BTreeMap<String, u32>,
    /// Most distinct complaints in one window, and that window's first event time.
    pub max_window: u32,
    pub max_window_start: i64,
    pub flagged: bool,
    pub p_value: f64,
    pub z_score: f64,
    /// Distinct complaints (`times` holds only those since the complainant was last evicted).
    distinct: usize,
    /// Densest window among times no longer held, and its start.
    past_max: u32,
    past_max_start: i64,
    /// Latest event time.
    last_at: i64,
}

impl Person {
    /// Share of the top entry of a count map.
    pub fn focus(counts: &BTreeMap<String, u32>) -> Option<(String, f64)> {
        let total: u32 = counts.values().sum();
        counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, v)| (k.clone(), f64::from(*v) / f64::from(total.max(1))))
    }

    pub fn distinct(&self) -> usize {
        self.distinct
    }

    /// Drop the event history (kept: counts, the densest window, topic focus).
    fn trim(&mut self) {
        self.past_max = self.max_window;
        self.past_max_start = self.max_window_start;
        self.times = Vec::new();
        self.groups = HashSet::new();
    }
}

/// The population of complainants and its statistics.
#[derive(Debug, Default, Clone)]
pub struct Population {
    pub people: HashMap<String, Person>,
    /// Histogram of max-window counts over the population.
    hist: BTreeMap<u32, u64>,
    sum: u64,
    /// How many such populations make up the whole (the complainant partitions of an engine):
    /// each partition is a hash sample of the population, so its baseline estimates the
    /// whole's, and the multiple-testing correction counts everybody (`people × scale`).
    pub scale: usize,
    /// Complainants evicted after a window without complaints: their densest window (and its
    /// start) stays in the baseline and comes back if they complain again. Keyed by number.
    dormant: HashMap<u64, (u32, i64)>,
    /// Evicted complainants' summaries, kept only where asked (the in-process engine's snapshot
    /// tables); `None` in the Kafka workers, whose state is bounded by the window.
    pub archive: Option<HashMap<String, Person>>,
}

/// A pseudonym as a number (its base-62 digits), for the compact dormant set.
fn person_number(p: &str) -> u64 {
    crate::ids::pseudonym_number(p).unwrap_or_else(|| crate::ids::fnv1a64(p.as_bytes()))
}

impl Population {
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

    /// (λ = mean max-window count, median, robust scale) of the population.
    pub fn baseline(&self) -> (f64, f64, f64) {
        let n: u64 = self.hist.values().sum();
        if n == 0 {
            return (0.0, 0.0, 0.0);
        }
        let nf = n as f64;
        let lambda = self.sum as f64 / nf;
        let h: BTreeMap<u32, f64> = self.hist.iter().map(|(k, v)| (*k, *v as f64)).collect();
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
        (lambda, median, scale)
    }

    /// Record one complaint of `person`; returns true when the person's flag or window changed.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        cfg: &FrequencyConfig,
        person: &str,
        complaint_id: &str,
        group: &str,
        at: i64,
        domain: &str,
        issue: Option<&str>,
        district: Option<&str>,
    ) -> bool {
        let mut revived = false;
        if !self.people.contains_key(person)
            && let Some((max, start)) = self.dormant.remove(&person_number(person))
        {
            revived = true;
            // Back after an eviction: the history's summary and densest window come back.
            let mut p = self
                .archive
                .as_mut()
                .and_then(|a| a.remove(person))
                .unwrap_or_default();
            (p.max_window, p.max_window_start) = (max, start);
            p.trim();
            self.people.insert(person.to_string(), p);
        }
        let first_time = !revived && !self.people.contains_key(person);
        let p = self.people.entry(person.to_string()).or_default();
        let old_max = p.max_window;
        p.last_at = if first_time { at } else { p.last_at.max(at) };
        p.complaint_ids.push(complaint_id.to_string());
        *p.domains.entry(domain.to_string()).or_default() += 1;
        if let Some(i) = issue {
            *p.issues.entry(i.to_string()).or_default() += 1;
        }
        if let Some(d) = district {
            *p.districts.entry(d.to_string()).or_default() += 1;
        }
        if p.groups.insert(crate::ids::complaint_key(group)) {
            p.distinct += 1;
            let pos = p.times.partition_point(|t| *t <= at);
            p.times.insert(pos, at);
            let w = cfg.window_days.max(1) * 86_400;
            let (mut best, mut best_start, mut j) = (p.past_max, p.past_max_start, 0usize);
            for i in 0..p.times.len() {
                while p.times[i] - p.times[j] >= w {
                    j += 1;
                }
                let n = (i - j + 1) as u32;
                if n > best {
                    best = n;
                    best_start = p.times[j];
                }
            }
            p.max_window = best;
            p.max_window_start = best_start;
        }
        let new_max = p.max_window;
        if !first_time {
            if let Some(c) = self.hist.get_mut(&old_max) {
                *c -= 1;
                if *c == 0 {
                    self.hist.remove(&old_max);
                }
            }
            self.sum -= u64::from(old_max);
        }
        *self.hist.entry(new_max).or_default() += 1;
        self.sum += u64::from(new_max);
        self.judge(cfg, person) || new_max != old_max
    }

    /// Evict complainants whose latest complaint is before `cutoff` (Unix seconds, from record
    /// times): their windows can no longer grow. They stay counted in the baseline (dormant).
    pub fn evict(&mut self, cutoff: i64) -> usize {
        let gone: Vec<String> = self
            .people
            .iter()
            .filter(|(_, p)| p.last_at < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            if let Some(mut p) = self.people.remove(k) {
                self.dormant
                    .insert(person_number(k), (p.max_window, p.max_window_start));
                if let Some(a) = self.archive.as_mut() {
                    p.trim();
                    a.insert(k.clone(), p);
                }
            }
        }
        gone.len()
    }

    /// Complainants known, evicted ones included.
    pub fn known(&self) -> usize {
        self.people.len() + self.dormant.len()
    }

    /// Re-evaluate one person's flag; returns true when it changed.
    pub fn judge(&mut self, cfg: &FrequencyConfig, person: &str) -> bool {
        let n = self.known();
        let (lambda, median, scale) = self.baseline();
        let Some(p) = self.people.get_mut(person) else {
            return false;
        };
        let c = p.max_window;
        let tail = truncated_poisson_tail(lambda, c);
        let z = if scale > 0.0 {
            (f64::from(c) - median) / scale
        } else {
            f64::INFINITY
        };
        let tests = n * self.scale.max(1);
        let flagged = n >= cfg.min_population
            && c >= cfg.min_complaints
            && tail * tests as f64 <= cfg.alpha
            && z >= cfg.min_z;
        p.p_value = tail;
        p.z_score = if z.is_finite() { z } else { f64::MAX };
        let changed = flagged != p.flagged;
        p.flagged = flagged;
        changed
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

    fn population(counts: &[(usize, u32)], cfg: &FrequencyConfig) -> Population {
        let mut pop = Population::default();
        let mut n = 0;
        for (people, each) in counts {
            for _ in 0..*people {
                n += 1;
                for k in 0..*each {
                    let id = format!("c{n}-{k}");
                    pop.observe(
                        cfg,
                        &format!("p{n}"),
                        &id,
                        &id,
                        1_700_000_000 + i64::from(k) * 3600,
                        "城市管理",
                        None,
                        None,
                    );
                }
            }
        }
        pop
    }

    #[test]
    fn flags_the_outlier_not_the_ordinary_busy() {
        let cfg = FrequencyConfig::default();
        // 300 people file once, 40 twice, 5 three times, one six times, one twenty times.
        let pop = population(&[(300, 1), (40, 2), (5, 3), (1, 6), (1, 20)], &cfg);
        let flagged: Vec<u32> = pop
            .people
            .values()
            .filter(|p| p.flagged)
            .map(|p| p.max_window)
            .collect();
        assert_eq!(flagged, vec![20]);
    }

    #[test]
    fn resubmissions_and_spread_out_complaints_do_not_count() {
        let cfg = FrequencyConfig {
            min_population: 1,
            ..FrequencyConfig::default()
        };
        let mut pop = Population::default();
        for k in 0..10 {
            // Ten copies of one text: one distinct complaint.
            pop.observe(
                &cfg,
                "p",
                &format!("c{k}"),
                "g",
                1_700_000_000 + k,
                "城市管理",
                Some("i1"),
                None,
            );
        }
        assert_eq!(pop.people["p"].max_window, 1);
        for k in 0..10 {
            // Ten texts 40 days apart: never two in one 30-day window.
            pop.observe(
                &cfg,
                "q",
                &format!("d{k}"),
                &format!("g{k}"),
                1_700_000_000 + k * 40 * 86_400,
                "城市管理",
                None,
                None,
            );
        }
        assert_eq!(pop.people["q"].max_window, 1);
        assert_eq!(
            Person::focus(&pop.people["p"].issues),
            Some(("i1".to_string(), 1.0))
        );
    }

    #[test]
    fn no_judgement_on_a_tiny_population() {
        let cfg = FrequencyConfig::default();
        let pop = population(&[(3, 1), (1, 30)], &cfg);
        assert!(pop.people.values().all(|p| !p.flagged));
    }
}
