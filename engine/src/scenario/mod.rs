//! Scenario files: the TOML format (`raw`, which mirrors the file field by field) and its
//! translation (`validate` and its parts) into the [`Scenario`] defined here, whose quantities
//! and prices are integers.
//!
//! Every mistake is reported as a [`ScenarioError`] naming the file, the line and the field.
//! Nothing here panics on any input, reads a file or prints; the rest of the engine only ever
//! sees a `Scenario` that passed validation. Human-friendly units in the file (tonnes per year,
//! US dollars per kilogram, percentages) are converted once, in `validate`, with the rounding
//! named.

mod events;
mod links;
mod raw;
mod sites;
mod synthetic;
mod validate;

use crate::ids::{AllianceId, LaneId, RegionId};
use crate::locate::line_col;
pub use crate::policy::{Partners, QuotaSize, Restriction};
use agents::{AgentId, AgentSpec, CommodityId, MarketId, Money, NationId, Price, Quantity, Sector, Stage, Tick};
use raw::{RawEvent, RawEvents, RawFile};
use validate::Validator;

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
    pub from: RegionId,
    pub to: RegionId,
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

impl SubsidyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubsidyKind::Mining => "mining",
            SubsidyKind::Processing => "processing",
            SubsidyKind::Recycling => "recycling",
        }
    }
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
    pub region: RegionId,
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

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EventKind {
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
        lane: LaneId,
        extra_ticks: u32,
    },
    JoinAlliance {
        nation: NationId,
        alliance: AllianceId,
    },
    LeaveAlliance {
        nation: NationId,
        alliance: AllianceId,
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
    /// A trade restriction (an export ban, quota, licensing regime or tariff, or an import
    /// tariff). Untagged, so it is written as the restriction itself, as before there was one
    /// restriction type: `{"ExportBan": {...}}`.
    #[serde(untagged)]
    Restrict(Restriction<QuotaSize>),
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
    pub fn lane_between(&self, a: RegionId, b: RegionId) -> Option<(LaneId, &Lane)> {
        self.lanes
            .iter()
            .enumerate()
            .find(|(_, l)| (l.from == a && l.to == b) || (l.from == b && l.to == a))
            .map(|(i, l)| (LaneId(i as u16), l))
    }

    pub fn alliance(&self, id: AllianceId) -> &AllianceDef {
        &self.alliances[id.index()]
    }

    pub fn lane(&self, id: LaneId) -> &Lane {
        &self.lanes[id.index()]
    }

    /// The nation whose code is `code`, or an error naming the known codes.
    pub fn nation_by_code_or_err(&self, code: &str) -> Result<NationId, String> {
        self.nation_by_code(code).ok_or_else(|| {
            let known: Vec<&str> = self.nations.iter().map(|n| n.code.as_str()).collect();
            format!("unknown nation \"{code}\" (nations: {})", known.join(", "))
        })
    }
}

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

/// The largest scenario file accepted, in bytes. Validation takes time linear in the size (a
/// 50 MB file checks in seconds), but the file's text and its parsed tables are held in memory
/// together; a `[synthetic]` table makes a world of any size without its text.
pub const MAX_SCENARIO_BYTES: usize = 256 * 1024 * 1024;

/// The refusal of a file larger than [`MAX_SCENARIO_BYTES`].
pub fn too_large(file: &str, bytes: u64) -> ScenarioError {
    ScenarioError {
        file: file.into(),
        line: 1,
        column: 1,
        field: "(file)".into(),
        message: format!(
            "the file is {:.1} MiB; a scenario file may be at most {} MiB (a [synthetic] table makes larger worlds without writing them out)",
            bytes as f64 / 1048576.0,
            MAX_SCENARIO_BYTES >> 20
        ),
    }
}

/// The file's bytes as text, or an error at the first byte that is not UTF-8: its line,
/// column and byte offset, and the key written on that line.
pub fn text_of<'b>(bytes: &'b [u8], file: &str) -> Result<&'b str, ScenarioError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        // The bytes before the bad one are valid text, so they can be placed and named.
        let before = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
        let (line, column) = line_col(before, offset);
        let field = describe_span(before, offset);
        ScenarioError {
            file: file.into(),
            line,
            column,
            field: if field.is_empty() { "(file)".into() } else { field },
            message: format!(
                "the file is not UTF-8 text: byte 0x{:02X} at byte offset {offset} cannot start or continue a character (save the file as UTF-8)",
                bytes[offset]
            ),
        }
    })
}

