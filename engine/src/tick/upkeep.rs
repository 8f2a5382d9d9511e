//! Stockpile upkeep: appropriations in, holding costs out, losses, and what the agencies need
//! to know next tick (their industry's shortages, what remains of ordered releases).

use super::Ctx;
use super::auctions::Sold;
use crate::record::StockpileRecord;
use crate::world::Consumption;
use agents::{AgentId, CommodityId, MarketId, Money, NationId, Quantity};
use std::collections::BTreeMap;

pub(crate) fn upkeep(cx: &mut Ctx, consumption: &Consumption, released: &Sold) {
    let tpy = i64::from(cx.scenario.ticks_per_year);
    let mut shortage: BTreeMap<(NationId, CommodityId), Quantity> = BTreeMap::new();
    for s in &cx.record.shortages {
        *shortage.entry((s.nation, s.commodity)).or_default() += s.wanted - s.consumed;
    }
    for (n, nation) in cx.scenario.nations.iter().enumerate() {
        let id = NationId(n as u16);
        let agency = AgentId(n as u32);
        let appropriation = nation.appropriation_per_year.scale_floor(1, tpy);
        let agent = &mut cx.state.agents[n];
        agent.cash += appropriation;
        cx.ledger.money_in += appropriation;
        for pile in &mut cx.state.nations[n].stockpiles {
            let c = &cx.scenario.commodities[pile.commodity.index()];
            let m = MarketId::refined(pile.commodity);
            let stock = agent.holding(m);
            let cost = Money(((c.holding_cost_per_kg_year.0 as i128 * stock.0 as i128) / tpy as i128) as i64);
            // Poor storage loses three times as much.
            let loss_bp = c.stockpile_loss_bp_per_year * if nation.poor_storage { 3 } else { 1 };
            let loss = stock.scale_floor(loss_bp, 10_000 * tpy);
            agent.cash -= cost;
            cx.ledger.money_out += cost;
            agent.add(m, -loss);
            cx.ledger.goods_destroyed[m.index()] += loss;
            pile.shortage_last_tick = shortage.get(&(id, pile.commodity)).copied().unwrap_or_default();
            let sold = released.get(&(agency, m)).copied().unwrap_or_default();
            pile.ordered_release = (pile.ordered_release - sold).max(Quantity::ZERO).min(agent.holding(m));
            cx.record.stockpiles.push(StockpileRecord {
                nation: id,
                commodity: pile.commodity,
                stock: agent.holding(m),
                target_days: pile.target_days,
                consumption_per_tick: consumption.get(id, pile.commodity),
                holding_cost: cost,
                loss,
            });
        }
        cx.record.treasuries.push((id, agent.cash));
    }
}
