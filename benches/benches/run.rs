//! `chokepoint run` end to end against the engine alone, side by side: for synthetic worlds of
//! 10k and 100k agents (`CHOKEPOINT_RUN_AGENTS=10000,100000`), the world `chokepoint synth`
//! writes (nations = agents / 200, at least 50), `CHOKEPOINT_RUN_TICKS` ticks (default 52),
//! one decision thread. Each round times, in turn:
//!
//! - the engine alone, as the scale bench runs it: the world loaded from its `[synthetic]`
//!   table and stepped to the end, no outputs, no recording;
//! - `chokepoint run FILE --threads 1` with every output and recording, as a process of its
//!   own (this bench's executable, started again as the `chokepoint` command line), from
//!   start to exit: reading and checking the written file, the CSV files, the database with
//!   its snapshots, closing it.
//!
//! and reports per tick the engine's time, `run`'s time less the engine's load, and their
//! ratio; rounds alternate (`CHOKEPOINT_RUN_ROUNDS`, default 3) and medians are shown. With
//! `CHOKEPOINT_RUN_BEFORE=/path/to/chokepoint` (a release build of another commit), each round
//! also times that build's `run`, for the same figures side by side.
//! Run with `cargo bench -p chokepoint-benches --bench run`.

use chokepoint_benches::machine;
use coordinator::Sim;
use engine::synth::{SynthOptions, SynthWorld};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Set in the environment of the process this bench starts to be `chokepoint`.
const AS_CLI: &str = "CHOKEPOINT_BENCH_RUN_AS_CLI";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The engine alone: (load seconds, seconds for all the ticks).
fn engine_alone(options: &SynthOptions) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let world = SynthWorld::new(options).map_err(anyhow::Error::msg)?;
    let text = format!(
        "{}\n[synthetic]\nnations = {}\nagents = {}\n",
        world.scenario_table(),
        options.nations,
        options.agents
    );
    drop(world);
    let scenario = Arc::new(engine::scenario::parse(&text, "synth")?);
    let load = started.elapsed().as_secs_f64();
    let mut sim = Sim::embedded_on(scenario, 1);
    let started = Instant::now();
    while !sim.is_finished() {
        sim.step()?;
    }
    Ok((load, started.elapsed().as_secs_f64()))
}

/// `chokepoint run FILE --threads 1` in a process of its own (this build's, or the program
/// `other`), in seconds.
fn run_end_to_end(file: &Path, dir: &Path, round: usize, other: Option<&Path>) -> anyhow::Result<f64> {
    let db = dir.join(format!("db-{round}"));
    let out = dir.join(format!("out-{round}"));
    let mut command = match other {
        Some(program) => std::process::Command::new(program),
        None => {
            let mut c = std::process::Command::new(std::env::current_exe()?);
            c.env(AS_CLI, "1");
            c
        }
    };
    let started = Instant::now();
    let status = command
        .arg("--db")
        .arg(&db)
        .arg("run")
        .arg(file)
        .args(["--threads", "1", "--quiet", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "chokepoint run failed");
    let _ = std::fs::remove_dir_all(db);
    let _ = std::fs::remove_dir_all(out);
    Ok(secs)
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os(AS_CLI).is_some() {
        // Started by this bench as the `chokepoint` command line.
        std::process::exit(if coordinator::cli::main() == std::process::ExitCode::SUCCESS { 0 } else { 1 });
    }
    let sizes: Vec<usize> = std::env::var("CHOKEPOINT_RUN_AGENTS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let ticks: u32 = env_or("CHOKEPOINT_RUN_TICKS", 52);
    let rounds: usize = env_or("CHOKEPOINT_RUN_ROUNDS", 3).max(1);
    println!("`run` end to end against the engine alone, {ticks} ticks, one decision thread — {}", machine());
    let before = std::env::var_os("CHOKEPOINT_RUN_BEFORE").map(std::path::PathBuf::from);
    println!(
        "{:>8} {:>8} {:>14} {:>14} {:>14} {:>8} {:>16} {:>13}",
        "agents", "nations", "engine ms/tick", "run ms/tick", "run total s", "ratio", "before ms/tick", "before ratio"
    );
    let dir = std::env::temp_dir().join(format!("chokepoint-bench-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for agents in sizes {
        let nations = (agents / 200).max(50);
        let options = SynthOptions { nations, agents, seed: 1, ticks };
        let file = dir.join(format!("synth-{agents}.toml"));
        std::fs::write(&file, engine::synth::generate(&options).map_err(anyhow::Error::msg)?)?;
        let (mut engine, mut run, mut total, mut old) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let per_tick = |whole: f64, load: f64| (whole - load).max(0.0) * 1000.0 / f64::from(ticks);
        for round in 0..rounds {
            let (load, stepping) = engine_alone(&options)?;
            let whole = run_end_to_end(&file, &dir, round, None)?;
            if let Some(program) = &before {
                old.push(per_tick(run_end_to_end(&file, &dir, round, Some(program))?, load));
            }
            engine.push(stepping * 1000.0 / f64::from(ticks));
            run.push(per_tick(whole, load));
            total.push(whole);
        }
        let (e, r) = (median(engine), median(run));
        let (b, br) = if old.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            let b = median(old);
            (format!("{b:.1}"), format!("{:.3}", b / e))
        };
        println!(
            "{agents:>8} {nations:>8} {e:>14.1} {r:>14.1} {:>14.2} {:>8.3} {b:>16} {br:>13}",
            median(total),
            r / e
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
