//! The research verbs: `sweep` and `synth`.

use super::prepare;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `sweep` was asked for.
pub(super) struct SweepFlags {
    pub seeds: String,
    pub set: Vec<String>,
    pub jobs: Option<usize>,
    pub ticks: Option<u32>,
    pub out: PathBuf,
    pub quiet: bool,
}

pub(super) fn sweep(scenario: PathBuf, flags: SweepFlags) -> anyhow::Result<ExitCode> {
    let SweepFlags { seeds, set, jobs, ticks, out, quiet } = flags;
    let s = prepare(&scenario, None, ticks)?;
    let seeds = crate::sweep::parse_seeds(&seeds)?;
    let params = set.iter().map(|p| crate::sweep::parse_param(p, &s)).collect::<Result<Vec<_>, _>>()?;
    for (i, p) in params.iter().enumerate() {
        anyhow::ensure!(!params[..i].iter().any(|q| q.key == p.key), "--set {} is given twice", p.key);
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runs = seeds.len() * params.iter().map(|p| p.values.len()).product::<usize>();
    println!(
        "Sweep of {} over {} seeds × {} parameter combinations = {runs} runs, {jobs} at a time; writing to {}",
        s.name,
        seeds.len(),
        runs / seeds.len().max(1),
        out.display()
    );
    let watch = crate::signals::Watch::start();
    let started = std::time::Instant::now();
    let width = params.len();
    let options = crate::sweep::SweepOptions {
        seeds,
        params,
        jobs,
        out: out.clone(),
        progress: !quiet,
        stop: watch.stop.clone(),
    };
    let report = crate::sweep::run(&s, &options)?;
    for (job, why) in &report.damaged {
        eprintln!(
            "warning: the record of the run with seed {} and {:?} was damaged ({why}); it was run again",
            job.seed, job.values
        );
    }
    if report.others > 0 {
        println!(
            "{} finished runs of other configurations (another scenario text, seed, ticks, parameter value or version) are kept in {} and not used",
            report.others,
            out.join("cells").display()
        );
    }
    println!("Writing runs.csv and summary.csv from {} finished runs", report.finished());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    report.write_tables(&out, width)?;
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
    if let Some(signal) = watch.signal() {
        eprintln!(
            "stopped by {}: {} runs not done; the same command finishes them (the {} finished are kept)",
            signal.name(),
            report.not_run,
            report.finished()
        );
        return Ok(ExitCode::from(signal.exit_code()));
    }
    Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub(super) fn synth(nations: usize, agents: usize, seed: u64, ticks: u32, out: PathBuf) -> anyhow::Result<ExitCode> {
    let text = engine::synth::generate(&engine::synth::SynthOptions { nations, agents, seed, ticks })?;
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
