//! The read-only verbs — `runs`, `runs show`, `state`, `report` and `export` — as text written
//! into a string. The CLI prints it; when another process holds the database (a long `run`, a
//! `serve`, an exercise), that process answers the same request over its read socket (`live`)
//! and the CLI prints its answer. Paths in a request are absolute, so files land where the
//! asking command would have put them.

use crate::store::{RunId, RunMeta, RunStatus, Store};
use anyhow::Context;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One read-only request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Read {
    Runs,
    Show {
        run: u64,
    },
    State {
        run: u64,
        at: u32,
        json: Option<PathBuf>,
    },
    Report {
        run: u64,
        out: PathBuf,
    },
    /// `format` as written on the command line (csv or parquet).
    Export {
        run: u64,
        format: String,
        out: PathBuf,
    },
}

impl Read {
    /// The request with its paths made absolute against this process's current folder.
    pub fn absolute(self) -> Read {
        let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        match self {
            Read::Runs | Read::Show { .. } => self,
            Read::State { run, at, json } => Read::State { run, at, json: json.map(abs) },
            Read::Report { run, out } => Read::Report { run, out: abs(out) },
            Read::Export { run, format, out } => Read::Export { run, format, out: abs(out) },
        }
    }
}

/// A run's status in words, with who ended it early when someone did. A run recorded as
/// running that no process is driving (`live` holds the runs the process answering is driving)
/// ended with its process: killed, or stopped by a full disk or a crash.
pub fn status_words(id: RunId, m: &RunMeta, live: &BTreeSet<RunId>) -> String {
    match (m.status, &m.ended_by) {
        (RunStatus::Running, _) if live.contains(&id) => "running".into(),
        (RunStatus::Running, _) => "interrupted (process ended)".into(),
        (RunStatus::Completed | RunStatus::Failed | RunStatus::Interrupted, Some(by)) => {
            format!("{} ({by})", m.status.as_str())
        }
        (RunStatus::Completed | RunStatus::Failed | RunStatus::Interrupted, None) => m.status.as_str().into(),
    }
}

/// Answers `read` from `store` (the database at `db`) into `out`.
pub fn answer(store: &Store, db: &Path, read: &Read, live: &BTreeSet<RunId>, out: &mut String) -> anyhow::Result<()> {
    match read {
        Read::Runs => runs(store, db, live, out),
        Read::Show { run } => show(store, db, RunId(*run), live, out),
        Read::State { run, at, json } => state(store, RunId(*run), *at, json.as_deref(), out),
        Read::Report { run, out: dir } => report(store, RunId(*run), dir, out),
        Read::Export { run, format, out: dir } => export(store, RunId(*run), format, dir, out),
    }
}

fn runs(store: &Store, db: &Path, live: &BTreeSet<RunId>, out: &mut String) -> anyhow::Result<()> {
    let runs = store.run_records()?;
    if runs.is_empty() {
        let _ = writeln!(out, "No runs recorded in {}", db.display());
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:>5}  {:<22} {:>12} {:>13}  {:<28} {:<20} parent",
        "id", "scenario", "seed", "ticks", "status", "mode"
    );
    let mut ended = Vec::new();
    for (id, m) in &runs {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                let _ = writeln!(out, "{:>5}  (its record is unreadable: {e})", id.0);
                continue;
            }
        };
        let parent = m.parent.map(|(p, t)| format!("{p} @ tick {t}")).unwrap_or_default();
        let ticks = format!("{}/{}", m.ticks_done, m.ticks);
        let status = status_words(*id, m, live);
        let _ = writeln!(
            out,
            "{:>5}  {:<22} {:>12} {:>13}  {:<28} {:<20} {parent}",
            id.0, m.scenario_name, m.seed, ticks, status, m.mode
        );
        if m.status == RunStatus::Running && !live.contains(id) {
            ended.push(id.0);
        }
    }
    for id in ended {
        let _ = writeln!(
            out,
            "Run {id} stopped without finishing (its process ended); continue it with `chokepoint --db {} resume {id}`",
            db.display()
        );
    }
    Ok(())
}

