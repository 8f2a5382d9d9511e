//! The embedded run: one process, every agent on a local host, outputs to a folder. This is what
//! `chokepoint run` does; tests and benchmarks call it too.

use crate::engine::{Engine, EngineError};
use crate::metrics::Latency;
use crate::output::{CsvOutputs, Summary};
use crate::record::TickRecord;
use crate::scenario::Scenario;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where to write the CSV files; `None` writes nothing (benchmarks).
    pub out: Option<PathBuf>,
    /// Show a progress bar on the terminal.
    pub progress: bool,
}

/// What a driver shares with the outside while it runs: a stop flag checked between ticks, the
/// latency histograms, and the last tick's record (for status and public market queries).
#[derive(Clone, Default)]
pub struct Hooks {
    pub stop: Arc<AtomicBool>,
    pub latency: Arc<Mutex<Latency>>,
    pub last: Arc<Mutex<Option<TickRecord>>>,
}

/// How a run driven to its end (or stopped) came out.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    /// False when the stop flag ended the run early.
    pub completed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot write outputs to {path}: {source}")]
    Output { path: PathBuf, source: std::io::Error },
}

/// Runs a scenario to the end in this process and returns its summary.
pub fn run_embedded(scenario: Arc<Scenario>, options: &RunOptions) -> Result<Summary, RunError> {
    let mut engine = Engine::embedded(scenario.clone());
    Ok(drive(&mut engine, options, &Hooks::default())?.summary)
}

/// Steps an engine to the end (or until `hooks.stop` is set), writing outputs, recording
/// latency and collecting the summary. On an engine error the outputs of every completed tick
/// are flushed before the error is returned.
pub fn drive(engine: &mut Engine, options: &RunOptions, hooks: &Hooks) -> Result<Outcome, RunError> {
    let scenario = Arc::new(engine.scenario().clone());
    let io_err = |path: &PathBuf| {
        let path = path.clone();
        move |source| RunError::Output { path, source }
    };
    let mut outputs = match &options.out {
        Some(dir) => Some(CsvOutputs::create(dir, &scenario).map_err(io_err(dir))?),
        None => None,
    };
    let bar = if options.progress {
        let bar = indicatif::ProgressBar::new(u64::from(scenario.ticks));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} tick {pos}/{len} [{bar:40}] {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut summary = Summary::new(&scenario);
    let mut failure = None;
    while !engine.is_finished() && !hooks.stop.load(Ordering::Relaxed) {
        let (record, times) = match engine.step_timed() {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let started = Instant::now();
        if let (Some(out), Some(dir)) = (outputs.as_mut(), &options.out) {
            out.write(&scenario, &record).map_err(io_err(dir))?;
        }
        let persist = started.elapsed();
        summary.add(&scenario, &record);
        lock(&hooks.latency).record(&times, persist);
        *lock(&hooks.last) = Some(record);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let (Some(out), Some(dir)) = (outputs, &options.out) {
        out.finish().map_err(io_err(dir))?;
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(Outcome { completed: engine.is_finished(), summary }),
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (these hold metrics and
/// views, never simulation state).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
