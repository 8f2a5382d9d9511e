//! Tidy per-tick CSV files (one row per tick and key, integers in base units) and the
//! end-of-run summary. Both consume [`TickRecord`]s and never touch the engine.

use crate::durable::{self, WriteError};
use crate::rows;
use agents::nation::cover_tenths_of_days;
use agents::{MarketId, Money, Price, Quantity};
use engine::record::TickRecord;
use engine::scenario::Scenario;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The files a run writes, with their headers.
const FILES: [(&str, &str); 12] = [
    ("production.csv", "tick,nation,commodity,stage,produced_kg"),
    ("markets.csv", "tick,commodity,stage,price_cents_per_kg,volume_kg,traded"),
    ("domestic_prices.csv", "tick,commodity,stage,nation,price_cents_per_kg,world_price_cents_per_kg"),
    ("trades.csv", "tick,commodity,stage,from,to,volume_kg,value_cents"),
    ("stockpiles.csv", "tick,nation,commodity,stock_kg,target_days,cover_days,holding_cost_cents,loss_kg"),
    ("shortages.csv", "tick,nation,sector,commodity,wanted_kg,consumed_kg,shortage_kg"),
    ("nations.csv", "tick,nation,treasury_cents"),
    ("digests.csv", "tick,digest"),
    ("events.csv", "effective_tick,event"),
    ("emissions.csv", "tick,nation,co2_kg"),
    ("investments.csv", "tick,site,nation,owner,commodity,stage,added_kg_per_tick,added_t_per_year,online_tick"),
    ("recycling.csv", "tick,nation,commodity,recycled_kg"),
];

const REJECTIONS: (&str, &str) = ("rejections.csv", "tick,agent,agent_name,reason");

/// Cuts every output file in `dir` back to the rows of ticks before `tick` (and the events that
/// take effect by `tick`), so a run resumed from a snapshot at `tick` can append without
/// repeating rows. Missing files are left missing; each file is replaced whole (`durable`), so
/// a resume killed while it cuts leaves every file either as it was or cut.
pub fn truncate_from(dir: &Path, tick: u32) -> Result<(), WriteError> {
    for (name, _) in FILES.iter().chain(std::iter::once(&REJECTIONS)) {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let mut lines: Vec<&str> = text.lines().collect();
        // A last line without its newline was torn by a crash: drop it (never the header).
        if !text.ends_with('\n') && lines.len() > 1 {
            lines.pop();
        }
        let keep = |t: u32| if *name == "events.csv" { t <= tick } else { t < tick };
        let mut out = String::with_capacity(text.len());
        for (i, line) in lines.into_iter().enumerate() {
            let first = line.split(',').next().and_then(|f| f.parse::<u32>().ok());
            if i == 0 || first.is_some_and(keep) {
                out.push_str(line);
                out.push('\n');
            }
        }
        if out.len() != text.len() {
            durable::replace(&path, out.as_bytes())?;
        }
    }
    Ok(())
}

/// One output file and its buffer (a buffered file, or in memory: `W = Vec<u8>`).
#[derive(Clone)]
struct Out<W = BufWriter<File>> {
    path: PathBuf,
    w: W,
}

impl<W: Write> Out<W> {
    /// Writes rows, naming this file in an error.
    fn put(&mut self, rows: impl FnOnce(&mut W) -> io::Result<()>) -> Result<(), WriteError> {
        rows(&mut self.w).map_err(|e| WriteError::new(&self.path, e))
    }
}

impl Out {
    /// Pushes the buffer to the file and, with `sync`, the file to the disk.
    fn flush(&mut self, sync: bool) -> Result<(), WriteError> {
        self.w.flush().map_err(|e| WriteError::new(&self.path, e))?;
        if sync {
            self.w.get_ref().sync_data().map_err(|e| WriteError::new(&self.path, e))?;
        }
        Ok(())
    }
}

/// The per-tick CSV files, written to a folder (`W` a buffered file, the default) or kept in
/// memory (`W = Vec<u8>`, [`CsvOutputs::in_memory`]: the Python package's tables, no files).
#[derive(Clone)]
pub struct CsvOutputs<W: Write = BufWriter<File>> {
    dir: PathBuf,
    files: Vec<Out<W>>,
    rejections: Out<W>,
    tick_days: u32,
}

/// A CSV field: control characters stripped, quoted if it needs it.
fn field(s: &str) -> String {
    crate::clean::csv(s)
}

/// Tenths as a decimal string: 123 -> "12.3".
fn tenths(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{}", v.unsigned_abs() / 10, v.unsigned_abs() % 10)
}

