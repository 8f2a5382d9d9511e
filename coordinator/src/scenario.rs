//! Scenario files: the TOML format (the `Raw*` structs, which mirror the file field by field),
//! and its translation into a validated [`Scenario`] whose quantities and prices are integers.
//!
//! Every mistake is reported as a [`ScenarioError`] naming the file, the line and the field.
//! Nothing here panics on any input; the rest of the coordinator only ever sees a `Scenario`
//! that passed validation. Human-friendly units in the file (tonnes per year, US dollars per
//! kilogram, percentages) are converted once, here, with the rounding named.

use crate::locate::{FieldPath, line_col, span_of};
use agents::{AgentSpec, CommodityId, MarketId, Money, NationId, Price, Quantity, Sector, Stage, Tick};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// The file format.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    scenario: RawHeader,
    #[serde(default)]
    commodities: Vec<RawCommodity>,
    #[serde(default)]
    nations: Vec<RawNation>,
    #[serde(default)]
    miners: Vec<RawMiner>,
    #[serde(default)]
    refiners: Vec<RawRefiner>,
    #[serde(default)]
    manufacturers: Vec<RawManufacturer>,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    #[serde(default)]
    description: String,
    seed: i64,
    ticks: i64,
    #[serde(default = "default_ticks_per_year")]
    ticks_per_year: i64,
    #[serde(default = "default_tick_days")]
    tick_days: i64,
}

