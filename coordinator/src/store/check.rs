//! What each run's records are worth (`db check`), and a new database made of what can be
//! saved (`db salvage`). Every record is read on its own, so one damaged record is reported
//! without hiding the others:
//!
//! - a run is **intact** when its record, its scenario's text, every tick's digests from its
//!   first snapshot to the last tick it recorded, every snapshot and every journal entry read
//!   back as written;
//! - it is **recoverable from an earlier snapshot** when something is damaged or missing but a
//!   good snapshot lies before the first damaged tick and after every damaged journal entry:
//!   the run can continue from there (`resume`), losing only the ticks after it;
//! - otherwise it is **lost**.

use super::{JRNL, RunId, RunMeta, RunStatus, SNAP, Store, StoreError, TEXT, TICK, TickEntry};
use super::{decode_snapshot, run_prefix, tick_key, tick_of};

/// What a run's records are worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Intact,
    /// Can continue from the good snapshot at `snapshot`; `damage` says what was found.
    Recoverable {
        snapshot: u32,
        damage: String,
    },
    /// Nothing to continue from, and why.
    Lost(String),
}

/// One run's verdict.
#[derive(Clone, Debug)]
pub struct RunHealth {
    pub run: RunId,
    /// Its record, when readable.
    pub meta: Option<RunMeta>,
    pub health: Health,
    /// The ticks of its readable snapshots.
    pub snapshots: Vec<u32>,
}

/// One run copied by `salvage`: up to which tick, and whether whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvaged {
    pub run: RunId,
    pub ticks_done: u32,
    pub whole: bool,
}

/// What `check_run` found wrong with a run's records, by tick.
#[derive(Default)]
struct Findings {
    good_snapshots: Vec<u32>,
    /// The first tick whose digests are damaged or missing, with what was wrong.
    first_bad_tick: Option<(u32, String)>,
    bad_snapshots: Vec<(u32, String)>,
    /// The last tick a damaged journal entry takes effect at (and whether it holds orders,
    /// which take effect during that tick rather than before it).
    last_bad_input: Option<(u32, String)>,
}

impl Store {
    /// Every run's verdict, in id order.
    pub fn check(&self) -> Result<Vec<RunHealth>, StoreError> {
        Ok(self.run_records()?.into_iter().map(|(id, meta)| self.check_run(id, meta)).collect())
    }

