//! The world state: everything a tick reads and writes, and nothing else. Two runs are the same
//! run exactly when their `WorldState`s are equal at every tick, which is what the digest checks.
//!
//! All money is in agents' cash (a nation's treasury is its stockpile agency's cash) and all
//! goods are in agents' holdings or in shipments, so conservation is checked by summing those.
//! Collections are vectors indexed by dense ids or sorted vectors: no hash maps, no floats.

use crate::policy::Policies;
use crate::scenario::Scenario;
use agents::manufacturer::{grow, growth_factor};
use agents::{
    AgentId, AgentMemory, AgentSpec, CommodityId, MarketId, Money, NationId, Price, Quantity, SmallMap, Tick,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldState {
    /// The next tick to run.
    pub tick: Tick,
    /// Indexed by `AgentId`.
    pub agents: Vec<AgentState>,
    /// Indexed by `NationId`.
    pub nations: Vec<NationState>,
    /// Indexed by `MarketId::index()`.
    pub markets: Vec<MarketState>,
    pub policies: Policies,
    /// Goods sold but not yet delivered (waiting for an export licence or at sea), sorted by
    /// arrival.
    pub shipments: Vec<Shipment>,
    pub exports: ExportLedger,
    /// Capacity under construction, sorted by (site, start).
    pub projects: Vec<Project>,
    /// Sites shut by an accident, a fire or opposition, in the order they started.
    pub outages: Vec<Outage>,
    /// Each alliance's members now (indexed like `Scenario::alliances`), sorted.
    pub alliances: Vec<Vec<NationId>>,
    /// Lane disruptions in force.
    pub disruptions: Vec<Disruption>,
    /// Recycling per nation and commodity: `[nation * commodities + commodity]`.
    pub recycling: Vec<RecyclingState>,
}

/// New capacity at a site: decided at `start`, producing from `online`, at full rate after the
/// ramp-up; `delivered` is what has come on line so far.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Project {
    pub site: AgentId,
    pub start: Tick,
    pub online: Tick,
    pub capacity: Quantity,
    pub delivered: Quantity,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// The event (or opposition episode) that caused it; `lift` ends it by this name.
    pub name: String,
    pub site: AgentId,
    /// When it ends by itself, if it does.
    pub until: Option<Tick>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disruption {
    pub name: String,
    pub lane: crate::ids::LaneId,
    pub extra_ticks: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecyclingState {
    /// Consumption smoothed over the commodity's recycling lag: what reaches end of life now.
    pub end_of_life: Quantity,
    /// The recovery rate now (basis points); it moves toward what price and policy make
    /// worthwhile, slowly.
    pub rate_bp: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub cash: Money,
    /// Inventories by market, sorted.
    pub holdings: SmallMap<MarketId, Quantity>,
    pub memory: AgentMemory,
    /// Mines and refineries: capacity per tick now (investment adds to it).
    pub capacity: Quantity,
    /// Manufacturers: what moves each commodity's demand away from the scenario's, in the order
    /// of its demand list.
    pub demand: Vec<DemandFactors>,
}

/// A manufacturer's demand for one commodity relative to the scenario's (basis points).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandFactors {
    pub commodity: CommodityId,
    /// The level of demand, moved by demand shocks.
    pub level_bp: u32,
    /// How much of the commodity a unit of output takes, lowered by substitution.
    pub intensity_bp: u32,
}

impl DemandFactors {
    /// Level and intensity together.
    pub fn combined_bp(&self) -> u32 {
        (u64::from(self.level_bp) * u64::from(self.intensity_bp) / 10_000).min(u64::from(u32::MAX)) as u32
    }
}

impl AgentState {
    pub fn holding(&self, market: MarketId) -> Quantity {
        self.holdings.get(&market).unwrap_or_default()
    }

    pub fn add(&mut self, market: MarketId, delta: Quantity) {
        *self.holdings.entry_or(market, Quantity::ZERO) += delta;
    }
}

/// A nation's stockpile policies and what its agency needs to know about last tick.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NationState {
    /// Sorted by commodity.
    pub stockpiles: Vec<StockpileState>,
    pub subsidies: crate::scenario::Subsidies,
    /// Research funding toward substitutes, a year, by commodity (sorted).
    pub rd_per_year: Vec<(CommodityId, Money)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockpileState {
    pub commodity: CommodityId,
    pub target_days: u32,
    pub buy_max_price_bp: u32,
    pub release_price_bp: u32,
    pub release_on_shortage: bool,
    /// What policy has ordered released and is not yet sold.
    pub ordered_release: Quantity,
    /// Domestic demand for this commodity that went unmet last tick.
    pub shortage_last_tick: Quantity,
    /// The nation's forecast of its domestic price at its horizon, made this tick.
    pub price_forecast: Price,
    /// Its forecast of domestic consumption per tick at the horizon.
    pub demand_forecast: Quantity,
}

impl StockpileState {
    pub fn new(commodity: CommodityId, target_days: u32) -> StockpileState {
        StockpileState {
            commodity,
            target_days,
            buy_max_price_bp: 11_000,
            release_price_bp: 25_000,
            release_on_shortage: true,
            ordered_release: Quantity::ZERO,
            shortage_last_tick: Quantity::ZERO,
            price_forecast: Price(0),
            demand_forecast: Quantity::ZERO,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketState {
    /// The world price of the last tick that traded (the reference before any trade).
    pub last_price: Price,
    /// Domestic prices of nations whose exports are restricted, sorted by nation.
    pub domestic_prices: Vec<(NationId, Price)>,
    pub last_volume: Quantity,
    /// The world price smoothed over about a quarter: the trend forecasters extrapolate from.
    pub trend_price: Price,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shipment {
    pub arrival: Tick,
    pub buyer: AgentId,
    pub market: MarketId,
    pub quantity: Quantity,
}

/// Each nation's cross-border exports per market over the last year, tick by tick, so a quota
/// can be set as a share of last year's exports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLedger {
    ticks_per_year: u32,
    markets: u32,
    /// How many ticks have been recorded (up to a year's worth are kept).
    recorded: u32,
    /// `[(nation * markets + market) * ticks_per_year + tick % ticks_per_year]`.
    ring: Vec<Quantity>,
}

impl ExportLedger {
    pub fn new(nations: usize, markets: usize, ticks_per_year: u32) -> ExportLedger {
        ExportLedger {
            ticks_per_year,
            markets: markets as u32,
            recorded: 0,
            ring: vec![Quantity::ZERO; nations * markets * ticks_per_year as usize],
        }
    }

    fn slot(&self, nation: NationId, market: MarketId, tick: Tick) -> usize {
        (nation.index() * self.markets as usize + market.index()) * self.ticks_per_year as usize
            + (tick.0 % self.ticks_per_year) as usize
    }

    /// Starts recording `tick`, forgetting what was recorded a year before it.
    pub fn begin(&mut self, tick: Tick) {
        let tpy = self.ticks_per_year as usize;
        let offset = (tick.0 % self.ticks_per_year) as usize;
        for row in 0..self.ring.len() / tpy.max(1) {
            self.ring[row * tpy + offset] = Quantity::ZERO;
        }
        self.recorded = (self.recorded + 1).min(self.ticks_per_year);
    }

    pub fn record(&mut self, nation: NationId, market: MarketId, tick: Tick, quantity: Quantity) {
        let i = self.slot(nation, market, tick);
        self.ring[i] += quantity;
    }

    /// Exports over the last year; with less than a year recorded, the recorded ticks scaled up
    /// to a year (rounded down).
    pub fn last_year(&self, nation: NationId, market: MarketId) -> Quantity {
        let tpy = self.ticks_per_year as usize;
        let start = (nation.index() * self.markets as usize + market.index()) * tpy;
        let sum: Quantity = self.ring[start..start + tpy].iter().copied().sum();
        if self.recorded == 0 {
            return Quantity::ZERO;
        }
        sum.scale_floor(i64::from(self.ticks_per_year), i64::from(self.recorded))
    }
}

impl WorldState {
    /// The world at tick 0: markets at their reference prices and every agent stocked as in a
    /// steady state (a few ticks of inventory), so the first tick is not an artificial shortage.
    pub fn initial(scenario: &Scenario) -> WorldState {
        let markets = (0..scenario.market_count())
            .map(|i| {
                let reference = scenario.stage(MarketId::from_index(i)).reference;
                MarketState { last_price: reference, trend_price: reference, ..MarketState::default() }
            })
            .collect();
        let consumption = base_consumption(scenario, Tick(0), |_, _| 10_000);
        let nations = scenario
            .nations
            .iter()
            .map(|n| NationState {
                stockpiles: n
                    .stockpiles
                    .iter()
                    .map(|p| StockpileState {
                        buy_max_price_bp: p.buy_max_price_bp,
                        release_price_bp: p.release_price_bp,
                        release_on_shortage: p.release_on_shortage,
                        price_forecast: scenario.stage(MarketId::refined(p.commodity)).reference,
                        ..StockpileState::new(p.commodity, p.target_days)
                    })
                    .collect(),
                subsidies: n.subsidies,
                rd_per_year: n.rd_per_year.clone(),
            })
            .collect();
        let commodities = scenario.commodities.len();
        let recycling = (0..scenario.nations.len() * commodities)
            .map(|i| {
                let (n, c) = (NationId((i / commodities) as u16), CommodityId((i % commodities) as u16));
                RecyclingState {
                    end_of_life: consumption.get(n, c),
                    rate_bp: scenario.commodities[c.index()].recycling_bp
                        + scenario.nations[n.index()].subsidies.recycling_bp,
                }
            })
            .collect();
        let agents = scenario.agents.iter().map(|a| initial_agent(scenario, &a.spec, &consumption)).collect();
        WorldState {
            tick: Tick(0),
            agents,
            nations,
            markets,
            policies: Policies::default(),
            shipments: Vec::new(),
            exports: ExportLedger::new(scenario.nations.len(), scenario.market_count(), scenario.ticks_per_year),
            projects: Vec::new(),
            outages: Vec::new(),
            alliances: scenario.alliances.iter().map(|a| a.members.clone()).collect(),
            disruptions: Vec::new(),
            recycling,
        }
    }
}

fn initial_agent(scenario: &Scenario, spec: &AgentSpec, consumption: &Consumption) -> AgentState {
    let mut state = AgentState::default();
    match spec {
        AgentSpec::Nation { nation } => {
            let n = &scenario.nations[nation.index()];
            state.cash = n.treasury;
            for p in &n.stockpiles {
                let per_tick = consumption.get(*nation, p.commodity);
                let stock = per_tick.scale_floor(i64::from(p.initial_days), i64::from(scenario.tick_days));
                state.add(MarketId::refined(p.commodity), stock);
            }
        }
        AgentSpec::Miner { commodity, capacity_per_tick, .. } => {
            state.capacity = *capacity_per_tick;
            state.add(MarketId::ore(*commodity), capacity_per_tick.scale_floor(2, 1));
        }
        AgentSpec::Refiner { commodity, capacity_per_tick, yield_bp, ore_target_ticks, .. } => {
            state.capacity = *capacity_per_tick;
            let ore_per_run = capacity_per_tick.scale_floor(10_000, i64::from((*yield_bp).max(1)));
            state.add(MarketId::ore(*commodity), ore_per_run.scale_floor(i64::from(*ore_target_ticks) + 1, 1));
            state.add(MarketId::refined(*commodity), *capacity_per_tick);
        }
        AgentSpec::Manufacturer { demand_per_tick, inventory_target_ticks, .. } => {
            state.demand = demand_per_tick
                .iter()
                .map(|(c, _)| DemandFactors { commodity: *c, level_bp: 10_000, intensity_bp: 10_000 })
                .collect();
            for (c, q) in demand_per_tick {
                state.add(MarketId::refined(*c), q.scale_floor(i64::from(*inventory_target_ticks), 1));
            }
        }
    }
    state
}

/// Each nation's base consumption per tick of each commodity: the sum of its manufacturers'
/// grown demand, before price effects. Stockpile targets are days of this.
#[derive(Clone, Debug)]
pub struct Consumption {
    commodities: usize,
    per_tick: Vec<Quantity>,
}

impl Consumption {
    pub fn get(&self, nation: NationId, commodity: CommodityId) -> Quantity {
        self.per_tick[nation.index() * self.commodities + commodity.index()]
    }
}

/// Each nation's consumption per tick now: its manufacturers' grown demand at their current
/// level and intensity, before price effects.
pub fn domestic_consumption(scenario: &Scenario, state: &WorldState, tick: Tick) -> Consumption {
    base_consumption(scenario, tick, |agent, k| state.agents[agent].demand.get(k).map_or(10_000, |d| d.combined_bp()))
}

/// Consumption with each manufacturer's `factor_bp(agent, k)` applied to its k-th commodity.
fn base_consumption(scenario: &Scenario, tick: Tick, factor_bp: impl Fn(usize, usize) -> u32) -> Consumption {
    let commodities = scenario.commodities.len();
    let mut per_tick = vec![Quantity::ZERO; scenario.nations.len() * commodities];
    // Scenarios use few distinct growth rates: compute each rate's factor once per tick.
    let mut factors: Vec<(i32, f64)> = Vec::new();
    for (agent, a) in scenario.agents.iter().enumerate() {
        if let AgentSpec::Manufacturer { nation, demand_per_tick, growth_bp_per_year, .. } = &a.spec {
            let factor = match factors.iter().find(|(g, _)| g == growth_bp_per_year) {
                Some((_, f)) => *f,
                None => {
                    let f = growth_factor(*growth_bp_per_year, tick, scenario.ticks_per_year);
                    factors.push((*growth_bp_per_year, f));
                    f
                }
            };
            for (k, (c, q)) in demand_per_tick.iter().enumerate() {
                let grown = grow(*q, factor);
                let bp = factor_bp(agent, k);
                per_tick[nation.index() * commodities + c.index()] +=
                    if bp == 10_000 { grown } else { grown.scale_floor(i64::from(bp), 10_000) };
            }
        }
    }
    Consumption { commodities, per_tick }
}
