//! The `chokepoint` command line: verbs, flags and what they print. Errors reach the user as
//! one clear message and a non-zero exit, never as a panic.

use crate::run::{RunOptions, run_embedded};
use crate::scenario;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
    /// Check a scenario file and print what it defines.
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHOKEPOINT_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { scenario, seed, ticks, out, quiet } => {
            let mut s = scenario::load(&scenario)?;
            if let Some(seed) = seed {
                s.seed = seed;
            }
            if let Some(ticks) = ticks {
                anyhow::ensure!(ticks > 0, "--ticks must be at least 1");
                s.ticks = ticks;
            }
            let out = out.unwrap_or_else(|| PathBuf::from("out").join(format!("{}-seed{}", s.name, s.seed)));
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
            let s = Arc::new(s);
            let summary = run_embedded(s.clone(), &RunOptions { out: Some(out.clone()), progress: !quiet })
                .with_context(|| format!("run of {} with seed {} failed", s.name, s.seed))?;
            print!("{}", summary.render(&s));
            println!("Seed {}; outputs in {}", s.seed, out.display());
            Ok(())
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
            Ok(())
        }
    }
}
