//! `chokepoint sweep`: a scenario over many seeds and parameter values, each run embedded and
//! identical to running that seed alone, in parallel up to `--jobs` threads. Each finished run
//! is recorded at once in `cells/` under a hash of what its result depends on (`cells`), so a
//! sweep stopped at any moment (Ctrl-C, SIGTERM, kill -9, a full disk) and run again, with any
//! flags, redoes exactly the runs it lacks and never takes a run of another configuration. A
//! failed run is retried once and then reported in `failed.csv`. The tables (`summary`) are
//! made from the finished runs at the end, each file replaced whole.

mod cells;
mod summary;

use crate::durable::{self, WriteError};
use crate::sim::Sim;
use agents::{MarketId, NationId};
use cells::{CellKey, Cells, Found};
use engine::scenario::Scenario;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Why a sweep could not be set up or finished.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A `--set` parameter that names nothing or has a value out of range.
    #[error("{0}")]
    Param(String),
    /// A `--seeds` list that is not one.
    #[error("{0}")]
    Seeds(String),
    /// A run that failed (it is retried once, then listed in failed.csv).
    #[error(transparent)]
    Run(#[from] crate::sim::StepError),
    /// A file that could not be written (the run whose record it was counts as failed).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The sweep was stopped (Ctrl-C or SIGTERM) before this run finished.
    #[error("stopped before the run finished")]
    Stopped,
}

/// One parameter and the values to sweep it over.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub key: String,
    pub values: Vec<String>,
}

/// Parses `key=v1,v2,...`, checking the key against the scenario.
pub fn parse_param(spec: &str, scenario: &Scenario) -> Result<Param, SweepError> {
    let (key, values) = spec
        .split_once('=')
        .ok_or_else(|| SweepError::Param(format!("--set {spec}: expected key=value[,value...]")))?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return Err(SweepError::Param(format!("--set {spec}: no values")));
    }
    let param = Param { key: key.trim().to_string(), values };
    for v in &param.values {
        apply(&mut scenario.clone(), &param.key, v).map_err(SweepError::Param)?;
    }
    Ok(param)
}

/// Sets one parameter on a scenario. Supported keys: `stockpile.NATION.target_days` (every
/// stockpile of NATION), `stockpile.NATION.COMMODITY.target_days`, `stockpile.NATION.COMMODITY.
/// release_price_pct`, `capacity.NATION.COMMODITY.pct` (the mines' and refineries' capacity
/// in NATION as a percentage of the file's: a supply shortfall from the start), and
/// `seed`-independent `ticks`.
pub fn apply(s: &mut Scenario, key: &str, value: &str) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let number = |v: &str| v.parse::<f64>().map_err(|_| format!("{key}: {v:?} is not a number"));
    match parts.as_slice() {
        ["capacity", nation, commodity, "pct"] => {
            let n = s.nation_by_code(nation).ok_or_else(|| format!("{key}: unknown nation {nation}"))?;
            let c = s.commodity_by_code(commodity).ok_or_else(|| format!("{key}: unknown commodity {commodity}"))?;
            let pct = number(value)?;
            if !(0.0..=1_000.0).contains(&pct) {
                return Err(format!("{key}: {pct} is out of range (0 to 1000)"));
            }
            scale_capacity(s, n, c, (pct * 100.0) as i64).map_err(|e| format!("{key}: {e}"))
        }
        ["ticks"] => {
            let t = number(value)?;
            if !(1.0..=1_000_000.0).contains(&t) {
                return Err(format!("{key}: must be between 1 and 1000000"));
            }
            s.ticks = t as u32;
            Ok(())
        }
        ["stockpile", nation, rest @ ..] => {
            let n = s.nation_by_code(nation).ok_or_else(|| format!("{key}: unknown nation {nation}"))?;
            let (commodity, field) = match rest {
                [field] => (None, *field),
                [c, field] => {
                    (Some(s.commodity_by_code(c).ok_or_else(|| format!("{key}: unknown commodity {c}"))?), *field)
                }
                _ => return Err(format!("{key}: expected stockpile.NATION[.COMMODITY].FIELD")),
            };
            let v = number(value)?;
            if !(0.0..=10_000.0).contains(&v) {
                return Err(format!("{key}: {v} is out of range"));
            }
            let policies = &mut s.nations[n.index()].stockpiles;
            let mut touched = 0;
            for p in policies.iter_mut().filter(|p| commodity.is_none_or(|c| c == p.commodity)) {
                match field {
                    "target_days" => p.target_days = v as u32,
                    "release_price_pct" => p.release_price_bp = (v * 100.0) as u32,
                    "buy_max_price_pct" => p.buy_max_price_bp = (v * 100.0) as u32,
                    other => {
                        return Err(format!(
                            "{key}: unknown field {other} (target_days, release_price_pct, buy_max_price_pct)"
                        ));
                    }
                }
                touched += 1;
            }
            if touched == 0 {
                return Err(format!("{key}: {nation} has no such stockpile policy"));
            }
            Ok(())
        }
        _ => Err(format!(
            "unknown parameter {key} (supported: ticks, stockpile.NATION[.COMMODITY].target_days|release_price_pct|buy_max_price_pct, capacity.NATION.COMMODITY.pct)"
        )),
    }
}

