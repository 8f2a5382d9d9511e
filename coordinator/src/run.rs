//! The embedded run: one process, every agent on a local host, outputs to a folder. This is what
//! `chokepoint run` does; tests and benchmarks call it too.

use crate::durable::WriteError;
use crate::metrics::Latency;
use crate::output::{CsvOutputs, Summary};
use crate::sim::{Sim, StepError};
use crate::store::{JournalEntry, JournalInput, RunId, RunStatus, Store, StoreError, TickEntry, now_unix_ms};
use engine::record::TickRecord;
use engine::scenario::{Event, Scenario};
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
    /// Append to existing output files (a resumed run) instead of starting them afresh.
    pub append: bool,
}

/// What a driver shares with the outside while it runs: a stop flag checked between ticks, the
/// latency histograms, the last tick's record (for status and public market queries), and an
/// inbox of external inputs (control injects) taken in between ticks.
#[derive(Clone, Default)]
pub struct Hooks {
    pub stop: Arc<AtomicBool>,
    pub latency: Arc<Mutex<Latency>>,
    pub last: Arc<Mutex<Option<TickRecord>>>,
    pub inbox: Arc<Mutex<Vec<Inject>>>,
    /// Every change of placement so far (the last is the placement now).
    pub placement: Arc<Mutex<Vec<crate::hosts::PlacementChange>>>,
}

/// An external event waiting to be scheduled, and where to say whether it was.
pub struct Inject {
    pub event: Event,
    pub source: String,
    pub reply: tokio::sync::oneshot::Sender<Result<u32, String>>,
}

