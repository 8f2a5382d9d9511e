//! The verbs over recorded runs: `check`, `runs`, `runs show`, `resume`, `replay`, `fork`,
//! `state`.

use super::open_store;
use crate::history::{self, HistoryError};
use crate::store::RunId;
use anyhow::Context;
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

pub(super) fn runs(db: &Path) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let runs = store.runs()?;
    if runs.is_empty() {
        println!("No runs recorded in {}", db.display());
    } else {
        println!(
            "{:>5}  {:<22} {:>12} {:>13}  {:<12} {:<20} parent",
            "id", "scenario", "seed", "ticks", "status", "mode"
        );
        for (id, m) in runs {
            let parent = m.parent.map(|(p, t)| format!("{p} @ tick {t}")).unwrap_or_default();
            let status = match &m.ended_by {
                Some(by) => format!("{} ({by})", m.status.as_str()),
                None => m.status.as_str().to_string(),
            };
            let ticks = format!("{}/{}", m.ticks_done, m.ticks);
            println!(
                "{:>5}  {:<22} {:>12} {:>13}  {:<12} {:<20} {parent}",
                id.0, m.scenario_name, m.seed, ticks, status, m.mode
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn show(db: &Path, run: u64) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let id = RunId(run);
    let m = store.run(id)?;
    let ticks = store.ticks(id)?;
    println!("run {id}");
    println!("  scenario     {} ({})", m.scenario_name, m.scenario_path);
    println!("  seed         {}", m.seed);
    println!("  ticks        {} of {} done", m.ticks_done, m.ticks);
    println!("  status       {}{}", m.status.as_str(), m.error.as_ref().map(|e| format!(" — {e}")).unwrap_or_default());
    println!("  mode         {}", m.mode);
    println!("  version      {}", m.version);
    println!("  started      {}", crate::time::iso8601(m.started_unix_ms));
    if let Some(by) = &m.ended_by {
        println!("  ended by     {by} at tick {}", m.ticks_done);
    }
    if let Some(x) = &m.exercise {
        println!("  exercise     played by {}, turns of {} ticks", x.players.join(", "), x.turn_ticks);
        if let Some((tick, dir)) = &x.ai_from {
            println!("               continued under AI from tick {tick}; the exercise's own outputs are in {dir}");
        }
    }
    if let Some((p, t)) = m.parent {
        println!("  forked from  run {p} at tick {t}");
    }
    println!("  events       {}", if m.events.is_some() { "replaced after the branch tick" } else { "the scenario's" });
    println!("  outputs      {}", m.out_dir);
    println!("  snapshots    every {} ticks, at {:?}", m.snapshot_every, store.snapshot_ticks(id)?);
    println!("  journal      {} entries", store.journal(id)?.len());
    let last = ticks.last().map(|(t, e)| format!("tick {t}: {}", engine::digest::Digest(e.digest))).unwrap_or_default();
    println!("  digests      {} recorded; last {last}", ticks.len());
    let decided = store.decision_ticks(id)?;
    if m.journal_actions || !decided.is_empty() {
        let every = if m.journal_actions { "every node's" } else { "non-deterministic nodes'" };
        println!("  decisions    {every} action batches journaled, at {} ticks", decided.len());
    }
    for (i, change) in store.placements(id)?.iter().enumerate() {
        let label = if i == 0 { "  placement   " } else { "              " };
        println!("{label} {}", describe_placement(change));
    }
    Ok(ExitCode::SUCCESS)
}

/// One change of placement as `runs show` prints it: from which tick, why, and who runs what
/// (the agent ranges cut short when long).
fn describe_placement(change: &crate::hosts::PlacementChange) -> String {
    let hosts: Vec<String> = change
        .hosts
        .iter()
        .map(|(host, agents)| {
            let mut ranges = agents.to_string();
            if ranges.len() > 48 {
                // Cut at the last whole range that fits.
                let cut = ranges[..48].rfind(", ").unwrap_or(0);
                ranges.truncate(cut);
                ranges.push_str(", ...");
            }
            format!("{host}: {} agents ({ranges})", agents.len())
        })
        .collect();
    let recovered =
        change.recovery_us.map(|us| format!(", recovered in {:.1} ms", us as f64 / 1000.0)).unwrap_or_default();
    format!("from tick {} ({}{recovered}): {}", change.tick, change.cause, hosts.join("; "))
}

/// `under_ai`: continue an exercise under AI, into this folder (or the default one).
pub(super) fn resume(db: &Path, run: u64, under_ai: Option<Option<PathBuf>>, quiet: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let options = history::ResumeOptions { snapshot_every: None, progress: !quiet, under_ai };
    let (meta, summary) = history::resume(store, RunId(run), options)?;
    let s = history::scenario_of(&meta)?;
    print!("{}", summary.render(&s));
    println!("Run {run} resumed to tick {} ({}); outputs in {}", meta.ticks_done, meta.status.as_str(), meta.out_dir);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn replay(db: &Path, run: u64, from: u32, to: Option<u32>) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
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
    let store = open_store(db)?;
    let (id, meta, summary) = history::fork(store, RunId(run), at, options)?;
    let s = history::scenario_of(&meta)?;
    print!("{}", summary.render(&s));
    println!(
        "Run {id} forked from run {run} at tick {at}, seed {}, to tick {}; outputs in {}",
        meta.seed, meta.ticks, meta.out_dir
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn state(db: &Path, run: u64, at: u32, json: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let (s, state, digest) = history::state_at(&store, RunId(run), at)?;
    let view = crate::view::WorldView::new(&s, &state, &digest);
    match json {
        Some(path) => {
            let text = serde_json::to_string_pretty(&view)?;
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            println!("Run {run} at tick {at} written to {}", path.display());
        }
        None => print!("{}", view.render()),
    }
    Ok(ExitCode::SUCCESS)
}
