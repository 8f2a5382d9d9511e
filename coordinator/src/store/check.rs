//! What each run's records are worth (`db check`), and a new database made of what can be
//! saved (`db salvage`). Every record is read on its own, so one damaged record is reported
//! without hiding the others:
//!
//! - a run is **intact** when its record, its scenario's text, every tick's digests from its
//!   first snapshot to the last tick it recorded, every snapshot, every journal entry, every
//!   journaled host decision and placement change and every situation report read back as
//!   written;
//! - it is **recoverable from an earlier snapshot** when something is damaged or missing but a
//!   good snapshot lies at or before the first damaged tick (digests, journaled decisions and
//!   placement changes, which `resume` makes again from its snapshot on) and after every
//!   damaged journal entry: the run can continue from there (`resume`), losing only the ticks
//!   after it. A damaged situation report (what a player was told; nothing is computed from
//!   it) only leaves that report out;
//! - otherwise it is **lost**.

use super::{ACTS, JRNL, PLACE, RunId, RunMeta, RunStatus, SNAP, SREP, Store, StoreError, TEXT, TICK, TickEntry};
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
    /// Damaged situation reports, which are left out without costing any tick.
    bad_reports: Vec<String>,
}

/// A key space of per-tick records besides the digests and snapshots: its prefix, what its
/// records are called, and whether one of its values reads back as written.
struct Space {
    prefix: &'static [u8],
    what: &'static str,
    readable: fn(&[u8]) -> bool,
}

const DECISIONS: Space = Space {
    prefix: ACTS,
    what: "journaled host decisions",
    readable: |v| postcard::from_bytes::<crate::hosts::Decisions>(v).is_ok(),
};
const PLACEMENTS: Space = Space {
    prefix: PLACE,
    what: "a placement change",
    readable: |v| serde_json::from_slice::<crate::hosts::PlacementChange>(v).is_ok(),
};
const REPORTS: Space = Space {
    prefix: SREP,
    what: "a situation report",
    readable: |v| serde_json::from_slice::<serde_json::Value>(v).is_ok(),
};
const JOURNAL: Space = Space {
    prefix: JRNL,
    what: "a journal entry",
    readable: |v| serde_json::from_slice::<super::JournalEntry>(v).is_ok(),
};

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
        let damaged = self.damaged(run, &JOURNAL);
        f.last_bad_input = damaged.last().map(|(t, why)| (t.unwrap_or(meta.ticks), why.clone()));
        for space in [&DECISIONS, &PLACEMENTS] {
            // A damaged index hides which records there are: none of them can be trusted.
            if let Some((t, why)) = self.damaged(run, space).into_iter().next() {
                let t = t.unwrap_or(first);
                if f.first_bad_tick.as_ref().is_none_or(|(bad, _)| t < *bad) {
                    f.first_bad_tick = Some((t, why));
                }
            }
        }
        f.bad_reports = self.damaged(run, &REPORTS).into_iter().map(|(_, why)| why).collect();
        f
    }

    /// The records of `run` in `space` that do not read back, in key order: the tick of each
    /// (none when the space's index itself is damaged, which ends the list) and what is wrong.
    fn damaged(&self, run: RunId, space: &Space) -> Vec<(Option<u32>, String)> {
        let mut out = Vec::new();
        for key in self.db.scan_prefix(run_prefix(space.prefix, run)).keys() {
            let Ok(key) = key else {
                out.push((None, format!("the index of its {} records is damaged", space.what)));
                break;
            };
            let tick = tick_of(&key, space.prefix.len());
            if !matches!(self.db.get(&key), Ok(Some(v)) if (space.readable)(&v)) {
                out.push((Some(tick), format!("{} of tick {tick} is damaged", space.what)));
            }
        }
        out
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
            copied.error = Some(format!(
                "salvaged from the snapshot at tick {c}; records after it, and damaged ones, were left out"
            ));
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
        // Journal entries of the cut's tick take effect when it is resumed; the decisions,
        // placement changes and reports of that tick are made again.
        self.copy_space(into, run, &JOURNAL, |t| cut.is_none_or(|c| t <= c))?;
        for space in [&DECISIONS, &PLACEMENTS, &REPORTS] {
            self.copy_space(into, run, space, |t| cut.is_none_or(|c| t < c))?;
        }
        Ok(Salvaged { run, ticks_done: copied.ticks_done, whole: cut.is_none() })
    }

    /// Copies the readable records of `run` in `space` whose tick is `kept`, one by one.
    fn copy_space(
        &self,
        into: &Store,
        run: RunId,
        space: &Space,
        kept: impl Fn(u32) -> bool,
    ) -> Result<(), StoreError> {
        let keys: Vec<sled::IVec> =
            self.db.scan_prefix(run_prefix(space.prefix, run)).keys().map_while(Result::ok).collect();
        for key in keys.into_iter().filter(|k| kept(tick_of(k, space.prefix.len()))) {
            if let Ok(Some(v)) = self.db.get(&key)
                && (space.readable)(&v)
            {
                into.db.insert(key, v).map_err(|e| into.err(e))?;
            }
        }
        Ok(())
    }
}

