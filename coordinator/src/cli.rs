//! The `chokepoint` command line: verbs, flags and what they print. Errors reach the user as
//! one clear message and a non-zero exit, never as a panic.

use crate::history::{self, HistoryError};
use crate::run::{Hooks, Persist, RunOptions, drive};
use crate::serve::{self, PlacementKind, ServeError, ServeOptions};
use crate::store::{RunId, RunMeta, RunStatus, Store};
use anyhow::Context;
use clap::{Parser, Subcommand};
use engine::scenario;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "chokepoint",
    version,
    about = "A deterministic simulator of the world market for critical materials and the governments that stockpile them."
)]
pub struct Cli {
    /// The run database (a sled directory; created if missing).
    #[arg(long, global = true, default_value = "chokepoint-data")]
    pub db: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario in this process, record it, and write per-tick CSV files.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Threads that decide the agents (default: one per core). Results are the same on any
        /// number; on a machine whose cores are hyperthread siblings, 1 is as fast and leaner.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        threads: Option<u16>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Coordinate a run whose agents are hosted by agent nodes over gRPC.
    Serve {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Address to listen on (port 0 picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: String,
        /// How many agent nodes to wait for.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// How agents are spread over the nodes (ordered by name).
        #[arg(long, value_enum, default_value = "round-robin")]
        placement: PlacementKind,
        /// Seconds a node may take to answer one tick before the run stops.
        #[arg(long, default_value_t = 30.0)]
        tick_deadline: f64,
        /// Seconds to wait for all nodes to join.
        #[arg(long, default_value_t = 600.0)]
        join_timeout: f64,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run a war-game exercise: analysts play nations in the browser, a control cell runs the
    /// clock. Prints the console's address and one access token per played nation and one for
    /// control.
    Exercise {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// The nations played by people (codes, comma-separated); the others stay under AI.
        #[arg(long, value_delimiter = ',', required = true)]
        players: Vec<String>,
        /// Ticks per turn.
        #[arg(long, default_value_t = 13)]
        turn: u32,
        /// How long players have to submit each turn: 10m, 90s, 1h.
        #[arg(long, default_value = "10m")]
        deadline: String,
        /// Wall time between ticks in real-time mode: 2s, 1m.
        #[arg(long, default_value = "2s")]
        tick_interval: String,
        /// Address for the web console (port 0 picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:7500")]
        listen: String,
        /// Address for the gRPC interface (chokepoint.v1.Exercise, with reflection and health).
        #[arg(long, default_value = "127.0.0.1:7501")]
        grpc_listen: String,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Check a scenario file and print what it defines.
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
    /// List recorded runs, or show one.
    Runs {
        #[command(subcommand)]
        show: Option<RunsCommand>,
    },
    /// Continue an interrupted run from its last snapshot.
    Resume {
        run: u64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Re-execute a run from its snapshots and check every recorded digest.
    Replay {
        run: u64,
        /// First tick to check (replay starts at the nearest snapshot before it).
        #[arg(long, default_value_t = 0)]
        from: u32,
        /// Last tick to check (default: the last recorded).
        #[arg(long)]
        to: Option<u32>,
    },
    /// Start a new run from tick T of a recorded one, optionally with another seed or events.
    Fork {
        run: u64,
        /// The branch tick: the fork starts from the world at the start of this tick.
        #[arg(long)]
        at: u32,
        /// A different seed from the branch tick on.
        #[arg(long)]
        seed: Option<u64>,
        /// A file of [[events]] (scenario format) that replaces the scheduled events after the
        /// branch tick.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Output folder (default: out/<scenario>-run<ID>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Write a self-contained HTML after-action report with SVG charts for a recorded run.
    Report {
        run: u64,
        /// Output folder (default: out/report-run<ID>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a recorded run's tidy tables (prices, trades, production, stockpiles, shortages,
    /// events, orders) as CSV or Parquet.
    Export {
        run: u64,
        #[arg(long, value_enum, default_value = "csv")]
        format: crate::debrief::export::Format,
        /// Output folder (default: out/export-run<ID>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare two recorded runs: the first tick where they diverge and the outcome deltas.
    Diff {
        a: u64,
        b: u64,
        /// Also write a page with both runs' prices charted to this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve the DVR console for a recorded run: a tick slider over the saved world, and each
    /// nation's view as it saw it.
    Debrief {
        run: u64,
        /// Address to listen on (port 0 picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:7401")]
        listen: String,
    },
    /// Run a scenario over many seeds and parameter values, in parallel, and summarise the
    /// outcome distributions.
    Sweep {
        scenario: PathBuf,
        /// Seeds: `1..1000` (inclusive) or `1,5,9`.
        #[arg(long)]
        seeds: String,
        /// A parameter and its values, e.g. `stockpile.US.target_days=60,90,180` (repeatable).
        #[arg(long = "set")]
        set: Vec<String>,
        /// Runs at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Override the scenario's number of ticks.
        #[arg(long)]
        ticks: Option<u32>,
        /// Output folder (runs.csv, runs.parquet, summary.csv, summary.parquet).
        #[arg(long)]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Write a synthetic scenario of any size (realistic proportions) for scale tests.
    Synth {
        /// Number of nations.
        #[arg(long, default_value_t = 50)]
        nations: usize,
        /// Number of agents in all (agencies, mines, refineries, industries).
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 52)]
        ticks: u32,
        /// The scenario file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the world of a run at the start of tick T, or write it as JSON.
    State {
        run: u64,
        #[arg(long)]
        at: u32,
        /// Write the whole state as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// The options `run` and `serve` share.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the scenario's number of ticks.
    #[arg(long)]
    pub ticks: Option<u32>,
    /// Output folder (default: out/<scenario>-seed<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A full snapshot every this many ticks.
    #[arg(long, default_value_t = 26)]
    pub snapshot_every: u32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Details of one run.
    Show { run: u64 },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve { .. }) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHOKEPOINT_LOG").unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match execute(&cli.db, cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a scenario and applies the command line's overrides.
fn prepare(path: &Path, seed: Option<u64>, ticks: Option<u32>) -> anyhow::Result<scenario::Scenario> {
    let mut s = crate::scenario_file::load(path)?;
    if let Some(seed) = seed {
        s.seed = seed;
    }
    if let Some(ticks) = ticks {
        anyhow::ensure!(ticks > 0, "--ticks must be at least 1");
        s.ticks = ticks;
    }
    Ok(s)
}

fn announce(s: &scenario::Scenario, out: &Path) {
    println!(
        "Chokepoint: scenario {} ({} nations, {} commodities, {} agents), seed {}, {} ticks",
        s.name,
        s.nations.len(),
        s.commodities.len(),
        s.agents.len(),
        s.seed,
        s.ticks
    );
    println!("Writing per-tick CSV files to {}", out.display());
}

fn default_out(s: &scenario::Scenario) -> PathBuf {
    PathBuf::from("out").join(format!("{}-seed{}", s.name, s.seed))
}

fn seconds(flag: &str, v: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(v.is_finite() && v > 0.0 && v < 1.0e7, "{flag} must be a positive number of seconds (got {v})");
    Ok(Duration::from_secs_f64(v))
}

fn open_store(db: &Path) -> anyhow::Result<Arc<Store>> {
    Ok(Arc::new(Store::open(db)?))
}

/// Records a new run of `s` and returns its id.
fn new_run(
    store: &Store,
    s: &scenario::Scenario,
    path: &Path,
    out: &Path,
    every: u32,
    mode: String,
) -> anyhow::Result<RunId> {
    anyhow::ensure!(every >= 1, "--snapshot-every must be at least 1");
    let meta = RunMeta::new(s, path.display().to_string(), out.display().to_string(), every, mode);
    Ok(store.create_run(&meta)?)
}

pub fn execute(db: &Path, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { scenario, threads, args: RunArgs { seed, ticks, out, snapshot_every, quiet } } => {
            let s = prepare(&scenario, seed, ticks)?;
            let store = open_store(db)?;
            let out = out.unwrap_or_else(|| default_out(&s));
            let run = new_run(&store, &s, &scenario, &out, snapshot_every, "embedded".into())?;
            announce(&s, &out);
            println!("Run {run} recorded in {}", db.display());
            let s = Arc::new(s);
            let mut engine = match threads {
                Some(t) => crate::sim::Sim::embedded_on(s.clone(), usize::from(t)),
                None => crate::sim::Sim::embedded(s.clone()),
            };
            let persist = Persist { store: store.clone(), run, snapshot_every };
            let options = RunOptions { out: Some(out.clone()), progress: !quiet, append: false };
            let outcome = drive(&mut engine, &options, &Hooks::default(), Some(&persist))
                .with_context(|| format!("run {run} of {} with seed {} failed", s.name, s.seed))?;
            print!("{}", outcome.summary.render(&s));
            println!("Run {run}, seed {}; outputs in {}; recorded in {}", s.seed, out.display(), db.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            scenario,
            listen,
            nodes,
            placement,
            tick_deadline,
            join_timeout,
            args: RunArgs { seed, ticks, out, snapshot_every, quiet },
        } => {
            anyhow::ensure!(nodes >= 1, "--nodes must be at least 1");
            let s = prepare(&scenario, seed, ticks)?;
            let store = open_store(db)?;
            let out = out.unwrap_or_else(|| default_out(&s));
            let run = new_run(&store, &s, &scenario, &out, snapshot_every, format!("served on {nodes} nodes"))?;
            let options = ServeOptions {
                run_id: run.to_string(),
                persist: Some(Persist { store, run, snapshot_every }),
                nodes,
                placement,
                tick_deadline: seconds("--tick-deadline", tick_deadline)?,
                join_timeout: seconds("--join-timeout", join_timeout)?,
                run: RunOptions { out: Some(out.clone()), progress: !quiet, append: false },
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(serve_main(s, &listen, options, &out, db))
        }
        Command::Exercise { scenario, players, turn, deadline, tick_interval, listen, grpc_listen, args } => {
            let listen = (listen.as_str(), grpc_listen.as_str());
            exercise_main(db, &scenario, &players, turn, &deadline, &tick_interval, listen, args)
        }
        Command::Check { scenario } => {
            let s = crate::scenario_file::load(&scenario)?;
            println!(
                "{}: ok — {} ({} nations, {} commodities, {} agents, {} events, {} ticks, seed {})",
                scenario.display(),
                s.name,
                s.nations.len(),
                s.commodities.len(),
                s.agents.len(),
                s.events.len(),
                s.ticks,
                s.seed
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs { show: None } => {
            let store = open_store(db)?;
            let runs = store.runs()?;
            if runs.is_empty() {
                println!("No runs recorded in {}", db.display());
            } else {
                println!(
                    "{:>5}  {:<22} {:>12} {:>13}  {:<12} {:<20} parent",
                    "id", "scenario", "seed", "ticks", "status", "mode"
                );
                for (id, m) in runs {
                    let parent = m.parent.map(|(p, t)| format!("{p} @ tick {t}")).unwrap_or_default();
                    let ticks = format!("{}/{}", m.ticks_done, m.ticks);
                    println!(
                        "{:>5}  {:<22} {:>12} {:>13}  {:<12} {:<20} {parent}",
                        id.0,
                        m.scenario_name,
                        m.seed,
                        ticks,
                        m.status.as_str(),
                        m.mode
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs { show: Some(RunsCommand::Show { run }) } => {
            let store = open_store(db)?;
            let id = RunId(run);
            let m = store.run(id)?;
            let ticks = store.ticks(id)?;
            println!("run {id}");
            println!("  scenario     {} ({})", m.scenario_name, m.scenario_path);
            println!("  seed         {}", m.seed);
            println!("  ticks        {} of {} done", m.ticks_done, m.ticks);
            println!(
                "  status       {}{}",
                m.status.as_str(),
                m.error.as_ref().map(|e| format!(" — {e}")).unwrap_or_default()
            );
            println!("  mode         {}", m.mode);
            println!("  version      {}", m.version);
            println!("  started      {} ms after the Unix epoch", m.started_unix_ms);
            if let Some((p, t)) = m.parent {
                println!("  forked from  run {p} at tick {t}");
            }
            println!(
                "  events       {}",
                if m.events.is_some() { "replaced after the branch tick" } else { "the scenario's" }
            );
            println!("  outputs      {}", m.out_dir);
            println!("  snapshots    every {} ticks, at {:?}", m.snapshot_every, store.snapshot_ticks(id)?);
            println!("  journal      {} entries", store.journal(id)?.len());
            let last = ticks
                .last()
                .map(|(t, e)| format!("tick {t}: {}", engine::digest::Digest(e.digest)))
                .unwrap_or_default();
            println!("  digests      {} recorded; last {last}", ticks.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { run, quiet } => {
            let store = open_store(db)?;
            let (meta, summary) = history::resume(store, RunId(run), None, !quiet)?;
            let s = history::scenario_of(&meta)?;
            print!("{}", summary.render(&s));
            println!(
                "Run {run} resumed to tick {} ({}); outputs in {}",
                meta.ticks_done,
                meta.status.as_str(),
                meta.out_dir
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { run, from, to } => {
            let store = open_store(db)?;
            match history::replay(&store, RunId(run), from, to) {
                Ok(r) => {
                    println!(
                        "Run {run}: replayed from the snapshot at tick {} to tick {}; all {} recorded digests match",
                        r.from_snapshot, r.last, r.checked
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ HistoryError::Divergence { .. }) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Fork { run, at, seed, events, out, quiet } => {
            let store = open_store(db)?;
            let (id, meta, summary) = history::fork(store, RunId(run), at, seed, events.as_deref(), out, !quiet)?;
            let s = history::scenario_of(&meta)?;
            print!("{}", summary.render(&s));
            println!("Run {id} forked from run {run} at tick {at}, seed {}; outputs in {}", meta.seed, meta.out_dir);
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { run, out } => {
            let store = open_store(db)?;
            let started = std::time::Instant::now();
            let data = crate::debrief::collect(&store, RunId(run))?;
            let out = out.unwrap_or_else(|| PathBuf::from("out").join(format!("report-run{run}")));
            let report = crate::debrief::report::write(&data, &out)
                .with_context(|| format!("cannot write the report to {}", out.display()))?;
            for h in &report.highlights {
                println!("  {h}");
            }
            println!(
                "Report for run {run} ({} ticks, {} charts) written to {} in {:.1} s",
                data.records.len(),
                report.charts.len(),
                report.index.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { run, format, out } => {
            let store = open_store(db)?;
            let data = crate::debrief::collect(&store, RunId(run))?;
            let out = out.unwrap_or_else(|| PathBuf::from("out").join(format!("export-run{run}")));
            let files = crate::debrief::export::write(&data, &out, format)
                .with_context(|| format!("cannot write to {}", out.display()))?;
            for table in crate::debrief::export::tables(&data) {
                println!("  {:<12} {:>8} rows", table.name, table.rows());
            }
            println!("Run {run}: {} tables written to {}", files.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { a, b, out } => {
            let store = open_store(db)?;
            let da = crate::debrief::collect(&store, RunId(a))?;
            let db_ = crate::debrief::collect(&store, RunId(b))?;
            let text = crate::debrief::diff::compare(&store, &da, &db_, out.as_deref()).map_err(anyhow::Error::msg)?;
            print!("{text}");
            if let Some(out) = out {
                println!("Charts written to {}", out.join("index.html").display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Debrief { run, listen } => {
            let store = open_store(db)?;
            let id = RunId(run);
            store.run(id)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                println!("Debrief of run {run} at http://{}/ (Ctrl-C to stop)", listener.local_addr()?);
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                crate::debrief::web::serve(store, id, listener, shutdown).await?;
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        Command::Sweep { scenario, seeds, set, jobs, ticks, out, quiet } => {
            let s = prepare(&scenario, None, ticks)?;
            let seeds = crate::sweep::parse_seeds(&seeds).map_err(anyhow::Error::msg)?;
            let params = set
                .iter()
                .map(|p| crate::sweep::parse_param(p, &s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let runs = seeds.len() * params.iter().map(|p| p.values.len()).product::<usize>();
            println!(
                "Sweep of {} over {} seeds × {} parameter combinations = {runs} runs, {jobs} at a time; writing to {}",
                s.name,
                seeds.len(),
                runs / seeds.len().max(1),
                out.display()
            );
            let started = std::time::Instant::now();
            let report = crate::sweep::sweep(
                &s,
                &crate::sweep::SweepOptions { seeds, params, jobs, out: out.clone(), progress: !quiet },
            )
            .map_err(anyhow::Error::msg)?;
            println!(
                "{} runs done, {} already finished and skipped, {} failed, in {:.1} s; summary in {}",
                report.done,
                report.skipped,
                report.failed.len(),
                started.elapsed().as_secs_f64(),
                out.join("summary.csv").display()
            );
            for (job, e) in &report.failed {
                eprintln!("run with seed {} and {:?} failed twice: {e}", job.seed, job.values);
            }
            Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Synth { nations, agents, seed, ticks, out } => {
            let text = engine::synth::generate(&engine::synth::SynthOptions { nations, agents, seed, ticks })
                .map_err(anyhow::Error::msg)?;
            std::fs::write(&out, &text).with_context(|| format!("cannot write {}", out.display()))?;
            let s = crate::scenario_file::load(&out)?;
            println!(
                "{}: {} nations, {} commodities, {} agents ({} bytes)",
                out.display(),
                s.nations.len(),
                s.commodities.len(),
                s.agents.len(),
                text.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::State { run, at, json } => {
            let store = open_store(db)?;
            let (s, state, digest) = history::state_at(&store, RunId(run), at)?;
            let view = crate::view::WorldView::new(&s, &state, &digest);
            match json {
                Some(path) => {
                    let text = serde_json::to_string_pretty(&view)?;
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
                    println!("Run {run} at tick {at} written to {}", path.display());
                }
                None => print!("{}", view.render()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve_main(
    s: scenario::Scenario,
    listen: &str,
    options: ServeOptions,
    out: &Path,
    db: &Path,
) -> anyhow::Result<ExitCode> {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            // The run was recorded before the bind: say how it ended.
            if let Some(p) = &options.persist {
                let _ = p.store.update_run(p.run, |m| {
                    m.status = RunStatus::Failed;
                    m.error = Some(format!("cannot listen on {listen}: {e}"));
                });
                let _ = p.store.flush();
            }
            return Err(anyhow::Error::new(e).context(format!("cannot listen on {listen}")));
        }
    };
    let addr = listener.local_addr()?;
    announce(&s, out);
    println!("Run {} listening on {addr}; waiting for {} agent node(s):", options.run_id, options.nodes);
    println!("  agent-node --coordinator http://{addr}");
    let s = Arc::new(s);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let run_id = options.run_id.clone();
    match serve::serve(listener, s.clone(), options, shutdown).await {
        Ok(report) => {
            print!("{}", report.summary.render(&s));
            print!("{}", report.latency.render());
            let (messages, bytes) = report.traffic_per_tick();
            println!("Traffic: {messages:.1} messages and {bytes:.0} bytes per tick over {} nodes", report.nodes.len());
            for (name, agents, _) in &report.nodes {
                println!("  node {name}: {agents} agents");
            }
            println!("Run {run_id}, seed {}; outputs in {}; recorded in {}", s.seed, out.display(), db.display());
            if report.completed {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "interrupted after {} ticks; outputs of completed ticks are in {}",
                    report.ticks,
                    out.display()
                );
                Ok(ExitCode::from(130))
            }
        }
        Err(ServeError::Interrupted) => {
            eprintln!("interrupted before the run started");
            Ok(ExitCode::from(130))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "run {run_id} of {} with seed {} failed; outputs of completed ticks are in {}",
            s.name,
            s.seed,
            out.display()
        ))),
    }
}

/// `chokepoint exercise`: records the run, prints the tokens, runs the engine on its own thread
/// and serves the console until the exercise ends.
#[allow(clippy::too_many_arguments)]
fn exercise_main(
    db: &Path,
    scenario: &Path,
    players: &[String],
    turn: u32,
    deadline: &str,
    tick_interval: &str,
    (listen, grpc_listen): (&str, &str),
    args: RunArgs,
) -> anyhow::Result<ExitCode> {
    use crate::exercise::{self, Game, Setup, Shared, api};
    let RunArgs { seed, ticks, out, snapshot_every, quiet: _ } = args;
    anyhow::ensure!((1..=520).contains(&turn), "--turn must be between 1 and 520 ticks");
    let deadline = exercise::parse_duration(deadline).map_err(|e| anyhow::anyhow!("--deadline: {e}"))?;
    let tick_interval = exercise::parse_duration(tick_interval).map_err(|e| anyhow::anyhow!("--tick-interval: {e}"))?;
    let s = prepare(scenario, seed, ticks)?;
    let mut played = Vec::new();
    for code in players {
        let code = code.trim();
        let n = s.nation_by_code(code).ok_or_else(|| {
            let known: Vec<&str> = s.nations.iter().map(|n| n.code.as_str()).collect();
            anyhow::anyhow!("--players: unknown nation \"{code}\" (nations: {})", known.join(", "))
        })?;
        anyhow::ensure!(!played.contains(&n), "--players: {code} is named twice");
        played.push(n);
    }
    let store = open_store(db)?;
    let out = out.unwrap_or_else(|| default_out(&s));
    let mut tokens = Vec::new();
    for n in &played {
        tokens.push((s.nation_code(*n).to_string(), exercise::new_token()?));
    }
    tokens.push(("control".to_string(), exercise::new_token()?));
    anyhow::ensure!(snapshot_every >= 1, "--snapshot-every must be at least 1");
    let mut meta =
        RunMeta::new(&s, scenario.display().to_string(), out.display().to_string(), snapshot_every, "exercise".into());
    meta.exercise = Some(crate::store::ExerciseMeta {
        players: played.iter().map(|n| s.nation_code(*n).to_string()).collect(),
        turn_ticks: turn,
        token_hashes: tokens.iter().map(|(role, t)| (role.clone(), exercise::token_hash(t))).collect(),
    });
    let run = store.create_run(&meta)?;
    let s = Arc::new(s);
    let engine = crate::sim::Sim::embedded(s.clone());
    let game = Game {
        scenario: s.clone(),
        setup: Setup { players: played.clone(), turn_ticks: turn, deadline, tick_interval },
        state: engine.state().clone(),
        records: Vec::new(),
        turn: 1,
        turn_started: std::time::Instant::now(),
        paused: false,
        realtime: false,
        advance: 0,
        ended: false,
        submitted: Default::default(),
        inbox: Vec::new(),
        conditionals: Vec::new(),
        messages: Vec::new(),
        notes: Vec::new(),
        missed: Vec::new(),
        failure: None,
        turn_ms: Vec::new(),
        missed_standing: true,
        last_orders: Default::default(),
        proposals: Vec::new(),
        next_proposal: 1,
        forecast_history: Default::default(),
    };
    let shared = Shared::new(game);
    let roles = tokens
        .iter()
        .map(|(role, t)| {
            let r = if role == "control" {
                api::Role::Control
            } else {
                api::Role::Player(s.nation_by_code(role).unwrap_or(agents::NationId(0)))
            };
            (exercise::token_hash(t), r)
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let grpc_listener = runtime
        .block_on(tokio::net::TcpListener::bind(grpc_listen))
        .with_context(|| format!("cannot listen on {grpc_listen}"))?;
    let grpc_addr = grpc_listener.local_addr()?;
    println!(
        "Exercise: {} (run {run}), {} ticks, turns of {turn} ticks, deadline {}s; outputs in {}",
        s.name,
        s.ticks,
        deadline.as_secs(),
        out.display()
    );
    println!("Console: http://{addr}/");
    println!("gRPC: {grpc_addr} (chokepoint.v1.Exercise; token as `authorization: Bearer <token>` metadata)");
    println!("Access tokens (shown once; only their hashes are stored):");
    for (role, t) in &tokens {
        println!("  {role:<8} {t}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let persist = Persist { store: store.clone(), run, snapshot_every };
    let options = RunOptions { out: Some(out.clone()), progress: false, append: false };
    let engine_shared = shared.clone();
    let worker = std::thread::spawn(move || exercise::play(&engine_shared, engine, &options, Some(&persist)));
    let api_state = api::Api::new(shared.clone(), roles);
    let app = api::router(api_state.clone());
    let watch = shared.clone();
    let grpc = crate::exercise::grpc::serve(api_state, grpc_listener, shared.clone());
    runtime.block_on(async move {
        let grpc = tokio::spawn(grpc);
        let ended = async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                if watch.game().ended {
                    // Give the consoles a last look at the final state.
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    break;
                }
            }
        };
        let _ = &grpc;
        let stop = shared.clone();
        let interrupt = async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.game().ended = true;
            stop.notify();
        };
        tokio::select! {
            r = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).with_graceful_shutdown(ended) => r,
            () = interrupt => Ok(()),
        }
    })?;
    let outcome = worker.join().map_err(|_| anyhow::anyhow!("the exercise's engine thread panicked"))?;
    let outcome = outcome.with_context(|| format!("exercise run {run} failed"))?;
    print!("{}", outcome.summary.render(&s));
    println!(
        "Exercise run {run} ended; outputs in {}; recorded in {} (replay, fork and debrief work on it)",
        out.display(),
        db.display()
    );
    Ok(ExitCode::SUCCESS)
}