/// Scales the capacity of every mine and refinery of `commodity` in `nation` to `bp` basis
/// points of what it is.
fn scale_capacity(s: &mut Scenario, nation: NationId, commodity: agents::CommodityId, bp: i64) -> Result<(), String> {
    let mut touched = 0;
    for def in &mut s.agents {
        let (site_nation, site_commodity, capacity) = match &mut def.spec {
            agents::AgentSpec::Miner { nation, commodity, capacity_per_tick, .. }
            | agents::AgentSpec::Refiner { nation, commodity, capacity_per_tick, .. } => {
                (*nation, *commodity, capacity_per_tick)
            }
            agents::AgentSpec::Nation { .. } | agents::AgentSpec::Manufacturer { .. } => continue,
        };
        if site_nation == nation && site_commodity == commodity {
            *capacity = capacity.scale_floor(bp, 10_000);
            touched += 1;
        }
    }
    if touched == 0 { Err("no mine or refinery of that commodity there".into()) } else { Ok(()) }
}

/// One run of the sweep: a seed and one value per parameter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Job {
    pub seed: u64,
    pub values: Vec<String>,
}

/// (outcome, subject, value) rows of one run.
pub type Outcomes = Vec<(String, String, f64)>;

/// Runs one job to the end and measures its outcomes, deciding on at most `threads` threads;
/// gives up between ticks once `stop` is set.
pub fn run_job(
    base: &Scenario,
    params: &[Param],
    job: &Job,
    threads: usize,
    stop: &AtomicBool,
) -> Result<Outcomes, SweepError> {
    let mut s = base.clone();
    s.seed = job.seed;
    for (p, v) in params.iter().zip(&job.values) {
        apply(&mut s, &p.key, v).map_err(SweepError::Param)?;
    }
    let s = Arc::new(s);
    let mut engine = Sim::embedded_on(s.clone(), threads);
    let mut start = BTreeMap::new();
    let mut peak: BTreeMap<MarketId, i64> = BTreeMap::new();
    let mut short_ticks: BTreeMap<NationId, u32> = BTreeMap::new();
    let mut unmet: BTreeMap<NationId, i64> = BTreeMap::new();
    let mut cost: BTreeMap<NationId, i64> = BTreeMap::new();
    let mut first_restriction = None;
    while !engine.is_finished() {
        if stop.load(Ordering::Relaxed) {
            return Err(SweepError::Stopped);
        }
        let r = engine.step()?;
        for m in r.markets.iter().filter(|m| m.market.stage == agents::Stage::Refined) {
            start.entry(m.market).or_insert(m.price.0);
            let p = peak.entry(m.market).or_insert(m.price.0);
            *p = (*p).max(m.price.0);
        }
        let mut short_now = BTreeSet::new();
        for x in &r.shortages {
            let gap = (x.wanted - x.consumed).0;
            if gap > 0 {
                *unmet.entry(x.nation).or_default() += gap;
                short_now.insert(x.nation);
            }
        }
        for n in short_now {
            *short_ticks.entry(n).or_default() += 1;
        }
        for p in &r.stockpiles {
            *cost.entry(p.nation).or_default() += p.holding_cost.0;
        }
        if first_restriction.is_none() && !r.restrictions.is_empty() {
            first_restriction = Some(r.tick.0 + 1);
        }
    }
    let mut out = Vec::new();
    for (m, p) in &peak {
        let code = s.commodity_code(m.commodity).to_string();
        out.push(("peak_price_usd_per_kg".into(), code.clone(), *p as f64 / 100.0));
        out.push(("peak_to_start_ratio".into(), code, *p as f64 / start[m].max(1) as f64));
    }
    for (n, nation) in s.nations.iter().enumerate() {
        let id = NationId(n as u16);
        out.push((
            "shortage_days".into(),
            nation.code.clone(),
            f64::from(short_ticks.get(&id).copied().unwrap_or(0) * s.tick_days),
        ));
        out.push(("unmet_demand_t".into(), nation.code.clone(), unmet.get(&id).copied().unwrap_or(0) as f64 / 1000.0));
        if !nation.stockpiles.is_empty() {
            out.push((
                "stockpile_cost_usd".into(),
                nation.code.clone(),
                cost.get(&id).copied().unwrap_or(0) as f64 / 100.0,
            ));
        }
    }
    // None in force at all: no value (an empty cell), never a sentinel that would skew a mean.
    out.push(("first_restriction_tick".into(), "world".into(), first_restriction.map_or(f64::NAN, f64::from)));
    Ok(out)
}

