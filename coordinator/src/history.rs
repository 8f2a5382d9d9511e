//! Time travel over recorded runs: rebuilding a run's scenario from its record, an engine at any
//! recorded tick (the nearest snapshot plus re-execution), and the verbs built on that —
//! resume, replay, fork and state. Everything here reads and writes through `store`.

use crate::hosts::Decisions;
use crate::output::{Summary, truncate_from};
use crate::run::{Hooks, Persist, RunError, RunOptions, drive};
use crate::sim::{DecisionSource, Sim};
use crate::store::{JournalInput, RunId, RunMeta, RunStatus, Store, StoreError};
use engine::Engine;
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
    #[error("cannot cut back the outputs in {dir}: {source}")]
    Outputs { dir: PathBuf, source: std::io::Error },
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
fn restore_engine(
    store: &Store,
    run: RunId,
    scenario: Arc<Scenario>,
    state: WorldState,
) -> Result<Engine, HistoryError> {
    let mut engine = Engine::restore(scenario, state);
    for entry in store.journal(run)? {
        let due = match entry.input {
            JournalInput::Orders { .. } => entry.tick >= engine.state().tick.0,
            JournalInput::Inject(_) | JournalInput::Message { .. } | JournalInput::Note { .. } => {
                entry.tick > engine.state().tick.0
            }
        };
        if !due {
            continue;
        }
        if let Some(input) = entry.input.into_input(entry.tick) {
            engine.apply(input).map_err(|e| HistoryError::Refused(e.to_string()))?;
        }
    }
    Ok(engine)
}

/// [`restore_engine`] on a local host, taking the run's journaled decisions where it has them.
fn restore(store: &Store, run: RunId, scenario: Arc<Scenario>, state: WorldState) -> Result<Sim, HistoryError> {
    let engine = restore_engine(store, run, scenario, state)?;
    replaying(store, run, Sim::on_local_host(engine))
}

/// The decisions journaled for a run, read tick by tick as a re-execution reaches them.
struct StoredDecisions {
    store: Store,
    run: RunId,
    ticks: std::collections::BTreeSet<u32>,
}

impl DecisionSource for StoredDecisions {
    fn at(&mut self, tick: u32) -> Result<Vec<Decisions>, String> {
        if !self.ticks.contains(&tick) {
            return Ok(Vec::new());
        }
        self.store.decisions(self.run, tick).map_err(|e| e.to_string())
    }
}

/// `sim`, re-executing `run`, with the run's journaled decisions (if it has any) in place of
/// its hosts' own for the agents they cover.
pub fn replaying(store: &Store, run: RunId, sim: Sim) -> Result<Sim, HistoryError> {
    let ticks = store.decision_ticks(run)?;
    if ticks.is_empty() {
        return Ok(sim);
    }
    Ok(sim.replaying(Box::new(StoredDecisions { store: store.clone(), run, ticks })))
}

/// Why a served run may not replay: its nodes' decisions were not journaled, so a node that
/// was not the deterministic agent-node it claimed to be leaves no trace of what it decided.
fn unjournaled_hint(meta: &RunMeta) -> String {
    if meta.mode.starts_with("served") && !meta.journal_actions {
        " (the run was served on agent nodes whose decisions were not journaled: a node that \
         claims to be deterministic but is not, such as a patched agent-node, makes a replay \
         diverge; serve with --journal-actions to record every node's decisions)"
            .to_string()
    } else {
        String::new()
    }
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
            let detail = format!("{detail}{}", unjournaled_hint(&meta));
            return Err(HistoryError::Divergence { run, tick: t, detail });
        }
        checked += 1;
    }
    Ok(ReplayReport { from_snapshot: snap, last: to, checked })
}

/// A recorded run made ready to continue from its last good snapshot: the engine restored
/// there, the records after it forgotten (outputs cut back, digests, journaled decisions and
/// placement changes dropped) and the run marked running again.
pub struct Resumed {
    pub engine: Engine,
    pub meta: RunMeta,
    pub persist: Persist,
    pub options: RunOptions,
}

/// Makes run `run` ready to continue, on whatever hosts the caller gives it.
pub fn prepare_resume(
    store: Arc<Store>,
    run: RunId,
    snapshot_every: Option<u32>,
    progress: bool,
) -> Result<Resumed, HistoryError> {
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
    let engine = restore_engine(&store, run, scenario, state)?;
    store.truncate_ticks(run, snap)?;
    store.truncate_hosting(run, snap)?;
    let dir = PathBuf::from(&meta.out_dir);
    truncate_from(&dir, snap).map_err(|source| HistoryError::Outputs { dir: dir.clone(), source })?;
    let meta = store.update_run(run, |m| {
        m.status = RunStatus::Running;
        m.ticks_done = snap;
        m.error = None;
    })?;
    let persist = Persist { store: store.clone(), run, snapshot_every: snapshot_every.unwrap_or(meta.snapshot_every) };
    let options = RunOptions { out: Some(dir), progress, append: true };
    Ok(Resumed { engine, meta, persist, options })
}

/// Continues an interrupted run from its last good snapshot in this process, recording as it
/// goes, and returns its summary (of the resumed part).
pub fn resume(
    store: Arc<Store>,
    run: RunId,
    snapshot_every: Option<u32>,
    progress: bool,
) -> Result<(RunMeta, Summary), HistoryError> {
    let Resumed { engine, persist, options, .. } = prepare_resume(store.clone(), run, snapshot_every, progress)?;
    let mut sim = Sim::on_local_host(engine);
    let outcome = drive(&mut sim, &options, &Hooks::default(), Some(&persist))?;
    Ok((store.run(run)?, outcome.summary))
}

/// Starts a new run from tick `at` of `parent`, optionally with another seed and other events
/// after `at`; records it and runs it to the end. Returns the new run's id and summary.
pub fn fork(
    store: Arc<Store>,
    parent: RunId,
    at: u32,
    seed: Option<u64>,
    events_file: Option<&Path>,
    out: Option<PathBuf>,
    progress: bool,
) -> Result<(RunId, RunMeta, Summary), HistoryError> {
    let (engine, parent_meta) = engine_at(&store, parent, at)?;
    let state = engine.state().clone();
    let mut scenario = scenario_of(&parent_meta)?;
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    let mut events = None;
    if let Some(path) = events_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| HistoryError::Refused(format!("cannot read {}: {e}", path.display())))?;
        let new = scenario::parse_events(&text, &path.display().to_string(), &scenario)?;
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
    store.update_run(id, |m| m.out_dir = out.display().to_string())?;
    // The fork inherits the parent's inputs after the branch point, so a fork without changes
    // is the parent's continuation.
    for entry in store.journal(parent)?.into_iter().filter(|e| e.tick > at) {
        store.append_journal(id, &entry)?;
    }
    store.put_snapshot(id, at, &state)?;
    let mut engine = restore(&store, id, Arc::new(scenario), state)?;
    let persist = Persist { store: store.clone(), run: id, snapshot_every: meta.snapshot_every };
    let options = RunOptions { out: Some(out), progress, append: false };
    let outcome = drive(&mut engine, &options, &Hooks::default(), Some(&persist))?;
    Ok((id, store.run(id)?, outcome.summary))
}

/// The world of `run` at the start of tick `at`, and its digest.
pub fn state_at(store: &Store, run: RunId, at: u32) -> Result<(Scenario, WorldState, String), HistoryError> {
    let (engine, _) = engine_at(store, run, at)?;
    let state = engine.state().clone();
    let d = digest(&state).to_string();
    Ok((engine.scenario().clone(), state, d))
}