/// The verdict on a run from what was found.
fn verdict(meta: &RunMeta, f: &Findings) -> Health {
    let mut damage: Vec<String> =
        f.bad_snapshots.iter().map(|(t, why)| format!("the snapshot at tick {t} is damaged ({why})")).collect();
    damage.extend(f.first_bad_tick.iter().map(|(_, why)| why.clone()));
    damage.extend(f.last_bad_input.iter().map(|(_, why)| why.clone()));
    damage.extend(f.bad_reports.iter().cloned());
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

#[cfg(test)]
mod tests {
    //! `check` and `salvage` over the key spaces served runs and exercises add: journaled
    //! decisions and placement changes cost the ticks from the first damaged one, a damaged
    //! situation report only itself.

    use super::*;
    use crate::hosts::{AgentSet, Decisions, PlacementChange};
    use std::sync::Arc;

    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("chokepoint-check-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    /// A completed 10-tick run with snapshots at 0, 5 and 10, decisions at ticks 2 and 7,
    /// placement changes at 0 and 6 and situation reports at 0 and 5.
    fn recorded(store: &Store) -> RunId {
        let s = engine::scenario::parse(include_str!("../../../scenarios/tiny.toml"), "tiny.toml").expect("tiny");
        let state = engine::Engine::new(Arc::new(s.clone())).state().clone();
        let mut meta = RunMeta::new(&s, "tiny.toml".into(), String::new(), 5, "served on 1 nodes".into());
        meta.ticks = 10;
        let run = store.create_run(&meta).expect("run");
        for t in 0..10 {
            store.put_tick(run, t, &TickEntry { digest: [t as u8; 32], parts: Vec::new() }).expect("tick");
        }
        for t in [0, 5, 10] {
            store.put_snapshot(run, t, &state).expect("snapshot");
        }
        for t in [2, 7] {
            let d = Decisions { tick: t, host: "n1".into(), actions: Vec::new(), rejections: Vec::new() };
            store.put_decisions(run, 0, &d).expect("decisions");
        }
        for (seq, t) in [0, 6].into_iter().enumerate() {
            let hosts = vec![("n1".to_string(), AgentSet(vec![(0, 3)]))];
            let change = PlacementChange { tick: t, cause: "joined".into(), hosts, recovery_us: None };
            store.put_placement(run, seq as u32, &change).expect("placement");
        }
        for t in [0, 5] {
            store.put_sitrep(run, t, 0, &serde_json::json!({ "turn": t })).expect("sitrep");
        }
        store
            .update_run(run, |m| {
                m.status = RunStatus::Completed;
                m.ticks_done = 10;
            })
            .expect("done");
        run
    }

    fn spoil(store: &Store, prefix: &[u8], run: RunId, tick: u32, last: &[u8]) {
        let mut key = tick_key(prefix, run, tick);
        key.extend_from_slice(last);
        assert!(store.db.get(&key).expect("read").is_some(), "the record to damage is there");
        store.db.insert(key, b"\xff not a record".to_vec()).expect("damage");
    }

    #[test]
    fn every_key_space_is_checked_and_salvaged() {
        let (dir, into_dir) = (scratch("db"), scratch("into"));
        let store = Store::open(&dir.0).expect("open");
        let run = recorded(&store);
        assert_eq!(store.check().expect("check")[0].health, Health::Intact);

        // Decisions damaged at tick 7: continue from the snapshot at 5, which resume redoes.
        spoil(&store, ACTS, run, 7, &0u32.to_be_bytes());
        let health = store.check().expect("check").remove(0).health;
        let Health::Recoverable { snapshot: 5, damage } = health else { panic!("{health:?}") };
        assert!(damage.contains("journaled host decisions of tick 7"), "{damage}");
        let into = Store::open(&into_dir.0).expect("new");
        let saved = store.salvage(&into).expect("salvage");
        assert_eq!(saved[0].1, Some(Salvaged { run, ticks_done: 5, whole: false }));
        assert_eq!(into.decision_ticks(run).expect("ticks").into_iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(into.placements(run).expect("placements").iter().map(|c| c.tick).collect::<Vec<_>>(), vec![0]);
        assert_eq!(into.sitreps(run).expect("reports").iter().map(|r| r.0).collect::<Vec<_>>(), vec![0]);
        drop(into);

        // A placement change damaged at tick 6 costs the ticks from 6 too.
        let second = scratch("second");
        let fresh = Store::open(&second.0).expect("open");
        let run = recorded(&fresh);
        spoil(&fresh, PLACE, run, 6, &1u32.to_be_bytes());
        let health = fresh.check().expect("check").remove(0).health;
        assert!(matches!(health, Health::Recoverable { snapshot: 5, .. }), "{health:?}");

        // A damaged situation report costs nothing else: the run is saved whole to its end,
        // without that report.
        let third_dir = scratch("third");
        let third = Store::open(&third_dir.0).expect("open");
        let run = recorded(&third);
        spoil(&third, SREP, run, 5, &0u16.to_be_bytes());
        let health = third.check().expect("check").remove(0).health;
        let Health::Recoverable { snapshot: 10, damage } = health else { panic!("{health:?}") };
        assert!(damage.contains("a situation report of tick 5"), "{damage}");
        let into_c = scratch("into-c");
        let into = Store::open(&into_c.0).expect("new");
        let saved = third.salvage(&into).expect("salvage");
        assert_eq!(saved[0].1, Some(Salvaged { run, ticks_done: 10, whole: false }));
        assert_eq!(into.run(run).expect("record").status, RunStatus::Completed);
        assert_eq!(into.sitreps(run).expect("reports").len(), 1);
        assert_eq!(into.decision_ticks(run).expect("ticks").len(), 2);
        assert_eq!(into.placements(run).expect("placements").len(), 2);
    }
}
