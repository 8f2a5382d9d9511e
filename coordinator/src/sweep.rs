//! `chokepoint sweep`: a scenario over many seeds and parameter values, each run embedded and
//! identical to running that seed alone, in parallel up to `--jobs` threads. Every finished run's
//! outcomes are appended to `runs.csv` at once, so an interrupted sweep resumes without redoing
//! them; a failed run is retried once and then reported in `failed.csv`. At the end the outcomes
//! are also written as `runs.parquet`, and `summary.csv` gives mean, median and 5th/95th
//! percentiles per outcome and parameter value.

use crate::debrief::export::{Table, Values, write_csv, write_parquet};
use crate::sim::Sim;
use agents::{MarketId, NationId};
use engine::scenario::Scenario;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
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
    #[error("{} belongs to a different sweep (other parameters); use another --out", .0.display())]
    OtherSweep(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Io { path: path.to_path_buf(), source }
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

/// Runs one job to the end and measures its outcomes, deciding on at most `threads` threads.
pub fn run_job(base: &Scenario, params: &[Param], job: &Job, threads: usize) -> Result<Outcomes, SweepError> {
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
    out.push(("first_restriction_tick".into(), "world".into(), first_restriction.map_or(-1.0, f64::from)));
    Ok(out)
}

pub struct SweepOptions {
    pub seeds: Vec<u64>,
    pub params: Vec<Param>,
    pub jobs: usize,
    pub out: PathBuf,
    pub progress: bool,
}

#[derive(Debug)]
pub struct SweepReport {
    pub done: usize,
    pub skipped: usize,
    pub failed: Vec<(Job, SweepError)>,
}

fn job_key(job: &Job) -> String {
    format!("{}|{}", job.seed, job.values.join("|"))
}

/// Runs every (seed × parameter combination) not already in `out/runs.csv`.
pub fn sweep(base: &Scenario, o: &SweepOptions) -> Result<SweepReport, SweepError> {
    std::fs::create_dir_all(&o.out).map_err(io(&o.out))?;
    let mut jobs = Vec::new();
    let combos: Vec<Vec<String>> = o.params.iter().fold(vec![Vec::new()], |acc, p| {
        acc.into_iter()
            .flat_map(|prefix| p.values.iter().map(move |v| [prefix.clone(), vec![v.clone()]].concat()))
            .collect()
    });
    for &seed in &o.seeds {
        for c in &combos {
            jobs.push(Job { seed, values: c.clone() });
        }
    }
    let runs_path = o.out.join("runs.csv");
    let header = {
        let mut h = vec!["seed".to_string()];
        h.extend(o.params.iter().map(|p| p.key.clone()));
        h.extend(["outcome", "subject", "value"].map(String::from));
        h.join(",")
    };
    let mut finished = BTreeSet::new();
    if let Ok(text) = std::fs::read_to_string(&runs_path) {
        let mut lines = text.lines();
        if lines.next() != Some(header.as_str()) {
            return Err(SweepError::OtherSweep(runs_path));
        }
        let width = o.params.len() + 1;
        for l in lines {
            let cells: Vec<&str> = l.split(',').collect();
            if cells.len() == width + 3 {
                finished.insert(cells[..width].join("|"));
            }
        }
    } else {
        std::fs::write(&runs_path, format!("{header}\n")).map_err(io(&runs_path))?;
    }
    let todo: Vec<Job> = jobs.iter().filter(|j| !finished.contains(&job_key(j))).cloned().collect();
    let skipped = jobs.len() - todo.len();
    let bar =
        if o.progress { indicatif::ProgressBar::new(todo.len() as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} run {pos}/{len} [{bar:40}] {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let queue = Mutex::new(todo.into_iter().collect::<std::collections::VecDeque<_>>());
    let file = Mutex::new(std::fs::OpenOptions::new().append(true).open(&runs_path).map_err(io(&runs_path))?);
    let failed = Mutex::new(Vec::new());
    let done = std::sync::atomic::AtomicUsize::new(0);
    // The cores are shared among the jobs running at once: each world decides on its share.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = (cores / o.jobs.max(1)).max(1);
    std::thread::scope(|scope| {
        for _ in 0..o.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(job) = crate::run::lock(&queue).pop_front() else { break };
                    // A failed run is retried once before it is reported.
                    let result =
                        run_job(base, &o.params, &job, threads).or_else(|_| run_job(base, &o.params, &job, threads));
                    match result {
                        Ok(outcomes) => {
                            let prefix = std::iter::once(job.seed.to_string())
                                .chain(job.values.iter().cloned())
                                .collect::<Vec<_>>()
                                .join(",");
                            let mut rows = String::new();
                            for (outcome, subject, value) in outcomes {
                                rows.push_str(&format!("{prefix},{outcome},{subject},{value}\n"));
                            }
                            let mut f = crate::run::lock(&file);
                            let _ = f.write_all(rows.as_bytes());
                            let _ = f.flush();
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => crate::run::lock(&failed).push((job, e)),
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    if !failed.is_empty() {
        let mut text = String::from("seed,values,error\n");
        for (j, e) in &failed {
            text.push_str(&format!("{},{},\"{}\"\n", j.seed, j.values.join("|"), e.to_string().replace('"', "'")));
        }
        let failed_path = o.out.join("failed.csv");
        std::fs::write(&failed_path, text).map_err(io(&failed_path))?;
    }
    summarize(&runs_path, &o.out, o.params.len()).map_err(io(&o.out.join("summary.csv")))?;
    Ok(SweepReport { done: done.into_inner(), skipped, failed })
}

/// Rewrites runs.csv sorted, writes runs.parquet, and writes summary.csv: per parameter value,
/// outcome and subject, the count, mean, median and 5th/95th percentiles.
fn summarize(runs: &Path, out: &Path, params: usize) -> std::io::Result<()> {
    let text = std::fs::read_to_string(runs)?;
    let mut lines: Vec<&str> = text.lines().collect();
    let header: Vec<String> = lines.remove(0).split(',').map(String::from).collect();
    lines.sort_by_key(|l| {
        let c: Vec<&str> = l.split(',').collect();
        (c[0].parse::<u64>().unwrap_or(0), c[1..].join(","))
    });
    std::fs::write(runs, format!("{}\n{}\n", header.join(","), lines.join("\n")))?;
    let rows: Vec<Vec<&str>> =
        lines.iter().map(|l| l.split(',').collect()).filter(|c: &Vec<&str>| c.len() == params + 4).collect();
    // Parquet, with typed columns.
    let static_name = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let mut columns: Vec<(&'static str, Values)> =
        vec![("seed", Values::Int(rows.iter().map(|r| r[0].parse().unwrap_or(0)).collect()))];
    for (i, name) in header.iter().enumerate().skip(1).take(params) {
        columns.push((static_name(name), Values::Text(rows.iter().map(|r| r[i].to_string()).collect())));
    }
    columns.push(("outcome", Values::Text(rows.iter().map(|r| r[params + 1].to_string()).collect())));
    columns.push(("subject", Values::Text(rows.iter().map(|r| r[params + 2].to_string()).collect())));
    columns.push(("value", Values::Float(rows.iter().map(|r| r[params + 3].parse().unwrap_or(f64::NAN)).collect())));
    let table = Table { name: "runs", columns };
    write_parquet(&table, &out.join("runs.parquet")).map_err(|e| std::io::Error::other(e.to_string()))?;
    // Summary by (parameter values, outcome, subject).
    let mut groups: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for r in &rows {
        let values: Vec<String> =
            header[1..=params].iter().zip(&r[1..=params]).map(|(k, v)| format!("{k}={v}")).collect();
        let key = (values.join(";"), r[params + 1].to_string(), r[params + 2].to_string());
        groups.entry(key).or_default().push(r[params + 3].parse().unwrap_or(f64::NAN));
    }
    let pct = |v: &[f64], q: f64| -> f64 {
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i.min(v.len() - 1)]
    };
    let (mut pv, mut oc, mut sj, mut n, mut mean, mut median, mut p5, mut p95) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((values, outcome, subject), mut v) in groups {
        v.sort_by(f64::total_cmp);
        pv.push(values);
        oc.push(outcome);
        sj.push(subject);
        n.push(v.len() as i64);
        mean.push(v.iter().sum::<f64>() / v.len() as f64);
        median.push(pct(&v, 0.5));
        p5.push(pct(&v, 0.05));
        p95.push(pct(&v, 0.95));
    }
    let summary = Table {
        name: "summary",
        columns: vec![
            // `key=value` pairs joined by `;` (empty when nothing was swept).
            ("parameters", Values::Text(pv)),
            ("outcome", Values::Text(oc)),
            ("subject", Values::Text(sj)),
            ("runs", Values::Int(n)),
            ("mean", Values::Float(mean)),
            ("median", Values::Float(median)),
            ("p5", Values::Float(p5)),
            ("p95", Values::Float(p95)),
        ],
    };
    write_csv(&summary, &out.join("summary.csv"))?;
    write_parquet(&summary, &out.join("summary.parquet")).map_err(|e| std::io::Error::other(e.to_string()))
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
