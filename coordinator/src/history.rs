//! Time travel over recorded runs: rebuilding a run's scenario from its record, an engine at any
//! recorded tick (the nearest snapshot plus re-execution), and the verbs built on that —
//! resume, replay, fork and state. Everything here reads and writes through `store`.

use crate::output::{Summary, truncate_from};
use crate::run::{Hooks, Persist, RunError, RunOptions, drive};
use crate::sim::Sim;
use crate::store::{JournalInput, RunId, RunMeta, RunStatus, Store, StoreError};
use engine::digest::digest;
use engine::scenario::{self, Scenario, ScenarioError};
use engine::world::WorldState;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{0}")]
    Refused(String),
    #[error("replay of run {run} diverges at tick {tick}: {detail}")]
    Divergence { run: RunId, tick: u32, detail: String },
    #[error("cannot cut back the outputs of the run to its snapshot: {0}")]
    Outputs(#[from] crate::durable::WriteError),
}

/// The scenario a run ran: its recorded text, with the recorded seed, length and events.
pub fn scenario_of(meta: &RunMeta) -> Result<Scenario, HistoryError> {
    let mut s = scenario::parse(&meta.scenario_text, &meta.scenario_path)?;
    s.seed = meta.seed;
    s.ticks = meta.ticks;
    if let Some(events) = &meta.events {
        s.events = events.clone();
    }
    Ok(s)
}

/// An engine (on one local host) holding run `run`'s state at the start of `tick`, rebuilt from
/// the nearest snapshot at or before it, with the run's journal scheduled. A fork's ticks before
/// its branch point come from its parent.
pub fn engine_at(store: &Store, run: RunId, tick: u32) -> Result<(Sim, RunMeta), HistoryError> {
    let meta = store.run(run)?;
    if tick > meta.ticks_done.max(meta.parent.map_or(0, |(_, t)| t)) && tick > latest_recorded(store, run)? {
        return Err(HistoryError::Refused(format!(
            "run {run} has recorded {} ticks; tick {tick} is beyond them",
            meta.ticks_done
        )));
    }
    let Some((_, state)) = store.snapshot_at_or_before(run, tick)? else {
        return match meta.parent {
            Some((parent, branch)) if tick <= branch => engine_at(store, parent, tick),
            _ => Err(HistoryError::Refused(format!("run {run} has no readable snapshot at or before tick {tick}"))),
        };
    };
    let scenario = Arc::new(scenario_of(&meta)?);
    let mut engine = restore(store, run, scenario, state)?;
    while engine.state().tick.0 < tick {
        engine.step().map_err(RunError::from)?;
    }
    Ok((engine, meta))
}

/// The last tick with a recorded digest, plus one (the tick the state is then at).
fn latest_recorded(store: &Store, run: RunId) -> Result<u32, HistoryError> {
    Ok(store.ticks(run)?.last().map_or(0, |(t, _)| t + 1))
}

/// An engine continuing `state`, with every journaled input still to come scheduled.
fn restore(store: &Store, run: RunId, scenario: Arc<Scenario>, state: WorldState) -> Result<Sim, HistoryError> {
    let mut engine = Sim::restore_embedded(scenario, state);
    for entry in store.journal(run)? {
        let due = match entry.input {
            JournalInput::Orders { .. } => entry.tick >= engine.state().tick.0,
            JournalInput::Inject(_) | JournalInput::Message { .. } | JournalInput::Note { .. } => {
                entry.tick > engine.state().tick.0
            }
        };
        if due {
            engine.apply_input(entry.tick, entry.input).map_err(|e| HistoryError::Refused(e.to_string()))?;
        }
    }
    Ok(engine)
}

/// What a replay checked.
#[derive(Debug)]
pub struct ReplayReport {
    pub from_snapshot: u32,
    pub last: u32,
    pub checked: u32,
}

/// Re-executes `run` from the nearest snapshot at or before `from` up to tick `to`, checking
/// every recorded digest. The first mismatch is an error naming the tick and the parts of the
/// world that differ.
pub fn replay(store: &Store, run: RunId, from: u32, to: Option<u32>) -> Result<ReplayReport, HistoryError> {
    let meta = store.run(run)?;
    let recorded: std::collections::BTreeMap<u32, crate::store::TickEntry> = store.ticks(run)?.into_iter().collect();
    let last_recorded = recorded
        .keys()
        .next_back()
        .copied()
        .ok_or_else(|| HistoryError::Refused(format!("run {run} has no recorded ticks")))?;
    let to = to.unwrap_or(last_recorded).min(last_recorded);
    // A fork's own history starts at its branch tick.
    let first_snapshot = store.snapshot_ticks(run)?.first().copied().unwrap_or(0);
    let from = from.max(first_snapshot);
    let Some((snap, state)) = store.snapshot_at_or_before(run, from)? else {
        return Err(HistoryError::Refused(format!("run {run} has no readable snapshot at or before tick {from}")));
    };
    let scenario = Arc::new(scenario_of(&meta)?);
    let mut engine = restore(store, run, scenario.clone(), state)?;
    let mut checked = 0;
    while engine.state().tick.0 <= to && !engine.is_finished() {
        let record = engine.step().map_err(RunError::from)?;
        let t = record.tick.0;
        let Some(expected) = recorded.get(&t) else {
            return Err(HistoryError::Divergence {
                run,
                tick: t,
                detail: "no digest was recorded for this tick".into(),
            });
        };
        if expected.digest != record.digest.0 {
            let now = engine::digest::parts(engine.state(), &scenario);
            let differ: Vec<String> =
                now.iter().zip(&expected.parts).filter(|(a, b)| a.1 != b.1).map(|(a, _)| a.0.clone()).collect();
            let detail = if differ.is_empty() {
                "the state differs".to_string()
            } else {
                format!("differs in {}", differ.join(", "))
            };
            return Err(HistoryError::Divergence { run, tick: t, detail });
        }
        checked += 1;
    }
    Ok(ReplayReport { from_snapshot: snap, last: to, checked })
}

