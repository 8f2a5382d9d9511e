//! Recycling: end-of-life flow follows consumption with the commodity's lag, and what the
//! recovery rate makes of it is delivered to the nation's manufacturers of the commodity, in
//! proportion to their base demand. The rate moves slowly toward what price and policy make
//! worthwhile.

use crate::tick::Ctx;
use agents::{CommodityId, MarketId, NationId, Quantity};
use std::collections::BTreeMap;

/// Recycled supply: what reaches end of life now times the recovery rate.
pub(crate) fn recycle(cx: &mut Ctx) {
    let commodities = cx.scenario.commodities.len();
    for i in 0..cx.state.recycling.len() {
        let r = &cx.state.recycling[i];
        let users = &cx.derived.users[i];
        if r.rate_bp == 0 || !r.end_of_life.is_positive() || users.is_empty() {
            continue;
        }
        let total = r.end_of_life.scale_floor(i64::from(r.rate_bp), 10_000);
        if !total.is_positive() {
            continue;
        }
        let (n, c) = (NationId((i / commodities) as u16), CommodityId((i % commodities) as u16));
        let market = MarketId::refined(c);
        let weights: Quantity = users.iter().map(|(_, q)| *q).sum();
        let mut given = Quantity::ZERO;
        for (k, &(agent, q)) in users.iter().enumerate() {
            let share = if k + 1 == users.len() {
                total - given
            } else if weights.is_positive() {
                total.scale_floor(q.0, weights.0)
            } else {
                Quantity::ZERO
            };
            cx.state.agents[agent.index()].add(market, share);
            given += share;
        }
        cx.ledger.goods_created[market.index()] += total;
        *cx.record.recycled.entry((n, c)).or_default() += total;
    }
}

/// Moves end-of-life flows and recovery rates a tick on: the rate heads for half to twice the
/// base rate as the price goes from half to twice the reference, plus any subsidy, a 26th of
/// the way each tick.
pub(crate) fn update_rates(cx: &mut Ctx) {
    let commodities = cx.scenario.commodities.len();
    let mut consumed: BTreeMap<(NationId, CommodityId), Quantity> = BTreeMap::new();
    for s in &cx.record.shortages {
        *consumed.entry((s.nation, s.commodity)).or_default() += s.consumed;
    }
    for i in 0..cx.state.recycling.len() {
        let (n, c) = (NationId((i / commodities) as u16), CommodityId((i % commodities) as u16));
        let spec = &cx.scenario.commodities[c.index()];
        let subsidy = cx.state.nations[n.index()].subsidies.recycling_bp;
        let price = cx.state.markets[MarketId::refined(c).index()].last_price.0.max(1);
        let r = &mut cx.state.recycling[i];
        if spec.recycling_bp == 0 && subsidy == 0 && r.rate_bp == 0 {
            continue;
        }
        let used = consumed.get(&(n, c)).copied().unwrap_or_default();
        r.end_of_life = r.end_of_life + (used - r.end_of_life).scale_floor(1, i64::from(spec.recycling_lag_ticks));
        let reference = spec.stages[1].reference.0.max(1);
        let factor_bp = (i128::from(price) * 10_000 / i128::from(reference)).clamp(5_000, 20_000) as i64;
        let target = (i64::from(spec.recycling_bp) * factor_bp / 10_000 + i64::from(subsidy)).min(9_500);
        let rate = i64::from(r.rate_bp);
        let step = (target - rate) / 26;
        let step = if step == 0 { (target - rate).signum() } else { step };
        r.rate_bp = (rate + step).max(0) as u32;
    }
}
