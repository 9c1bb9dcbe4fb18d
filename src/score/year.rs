//! `duban score year`: a backfill of a `duban sim year` export scored against its truth.csv —
//! planted issues (B-cubed), resubmissions linked, heavy posters flagged, open crowd alerts.

use super::{LakeOutput, bcubed, bcubed_line, read_lake};
use crate::sim::year::{TRUTH_FILE, TRUTH_HEADER};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Filings in the year from which a poster counts as heavy.
pub const HEAVY_FILINGS: usize = 10;

/// `duban score year` arguments.
#[derive(Debug, clap::Args)]
pub struct YearScoreArgs {
    /// truth.csv of `duban sim year` (or its folder).
    #[arg(long)]
    pub truth: PathBuf,
    /// The backfill's output folder (or its lake/).
    #[arg(long)]
    pub lake: PathBuf,
    /// Configuration the backfill ran with (its `[rules] crowd_min_complainants`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One row of truth.csv.
#[derive(Debug, Clone)]
pub struct TruthRow {
    pub row_id: String,
    pub user: String,
    pub issue: Option<String>,
    pub kind: Option<String>,
    pub place: Option<String>,
    pub template: Option<String>,
    pub resubmission_of: Option<String>,
    pub rate_class: String,
}

pub fn read_truth(path: &Path) -> Result<Vec<TruthRow>> {
    let path = if path.is_dir() {
        path.join(TRUTH_FILE)
    } else {
        path.to_path_buf()
    };
    let mut r =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let headers = r.headers()?.clone();
    if headers.iter().collect::<Vec<_>>() != TRUTH_HEADER {
        bail!(
            "{}: expected the columns {} (a truth.csv of duban sim year)",
            path.display(),
            TRUTH_HEADER.join(",")
        );
    }
    let mut out = Vec::new();
    for (n, row) in r.records().enumerate() {
        let row = row.with_context(|| format!("{} row {}", path.display(), n + 2))?;
        let f = |i: usize| {
            row.get(i)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        out.push(TruthRow {
            row_id: f(0).with_context(|| format!("{} row {}: no row_id", path.display(), n + 2))?,
            user: f(1).unwrap_or_default(),
            issue: f(2),
            kind: f(3),
            place: f(4),
            template: f(5),
            resubmission_of: f(6),
            rate_class: f(7).unwrap_or_default(),
        });
    }
    Ok(out)
}

#[derive(Debug, Default, Serialize)]
pub struct Share {
    pub total: usize,
    pub hits: usize,
    pub share: f64,
}

impl Share {
    fn add(&mut self, hit: bool) {
        self.total += 1;
        self.hits += usize::from(hit);
        self.share = self.hits as f64 / self.total as f64;
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Resubmissions {
    /// Share of resubmissions linked to the filing they repeat: same (surviving) issue, same
    /// duplicate group, duplicate_of it, or resubmission_of it.
    pub linked: Share,
    /// Linked by the link columns (duplicate_of / duplicate_group / resubmission_of) alone.
    pub by_duplicate: Share,
    /// By days between the two filings.
    pub by_gap: BTreeMap<String, Share>,
}

#[derive(Debug, Default, Serialize)]
pub struct Heavy {
    /// Posters with ≥ 10 filings in the export.
    pub posters: usize,
    /// Of them flagged (recall).
    pub recall: Share,
    /// Flagged complainants with ≥ 10 filings (precision).
    pub precision: Share,
    /// Recall by filings: 10–15, 16–30, 31–60, 61+.
    pub by_filings: BTreeMap<String, Share>,
    /// Flagged posters with fewer than 10 filings, by planted rate class.
    pub false_flags_by_class: BTreeMap<String, usize>,
}

#[derive(Debug, Default, Serialize)]
pub struct CrowdAlerts {
    /// `[rules] crowd_min_complainants`: planted issues with at least this many distinct posters.
    pub crowd_min_complainants: usize,
    pub crowd_sized_issues: usize,
    /// Open crowd alerts whose evidence is mostly one crowd-sized planted issue, per such issue.
    pub mean_open_per_issue: f64,
    /// Crowd-sized planted issues with exactly one open alert.
    pub exactly_one: Share,
    /// Crowd-sized planted issues with none.
    pub none: usize,
    /// With two or more.
    pub several: usize,
    /// Open crowd alerts mostly on background filings (no planted issue).
    pub on_background: usize,
    /// Open crowd alerts mostly on planted issues below the crowd size.
    pub on_small_issues: usize,
    pub open_total: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Pairs {
    /// Pairs of planted issues that must stay apart (same place other matter; one template
    /// campaign's groups) whose largest parts landed in one engine issue.
    pub merged: Share,
}

#[derive(Debug, Default, Serialize)]
pub struct YearScore {
    pub rows: usize,
    /// Truth rows the lake does not hold (not scored).
    pub missing: usize,
    /// B-cubed over the rows of the planted issues many people raise (place, city-wide and
    /// template issues; a heavy poster's own series is scored apart, in `by_kind`). Any other row
    /// (background, a poster's series) counts only in the size of the engine issue it is in: one
    /// that joins a planted issue's engine issue lowers that issue's precision; such rows are not
    /// averaged over.
    pub issues: super::BCubed,
    pub by_kind: BTreeMap<String, super::BCubed>,
    /// B-cubed over every row: background rows are singletons, except resubmission chains of
    /// background rows, which are one class each.
    pub all_rows: super::BCubed,
    /// Engine issues a planted issue's rows landed in (mean), and the share of planted issues
    /// whole in one.
    pub mean_parts: f64,
    pub whole: Share,
    pub same_place_other_matter: Pairs,
    pub template_groups: Pairs,
    pub resubmissions: Resubmissions,
    pub heavy: Heavy,
    pub crowd_alerts: CrowdAlerts,
}

fn gap_bucket(days: i64) -> &'static str {
    match days {
        i64::MIN..=30 => "01-30 days",
        31..=90 => "031-90 days",
        _ => "091+ days",
    }
}

fn filings_bucket(n: usize) -> &'static str {
    match n {
        0..=15 => "10-15",
        16..=30 => "16-30",
        31..=60 => "31-60",
        _ => "61+",
    }
}

fn parse_time(s: &str) -> Option<chrono::NaiveDateTime> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.naive_local())
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok())
        .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok())
}

