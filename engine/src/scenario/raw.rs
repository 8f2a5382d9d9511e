//! The scenario file as written: one struct per kind of table, mirroring the file field by
//! field (`deny_unknown_fields`, so a misspelt key is an error), with the documented defaults.
//! Nothing here checks a value; `validate` does.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) scenario: RawHeader,
    #[serde(default)]
    pub(crate) commodities: Vec<RawCommodity>,
    #[serde(default)]
    pub(crate) nations: Vec<RawNation>,
    #[serde(default)]
    pub(crate) miners: Vec<RawMiner>,
    #[serde(default)]
    pub(crate) refiners: Vec<RawRefiner>,
    #[serde(default)]
    pub(crate) manufacturers: Vec<RawManufacturer>,
    #[serde(default)]
    pub(crate) events: Vec<RawEvent>,
    #[serde(default)]
    pub(crate) companies: Vec<RawCompany>,
    #[serde(default)]
    pub(crate) alliances: Vec<RawAlliance>,
    #[serde(default)]
    pub(crate) lanes: Vec<RawLane>,
    #[serde(default)]
    pub(crate) offtakes: Vec<RawOfftake>,
    /// Generator parameters: the commodities, nations and agents come from `synth`.
    #[serde(default)]
    pub(crate) synthetic: Option<RawSynthetic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSynthetic {
    pub(crate) nations: i64,
    pub(crate) agents: i64,
    /// The generator's seed; the scenario's seed when not given.
    #[serde(default)]
    pub(crate) seed: Option<i64>,
}

/// The part of a generated world that is written as one text: commodities and nations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorldPart {
    pub(crate) commodities: Vec<RawCommodity>,
    pub(crate) nations: Vec<RawNation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCompany {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) owner: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlliance {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) members: Vec<String>,
    #[serde(default = "default_true")]
    pub(crate) exempt_from_restrictions: bool,
    #[serde(default)]
    pub(crate) joint_procurement: bool,
    #[serde(default)]
    pub(crate) reserve_sharing_price_pct: Option<f64>,
    #[serde(default = "default_true")]
    pub(crate) share_intelligence: bool,
    #[serde(default)]
    pub(crate) financing_pct: f64,
    #[serde(default = "default_true")]
    pub(crate) open: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLane {
    pub(crate) id: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) transit_ticks: i64,
    #[serde(default)]
    pub(crate) cost_usd_per_kg: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOfftake {
    pub(crate) site: String,
    pub(crate) buyer: String,
    pub(crate) share_pct: f64,
    #[serde(default = "default_hundred")]
    pub(crate) price_pct_of_world: f64,
}

pub(crate) fn default_hundred() -> f64 {
    100.0
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubsidies {
    #[serde(default)]
    pub(crate) mining_pct: f64,
    #[serde(default)]
    pub(crate) processing_pct: f64,
    #[serde(default)]
    pub(crate) recycling_pct: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) seed: i64,
    pub(crate) ticks: i64,
    #[serde(default = "default_ticks_per_year")]
    pub(crate) ticks_per_year: i64,
    #[serde(default = "default_tick_days")]
    pub(crate) tick_days: i64,
}

pub(crate) fn default_ticks_per_year() -> i64 {
    52
}
pub(crate) fn default_tick_days() -> i64 {
    7
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommodity {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) note: String,
    #[serde(default)]
    pub(crate) stockpile_loss_pct_per_year: f64,
    #[serde(default)]
    pub(crate) holding_cost_usd_per_kg_year: f64,
    #[serde(default)]
    pub(crate) recycling_pct: f64,
    #[serde(default = "default_recycling_lag")]
    pub(crate) recycling_lag_years: f64,
    #[serde(default = "default_mine_lead")]
    pub(crate) mine_lead_time_years: f64,
    #[serde(default = "default_refinery_lead")]
    pub(crate) refinery_lead_time_years: f64,
    #[serde(default = "default_ramp")]
    pub(crate) ramp_years: f64,
    #[serde(default)]
    pub(crate) capex_usd_per_kg_year: Option<f64>,
    #[serde(default = "default_substitution")]
    pub(crate) substitution_pct_per_year: f64,
    #[serde(default = "default_substitution_floor")]
    pub(crate) substitution_floor_pct: f64,
    #[serde(default = "default_substitution_trigger")]
    pub(crate) substitution_trigger_pct: f64,
    pub(crate) ore: Option<RawStage>,
    pub(crate) refined: Option<RawStage>,
}

pub(crate) fn default_recycling_lag() -> f64 {
    8.0
}
pub(crate) fn default_mine_lead() -> f64 {
    7.0
}
pub(crate) fn default_refinery_lead() -> f64 {
    5.0
}
pub(crate) fn default_ramp() -> f64 {
    1.5
}
pub(crate) fn default_substitution() -> f64 {
    10.0
}
pub(crate) fn default_substitution_floor() -> f64 {
    60.0
}
pub(crate) fn default_substitution_trigger() -> f64 {
    150.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub(crate) reference_usd_per_kg: f64,
    pub(crate) price_min_usd_per_kg: f64,
    pub(crate) price_max_usd_per_kg: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNation {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) stockpile_budget_musd: f64,
    #[serde(default)]
    pub(crate) stockpile_appropriation_musd_per_year: f64,
    #[serde(default)]
    pub(crate) stockpiles: Vec<RawStockpile>,
    #[serde(default)]
    pub(crate) region: Option<String>,
    #[serde(default)]
    pub(crate) alignment: f64,
    #[serde(default)]
    pub(crate) env_sensitivity: f64,
    #[serde(default = "default_horizon")]
    pub(crate) forecast_horizon_ticks: i64,
    #[serde(default = "default_forecast_noise")]
    pub(crate) forecast_noise_pct: f64,
    #[serde(default)]
    pub(crate) security_musd_per_year: f64,
    #[serde(default)]
    pub(crate) storage: Option<String>,
    #[serde(default)]
    pub(crate) subsidies: RawSubsidies,
    #[serde(default)]
    pub(crate) rd_musd_per_year: BTreeMap<String, f64>,
}

