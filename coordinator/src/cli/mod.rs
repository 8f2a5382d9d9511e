//! The `chokepoint` command line: verbs, flags and what they print. Errors reach the user as
//! one clear message and a non-zero exit, never as a panic. This file holds the flags and the
//! dispatch; each verb's work is a function in `run` (run, serve, exercise), `records` (check,
//! resume, replay, fork, db check, db salvage), `reads` (runs, runs show, state, report,
//! export: the verbs a running process answers for others, over `live`), `debrief` (diff,
//! debrief) or `research` (sweep, synth).

mod debrief;
mod live;
mod reads;
mod records;
mod research;
mod run;

use crate::hosts::OnNodeLoss;
use crate::serve::PlacementKind;
use crate::store::{RunId, RunMeta, Store};
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
        #[command(flatten)]
        serve: ServeArgs,
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
        tls: TlsArgs,
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
    /// Continue an interrupted run from its last snapshot, in this process or (with --serve)
    /// on agent nodes again (an exercise only with --ai, in this process).
    #[command(group(
        clap::ArgGroup::new("serving")
            .multiple(true)
            .requires("serve")
            .args(["listen", "nodes", "placement", "tick_deadline", "join_timeout", "on_node_loss",
                   "local_fallback", "node_secret_file", "journal_actions", "tls_cert", "tls_key",
                   "max_connections", "auth_timeout"])
    ))]
    Resume {
        /// The run's id (see `chokepoint runs`).
        run: u64,
        /// Continue a war-game exercise (interrupted, or ended by its control cell) with every
        /// nation under AI control, writing to a new output folder (in this process, not with
        /// --serve).
        #[arg(long, conflicts_with = "serve")]
        ai: bool,
        /// With --ai: the new output folder (default: the exercise's folder with -ai appended).
        #[arg(long, requires = "ai")]
        out: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Serve the rest of the run to agent nodes, as `serve` does (with its flags).
        #[arg(long)]
        serve: bool,
        #[command(flatten)]
        serving: ServeArgs,
    },
    /// Re-execute a run from its snapshots and check every recorded digest.
    Replay {
        /// The run's id (see `chokepoint runs`).
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
        /// The run's id (see `chokepoint runs`).
        run: u64,
        /// The branch tick: the fork starts from the world at the start of this tick.
        #[arg(long)]
        at: u32,
        /// The fork's length in ticks (where it ends; default: the parent's when the parent
        /// ended early, such as an exercise its control cell ended, else the scenario's).
        #[arg(long)]
        ticks: Option<u32>,
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
        /// The run's id (see `chokepoint runs`).
        run: u64,
        /// Output folder (default: out/report-run<ID>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a recorded run's tidy tables (prices, trades, production, stockpiles, shortages,
    /// events, orders) as CSV or Parquet.
    Export {
        /// The run's id (see `chokepoint runs`).
        run: u64,
        /// The file format of the tables.
        #[arg(long, value_enum, default_value = "csv")]
        format: crate::debrief::export::Format,
        /// Output folder (default: out/export-run<ID>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare two recorded runs: the first tick where they diverge and the outcome deltas.
    Diff {
        /// The first run's id (e.g. an exercise).
        a: u64,
        /// The second run's id (e.g. its fork).
        b: u64,
        /// Also write a page (index.html: tables, the first divergence marked, both runs'
        /// prices charted) to this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve the DVR console for a recorded run: a tick slider over the saved world, and each
    /// nation's view as it saw it.
    Debrief {
        /// The run's id (see `chokepoint runs`).
        run: u64,
        /// Address to listen on (port 0 picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:7401")]
        listen: String,
    },
    /// Run a scenario over many seeds and parameter values, in parallel, and summarise the
    /// outcome distributions.
    Sweep {
        /// The scenario file (TOML).
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
        /// The generator's seed (the same parameters and seed give the same file).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The scenario's number of ticks.
        #[arg(long, default_value_t = 52)]
        ticks: u32,
        /// The scenario file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a run database (`db check`: which runs are intact, recoverable from an earlier
    /// snapshot, or lost) or copy what can be saved into a new one (`db salvage --out NEWDB`).
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Print the world of a run at the start of tick T, or write it as JSON.
    State {
        /// The run's id (see `chokepoint runs`).
        run: u64,
        /// The tick: the world at its start (after this many ticks have run).
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

/// How a run is served to agent nodes: `serve`, and `resume --serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub listen: String,
    /// How many agent nodes to wait for (and to run on at most at once).
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// How agents are spread over the nodes (ordered by name).
    #[arg(long, value_enum, default_value = "round-robin")]
    pub placement: PlacementKind,
    /// Seconds a node may take to answer one tick before it is dropped.
    #[arg(long, default_value_t = 30.0)]
    pub tick_deadline: f64,
    /// Seconds to wait for all nodes to join.
    #[arg(long, default_value_t = 600.0)]
    pub join_timeout: f64,
    /// When a node disconnects or misses the deadline: move its agents to the other nodes and
    /// go on (redistribute), or stop the run (stop).
    #[arg(long, value_enum, default_value = "redistribute")]
    pub on_node_loss: OnNodeLoss,
    /// When the last node is lost, run every agent in the coordinator rather than stop (nodes
    /// that join later take them back).
    #[arg(long)]
    pub local_fallback: bool,
    /// Read the join secret from this file (16 to 512 printable characters) instead of making
    /// one and printing it.
    #[arg(long)]
    pub node_secret_file: Option<PathBuf>,
    /// Journal every node's action batches, so replay, fork and debrief are exact whatever ran
    /// the agents (nodes that do not call themselves deterministic are journaled anyway).
    #[arg(long)]
    pub journal_actions: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// The most connections open at once on the port (default: 2 per node plus 16, at least 32).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Seconds a connection may stay open without presenting the join secret.
    #[arg(long, default_value_t = 10.0)]
    pub auth_timeout: f64,
}

/// TLS for a server's ports: both flags or neither.
#[derive(clap::Args, Debug)]
pub struct TlsArgs {
    /// The server's certificate (chain), PEM; with --tls-key, the ports speak TLS only.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    fn load(&self) -> anyhow::Result<Option<crate::tls::Tls>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::Tls::load(cert, key)?)),
            _ => Ok(None),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Details of one run.
    Show {
        /// The run's id.
        run: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Read every record of every run and say whether each run is intact, recoverable from an
    /// earlier snapshot, or lost. The database is never written.
    Check,
    /// Copy every run that is not lost — intact ones whole, recoverable ones cut back to their
    /// last good snapshot — with its ticks, snapshots and journal, into a new database.
    Salvage {
        /// The new database (must not exist yet).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // sled logs its own errors in its own words; they reach the user as one sentence each,
    // through the store, so its log is off unless CHOKEPOINT_LOG asks for it.
    let default_level = if matches!(cli.command, Command::Serve { .. }) { "info,sled=off" } else { "warn,sled=off" };
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

/// Opens the database for a verb that records runs, saying how it was opened when that is
/// worth knowing (a repair), and answers other processes' read-only verbs over a socket while
/// the verb runs (drop the second value before the store).
fn open_store(db: &Path) -> anyhow::Result<(Arc<Store>, Option<live::Serving>)> {
    let store = Arc::new(Store::open(db)?);
    if let Some(notice) = store.notice() {
        eprintln!("{notice}");
    }
    let serving = live::serve(store.clone(), db);
    Ok((store, serving))
}

/// Opens the database to read it (a copy when it is not known to be intact).
fn open_read(db: &Path) -> anyhow::Result<Store> {
    let store = Store::open_read(db)?;
    if let Some(notice) = store.notice() {
        eprintln!("{notice}");
    }
    Ok(store)
}

/// Runs a read-only verb: on the database, or when another process holds it, through that
/// process's read socket.
fn read(db: &Path, request: reads::Read) -> anyhow::Result<ExitCode> {
    let answer = match Store::open_read(db) {
        Ok(store) => {
            if let Some(notice) = store.notice() {
                eprintln!("{notice}");
            }
            let mut text = String::new();
            let done = reads::answer(&store, db, &request, &Default::default(), &mut text);
            print!("{text}");
            return done.map(|()| ExitCode::SUCCESS);
        }
        Err(crate::store::StoreError::Locked { holder: Some(h), path }) => match h.socket.as_deref() {
            Some(socket) => {
                live::ask(socket, request).ok_or(crate::store::StoreError::Locked { holder: Some(h.clone()), path })?
            }
            None => return Err(crate::store::StoreError::Locked { holder: Some(h), path }.into()),
        },
        Err(e) => return Err(e.into()),
    };
    print!("{}", answer.text);
    match answer.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(anyhow::anyhow!(e)),
    }
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
        Command::Run { scenario, threads, args } => run::run(db, scenario, threads, args),
        Command::Serve { scenario, serve, args } => run::serve(db, scenario, serve, args),
        Command::Exercise { scenario, players, turn, deadline, tick_interval, listen, grpc_listen, tls, args } => {
            let flags = run::ExerciseFlags { players, turn, deadline, tick_interval, listen, grpc_listen, tls };
            run::exercise(db, scenario, flags, args)
        }
        Command::Check { scenario } => records::check(scenario),
        Command::Runs { show: None } => read(db, reads::Read::Runs),
        Command::Runs { show: Some(RunsCommand::Show { run }) } => read(db, reads::Read::Show { run }),
        Command::Db { command: DbCommand::Check } => records::db_check(db),
        Command::Db { command: DbCommand::Salvage { out } } => records::db_salvage(db, out),
        Command::Resume { run, ai, out, quiet, serve: false, .. } => records::resume(db, run, ai.then_some(out), quiet),
        Command::Resume { run, quiet, serve: true, serving, .. } => run::resume_served(db, run, serving, quiet),
        Command::Replay { run, from, to } => records::replay(db, run, from, to),
        Command::Fork { run, at, ticks, seed, events, out, quiet } => {
            let options = crate::history::ForkOptions { seed, events_file: events, ticks, out, progress: !quiet };
            records::fork(db, run, at, options)
        }
        Command::State { run, at, json } => read(db, reads::Read::State { run, at, json }),
        Command::Report { run, out } => {
            let out = out.unwrap_or_else(|| PathBuf::from("out").join(format!("report-run{run}")));
            read(db, reads::Read::Report { run, out })
        }
        Command::Export { run, format, out } => {
            let out = out.unwrap_or_else(|| PathBuf::from("out").join(format!("export-run{run}")));
            let format =
                clap::ValueEnum::to_possible_value(&format).map_or_else(String::new, |v| v.get_name().to_string());
            read(db, reads::Read::Export { run, format, out })
        }
        Command::Diff { a, b, out } => debrief::diff(db, a, b, out),
        Command::Debrief { run, listen } => debrief::debrief(db, run, listen),
        Command::Sweep { scenario, seeds, set, jobs, ticks, out, quiet } => {
            research::sweep(scenario, research::SweepFlags { seeds, set, jobs, ticks, out, quiet })
        }
        Command::Synth { nations, agents, seed, ticks, out } => research::synth(nations, agents, seed, ticks, out),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// `--help` of every verb describes every argument.
    #[test]
    fn every_argument_of_every_verb_has_a_help_text() {
        fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), "chokepoint", &mut missing);
        assert!(missing.is_empty(), "arguments without a help text: {missing:?}");
    }
}