pub struct SweepOptions {
    pub seeds: Vec<u64>,
    pub params: Vec<Param>,
    pub jobs: usize,
    pub out: PathBuf,
    pub progress: bool,
    /// Set (by Ctrl-C or SIGTERM) to stop: no run starts after it, running ones are abandoned,
    /// and the tables are written from the runs finished.
    pub stop: Arc<AtomicBool>,
}

/// A sweep's runs done: what was done now, what was found done, and the rows of every finished
/// run of the sweep, for its tables.
#[derive(Debug)]
pub struct SweepReport {
    pub done: usize,
    pub skipped: usize,
    pub failed: Vec<(Job, SweepError)>,
    /// Finished runs in the folder's `cells/` that belong to other configurations (another
    /// scenario text, seed, number of ticks, parameter value or version): kept, not used.
    pub others: usize,
    /// Runs found recorded but damaged, with why; they were done again.
    pub damaged: Vec<(Job, String)>,
    /// Runs not done because the sweep was stopped.
    pub not_run: usize,
    /// runs.csv's header and rows (`seed,values...,outcome,subject,value`).
    header: String,
    lines: Vec<String>,
}

impl SweepReport {
    /// The finished runs that the tables will hold.
    pub fn finished(&self) -> usize {
        self.done + self.skipped
    }
}

/// What a job's result depends on (see `cells`).
fn cell_key<'a>(base: &'a Scenario, params: &'a [Param], job: &'a Job) -> CellKey<'a> {
    let mut ticks = base.ticks;
    let mut swept = Vec::new();
    for (p, v) in params.iter().zip(&job.values) {
        match p.key.as_str() {
            // Checked by `parse_param`; the run's own length is what counts.
            "ticks" => ticks = v.parse::<f64>().map_or(ticks, |t| t as u32),
            key => swept.push((key, v.as_str())),
        }
    }
    CellKey { scenario_text: &base.source, seed: job.seed, ticks, params: swept }
}

/// runs.csv's rows of one job.
fn lines_of(job: &Job, rows: &[String]) -> impl Iterator<Item = String> {
    let prefix = std::iter::once(job.seed.to_string()).chain(job.values.iter().cloned()).collect::<Vec<_>>().join(",");
    rows.iter().map(move |r| format!("{prefix},{r}"))
}

/// Every (seed × parameter combination), in order.
fn all_jobs(o: &SweepOptions) -> Vec<Job> {
    let combos: Vec<Vec<String>> = o.params.iter().fold(vec![Vec::new()], |acc, p| {
        acc.into_iter()
            .flat_map(|prefix| p.values.iter().map(move |v| [prefix.clone(), vec![v.clone()]].concat()))
            .collect()
    });
    o.seeds.iter().flat_map(|&seed| combos.iter().map(move |c| Job { seed, values: c.clone() })).collect()
}

