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
use std::path::Path;

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
    /// Opens the database at `path` for `db check` and `db salvage`: read from a copy when it
    /// is not known to be intact and, when sled cannot open that copy, from copies it is given
    /// a better chance with (without its index files, rebuilt then from its log; with a fresh
    /// configuration file as well). The original is never written.
    pub fn open_for_check(path: &Path) -> Result<Store, StoreError> {
        match Store::open_read(path) {
            Err(StoreError::Damaged { detail, .. }) => {
                let opened = super::open::open_rebuilt(path)
                    .map_err(|_| StoreError::Damaged { path: path.to_path_buf(), detail })?;
                Ok(Store {
                    db: opened.db,
                    path: path.to_path_buf(),
                    condition: opened.condition,
                    notice: opened.notice,
                    live: Default::default(),
                    closer: opened.closer,
                })
            }
            other => other,
        }
    }

    /// Every run's verdict, in id order.
    pub fn check(&self) -> Result<Vec<RunHealth>, StoreError> {
        Ok(self.run_records()?.into_iter().map(|(id, meta)| self.check_run(id, meta)).collect())
    }

    fn check_run(&self, run: RunId, meta: Result<RunMeta, StoreError>) -> RunHealth {
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                return RunHealth { run, meta: None, health: Health::Lost(format!("its record is unreadable: {e}")) };
            }
        };
        let health = match self.run(run) {
            Ok(m) if m.scenario_text.is_empty() => Health::Lost("its scenario's text is missing".into()),
            Ok(_) => verdict(&meta, &self.findings(run, &meta)),
            Err(e) => Health::Lost(format!("its scenario's text is unreadable: {e}")),
        };
        RunHealth { run, meta: Some(meta), health }
    }

    /// Reads every snapshot, tick entry and journal entry of `run` on its own.
    fn findings(&self, run: RunId, meta: &RunMeta) -> Findings {
        let mut f = Findings::default();
        for t in self.snapshot_ticks_probed(run, meta) {
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

    /// The ticks `run` has snapshots at: from a scan of their keys, or when that fails, every
    /// tick one would have been taken at.
    fn snapshot_ticks_probed(&self, run: RunId, meta: &RunMeta) -> Vec<u32> {
        if let Ok(ticks) = self.snapshot_ticks(run) {
            return ticks;
        }
        let first = meta.parent.map_or(0, |(_, at)| at);
        let every = meta.snapshot_every.max(1);
        let mut ticks: Vec<u32> = (first..=meta.ticks_done).filter(|t| *t == first || t % every == 0).collect();
        ticks.push(meta.ticks_done);
        ticks.dedup();
        ticks
    }

    /// Copies every run that is not lost into `into`, a new database: an intact run whole, a
    /// recoverable one cut back to its good snapshot (and recorded as interrupted, so `resume`
    /// continues it). Run ids are kept, so forks still name their parents.
    pub fn salvage(&self, into: &Store) -> Result<Vec<(RunHealth, Option<Salvaged>)>, StoreError> {
        let mut out = Vec::new();
        let mut last = 0;
        for health in self.check()? {
            let copied = match (&health.health, &health.meta) {
                (Health::Intact, Some(meta)) => Some(self.copy_run(into, health.run, meta, None)?),
                (Health::Recoverable { snapshot, .. }, Some(meta)) => {
                    Some(self.copy_run(into, health.run, meta, Some(*snapshot))?)
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

    /// Copies one run's readable records, up to the snapshot at `cut` when given.
    fn copy_run(&self, into: &Store, run: RunId, meta: &RunMeta, cut: Option<u32>) -> Result<Salvaged, StoreError> {
        let keep = |t: u32| cut.is_none_or(|c| t <= c);
        let mut copied = meta.clone();
        if let Some(c) = cut {
            copied.ticks_done = c;
            if copied.status != RunStatus::Completed || c < meta.ticks {
                copied.status = RunStatus::Interrupted;
            }
            copied.error = Some(format!("salvaged from the snapshot at tick {c}; later records were damaged"));
        }
        let text = self.run(run)?.scenario_text;
        into.db.insert(run_prefix(TEXT, run), text.as_bytes()).map_err(|e| into.err(e))?;
        into.put_run(run, &copied)?;
        for prefix in [TICK, SNAP, JRNL] {
            for key in self.db.scan_prefix(run_prefix(prefix, run)).keys().flatten() {
                let tick = tick_of(&key, prefix.len());
                // Digests are kept for the ticks before the cut; snapshots and inputs up to it.
                let wanted = if prefix == TICK { cut.is_none_or(|c| tick < c) } else { keep(tick) };
                let value = self.db.get(&key).ok().flatten();
                let readable = match (prefix, &value) {
                    (_, None) => false,
                    (p, Some(v)) if p == SNAP => decode_snapshot(v).is_ok(),
                    (p, Some(v)) if p == TICK => postcard::from_bytes::<TickEntry>(v).is_ok(),
                    (_, Some(v)) => serde_json::from_slice::<super::JournalEntry>(v).is_ok(),
                };
                if let (true, true, Some(v)) = (wanted, readable, value) {
                    into.db.insert(key, v).map_err(|e| into.err(e))?;
                }
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