/// Where and how a driven run is recorded.
pub struct Persist {
    pub store: Arc<Store>,
    pub run: RunId,
    /// A full snapshot every this many ticks (and at the start and the end).
    pub snapshot_every: u32,
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
    Step(#[from] StepError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An output file that could not be written (a full disk, a removed folder): it is named.
    #[error(transparent)]
    Output(#[from] WriteError),
    #[error("cannot roll back: {0}")]
    Rollback(String),
}

/// Runs a scenario to the end in this process and returns its summary.
pub fn run_embedded(scenario: Arc<Scenario>, options: &RunOptions) -> Result<Summary, RunError> {
    let mut engine = Sim::embedded(scenario.clone());
    Ok(drive(&mut engine, options, &Hooks::default(), None)?.summary)
}

/// Steps an engine to the end (or until `hooks.stop` is set), writing outputs, recording
/// latency and collecting the summary. On any error (the engine's, an output file's, the
/// store's) the outputs of every completed tick are flushed and the run is recorded as failed,
/// with the error, before the error is returned.
pub fn drive(
    engine: &mut Sim,
    options: &RunOptions,
    hooks: &Hooks,
    persist: Option<&Persist>,
) -> Result<Outcome, RunError> {
    let mut driver = match Driver::start(engine, options, hooks, persist) {
        Ok(d) => d,
        Err(e) => {
            record_failure(persist, &e);
            return Err(e);
        }
    };
    let mut failure = None;
    while !engine.is_finished() && !hooks.stop.load(Ordering::Relaxed) {
        if let Err(e) = driver.take_injects(engine, hooks, persist).and_then(|()| driver.step(engine, hooks, persist)) {
            failure = Some(e);
            break;
        }
    }
    driver.finish(engine, persist, failure)
}

/// Records, as far as the store still can, that a run failed and why.
fn record_failure(persist: Option<&Persist>, e: &RunError) {
    if let Some(p) = persist {
        let _ = p.store.update_run(p.run, |m| {
            m.status = RunStatus::Failed;
            m.error = Some(e.to_string());
        });
        let _ = p.store.flush();
    }
}

/// One run's outputs, records and summary, tick by tick: what `drive` loops over, and what an
/// exercise steps turn by turn.
pub struct Driver {
    scenario: Arc<Scenario>,
    outputs: Option<CsvOutputs>,
    summary: Summary,
    bar: indicatif::ProgressBar,
    /// The next journal sequence number.
    pub journal_seq: u32,
    /// The next placement record's sequence number.
    placement_seq: u32,
}

impl Driver {
    /// Opens the outputs and records the starting snapshot.
    pub fn start(
        engine: &mut Sim,
        options: &RunOptions,
        hooks: &Hooks,
        persist: Option<&Persist>,
    ) -> Result<Driver, RunError> {
        let scenario = engine.engine.scenario_arc();
        // A recorded run keeps each tick's part digests, made from the digest's own encoding.
        engine.engine.record_parts(persist.is_some());
        let outputs = match &options.out {
            Some(dir) => Some(CsvOutputs::open(dir, &scenario, options.append)?),
            None => None,
        };
        let (mut journal_seq, mut placement_seq) = (0u32, 0u32);
        if let Some(p) = persist {
            let tick = engine.state().tick.0;
            if !p.store.snapshot_ticks(p.run)?.contains(&tick) {
                p.store.put_snapshot(p.run, tick, engine.state())?;
            }
            journal_seq = p.store.journal(p.run)?.len() as u32;
            placement_seq = p.store.placements(p.run)?.len() as u32;
        }
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
        let summary = Summary::new(&scenario);
        let mut driver = Driver { scenario, outputs, summary, bar, journal_seq, placement_seq };
        driver.record_hosting(engine, hooks, persist)?;
        Ok(driver)
    }

    /// Records the placement changes and journaled decisions the hosts report.
    fn record_hosting(&mut self, engine: &mut Sim, hooks: &Hooks, persist: Option<&Persist>) -> Result<(), RunError> {
        let changes = engine.take_placement_changes();
        let decisions = engine.take_decisions();
        lock(&hooks.placement).extend(changes.iter().cloned());
        let Some(p) = persist else { return Ok(()) };
        for change in &changes {
            p.store.put_placement(p.run, self.placement_seq, change)?;
            self.placement_seq += 1;
        }
        for (seq, batch) in decisions.iter().enumerate() {
            p.store.put_decisions(p.run, seq as u32, batch)?;
        }
        if !changes.is_empty() {
            p.store.flush()?;
        }
        Ok(())
    }

    /// Runs one tick and records it (outputs, digests, snapshots), returning its record.
    pub fn step(&mut self, engine: &mut Sim, hooks: &Hooks, persist: Option<&Persist>) -> Result<(), RunError> {
        let stepped = engine.step_timed();
        let started = Instant::now();
        // A tick that failed may still have moved agents before it stopped: record that too.
        self.record_hosting(engine, hooks, persist)?;
        let (record, times) = stepped?;
        if let Some(out) = self.outputs.as_mut() {
            out.write(&self.scenario, &record)?;
        }
        if let Some(p) = persist {
            let state = engine.state();
            let entry = TickEntry { digest: record.digest.0, parts: record.parts.clone() };
            p.store.put_tick(p.run, record.tick.0, &entry)?;
            let next = state.tick.0;
            if next.is_multiple_of(p.snapshot_every.max(1)) || engine.is_finished() {
                if let Some(out) = self.outputs.as_mut() {
                    // Outputs on disk must cover every snapshotted tick, so a resume can trust
                    // them, even after a power cut.
                    out.flush(true)?;
                }
                p.store.put_snapshot(p.run, next, state)?;
                p.store.update_run(p.run, |m| m.ticks_done = next)?;
            }
        }
        let persist_time = started.elapsed();
        self.summary.add(&self.scenario, &record);
        lock(&hooks.latency).record(&times, persist_time);
        *lock(&hooks.last) = Some(record);
        self.bar.inc(1);
        Ok(())
    }

    /// Journals an external input received now, for the tick it takes effect at; returns the
    /// entry (as recorded, when the run is).
    pub fn journal(
        &mut self,
        persist: Option<&Persist>,
        tick: u32,
        source: &str,
        input: JournalInput,
    ) -> Result<JournalEntry, RunError> {
        let entry = JournalEntry {
            tick,
            seq: self.journal_seq,
            source: source.to_string(),
            received_unix_ms: now_unix_ms(),
            input,
        };
        if let Some(p) = persist {
            p.store.append_journal(p.run, &entry)?;
        }
        self.journal_seq += 1;
        Ok(entry)
    }

    /// Takes the run back to the start of tick `to` (an exercise's rollback, already journaled):
    /// the recorded digests, snapshots, situation reports, journaled decisions and placement
    /// changes after it are forgotten, the CSV
    /// outputs are cut back to it, and the summary is rebuilt from the ticks kept. The caller
    /// replaces the engine with one at `to` (`history::engine_at`).
    pub fn rollback(&mut self, to: u32, kept: &[TickRecord], persist: Option<&Persist>) -> Result<(), RunError> {
        if let Some(out) = self.outputs.take() {
            let dir = out.dir().to_path_buf();
            out.finish()?;
            crate::output::truncate_from(&dir, to)?;
            self.outputs = Some(CsvOutputs::open(&dir, &self.scenario, true)?);
        }
        if let Some(p) = persist {
            p.store.truncate_ticks(p.run, to)?;
            p.store.truncate_snapshots_after(p.run, to)?;
            p.store.truncate_sitreps(p.run, to)?;
            p.store.truncate_hosting(p.run, to)?;
            p.store.update_run(p.run, |m| m.ticks_done = to)?;
            p.store.flush()?;
        }
        self.summary = Summary::new(&self.scenario);
        for r in kept {
            self.summary.add(&self.scenario, r);
        }
        Ok(())
    }

    /// Schedules the injects waiting in the inbox, journaling each one that is accepted.
    fn take_injects(&mut self, engine: &mut Sim, hooks: &Hooks, persist: Option<&Persist>) -> Result<(), RunError> {
        let waiting: Vec<Inject> = std::mem::take(&mut *lock(&hooks.inbox));
        for inject in waiting {
            let tick = inject.event.tick.0;
            let verdict = engine.schedule(inject.event.clone());
            if verdict.is_ok() {
                self.journal(persist, tick, &inject.source, JournalInput::Inject(inject.event))?;
            }
            let _ = inject.reply.send(verdict.map(|()| tick).map_err(|e| e.to_string()));
        }
        Ok(())
    }

    /// Flushes the outputs, records how the run ended, and returns its summary (or the failure
    /// that ended it).
    pub fn finish(
        self,
        engine: &Sim,
        persist: Option<&Persist>,
        failure: Option<RunError>,
    ) -> Result<Outcome, RunError> {
        self.finish_as(engine, persist, failure, None)
    }

    /// [`Driver::finish`] for a run that `ended_by` someone (an exercise's control cell) before
    /// its last tick: it is recorded as complete at the tick it was ended, with a snapshot there.
    pub fn finish_as(
        self,
        engine: &Sim,
        persist: Option<&Persist>,
        mut failure: Option<RunError>,
        ended_by: Option<&str>,
    ) -> Result<Outcome, RunError> {
        self.bar.finish_and_clear();
        if let Some(out) = self.outputs {
            // After a write error the file may refuse its buffer again; the first error stands.
            if let Err(e) = out.finish() {
                failure.get_or_insert(e.into());
            }
        }
        let ended_by = ended_by.filter(|_| failure.is_none() && !engine.is_finished());
        // A run ended early is complete at its tick, so it needs a snapshot there.
        if let (Some(p), Some(_)) = (persist, ended_by) {
            let tick = engine.state().tick.0;
            let snapshot = p.store.snapshot_ticks(p.run).and_then(|ticks| {
                if ticks.contains(&tick) {
                    Ok(())
                } else {
                    p.store.put_snapshot(p.run, tick, engine.state()).map(|_| ())
                }
            });
            if let Err(e) = snapshot {
                failure = Some(e.into());
            }
        }
        let status = match (&failure, engine.is_finished(), ended_by) {
            (Some(_), _, _) => RunStatus::Failed,
            (None, true, _) | (None, false, Some(_)) => RunStatus::Completed,
            (None, false, None) => RunStatus::Interrupted,
        };
        let ended_by = ended_by.filter(|_| failure.is_none()).map(str::to_string);
        if let Some(p) = persist {
            let ticks_done = engine.state().tick.0;
            let error = failure.as_ref().map(|e| e.to_string());
            let recorded = p
                .store
                .update_run(p.run, |m| {
                    m.status = status;
                    m.ticks_done = ticks_done;
                    m.error = error;
                    m.ended_by = ended_by;
                })
                .and_then(|_| p.store.flush());
            // When the store itself failed, recording that may fail too: the first error is
            // the one to report (and the run then shows as ended with its process).
            if let (Err(e), None) = (recorded, &failure) {
                failure = Some(e.into());
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(Outcome { completed: engine.is_finished(), summary: self.summary }),
        }
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (these hold metrics and
/// views, never simulation state).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
