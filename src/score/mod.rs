//! `duban score`: how well the analytic core's output (a lake written by `duban backfill`) matches
//! a known truth — planted by `duban sim year`, or labeled by hand (`eval/hot-issues.csv`).

pub mod year;

use crate::report::lake::LakeTables;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};

/// `duban score` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ScoreCommand {
    /// Score a backfill of a `duban sim year` export against its truth.csv.
    Year(year::YearScoreArgs),
    /// Score a backfill against hand labels (`message_id,issue`): B-cubed over the labeled messages.
    Labels(LabelsArgs),
}

pub async fn run(cmd: ScoreCommand) -> Result<()> {
    match cmd {
        ScoreCommand::Year(args) => year::run(args).await,
        ScoreCommand::Labels(args) => run_labels(args).await,
    }
}

/// B-cubed precision, recall and F1 of a clustering against a truth, averaged over items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BCubed {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Items averaged over.
    pub items: usize,
}

impl BCubed {
    fn of(precision: f64, recall: f64, items: usize) -> BCubed {
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        BCubed {
            precision,
            recall,
            f1,
            items,
        }
    }
}

/// B-cubed over the items whose truth is `Some`; `None` items (e.g. background filings) still
/// count in the size of the predicted cluster they share, so putting one with an evaluated item
/// lowers that item's precision. Precision of item i: share of its predicted cluster with its
/// truth; recall: share of its truth class in its predicted cluster.
pub fn bcubed<T: Eq + Hash, P: Eq + Hash>(items: &[(Option<T>, P)]) -> BCubed {
    let mut pred: HashMap<&P, usize> = HashMap::new();
    let mut truth: HashMap<&T, usize> = HashMap::new();
    let mut both: HashMap<(&T, &P), usize> = HashMap::new();
    for (t, p) in items {
        *pred.entry(p).or_default() += 1;
        if let Some(t) = t {
            *truth.entry(t).or_default() += 1;
            *both.entry((t, p)).or_default() += 1;
        }
    }
    let (mut ps, mut rs, mut n) = (0.0, 0.0, 0usize);
    for (t, p) in items {
        let Some(t) = t else { continue };
        let b = both[&(t, p)] as f64;
        ps += b / pred[p] as f64;
        rs += b / truth[t] as f64;
        n += 1;
    }
    if n == 0 {
        return BCubed::default();
    }
    BCubed::of(ps / n as f64, rs / n as f64, n)
}

/// One complaint of the lake as the scorer needs it.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    pub complaint_id: String,
    pub complainant: String,
    /// The issue after following `merged_into` to the surviving issue.
    pub issue: String,
    pub duplicate_of: Option<String>,
    pub duplicate_group: Option<String>,
    /// The complaint it re-files, from the complainants table's `resubmission_links`.
    pub resubmission_of: Option<String>,
    pub received_at: String,
}

/// An alert of the lake.
#[derive(Debug, Clone)]
pub struct ScoredAlert {
    pub trigger: String,
    pub subject: String,
    pub complaint_ids: Vec<String>,
    /// Neither merged into another alert nor closed.
    pub open: bool,
}

/// What a backfill wrote, keyed by source id (the export's message id).
pub struct LakeOutput {
    pub complaints: HashMap<String, Scored>,
    pub flagged: std::collections::HashSet<String>,
    pub alerts: Vec<ScoredAlert>,
}

/// `DIR/lake` when DIR holds one (a backfill's output folder), else DIR.
pub fn lake_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("lake");
    if inner.join("complaints").is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// Reads the complaints (issue resolved through merges), flagged complainants and alerts.
