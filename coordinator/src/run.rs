//! The embedded run: one process, every agent on a local host, outputs to a folder. This is what
//! `chokepoint run` does; tests and benchmarks call it too.

use crate::engine::{Engine, EngineError};
use crate::output::{CsvOutputs, Summary};
use crate::scenario::Scenario;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where to write the CSV files; `None` writes nothing (benchmarks).
    pub out: Option<PathBuf>,
    /// Show a progress bar on the terminal.
    pub progress: bool,
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
    drive(&mut engine, options)
}

/// Steps an engine to the end, writing outputs and collecting the summary.
pub fn drive(engine: &mut Engine, options: &RunOptions) -> Result<Summary, RunError> {
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
    while !engine.is_finished() {
        let record = engine.step()?;
        if let (Some(out), Some(dir)) = (outputs.as_mut(), &options.out) {
            out.write(&scenario, &record).map_err(io_err(dir))?;
        }
        summary.add(&scenario, &record);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let (Some(out), Some(dir)) = (outputs, &options.out) {
        out.finish().map_err(io_err(dir))?;
    }
    Ok(summary)
}
