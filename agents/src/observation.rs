//! What an agent sees at a tick. The coordinator derives these from the world state; a host
//! feeds them to [`crate::decide`]. A batch carries the public market picture once and one
//! private observation per hosted agent.
//!
//! Static facts about an agent (where it is, its capacity, its costs) are its [`AgentSpec`],
//! given to a host once; everything that changes from tick to tick is in [`AgentObservation`].

use crate::ids::{AgentId, CommodityId, MarketId, NationId, Sector, Tick};
use crate::small_map::SmallMap;
use crate::units::{Money, Price, Quantity};
use serde::{Deserialize, Serialize};

/// The fixed description of an agent, from the scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentSpec {
    /// A nation's stockpile agency.
    Nation { nation: NationId },
    /// A mine: produces ore of one commodity.
    Miner {
        nation: NationId,
        commodity: CommodityId,
        capacity_per_tick: Quantity,
        unit_cost: Price,
        /// How many ticks of output it will hold unsold before it cuts production.
        inventory_cap_ticks: u32,
    },
    /// A refinery: turns ore into refined product of the same commodity.
    Refiner {
        nation: NationId,
        commodity: CommodityId,
        /// Refined output per tick at full capacity.
        capacity_per_tick: Quantity,
        /// Processing cost per kilogram of refined output (ore not included).
        unit_cost: Price,
        /// Kilograms of refined product per 10,000 kg of ore.
        yield_bp: u32,
        /// How many ticks of ore it keeps on hand.
        ore_target_ticks: u32,
        /// Processor stockpiling: in a rising market it keeps back up to this many ticks of
        /// output (0: it never hoards).
        hoard_ticks: u32,
    },
    /// A nation's demand in one sector, for one or more refined commodities.
    Manufacturer {
        nation: NationId,
        sector: Sector,
        /// Consumption per tick at tick 0 and the reference price, by commodity (sorted).
        demand_per_tick: Vec<(CommodityId, Quantity)>,
        /// Yearly demand growth in basis points (compounded).
        growth_bp_per_year: i32,
        /// Short-run price elasticity of demand, as a positive number in thousandths (200 = -0.2).
        elasticity_milli: u32,
        /// How many ticks of consumption it keeps as working inventory.
        inventory_target_ticks: u32,
    },
}

impl AgentSpec {
    pub fn nation(&self) -> NationId {
        match self {
            AgentSpec::Nation { nation }
            | AgentSpec::Miner { nation, .. }
            | AgentSpec::Refiner { nation, .. }
            | AgentSpec::Manufacturer { nation, .. } => *nation,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AgentSpec::Nation { .. } => "nation",
            AgentSpec::Miner { .. } => "miner",
            AgentSpec::Refiner { .. } => "refiner",
            AgentSpec::Manufacturer { .. } => "manufacturer",
        }
    }
}

/// What an agent remembers from one tick to the next. It lives in the world state (so snapshots
/// and digests include it) and travels with the observation; the agent returns the new value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMemory {
    /// Smoothed price forecasts, sorted by market.
    pub forecasts: SmallMap<MarketId, Price>,
}

impl AgentMemory {
    pub fn forecast(&self, market: MarketId) -> Option<Price> {
        self.forecasts.get(&market)
    }

    pub fn set_forecast(&mut self, market: MarketId, price: Price) {
        self.forecasts.set(market, price);
    }
}

/// Public facts about one market: reference and observed prices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketView {
    pub market: MarketId,
    /// The scenario's reference price, around which demand is calibrated.
    pub reference: Price,
    /// Bounds on any limit price (from the scenario); orders outside are rejected.
    pub price_min: Price,
    pub price_max: Price,
    /// Last tick's world clearing price (carried forward when nothing traded).
    pub last_price: Price,
    /// Last tick's domestic prices in nations whose exports of this market are restricted,
    /// sorted by nation.
    pub domestic_prices: Vec<(NationId, Price)>,
    pub last_volume: Quantity,
}

impl MarketView {
    /// The price an agent located in `nation` faced last tick.
    pub fn price_for(&self, nation: NationId) -> Price {
        self.domestic_prices
            .binary_search_by_key(&nation, |(n, _)| *n)
            .map(|i| self.domestic_prices[i].1)
            .unwrap_or(self.last_price)
    }
}

/// What every agent may know: the clock and the markets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicView {
    pub tick: Tick,
    pub ticks_per_year: u32,
    /// Length of a tick in days.
    pub tick_days: u32,
    /// Indexed by `MarketId::index()`.
    pub markets: Vec<MarketView>,
    /// Export restrictions that limit trade (bans, quotas, licensing): those announced but not
    /// yet in force and those in force, sorted by effective tick.
    pub announcements: Vec<Announcement>,
}

