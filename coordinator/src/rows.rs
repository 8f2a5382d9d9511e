//! The tidy rows of a tick that both the per-tick CSV files (`output`) and the exported tables
//! (`debrief::export`) are made of, derived once here: prices by zone, shortages by nation,
//! sector and commodity, stockpiles with their cover, and what happened.

use agents::nation::cover_tenths_of_days;
use agents::{CommodityId, MarketId, NationId, Price, Quantity, Sector};
use engine::record::{StockpileRecord, TickRecord};
use engine::scenario::Scenario;
use std::collections::BTreeMap;

/// A market's price in one zone: the world, or a restricted exporter's domestic market.
pub struct PriceRow {
    pub market: MarketId,
    /// `None` for the world price.
    pub zone: Option<NationId>,
    pub price: Price,
    /// The world price at the same tick.
    pub world: Price,
    /// The volume traded (world rows only).
    pub volume: Option<Quantity>,
    pub traded: bool,
}

/// Every market's world price, each followed by its domestic prices, in market order.
pub fn prices(r: &TickRecord) -> impl Iterator<Item = PriceRow> + '_ {
    r.markets.iter().flat_map(|m| {
        let world = PriceRow {
            market: m.market,
            zone: None,
            price: m.price,
            world: m.price,
            volume: Some(m.volume),
            traded: m.traded,
        };
        let domestic = m.domestic.iter().map(move |(n, p)| PriceRow {
            market: m.market,
            zone: Some(*n),
            price: *p,
            world: m.price,
            volume: None,
            traded: m.traded,
        });
        std::iter::once(world).chain(domestic)
    })
}

/// Demand and use of one commodity by one nation's sector.
pub struct ShortageRow {
    pub nation: NationId,
    pub sector: Sector,
    pub commodity: CommodityId,
    pub wanted: Quantity,
    pub consumed: Quantity,
}

impl ShortageRow {
    pub fn short(&self) -> Quantity {
        self.wanted - self.consumed
    }
}

/// Manufacturers' demand and use summed by (nation, sector, commodity), in that order.
pub fn shortages(r: &TickRecord) -> Vec<ShortageRow> {
    let mut by_key: BTreeMap<(NationId, Sector, CommodityId), (Quantity, Quantity)> = BTreeMap::new();
    for x in &r.shortages {
        let e = by_key.entry((x.nation, x.sector, x.commodity)).or_default();
        e.0 += x.wanted;
        e.1 += x.consumed;
    }
    by_key
        .into_iter()
        .map(|((nation, sector, commodity), (wanted, consumed))| ShortageRow {
            nation,
            sector,
            commodity,
            wanted,
            consumed,
        })
        .collect()
}

/// A stockpile's cover in tenths of days (none without consumption).
pub fn cover_tenths(p: &StockpileRecord, tick_days: u32) -> Option<i64> {
    cover_tenths_of_days(p.stock, p.consumption_per_tick, tick_days)
}

/// What happened in a tick, in words: (effective tick, name, description). The name is what
/// the description says before its first colon (an event's name, an alliance's code).
pub fn events<'a>(s: &'a Scenario, r: &'a TickRecord) -> impl Iterator<Item = (u32, String, String)> + 'a {
    r.events.iter().map(|(at, occurrence)| {
        let text = occurrence.describe(s);
        let name = text.split(':').next().unwrap_or("").to_string();
        (at.0, name, text)
    })
}