impl CsvOutputs {
    /// Creates `dir` (and parents) and the files, with headers; with `append`, continues files
    /// already there (see [`truncate_from`] for cutting them back first).
    pub fn open(dir: &Path, scenario: &Scenario, append: bool) -> Result<CsvOutputs, WriteError> {
        std::fs::create_dir_all(dir).map_err(|e| WriteError::new(dir, e))?;
        let open = |name: &str, header: &str| -> Result<Out, WriteError> {
            let path = dir.join(name);
            let fail = |e| WriteError::new(&path, e);
            if append && path.exists() {
                let f = std::fs::OpenOptions::new().append(true).open(&path).map_err(fail)?;
                return Ok(Out { w: BufWriter::new(f), path });
            }
            let mut out = Out { w: BufWriter::new(File::create(&path).map_err(fail)?), path };
            out.put(|w| writeln!(w, "{header}"))?;
            Ok(out)
        };
        let files = FILES.iter().map(|(name, header)| open(name, header)).collect::<Result<Vec<_>, _>>()?;
        let rejections = open(REJECTIONS.0, REJECTIONS.1)?;
        Ok(CsvOutputs { dir: dir.to_path_buf(), files, rejections, tick_days: scenario.tick_days })
    }

    /// Pushes buffered rows to the files and, with `sync`, the files to the disk (before a
    /// snapshot, which a resume trusts the files to cover).
    pub fn flush(&mut self, sync: bool) -> Result<(), WriteError> {
        for f in &mut self.files {
            f.flush(sync)?;
        }
        self.rejections.flush(sync)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flushes every file to the disk.
    pub fn finish(mut self) -> Result<(), WriteError> {
        self.flush(true)
    }
}

impl CsvOutputs<Vec<u8>> {
    /// The files kept in memory, each starting with its header.
    pub fn in_memory(scenario: &Scenario) -> CsvOutputs<Vec<u8>> {
        let out = |name: &str, header: &str| Out { path: PathBuf::from(name), w: format!("{header}\n").into_bytes() };
        CsvOutputs {
            dir: PathBuf::new(),
            files: FILES.iter().map(|(name, header)| out(name, header)).collect(),
            rejections: out(REJECTIONS.0, REJECTIONS.1),
            tick_days: scenario.tick_days,
        }
    }

