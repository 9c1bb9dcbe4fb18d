//! The `duban` command line: demo, sim, run/ingest/process on Kafka, and sql over the lake.
//! Errors reach the user as one line (with their causes) and a non-zero exit code.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

use duban::config::Config;
use duban::connectors::ConnectorFiles;
use duban::pipeline;

/// mimalloc instead of the system allocator: the engine's stages allocate on some threads and
/// free on others (complaints are built on the normalize threads, written and dropped on the
/// output thread), which the system allocator serves slowly (`cargo bench --bench engine`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "duban",
    version,
    about = "督办: complaint ingestion and analytics for a law-enforcement supervision bureau"
)]
struct Cli {
    /// Address of the ops endpoints (`/metrics`, `/healthz`, `/readyz`) of a long-running command;
    /// overrides `[ops] http_bind` (default 127.0.0.1:9464; port 0: any free port, logged).
    #[arg(long, global = true, env = "DUBAN_OPS_BIND")]
    ops_bind: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every stage in one process on the in-process bus with the simulator, write DIR, print a summary.
    Demo {
        /// Output folder (lake/, alerts.jsonl, summary.json).
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        /// Corpus seed.
        #[arg(long, default_value_t = 20261127)]
        seed: u64,
        /// Number of distinct complaints in the corpus.
        #[arg(long, default_value_t = 1200)]
        size: usize,
        /// Configuration (rules, taxonomy, units); connectors are pointed at the in-process simulator.
        #[arg(long, default_value = "config/duban.toml")]
        config: PathBuf,
    },
    /// The feed simulator.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Connectors and engine against Kafka (the production path).
    Run {
        #[arg(long, default_value = "config/duban.toml")]
        config: PathBuf,
    },
    /// Only the connectors: feeds → raw topic.
    Ingest {
        #[arg(long, default_value = "config/duban.toml")]
        config: PathBuf,
    },
    /// Only the engine: raw topic → complaints, alerts, dlq topics and the lake.
    Process {
        #[arg(long, default_value = "config/duban.toml")]
        config: PathBuf,
    },
    /// Only the alert lifecycle: raised alerts and actions → the board (yellow/red/green), deadlines,
    /// documents, notifications, and the alerts HTTP API.
    Lifecycle {
        #[arg(long, default_value = "config/duban.toml")]
        config: PathBuf,
    },
    /// Alerts through the lifecycle's HTTP API: list, show, assign, feedback, verify, escalate, reopen.
    Alerts(duban::lifecycle::cli::AlertsArgs),
    /// Run the engine over a historical export (CSV/JSONL/XLSX) with a mapping, writing the lake and alerts.
    Backfill {
        /// The export file.
        #[arg(long)]
        input: PathBuf,
        /// Mapping of the export's columns to a channel's raw fields (e.g. connectors/board-export.toml).
        #[arg(long)]
        mapping: PathBuf,
        /// Output folder (lake/, alerts.jsonl, summary.json).
        #[arg(long, default_value = "out/backfill")]
        out: PathBuf,
        /// Configuration (rules, thresholds, taxonomy, units).
        #[arg(long, default_value = "config/duban.toml")]
        config: PathBuf,
    },
    /// Train a domain classifier on labeled CSV (`title`, `body`, `label`).
    Train(duban::classify::cli::TrainArgs),
    /// Evaluate a model on labeled CSV: accuracy, macro-F1, per-class scores.
    Eval(duban::classify::cli::EvalArgs),
    /// Classify JSON lines (`title`, `body`) from stdin; writes them back with `label`, `confidence`.
    Classify(duban::classify::cli::ClassifyArgs),
    /// Labeling: which complaints to label next.
    Label {
        #[command(subcommand)]
        command: LabelCommand,
    },
    /// A situation report (HTML with charts, Markdown, JSON) of a day, week or month of the lake.
    Report(duban::report::ReportArgs),
    /// The supervision board in the browser (three colours, evidence, actions, dashboard, live).
    Serve(duban::web::ServeArgs),
    /// SQL over the lake: one query (`duban sql "QUERY"`) or, without one, an interactive REPL.
    Sql(SqlArgs),
    /// Serve the lake over Arrow Flight SQL on 127.0.0.1 (read-only; token in DUBAN_SQL_TOKEN).
    ServeSql {
        /// Lake folder (e.g. out/demo/lake).
        #[arg(long, default_value_os_t = duban::config::Config::default_lake_dir())]
        lake: PathBuf,
        /// Port on 127.0.0.1 (0: any free port, printed at start).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        #[command(flatten)]
        classifier: ClassifierArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Queries run at once; one more is refused (default: [sql] max_concurrent_queries, 4).
        #[arg(long)]
        max_concurrent: Option<usize>,
    },
    /// Score the analytic core: a backfill against `duban sim year`'s truth or hand labels.
    Score {
        #[command(subcommand)]
        command: duban::score::ScoreCommand,
    },
    /// Lake maintenance.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// Connector profiles: try one against its feed without Kafka.
    Connector {
        #[command(subcommand)]
        command: ConnectorCommand,
    },
    /// Copy duban's tables to another store.
    Sink {
        #[command(subcommand)]
        command: SinkCommand,
    },
}

