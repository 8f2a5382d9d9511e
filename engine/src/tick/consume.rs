//! Consumption: each manufacturer uses what it wanted of what it holds; the rest of its want
//! is its shortage, recorded by nation, sector and commodity.

use super::Ctx;
use crate::record::ShortageRecord;
use agents::{AgentActions, AgentSpec, MarketId, Quantity};

pub(crate) fn consume(cx: &mut Ctx, actions: &[AgentActions]) {
    cx.record.shortages.reserve_exact(actions.iter().map(|a| a.consume.len()).sum());
    for a in actions.iter().filter(|a| !a.consume.is_empty()) {
        let AgentSpec::Manufacturer { nation, sector, .. } = &cx.scenario.agents[a.agent.index()].spec else {
            continue;
        };
        let agent = &mut cx.state.agents[a.agent.index()];
        for &(commodity, wanted) in &a.consume {
            let m = MarketId::refined(commodity);
            let used = wanted.min(agent.holding(m)).max(Quantity::ZERO);
            agent.add(m, -used);
            cx.ledger.goods_destroyed[m.index()] += used;
            cx.record.shortages.push(ShortageRecord {
                agent: a.agent,
                nation: *nation,
                sector: *sector,
                commodity,
                wanted,
                consumed: used,
            });
        }
    }
}