    /// Each file's name and text so far, in the order of the files a run writes.
    pub fn texts(&self) -> Vec<(&'static str, &[u8])> {
        let files = FILES.iter().zip(&self.files).map(|((name, _), f)| (*name, f.w.as_slice()));
        files.chain(std::iter::once((REJECTIONS.0, self.rejections.w.as_slice()))).collect()
    }
}

impl<W: Write> CsvOutputs<W> {
    pub fn write(&mut self, s: &Scenario, r: &TickRecord) -> Result<(), WriteError> {
        let t = r.tick.0;
        let code = |m: MarketId| (s.commodity_code(m.commodity), m.stage.as_str());
        let [
            production,
            markets,
            domestic,
            trades,
            stockpiles,
            shortages,
            nations,
            digests,
            events,
            emissions,
            investments,
            recycling,
        ] = &mut self.files[..]
        else {
            unreachable!("FILES has twelve entries")
        };
        production.put(|w| {
            for ((n, m), q) in &r.production {
                let (c, st) = code(*m);
                writeln!(w, "{t},{},{c},{st},{}", s.nation_code(*n), q.0)?;
            }
            Ok(())
        })?;
        for p in rows::prices(r) {
            let (c, st) = code(p.market);
            match p.zone {
                None => markets.put(|w| {
                    writeln!(w, "{t},{c},{st},{},{},{}", p.price.0, p.volume.unwrap_or_default().0, p.traded)
                })?,
                Some(n) => {
                    domestic.put(|w| writeln!(w, "{t},{c},{st},{},{},{}", s.nation_code(n), p.price.0, p.world.0))?
                }
            }
        }
        trades.put(|w| {
            for (k, (q, v)) in &r.flows {
                let (c, st) = code(k.market);
                writeln!(w, "{t},{c},{st},{},{},{},{}", s.nation_code(k.from), s.nation_code(k.to), q.0, v.0)?;
            }
            Ok(())
        })?;
        stockpiles.put(|w| write_stockpiles(w, s, r, self.tick_days))?;
        shortages.put(|w| write_shortages(w, s, r))?;
        nations.put(|w| {
            for (n, cash) in &r.treasuries {
                writeln!(w, "{t},{},{}", s.nation_code(*n), cash.0)?;
            }
            Ok(())
        })?;
        digests.put(|w| writeln!(w, "{t},{}", r.digest))?;
        events.put(|w| {
            for (at, _, text) in rows::events(s, r) {
                writeln!(w, "{at},{}", field(&text))?;
            }
            Ok(())
        })?;
        emissions.put(|w| {
            for (n, kg) in &r.emissions {
                writeln!(w, "{t},{},{kg}", s.nation_code(*n))?;
            }
            Ok(())
        })?;
        investments.put(|w| write_investments(w, s, r))?;
        recycling.put(|w| {
            for ((n, c), q) in &r.recycled {
                writeln!(w, "{t},{},{},{}", s.nation_code(*n), s.commodity_code(*c), q.0)?;
            }
            Ok(())
        })?;
        self.rejections.put(|w| {
            for x in &r.rejections {
                // A hostile node may name an agent that does not exist.
                let name = s.agents.get(x.agent.index()).map_or("(no such agent)", |a| a.name.as_str());
                writeln!(w, "{t},{},{},{}", x.agent.0, field(name), field(&x.reason))?;
            }
            Ok(())
        })
    }
}

fn write_stockpiles(w: &mut impl Write, s: &Scenario, r: &TickRecord, tick_days: u32) -> io::Result<()> {
    let t = r.tick.0;
    for p in &r.stockpiles {
        let cover = rows::cover_tenths(p, tick_days).map(tenths).unwrap_or_default();
        writeln!(
            w,
            "{t},{},{},{},{},{cover},{},{}",
            s.nation_code(p.nation),
            s.commodity_code(p.commodity),
            p.stock.0,
            p.target_days,
            p.holding_cost.0,
            p.loss.0
        )?;
    }
    Ok(())
}

fn write_shortages(w: &mut impl Write, s: &Scenario, r: &TickRecord) -> io::Result<()> {
    let t = r.tick.0;
    for x in rows::shortages(r) {
        writeln!(
            w,
            "{t},{},{},{},{},{},{}",
            s.nation_code(x.nation),
            x.sector.as_str(),
            s.commodity_code(x.commodity),
            x.wanted.0,
            x.consumed.0,
            x.short().0
        )?;
    }
    Ok(())
}

fn write_investments(w: &mut impl Write, s: &Scenario, r: &TickRecord) -> io::Result<()> {
    let t = r.tick.0;
    for (site, added, online) in &r.investments {
        let def = &s.agents[site.index()];
        let (commodity, stage) = match &def.spec {
            agents::AgentSpec::Miner { commodity, .. } => (*commodity, "ore"),
            agents::AgentSpec::Refiner { commodity, .. } => (*commodity, "refined"),
            agents::AgentSpec::Nation { .. } | agents::AgentSpec::Manufacturer { .. } => continue,
        };
        let owner = s.site(*site).map_or("", |x| x.owner_code.as_str());
        writeln!(
            w,
            "{t},{},{},{},{},{stage},{},{},{}",
            field(&def.name),
            s.nation_code(def.spec.nation()),
            field(owner),
            s.commodity_code(commodity),
            added.0,
            added.0.saturating_mul(i64::from(s.ticks_per_year)) / 1000,
            online.0
        )?;
    }
    Ok(())
}

/// Running statistics for the end-of-run summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub ticks: u32,
    /// By market index: (start, min, max, end) world price and total volume.
    pub prices: Vec<Option<(Price, Price, Price, Price)>>,
    pub volumes: Vec<Quantity>,
    /// By nation and commodity (at `nation * commodities + commodity`): total wanted and total
    /// unmet. A table, not a map: a large world adds tens of thousands of records a tick.
    pub shortages: Vec<(Quantity, Quantity)>,
    /// The scenario's number of commodities (the width of `shortages`).
    pub commodities: usize,
    /// By (nation, commodity): last stock, target days and cover in tenths of days.
    pub cover: BTreeMap<(agents::NationId, agents::CommodityId), (Quantity, u32, Option<i64>)>,
    pub spent_on_reserves: BTreeMap<agents::NationId, Money>,
    pub rejections: usize,
    pub events: Vec<(u32, String)>,
    /// New capacity decided, by (host nation, market): projects and kilograms per tick.
    pub investments: BTreeMap<(agents::NationId, MarketId), (usize, Quantity)>,
    pub last_digest: String,
}

impl Summary {
    pub fn new(scenario: &Scenario) -> Summary {
        Summary {
            prices: vec![None; scenario.market_count()],
            volumes: vec![Quantity::ZERO; scenario.market_count()],
            shortages: vec![(Quantity::ZERO, Quantity::ZERO); scenario.nations.len() * scenario.commodities.len()],
            commodities: scenario.commodities.len(),
            ..Summary::default()
        }
    }

