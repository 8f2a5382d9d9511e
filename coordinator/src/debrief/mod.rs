//! After-action review of recorded runs: the data of a whole run (`collect`), the HTML report
//! with its charts (`report`), the comparison of two runs (`diff`), tidy exports (`export`),
//! who knew what at each tick (`knew`) and the DVR web console (`web`). Everything reads the run store and re-executes from snapshots;
//! nothing here changes a run.

pub mod chart;
pub mod diff;
pub mod export;
pub mod knew;
pub mod report;
pub mod web;

use crate::history::{self, HistoryError};
use crate::journal::JournalInput;
use crate::store::{JournalEntry, RunId, RunMeta, Store};
use engine::record::TickRecord;
use engine::scenario::Scenario;

/// Everything a debrief needs about one run: its record, its scenario, every tick's record, and
/// its journal of external inputs.
pub struct RunData {
    pub run: RunId,
    pub meta: RunMeta,
    pub scenario: Scenario,
    /// The first tick this run itself recorded (a fork's branch tick; 0 otherwise).
    pub first_tick: u32,
    pub records: Vec<TickRecord>,
    pub journal: Vec<JournalEntry>,
}

/// Re-executes a recorded run from its first snapshot to the last tick it recorded.
pub fn collect(store: &Store, run: RunId) -> Result<RunData, HistoryError> {
    let meta = store.run(run)?;
    let first_tick = store
        .snapshot_ticks(run)?
        .first()
        .copied()
        .ok_or_else(|| HistoryError::Refused(format!("run {run} has no snapshot to start from")))?;
    // A run from the start is rebuilt from its scenario, so the events of tick 0 are logged too;
    // a fork starts from its branch snapshot.
    let mut engine = if first_tick == 0 && meta.parent.is_none() {
        let mut engine = crate::sim::Sim::embedded(std::sync::Arc::new(history::scenario_of(&meta)?));
        for entry in store.live_journal(run)? {
            engine.apply_input(entry.tick, entry.input).map_err(|e| HistoryError::Refused(e.to_string()))?;
        }
        history::replaying(store, run, engine)?
    } else {
        history::engine_at(store, run, first_tick)?.0
    };
    let mut records = Vec::new();
    while engine.state().tick.0 < meta.ticks_done && !engine.is_finished() {
        records.push(engine.step().map_err(crate::run::RunError::from)?);
    }
    let scenario = engine.scenario().clone();
    let journal = store.journal(run)?;
    Ok(RunData { run, meta, scenario, first_tick, records, journal })
}

/// What kind of run it was, in a sentence for the report's and the DVR's header: for an
/// exercise who played, the turns, control's actions and rollbacks; for a fork its parent.
pub fn kind(data: &RunData) -> String {
    let m = &data.meta;
    let mut text = match &m.exercise {
        Some(x) => {
            let live = crate::journal::live(data.journal.clone());
            let turns = live.iter().filter(|j| matches!(j.input, JournalInput::Turn { .. })).count();
            let control: Vec<_> = data
                .journal
                .iter()
                .filter_map(|j| if let JournalInput::Control(a) = &j.input { Some(a) } else { None })
                .collect();
            let adjudications = control.iter().filter(|a| a.is_adjudication()).count();
            let rollbacks: Vec<String> = data
                .journal
                .iter()
                .filter_map(|j| match j.input {
                    JournalInput::Rollback { to_tick, turn, .. } => Some(format!("to turn {turn} at tick {to_tick}")),
                    _ => None,
                })
                .collect();
            let mut t = format!(
                "A war-game exercise: {} played by analysts (every other nation by AI), turns of {} ticks, {turns} turn(s) played; {} control action(s) ({adjudications} adjudication(s) of players' orders); {} rollback(s){}.",
                x.players.join(", "),
                x.turn_ticks,
                control.len(),
                rollbacks.len(),
                if rollbacks.is_empty() { String::new() } else { format!(" ({})", rollbacks.join(", ")) }
            );
            if let Some((tick, _)) = &x.ai_from {
                t.push_str(&format!(" Continued under AI from tick {tick}."));
            }
            t
        }
        None => match m.parent {
            Some((p, t)) => format!(
                "A counterfactual: forked from run {p} at tick {t}{}; from there every nation is under AI.",
                if m.events.is_some() { ", with its own events after the branch" } else { "" }
            ),
            None => format!("A run of the scenario ({}).", m.mode),
        },
    };
    if let Some(by) = &m.ended_by {
        text.push_str(&format!(" Ended by {by} at tick {}.", m.ticks_done));
    }
    text
}
