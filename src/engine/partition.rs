//! Keyed, partitioned state and the deterministic order records are applied in.
//!
//! The engine's state is split like its Kafka topics: `n` issue-block partitions (dedup,
//! clustering, crowd alerts; a complaint goes to the partition of its district) and `n`
//! complainant partitions (frequency; an event goes to the partition of its pseudonym). Each
//! partition's state is a function of the sequence of records it applied. That sequence is fixed
//! by a total order over records, the [`Key`]: (timestamp, source partition, source offset) of
//! the raw record. A partition that receives records from several sources applies them in key
//! order through a [`Merger`], which releases a record only once every source has promised (by a
//! later record or a progress marker) that nothing smaller will come. So the output depends on
//! the raw topic's contents alone: not on batch boundaries, on which worker runs which partition,
//! on restarts, or on the interleaving in which sources' records reached a repartition topic.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::rules::{AnalyticState, BlockOutput, PersonEvent, Prepared, RuleContext};
use crate::config::DedupConfig;
use crate::record::{Alert, Complaint};

/// Position of a record in the engine's total order: (timestamp in ms, raw partition, raw
/// offset). Raw timestamps are made non-decreasing per raw partition, so keys increase along
/// every partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key(pub i64, pub i32, pub i64);

impl Key {
    pub const MIN: Key = Key(i64::MIN, i32::MIN, i64::MIN);

    /// The largest key below every key with timestamp `ts`.
    pub fn before_time(ts: i64) -> Key {
        Key(ts.saturating_sub(1), i32::MAX, i64::MAX)
    }
}

/// Stable partition of a key string (FNV-1a, the same in every process and version).
pub fn partition_of(key: &str, n: usize) -> usize {
    (crate::ids::fnv1a64(key.as_bytes()) % n.max(1) as u64) as usize
}

/// The issue block of a complaint (its district; the clustering's block).
pub fn block_of(c: &Complaint) -> &str {
    c.district.as_deref().unwrap_or("未知")
}

/// Deterministic merge of sources that each deliver items in increasing key order.
#[derive(Debug, Clone)]
pub struct Merger<T> {
    /// Per source: every item still to come from it has a key greater than this.
    pub claims: Vec<Key>,
    /// Items waiting for the other sources, with their input offset.
    buffer: BTreeMap<Key, (usize, i64, T)>,
    /// The last key released: items at or below it were applied already (re-reads skip them).
    pub frontier: Key,
}

impl<T> Merger<T> {
    pub fn new(sources: usize, frontier: Key, claims: Option<Vec<Key>>) -> Merger<T> {
        let claims = match claims {
            Some(c) if c.len() == sources => c,
            _ => vec![Key::MIN; sources],
        };
        Merger {
            claims,
            buffer: BTreeMap::new(),
            frontier,
        }
    }

    /// An item from `source` at input `offset`. Items at or below the frontier were applied
    /// before (a re-read after a restart) and are dropped; returns whether it was kept.
    pub fn push(&mut self, source: usize, key: Key, offset: i64, item: T) -> bool {
        if let Some(c) = self.claims.get_mut(source) {
            *c = (*c).max(key);
        }
        if key <= self.frontier {
            return false;
        }
        self.buffer.insert(key, (source, offset, item));
        true
    }

    /// A progress marker: `source` will send nothing at or below `key`.
    pub fn claim(&mut self, source: usize, key: Key) {
        if let Some(c) = self.claims.get_mut(source) {
            *c = (*c).max(key);
        }
    }

    /// Release, in key order, every item no source can still precede.
    pub fn release(&mut self) -> Vec<(Key, T)> {
        let mut out = Vec::new();
        while let Some((&key, &(source, _, _))) = self.buffer.first_key_value() {
            let safe = self
                .claims
                .iter()
                .enumerate()
                .all(|(s, c)| s == source || *c >= key);
            if !safe {
                break;
            }
            let (_, (_, _, item)) = self.buffer.pop_first().expect("first exists");
            self.frontier = key;
            out.push((key, item));
        }
        out
    }

    /// What downstream may be promised: every item this merger releases from now on has a key
    /// greater than this.
    pub fn bound(&self) -> Key {
        let min_claim = self.claims.iter().copied().min().unwrap_or(Key::MIN);
        min_claim.max(self.frontier)
    }