/// Runs every (seed × parameter combination) whose cell is not already in `out/cells`, recording
/// each as it finishes, and writes the sweep's tables: [`run`] then [`SweepReport::write_tables`].
pub fn sweep(base: &Scenario, o: &SweepOptions) -> Result<SweepReport, SweepError> {
    let report = run(base, o)?;
    report.write_tables(&o.out, o.params.len())?;
    Ok(report)
}

/// Runs the sweep's missing cells in parallel, `o.jobs` at a time.
pub fn run(base: &Scenario, o: &SweepOptions) -> Result<SweepReport, SweepError> {
    std::fs::create_dir_all(&o.out).map_err(|e| WriteError::new(&o.out, e))?;
    // A sweep killed while it replaced its tables leaves their temporary files behind.
    durable::remove_stale_temporaries(&o.out);
    let cells = Cells::open(&o.out)?;
    let jobs = all_jobs(o);
    let mut lines = Vec::new();
    let (mut todo, mut damaged) = (Vec::new(), Vec::new());
    for job in &jobs {
        match cells.read(cell_key(base, &o.params, job).id()) {
            Found::Finished(rows) => lines.extend(lines_of(job, &rows)),
            Found::Missing => todo.push(job.clone()),
            Found::Damaged(why) => {
                damaged.push((job.clone(), why));
                todo.push(job.clone());
            }
        }
    }
    let skipped = jobs.len() - todo.len();
    let others = cells.count().saturating_sub(skipped + damaged.len());
    let header = {
        let mut h = vec!["seed".to_string()];
        h.extend(o.params.iter().map(|p| p.key.clone()));
        h.extend(["outcome", "subject", "value"].map(String::from));
        h.join(",")
    };
    let outcome = run_todo(base, o, &cells, todo);
    lines.extend(outcome.lines);
    Ok(SweepReport {
        done: outcome.done,
        skipped,
        failed: outcome.failed,
        others,
        damaged,
        not_run: outcome.not_run,
        header,
        lines,
    })
}

/// What the workers did.
struct Worked {
    done: usize,
    failed: Vec<(Job, SweepError)>,
    not_run: usize,
    lines: Vec<String>,
}