#[derive(clap::Args)]
struct ClassifierArgs {
    /// Configuration whose classifier `classify(title, body)` uses (its model, else its taxonomy).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A model from `duban train` for `classify(title, body)` (overrides the configuration's).
    #[arg(long)]
    model: Option<PathBuf>,
}

/// Limits of a query; defaults: the `[sql]` section of `--config` (memory 1024 MiB, 300 s).
#[derive(clap::Args)]
struct LimitArgs {
    /// Memory of one query's operators, in MiB (sorts, aggregations and joins spill beyond it).
    #[arg(long)]
    memory_limit_mb: Option<usize>,
    /// Seconds a query may run before it is stopped.
    #[arg(long)]
    timeout_secs: Option<u64>,
}

#[derive(clap::Args)]
struct SqlArgs {
    /// Lake folder (e.g. out/demo/lake).
    #[arg(long, default_value_os_t = duban::config::Config::default_lake_dir())]
    lake: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    format: duban::query::Format,
    /// Write the result to FILE instead of stdout (needed for parquet).
    #[arg(long)]
    output: Option<PathBuf>,
    /// REPL history file (default ~/.duban_sql_history).
    #[arg(long)]
    history: Option<PathBuf>,
    #[command(flatten)]
    classifier: ClassifierArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// The query; without it, an interactive REPL starts.
    query: Option<String>,
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Merge each day partition's small files into one, dropping superseded versions.
    Compact {
        #[arg(long, default_value_os_t = duban::config::Config::default_lake_dir())]
        lake: PathBuf,
    },
    /// Read every Parquet file of the lake's tables to its end and list those that fail (exit 1
    /// when there are any); with --quarantine, move them to `<lake>.quarantine/`.
    Check {
        #[arg(long, default_value = "var/data/lake")]
        lake: PathBuf,
        #[arg(long)]
        quarantine: bool,
    },
}

#[derive(Subcommand)]
enum ConnectorCommand {
    /// Pull a profile's feed (or read an export file) once and print each record as the
    /// canonical complaint, one JSON object a line; dead letters and their reasons go to stderr.
    Check(duban::connectors::profile::check::CheckArgs),
}