    /// The smallest input offset still buffered (where a restart must re-read from).
    pub fn min_offset(&self) -> Option<i64> {
        self.buffer.values().map(|(_, o, _)| *o).min()
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

/// The engine's state partitions in one process (the demo, backfill, benchmarks): the same
/// partitioning and order as the Kafka stage, records applied in input order.
pub struct Partitioned {
    pub blocks: Vec<AnalyticState>,
    pub people: Vec<AnalyticState>,
}

impl Partitioned {
    /// `keep_evicted`: keep summaries of issues and complainants evicted from the state (for
    /// snapshot tables of a whole run, e.g. a backfill); otherwise state is bounded by windows.
    pub fn new(dedup: &DedupConfig, partitions: usize, keep_evicted: bool) -> Partitioned {
        let n = partitions.max(1);
        let mk = || {
            let mut s = AnalyticState::new(dedup);
            s.people.scale = n;
            if keep_evicted {
                s.keep_evicted();
            }
            s
        };
        Partitioned {
            blocks: (0..n).map(|_| mk()).collect(),
            people: (0..n).map(|_| mk()).collect(),
        }
    }

    /// Apply prepared complaints in order; returns the new complaints (input order) and changed
    /// alerts.
    pub fn apply(
        &mut self,
        rows: Vec<(Complaint, Prepared)>,
        cx: &RuleContext,
    ) -> (Vec<Complaint>, Vec<Alert>) {
        let n = self.blocks.len();
        let mut per: Vec<Vec<(usize, (Complaint, Prepared))>> =
            (0..n).map(|_| Vec::new()).collect();
        for (i, row) in rows.into_iter().enumerate() {
            per[partition_of(block_of(&row.0), n)].push((i, row));
        }
        let mut complaints: Vec<(usize, Complaint)> = Vec::new();
        let mut events: Vec<(usize, PersonEvent)> = Vec::new();
        let mut alerts = Vec::new();
        // Partitions are independent: apply them on parallel threads (a panic in one is
        // re-raised here, as a bug).
        let busy = self
            .blocks
            .iter_mut()
            .zip(per)
            .filter(|(_, r)| !r.is_empty());
        let outs: Vec<(Vec<usize>, BlockOutput)> =
            crate::util::par::on_threads("a block partition's operator", busy, |(state, rows)| {
                let (idx, rows): (Vec<usize>, Vec<_>) = rows.into_iter().unzip();
                (idx, state.apply_prepared(rows, cx))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        for (idx, out) in outs {
            let BlockOutput {
                complaints: out_rows,
                complaint_rows,
                alerts: a,
                people,
                people_rows,
                ..
            } = out;
            // Outputs keep their input row's position.
            events.extend(people_rows.into_iter().map(|r| idx[r]).zip(people));
            complaints.extend(complaint_rows.into_iter().map(|r| idx[r]).zip(out_rows));
            alerts.extend(a);
        }
        complaints.sort_by_key(|(i, _)| *i);
        events.sort_by_key(|(i, _)| *i);
        let mut per_person: Vec<Vec<PersonEvent>> = (0..n).map(|_| Vec::new()).collect();
        for (_, e) in events {
            per_person[partition_of(&e.complainant, n)].push(e);
        }
        let busy = self
            .people
            .iter_mut()
            .zip(&per_person)
            .filter(|(_, e)| !e.is_empty());
        let person_alerts: Vec<Vec<Alert>> = crate::util::par::on_threads(
            "a complainant partition's operator",
            busy,
            |(state, evs)| state.apply_people(evs, cx),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        alerts.extend(person_alerts.into_iter().flatten());
        (complaints.into_iter().map(|(_, c)| c).collect(), alerts)
    }

    /// One read-only view of every partition (lake snapshot tables, summaries).
    pub fn view(&self) -> AnalyticState {
        let parts: Vec<&AnalyticState> = self.blocks.iter().chain(&self.people).collect();
        AnalyticState::merged(&parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merger_releases_in_key_order_only_when_every_source_promised() {
        let mut m: Merger<&str> = Merger::new(2, Key::MIN, None);
        m.push(0, Key(10, 0, 0), 0, "a");
        m.push(0, Key(30, 0, 1), 1, "c");
        assert!(m.release().is_empty(), "source 1 has said nothing yet");
        m.push(1, Key(20, 1, 0), 0, "b");
        let r: Vec<&str> = m.release().into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            r,
            ["a", "b"],
            "c waits: source 1 may still send something before 30"
        );
        m.claim(1, Key::before_time(31));
        let r: Vec<&str> = m.release().into_iter().map(|(_, v)| v).collect();
        assert_eq!(r, ["c"]);
        assert!(
            !m.push(0, Key(30, 0, 1), 1, "c"),
            "a re-read of an applied item is dropped"
        );
        assert_eq!(m.frontier, Key(30, 0, 1));
        assert_eq!(m.min_offset(), None);
    }

    #[test]
    fn arrival_interleaving_does_not_change_the_release_order() {
        let items = [
            (0, Key(1, 0, 0)),
            (1, Key(2, 1, 0)),
            (0, Key(3, 0, 1)),
            (1, Key(3, 1, 1)),
        ];
        let run = |order: &[usize]| {
            let mut m: Merger<Key> = Merger::new(2, Key::MIN, None);
            let mut out = Vec::new();
            for &i in order {
                let (s, k) = items[i];
                m.push(s, k, 0, k);
                out.extend(m.release().into_iter().map(|(_, v)| v));
            }
            m.claim(0, Key::before_time(100));
            m.claim(1, Key::before_time(100));
            out.extend(m.release().into_iter().map(|(_, v)| v));
            out
        };
        let a = run(&[0, 1, 2, 3]);
        assert_eq!(a, run(&[1, 3, 0, 2]));
        assert_eq!(a, run(&[0, 2, 1, 3]));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(a, sorted);
    }

    #[test]
    fn partitions_are_stable() {
        // Pinned: the changelog, the repartition topics and the lake's snapshot files are keyed by
        // these numbers, so a new build must place every key where the old one did.
        let got: Vec<usize> = [
            "镜湖区",
            "弋江区",
            "鸠江区",
            "湾沚区",
            "繁昌区",
            "南陵县",
            "无为市",
            "",
            "p_NEo3ShKd0E",
        ]
        .iter()
        .map(|k| partition_of(k, 6))
        .collect();
        assert_eq!(got, vec![3, 4, 1, 1, 1, 5, 1, 5, 0]);
        assert!(partition_of("弋江区", 6) < 6);
        assert_eq!(partition_of("x", 1), 0);
    }
}