fn show(store: &Store, db: &Path, id: RunId, live: &BTreeSet<RunId>, out: &mut String) -> anyhow::Result<()> {
    let m = store.run(id)?;
    let ticks = store.ticks(id)?;
    let status = status_words(id, &m, live);
    let error = m.error.as_ref().map(|e| format!(" — {e}")).unwrap_or_default();
    let _ = writeln!(out, "run {id}");
    let _ = writeln!(out, "  scenario     {} ({})", m.scenario_name, m.scenario_path);
    let _ = writeln!(out, "  seed         {}", m.seed);
    let _ = writeln!(out, "  ticks        {} of {} done", m.ticks_done, m.ticks);
    let _ = writeln!(out, "  status       {status}{error}");
    if m.status == RunStatus::Running && !live.contains(&id) {
        let _ = writeln!(out, "               continue it with `chokepoint --db {} resume {id}`", db.display());
    }
    let _ = writeln!(out, "  mode         {}", m.mode);
    let _ = writeln!(out, "  version      {}", m.version);
    let _ = writeln!(out, "  started      {}", crate::time::iso8601(m.started_unix_ms));
    if let Some(by) = &m.ended_by {
        let _ = writeln!(out, "  ended by     {by} at tick {}", m.ticks_done);
    }
    if let Some(x) = &m.exercise {
        let _ = writeln!(out, "  exercise     played by {}, turns of {} ticks", x.players.join(", "), x.turn_ticks);
        if let Some((tick, dir)) = &x.ai_from {
            let _ = writeln!(
                out,
                "               continued under AI from tick {tick}; the exercise's own outputs are in {dir}"
            );
        }
    }
    if let Some((p, t)) = m.parent {
        let _ = writeln!(out, "  forked from  run {p} at tick {t}");
    }
    let events = if m.events.is_some() { "replaced after the branch tick" } else { "the scenario's" };
    let _ = writeln!(out, "  events       {events}");
    let _ = writeln!(out, "  outputs      {}", m.out_dir);
    let _ = writeln!(out, "  snapshots    every {} ticks, at {:?}", m.snapshot_every, store.snapshot_ticks(id)?);
    let _ = writeln!(out, "  journal      {} entries", store.journal(id)?.len());
    let last = ticks.last().map(|(t, e)| format!("tick {t}: {}", engine::digest::Digest(e.digest))).unwrap_or_default();
    let _ = writeln!(out, "  digests      {} recorded; last {last}", ticks.len());
    let decided = store.decision_ticks(id)?;
    if m.journal_actions || !decided.is_empty() {
        let every = if m.journal_actions { "every node's" } else { "non-deterministic nodes'" };
        let _ = writeln!(out, "  decisions    {every} action batches journaled, at {} ticks", decided.len());
    }
    for (i, change) in store.placements(id)?.iter().enumerate() {
        let label = if i == 0 { "  placement   " } else { "              " };
        let _ = writeln!(out, "{label} {}", describe_placement(change));
    }
    Ok(())
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

fn state(store: &Store, run: RunId, at: u32, json: Option<&Path>, out: &mut String) -> anyhow::Result<()> {
    let (s, state, digest) = crate::history::state_at(store, run, at)?;
    let view = crate::view::WorldView::new(&s, &state, &digest);
    match json {
        Some(path) => {
            let text = serde_json::to_string_pretty(&view)?;
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
            let _ = writeln!(out, "Run {run} at tick {at} written to {}", path.display());
        }
        None => out.push_str(&view.render()),
    }
    Ok(())
}

fn report(store: &Store, run: RunId, dir: &Path, out: &mut String) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let data = crate::debrief::collect(store, run)?;
    let report = crate::debrief::report::write(&data, dir)
        .with_context(|| format!("cannot write the report to {}", dir.display()))?;
    for h in &report.highlights {
        let _ = writeln!(out, "  {h}");
    }
    let _ = writeln!(
        out,
        "Report for run {run} ({} ticks, {} charts) written to {} in {:.1} s",
        data.records.len(),
        report.charts.len(),
        report.index.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn export(store: &Store, run: RunId, format: &str, dir: &Path, out: &mut String) -> anyhow::Result<()> {
    use clap::ValueEnum;
    let format = crate::debrief::export::Format::from_str(format, true)
        .map_err(|_| anyhow::anyhow!("--format {format}: expected csv or parquet"))?;
    let data = crate::debrief::collect(store, run)?;
    let files = crate::debrief::export::write(&data, dir, format)
        .with_context(|| format!("cannot write to {}", dir.display()))?;
    for table in crate::debrief::export::tables(&data) {
        let _ = writeln!(out, "  {:<12} {:>8} rows", table.name, table.rows());
    }
    let _ = writeln!(out, "Run {run}: {} tables written to {}", files.len(), dir.display());
    Ok(())
}
