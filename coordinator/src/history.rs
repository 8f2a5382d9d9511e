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
    #[error("cannot cut back the outputs of the run to its snapshot: {0}")]
    Outputs(#[from] crate::durable::WriteError),
    #[error("cannot copy the exercise's outputs for the run under AI: {0}")]
    CopyOutputs(crate::durable::WriteError),
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

/// An engine continuing `state`, with every journaled input still to come (and not voided by a
/// rollback) scheduled.
fn restore_engine(
    store: &Store,
    run: RunId,
    scenario: Arc<Scenario>,
    state: WorldState,
) -> Result<Engine, HistoryError> {
    let mut engine = Engine::restore(scenario, state);
    for entry in store.live_journal(run)? {
        let due = match entry.input {
            JournalInput::Orders { .. } => entry.tick >= engine.state().tick.0,
            JournalInput::Inject(_)
            | JournalInput::Message { .. }
            | JournalInput::Note { .. }
            | JournalInput::Control(_)
            | JournalInput::Turn { .. }
            | JournalInput::Rollback { .. } => entry.tick > engine.state().tick.0,
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

/// How `resume` may continue a run: an exercise only when asked to, under AI, into a new
/// output folder (the exercise's own folder is left as it wrote it).
#[derive(Clone, Debug, Default)]
pub struct ResumeOptions {
    pub snapshot_every: Option<u32>,
    pub progress: bool,
    /// Continue an exercise with every nation under AI; `Some(None)` writes to the exercise's
    /// folder with `-ai` appended.
    pub under_ai: Option<Option<PathBuf>>,
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

/// Refuses to resume a complete run, an exercise without `under_ai`, or `under_ai` for a run
/// that is not an exercise.
fn check_resumable(meta: &RunMeta, run: RunId, options: &ResumeOptions) -> Result<(), HistoryError> {
    let exercise = meta.exercise.is_some();
    let ended_by_control = meta.ended_by.is_some() && meta.status == RunStatus::Completed;
    if exercise && options.under_ai.is_none() {
        let how = if ended_by_control {
            format!("was ended by {} at tick {}", meta.ended_by.as_deref().unwrap_or("control"), meta.ticks_done)
        } else {
            format!("stopped at tick {} ({})", meta.ticks_done, meta.status.as_str())
        };
        return Err(HistoryError::Refused(format!(
            "run {run} is a war-game exercise that {how}; `resume` continues it only when asked: `resume {run} --ai` runs the rest under AI control into a new output folder (or fork it)"
        )));
    }
    if meta.status == RunStatus::Completed && !(exercise && ended_by_control) {
        return Err(HistoryError::Refused(format!(
            "run {run} is complete ({} ticks); fork it to continue differently",
            meta.ticks_done
        )));
    }
    if !exercise && options.under_ai.is_some() {
        return Err(HistoryError::Refused(format!("run {run} is not an exercise: --ai is for exercises")));
    }
    Ok(())
}

/// Makes run `run` ready to continue, on whatever hosts the caller gives it. An exercise
/// (interrupted, or ended by its control cell) is continued only with `under_ai`.
pub fn prepare_resume(store: Arc<Store>, run: RunId, options: ResumeOptions) -> Result<Resumed, HistoryError> {
    let meta = store.run(run)?;
    check_resumable(&meta, run, &options)?;
    let Some((snap, state)) = store.snapshot_at_or_before(run, u32::MAX)? else {
        return Err(HistoryError::Refused(format!("run {run} has no readable snapshot to resume from")));
    };
    let scenario = Arc::new(scenario_of(&meta)?);
    let engine = restore_engine(&store, run, scenario, state)?;
    store.mark_live(run);
    let own_dir = PathBuf::from(crate::store::absolute(&meta.out_dir));
    if Path::new(&meta.out_dir).is_relative() {
        eprintln!(
            "warning: run {run} recorded its output folder as {} (relative, by an older version); continuing in {}",
            meta.out_dir,
            own_dir.display()
        );
    }
    // The copy comes first, so a refused folder leaves the run's records as they were.
    let dir = match &options.under_ai {
        None => own_dir.clone(),
        Some(out) => {
            let dir = out.clone().unwrap_or_else(|| PathBuf::from(format!("{}-ai", own_dir.display())));
            let dir = PathBuf::from(crate::store::absolute(&dir.display().to_string()));
            copy_outputs(&own_dir, &dir)?;
            dir
        }
    };
    store.truncate_ticks(run, snap)?;
    store.truncate_hosting(run, snap)?;
    truncate_from(&dir, snap)?;
    let exercise_dir = own_dir.display().to_string();
    let under_ai = options.under_ai.is_some();
    let meta = store.update_run(run, |m| {
        m.status = RunStatus::Running;
        m.ticks_done = snap;
        m.error = None;
        m.out_dir = dir.display().to_string();
        if under_ai {
            m.ended_by = None;
            if let Some(x) = m.exercise.as_mut() {
                x.ai_from = Some((meta.ticks_done, exercise_dir.clone()));
            }
        }
    })?;
    let (snapshot_every, progress) = (options.snapshot_every, options.progress);
    let persist = Persist { store: store.clone(), run, snapshot_every: snapshot_every.unwrap_or(meta.snapshot_every) };
    let options = RunOptions { out: Some(dir), progress, append: true };
    Ok(Resumed { engine, meta, persist, options })
}

/// Continues an interrupted run from its last good snapshot in this process, recording as it
/// goes (in the run's own output folder, wherever it is called from), until it ends or
/// `hooks.stop` is set, and returns its summary (of the resumed part).
pub fn resume(
    store: Arc<Store>,
    run: RunId,
    options: ResumeOptions,
    hooks: &Hooks,
) -> Result<(RunMeta, Summary), HistoryError> {
    let Resumed { engine, persist, options, .. } = prepare_resume(store.clone(), run, options)?;
    let mut sim = Sim::on_local_host(engine);
    let outcome = drive(&mut sim, &options, hooks, Some(&persist))?;
    Ok((store.run(run)?, outcome.summary))
}

/// Copies a run's output files into a new folder (for an exercise continued under AI).
fn copy_outputs(from: &Path, to: &Path) -> Result<(), HistoryError> {
    let io = |source| HistoryError::CopyOutputs(crate::durable::WriteError::new(to, source));
    if to.exists() && std::fs::read_dir(to).map_err(io)?.next().is_some() {
        return Err(HistoryError::Refused(format!(
            "{} already holds files; give --out a new folder for the run under AI",
            to.display()
        )));
    }
    std::fs::create_dir_all(to).map_err(io)?;
    for entry in std::fs::read_dir(from)
        .map_err(|source| HistoryError::CopyOutputs(crate::durable::WriteError::new(from, source)))?
    {
        let entry = entry.map_err(io)?;
        if entry.path().extension().is_some_and(|e| e == "csv") {
            std::fs::copy(entry.path(), to.join(entry.file_name())).map_err(io)?;
        }
    }
    Ok(())
}

/// What a fork changes: the seed, the events after the branch tick, its length, its folder.
#[derive(Clone, Debug, Default)]
pub struct ForkOptions {
    pub seed: Option<u64>,
    pub events_file: Option<PathBuf>,
    /// The fork's last tick plus one (its length); by default the parent's when the parent
    /// ended early (an exercise its control cell ended), otherwise the scenario's.
    pub ticks: Option<u32>,
    pub out: Option<PathBuf>,
    pub progress: bool,
}

/// Starts a new run from tick `at` of `parent`, optionally with another seed, other events
/// after `at` and another length; records it and runs it to its end (or until `hooks.stop` is
/// set). Returns the new run's id and summary.
pub fn fork(
    store: Arc<Store>,
    parent: RunId,
    at: u32,
    options: ForkOptions,
    hooks: &Hooks,
) -> Result<(RunId, RunMeta, Summary), HistoryError> {
    let ForkOptions { seed, events_file, ticks, out, progress } = options;
    let (engine, parent_meta) = engine_at(&store, parent, at)?;
    let state = engine.state().clone();
    // A lift may target any event of the parent's: those scheduled, and its injects (those
    // before the snapshot the engine was restored from are in the state, not scheduled).
    let mut known: Vec<String> = engine.engine.events().iter().map(|e| e.name.clone()).collect();
    known.extend(store.live_journal(parent)?.iter().filter_map(|j| j.input.event()).map(|e| e.name.clone()));
    let mut scenario = scenario_of(&parent_meta)?;
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    let ended_early = parent_meta.status != RunStatus::Running && parent_meta.ticks_done < parent_meta.ticks;
    let length = ticks.or(ended_early.then_some(parent_meta.ticks_done)).unwrap_or(scenario.ticks);
    if length <= at || length > scenario.ticks {
        return Err(HistoryError::Refused(format!(
            "--ticks {length}: a fork at tick {at} must end after it and at most at the scenario's {} ticks",
            scenario.ticks
        )));
    }
    scenario.ticks = length;
    let mut events = None;
    if let Some(path) = events_file.as_deref() {
        let file = path.display().to_string();
        let bytes = crate::scenario_file::read(path, &file)?;
        let new = scenario::parse_events(scenario::text_of(&bytes, &file)?, &file, &scenario, known)?;
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
    // The fork inherits the parent's inputs after the branch point (those still in force), so
    // a fork without changes is the parent's continuation.
    // Orders journaled at the branch tick go into its auctions (the state at its start has not
    // seen them); events journaled for it were applied before it began.
    let carried = |e: &crate::store::JournalEntry| match e.input {
        JournalInput::Orders { .. } => e.tick >= at,
        JournalInput::Inject(_) => e.tick > at,
        JournalInput::Message { .. }
        | JournalInput::Note { .. }
        | JournalInput::Control(_)
        | JournalInput::Turn { .. }
        | JournalInput::Rollback { .. } => false,
    };
    for entry in store.live_journal(parent)?.into_iter().filter(carried) {
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
