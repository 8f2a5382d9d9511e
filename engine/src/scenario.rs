//! Scenario files: the TOML format (the `Raw*` structs, which mirror the file field by field),
//! and its translation into a validated [`Scenario`] whose quantities and prices are integers.
//!
//! Every mistake is reported as a [`ScenarioError`] naming the file, the line and the field.
//! Nothing here panics on any input; the rest of the coordinator only ever sees a `Scenario`
//! that passed validation. Human-friendly units in the file (tonnes per year, US dollars per
//! kilogram, percentages) are converted once, here, with the rounding named.

use crate::locate::{FieldPath, line_col, span_of};
use agents::{AgentId, AgentSpec, CommodityId, MarketId, Money, NationId, Price, Quantity, Sector, Stage, Tick};
use serde::Deserialize;
use std::collections::BTreeMap;

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
    #[serde(default)]
    companies: Vec<RawCompany>,
    #[serde(default)]
    alliances: Vec<RawAlliance>,
    #[serde(default)]
    lanes: Vec<RawLane>,
    #[serde(default)]
    offtakes: Vec<RawOfftake>,
    /// Generator parameters: the commodities, nations and agents come from `synth`.
    #[serde(default)]
    synthetic: Option<RawSynthetic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynthetic {
    nations: i64,
    agents: i64,
    /// The generator's seed; the scenario's seed when not given.
    #[serde(default)]
    seed: Option<i64>,
}