fn default_ticks_per_year() -> i64 {
    52
}
fn default_tick_days() -> i64 {
    7
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommodity {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    stockpile_loss_pct_per_year: f64,
    #[serde(default)]
    holding_cost_usd_per_kg_year: f64,
    ore: Option<RawStage>,
    refined: Option<RawStage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    reference_usd_per_kg: f64,
    price_min_usd_per_kg: f64,
    price_max_usd_per_kg: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNation {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    stockpile_budget_musd: f64,
    #[serde(default)]
    stockpile_appropriation_musd_per_year: f64,
    #[serde(default)]
    stockpiles: Vec<RawStockpile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStockpile {
    commodity: String,
    target_days: i64,
    #[serde(default)]
    initial_days: i64,
    #[serde(default = "default_buy_max")]
    buy_max_price_pct: f64,
    #[serde(default = "default_release_price")]
    release_price_pct: f64,
    #[serde(default = "default_true")]
    release_on_shortage: bool,
}

fn default_buy_max() -> f64 {
    110.0
}
fn default_release_price() -> f64 {
    250.0
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMiner {
    #[serde(default)]
    name: String,
    nation: String,
    commodity: String,
    capacity_t_per_year: f64,
    unit_cost_usd_per_kg: f64,
    #[serde(default = "default_inventory_cap")]
    inventory_cap_ticks: i64,
}

fn default_inventory_cap() -> i64 {
    8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefiner {
    #[serde(default)]
    name: String,
    nation: String,
    commodity: String,
    capacity_t_per_year: f64,
    unit_cost_usd_per_kg: f64,
    #[serde(default = "default_yield")]
    yield_pct: f64,
    #[serde(default = "default_ore_target")]
    ore_target_ticks: i64,
}

fn default_yield() -> f64 {
    95.0
}
fn default_ore_target() -> i64 {
    3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManufacturer {
    #[serde(default)]
    name: String,
    nation: String,
    sector: String,
    #[serde(default)]
    growth_pct_per_year: f64,
    #[serde(default = "default_elasticity")]
    elasticity: f64,
    #[serde(default = "default_inventory_target")]
    inventory_target_ticks: i64,
    demand_t_per_year: BTreeMap<String, f64>,
}

fn default_elasticity() -> f64 {
    0.2
}
fn default_inventory_target() -> i64 {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    tick: i64,
    action: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    nation: Option<String>,
    #[serde(default)]
    commodity: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    to: Option<Vec<String>>,
    #[serde(default)]
    from: Option<Vec<String>>,
    #[serde(default)]
    pct_of_last_year: Option<f64>,
    #[serde(default)]
    t_per_year: Option<f64>,
    #[serde(default)]
    delay_ticks: Option<i64>,
    #[serde(default)]
    pct: Option<f64>,
    #[serde(default)]
    target_days: Option<i64>,
    #[serde(default)]
    release_t: Option<f64>,
    #[serde(default)]
    until_tick: Option<i64>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    note: String,
}

// ---------------------------------------------------------------------------------------------
// The validated scenario.

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub ticks: u32,
    pub ticks_per_year: u32,
    pub tick_days: u32,
    pub commodities: Vec<Commodity>,
    pub nations: Vec<Nation>,
    /// Every agent, indexed by `AgentId`: one agency per nation first, then miners, refiners and
    /// manufacturers in file order.
    pub agents: Vec<AgentDef>,
    /// Scheduled events, sorted by tick (file order within a tick).
    pub events: Vec<Event>,
    /// The file's text, kept so a run can record exactly what it ran.
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commodity {
    pub code: String,
    pub name: String,
    pub note: String,
    /// Indexed by stage: ore, refined.
    pub stages: [StageSpec; 2],
    pub stockpile_loss_bp_per_year: i64,
    pub holding_cost_per_kg_year: Money,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageSpec {
    pub reference: Price,
    pub price_min: Price,
    pub price_max: Price,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nation {
    pub code: String,
    pub name: String,
    pub treasury: Money,
    pub appropriation_per_year: Money,
    pub stockpiles: Vec<StockpilePolicy>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockpilePolicy {
    pub commodity: CommodityId,
    pub target_days: u32,
    pub initial_days: u32,
    pub buy_max_price_bp: u32,
    pub release_price_bp: u32,
    pub release_on_shortage: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentDef {
    pub name: String,
    pub spec: AgentSpec,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub tick: Tick,
    /// The name `lift` refers to (defaults to `event-N`, N its position in the file).
    pub name: String,
    pub kind: EventKind,
    pub note: String,
}

/// Destinations or origins a restriction applies to: every other nation, or a list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Partners {
    All,
    Only(Vec<NationId>),
}

impl Partners {
    pub fn includes(&self, nation: NationId) -> bool {
        match self {
            Partners::All => true,
            Partners::Only(list) => list.binary_search(&nation).is_ok(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum QuotaSize {
    /// A share of the exporter's exports of this market over the last year (basis points).
    ShareOfLastYearBp(u32),
    /// A fixed yearly amount.
    PerYear(Quantity),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EventKind {
    ExportBan {
        nation: NationId,
        market: MarketId,
        to: Partners,
    },
    ExportQuota {
        nation: NationId,
        market: MarketId,
        to: Partners,
        size: QuotaSize,
    },
    ExportLicensing {
        nation: NationId,
        market: MarketId,
        to: Partners,
        delay_ticks: u32,
    },
    ExportTariff {
        nation: NationId,
        market: MarketId,
        to: Partners,
        bp: u32,
    },
    ImportTariff {
        nation: NationId,
        market: MarketId,
        from: Partners,
        bp: u32,
    },
    StockpileTarget {
        nation: NationId,
        commodity: CommodityId,
        target_days: u32,
    },
    StockpileRelease {
        nation: NationId,
        commodity: CommodityId,
        quantity: Quantity,
    },
    /// Ends the restriction started by the named event.
    Lift {
        target: String,
    },
}

impl Scenario {
    pub fn nation_code(&self, id: NationId) -> &str {
        &self.nations[id.index()].code
    }

    pub fn commodity_code(&self, id: CommodityId) -> &str {
        &self.commodities[id.index()].code
    }

    pub fn market_count(&self) -> usize {
        self.commodities.len() * 2
    }

    pub fn stage(&self, market: MarketId) -> &StageSpec {
        &self.commodities[market.commodity.index()].stages[market.index() % 2]
    }

    pub fn nation_by_code(&self, code: &str) -> Option<NationId> {
        self.nations.iter().position(|n| n.code == code).map(|i| NationId(i as u16))
    }

    pub fn commodity_by_code(&self, code: &str) -> Option<CommodityId> {
        self.commodities.iter().position(|c| c.code == code).map(|i| CommodityId(i as u16))
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// A scenario that cannot be run, and exactly where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {field}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The field's path in the file, e.g. `miners[3].nation` (or `(file)` for a syntax error).
    pub field: String,
    pub message: String,
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: file.clone(),
        line: 0,
        column: 0,
        field: "(file)".into(),
        message: format!("cannot read the scenario: {e}"),
    })?;
    parse(&text, &file)
}

/// Validates scenario text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        let field = e.span().map(|s| describe_span(text, s.start)).unwrap_or_else(|| "(file)".into());
        ScenarioError { file: file.into(), line, column, field, message: e.message().trim().to_string() }
    })?;
    let mut v = Validator { text, file, errors: Vec::new(), known_names: Vec::new() };
    let scenario = v.scenario(raw);
    match v.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(scenario),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    #[serde(default)]
    events: Vec<RawEvent>,
}

/// Validates a file of `[[events]]` tables (the scenario format's events) against `scenario`:
/// for a fork's `--events` and for control injects. `lift` may also target the scenario's own
/// events. Errors name `file` and lines in `text`.
pub fn parse_events(text: &str, file: &str, scenario: &Scenario) -> Result<Vec<Event>, ScenarioError> {
    let to_error = |e: toml::de::Error| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        let field = e.span().map(|s| describe_span(text, s.start)).unwrap_or_else(|| "(file)".into());
        ScenarioError { file: file.into(), line, column, field, message: e.message().trim().to_string() }
    };
    let events: RawEvents = toml::from_str(text).map_err(to_error)?;
    // The scenario's own text parsed before, so it parses again; its nations and commodities
    // are what the events may name.
    let mut raw: RawFile = toml::from_str(&scenario.source).map_err(|e| ScenarioError {
        file: file.into(),
        line: 0,
        column: 0,
        field: "(scenario)".into(),
        message: format!("the run's scenario no longer parses: {}", e.message()),
    })?;
    raw.events = events.events;
    let mut v = Validator {
        text,
        file,
        errors: Vec::new(),
        known_names: scenario.events.iter().map(|e| e.name.clone()).collect(),
    };
    let parsed = v.events(&raw, scenario.ticks);
    match v.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(parsed),
    }
}

/// The key written at the start of the line holding `offset`, for errors from the TOML parser.
fn describe_span(text: &str, offset: usize) -> String {
    let start = text[..offset.min(text.len())].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[start..].lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => key.trim().to_string(),
        _ => line.trim().trim_matches(['[', ']']).to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation: turns the raw file into a `Scenario`, collecting the first error with its place.

struct Validator<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<ScenarioError>,
    /// Names of events defined elsewhere that `lift` may target (a fork's parent's events).
    known_names: Vec<String>,
}

/// Largest yearly tonnage or price accepted; anything beyond is a typo, not a world.
const MAX_T_PER_YEAR: f64 = 1.0e9;
const MAX_USD_PER_KG: f64 = 1.0e7;
const MAX_MUSD: f64 = 1.0e9;

impl Validator<'_> {
    fn fail(&mut self, path: &FieldPath, message: impl Into<String>) {
        let (line, column) = span_of(self.text, path).map(|s| line_col(self.text, s.start)).unwrap_or((0, 0));
        self.errors.push(ScenarioError {
            file: self.file.into(),
            line,
            column,
            field: path.to_string(),
            message: message.into(),
        });
    }

    fn int_in(&mut self, path: &FieldPath, v: i64, min: i64, max: i64) -> i64 {
        if v < min || v > max {
            self.fail(path, format!("must be between {min} and {max} (got {v})"));
            return min;
        }
        v
    }

    fn non_negative(&mut self, path: &FieldPath, v: f64, max: f64) -> f64 {
        if !v.is_finite() || v < 0.0 {
            self.fail(path, format!("must not be negative (got {v})"));
            return 0.0;
        }
        if v > max {
            self.fail(path, format!("is implausibly large (got {v}, at most {max})"));
            return 0.0;
        }
        v
    }

    /// Dollars per kilogram to cents per kilogram, rounded to the nearest cent.
    fn price(&mut self, path: &FieldPath, usd_per_kg: f64) -> Price {
        Price(round_half_away(self.non_negative(path, usd_per_kg, MAX_USD_PER_KG) * 100.0))
    }

    /// Tonnes per year to kilograms per tick, rounded down to whole kilograms.
    fn per_tick(&mut self, path: &FieldPath, t_per_year: f64, ticks_per_year: u32) -> Quantity {
        let kg_per_year = round_half_away(self.non_negative(path, t_per_year, MAX_T_PER_YEAR) * 1000.0);
        Quantity(kg_per_year / i64::from(ticks_per_year.max(1)))
    }

    fn pct_bp(&mut self, path: &FieldPath, pct: f64, max_pct: f64) -> u32 {
        round_half_away(self.non_negative(path, pct, max_pct) * 100.0) as u32
    }

    fn nation(&mut self, path: &FieldPath, code: &str, nations: &[RawNation]) -> NationId {
        match nations.iter().position(|n| n.id == code) {
            Some(i) => NationId(i as u16),
            None => {
                let known: Vec<&str> = nations.iter().map(|n| n.id.as_str()).collect();
                self.fail(path, format!("unknown nation \"{code}\" (defined nations: {})", known.join(", ")));
                NationId(0)
            }
        }
    }

    fn commodity(&mut self, path: &FieldPath, code: &str, commodities: &[RawCommodity]) -> CommodityId {
        match commodities.iter().position(|c| c.id == code) {
            Some(i) => CommodityId(i as u16),
            None => {
                let known: Vec<&str> = commodities.iter().map(|c| c.id.as_str()).collect();
                self.fail(path, format!("unknown commodity \"{code}\" (defined commodities: {})", known.join(", ")));
                CommodityId(0)
            }
        }
    }

    fn scenario(&mut self, raw: RawFile) -> Scenario {
        let root = FieldPath::root();
        let h = root.key("scenario");
        let seed = self.int_in(&h.key("seed"), raw.scenario.seed, 0, i64::MAX) as u64;
        let ticks = self.int_in(&h.key("ticks"), raw.scenario.ticks, 1, 1_000_000) as u32;
        let ticks_per_year = self.int_in(&h.key("ticks_per_year"), raw.scenario.ticks_per_year, 1, 366) as u32;
        let tick_days = self.int_in(&h.key("tick_days"), raw.scenario.tick_days, 1, 366) as u32;
        if raw.commodities.is_empty() {
            self.fail(&root, "a scenario needs at least one [[commodities]] entry");
        }
        if raw.nations.is_empty() {
            self.fail(&root, "a scenario needs at least one [[nations]] entry");
        }
        if raw.commodities.len() > 1000 || raw.nations.len() > 10_000 {
            self.fail(&root, "too many commodities (at most 1000) or nations (at most 10000)");
        }
        let commodities = self.commodities(&raw.commodities);
        let nations = self.nations(&raw, tick_days);
        let mut agents: Vec<AgentDef> = nations
            .iter()
            .enumerate()
            .map(|(i, n)| AgentDef {
                name: format!("{} stockpile agency", n.code),
                spec: AgentSpec::Nation { nation: NationId(i as u16) },
            })
            .collect();
        self.miners(&raw, ticks_per_year, &mut agents);
        self.refiners(&raw, ticks_per_year, &mut agents);
        self.manufacturers(&raw, ticks_per_year, &mut agents);
        let events = self.events(&raw, ticks);
        Scenario {
            name: raw.scenario.name,
            description: raw.scenario.description,
            seed,
            ticks,
            ticks_per_year,
            tick_days,
            commodities,
            nations,
            agents,
            events,
            source: self.text.to_string(),
        }
    }

    fn commodities(&mut self, raw: &[RawCommodity]) -> Vec<Commodity> {
        let mut out = Vec::new();
        for (i, c) in raw.iter().enumerate() {
            let p = FieldPath::root().key("commodities").index(i);
            if c.id.is_empty() || !c.id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                self.fail(&p.key("id"), format!("\"{}\" is not a valid id (letters, digits, - and _)", c.id));
            }
            if raw[..i].iter().any(|o| o.id == c.id) {
                self.fail(&p.key("id"), format!("commodity \"{}\" is defined twice", c.id));
            }
            let stage = |v: &mut Self, name: &str, s: &Option<RawStage>| -> StageSpec {
                let sp = p.key(name);
                let Some(s) = s else {
                    v.fail(&p, format!("commodity \"{}\" has no {name} stage: every commodity trades as ore and as refined product, add [commodities.{name}]", c.id));
                    return StageSpec { reference: Price(1), price_min: Price(1), price_max: Price(1) };
                };
                let reference = v.price(&sp.key("reference_usd_per_kg"), s.reference_usd_per_kg);
                let price_min = v.price(&sp.key("price_min_usd_per_kg"), s.price_min_usd_per_kg);
                let price_max = v.price(&sp.key("price_max_usd_per_kg"), s.price_max_usd_per_kg);
                if price_min.0 < 1 {
                    v.fail(&sp.key("price_min_usd_per_kg"), "must be at least one cent");
                }
                if !(price_min <= reference && reference <= price_max) {
                    v.fail(&sp.key("reference_usd_per_kg"), format!("must lie between price_min_usd_per_kg and price_max_usd_per_kg ({price_min} .. {price_max}, got {reference})"));
                }
                StageSpec { reference, price_min, price_max }
            };
            let ore = stage(self, "ore", &c.ore);
            let refined = stage(self, "refined", &c.refined);
            let loss = self.pct_bp(&p.key("stockpile_loss_pct_per_year"), c.stockpile_loss_pct_per_year, 100.0);
            let holding = self.non_negative(
                &p.key("holding_cost_usd_per_kg_year"),
                c.holding_cost_usd_per_kg_year,
                MAX_USD_PER_KG,
            );
            out.push(Commodity {
                code: c.id.clone(),
                name: if c.name.is_empty() { c.id.clone() } else { c.name.clone() },
                note: c.note.clone(),
                stages: [ore, refined],
                stockpile_loss_bp_per_year: i64::from(loss),
                holding_cost_per_kg_year: Money(round_half_away(holding * 100.0)),
            });
        }
        out
    }

    fn nations(&mut self, raw: &RawFile, _tick_days: u32) -> Vec<Nation> {
        let mut out = Vec::new();
        for (i, n) in raw.nations.iter().enumerate() {
            let p = FieldPath::root().key("nations").index(i);
            if n.id.is_empty() || !n.id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                self.fail(&p.key("id"), format!("\"{}\" is not a valid id (letters, digits, - and _)", n.id));
            }
            if raw.nations[..i].iter().any(|o| o.id == n.id) {
                self.fail(&p.key("id"), format!("nation \"{}\" is defined twice", n.id));
            }
            let budget = self.non_negative(&p.key("stockpile_budget_musd"), n.stockpile_budget_musd, MAX_MUSD);
            let approp = self.non_negative(
                &p.key("stockpile_appropriation_musd_per_year"),
                n.stockpile_appropriation_musd_per_year,
                MAX_MUSD,
            );
            let mut stockpiles = Vec::new();
            for (j, s) in n.stockpiles.iter().enumerate() {
                let sp = p.key("stockpiles").index(j);
                let commodity = self.commodity(&sp.key("commodity"), &s.commodity, &raw.commodities);
                if stockpiles.iter().any(|x: &StockpilePolicy| x.commodity == commodity) && !self.has_errors() {
                    self.fail(
                        &sp.key("commodity"),
                        format!("nation \"{}\" has two stockpile policies for \"{}\"", n.id, s.commodity),
                    );
                }
                stockpiles.push(StockpilePolicy {
                    commodity,
                    target_days: self.int_in(&sp.key("target_days"), s.target_days, 0, 3650) as u32,
                    initial_days: self.int_in(&sp.key("initial_days"), s.initial_days, 0, 3650) as u32,
                    buy_max_price_bp: self.pct_bp(&sp.key("buy_max_price_pct"), s.buy_max_price_pct, 10_000.0),
                    release_price_bp: self.pct_bp(&sp.key("release_price_pct"), s.release_price_pct, 10_000.0),
                    release_on_shortage: s.release_on_shortage,
                });
            }
            stockpiles.sort_by_key(|s| s.commodity);
            out.push(Nation {
                code: n.id.clone(),
                name: if n.name.is_empty() { n.id.clone() } else { n.name.clone() },
                treasury: Money(round_half_away(budget * 1.0e8)),
                appropriation_per_year: Money(round_half_away(approp * 1.0e8)),
                stockpiles,
            });
        }
        out
    }

    fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    fn miners(&mut self, raw: &RawFile, tpy: u32, agents: &mut Vec<AgentDef>) {
        for (i, m) in raw.miners.iter().enumerate() {
            let p = FieldPath::root().key("miners").index(i);
            let nation = self.nation(&p.key("nation"), &m.nation, &raw.nations);
            let commodity = self.commodity(&p.key("commodity"), &m.commodity, &raw.commodities);
            let capacity_per_tick = self.per_tick(&p.key("capacity_t_per_year"), m.capacity_t_per_year, tpy);
            let unit_cost = self.price(&p.key("unit_cost_usd_per_kg"), m.unit_cost_usd_per_kg);
            let inventory_cap_ticks = self.int_in(&p.key("inventory_cap_ticks"), m.inventory_cap_ticks, 1, 520) as u32;
            let name = if m.name.is_empty() {
                format!("{} {} mine #{}", m.nation, m.commodity, i + 1)
            } else {
                m.name.clone()
            };
            agents.push(AgentDef {
                name,
                spec: AgentSpec::Miner { nation, commodity, capacity_per_tick, unit_cost, inventory_cap_ticks },
            });
        }
    }

    fn refiners(&mut self, raw: &RawFile, tpy: u32, agents: &mut Vec<AgentDef>) {
        for (i, r) in raw.refiners.iter().enumerate() {
            let p = FieldPath::root().key("refiners").index(i);
            let nation = self.nation(&p.key("nation"), &r.nation, &raw.nations);
            let commodity = self.commodity(&p.key("commodity"), &r.commodity, &raw.commodities);
            let capacity_per_tick = self.per_tick(&p.key("capacity_t_per_year"), r.capacity_t_per_year, tpy);
            let unit_cost = self.price(&p.key("unit_cost_usd_per_kg"), r.unit_cost_usd_per_kg);
            let yield_bp = self.pct_bp(&p.key("yield_pct"), r.yield_pct, 100.0);
            if yield_bp == 0 {
                self.fail(&p.key("yield_pct"), "must be above 0");
            }
            let ore_target_ticks = self.int_in(&p.key("ore_target_ticks"), r.ore_target_ticks, 0, 520) as u32;
            let name = if r.name.is_empty() {
                format!("{} {} refinery #{}", r.nation, r.commodity, i + 1)
            } else {
                r.name.clone()
            };
            agents.push(AgentDef {
                name,
                spec: AgentSpec::Refiner {
                    nation,
                    commodity,
                    capacity_per_tick,
                    unit_cost,
                    yield_bp: yield_bp.max(1),
                    ore_target_ticks,
                },
            });
        }
    }

    fn manufacturers(&mut self, raw: &RawFile, tpy: u32, agents: &mut Vec<AgentDef>) {
        for (i, m) in raw.manufacturers.iter().enumerate() {
            let p = FieldPath::root().key("manufacturers").index(i);
            let nation = self.nation(&p.key("nation"), &m.nation, &raw.nations);
            let sector = match Sector::parse(&m.sector) {
                Some(s) => s,
                None => {
                    let known: Vec<&str> = Sector::ALL.iter().map(|s| s.as_str()).collect();
                    self.fail(
                        &p.key("sector"),
                        format!("unknown sector \"{}\" (one of: {})", m.sector, known.join(", ")),
                    );
                    Sector::Industry
                }
            };
            if m.growth_pct_per_year.is_nan() || !(-50.0..=100.0).contains(&m.growth_pct_per_year) {
                self.fail(
                    &p.key("growth_pct_per_year"),
                    format!("must be between -50 and 100 (got {})", m.growth_pct_per_year),
                );
            }
            let elasticity = self.non_negative(&p.key("elasticity"), m.elasticity, 5.0);
            let inventory_target_ticks =
                self.int_in(&p.key("inventory_target_ticks"), m.inventory_target_ticks, 0, 520) as u32;
            if m.demand_t_per_year.is_empty() {
                self.fail(&p.key("demand_t_per_year"), "must name at least one commodity");
            }
            let mut demand_per_tick = Vec::new();
            for (code, t) in &m.demand_t_per_year {
                let dp = p.key("demand_t_per_year").key(code);
                let c = self.commodity(&dp, code, &raw.commodities);
                demand_per_tick.push((c, self.per_tick(&dp, *t, tpy)));
            }
            demand_per_tick.sort();
            let name = if m.name.is_empty() { format!("{} {} industry", m.nation, m.sector) } else { m.name.clone() };
            agents.push(AgentDef {
                name,
                spec: AgentSpec::Manufacturer {
                    nation,
                    sector,
                    demand_per_tick,
                    growth_bp_per_year: round_half_away(m.growth_pct_per_year.clamp(-50.0, 100.0) * 100.0) as i32,
                    elasticity_milli: round_half_away(elasticity * 1000.0) as u32,
                    inventory_target_ticks,
                },
            });
        }
    }

    fn events(&mut self, raw: &RawFile, ticks: u32) -> Vec<Event> {
        let mut out = Vec::new();
        for (i, e) in raw.events.iter().enumerate() {
            let p = FieldPath::root().key("events").index(i);
            if e.tick < 0 {
                self.fail(&p.key("tick"), format!("must not be negative (got {})", e.tick));
            } else if e.tick >= i64::from(ticks) {
                self.fail(
                    &p.key("tick"),
                    format!("is after the run ends (the scenario has {ticks} ticks, so the last is {})", ticks - 1),
                );
            }
            let name = event_name(e, i);
            if raw.events[..i].iter().enumerate().any(|(j, o)| event_name(o, j) == name) {
                self.fail(&p.key("name"), format!("two events are named \"{name}\""));
            }
            let tick = Tick(e.tick.clamp(0, i64::from(u32::MAX)) as u32);
            if let Some(kind) = self.event_kind(&p, e, raw) {
                out.push(Event { tick, name: name.clone(), kind, note: e.note.clone() });
                if let Some(until) = e.until_tick {
                    if until <= e.tick {
                        self.fail(&p.key("until_tick"), format!("must come after tick ({} <= {})", until, e.tick));
                    } else if until < i64::from(ticks) {
                        out.push(Event {
                            tick: Tick(until as u32),
                            name: format!("{name}/end"),
                            kind: EventKind::Lift { target: name },
                            note: String::new(),
                        });
                    }
                }
            }
        }
        out.sort_by_key(|e| e.tick);
        out
    }

    fn required<'r, T>(&mut self, p: &FieldPath, field: &str, action: &str, v: &'r Option<T>) -> Option<&'r T> {
        if v.is_none() {
            self.fail(p, format!("action \"{action}\" needs the field `{field}`"));
        }
        v.as_ref()
    }

    fn partners(&mut self, p: &FieldPath, list: &Option<Vec<String>>, raw: &RawFile) -> Partners {
        match list {
            None => Partners::All,
            Some(codes) if codes.iter().any(|c| c == "all") => Partners::All,
            Some(codes) => {
                let mut ids: Vec<NationId> =
                    codes.iter().enumerate().map(|(i, c)| self.nation(&p.index(i), c, &raw.nations)).collect();
                ids.sort();
                ids.dedup();
                Partners::Only(ids)
            }
        }
    }

    fn event_kind(&mut self, p: &FieldPath, e: &RawEvent, raw: &RawFile) -> Option<EventKind> {
        let action = e.action.as_str();
        if action == "lift" {
            let target = self.required(p, "target", action, &e.target)?.clone();
            let known = raw.events.iter().enumerate().any(|(j, o)| event_name(o, j) == target)
                || self.known_names.contains(&target);
            if !known {
                self.fail(&p.key("target"), format!("no event is named \"{target}\""));
            }
            return Some(EventKind::Lift { target });
        }
        let nation_code = self.required(p, "nation", action, &e.nation)?.clone();
        let nation = self.nation(&p.key("nation"), &nation_code, &raw.nations);
        let commodity_code = self.required(p, "commodity", action, &e.commodity)?.clone();
        let commodity = self.commodity(&p.key("commodity"), &commodity_code, &raw.commodities);
        let stage = match e.stage.as_deref() {
            None => Stage::Refined,
            Some(s) => Stage::parse(s).unwrap_or_else(|| {
                self.fail(&p.key("stage"), format!("unknown stage \"{s}\" (ore or refined)"));
                Stage::Refined
            }),
        };
        let market = MarketId::new(commodity, stage);
        let to = self.partners(&p.key("to"), &e.to, raw);
        Some(match action {
            "export_ban" => EventKind::ExportBan { nation, market, to },
            "export_quota" => {
                let size = match (e.pct_of_last_year, e.t_per_year) {
                    (Some(pct), None) => {
                        if !(0.0..=100.0).contains(&pct) {
                            self.fail(
                                &p.key("pct_of_last_year"),
                                format!("a quota must be between 0% and 100% of last year's exports (got {pct}%)"),
                            );
                        }
                        QuotaSize::ShareOfLastYearBp(round_half_away(pct.clamp(0.0, 100.0) * 100.0) as u32)
                    }
                    (None, Some(t)) => QuotaSize::PerYear(Quantity(round_half_away(
                        self.non_negative(&p.key("t_per_year"), t, MAX_T_PER_YEAR) * 1000.0,
                    ))),
                    _ => {
                        self.fail(p, "action \"export_quota\" needs exactly one of `pct_of_last_year` or `t_per_year`");
                        return None;
                    }
                };
                EventKind::ExportQuota { nation, market, to, size }
            }
            "export_licensing" => {
                let d = *self.required(p, "delay_ticks", action, &e.delay_ticks)?;
                let delay_ticks = self.int_in(&p.key("delay_ticks"), d, 1, 520) as u32;
                EventKind::ExportLicensing { nation, market, to, delay_ticks }
            }
            "export_tariff" => {
                let pct = *self.required(p, "pct", action, &e.pct)?;
                EventKind::ExportTariff { nation, market, to, bp: self.pct_bp(&p.key("pct"), pct, 1000.0) }
            }
            "import_tariff" => {
                let pct = *self.required(p, "pct", action, &e.pct)?;
                let from = self.partners(&p.key("from"), &e.from, raw);
                EventKind::ImportTariff { nation, market, from, bp: self.pct_bp(&p.key("pct"), pct, 1000.0) }
            }
            "stockpile_target" => {
                let d = *self.required(p, "target_days", action, &e.target_days)?;
                EventKind::StockpileTarget {
                    nation,
                    commodity,
                    target_days: self.int_in(&p.key("target_days"), d, 0, 3650) as u32,
                }
            }
            "stockpile_release" => {
                let t = *self.required(p, "release_t", action, &e.release_t)?;
                let quantity =
                    Quantity(round_half_away(self.non_negative(&p.key("release_t"), t, MAX_T_PER_YEAR) * 1000.0));
                EventKind::StockpileRelease { nation, commodity, quantity }
            }
            other => {
                self.fail(&p.key("action"), format!("unknown action \"{other}\" (one of: export_ban, export_quota, export_licensing, export_tariff, import_tariff, stockpile_target, stockpile_release, lift)"));
                return None;
            }
        })
    }
}

/// An event's name: its `name`, or `event-N` for the N-th event in the file (1-based).
fn event_name(e: &RawEvent, index: usize) -> String {
    e.name.clone().unwrap_or_else(|| format!("event-{}", index + 1))
}

/// Rounds half away from zero (an exactly specified IEEE operation, the same on every platform).
fn round_half_away(x: f64) -> i64 {
    if x.is_finite() { x.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64 } else { 0 }
}
