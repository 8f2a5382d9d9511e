//! The verbs over recorded runs that change them or look at the database as a whole: `check`,
//! `resume`, `replay`, `fork`, `db check` and `db salvage`.

use super::{open_read, open_store};
use crate::history::{self, HistoryError};
use crate::store::{Health, RunHealth, RunId, RunStatus, Store};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(super) fn check(scenario: PathBuf) -> anyhow::Result<ExitCode> {
    let s = crate::scenario_file::load(&scenario)?;
    println!(
        "{}: ok — {} ({} nations, {} commodities, {} agents, {} events, {} ticks, seed {})",
        scenario.display(),
        s.name,
        s.nations.len(),
        s.commodities.len(),
        s.agents.len(),
        s.events.len(),
        s.ticks,
        s.seed
    );
    Ok(ExitCode::SUCCESS)
}

/// `under_ai`: continue an exercise under AI, into this folder (or the default one).
pub(super) fn resume(db: &Path, run: u64, under_ai: Option<Option<PathBuf>>, quiet: bool) -> anyhow::Result<ExitCode> {
    let (store, _live) = open_store(db)?;
    let watch = crate::signals::Watch::start();
    let hooks = crate::run::Hooks { stop: watch.stop.clone(), ..Default::default() };
    let options = history::ResumeOptions { snapshot_every: None, progress: !quiet, under_ai };
    let (meta, summary) = history::resume(store, RunId(run), options, &hooks)?;
    let s = history::scenario_of(&meta)?;
    print!("{}", summary.render(&s));
    println!("Run {run} resumed to tick {} ({}); outputs in {}", meta.ticks_done, meta.status.as_str(), meta.out_dir);
    Ok(super::run::stopped(&watch, RunId(run), meta.status == RunStatus::Completed, summary.ticks, db))
}

pub(super) fn replay(db: &Path, run: u64, from: u32, to: Option<u32>) -> anyhow::Result<ExitCode> {
    let store = open_read(db)?;
    match history::replay(&store, RunId(run), from, to) {
        Ok(r) => {
            println!(
                "Run {run}: replayed from the snapshot at tick {} to tick {}; all {} recorded digests match",
                r.from_snapshot, r.last, r.checked
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ HistoryError::Divergence { .. }) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn fork(db: &Path, run: u64, at: u32, options: history::ForkOptions) -> anyhow::Result<ExitCode> {
    let (store, _live) = open_store(db)?;
    let watch = crate::signals::Watch::start();
    let hooks = crate::run::Hooks { stop: watch.stop.clone(), ..Default::default() };
    let (id, meta, summary) = history::fork(store, RunId(run), at, options, &hooks)?;
    let s = history::scenario_of(&meta)?;
    print!("{}", summary.render(&s));
    println!(
        "Run {id} forked from run {run} at tick {at}, seed {}, to tick {}; outputs in {}",
        meta.seed, meta.ticks, meta.out_dir
    );
    Ok(super::run::stopped(&watch, id, meta.status == RunStatus::Completed, summary.ticks, db))
}

/// `db check`: every run's verdict; exits non-zero when any run is not intact.
pub(super) fn db_check(db: &Path) -> anyhow::Result<ExitCode> {
    let store = Store::open_read(db)?;
    if let Some(notice) = store.notice() {
        eprintln!("{notice}");
    }
    let report = store.check()?;
    if report.is_empty() {
        println!("No runs recorded in {}", db.display());
    }
    let mut all_intact = true;
    for h in &report {
        all_intact &= h.health == Health::Intact;
        println!("{}", verdict_line(db, h));
    }
    let intact = report.iter().filter(|h| h.health == Health::Intact).count();
    println!("{} of {} runs intact in {}", intact, report.len(), db.display());
    Ok(if all_intact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One run's verdict in words.
fn verdict_line(db: &Path, h: &RunHealth) -> String {
    let name = h
        .meta
        .as_ref()
        .map(|m| format!(" ({}, seed {}, {}/{} ticks)", m.scenario_name, m.seed, m.ticks_done, m.ticks))
        .unwrap_or_default();
    match &h.health {
        Health::Intact => format!("run {}{name}: intact", h.run),
        Health::Recoverable { snapshot, damage } => format!(
            "run {}{name}: recoverable from the snapshot at tick {snapshot} ({damage}); `chokepoint --db {} db salvage --out NEWDB` keeps it up to there",
            h.run,
            db.display()
        ),
        Health::Lost(why) => format!("run {}{name}: lost ({why})", h.run),
    }
}

/// `db salvage --out NEWDB`: a new database holding every run that is not lost.
pub(super) fn db_salvage(db: &Path, out: PathBuf) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !out.exists() || std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_none()),
        "{} already exists; salvage writes a new database, so give a path that does not exist yet",
        out.display()
    );
    let store = Store::open_read(db)?;
    if let Some(notice) = store.notice() {
        eprintln!("{notice}");
    }
    let into = Store::open(&out)?;
    let copied = store.salvage(&into)?;
    let mut saved = 0;
    for (h, salvaged) in &copied {
        match salvaged {
            Some(s) if s.whole => println!("run {}: copied whole ({} ticks)", s.run, s.ticks_done),
            Some(s) => println!(
                "run {}: copied up to its snapshot at tick {}; `resume {}` continues it",
                s.run, s.ticks_done, s.run
            ),
            None => println!("{}: not copied", verdict_line(db, h)),
        }
        saved += usize::from(salvaged.is_some());
    }
    println!("{saved} of {} runs salvaged into {}", copied.len(), out.display());
    Ok(ExitCode::SUCCESS)
}