/// Scores `lake` against `truth`.
pub fn score(truth: &[TruthRow], lake: &LakeOutput, crowd_min: usize) -> YearScore {
    let rows: Vec<&TruthRow> = truth
        .iter()
        .filter(|t| lake.complaints.contains_key(&t.row_id))
        .collect();
    let engine = |t: &TruthRow| lake.complaints[&t.row_id].issue.as_str();
    let mut s = YearScore {
        rows: truth.len(),
        missing: truth.len() - rows.len(),
        ..Default::default()
    };

    // Planted issues raised by many (every kind but a heavy poster's own series), and each kind.
    let planted: Vec<(Option<&str>, &str)> = rows
        .iter()
        .map(|t| {
            let many = t.kind.as_deref() != Some("poster");
            (t.issue.as_deref().filter(|_| many), engine(t))
        })
        .collect();
    s.issues = bcubed(&planted);
    let mut kinds: Vec<&str> = rows.iter().filter_map(|t| t.kind.as_deref()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let of: Vec<(Option<&str>, &str)> = rows
            .iter()
            .map(|t| {
                let mine = t.kind.as_deref() == Some(kind);
                (t.issue.as_deref().filter(|_| mine), engine(t))
            })
            .collect();
        s.by_kind.insert(kind.to_string(), bcubed(&of));
    }

    // Every row: background singletons, resubmission chains of background rows as one class.
    let by_id: HashMap<&str, &TruthRow> = truth.iter().map(|t| (t.row_id.as_str(), t)).collect();
    let class = |t: &TruthRow| -> String {
        if let Some(i) = &t.issue {
            return i.clone();
        }
        let mut root = t;
        for _ in 0..1000 {
            match root.resubmission_of.as_deref().and_then(|o| by_id.get(o)) {
                Some(o) => root = o,
                None => break,
            }
        }
        format!("row:{}", root.row_id)
    };
    let all: Vec<(Option<String>, &str)> =
        rows.iter().map(|t| (Some(class(t)), engine(t))).collect();
    s.all_rows = bcubed(&all);

    // Parts of each planted issue; pairs that must stay apart.
    let mut parts: BTreeMap<&str, HashMap<&str, usize>> = BTreeMap::new();
    let mut meta: BTreeMap<&str, &TruthRow> = BTreeMap::new();
    for t in &rows {
        if let Some(i) = t.issue.as_deref() {
            *parts.entry(i).or_default().entry(engine(t)).or_default() += 1;
            meta.entry(i).or_insert(t);
        }
    }
    let main: BTreeMap<&str, &str> = parts
        .iter()
        .map(|(i, ps)| {
            let best = ps
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(p, _)| *p)
                .unwrap_or("");
            (*i, best)
        })
        .collect();
    for ps in parts.values() {
        s.whole.add(ps.len() == 1);
    }
    s.mean_parts =
        parts.values().map(|p| p.len()).sum::<usize>() as f64 / parts.len().max(1) as f64;
    let mut by_place: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut by_template: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (i, t) in &meta {
        if t.kind.as_deref() == Some("place")
            && let Some(p) = t.place.as_deref()
        {
            by_place.entry(p).or_default().push(i);
        }
        if let Some(tp) = t.template.as_deref() {
            by_template.entry(tp).or_default().push(i);
        }
    }
    for (groups, out) in [
        (&by_place, &mut s.same_place_other_matter),
        (&by_template, &mut s.template_groups),
    ] {
        for issues in groups.values() {
            for (k, a) in issues.iter().enumerate() {
                for b in &issues[k + 1..] {
                    out.merged.add(main[a] == main[b]);
                }
            }
        }
    }

    // Resubmissions.
    for t in &rows {
        let Some(of) = t.resubmission_of.as_deref() else {
            continue;
        };
        let (Some(r), Some(o)) = (lake.complaints.get(&t.row_id), lake.complaints.get(of)) else {
            continue;
        };
        let dup = r.duplicate_of.as_deref() == Some(o.complaint_id.as_str())
            || r.resubmission_of.as_deref() == Some(o.complaint_id.as_str())
            || (r.duplicate_group.is_some() && r.duplicate_group == o.duplicate_group);
        let linked = dup || r.issue == o.issue;
        s.resubmissions.linked.add(linked);
        s.resubmissions.by_duplicate.add(dup);
        let days = match (parse_time(&r.received_at), parse_time(&o.received_at)) {
            (Some(a), Some(b)) => (a - b).num_days(),
            _ => 0,
        };
        s.resubmissions
            .by_gap
            .entry(gap_bucket(days).to_string())
            .or_default()
            .add(linked);
    }

    // Heavy posters.
    let mut filings: HashMap<&str, usize> = HashMap::new();
    let mut pseudonym: HashMap<&str, &str> = HashMap::new();
    let mut class_of: HashMap<&str, &str> = HashMap::new();
    for t in truth {
        *filings.entry(t.user.as_str()).or_default() += 1;
        class_of.insert(t.user.as_str(), t.rate_class.as_str());
        if let Some(c) = lake.complaints.get(&t.row_id) {
            pseudonym
                .entry(t.user.as_str())
                .or_insert(c.complainant.as_str());
        }
    }
    let mut users: Vec<(&str, usize)> = filings.iter().map(|(u, n)| (*u, *n)).collect();
    users.sort_unstable();
    for (user, n) in users {
        let flagged = pseudonym
            .get(user)
            .is_some_and(|p| lake.flagged.contains(*p));
        if n >= HEAVY_FILINGS {
            s.heavy.posters += 1;
            s.heavy.recall.add(flagged);
            s.heavy
                .by_filings
                .entry(filings_bucket(n).to_string())
                .or_default()
                .add(flagged);
        }
        if flagged {
            s.heavy.precision.add(n >= HEAVY_FILINGS);
            if n < HEAVY_FILINGS {
                *s.heavy
                    .false_flags_by_class
                    .entry(class_of[user].to_string())
                    .or_default() += 1;
            }
        }
    }

    // Open crowd alerts per planted issue.
    let row_of: HashMap<&str, &TruthRow> = rows
        .iter()
        .map(|t| (lake.complaints[&t.row_id].complaint_id.as_str(), *t))
        .collect();
    let mut posters: HashMap<&str, HashSet<&str>> = HashMap::new();
    for t in truth {
        if let Some(i) = t.issue.as_deref() {
            posters.entry(i).or_default().insert(t.user.as_str());
        }
    }
    let crowd: Vec<&str> = {
        let mut c: Vec<&str> = posters
            .iter()
            .filter(|(_, p)| p.len() >= crowd_min)
            .map(|(i, _)| *i)
            .collect();
        c.sort_unstable();
        c
    };
    let mut open: HashMap<&str, usize> = HashMap::new();
    let ca = &mut s.crowd_alerts;
    ca.crowd_min_complainants = crowd_min;
    ca.crowd_sized_issues = crowd.len();
    for a in lake
        .alerts
        .iter()
        .filter(|a| a.open && a.trigger == "crowd_concentration")
    {
        ca.open_total += 1;
        let mut votes: BTreeMap<Option<&str>, usize> = BTreeMap::new();
        for id in &a.complaint_ids {
            if let Some(t) = row_of.get(id.as_str()) {
                *votes.entry(t.issue.as_deref()).or_default() += 1;
            }
        }
        let top = votes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(i, _)| *i);
        match top.flatten() {
            None => ca.on_background += 1,
            Some(i) if posters[i].len() >= crowd_min => *open.entry(i).or_default() += 1,
            Some(_) => ca.on_small_issues += 1,
        }
    }
    for i in &crowd {
        let n = open.get(i).copied().unwrap_or(0);
        ca.exactly_one.add(n == 1);
        ca.none += usize::from(n == 0);
        ca.several += usize::from(n >= 2);
    }
    ca.mean_open_per_issue = open.values().sum::<usize>() as f64 / crowd.len().max(1) as f64;
    s
}