/// Runs `todo` on `o.jobs` threads, recording each finished run in `cells`.
fn run_todo(base: &Scenario, o: &SweepOptions, cells: &Cells, todo: Vec<Job>) -> Worked {
    let bar =
        if o.progress { indicatif::ProgressBar::new(todo.len() as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} run {pos}/{len} [{bar:40}] {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let queue = Mutex::new(todo.into_iter().collect::<std::collections::VecDeque<_>>());
    let worked = Mutex::new(Worked { done: 0, failed: Vec::new(), not_run: 0, lines: Vec::new() });
    // The cores are shared among the jobs running at once: each world decides on its share.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = (cores / o.jobs.max(1)).max(1);
    let attempt = |job: &Job| -> Result<Vec<String>, SweepError> {
        let outcomes = run_job(base, &o.params, job, threads, &o.stop)?;
        // A value that does not exist (no restriction ever) is an empty cell, never a sentinel.
        let rows: Vec<String> = outcomes
            .iter()
            .map(
                |(out, subject, v)| {
                    if v.is_finite() { format!("{out},{subject},{v}") } else { format!("{out},{subject},") }
                },
            )
            .collect();
        cells.write(&cell_key(base, &o.params, job), &rows)?;
        Ok(rows)
    };
    std::thread::scope(|scope| {
        for _ in 0..o.jobs.max(1) {
            scope.spawn(|| {
                while !o.stop.load(Ordering::Relaxed) {
                    let Some(job) = crate::run::lock(&queue).pop_front() else { break };
                    // A failed run (or a failed write of its record) is retried once.
                    let result = attempt(&job)
                        .or_else(|e| if matches!(e, SweepError::Stopped) { Err(e) } else { attempt(&job) });
                    let mut w = crate::run::lock(&worked);
                    match result {
                        Ok(rows) => {
                            w.lines.extend(lines_of(&job, &rows));
                            w.done += 1;
                        }
                        Err(SweepError::Stopped) => w.not_run += 1,
                        Err(e) => w.failed.push((job, e)),
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut worked = worked.into_inner().unwrap_or_else(|e| e.into_inner());
    worked.not_run += queue.into_inner().unwrap_or_else(|e| e.into_inner()).len();
    worked
}

impl SweepReport {
    /// Writes `failed.csv` (or removes an old one when nothing failed), then `runs.csv`,
    /// `runs.parquet`, `summary.csv` and `summary.parquet` from the finished runs, each file
    /// replaced whole.
    pub fn write_tables(&self, out: &Path, params: usize) -> Result<(), SweepError> {
        let failed_path = out.join("failed.csv");
        if self.failed.is_empty() {
            let _ = std::fs::remove_file(&failed_path);
        } else {
            let mut text = String::from("seed,values,error\n");
            for (j, e) in &self.failed {
                text.push_str(&format!("{},{},\"{}\"\n", j.seed, j.values.join("|"), e.to_string().replace('"', "'")));
            }
            durable::replace(&failed_path, text.as_bytes())?;
        }
        summary::write(out, &self.header, self.lines.clone(), params)?;
        Ok(())
    }
}

/// Parses `A..B` (inclusive) or a comma list into seeds.
pub fn parse_seeds(spec: &str) -> Result<Vec<u64>, SweepError> {
    let bad = |why: String| SweepError::Seeds(format!("--seeds {spec}: {why}"));
    if let Some((a, b)) = spec.split_once("..") {
        let a: u64 = a.trim().parse().map_err(|_| bad("bad start".into()))?;
        let b: u64 = b.trim().trim_start_matches('=').parse().map_err(|_| bad("bad end".into()))?;
        if b < a || b - a > 10_000_000 {
            return Err(bad("the range must go up and hold at most 10 million seeds".into()));
        }
        return Ok((a..=b).collect());
    }
    spec.split(',').map(|x| x.trim().parse().map_err(|_| bad(format!("{x:?} is not a seed")))).collect()
}

#[cfg(test)]
mod tests {
    use super::apply;
    use engine::scenario::Scenario;

    fn tiny() -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tiny.toml");
        crate::scenario_file::load(&path).expect("tiny.toml loads")
    }

    /// Capacity of every mine and refinery of `commodity` in `nation`, in agent order.
    fn capacities(s: &Scenario, nation: &str, commodity: &str) -> Vec<i64> {
        let (n, c) = (s.nation_by_code(nation).unwrap(), s.commodity_by_code(commodity).unwrap());
        s.agents
            .iter()
            .filter_map(|a| match &a.spec {
                agents::AgentSpec::Miner { nation, commodity, capacity_per_tick, .. }
                | agents::AgentSpec::Refiner { nation, commodity, capacity_per_tick, .. } => {
                    (*nation == n && *commodity == c).then_some(capacity_per_tick.0)
                }
                agents::AgentSpec::Nation { .. } | agents::AgentSpec::Manufacturer { .. } => None,
            })
            .collect()
    }

    #[test]
    fn capacity_scales_only_that_nations_sites_of_that_commodity() {
        let base = tiny();
        let mut s = base.clone();
        apply(&mut s, "capacity.BB.co.pct", "50").unwrap();
        let halved: Vec<i64> = capacities(&base, "BB", "co").iter().map(|c| c / 2).collect();
        assert!(!halved.is_empty());
        assert_eq!(capacities(&s, "BB", "co"), halved);
        assert_eq!(capacities(&s, "BB", "dy"), capacities(&base, "BB", "dy"));
        assert_eq!(capacities(&s, "AA", "co"), capacities(&base, "AA", "co"));
    }

    #[test]
    fn capacity_keys_that_name_nothing_are_refused() {
        let mut s = tiny();
        assert!(apply(&mut s, "capacity.ZZ.co.pct", "50").unwrap_err().contains("unknown nation ZZ"));
        assert!(apply(&mut s, "capacity.BB.xx.pct", "50").unwrap_err().contains("unknown commodity xx"));
        assert!(apply(&mut s, "capacity.AA.co.pct", "-1").unwrap_err().contains("out of range"));
        let none = apply(&mut s, "capacity.CC.dy.pct", "50").unwrap_err();
        assert!(none.contains("no mine or refinery"), "{none}");
    }
}