    fn check_run(&self, run: RunId, meta: Result<RunMeta, StoreError>) -> RunHealth {
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                let health = Health::Lost(format!("its record is unreadable: {e}"));
                return RunHealth { run, meta: None, health, snapshots: Vec::new() };
            }
        };
        let findings = self.findings(run, &meta);
        let health = match self.run(run) {
            Ok(m) if m.scenario_text.is_empty() => Health::Lost("its scenario's text is missing".into()),
            Ok(_) => verdict(&meta, &findings),
            Err(e) => Health::Lost(format!("its scenario's text is unreadable: {e}")),
        };
        RunHealth { run, meta: Some(meta), health, snapshots: findings.good_snapshots }
    }

    /// Reads every snapshot, tick entry and journal entry of `run` on its own.
    fn findings(&self, run: RunId, meta: &RunMeta) -> Findings {
        let mut f = Findings::default();
        for t in self.snapshot_ticks(run).unwrap_or_default() {
            match self.db.get(tick_key(SNAP, run, t)) {
                Ok(Some(bytes)) => match decode_snapshot(&bytes) {
                    Ok(_) => f.good_snapshots.push(t),
                    Err(super::SnapshotProblem::Version(v)) => {
                        f.bad_snapshots.push((t, format!("of format version {v}")))
                    }
                    Err(super::SnapshotProblem::Damaged(why)) => f.bad_snapshots.push((t, why)),
                },
                Ok(None) => {}
                Err(e) => f.bad_snapshots.push((t, super::sled_words(&e))),
            }
        }
        let first = meta.parent.map_or(0, |(_, at)| at);
        for t in first..meta.ticks_done {
            let problem = match self.db.get(tick_key(TICK, run, t)) {
                Ok(Some(v)) => postcard::from_bytes::<TickEntry>(&v).err().map(|e| e.to_string()),
                Ok(None) => Some("missing".to_string()),
                Err(e) => Some(super::sled_words(&e)),
            };
            if let Some(why) = problem {
                f.first_bad_tick = Some((t, format!("the digests of tick {t} are {why}")));
                break;
            }
        }
        for key in self.db.scan_prefix(run_prefix(JRNL, run)).keys() {
            let Ok(key) = key else {
                f.last_bad_input = Some((meta.ticks, "the journal's index is damaged".into()));
                break;
            };
            let tick = tick_of(&key, JRNL.len());
            let ok =
                matches!(self.db.get(&key), Ok(Some(v)) if serde_json::from_slice::<super::JournalEntry>(&v).is_ok());
            if !ok {
                f.last_bad_input = Some((tick, format!("a journal entry of tick {tick} is damaged")));
            }
        }
        f
    }

    /// Copies every run that is not lost into `into`, a new database: an intact run whole, a
    /// recoverable one cut back to its good snapshot (and recorded as interrupted, so `resume`
    /// continues it). Run ids are kept, so forks still name their parents.
    pub fn salvage(&self, into: &Store) -> Result<Vec<(RunHealth, Option<Salvaged>)>, StoreError> {
        let mut out = Vec::new();
        let mut last = 0;
        for health in self.check()? {
            let copied = match (&health.health, &health.meta) {
                (Health::Intact, Some(meta)) => Some(self.copy_run(into, &health, meta, None)?),
                (Health::Recoverable { snapshot, .. }, Some(meta)) => {
                    Some(self.copy_run(into, &health, meta, Some(*snapshot))?)
                }
                (Health::Lost(_), _) | (_, None) => None,
            };
            if copied.is_some() {
                last = last.max(health.run.0);
            }
            out.push((health, copied));
        }
        into.db.insert(super::NEXT_RUN, &last.to_be_bytes()).map_err(|e| into.err(e))?;
        into.flush()?;
        Ok(out)
    }

    /// Copies one run's readable records, up to the snapshot at `cut` when given: its record
    /// and scenario text, the digests of the ticks before the cut, its good snapshots and its
    /// readable journal entries up to it. Records are asked for one by one (a scan stops at
    /// the first damaged one).
    fn copy_run(&self, into: &Store, h: &RunHealth, meta: &RunMeta, cut: Option<u32>) -> Result<Salvaged, StoreError> {
        let run = h.run;
        let mut copied = meta.clone();
        if let Some(c) = cut {
            copied.ticks_done = c;
            if copied.status != RunStatus::Completed || c < meta.ticks {
                copied.status = RunStatus::Interrupted;
            }
            copied.error = Some(format!("salvaged from the snapshot at tick {c}; later records were damaged"));
        }
        let put = |key: Vec<u8>, value: sled::IVec| into.db.insert(key, value).map(|_| ()).map_err(|e| into.err(e));
        let text = self.run(run)?.scenario_text;
        put(run_prefix(TEXT, run), text.as_bytes().into())?;
        into.put_run(run, &copied)?;
        let first = meta.parent.map_or(0, |(_, at)| at);
        for t in first..cut.unwrap_or(meta.ticks_done) {
            if let Ok(Some(v)) = self.db.get(tick_key(TICK, run, t))
                && postcard::from_bytes::<TickEntry>(&v).is_ok()
            {
                put(tick_key(TICK, run, t), v)?;
            }
        }
        for &t in h.snapshots.iter().filter(|t| cut.is_none_or(|c| **t <= c)) {
            if let Ok(Some(v)) = self.db.get(tick_key(SNAP, run, t)) {
                put(tick_key(SNAP, run, t), v)?;
            }
        }
        let keys: Vec<sled::IVec> = self.db.scan_prefix(run_prefix(JRNL, run)).keys().map_while(Result::ok).collect();
        for key in keys.into_iter().filter(|k| cut.is_none_or(|c| tick_of(k, JRNL.len()) <= c)) {
            if let Ok(Some(v)) = self.db.get(&key)
                && serde_json::from_slice::<super::JournalEntry>(&v).is_ok()
            {
                put(key.to_vec(), v)?;
            }
        }
        Ok(Salvaged { run, ticks_done: copied.ticks_done, whole: cut.is_none() })
    }
}

/// The verdict on a run from what was found.
fn verdict(meta: &RunMeta, f: &Findings) -> Health {
    let mut damage: Vec<String> =
        f.bad_snapshots.iter().map(|(t, why)| format!("the snapshot at tick {t} is damaged ({why})")).collect();
    damage.extend(f.first_bad_tick.iter().map(|(_, why)| why.clone()));
    damage.extend(f.last_bad_input.iter().map(|(_, why)| why.clone()));
    let final_missing = meta.status == RunStatus::Completed && !f.good_snapshots.contains(&meta.ticks_done);
    if final_missing && f.bad_snapshots.iter().all(|(t, _)| *t != meta.ticks_done) {
        damage.push(format!("the final snapshot (tick {}) is missing", meta.ticks_done));
    }
    if damage.is_empty() {
        return if f.good_snapshots.is_empty() { Health::Lost("it has no snapshot".into()) } else { Health::Intact };
    }
    // Continuing from snapshot S needs the digests from S on, and every input after S.
    let before = f.first_bad_tick.as_ref().map_or(u32::MAX, |(t, _)| *t);
    let after = f.last_bad_input.as_ref().map_or(0, |(t, _)| *t + 1);
    let from = f.good_snapshots.iter().copied().filter(|s| *s <= before && *s >= after && *s <= meta.ticks_done).max();
    let damage = damage.join("; ");
    match from {
        Some(snapshot) => Health::Recoverable { snapshot, damage },
        None => Health::Lost(format!("no good snapshot to continue from: {damage}")),
    }
}