    pub fn add(&mut self, scenario: &Scenario, r: &TickRecord) {
        self.ticks += 1;
        for m in &r.markets {
            let i = m.market.index();
            let p = m.price;
            self.prices[i] = Some(match self.prices[i] {
                None => (p, p, p, p),
                Some((start, lo, hi, _)) => (start, lo.min(p), hi.max(p), p),
            });
            self.volumes[i] += m.volume;
        }
        for s in &r.shortages {
            if let Some(e) = self.shortages.get_mut(s.nation.index() * self.commodities + s.commodity.index()) {
                e.0 += s.wanted;
                e.1 += s.wanted - s.consumed;
            }
        }
        for p in &r.stockpiles {
            let cover = cover_tenths_of_days(p.stock, p.consumption_per_tick, scenario.tick_days);
            self.cover.insert((p.nation, p.commodity), (p.stock, p.target_days, cover));
            *self.spent_on_reserves.entry(p.nation).or_default() += p.holding_cost;
        }
        self.rejections += r.rejections.len();
        self.events.extend(r.events.iter().map(|(at, e)| (at.0, e.describe(scenario))));
        for (site, added, _) in &r.investments {
            let spec = &scenario.agents[site.index()].spec;
            let market = match spec {
                agents::AgentSpec::Miner { commodity, .. } => MarketId::ore(*commodity),
                agents::AgentSpec::Refiner { commodity, .. } => MarketId::refined(*commodity),
                agents::AgentSpec::Nation { .. } | agents::AgentSpec::Manufacturer { .. } => continue,
            };
            let e = self.investments.entry((spec.nation(), market)).or_default();
            e.0 += 1;
            e.1 += *added;
        }
        self.last_digest = r.digest.to_string();
    }

    /// The human-readable report printed at the end of a run.
    pub fn render(&self, s: &Scenario) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "\nPrices (world clearing price, US$/kg) and traded volume over {} ticks", self.ticks);
        let _ = writeln!(
            out,
            "  {:<6} {:<8} {:>12} {:>12} {:>12} {:>12} {:>16}",
            "comm.", "stage", "start", "min", "max", "end", "volume (t)"
        );
        for (i, p) in self.prices.iter().enumerate() {
            let Some((start, lo, hi, end)) = p else { continue };
            let m = MarketId::from_index(i);
            let _ = writeln!(
                out,
                "  {:<6} {:<8} {:>12} {:>12} {:>12} {:>12} {:>16}",
                s.commodity_code(m.commodity),
                m.stage.as_str(),
                usd(*start),
                usd(*lo),
                usd(*hi),
                usd(*end),
                self.volumes[i].0 / 1000
            );
        }
        let _ =
            writeln!(out, "\nShortage by nation (demand its industry could not buy) and stockpile cover at the end");
        for (n, nation) in s.nations.iter().enumerate() {
            let id = agents::NationId(n as u16);
            let mut parts = Vec::new();
            let row = self.shortages.get(n * self.commodities..(n + 1) * self.commodities).unwrap_or_default();
            for (c, (wanted, short)) in row.iter().enumerate() {
                if short.is_positive() {
                    let pct = short.0 as f64 * 100.0 / wanted.0.max(1) as f64;
                    parts.push(format!(
                        "{} {} t ({pct:.1}%)",
                        s.commodity_code(agents::CommodityId(c as u16)),
                        short.0 / 1000
                    ));
                }
            }
            let shortage = if parts.is_empty() { "none".to_string() } else { parts.join(", ") };
            let mut covers = Vec::new();
            for ((_, c), (_, target, cover)) in
                self.cover.range((id, agents::CommodityId(0))..=(id, agents::CommodityId(u16::MAX)))
            {
                let cover = cover.map(tenths).unwrap_or_else(|| "-".into());
                covers.push(format!("{} {cover}/{target} d", s.commodity_code(*c)));
            }
            let cover = if covers.is_empty() { String::new() } else { format!("; cover {}", covers.join(", ")) };
            let _ = writeln!(out, "  {:<4} shortage {shortage}{cover}", nation.code);
        }
        if !self.events.is_empty() {
            let _ = writeln!(out, "\nEvents");
            for (t, e) in &self.events {
                let _ = writeln!(out, "  from tick {t}: {e}");
            }
        }
        if !self.investments.is_empty() {
            let _ = writeln!(out, "\nNew capacity decided (details in investments.csv)");
            for ((n, m), (projects, added)) in &self.investments {
                let _ = writeln!(
                    out,
                    "  {:<4} {} {:<8} {projects} project(s), +{} t/yr",
                    s.nation_code(*n),
                    s.commodity_code(m.commodity),
                    m.stage.as_str(),
                    added.0.saturating_mul(i64::from(s.ticks_per_year)) / 1000
                );
            }
        }
        let _ = writeln!(out, "\nRejected actions: {}", self.rejections);
        let _ = writeln!(out, "Final state digest: {}", self.last_digest);
        out
    }
}

fn usd(p: Price) -> String {
    format!("{}.{:02}", p.0 / 100, p.0 % 100)
}