pub(crate) fn default_horizon() -> i64 {
    13
}
pub(crate) fn default_forecast_noise() -> f64 {
    5.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStockpile {
    pub(crate) commodity: String,
    pub(crate) target_days: i64,
    #[serde(default)]
    pub(crate) initial_days: i64,
    #[serde(default = "default_buy_max")]
    pub(crate) buy_max_price_pct: f64,
    #[serde(default = "default_release_price")]
    pub(crate) release_price_pct: f64,
    #[serde(default = "default_true")]
    pub(crate) release_on_shortage: bool,
}

pub(crate) fn default_buy_max() -> f64 {
    110.0
}
pub(crate) fn default_release_price() -> f64 {
    250.0
}
pub(crate) fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMiner {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) nation: String,
    pub(crate) commodity: String,
    pub(crate) capacity_t_per_year: f64,
    pub(crate) unit_cost_usd_per_kg: f64,
    #[serde(default = "default_inventory_cap")]
    pub(crate) inventory_cap_ticks: i64,
    #[serde(default)]
    pub(crate) owner: Option<String>,
    #[serde(default)]
    pub(crate) potential_t_per_year: Option<f64>,
    #[serde(default)]
    pub(crate) footprint: Option<f64>,
    #[serde(default)]
    pub(crate) low_impact: bool,
    #[serde(default)]
    pub(crate) emissions_t_co2_per_t: Option<f64>,
}

pub(crate) fn default_inventory_cap() -> i64 {
    8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRefiner {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) nation: String,
    pub(crate) commodity: String,
    pub(crate) capacity_t_per_year: f64,
    pub(crate) unit_cost_usd_per_kg: f64,
    #[serde(default = "default_yield")]
    pub(crate) yield_pct: f64,
    #[serde(default = "default_ore_target")]
    pub(crate) ore_target_ticks: i64,
    #[serde(default)]
    pub(crate) hoard_ticks: i64,
    #[serde(default)]
    pub(crate) owner: Option<String>,
    #[serde(default)]
    pub(crate) potential_t_per_year: Option<f64>,
    #[serde(default)]
    pub(crate) footprint: Option<f64>,
    #[serde(default)]
    pub(crate) low_impact: bool,
    #[serde(default)]
    pub(crate) emissions_t_co2_per_t: Option<f64>,
}

pub(crate) fn default_yield() -> f64 {
    95.0
}
pub(crate) fn default_ore_target() -> i64 {
    3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManufacturer {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) nation: String,
    pub(crate) sector: String,
    #[serde(default)]
    pub(crate) growth_pct_per_year: f64,
    #[serde(default = "default_elasticity")]
    pub(crate) elasticity: f64,
    #[serde(default = "default_inventory_target")]
    pub(crate) inventory_target_ticks: i64,
    pub(crate) demand_t_per_year: BTreeMap<String, f64>,
}

pub(crate) fn default_elasticity() -> f64 {
    0.2
}
pub(crate) fn default_inventory_target() -> i64 {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvent {
    pub(crate) tick: i64,
    pub(crate) action: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) nation: Option<String>,
    #[serde(default)]
    pub(crate) commodity: Option<String>,
    #[serde(default)]
    pub(crate) stage: Option<String>,
    #[serde(default)]
    pub(crate) to: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) from: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) pct_of_last_year: Option<f64>,
    #[serde(default)]
    pub(crate) t_per_year: Option<f64>,
    #[serde(default)]
    pub(crate) delay_ticks: Option<i64>,
    #[serde(default)]
    pub(crate) pct: Option<f64>,
    #[serde(default)]
    pub(crate) target_days: Option<i64>,
    #[serde(default)]
    pub(crate) release_t: Option<f64>,
    #[serde(default)]
    pub(crate) until_tick: Option<i64>,
    #[serde(default)]
    pub(crate) target: Option<String>,
    #[serde(default)]
    pub(crate) announce_tick: Option<i64>,
    #[serde(default)]
    pub(crate) allies_exempt: Option<bool>,
    #[serde(default)]
    pub(crate) sector: Option<String>,
    #[serde(default)]
    pub(crate) site: Option<String>,
    #[serde(default)]
    pub(crate) lane: Option<String>,
    #[serde(default)]
    pub(crate) extra_ticks: Option<i64>,
    #[serde(default)]
    pub(crate) alliance: Option<String>,
    #[serde(default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) musd_per_year: Option<f64>,
    #[serde(default)]
    pub(crate) note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvents {
    #[serde(default)]
    pub(crate) events: Vec<RawEvent>,
}
