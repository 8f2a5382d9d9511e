//! What one tick did, for outputs and summaries: prices, flows between nations, shortages,
//! stockpiles, rejected actions and the events applied. Records are derived from the tick, never
//! fed back into it, so writing or skipping them cannot change a run.

use crate::digest::Digest;
use crate::policy::Restriction;
use crate::scenario::{Partners, Scenario};
use agents::{AgentId, CommodityId, MarketId, Money, NationId, Price, Quantity, Sector, Tick};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct TickRecord {
    pub tick: Tick,
    /// The digest of the state after this tick.
    pub digest: Digest,
    /// In market order.
    pub markets: Vec<MarketRecord>,
    /// Output of mines (ore) and refineries (refined) by nation and market.
    pub production: BTreeMap<(NationId, MarketId), Quantity>,
    /// Traded quantity and value by market and route.
    pub flows: BTreeMap<FlowKey, (Quantity, Money)>,
    pub shortages: Vec<ShortageRecord>,
    pub stockpiles: Vec<StockpileRecord>,
    pub treasuries: Vec<(NationId, Money)>,
    pub tariffs: Money,
    pub rejections: Vec<Rejection>,
    /// The restrictions in force after this tick: (name, description).
    pub restrictions: Vec<(String, String)>,
    /// The events applied during this tick, each with the tick it takes effect at (events due at
    /// tick t+1 are applied at the end of tick t; those due at 0 before the first tick).
    pub events: Vec<(Tick, String)>,
    /// CO2 emitted by mines and refineries, by host nation (kilograms).
    pub emissions: BTreeMap<NationId, i64>,
    /// Freight paid on shipping lanes.
    pub freight: Money,
    /// New capacity decided this tick: (site, kilograms per tick, first tick online).
    pub investments: Vec<(AgentId, Quantity, Tick)>,
    /// Recycled supply delivered, by nation and commodity.
    pub recycled: BTreeMap<(NationId, CommodityId), Quantity>,
}

#[derive(Clone, Debug)]
pub struct MarketRecord {
    pub market: MarketId,
    /// The world price (carried forward from the last trade when nothing traded).
    pub price: Price,
    pub volume: Quantity,
    pub traded: bool,
    /// Domestic prices of restricted exporters.
    pub domestic: Vec<(NationId, Price)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub market: MarketId,
    pub from: NationId,
    pub to: NationId,
}

#[derive(Clone, Debug)]
pub struct ShortageRecord {
    pub agent: AgentId,
    pub nation: NationId,
    pub sector: Sector,
    pub commodity: CommodityId,
    pub wanted: Quantity,
    pub consumed: Quantity,
}

#[derive(Clone, Debug)]
pub struct StockpileRecord {
    pub nation: NationId,
    pub commodity: CommodityId,
    pub stock: Quantity,
    pub target_days: u32,
    pub consumption_per_tick: Quantity,
    pub holding_cost: Money,
    pub loss: Quantity,
}

/// An action, or part of one, that the coordinator refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub tick: Tick,
    pub agent: AgentId,
    pub reason: String,
}

fn partners(s: &Scenario, p: &Partners) -> String {
    match p {
        Partners::All => "all".into(),
        Partners::Only(list) => list.iter().map(|n| s.nation_code(*n)).collect::<Vec<_>>().join("+"),
    }
}

/// A one-line description of a restriction, for logs and outputs.
pub fn describe_restriction(s: &Scenario, r: &Restriction) -> String {
    let m = |market: &MarketId| format!("{} {}", s.commodity_code(market.commodity), market.stage.as_str());
    match r {
        Restriction::ExportBan { nation, market, to } => {
            format!("{} bans exports of {} to {}", s.nation_code(*nation), m(market), partners(s, to))
        }
        Restriction::ExportQuota { nation, market, to, per_tick } => {
            format!(
                "{} caps exports of {} to {} at {} per tick",
                s.nation_code(*nation),
                m(market),
                partners(s, to),
                per_tick
            )
        }
        Restriction::ExportLicensing { nation, market, to, delay_ticks } => {
            format!(
                "{} licenses exports of {} to {} ({delay_ticks} ticks' delay)",
                s.nation_code(*nation),
                m(market),
                partners(s, to)
            )
        }
        Restriction::ExportTariff { nation, market, to, bp } => {
            format!(
                "{} taxes exports of {} to {} at {}.{:02}%",
                s.nation_code(*nation),
                m(market),
                partners(s, to),
                bp / 100,
                bp % 100
            )
        }
        Restriction::ImportTariff { nation, market, from, bp } => {
            format!(
                "{} taxes imports of {} from {} at {}.{:02}%",
                s.nation_code(*nation),
                m(market),
                partners(s, from),
                bp / 100,
                bp % 100
            )
        }
    }
}