/// An export restriction announced ahead of time: public knowledge from its announcement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub market: MarketId,
    pub exporter: NationId,
    /// The first tick it is in force.
    pub effective: Tick,
    /// The nations whose imports it will restrict (allies of the exporter are exempt), sorted.
    pub affected: Vec<NationId>,
    /// The exporter's share of the world's cross-border trade in this market over the last
    /// year (basis points): how much of the supply the restriction can touch.
    pub share_bp: u32,
}

impl PublicView {
    /// The largest share of supply (basis points) that an announced restriction will cut from
    /// `nation`'s imports of `market` within `within` ticks of now; 0 if none.
    pub fn restriction_ahead(&self, market: MarketId, nation: NationId, within: u32) -> u32 {
        self.announcements
            .iter()
            .filter(|a| {
                a.market == market
                    && a.effective.0 > self.tick.0
                    && a.effective.0 <= self.tick.0.saturating_add(within)
                    && a.affected.binary_search(&nation).is_ok()
            })
            .map(|a| a.share_bp.max(1))
            .max()
            .unwrap_or(0)
    }

    /// The largest share of supply (basis points) that a restriction in force cuts from
    /// `nation`'s imports of `market`; 0 if none.
    pub fn restricted_now(&self, market: MarketId, nation: NationId) -> u32 {
        self.announcements
            .iter()
            .filter(|a| a.market == market && a.effective.0 <= self.tick.0 && a.affected.binary_search(&nation).is_ok())
            .map(|a| a.share_bp.max(1))
            .max()
            .unwrap_or(0)
    }

    pub fn market(&self, market: MarketId) -> &MarketView {
        &self.markets[market.index()]
    }
}

/// A nation's own view of one of its stockpiles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockpileView {
    pub commodity: CommodityId,
    pub stock: Quantity,
    pub target_days: u32,
    /// Buy only while the price is at most this share of the reference price (basis points).
    pub buy_max_price_bp: u32,
    /// Release when the price reaches this share of the reference price (basis points).
    pub release_price_bp: u32,
    pub release_on_shortage: bool,
    /// The nation's domestic consumption per tick (its manufacturers' current base demand).
    pub consumption_per_tick: Quantity,
    /// Domestic demand that went unmet last tick.
    pub shortage_last_tick: Quantity,
    /// A release ordered by policy: this much still to offer, regardless of price.
    pub ordered_release: Quantity,
    /// The nation's forecast of this commodity's domestic price at its forecast horizon, made
    /// with its forecasting skill (horizon and noise).
    pub price_forecast: Price,
    /// Its forecast of domestic consumption per tick at the horizon.
    pub demand_forecast: Quantity,
}

/// What only this agent knows: its books.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentObservation {
    pub agent: AgentId,
    pub memory: AgentMemory,
    pub cash: Money,
    /// Inventories by market, sorted.
    pub holdings: SmallMap<MarketId, Quantity>,
    /// For a nation's agency: its stockpiles, sorted by commodity.
    pub stockpiles: Vec<StockpileView>,
    /// For a mine or refinery: its capacity per tick now (investment adds to it; an outage
    /// takes it to zero).
    pub capacity: Quantity,
    /// Goods bought and still in transit to this agent, by market, sorted.
    pub incoming: Vec<(MarketId, Quantity)>,
    /// For a manufacturer: how much of each commodity a unit of output takes now, in basis
    /// points of what it took at tick 0 (substitution and thrifting lower it), sorted.
    pub intensity_bp: Vec<(CommodityId, u32)>,
}

impl AgentObservation {
    pub fn holding(&self, market: MarketId) -> Quantity {
        self.holdings.get(&market).unwrap_or_default()
    }

    /// What is in transit to the agent in `market`.
    pub fn incoming(&self, market: MarketId) -> Quantity {
        self.incoming.binary_search_by_key(&market, |(m, _)| *m).map(|i| self.incoming[i].1).unwrap_or_default()
    }

    /// The intensity of `commodity` (basis points of tick 0's), 10,000 when not reported.
    pub fn intensity(&self, commodity: CommodityId) -> u32 {
        self.intensity_bp
            .binary_search_by_key(&commodity, |(c, _)| *c)
            .map(|i| self.intensity_bp[i].1)
            .unwrap_or(10_000)
    }
}

/// One tick's observations for the agents of one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservationBatch {
    pub tick: Tick,
    pub seed: u64,
    pub public: std::sync::Arc<PublicView>,
    pub agents: Vec<AgentObservation>,
}

/// Where a host finds the specs of the agents it runs, by id. An embedded run shares the
/// scenario's own table rather than copying every spec into its host.
pub trait SpecTable: Send + Sync {
    /// The spec of `agent`, if this host runs it.
    fn spec(&self, agent: AgentId) -> Option<&AgentSpec>;
    /// How many agents the table holds.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SpecTable for std::collections::BTreeMap<AgentId, AgentSpec> {
    fn spec(&self, agent: AgentId) -> Option<&AgentSpec> {
        self.get(&agent)
    }
    fn len(&self) -> usize {
        std::collections::BTreeMap::len(self)
    }
}