/// The part of a generated world that is written as one text: commodities and nations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorldPart {
    commodities: Vec<RawCommodity>,
    nations: Vec<RawNation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompany {
    id: String,
    #[serde(default)]
    name: String,
    owner: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlliance {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default = "default_true")]
    exempt_from_restrictions: bool,
    #[serde(default)]
    joint_procurement: bool,
    #[serde(default)]
    reserve_sharing_price_pct: Option<f64>,
    #[serde(default = "default_true")]
    share_intelligence: bool,
    #[serde(default)]
    financing_pct: f64,
    #[serde(default = "default_true")]
    open: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLane {
    id: String,
    from: String,
    to: String,
    transit_ticks: i64,
    #[serde(default)]
    cost_usd_per_kg: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOfftake {
    site: String,
    buyer: String,
    share_pct: f64,
    #[serde(default = "default_hundred")]
    price_pct_of_world: f64,
}

fn default_hundred() -> f64 {
    100.0
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubsidies {
    #[serde(default)]
    mining_pct: f64,
    #[serde(default)]
    processing_pct: f64,
    #[serde(default)]
    recycling_pct: f64,
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
    #[serde(default)]
    recycling_pct: f64,
    #[serde(default = "default_recycling_lag")]
    recycling_lag_years: f64,
    #[serde(default = "default_mine_lead")]
    mine_lead_time_years: f64,
    #[serde(default = "default_refinery_lead")]
    refinery_lead_time_years: f64,
    #[serde(default = "default_ramp")]
    ramp_years: f64,
    #[serde(default)]
    capex_usd_per_kg_year: Option<f64>,
    #[serde(default = "default_substitution")]
    substitution_pct_per_year: f64,
    #[serde(default = "default_substitution_floor")]
    substitution_floor_pct: f64,
    #[serde(default = "default_substitution_trigger")]
    substitution_trigger_pct: f64,
    ore: Option<RawStage>,
    refined: Option<RawStage>,
}

fn default_recycling_lag() -> f64 {
    8.0
}
fn default_mine_lead() -> f64 {
    7.0
}
fn default_refinery_lead() -> f64 {
    5.0
}
fn default_ramp() -> f64 {
    1.5
}
fn default_substitution() -> f64 {
    10.0
}
fn default_substitution_floor() -> f64 {
    60.0
}
fn default_substitution_trigger() -> f64 {
    150.0
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
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    alignment: f64,
    #[serde(default)]
    env_sensitivity: f64,
    #[serde(default = "default_horizon")]
    forecast_horizon_ticks: i64,
    #[serde(default = "default_forecast_noise")]
    forecast_noise_pct: f64,
    #[serde(default)]
    security_musd_per_year: f64,
    #[serde(default)]
    storage: Option<String>,
    #[serde(default)]
    subsidies: RawSubsidies,
    #[serde(default)]
    rd_musd_per_year: BTreeMap<String, f64>,
}

fn default_horizon() -> i64 {
    13
}
fn default_forecast_noise() -> f64 {
    5.0
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
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    potential_t_per_year: Option<f64>,
    #[serde(default)]
    footprint: Option<f64>,
    #[serde(default)]
    low_impact: bool,
    #[serde(default)]
    emissions_t_co2_per_t: Option<f64>,
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
    #[serde(default)]
    hoard_ticks: i64,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    potential_t_per_year: Option<f64>,
    #[serde(default)]
    footprint: Option<f64>,
    #[serde(default)]
    low_impact: bool,
    #[serde(default)]
    emissions_t_co2_per_t: Option<f64>,
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
    announce_tick: Option<i64>,
    #[serde(default)]
    allies_exempt: Option<bool>,
    #[serde(default)]
    sector: Option<String>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    lane: Option<String>,
    #[serde(default)]
    extra_ticks: Option<i64>,
    #[serde(default)]
    alliance: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    musd_per_year: Option<f64>,
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
    /// Region names, sorted; nations refer to them by index. "world" when none is given.
    pub regions: Vec<String>,
    /// Companies that own sites, each resolved to the nation that ultimately owns it.
    pub companies: Vec<Company>,
    /// Every mine and refinery's site facts, sorted by agent.
    pub sites: Vec<Site>,
    pub alliances: Vec<AllianceDef>,
    pub lanes: Vec<Lane>,
    pub offtakes: Vec<Offtake>,
}

/// A scenario is its agents' spec table: an embedded host shares it instead of copying it.
impl agents::SpecTable for Scenario {
    fn spec(&self, agent: AgentId) -> Option<&AgentSpec> {
        self.agents.get(agent.index()).map(|def| &def.spec)
    }
    fn len(&self) -> usize {
        self.agents.len()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Company {
    pub code: String,
    pub name: String,
    /// The nation at the end of the ownership chain.
    pub nation: NationId,
}

/// What the engine needs to know about a mine or refinery beyond its agent spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub agent: AgentId,
    /// The nation that ultimately owns it (through companies); its host is the agent's nation.
    pub owner: NationId,
    /// The owner as written in the file (a nation or company id).
    pub owner_code: String,
    /// The most capacity investment can give it, per tick.
    pub potential: Quantity,
    /// Environmental and social footprint, 0 to 100.
    pub footprint: u32,
    pub low_impact: bool,
    /// Kilograms of CO2 per tonne of output (grams per kilogram).
    pub emissions_g_per_kg: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllianceDef {
    pub code: String,
    pub name: String,
    /// Members at tick 0, sorted.
    pub members: Vec<NationId>,
    pub exempt_from_restrictions: bool,
    pub joint_procurement: bool,
    /// Members short of a commodity may take allies' reserves at this share of the reference.
    pub reserve_sharing_price_bp: Option<u32>,
    pub share_intelligence: bool,
    /// How much the bloc's financing lowers members' investment hurdle (basis points).
    pub financing_bp: u32,
    /// Whether other nations may join.
    pub open: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub code: String,
    pub from: u16,
    pub to: u16,
    pub transit_ticks: u32,
    pub cost_per_kg: Price,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offtake {
    pub site: AgentId,
    pub buyer: AgentId,
    pub share_bp: u32,
    /// Price as a share of the world price (basis points).
    pub price_bp: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subsidies {
    /// Share of the investment cost of a domestic mine the state pays (basis points).
    pub mining_bp: u32,
    /// The same for refineries.
    pub processing_bp: u32,
    /// Points added to the recycling recovery rate (basis points).
    pub recycling_bp: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SubsidyKind {
    Mining,
    Processing,
    Recycling,
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
    /// Share of consumption recovered at end of life (basis points), before price and policy.
    pub recycling_bp: u32,
    /// Average time from consumption to scrap, in ticks.
    pub recycling_lag_ticks: u32,
    pub mine_lead_ticks: u32,
    pub refinery_lead_ticks: u32,
    pub ramp_ticks: u32,
    /// Investment per kilogram a year of new capacity (cents).
    pub capex_per_kg_year: Money,
    pub substitution_bp_per_year: u32,
    pub substitution_floor_bp: u32,
    /// Substitution starts when the forecast passes this share of the reference (basis points).
    pub substitution_trigger_bp: u32,
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
    /// Index into `Scenario::regions`.
    pub region: u16,
    /// Position on one political axis, -1000 to 1000: nations close together get on.
    pub alignment_milli: i32,
    /// How strongly its public opposes mines and refineries (basis points).
    pub env_sensitivity_bp: u32,
    pub forecast_horizon_ticks: u32,
    pub forecast_noise_bp: u32,
    /// Security spending on its stockpiles, a year.
    pub security_per_year: Money,
    pub poor_storage: bool,
    pub subsidies: Subsidies,
    /// Research funding toward substitutes, a year, by commodity (sorted).
    pub rd_per_year: Vec<(CommodityId, Money)>,
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
    /// When a restriction is announced, ahead of `tick` (public from then on).
    #[serde(default)]
    pub announced: Option<Tick>,
    /// Whether the exporter's allies are exempt from this restriction (when their alliance
    /// exempts members).
    #[serde(default = "yes")]
    pub allies_exempt: bool,
}

fn yes() -> bool {
    true
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
    /// Ends the restriction, outage or disruption started by the named event.
    Lift {
        target: String,
    },
    /// A one-off change in the level of demand for a commodity (all nations or one, all sectors
    /// or one), in basis points of the current level: +3000 is 30% more.
    DemandShock {
        commodity: CommodityId,
        nation: Option<NationId>,
        sector: Option<Sector>,
        bp: i32,
    },
    /// A mine accident or refinery fire: the site produces nothing until lifted.
    SiteOutage {
        site: AgentId,
    },
    /// A shipping lane takes `extra_ticks` longer until lifted.
    LaneDisruption {
        lane: u16,
        extra_ticks: u32,
    },
    JoinAlliance {
        nation: NationId,
        alliance: u16,
    },
    LeaveAlliance {
        nation: NationId,
        alliance: u16,
    },
    Subsidy {
        nation: NationId,
        kind: SubsidyKind,
        bp: u32,
    },
    RdFunding {
        nation: NationId,
        commodity: CommodityId,
        per_year: Money,
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

    /// How well two nations get on, 0 to 1,000: 1,000 minus half the distance between their
    /// alignments. Members admit a nation at 700 or more (engine diplomacy and exercises alike).
    pub fn affinity(&self, a: NationId, b: NationId) -> i64 {
        let align = |n: NationId| i64::from(self.nations[n.index()].alignment_milli);
        1_000 - (align(a) - align(b)).abs() / 2
    }

    /// The site facts of a mine or refinery.
    pub fn site(&self, agent: AgentId) -> Option<&Site> {
        self.sites.binary_search_by_key(&agent, |s| s.agent).ok().map(|i| &self.sites[i])
    }

    pub fn agent_by_name(&self, name: &str) -> Option<AgentId> {
        self.agents.iter().position(|a| a.name == name).map(|i| AgentId(i as u32))
    }

    /// The lane between two regions (either direction), if any.
    pub fn lane_between(&self, a: u16, b: u16) -> Option<(u16, &Lane)> {
        self.lanes
            .iter()
            .enumerate()
            .find(|(_, l)| (l.from == a && l.to == b) || (l.from == b && l.to == a))
            .map(|(i, l)| (i as u16, l))
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

/// Validates scenario text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        let field = e.span().map(|s| describe_span(text, s.start)).unwrap_or_else(|| "(file)".into());
        ScenarioError { file: file.into(), line, column, field, message: e.message().trim().to_string() }
    })?;
    let raw = expand_synthetic(raw, text, file)?;
    let mut v = Validator { text, file, errors: Vec::new(), known_names: Vec::new() };
    let scenario = v.scenario(raw);
    match v.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(scenario),
    }
}

/// A file with a `[synthetic]` table gets its commodities, nations, mines, refineries and
/// industries from the generator (`chokepoint synth` writes the same world as a file). Each
/// generated agent's table is parsed on its own, so loading a world of a million agents never
/// holds its whole text or one document tree of it; the file's other tables (events, alliances,
/// lanes, companies, offtakes) may refer to the generated nations (`N0000`, `N0001`, ...) and
/// commodities.
fn expand_synthetic(mut raw: RawFile, text: &str, file: &str) -> Result<RawFile, ScenarioError> {
    let Some(synthetic) = raw.synthetic.take() else { return Ok(raw) };
    let at = |field: &str, message: String| {
        let path = FieldPath::root().key("synthetic").key(field);
        let (line, column) = span_of(text, &path).map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        ScenarioError { file: file.into(), line, column, field: path.to_string(), message }
    };
    let generated = [
        ("commodities", raw.commodities.is_empty()),
        ("nations", raw.nations.is_empty()),
        ("miners", raw.miners.is_empty()),
        ("refiners", raw.refiners.is_empty()),
        ("manufacturers", raw.manufacturers.is_empty()),
    ];
    if let Some((table, _)) = generated.iter().find(|(_, empty)| !empty) {
        return Err(at(
            "agents",
            format!(
                "a [synthetic] world generates its own {table}; remove the [[{table}]] tables or the [synthetic] table"
            ),
        ));
    }
    use crate::synth::{AGENTS_MAX, FIRMS_MIN, NATIONS};
    let nations = usize::try_from(synthetic.nations).ok().filter(|n| NATIONS.contains(n));
    let Some(nations) = nations else {
        return Err(at("nations", format!("must be between 2 and 9999 (got {})", synthetic.nations)));
    };
    let minimum = nations + FIRMS_MIN;
    let agents = usize::try_from(synthetic.agents).ok().filter(|a| (minimum..=AGENTS_MAX).contains(a));
    let Some(agents) = agents else {
        return Err(at(
            "agents",
            format!("must be between nations + {FIRMS_MIN} ({minimum}) and 10,000,000 (got {})", synthetic.agents),
        ));
    };
    let seed = synthetic.seed.unwrap_or(raw.scenario.seed);
    if seed < 0 {
        return Err(at("seed", format!("must not be negative (got {seed})")));
    }
    let options = crate::synth::SynthOptions {
        nations,
        agents,
        seed: seed as u64,
        ticks: raw.scenario.ticks.clamp(0, i64::from(u32::MAX)) as u32,
    };
    let world = crate::synth::SynthWorld::new(&options).map_err(|e| at("agents", e))?;
    let broken = |what: &str, e: toml::de::Error| {
        at("agents", format!("the generator wrote an invalid {what} (a bug; please report it): {}", e.message()))
    };
    let part: RawWorldPart = toml::from_str(&world.commodities_and_nations()).map_err(|e| broken("world", e))?;
    raw.commodities = part.commodities;
    raw.nations = part.nations;
    for (kind, body) in world.agents() {
        match kind {
            crate::synth::Kind::Miners => raw.miners.push(toml::from_str(&body).map_err(|e| broken("mine", e))?),
            crate::synth::Kind::Refiners => {
                raw.refiners.push(toml::from_str(&body).map_err(|e| broken("refinery", e))?)
            }
            crate::synth::Kind::Manufacturers => {
                raw.manufacturers.push(toml::from_str(&body).map_err(|e| broken("industry", e))?)
            }
        }
    }
    Ok(raw)
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
    let raw: RawFile = toml::from_str(&scenario.source).map_err(|e| ScenarioError {
        file: file.into(),
        line: 0,
        column: 0,
        field: "(scenario)".into(),
        message: format!("the run's scenario no longer parses: {}", e.message()),
    })?;
    let mut raw = expand_synthetic(raw, &scenario.source, file)?;
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
        let commodities = self.commodities(&raw.commodities, ticks_per_year);
        let mut regions: Vec<String> = raw.nations.iter().map(region_of).collect();
        regions.sort();
        regions.dedup();
        let nations = self.nations(&raw, &regions);
        let companies = self.companies(&raw);
        let mut sites = Vec::new();
        let mut agents: Vec<AgentDef> = nations
            .iter()
            .enumerate()
            .map(|(i, n)| AgentDef {
                name: format!("{} stockpile agency", n.code),
                spec: AgentSpec::Nation { nation: NationId(i as u16) },
            })
            .collect();
        self.miners(&raw, ticks_per_year, &mut agents, &companies, &mut sites);
        self.refiners(&raw, ticks_per_year, &mut agents, &companies, &mut sites);
        self.manufacturers(&raw, ticks_per_year, &mut agents);
        let alliances = self.alliances(&raw);
        let lanes = self.lanes(&raw, &regions);
        let offtakes = self.offtakes(&raw, &agents);
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
            regions,
            companies,
            sites,
            alliances,
            lanes,
            offtakes,
        }
    }

    fn commodities(&mut self, raw: &[RawCommodity], tpy: u32) -> Vec<Commodity> {
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
            let recycling_bp = self.pct_bp(&p.key("recycling_pct"), c.recycling_pct, 100.0);
            let years = |v: &mut Self, field: &str, y: f64, max: f64| -> u32 {
                let y = v.non_negative(&p.key(field), y, max);
                round_half_away(y * f64::from(tpy)) as u32
            };
            let recycling_lag_ticks = years(self, "recycling_lag_years", c.recycling_lag_years, 50.0).max(1);
            let mine_lead_ticks = years(self, "mine_lead_time_years", c.mine_lead_time_years, 40.0);
            let refinery_lead_ticks = years(self, "refinery_lead_time_years", c.refinery_lead_time_years, 40.0);
            let ramp_ticks = years(self, "ramp_years", c.ramp_years, 20.0).max(1);
            // Without a figure, a year's capacity costs about two years of output at the
            // refined reference price (ASSUMPTION, in line with mine capital intensities).
            let capex = match c.capex_usd_per_kg_year {
                Some(v) => Money(round_half_away(
                    self.non_negative(&p.key("capex_usd_per_kg_year"), v, MAX_USD_PER_KG) * 100.0,
                )),
                None => Money(refined.reference.0.saturating_mul(2)),
            };
            let substitution_bp_per_year =
                self.pct_bp(&p.key("substitution_pct_per_year"), c.substitution_pct_per_year, 100.0);
            let substitution_floor_bp = self.pct_bp(&p.key("substitution_floor_pct"), c.substitution_floor_pct, 100.0);
            let substitution_trigger_bp =
                self.pct_bp(&p.key("substitution_trigger_pct"), c.substitution_trigger_pct, 10_000.0);
            out.push(Commodity {
                code: c.id.clone(),
                name: if c.name.is_empty() { c.id.clone() } else { c.name.clone() },
                note: c.note.clone(),
                stages: [ore, refined],
                stockpile_loss_bp_per_year: i64::from(loss),
                holding_cost_per_kg_year: Money(round_half_away(holding * 100.0)),
                recycling_bp,
                recycling_lag_ticks,
                mine_lead_ticks,
                refinery_lead_ticks,
                ramp_ticks,
                capex_per_kg_year: capex,
                substitution_bp_per_year,
                substitution_floor_bp,
                substitution_trigger_bp,
            });
        }
        out
    }

    fn nations(&mut self, raw: &RawFile, regions: &[String]) -> Vec<Nation> {
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
            let region = region_of(n);
            let region = regions.iter().position(|r| *r == region).unwrap_or(0) as u16;
            if !n.alignment.is_finite() || !(-1.0..=1.0).contains(&n.alignment) {
                self.fail(&p.key("alignment"), format!("must be between -1 and 1 (got {})", n.alignment));
            }
            let env = self.non_negative(&p.key("env_sensitivity"), n.env_sensitivity, 1.0);
            let horizon = self.int_in(&p.key("forecast_horizon_ticks"), n.forecast_horizon_ticks, 0, 520) as u32;
            let noise = self.pct_bp(&p.key("forecast_noise_pct"), n.forecast_noise_pct, 100.0);
            let security = self.non_negative(&p.key("security_musd_per_year"), n.security_musd_per_year, MAX_MUSD);
            let poor_storage = match n.storage.as_deref() {
                None | Some("good") => false,
                Some("poor") => true,
                Some(other) => {
                    self.fail(&p.key("storage"), format!("unknown storage \"{other}\" (good or poor)"));
                    false
                }
            };
            let sp = p.key("subsidies");
            let subsidies = Subsidies {
                mining_bp: self.pct_bp(&sp.key("mining_pct"), n.subsidies.mining_pct, 100.0),
                processing_bp: self.pct_bp(&sp.key("processing_pct"), n.subsidies.processing_pct, 100.0),
                recycling_bp: self.pct_bp(&sp.key("recycling_pct"), n.subsidies.recycling_pct, 100.0),
            };
            let mut rd_per_year = Vec::new();
            for (code, musd) in &n.rd_musd_per_year {
                let rp = p.key("rd_musd_per_year").key(code);
                let c = self.commodity(&rp, code, &raw.commodities);
                let m = self.non_negative(&rp, *musd, MAX_MUSD);
                rd_per_year.push((c, Money(round_half_away(m * 1.0e8))));
            }
            rd_per_year.sort();
            out.push(Nation {
                code: n.id.clone(),
                name: if n.name.is_empty() { n.id.clone() } else { n.name.clone() },
                treasury: Money(round_half_away(budget * 1.0e8)),
                appropriation_per_year: Money(round_half_away(approp * 1.0e8)),
                stockpiles,
                region,
                alignment_milli: round_half_away(n.alignment.clamp(-1.0, 1.0) * 1000.0) as i32,
                env_sensitivity_bp: round_half_away(env * 10_000.0) as u32,
                forecast_horizon_ticks: horizon,
                forecast_noise_bp: noise,
                security_per_year: Money(round_half_away(security * 1.0e8)),
                poor_storage,
                subsidies,
                rd_per_year,
            });
        }
        out
    }

    fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    fn miners(
        &mut self,
        raw: &RawFile,
        tpy: u32,
        agents: &mut Vec<AgentDef>,
        companies: &[Company],
        sites: &mut Vec<Site>,
    ) {
        for (i, m) in raw.miners.iter().enumerate() {
            let p = FieldPath::root().key("miners").index(i);
            let nation = self.nation(&p.key("nation"), &m.nation, &raw.nations);
            let commodity = self.commodity(&p.key("commodity"), &m.commodity, &raw.commodities);
            let capacity_per_tick = self.per_tick(&p.key("capacity_t_per_year"), m.capacity_t_per_year, tpy);
            let mut unit_cost = self.price(&p.key("unit_cost_usd_per_kg"), m.unit_cost_usd_per_kg);
            let inventory_cap_ticks = self.int_in(&p.key("inventory_cap_ticks"), m.inventory_cap_ticks, 1, 520) as u32;
            let extras = SiteFields {
                owner: &m.owner,
                potential: m.potential_t_per_year,
                footprint: m.footprint,
                low_impact: m.low_impact,
                emissions: m.emissions_t_co2_per_t,
                default_footprint: 50.0,
                default_emissions: 5.0,
            };
            let agent = AgentId(agents.len() as u32);
            sites.push(self.site(&p, raw, agent, nation, capacity_per_tick, tpy, &extras, companies, &mut unit_cost));
            agents.push(AgentDef {
                name: miner_name(m, i),
                spec: AgentSpec::Miner { nation, commodity, capacity_per_tick, unit_cost, inventory_cap_ticks },
            });
        }
    }

    fn refiners(
        &mut self,
        raw: &RawFile,
        tpy: u32,
        agents: &mut Vec<AgentDef>,
        companies: &[Company],
        sites: &mut Vec<Site>,
    ) {
        for (i, r) in raw.refiners.iter().enumerate() {
            let p = FieldPath::root().key("refiners").index(i);
            let nation = self.nation(&p.key("nation"), &r.nation, &raw.nations);
            let commodity = self.commodity(&p.key("commodity"), &r.commodity, &raw.commodities);
            let capacity_per_tick = self.per_tick(&p.key("capacity_t_per_year"), r.capacity_t_per_year, tpy);
            let mut unit_cost = self.price(&p.key("unit_cost_usd_per_kg"), r.unit_cost_usd_per_kg);
            let yield_bp = self.pct_bp(&p.key("yield_pct"), r.yield_pct, 100.0);
            if yield_bp == 0 {
                self.fail(&p.key("yield_pct"), "must be above 0");
            }
            let ore_target_ticks = self.int_in(&p.key("ore_target_ticks"), r.ore_target_ticks, 0, 520) as u32;
            let hoard_ticks = self.int_in(&p.key("hoard_ticks"), r.hoard_ticks, 0, 520) as u32;
            let extras = SiteFields {
                owner: &r.owner,
                potential: r.potential_t_per_year,
                footprint: r.footprint,
                low_impact: r.low_impact,
                emissions: r.emissions_t_co2_per_t,
                default_footprint: 40.0,
                default_emissions: 10.0,
            };
            let agent = AgentId(agents.len() as u32);
            sites.push(self.site(&p, raw, agent, nation, capacity_per_tick, tpy, &extras, companies, &mut unit_cost));
            agents.push(AgentDef {
                name: refiner_name(r, i),
                spec: AgentSpec::Refiner {
                    nation,
                    commodity,
                    capacity_per_tick,
                    unit_cost,
                    yield_bp: yield_bp.max(1),
                    ore_target_ticks,
                    hoard_ticks,
                },
            });
        }
    }

    /// A mine's or refinery's site facts. Low-impact methods cost 15% more per kilogram and halve
    /// the footprint and the emissions.
    #[allow(clippy::too_many_arguments)]
    fn site(
        &mut self,
        p: &FieldPath,
        raw: &RawFile,
        agent: AgentId,
        host: NationId,
        capacity: Quantity,
        tpy: u32,
        f: &SiteFields,
        companies: &[Company],
        unit_cost: &mut Price,
    ) -> Site {
        let (owner, owner_code) = match f.owner {
            None => (host, raw.nations.get(host.index()).map(|n| n.id.clone()).unwrap_or_default()),
            Some(code) => match raw.nations.iter().position(|n| n.id == *code) {
                Some(i) => (NationId(i as u16), code.clone()),
                None => match raw.companies.iter().position(|c| c.id == *code) {
                    Some(i) => (companies.get(i).map(|c| c.nation).unwrap_or(host), code.clone()),
                    None => {
                        self.fail(
                            &p.key("owner"),
                            format!("unknown owner \"{code}\" (a nation or a [[companies]] id)"),
                        );
                        (host, code.clone())
                    }
                },
            },
        };
        let potential = match f.potential {
            Some(t) => self.per_tick(&p.key("potential_t_per_year"), t, tpy),
            None => capacity.scale_floor(3, 2),
        };
        if potential < capacity {
            self.fail(&p.key("potential_t_per_year"), "must be at least capacity_t_per_year");
        }
        let footprint = self.non_negative(&p.key("footprint"), f.footprint.unwrap_or(f.default_footprint), 100.0);
        let emissions =
            self.non_negative(&p.key("emissions_t_co2_per_t"), f.emissions.unwrap_or(f.default_emissions), 100_000.0);
        let (footprint, emissions) = if f.low_impact {
            *unit_cost = unit_cost.scale_ceil(115, 100);
            (footprint / 2.0, emissions / 2.0)
        } else {
            (footprint, emissions)
        };
        Site {
            agent,
            owner,
            owner_code,
            potential,
            footprint: round_half_away(footprint) as u32,
            low_impact: f.low_impact,
            emissions_g_per_kg: round_half_away(emissions * 1000.0),
        }
    }

    /// Companies, each resolved to the nation at the end of its ownership chain; a chain that
    /// comes back on itself is refused.
    fn companies(&mut self, raw: &RawFile) -> Vec<Company> {
        let mut out = Vec::new();
        for (i, c) in raw.companies.iter().enumerate() {
            let p = FieldPath::root().key("companies").index(i);
            if c.id.is_empty()
                || raw.nations.iter().any(|n| n.id == c.id)
                || raw.companies[..i].iter().any(|o| o.id == c.id)
            {
                self.fail(&p.key("id"), format!("company id \"{}\" is empty, a nation's id, or defined twice", c.id));
            }
            let mut chain = vec![c.id.clone()];
            let mut owner = c.owner.clone();
            let nation = loop {
                if let Some(n) = raw.nations.iter().position(|n| n.id == owner) {
                    break NationId(n as u16);
                }
                if chain.contains(&owner) {
                    chain.push(owner);
                    self.fail(&p.key("owner"), format!("cyclic ownership: {}", chain.join(" → ")));
                    break NationId(0);
                }
                match raw.companies.iter().find(|o| o.id == owner) {
                    Some(next) => {
                        chain.push(owner);
                        owner = next.owner.clone();
                    }
                    None => {
                        self.fail(
                            &p.key("owner"),
                            format!("unknown owner \"{owner}\" (a nation or a [[companies]] id)"),
                        );
                        break NationId(0);
                    }
                }
            };
            out.push(Company {
                code: c.id.clone(),
                name: if c.name.is_empty() { c.id.clone() } else { c.name.clone() },
                nation,
            });
        }
        out
    }

    fn alliances(&mut self, raw: &RawFile) -> Vec<AllianceDef> {
        let mut out = Vec::new();
        for (i, a) in raw.alliances.iter().enumerate() {
            let p = FieldPath::root().key("alliances").index(i);
            if a.id.is_empty() || raw.alliances[..i].iter().any(|o| o.id == a.id) {
                self.fail(&p.key("id"), format!("alliance id \"{}\" is empty or defined twice", a.id));
            }
            let mut members: Vec<NationId> = a
                .members
                .iter()
                .enumerate()
                .map(|(j, code)| self.nation(&p.key("members").index(j), code, &raw.nations))
                .collect();
            members.sort();
            members.dedup();
            let reserve_sharing_price_bp =
                a.reserve_sharing_price_pct.map(|v| self.pct_bp(&p.key("reserve_sharing_price_pct"), v, 10_000.0));
            out.push(AllianceDef {
                code: a.id.clone(),
                name: if a.name.is_empty() { a.id.clone() } else { a.name.clone() },
                members,
                exempt_from_restrictions: a.exempt_from_restrictions,
                joint_procurement: a.joint_procurement,
                reserve_sharing_price_bp,
                share_intelligence: a.share_intelligence,
                financing_bp: self.pct_bp(&p.key("financing_pct"), a.financing_pct, 100.0),
                open: a.open,
            });
        }
        out
    }

    fn lanes(&mut self, raw: &RawFile, regions: &[String]) -> Vec<Lane> {
        let mut out = Vec::new();
        for (i, l) in raw.lanes.iter().enumerate() {
            let p = FieldPath::root().key("lanes").index(i);
            if l.id.is_empty() || raw.lanes[..i].iter().any(|o| o.id == l.id) {
                self.fail(&p.key("id"), format!("lane id \"{}\" is empty or defined twice", l.id));
            }
            let end = |v: &mut Self, field: &str, name: &str| -> u16 {
                match regions.iter().position(|r| r == name) {
                    Some(r) => r as u16,
                    None => {
                        v.fail(
                            &p.key(field),
                            format!(
                                "a lane to nowhere: no nation is in region \"{name}\" (regions: {})",
                                regions.join(", ")
                            ),
                        );
                        0
                    }
                }
            };
            let from = end(self, "from", &l.from);
            let to = end(self, "to", &l.to);
            if from == to && !self.has_errors() {
                self.fail(&p.key("to"), "a lane must join two different regions");
            }
            let transit_ticks = self.int_in(&p.key("transit_ticks"), l.transit_ticks, 0, 520) as u32;
            let cost_per_kg = self.price(&p.key("cost_usd_per_kg"), l.cost_usd_per_kg);
            out.push(Lane { code: l.id.clone(), from, to, transit_ticks, cost_per_kg });
        }
        out
    }

    fn offtakes(&mut self, raw: &RawFile, agents: &[AgentDef]) -> Vec<Offtake> {
        let mut out: Vec<Offtake> = Vec::new();
        let find = |name: &str| agents.iter().position(|a| a.name == name).map(|i| AgentId(i as u32));
        for (i, o) in raw.offtakes.iter().enumerate() {
            let p = FieldPath::root().key("offtakes").index(i);
            let site = find(&o.site);
            let buyer = find(&o.buyer);
            let (Some(site), Some(buyer)) = (site, buyer) else {
                let (field, name) = if site.is_none() { ("site", &o.site) } else { ("buyer", &o.buyer) };
                self.fail(&p.key(field), format!("no agent is named \"{name}\""));
                continue;
            };
            let (site_spec, buyer_spec) = (&agents[site.index()].spec, &agents[buyer.index()].spec);
            let product = match site_spec {
                AgentSpec::Miner { commodity, .. } => MarketId::ore(*commodity),
                AgentSpec::Refiner { commodity, .. } => MarketId::refined(*commodity),
                _ => {
                    self.fail(&p.key("site"), format!("\"{}\" is not a mine or refinery", o.site));
                    continue;
                }
            };
            let buyer_ok = match buyer_spec {
                AgentSpec::Refiner { commodity, .. } => product == MarketId::ore(*commodity),
                AgentSpec::Nation { .. } => product.stage == Stage::Refined,
                AgentSpec::Manufacturer { demand_per_tick, .. } => {
                    product.stage == Stage::Refined && demand_per_tick.iter().any(|(c, _)| *c == product.commodity)
                }
                AgentSpec::Miner { .. } => false,
            };
            if !buyer_ok {
                self.fail(&p.key("buyer"), format!("\"{}\" does not buy what \"{}\" produces", o.buyer, o.site));
                continue;
            }
            let share_bp = self.pct_bp(&p.key("share_pct"), o.share_pct, 100.0);
            let total: u32 = out.iter().filter(|x| x.site == site).map(|x| x.share_bp).sum::<u32>() + share_bp;
            if total > 10_000 {
                self.fail(&p.key("share_pct"), format!("offtakes of \"{}\" add up to more than 100%", o.site));
            }
            let price_bp = self.pct_bp(&p.key("price_pct_of_world"), o.price_pct_of_world, 1000.0);
            out.push(Offtake { site, buyer, share_bp, price_bp });
        }
        out
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
                let restriction = matches!(
                    kind,
                    EventKind::ExportBan { .. }
                        | EventKind::ExportQuota { .. }
                        | EventKind::ExportLicensing { .. }
                        | EventKind::ExportTariff { .. }
                        | EventKind::ImportTariff { .. }
                );
                let announced = match e.announce_tick {
                    None => None,
                    Some(_) if !restriction => {
                        self.fail(&p.key("announce_tick"), "only trade restrictions can be announced ahead");
                        None
                    }
                    Some(a) if a < 0 || a >= e.tick => {
                        self.fail(
                            &p.key("announce_tick"),
                            format!("must be between 0 and the event's tick - 1 (got {a}, tick {})", e.tick),
                        );
                        None
                    }
                    Some(a) => Some(Tick(a as u32)),
                };
                let liftable =
                    restriction || matches!(kind, EventKind::SiteOutage { .. } | EventKind::LaneDisruption { .. });
                if e.allies_exempt.is_some() && !restriction {
                    self.fail(&p.key("allies_exempt"), "applies to trade restrictions only");
                }
                out.push(Event {
                    tick,
                    name: name.clone(),
                    kind,
                    note: e.note.clone(),
                    announced,
                    allies_exempt: e.allies_exempt.unwrap_or(true),
                });
                if let Some(until) = e.until_tick {
                    if !liftable {
                        self.fail(
                            &p.key("until_tick"),
                            format!("action \"{}\" cannot be lifted: until_tick applies to restrictions, outages and lane disruptions", e.action),
                        );
                    } else if until <= e.tick {
                        self.fail(&p.key("until_tick"), format!("must come after tick ({} <= {})", until, e.tick));
                    } else if until < i64::from(ticks) {
                        out.push(Event {
                            tick: Tick(until as u32),
                            name: format!("{name}/end"),
                            kind: EventKind::Lift { target: name },
                            note: String::new(),
                            announced: None,
                            allies_exempt: true,
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
        match action {
            "site_outage" => {
                let name = self.required(p, "site", action, &e.site)?.clone();
                let Some(site) = site_by_name(raw, &name) else {
                    self.fail(&p.key("site"), format!("no mine or refinery is named \"{name}\""));
                    return None;
                };
                return Some(EventKind::SiteOutage { site });
            }
            "lane_disruption" => {
                let code = self.required(p, "lane", action, &e.lane)?.clone();
                let extra = *self.required(p, "extra_ticks", action, &e.extra_ticks)?;
                let Some(lane) = raw.lanes.iter().position(|l| l.id == code) else {
                    self.fail(&p.key("lane"), format!("no lane is named \"{code}\""));
                    return None;
                };
                let extra_ticks = self.int_in(&p.key("extra_ticks"), extra, 1, 520) as u32;
                return Some(EventKind::LaneDisruption { lane: lane as u16, extra_ticks });
            }
            "join_alliance" | "leave_alliance" => {
                let nation_code = self.required(p, "nation", action, &e.nation)?.clone();
                let nation = self.nation(&p.key("nation"), &nation_code, &raw.nations);
                let code = self.required(p, "alliance", action, &e.alliance)?.clone();
                let Some(alliance) = raw.alliances.iter().position(|a| a.id == code) else {
                    self.fail(&p.key("alliance"), format!("no alliance is named \"{code}\""));
                    return None;
                };
                let alliance = alliance as u16;
                return Some(if action == "join_alliance" {
                    EventKind::JoinAlliance { nation, alliance }
                } else {
                    EventKind::LeaveAlliance { nation, alliance }
                });
            }
            "subsidy" => {
                let nation_code = self.required(p, "nation", action, &e.nation)?.clone();
                let nation = self.nation(&p.key("nation"), &nation_code, &raw.nations);
                let kind = match self.required(p, "kind", action, &e.kind)?.as_str() {
                    "mining" => SubsidyKind::Mining,
                    "processing" => SubsidyKind::Processing,
                    "recycling" => SubsidyKind::Recycling,
                    other => {
                        self.fail(
                            &p.key("kind"),
                            format!("unknown subsidy \"{other}\" (mining, processing or recycling)"),
                        );
                        return None;
                    }
                };
                let pct = *self.required(p, "pct", action, &e.pct)?;
                return Some(EventKind::Subsidy { nation, kind, bp: self.pct_bp(&p.key("pct"), pct, 100.0) });
            }
            "demand_shock" => {
                let code = self.required(p, "commodity", action, &e.commodity)?.clone();
                let commodity = self.commodity(&p.key("commodity"), &code, &raw.commodities);
                let nation = e.nation.as_ref().map(|n| self.nation(&p.key("nation"), n, &raw.nations));
                let sector = match e.sector.as_deref() {
                    None => None,
                    Some(name) => match Sector::parse(name) {
                        Some(s) => Some(s),
                        None => {
                            self.fail(&p.key("sector"), format!("unknown sector \"{name}\""));
                            return None;
                        }
                    },
                };
                let pct = *self.required(p, "pct", action, &e.pct)?;
                if !pct.is_finite() || !(-90.0..=500.0).contains(&pct) {
                    self.fail(&p.key("pct"), format!("a demand shock must be between -90% and +500% (got {pct}%)"));
                    return None;
                }
                return Some(EventKind::DemandShock {
                    commodity,
                    nation,
                    sector,
                    bp: round_half_away(pct * 100.0) as i32,
                });
            }
            "rd_funding" => {
                let nation_code = self.required(p, "nation", action, &e.nation)?.clone();
                let nation = self.nation(&p.key("nation"), &nation_code, &raw.nations);
                let code = self.required(p, "commodity", action, &e.commodity)?.clone();
                let commodity = self.commodity(&p.key("commodity"), &code, &raw.commodities);
                let m = *self.required(p, "musd_per_year", action, &e.musd_per_year)?;
                let m = self.non_negative(&p.key("musd_per_year"), m, MAX_MUSD);
                return Some(EventKind::RdFunding { nation, commodity, per_year: Money(round_half_away(m * 1.0e8)) });
            }
            _ => {}
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
                self.fail(&p.key("action"), format!("unknown action \"{other}\" (one of: export_ban, export_quota, export_licensing, export_tariff, import_tariff, stockpile_target, stockpile_release, lift, demand_shock, site_outage, lane_disruption, join_alliance, leave_alliance, subsidy, rd_funding)"));
                return None;
            }
        })
    }
}

/// The optional site fields shared by mines and refineries.
struct SiteFields<'r> {
    owner: &'r Option<String>,
    potential: Option<f64>,
    footprint: Option<f64>,
    low_impact: bool,
    emissions: Option<f64>,
    default_footprint: f64,
    default_emissions: f64,
}

fn region_of(n: &RawNation) -> String {
    n.region.clone().unwrap_or_else(|| "world".to_string())
}

fn miner_name(m: &RawMiner, i: usize) -> String {
    if m.name.is_empty() { format!("{} {} mine #{}", m.nation, m.commodity, i + 1) } else { m.name.clone() }
}

fn refiner_name(r: &RawRefiner, i: usize) -> String {
    if r.name.is_empty() { format!("{} {} refinery #{}", r.nation, r.commodity, i + 1) } else { r.name.clone() }
}

/// The agent id of the mine or refinery named `name` (agencies come first, then mines, then
/// refineries, in file order).
fn site_by_name(raw: &RawFile, name: &str) -> Option<AgentId> {
    let base = raw.nations.len();
    if let Some(i) = raw.miners.iter().enumerate().position(|(i, m)| miner_name(m, i) == name) {
        return Some(AgentId((base + i) as u32));
    }
    raw.refiners
        .iter()
        .enumerate()
        .position(|(i, r)| refiner_name(r, i) == name)
        .map(|i| AgentId((base + raw.miners.len() + i) as u32))
}

/// An event's name: its `name`, or `event-N` for the N-th event in the file (1-based).
fn event_name(e: &RawEvent, index: usize) -> String {
    e.name.clone().unwrap_or_else(|| format!("event-{}", index + 1))
}

/// Rounds half away from zero (an exactly specified IEEE operation, the same on every platform).
fn round_half_away(x: f64) -> i64 {
    if x.is_finite() { x.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64 } else { 0 }
}
