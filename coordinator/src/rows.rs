//! The tidy rows of a tick that both the per-tick CSV files (`output`) and the exported tables
//! (`debrief::export`) are made of, derived once here: prices by zone, shortages by nation,
//! sector and commodity, stockpiles with their cover, and what happened.

use agents::nation::cover_tenths_of_days;
use agents::{CommodityId, MarketId, NationId, Price, Quantity, Sector};
use engine::record::{StockpileRecord, TickRecord};
use engine::scenario::Scenario;

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

/// Manufacturers' demand and use summed by (nation, sector, commodity), in that order. A large
/// world has a record per industry and commodity, tens of thousands a tick, too many to sum in
/// an ordered map each tick: they are summed in a dense table indexed in the rows' order (or,
/// for a world too sparse for one, sorted and merged).
pub fn shortages(r: &TickRecord) -> Vec<ShortageRow> {
    let sectors = Sector::ALL.len();
    let (mut nations, mut commodities) = (0, 0);
    for x in &r.shortages {
        nations = nations.max(x.nation.index() + 1);
        commodities = commodities.max(x.commodity.index() + 1);
    }
    let cells = nations * sectors * commodities;
    if cells > 4 * r.shortages.len() + 4096 {
        return shortages_sorted(r);
    }
    let mut sums: Vec<Option<(Quantity, Quantity)>> = vec![None; cells];
    for x in &r.shortages {
        let i = (x.nation.index() * sectors + sector_index(x.sector)) * commodities + x.commodity.index();
        let e = sums[i].get_or_insert((Quantity::ZERO, Quantity::ZERO));
        e.0 += x.wanted;
        e.1 += x.consumed;
    }
    sums.into_iter()
        .enumerate()
        .filter_map(|(i, sum)| {
            let (wanted, consumed) = sum?;
            let (rest, commodity) = (i / commodities, i % commodities);
            Some(ShortageRow {
                nation: NationId((rest / sectors) as u16),
                sector: Sector::ALL[rest % sectors],
                commodity: CommodityId(commodity as u16),
                wanted,
                consumed,
            })
        })
        .collect()
}

/// A sector's place in `Sector::ALL`, which is also its order.
fn sector_index(s: Sector) -> usize {
    match s {
        Sector::Batteries => 0,
        Sector::Renewables => 1,
        Sector::Electronics => 2,
        Sector::Defense => 3,
        Sector::Industry => 4,
    }
}

/// [`shortages`] by sorting the records' keys and merging equal ones.
fn shortages_sorted(r: &TickRecord) -> Vec<ShortageRow> {
    let mut keyed: Vec<((NationId, Sector, CommodityId), Quantity, Quantity)> =
        r.shortages.iter().map(|x| ((x.nation, x.sector, x.commodity), x.wanted, x.consumed)).collect();
    keyed.sort_unstable_by_key(|k| k.0);
    let mut out: Vec<ShortageRow> = Vec::new();
    for ((nation, sector, commodity), wanted, consumed) in keyed {
        match out.last_mut() {
            Some(last) if (last.nation, last.sector, last.commodity) == (nation, sector, commodity) => {
                last.wanted += wanted;
                last.consumed += consumed;
            }
            _ => out.push(ShortageRow { nation, sector, commodity, wanted, consumed }),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use engine::record::ShortageRecord;

    /// The dense table, the sorted merge and an ordered map give the same rows.
    #[test]
    fn shortages_sum_alike_however_they_are_summed() {
        let mut r = TickRecord::default();
        let mut x: u64 = 7;
        for agent in 0..5000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let pick = |shift: u32, n: u64| ((x >> shift) % n) as u16;
            r.shortages.push(ShortageRecord {
                agent: agents::AgentId(agent),
                nation: NationId(pick(20, 40)),
                sector: Sector::ALL[pick(30, 5) as usize],
                commodity: CommodityId(pick(40, 9)),
                wanted: Quantity(i64::from(pick(10, 1000))),
                consumed: Quantity(i64::from(pick(50, 500))),
            });
        }
        let mut by_map: std::collections::BTreeMap<_, (Quantity, Quantity)> = Default::default();
        for s in &r.shortages {
            let e = by_map.entry((s.nation, s.sector, s.commodity)).or_default();
            e.0 += s.wanted;
            e.1 += s.consumed;
        }
        let rows = |v: Vec<ShortageRow>| -> Vec<_> {
            v.into_iter().map(|s| ((s.nation, s.sector, s.commodity), (s.wanted, s.consumed))).collect()
        };
        let expected: Vec<_> = by_map.into_iter().collect();
        assert_eq!(rows(shortages(&r)), expected);
        assert_eq!(rows(shortages_sorted(&r)), expected);
    }
}
