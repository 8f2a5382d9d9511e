//! The `chokepoint` command line: verbs, flags and what they print. Errors reach the user as
//! one clear message and a non-zero exit, never as a panic.

use crate::run::{RunOptions, run_embedded};
use crate::scenario;
use crate::serve::{self, PlacementKind, ServeError, ServeOptions};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario in this process and write per-tick CSV files.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's number of ticks.
        #[arg(long)]
        ticks: Option<u32>,
        /// Output folder (default: out/<scenario>-seed<seed>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
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
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's number of ticks.
        #[arg(long)]
        ticks: Option<u32>,
        /// Output folder (default: out/<scenario>-seed<seed>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Check a scenario file and print what it defines.
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
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
    match execute(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a scenario and applies the command line's overrides.
fn prepare(path: &std::path::Path, seed: Option<u64>, ticks: Option<u32>) -> anyhow::Result<scenario::Scenario> {
    let mut s = scenario::load(path)?;
    if let Some(seed) = seed {
        s.seed = seed;
    }
    if let Some(ticks) = ticks {
        anyhow::ensure!(ticks > 0, "--ticks must be at least 1");
        s.ticks = ticks;
    }
    Ok(s)
}

fn announce(s: &scenario::Scenario, out: &std::path::Path) {
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

pub fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { scenario, seed, ticks, out, quiet } => {
            let s = prepare(&scenario, seed, ticks)?;
            let out = out.unwrap_or_else(|| default_out(&s));
            announce(&s, &out);
            let s = Arc::new(s);
            let summary = run_embedded(s.clone(), &RunOptions { out: Some(out.clone()), progress: !quiet })
                .with_context(|| format!("run of {} with seed {} failed", s.name, s.seed))?;
            print!("{}", summary.render(&s));
            println!("Seed {}; outputs in {}", s.seed, out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { scenario, listen, nodes, placement, tick_deadline, join_timeout, seed, ticks, out, quiet } => {
            anyhow::ensure!(nodes >= 1, "--nodes must be at least 1");
            let s = prepare(&scenario, seed, ticks)?;
            let out = out.unwrap_or_else(|| default_out(&s));
            let options = ServeOptions {
                nodes,
                placement,
                tick_deadline: seconds("--tick-deadline", tick_deadline)?,
                join_timeout: seconds("--join-timeout", join_timeout)?,
                run: RunOptions { out: Some(out.clone()), progress: !quiet },
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(serve_main(s, &listen, options, &out))
        }
        Command::Check { scenario } => {
            let s = scenario::load(&scenario)?;
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
    }
}

async fn serve_main(
    s: scenario::Scenario,
    listen: &str,
    options: ServeOptions,
    out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    announce(&s, out);
    println!("Run {} listening on {addr}; waiting for {} agent node(s):", serve::run_id(&s), options.nodes);
    println!("  agent-node --coordinator http://{addr}");
    let s = Arc::new(s);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match serve::serve(listener, s.clone(), options, shutdown).await {
        Ok(report) => {
            print!("{}", report.summary.render(&s));
            print!("{}", report.latency.render());
            let (messages, bytes) = report.traffic_per_tick();
            println!("Traffic: {messages:.1} messages and {bytes:.0} bytes per tick over {} nodes", report.nodes.len());
            for (name, agents, _) in &report.nodes {
                println!("  node {name}: {agents} agents");
            }
            println!("Seed {}; outputs in {}", s.seed, out.display());
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
            "run of {} with seed {} failed; outputs of completed ticks are in {}",
            s.name,
            s.seed,
            out.display()
        ))),
    }
}
