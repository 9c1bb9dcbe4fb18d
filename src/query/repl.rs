//! The interactive `duban sql` REPL: statements end with `;` (may span lines), history is kept in
//! a file, `\d` lists tables, `\d TABLE` describes one, `\format F` switches output, `\q` quits.

use anyhow::{Context, Result};
use rustyline::error::ReadlineError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Access, Format, SqlOptions, lake_context_with, plan, render_bytes};

/// The default history file: `$HOME/.duban_sql_history` (`.duban_sql_history` without HOME).
pub fn default_history() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".duban_sql_history")
}

pub async fn repl(
    lake: &Path,
    opts: &SqlOptions,
    mut format: Format,
    history: &Path,
) -> Result<()> {
    use std::io::Write;
    let ctx = lake_context_with(lake, opts).await?;
    let mut rl = rustyline::DefaultEditor::new().context("cannot start the line editor")?;
    // A missing history file is the first session; other errors are reported and ignored.
    if history.exists()
        && let Err(e) = rl.load_history(history)
    {
        eprintln!("warning: cannot read history {}: {e}", history.display());
    }
    let mut out = std::io::stdout();
    writeln!(
        out,
        "duban sql on {} — end statements with ';', \\d lists tables, \\q quits",
        lake.display()
    )?;
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() {
            "duban> "
        } else {
            "   ...> "
        };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading input"),
        };
        let trimmed = line.trim();
        if pending.is_empty() && trimmed.starts_with('\\') {
            let _ = rl.add_history_entry(trimmed);
            let mut parts = trimmed.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("\\q"), _) => break,
                (Some("\\d"), None) => {
                    run(&ctx, &opts.limits, "SHOW TABLES", Format::Table, &mut out).await;
                }
                (Some("\\d"), Some(t)) => {
                    run(
                        &ctx,
                        &opts.limits,
                        &format!("DESCRIBE {t}"),
                        Format::Table,
                        &mut out,
                    )
                    .await;
                }
                (Some("\\format"), Some(f)) => {
                    match <Format as clap::ValueEnum>::from_str(f, true) {
                        Ok(Format::Parquet) | Err(_) => {
                            writeln!(out, "error: formats here are table, csv, json")?
                        }
                        Ok(f) => format = f,
                    }
                }
                _ => writeln!(
                    out,
                    "error: unknown command {trimmed} (\\d, \\d TABLE, \\format F, \\q)"
                )?,
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        if !trimmed.ends_with(';') {
            continue;
        }
        let stmt = std::mem::take(&mut pending);
        let _ = rl.add_history_entry(stmt.as_str());
        run(
            &ctx,
            &opts.limits,
            stmt.trim().trim_end_matches(';'),
            format,
            &mut out,
        )
        .await;
    }
    rl.save_history(history)
        .with_context(|| format!("cannot save history {}", history.display()))?;
    Ok(())
}

/// Run one statement and print its result or its error (the REPL goes on either way).
async fn run(
    ctx: &datafusion::prelude::SessionContext,
    limits: &super::SqlLimits,
    sql: &str,
    format: Format,
    out: &mut impl std::io::Write,
) {
    let started = std::time::Instant::now();
    let result = async {
        let df = plan(ctx, sql, Access::ReadOnlyWithViews).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = super::collect(df, limits).await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        Ok::<_, anyhow::Error>((render_bytes(&batches, format, Some(&schema))?, rows))
    }
    .await;
    let _ = match result {
        Ok((bytes, rows)) => out.write_all(&bytes).and_then(|_| {
            writeln!(
                out,
                "{rows} row{} in {:.3} s",
                if rows == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            )
        }),
        Err(e) => writeln!(
            out,
            "error: {}",
            format!("{e:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
}