pub async fn run(args: YearScoreArgs) -> Result<()> {
    let truth = read_truth(&args.truth)?;
    let cfg = match &args.config {
        Some(p) => crate::config::Config::load(p)?,
        None => crate::config::Config::default(),
    };
    let lake = read_lake(&args.lake).await?;
    let s = score(&truth, &lake, cfg.rules.crowd_min_complainants);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    print!("{}", render(&s));
    Ok(())
}

fn share(s: &Share) -> String {
    format!("{:.3} ({} of {})", s.share, s.hits, s.total)
}

/// The score as text.
pub fn render(s: &YearScore) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{} truth rows ({} not in the lake)", s.rows, s.missing);
    let _ = writeln!(
        o,
        "planted issues (B-cubed over their rows; other rows in their engine issues count against precision):"
    );
    let _ = writeln!(o, "{}", bcubed_line("issues raised by many", &s.issues));
    for (k, x) in &s.by_kind {
        let _ = writeln!(o, "{}", bcubed_line(&format!("  {k}"), x));
    }
    let _ = writeln!(
        o,
        "{}",
        bcubed_line("every row (background singletons)", &s.all_rows)
    );
    let _ = writeln!(
        o,
        "  engine issues per planted issue: {:.2} mean; whole in one: {}",
        s.mean_parts,
        share(&s.whole)
    );
    let _ = writeln!(
        o,
        "  merged though apart: same place other matter {}; template groups {}",
        share(&s.same_place_other_matter.merged),
        share(&s.template_groups.merged)
    );
    let r = &s.resubmissions;
    let _ = writeln!(
        o,
        "resubmissions linked to the filing they repeat: {} (by link columns {})",
        share(&r.linked),
        share(&r.by_duplicate)
    );
    for (g, x) in &r.by_gap {
        let _ = writeln!(o, "  {:<12} {}", g.trim_start_matches('0'), share(x));
    }
    let h = &s.heavy;
    let _ = writeln!(
        o,
        "heavy posters (≥ {HEAVY_FILINGS} filings): {} — flagged {}; flag precision {}",
        h.posters,
        share(&h.recall),
        share(&h.precision)
    );
    for (g, x) in &h.by_filings {
        let _ = writeln!(o, "  {g:<12} {}", share(x));
    }
    if !h.false_flags_by_class.is_empty() {
        let _ = writeln!(
            o,
            "  flagged below {HEAVY_FILINGS} filings: {:?}",
            h.false_flags_by_class
        );
    }
    let c = &s.crowd_alerts;
    let _ = writeln!(
        o,
        "open crowd alerts: {} — per crowd-sized planted issue (≥ {} posters, {} issues) {:.2} mean; \
         exactly one {}; none {}; several {}; on background {}; on smaller planted issues {}",
        c.open_total,
        c.crowd_min_complainants,
        c.crowd_sized_issues,
        c.mean_open_per_issue,
        share(&c.exactly_one),
        c.none,
        c.several,
        c.on_background,
        c.on_small_issues
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{Scored, ScoredAlert};

    fn truth(row: &str, user: &str, issue: Option<&str>, resub: Option<&str>) -> TruthRow {
        TruthRow {
            row_id: row.into(),
            user: user.into(),
            issue: issue.map(Into::into),
            kind: issue.map(|_| "place".into()),
            place: issue.map(|_| "L1".into()),
            template: None,
            resubmission_of: resub.map(Into::into),
            rate_class: "single".into(),
        }
    }

    fn lake(
        rows: &[(&str, &str, &str, &str)],
        flagged: &[&str],
        alerts: Vec<ScoredAlert>,
    ) -> LakeOutput {
        LakeOutput {
            complaints: rows
                .iter()
                .map(|(row, person, issue, day)| {
                    (
                        row.to_string(),
                        Scored {
                            complaint_id: format!("c{row}"),
                            complainant: person.to_string(),
                            issue: issue.to_string(),
                            received_at: format!("2024-{day}T10:00:00+08:00"),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
            flagged: flagged.iter().map(|s| s.to_string()).collect(),
            alerts,
        }
    }

    #[test]
    fn scores_issues_resubmissions_posters_and_alerts() {
        // Issue A: rows 1, 2, 3 (3 is 2's resubmission, 60 days on); issue B at the same
        // place: row 4; background rows 5 (user h, with 11 filings in all) and 6.
        let mut t = vec![
            truth("1", "u1", Some("A"), None),
            truth("2", "u2", Some("A"), None),
            truth("3", "u2", Some("A"), Some("2")),
            truth("4", "u4", Some("B"), None),
            truth("6", "u6", None, None),
        ];
        let mut l = vec![
            ("1", "p1", "E1", "01-01"),
            ("2", "p2", "E1", "01-02"),
            ("3", "p2", "E2", "03-02"),
            ("4", "p4", "E1", "01-05"),
            ("6", "p6", "E9", "01-06"),
        ];
        let rows: Vec<String> = (100..111).map(|k| k.to_string()).collect();
        for r in &rows {
            t.push(truth(r, "h", None, None));
            l.push((r.as_str(), "ph", "E7", "02-01"));
        }
        let alert = |ids: &[&str], open| ScoredAlert {
            trigger: "crowd_concentration".into(),
            subject: String::new(),
            complaint_ids: ids.iter().map(|i| format!("c{i}")).collect(),
            open,
        };
        let out = lake(
            &l,
            &["ph", "p6"],
            vec![
                alert(&["1", "2", "4"], true),
                alert(&["1"], false),
                alert(&["6"], true),
            ],
        );
        let s = score(&t, &out, 2);
        // A: rows 1, 2 in E1 (with B's row 4), row 3 alone in E2.
        // precision: 1, 2 → 2/3 each; 3 → 1; 4 → 1/3.  recall: 1, 2 → 2/3; 3 → 1/3; 4 → 1.
        assert!((s.issues.precision - (2.0 / 3.0 * 2.0 + 1.0 + 1.0 / 3.0) / 4.0).abs() < 1e-9);
        assert!((s.issues.recall - (2.0 / 3.0 * 2.0 + 1.0 / 3.0 + 1.0) / 4.0).abs() < 1e-9);
        assert_eq!(s.same_place_other_matter.merged.hits, 1);
        assert_eq!((s.whole.hits, s.whole.total), (1, 2));
        assert_eq!(
            (s.resubmissions.linked.hits, s.resubmissions.linked.total),
            (0, 1)
        );
        assert_eq!(s.resubmissions.by_gap["031-90 days"].total, 1);
        assert_eq!((s.heavy.posters, s.heavy.recall.hits), (1, 1));
        assert_eq!((s.heavy.precision.hits, s.heavy.precision.total), (1, 2));
        // A has 2 posters (crowd-sized at 2): one open alert; the closed one does not count;
        // the alert on row 6 is on the background.
        assert_eq!(s.crowd_alerts.crowd_sized_issues, 1);
        assert_eq!(s.crowd_alerts.exactly_one.hits, 1);
        assert_eq!(s.crowd_alerts.on_background, 1);
        assert!(render(&s).contains("resubmissions linked"));
        // The engine's resubmission link (complainants.resubmission_links) links row 3 to 2.
        let mut linked = out;
        if let Some(r) = linked.complaints.get_mut("3") {
            r.resubmission_of = Some("c2".into());
        }
        let s = score(&t, &linked, 2);
        assert_eq!(
            (
                s.resubmissions.linked.hits,
                s.resubmissions.by_duplicate.hits
            ),
            (1, 1)
        );
        // A link to another complaint is no link to the one it repeats.
        if let Some(r) = linked.complaints.get_mut("3") {
            r.resubmission_of = Some("c1".into());
        }
        assert_eq!(score(&t, &linked, 2).resubmissions.linked.hits, 0);
    }
}