/// Validates scenario text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(too_large(file, text.len() as u64));
    }
    let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
    let raw = synthetic::expand(raw, text, file)?;
    let mut v = Validator::new(text, file, Default::default());
    let scenario = v.scenario(raw);
    match v.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(scenario),
    }
}

/// Validates a file of `[[events]]` tables (the scenario format's events) against `scenario`:
/// for a fork's `--events` and for control injects. `lift` may target the events in `text` and
/// any of `known`: the names of the run's events so far, the scenario's and those injected since
/// (the driver passes `Engine::events()`), which are the names the restrictions in force carry.
/// Errors name `file` and lines in `text`.
pub fn parse_events(
    text: &str,
    file: &str,
    scenario: &Scenario,
    known: Vec<String>,
) -> Result<Vec<Event>, ScenarioError> {
    let events: RawEvents = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
    let names = events::Names::of_scenario(scenario, &events.events);
    let mut v = Validator::new(text, file, known.into_iter().collect());
    let parsed = v.events(&events.events, &names, scenario.ticks);
    match v.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(parsed),
    }
}

/// How deep the TOML parser lets tables, arrays and dotted keys nest (its limit, which it does
/// not export).
const TOML_NESTING_LIMIT: usize = 80;

/// An error from the TOML parser, placed and named: the field is the key on the line it points
/// at, or for a missing table or field, the one missing. Every error gets a line: the parser
/// gives no place for a key nested too deep, so that key is looked for here, and any other
/// error without a place is put at the start of the file.
fn toml_error(text: &str, file: &str, e: &toml::de::Error) -> ScenarioError {
    let mut message = e.message().trim().to_string();
    let too_deep = message.contains("recursion limit") || message.contains("max recursion depth");
    let start = e.span().map(|s| s.start).or_else(|| if too_deep { deeply_dotted_line(text) } else { None });
    let (line, column) = start.map(|s| line_col(text, s)).unwrap_or((1, 1));
    let missing = missing_field(&message);
    let at = start.map(|s| describe_span(text, s)).unwrap_or_default();
    let field = match (&missing, at.as_str()) {
        (Some(m), _) if m == "scenario" => {
            message = "the file has no [scenario] table (it gives the scenario's name, seed and ticks)".into();
            m.clone()
        }
        (Some(m), "") => m.clone(),
        (Some(m), table) if is_header(text, start.unwrap_or(0)) => format!("{table}.{m}"),
        (Some(m), _) => m.clone(),
        (None, "") => "(file)".into(),
        (None, key) => key.to_string(),
    };
    let field = if field.len() > 60 { format!("{}...", field.chars().take(60).collect::<String>()) } else { field };
    if message.contains("expected i64") || message.contains("as i128") {
        message.push_str(" (whole numbers here must lie between -2^63 and 2^63 - 1)");
    }
    if too_deep {
        message = format!(
            "nested too deeply (tables, arrays and dotted keys may nest at most {TOML_NESTING_LIMIT} levels): {message}"
        );
    }
    ScenarioError { file: file.into(), line, column, field, message }
}

/// Whether the line holding `offset` is a table header (`[x]` or `[[x]]`).
fn is_header(text: &str, offset: usize) -> bool {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    text[start..].trim_start().starts_with('[')
}

/// The start of the first line holding a key of more dotted parts than the parser accepts.
fn deeply_dotted_line(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let mut quoted = None;
        let mut dots = 0;
        for ch in line.chars() {
            match (quoted, ch) {
                (None, '"' | '\'') => quoted = Some(ch),
                (Some(q), c) if c == q => quoted = None,
                (None, '.') => dots += 1,
                (None, '#') => break,
                _ => {}
            }
        }
        if dots + 1 >= TOML_NESTING_LIMIT {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// The field a "missing field `x`" message names.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
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

/// Validates one event given as a value (a table with the fields of an `[[events]]` entry, as a
/// player's policy order arrives) against `scenario`; `lift` may target any of `known` (the
/// run's events so far). Errors name the field; they have no line, there being no file.
pub fn event_from_table(
    table: toml::Table,
    scenario: &Scenario,
    known: Vec<String>,
) -> Result<Vec<Event>, ScenarioError> {
    use serde::Deserialize;
    let raw = RawEvent::deserialize(toml::Value::Table(table)).map_err(|e| ScenarioError {
        file: "order".into(),
        line: 0,
        column: 0,
        field: "events[0]".into(),
        message: e.message().trim().to_string(),
    })?;
    let events = [raw];
    let names = events::Names::of_scenario(scenario, &events);
    let mut v = Validator::new("", "order", known.into_iter().collect());
    let parsed = v.events(&events, &names, scenario.ticks);
    match v.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(parsed),
    }
}