pub async fn read_lake(dir: &Path) -> Result<LakeOutput> {
    let lake = lake_dir(dir);
    let t = LakeTables::open(&lake).await?;
    if !t.has("complaints") {
        bail!(
            "{} holds no complaints table (run duban backfill --out DIR first)",
            lake.display()
        );
    }
    let issues = t.select("issues", &["issue_id", "merged_into"], "").await?;
    let mut merged: HashMap<String, String> = HashMap::new();
    for r in &issues.rows {
        if let (Some(id), Some(into)) = (issues.get(r, "issue_id"), issues.get(r, "merged_into")) {
            merged.insert(id.to_string(), into.to_string());
        }
    }
    let resolve = |mut id: String| {
        // A chain of merges ends at the survivor; a cycle (never written) stops after a bound.
        for _ in 0..64 {
            match merged.get(&id) {
                Some(next) if *next != id => id = next.clone(),
                _ => break,
            }
        }
        id
    };
    let rows = t
        .select(
            "complaints",
            &[
                "source_id",
                "complaint_id",
                "complainant",
                "issue_id",
                "duplicate_of",
                "duplicate_group",
                "received_at",
            ],
            "",
        )
        .await?;
    let mut complaints = HashMap::new();
    for r in &rows.rows {
        let Some(source) = rows.get(r, "source_id") else {
            continue;
        };
        let text = |c: &str| rows.get(r, c).unwrap_or_default().to_string();
        complaints.insert(
            source.to_string(),
            Scored {
                complaint_id: text("complaint_id"),
                complainant: text("complainant"),
                issue: resolve(text("issue_id")),
                duplicate_of: rows.get(r, "duplicate_of").map(str::to_string),
                duplicate_group: rows.get(r, "duplicate_group").map(str::to_string),
                resubmission_of: None,
                received_at: text("received_at"),
            },
        );
    }
    // Resubmission links, where the engine writes them (`complaint_id>resubmission_of`, …).
    let link_column = t
        .columns("complainants")
        .await?
        .iter()
        .any(|c| c == "resubmission_links");
    let mut columns = vec!["complainant", "flagged"];
    if link_column {
        columns.push("resubmission_links");
    }
    let people = t.select("complainants", &columns, "").await?;
    let mut resubmission_of: HashMap<String, String> = HashMap::new();
    for r in &people.rows {
        for link in people
            .get(r, "resubmission_links")
            .unwrap_or_default()
            .split(',')
        {
            if let Some((id, of)) = link.split_once('>') {
                resubmission_of.insert(id.to_string(), of.to_string());
            }
        }
    }
    for c in complaints.values_mut() {
        c.resubmission_of = resubmission_of.get(&c.complaint_id).cloned();
    }
    let flagged = people
        .rows
        .iter()
        .filter(|r| people.get(r, "flagged") == Some("true"))
        .filter_map(|r| people.get(r, "complainant").map(str::to_string))
        .collect();
    let a = t
        .select(
            "alerts",
            &[
                "trigger",
                "subject",
                "complaint_ids",
                "merged_into",
                "status",
            ],
            "",
        )
        .await?;
    let alerts = a
        .rows
        .iter()
        .map(|r| ScoredAlert {
            trigger: a.get(r, "trigger").unwrap_or_default().to_string(),
            subject: a.get(r, "subject").unwrap_or_default().to_string(),
            complaint_ids: a
                .get(r, "complaint_ids")
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            open: a.get(r, "merged_into").is_none()
                && !matches!(a.get(r, "status"), Some("merged" | "closed")),
        })
        .collect();
    Ok(LakeOutput {
        complaints,
        flagged,
        alerts,
    })
}

