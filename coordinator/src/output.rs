//! Tidy per-tick CSV files (one row per tick and key, integers in base units) and the
//! end-of-run summary. Both consume [`TickRecord`]s and never touch the engine.

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
/// repeating rows. Missing files are left missing.
pub fn truncate_from(dir: &Path, tick: u32) -> io::Result<()> {
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
        std::fs::write(&path, out)?;
    }
    Ok(())
}

/// The per-tick CSV files, written to a folder (`W` a buffered file, the default) or kept in
/// memory (`W = Vec<u8>`, [`CsvOutputs::in_memory`]: the Python package's tables, no files).
#[derive(Clone)]
pub struct CsvOutputs<W: Write = BufWriter<File>> {
    dir: PathBuf,
    files: Vec<W>,
    rejections: W,
    tick_days: u32,
}

/// Quotes a CSV field if it needs it.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Tenths as a decimal string: 123 -> "12.3".
fn tenths(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{}", v.unsigned_abs() / 10, v.unsigned_abs() % 10)
}

impl CsvOutputs {
    /// Creates `dir` (and parents) and the files, with headers; with `append`, continues files
    /// already there (see [`truncate_from`] for cutting them back first).
    pub fn open(dir: &Path, scenario: &Scenario, append: bool) -> io::Result<CsvOutputs> {
        std::fs::create_dir_all(dir)?;
        let open = |name: &str, header: &str| -> io::Result<BufWriter<File>> {
            let path = dir.join(name);
            if append && path.exists() {
                return Ok(BufWriter::new(std::fs::OpenOptions::new().append(true).open(path)?));
            }
            let mut w = BufWriter::new(File::create(path)?);
            writeln!(w, "{header}")?;
            Ok(w)
        };
        let files = FILES.iter().map(|(name, header)| open(name, header)).collect::<io::Result<Vec<_>>>()?;
        let rejections = open(REJECTIONS.0, REJECTIONS.1)?;
        Ok(CsvOutputs { dir: dir.to_path_buf(), files, rejections, tick_days: scenario.tick_days })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.flush()
    }
}

impl CsvOutputs<Vec<u8>> {
    /// The files kept in memory, each starting with its header.
    pub fn in_memory(scenario: &Scenario) -> CsvOutputs<Vec<u8>> {
        let with_header = |header: &str| format!("{header}\n").into_bytes();
        CsvOutputs {
            dir: PathBuf::new(),
            files: FILES.iter().map(|(_, header)| with_header(header)).collect(),
            rejections: with_header(REJECTIONS.1),
            tick_days: scenario.tick_days,
        }
    }

    /// Each file's name and text so far, in the order of the files a run writes.
    pub fn texts(&self) -> Vec<(&'static str, &[u8])> {
        let files = FILES.iter().zip(&self.files).map(|((name, _), text)| (*name, text.as_slice()));
        files.chain(std::iter::once((REJECTIONS.0, self.rejections.as_slice()))).collect()
    }
}

impl<W: Write> CsvOutputs<W> {
    pub fn write(&mut self, s: &Scenario, r: &TickRecord) -> io::Result<()> {
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
        for ((n, m), q) in &r.production {
            let (c, st) = code(*m);
            writeln!(production, "{t},{},{c},{st},{}", s.nation_code(*n), q.0)?;
        }
        for p in rows::prices(r) {
            let (c, st) = code(p.market);
            match p.zone {
                None => {
                    writeln!(markets, "{t},{c},{st},{},{},{}", p.price.0, p.volume.unwrap_or_default().0, p.traded)?
                }
                Some(n) => writeln!(domestic, "{t},{c},{st},{},{},{}", s.nation_code(n), p.price.0, p.world.0)?,
            }
        }
        for (k, (q, v)) in &r.flows {
            let (c, st) = code(k.market);
            writeln!(trades, "{t},{c},{st},{},{},{},{}", s.nation_code(k.from), s.nation_code(k.to), q.0, v.0)?;
        }
        for p in &r.stockpiles {
            let cover = rows::cover_tenths(p, self.tick_days).map(tenths).unwrap_or_default();
            writeln!(
                stockpiles,
                "{t},{},{},{},{},{cover},{},{}",
                s.nation_code(p.nation),
                s.commodity_code(p.commodity),
                p.stock.0,
                p.target_days,
                p.holding_cost.0,
                p.loss.0
            )?;
        }
        for x in rows::shortages(r) {
            writeln!(
                shortages,
                "{t},{},{},{},{},{},{}",
                s.nation_code(x.nation),
                x.sector.as_str(),
                s.commodity_code(x.commodity),
                x.wanted.0,
                x.consumed.0,
                x.short().0
            )?;
        }
        for (n, cash) in &r.treasuries {
            writeln!(nations, "{t},{},{}", s.nation_code(*n), cash.0)?;
        }
        writeln!(digests, "{t},{}", r.digest)?;
        for (at, _, text) in rows::events(s, r) {
            writeln!(events, "{at},{}", field(&text))?;
        }
        for (n, kg) in &r.emissions {
            writeln!(emissions, "{t},{},{kg}", s.nation_code(*n))?;
        }
        for (site, added, online) in &r.investments {
            let def = &s.agents[site.index()];
            let (commodity, stage) = match &def.spec {
                agents::AgentSpec::Miner { commodity, .. } => (*commodity, "ore"),
                agents::AgentSpec::Refiner { commodity, .. } => (*commodity, "refined"),
                agents::AgentSpec::Nation { .. } | agents::AgentSpec::Manufacturer { .. } => continue,
            };
            let owner = s.site(*site).map_or("", |x| x.owner_code.as_str());
            writeln!(
                investments,
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
        for ((n, c), q) in &r.recycled {
            writeln!(recycling, "{t},{},{},{}", s.nation_code(*n), s.commodity_code(*c), q.0)?;
        }
        for x in &r.rejections {
            // A hostile node may name an agent that does not exist.
            let name = s.agents.get(x.agent.index()).map_or("(no such agent)", |a| a.name.as_str());
            writeln!(self.rejections, "{t},{},{},{}", x.agent.0, field(name), field(&x.reason))?;
        }
        Ok(())
    }

    /// Pushes buffered rows to disk.
    pub fn flush(&mut self) -> io::Result<()> {
        for f in &mut self.files {
            f.flush()?;
        }
        self.rejections.flush()
    }
}

/// Running statistics for the end-of-run summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub ticks: u32,
    /// By market index: (start, min, max, end) world price and total volume.
    pub prices: Vec<Option<(Price, Price, Price, Price)>>,
    pub volumes: Vec<Quantity>,
    /// By (nation, commodity): total wanted and total unmet.
    pub shortages: BTreeMap<(agents::NationId, agents::CommodityId), (Quantity, Quantity)>,
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
            let e = self.shortages.entry((s.nation, s.commodity)).or_default();
            e.0 += s.wanted;
            e.1 += s.wanted - s.consumed;
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
            for ((nn, c), (wanted, short)) in
                self.shortages.range((id, agents::CommodityId(0))..=(id, agents::CommodityId(u16::MAX)))
            {
                let _ = nn;
                if short.is_positive() {
                    let pct = short.0 as f64 * 100.0 / wanted.0.max(1) as f64;
                    parts.push(format!("{} {} t ({pct:.1}%)", s.commodity_code(*c), short.0 / 1000));
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
