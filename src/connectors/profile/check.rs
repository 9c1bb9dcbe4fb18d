//! `duban connector check`: run a profile once without Kafka — pull the feed (or read an export
//! file) as its connector would and print each record as the canonical complaint, a JSON a line.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;

use super::{Kind, Profile, export, http};
use crate::config::Config;
use crate::connectors::output::{Commit, Enough, Sink};
use crate::connectors::{Mode, Positions};
use crate::engine::{Engine, RawInput};

/// `duban connector check` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The profile (e.g. connectors/profiles/peoples-daily-v1.toml).
    #[arg(long)]
    pub profile: PathBuf,
    /// Ask this address instead of the profile's `base_url` (a test server, a mirror).
    #[arg(long)]
    pub base_url: Option<String>,
    /// An export file to read (export profiles; default: the files of `[export] dir`).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Stop after this many records (the newest ones); 0 = all.
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Configuration of the engine that normalizes (taxonomy, units, classifier).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// What a check printed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub complaints: usize,
    pub dead_letters: usize,
}

/// Print the records of `commits` as canonical complaints on `out` and dead letters with their
/// reasons on `err`, up to `limit` complaints (0 = all).
async fn print(
    engine: &mut Engine,
    mut commits: tokio::sync::mpsc::UnboundedReceiver<Commit>,
    limit: usize,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Counts> {
    let mut n = Counts::default();
    while let Some(c) = commits.recv().await {
        for d in &c.dead {
            writeln!(err, "dead letter ({}): {}", d.origin, d.reason)?;
            n.dead_letters += 1;
        }
        let inputs = c
            .records
            .iter()
            .map(|e| {
                Ok(RawInput {
                    key: Some(e.key().into_bytes()),
                    value: serde_json::to_vec(e)?,
                    origin: format!("{}:{}", e.channel, e.source_id),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (complaints, dead) = engine.normalize(&inputs).await?;
        for d in &dead {
            writeln!(err, "dead letter ({}): {}", d.origin, d.reason)?;
            n.dead_letters += 1;
        }
        for mut c in complaints {
            if limit > 0 && n.complaints >= limit {
                return Ok(n);
            }
            // Alone here: every complaint is its own duplicate group.
            c.duplicate_group = c.complaint_id.clone();
            writeln!(out, "{}", serde_json::to_string(&c)?)?;
            n.complaints += 1;
        }
        out.flush()?;
    }
    Ok(n)
}

/// Run the check; prints to stdout and stderr.
pub async fn run(args: CheckArgs) -> Result<Counts> {
    let mut p = Profile::load(&args.profile)?;
    if let Some(u) = &args.base_url {
        if p.kind == Kind::Export {
            bail!(
                "--base-url: {} reads export files (use --input FILE)",
                p.name
            );
        }
        p = p.with_base_url(u)?;
    }
    if args.input.is_some() && p.kind != Kind::Export {
        bail!(
            "--input: {} pulls from {} (--input reads an export file of an export profile)",
            p.name,
            p.base_url
        );
    }
    let mut cfg = match &args.config {
        Some(c) => Config::load(c)?,
        None => Config::default(),
    };
    // A trial on a terminal, stored nowhere: the bureau's key when set, else (with a warning)
    // the development key, as `duban demo`.
    cfg.engine.pseudonym_key = crate::engine::PseudonymKey::EnvOrDevelopment;
    let mut engine = Engine::new(&cfg)?;
    let (sink, commits) = Sink::channel(&p.name);
    let limit = (args.limit > 0).then_some(args.limit);
    let pull = {
        let p = p.clone();
        let input = args.input.clone();
        async move {
            let r = match (&input, p.kind) {
                (Some(file), _) => read_one(&p, &sink, file).await,
                (None, Kind::Export) => export::run(&p, &sink, Positions::new(), Mode::Drain).await,
                (None, _) => http::run(&p, &sink, Positions::new(), Mode::Drain, limit).await,
            };
            match r {
                Err(e) if e.downcast_ref::<Enough>().is_some() => Ok(()),
                r => r,
            }
        }
    };
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
    let show = print(&mut engine, commits, args.limit, &mut stdout, &mut stderr);
    let (pulled, shown) = tokio::join!(pull, show);
    let n = shown?;
    pulled?;
    eprintln!(
        "{}: {} complaints, {} dead letters",
        p.name, n.complaints, n.dead_letters
    );
    Ok(n)
}

/// One export file, as the connector would read it.
async fn read_one(p: &Profile, sink: &Sink, file: &std::path::Path) -> Result<()> {
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let items = export::rows(p, &name, &bytes)?;
    let mut c = Commit::default();
    for (_, f) in items {
        match f {
            crate::connectors::board::Fetched::Record(e) => c.records.push(e),
            crate::connectors::board::Fetched::Dead(d) => c.dead.push(d),
        }
    }
    sink.commit(c).await
}