/// `duban score labels` arguments.
#[derive(Debug, clap::Args)]
pub struct LabelsArgs {
    /// CSV with `message_id,issue` (e.g. eval/hot-issues.csv).
    #[arg(long)]
    pub labels: PathBuf,
    /// The backfill's output folder (or its lake/).
    #[arg(long)]
    pub lake: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The score of a backfill against hand labels.
#[derive(Debug, Serialize)]
pub struct LabelsScore {
    /// Over every labeled message.
    pub all: BCubed,
    /// Over the messages of labeled groups of two or more (the issues), with the labeled
    /// singletons counted in the predicted clusters' sizes.
    pub issues: BCubed,
    /// Over the messages of the 20 largest labeled issues (the other labeled messages counted in
    /// the predicted clusters' sizes).
    pub largest20: BCubed,
    pub labeled_messages: usize,
    pub labeled_issues: usize,
    /// Labeled messages the lake does not hold.
    pub missing: usize,
    /// The largest labeled issues: size, engine issues they landed in, largest share.
    pub largest: Vec<LabeledIssue>,
}

#[derive(Debug, Serialize)]
pub struct LabeledIssue {
    pub issue: String,
    pub messages: usize,
    pub engine_issues: usize,
    pub largest_part: usize,
}

/// Reads `message_id,issue` rows (header required).
pub fn read_labels(path: &Path) -> Result<Vec<(String, String)>> {
    let mut r = csv::Reader::from_path(path)
        .with_context(|| format!("reading labels {}", path.display()))?;
    let headers = r.headers()?.clone();
    let (Some(id), Some(issue)) = (
        headers.iter().position(|h| h == "message_id"),
        headers.iter().position(|h| h == "issue"),
    ) else {
        bail!("{}: expected columns message_id,issue", path.display());
    };
    let mut out = Vec::new();
    for (n, row) in r.records().enumerate() {
        let row = row.with_context(|| format!("{} row {}", path.display(), n + 2))?;
        let (Some(m), Some(i)) = (row.get(id), row.get(issue)) else {
            bail!(
                "{} row {}: missing message_id or issue",
                path.display(),
                n + 2
            );
        };
        out.push((m.trim().to_string(), i.trim().to_string()));
    }
    Ok(out)
}

pub fn score_labels(labels: &[(String, String)], lake: &LakeOutput) -> LabelsScore {
    let mut size: HashMap<&str, usize> = HashMap::new();
    for (_, l) in labels {
        *size.entry(l.as_str()).or_default() += 1;
    }
    let present: Vec<(&str, &str)> = labels
        .iter()
        .filter_map(|(m, l)| {
            lake.complaints
                .get(m)
                .map(|c| (l.as_str(), c.issue.as_str()))
        })
        .collect();
    let all: Vec<(Option<&str>, &str)> = present.iter().map(|(l, p)| (Some(*l), *p)).collect();
    let groups: Vec<(Option<&str>, &str)> = present
        .iter()
        .map(|(l, p)| ((size[l] >= 2).then_some(*l), *p))
        .collect();
    let mut parts: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    for (l, p) in &present {
        *parts.entry(l).or_default().entry(p).or_default() += 1;
    }
    let mut largest: Vec<LabeledIssue> = parts
        .iter()
        .filter(|(l, _)| size[*l] >= 2)
        .map(|(l, ps)| LabeledIssue {
            issue: l.to_string(),
            messages: ps.values().sum(),
            engine_issues: ps.len(),
            largest_part: ps.values().copied().max().unwrap_or(0),
        })
        .collect();
    largest.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.issue.cmp(&b.issue)));
    let top: std::collections::HashSet<&str> =
        largest.iter().take(20).map(|i| i.issue.as_str()).collect();
    let top20: Vec<(Option<&str>, &str)> = present
        .iter()
        .map(|(l, p)| (top.contains(l).then_some(*l), *p))
        .collect();
    let largest20 = bcubed(&top20);
    largest.truncate(25);
    LabelsScore {
        all: bcubed(&all),
        issues: bcubed(&groups),
        largest20,
        labeled_messages: labels.len(),
        labeled_issues: size.values().filter(|&&n| n >= 2).count(),
        missing: labels.len() - present.len(),
        largest,
    }
}

async fn run_labels(args: LabelsArgs) -> Result<()> {
    let labels = read_labels(&args.labels)?;
    let lake = read_lake(&args.lake).await?;
    let s = score_labels(&labels, &lake);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!(
        "{} labeled messages ({} issues of 2+; {} not in the lake)",
        s.labeled_messages, s.labeled_issues, s.missing
    );
    println!("{}", bcubed_line("issues (groups of 2+)", &s.issues));
    println!("{}", bcubed_line("the 20 largest issues", &s.largest20));
    println!("{}", bcubed_line("all labeled messages", &s.all));
    println!("largest labeled issues: messages → engine issues (largest part)");
    for i in &s.largest {
        println!(
            "  {:<24} {:>4} → {:>3} ({})",
            i.issue, i.messages, i.engine_issues, i.largest_part
        );
    }
    Ok(())
}

/// One line: `what  P …  R …  F1 …  (n items)`.
pub fn bcubed_line(what: &str, b: &BCubed) -> String {
    format!(
        "  {what:<34} P {:.3}  R {:.3}  F1 {:.3}  ({} items)",
        b.precision, b.recall, b.f1, b.items
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcubed_of_known_clusterings() {
        // Perfect.
        let perfect = [(Some("a"), 1), (Some("a"), 1), (Some("b"), 2)];
        assert_eq!(bcubed(&perfect).f1, 1.0);
        // One truth class split in two: precision 1, recall (1/2 + 1/2 + 1) / 3.
        let split = [(Some("a"), 1), (Some("a"), 2), (Some("b"), 3)];
        let s = bcubed(&split);
        assert_eq!(s.precision, 1.0);
        assert!((s.recall - 2.0 / 3.0).abs() < 1e-12);
        // Everything merged: recall 1, precision (2/3 + 2/3 + 1/3) / 3.
        let merged = [(Some("a"), 1), (Some("a"), 1), (Some("b"), 1)];
        let m = bcubed(&merged);
        assert_eq!(m.recall, 1.0);
        assert!((m.precision - 5.0 / 9.0).abs() < 1e-12);
        // An unscored item in the cluster halves the precision of the scored one.
        let bg = [(Some("a"), 1), (None, 1)];
        let b = bcubed(&bg);
        assert_eq!((b.precision, b.recall, b.items), (0.5, 1.0, 1));
    }
}