#[derive(Subcommand)]
enum SinkCommand {
    /// `[sinks.clickhouse]`: with --lake, copy that lake once; else consume the complaints and
    /// alerts topics (and the data folder's lake snapshots) until stopped.
    Clickhouse {
        #[arg(long, default_value = "config/duban.toml")]
        config: PathBuf,
        /// Copy this lake folder once and exit.
        #[arg(long)]
        lake: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LabelCommand {
    /// Print the ids of the N rows of a CSV most worth labeling (uncertainty and diversity with
    /// `--model`, diversity alone without), one a line.
    Suggest(duban::classify::cli::SuggestArgs),
}

#[derive(Subcommand)]
enum SimCommand {
    /// Serve the four channels' feeds over HTTP on 127.0.0.1 and push Wanshitong webhooks.
    Serve(Box<duban::sim::SimServeArgs>),
    /// Write a year-long message-board export built from the shared real texts, with planted
    /// truth (issues, resubmissions, heavy posters) for `duban score year`.
    Year(duban::sim::year::YearArgs),
}

fn sql_options(a: &ClassifierArgs, l: &LimitArgs) -> Result<duban::query::SqlOptions> {
    let mut opts = if a.config.is_none() && a.model.is_none() {
        duban::query::SqlOptions::default()
    } else {
        duban::query::SqlOptions::from_config(a.config.as_deref(), a.model.as_deref())?
    };
    if let Some(m) = l.memory_limit_mb {
        opts.limits.memory_limit_mb = m;
    }
    if let Some(t) = l.timeout_secs {
        opts.limits.query_timeout_secs = t;
    }
    Ok(opts)
}

fn load(config: &std::path::Path) -> Result<(Config, ConnectorFiles)> {
    let cfg = Config::load(config)?;
    let files = ConnectorFiles::load_with(&cfg.connectors.dir, &cfg.connectors.profiles)?;
    Ok((cfg, files))
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what service managers send to stop a process).
async fn ctrl_c() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("stopping");
}

/// Start the ops endpoints of a long-running command (`[ops]` of `config` when it has one).
async fn ops(flag: &Option<String>, config: Option<&Config>, command: &str) -> Result<()> {
    let bind = duban::ops::server::Bind::resolve(flag.as_deref(), config.map(|c| &c.ops));
    duban::ops::server::start(&bind, command).await?;
    Ok(())
}

/// The configuration of `path` when given (for its `[ops]` section), else none.
fn optional_config(path: Option<&std::path::Path>) -> Result<Option<Config>> {
    path.map(Config::load).transpose()
}

async fn main_inner(cli: Cli) -> Result<()> {
    let flag = cli.ops_bind;
    match cli.command {
        Command::Demo {
            out,
            seed,
            size,
            config,
        } => {
            let cfg = Config::load(&config)?;
            let sim = duban::sim::SimConfig {
                seed,
                size,
                ..Default::default()
            };
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let outcome = pipeline::embedded::run_demo_reporting(
                &cfg,
                &cfg.connectors.dir,
                sim,
                &out,
                &|line| eprintln!("[demo] {line}"),
            )
            .await?;
            print!("{}", outcome.summary.render());
            println!(
                "wrote {} (lake/, alerts.jsonl, summary.json)",
                out.display()
            );
            println!(
                "try: duban sql --lake {}/lake \"select channel, count(*) from complaints group by channel\"",
                out.display()
            );
        }
        Command::Sim {
            command: SimCommand::Serve(args),
        } => duban::sim::serve_forever(*args).await?,
        Command::Sim {
            command: SimCommand::Year(args),
        } => tokio::task::spawn_blocking(move || duban::sim::year::run(&args))
            .await
            .context("sim year panicked")??,
        Command::Run { config } => {
            let (cfg, files) = load(&config)?;
            cfg.engine.pseudonym_key.resolve()?;
            ops(&flag, Some(&cfg), "duban run").await?;
            let bus = pipeline::kafka::connect(&cfg).await?;
            let data = cfg.data_dir();
            tracing::info!(
                "duban run: Kafka {}, data in {}",
                cfg.kafka.bootstrap_servers,
                data.display()
            );
            let ingest = duban::connectors::run::ingest_kafka(&cfg, &files, bus.clone(), ctrl_c());
            let reports = duban::report::schedule::run(
                &cfg,
                bus.clone(),
                data.join("lake"),
                duban::report::schedule::SystemClock,
                ctrl_c(),
            );
            let process = pipeline::kafka::process(&cfg, bus.clone(), &data, ctrl_c());
            let sink_bus = bus.clone();
            let sink = async {
                match &cfg.sinks.clickhouse {
                    Some(ch) => {
                        duban::sink::clickhouse::run_consumer(
                            ch,
                            sink_bus,
                            &data.join("lake"),
                            ctrl_c(),
                        )
                        .await
                    }
                    None => Ok(()),
                }
            };
            let lifecycle = duban::lifecycle::run::run_kafka(&cfg, bus, &data, ctrl_c());
            let retrain = duban::classify::retrain::run(&cfg, data.join("lake"), ctrl_c());
            tokio::try_join!(ingest, process, reports, sink, lifecycle, retrain)?;
        }
        Command::Ingest { config } => {
            let (cfg, files) = load(&config)?;
            ops(&flag, Some(&cfg), "duban ingest").await?;
            let bus = pipeline::kafka::connect(&cfg).await?;
            duban::connectors::run::ingest_kafka(&cfg, &files, bus, ctrl_c()).await?;
        }
        Command::Process { config } => {
            let cfg = Config::load(&config)?;
            cfg.engine.pseudonym_key.resolve()?;
            ops(&flag, Some(&cfg), "duban process").await?;
            let bus = pipeline::kafka::connect(&cfg).await?;
            pipeline::kafka::process(&cfg, bus, &cfg.data_dir(), ctrl_c()).await?;
        }
        Command::Lifecycle { config } => {
            let cfg = Config::load(&config)?;
            ops(&flag, Some(&cfg), "duban lifecycle").await?;
            let bus = pipeline::kafka::connect(&cfg).await?;
            duban::lifecycle::run::run_kafka(&cfg, bus, &cfg.data_dir(), ctrl_c()).await?;
        }
        Command::Alerts(args) => duban::lifecycle::cli::run(args).await?,
        Command::Backfill {
            input,
            mapping,
            out,
            config,
        } => {
            let cfg = Config::load(&config)?;
            cfg.engine.pseudonym_key.resolve()?;
            let summary = pipeline::backfill::run(&cfg, &input, &mapping, &out).await?;
            print!("{}", summary.render());
            println!(
                "wrote {} (lake/, alerts.jsonl, summary.json)",
                out.display()
            );
        }
        Command::Report(args) => duban::report::run_cli(args).await?,
        Command::Serve(args) => {
            let cfg = optional_config(args.config.as_deref())?;
            ops(&flag, cfg.as_ref(), "duban serve").await?;
            duban::web::serve(args).await?
        }
        Command::Train(args) => duban::classify::cli::train(args).await?,
        Command::Eval(args) => duban::classify::cli::eval(args).await?,
        Command::Classify(args) => duban::classify::cli::classify(args).await?,
        Command::Label {
            command: LabelCommand::Suggest(args),
        } => duban::classify::cli::suggest(args).await?,
        Command::Sql(args) => {
            let opts = sql_options(&args.classifier, &args.limits)?;
            match args.query {
                Some(q) => {
                    duban::query::one_shot(
                        &args.lake,
                        &q,
                        &opts,
                        args.format,
                        args.output.as_deref(),
                    )
                    .await?
                }
                None => {
                    let history = args.history.unwrap_or_else(duban::query::default_history);
                    duban::query::repl(&args.lake, &opts, args.format, &history).await?
                }
            }
        }
        Command::ServeSql {
            lake,
            port,
            classifier,
            limits,
            max_concurrent,
        } => {
            let token = duban::query::flight::token_from_env()?;
            let mut opts = sql_options(&classifier, &limits)?;
            if let Some(n) = max_concurrent {
                opts.limits.max_concurrent_queries = n;
            }
            let cfg = optional_config(classifier.config.as_deref())?;
            ops(&flag, cfg.as_ref(), "duban serve-sql").await?;
            duban::query::flight::serve(&lake, port, token, opts, ctrl_c()).await?;
        }
        Command::Score { command } => duban::score::run(command).await?,
        Command::Lake {
            command: LakeCommand::Compact { lake },
        } => {
            let r = duban::lake::compact(&lake)?;
            println!(
                "compacted {} partitions: {} files → {}, {} rows, {} superseded rows dropped",
                r.partitions, r.files_before, r.files_after, r.rows, r.duplicates_dropped
            );
        }
        Command::Lake {
            command: LakeCommand::Check { lake, quarantine },
        } => {
            let bad = duban::lake::check(&lake)?;
            for b in &bad {
                println!(
                    "unreadable\t{}\t{}\t{}",
                    b.table,
                    b.path.display(),
                    b.reason
                );
            }
            if bad.is_empty() {
                println!("every Parquet file of {} reads", lake.display());
            } else if quarantine {
                let moved = duban::lake::quarantine(&lake, &bad)?;
                for m in &moved {
                    println!("moved\t{}", m.display());
                }
                println!(
                    "{} unreadable files moved to {}",
                    moved.len(),
                    duban::lake::check::quarantine_dir(&lake).display()
                );
            } else {
                anyhow::bail!(
                    "{} unreadable files in {} (--quarantine moves them aside)",
                    bad.len(),
                    lake.display()
                );
            }
        }
        Command::Connector {
            command: ConnectorCommand::Check(args),
        } => {
            duban::connectors::profile::check::run(args).await?;
        }
        Command::Sink {
            command: SinkCommand::Clickhouse { config, lake },
        } => {
            let cfg = Config::load(&config)?;
            let ch = cfg.sinks.clickhouse.clone().with_context(|| {
                format!("{} has no [sinks.clickhouse] section", config.display())
            })?;
            match lake {
                Some(lake) => {
                    let sink = duban::sink::clickhouse::ClickHouseSink::connect(&ch).await?;
                    let r = sink.load_lake(&lake).await?;
                    println!(
                        "ClickHouse {}: {} complaints, {} alerts, {} snapshot rows",
                        sink.database(),
                        r.complaints,
                        r.alerts,
                        r.snapshot_rows
                    );
                }
                None => {
                    ops(&flag, Some(&cfg), "duban sink clickhouse").await?;
                    let bus = pipeline::kafka::connect(&cfg).await?;
                    let lake = cfg.data_dir().join("lake");
                    duban::sink::clickhouse::run_consumer(&ch, bus, &lake, ctrl_c()).await?;
                }
            }
        }
    }
    Ok(())
}

impl Command {
    /// Whether the command is a long-running service, whose operators read its INFO log; an
    /// interactive command shows a person its own output and logs only warnings.
    fn is_service(&self) -> bool {
        matches!(
            self,
            Command::Run { .. }
                | Command::Ingest { .. }
                | Command::Process { .. }
                | Command::Lifecycle { .. }
                | Command::Serve(_)
                | Command::ServeSql { .. }
                | Command::Sim { .. }
                | Command::Sink { .. }
        )
    }
}

fn main() {
    let cli = Cli::parse();
    // The Kafka client's own lines repeat per connection attempt in an outage; duban tells
    // outages once per interval itself (`ops::outage`). DUBAN_LOG brings them back (e.g.
    // `info,librdkafka=warn,rdkafka=warn`).
    let default_log = if cli.command.is_service() {
        "info,rdkafka=warn,librdkafka=off,rdkafka::client=off"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DUBAN_LOG")
                .unwrap_or_else(|_| default_log.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(main_inner(cli)) {
        // One line: causes joined, line breaks inside messages (DataFusion's) folded.
        eprintln!(
            "error: {}",
            format!("{e:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
        std::process::exit(1);
    }
}