/// Continues an interrupted run from its last good snapshot, recording as it goes (in the
/// run's own output folder, wherever it is called from), until it ends or `hooks.stop` is set,
/// and returns its summary (of the resumed part).
pub fn resume(
    store: Arc<Store>,
    run: RunId,
    snapshot_every: Option<u32>,
    progress: bool,
    hooks: &Hooks,
) -> Result<(RunMeta, Summary), HistoryError> {
    let meta = store.run(run)?;
    if meta.status == RunStatus::Completed {
        return Err(HistoryError::Refused(format!(
            "run {run} is complete ({} ticks); fork it to continue differently",
            meta.ticks_done
        )));
    }
    let Some((snap, state)) = store.snapshot_at_or_before(run, u32::MAX)? else {
        return Err(HistoryError::Refused(format!("run {run} has no readable snapshot to resume from")));
    };
    let scenario = Arc::new(scenario_of(&meta)?);
    let mut engine = restore(&store, run, scenario, state)?;
    store.mark_live(run);
    store.truncate_ticks(run, snap)?;
    let dir = PathBuf::from(crate::store::absolute(&meta.out_dir));
    if Path::new(&meta.out_dir).is_relative() {
        eprintln!(
            "warning: run {run} recorded its output folder as {} (relative, by an older version); continuing in {}",
            meta.out_dir,
            dir.display()
        );
    }
    truncate_from(&dir, snap)?;
    store.update_run(run, |m| {
        m.status = RunStatus::Running;
        m.ticks_done = snap;
        m.error = None;
        m.out_dir = dir.display().to_string();
    })?;
    let persist = Persist { store: store.clone(), run, snapshot_every: snapshot_every.unwrap_or(meta.snapshot_every) };
    let options = RunOptions { out: Some(dir), progress, append: true };
    let outcome = drive(&mut engine, &options, hooks, Some(&persist))?;
    Ok((store.run(run)?, outcome.summary))
}

/// What a fork changes: where it branches, and optionally another seed, other events after the
/// branch (a file of `[[events]]`) and its output folder.
pub struct ForkRequest<'a> {
    pub at: u32,
    pub seed: Option<u64>,
    pub events_file: Option<&'a Path>,
    pub out: Option<PathBuf>,
    pub progress: bool,
}

/// Starts a new run from tick `at` of `parent`, optionally with another seed and other events
/// after `at`; records it and runs it to the end (or until `hooks.stop` is set). Returns the
/// new run's id and summary.
pub fn fork(
    store: Arc<Store>,
    parent: RunId,
    request: ForkRequest<'_>,
    hooks: &Hooks,
) -> Result<(RunId, RunMeta, Summary), HistoryError> {
    let ForkRequest { at, seed, events_file, out, progress } = request;
    let (engine, parent_meta) = engine_at(&store, parent, at)?;
    let state = engine.state().clone();
    let mut scenario = scenario_of(&parent_meta)?;
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    let mut events = None;
    if let Some(path) = events_file {
        let file = path.display().to_string();
        let bytes = crate::scenario_file::read(path, &file)?;
        let new = scenario::parse_events(scenario::text_of(&bytes, &file)?, &file, &scenario)?;
        if let Some(e) = new.iter().find(|e| e.tick.0 <= at) {
            return Err(HistoryError::Refused(format!(
                "{}: event {} is at tick {}, which the fork at tick {at} has already passed (events must come after it)",
                path.display(),
                e.name,
                e.tick
            )));
        }
        let mut all: Vec<_> = scenario.events.iter().filter(|e| e.tick.0 <= at).cloned().collect();
        all.extend(new);
        all.sort_by_key(|e| e.tick);
        scenario.events = all.clone();
        events = Some(all);
    }
    let meta = RunMeta {
        events: events.or(parent_meta.events.clone()),
        ticks_done: at,
        parent: Some((parent, at)),
        ..RunMeta::new(
            &scenario,
            parent_meta.scenario_path.clone(),
            String::new(),
            parent_meta.snapshot_every,
            "embedded".into(),
        )
    };
    let id = store.create_run(&meta)?;
    let out = out.unwrap_or_else(|| PathBuf::from("out").join(format!("{}-run{id}", scenario.name)));
    store.update_run(id, |m| m.out_dir = crate::store::absolute(&out.display().to_string()))?;
    // The fork inherits the parent's inputs after the branch point, so a fork without changes
    // is the parent's continuation.
    for entry in store.journal(parent)?.into_iter().filter(|e| e.tick > at) {
        store.append_journal(id, &entry)?;
    }
    store.put_snapshot(id, at, &state)?;
    let mut engine = restore(&store, id, Arc::new(scenario), state)?;
    let persist = Persist { store: store.clone(), run: id, snapshot_every: meta.snapshot_every };
    let options = RunOptions { out: Some(out), progress, append: false };
    let outcome = drive(&mut engine, &options, hooks, Some(&persist))?;
    Ok((id, store.run(id)?, outcome.summary))
}

/// The world of `run` at the start of tick `at`, and its digest.
pub fn state_at(store: &Store, run: RunId, at: u32) -> Result<(Scenario, WorldState, String), HistoryError> {
    let (engine, _) = engine_at(store, run, at)?;
    let state = engine.state().clone();
    let d = digest(&state).to_string();
    Ok((engine.scenario().clone(), state, d))
}
