//! Production: mines add ore, refineries turn ore into refined product, each paying its unit
//! cost; output and emissions are recorded by host nation.

use super::Ctx;
use agents::{AgentActions, AgentSpec, MarketId, Quantity, Stage};

pub(crate) fn produce(cx: &mut Ctx, actions: &[AgentActions]) {
    for a in actions.iter().filter(|a| a.produce.is_positive()) {
        let spec = &cx.scenario.agents[a.agent.index()].spec;
        let (commodity, stage) = match spec {
            AgentSpec::Miner { commodity, .. } => (*commodity, Stage::Ore),
            AgentSpec::Refiner { commodity, .. } => (*commodity, Stage::Refined),
            AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => continue,
        };
        *cx.record.production.entry((spec.nation(), MarketId::new(commodity, stage))).or_default() += a.produce;
        if let Some(site) = cx.scenario.site(a.agent) {
            let kg = (i128::from(a.produce.0) * i128::from(site.emissions_g_per_kg) / 1000) as i64;
            *cx.record.emissions.entry(spec.nation()).or_default() += kg;
        }
        match spec {
            AgentSpec::Miner { unit_cost, .. } => mine(cx, a, commodity, *unit_cost),
            AgentSpec::Refiner { unit_cost, yield_bp, .. } => refine(cx, a, commodity, *unit_cost, *yield_bp),
            AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => {}
        }
    }
}

fn mine(cx: &mut Ctx, a: &AgentActions, commodity: agents::CommodityId, unit_cost: agents::Price) {
    let agent = &mut cx.state.agents[a.agent.index()];
    let m = MarketId::ore(commodity);
    agent.add(m, a.produce);
    cx.ledger.goods_created[m.index()] += a.produce;
    let cost = unit_cost.value_of(a.produce);
    agent.cash -= cost;
    cx.ledger.money_out += cost;
}

fn refine(cx: &mut Ctx, a: &AgentActions, commodity: agents::CommodityId, unit_cost: agents::Price, yield_bp: u32) {
    let agent = &mut cx.state.agents[a.agent.index()];
    let ore = MarketId::ore(commodity);
    let refined = MarketId::refined(commodity);
    // Ore used, rounded up so refining never makes material from nothing.
    let y = i128::from(yield_bp.max(1));
    let used = Quantity(((a.produce.0 as i128 * 10_000 + y - 1) / y) as i64).min(agent.holding(ore));
    agent.add(ore, -used);
    agent.add(refined, a.produce);
    cx.ledger.goods_destroyed[ore.index()] += used;
    cx.ledger.goods_created[refined.index()] += a.produce;
    let cost = unit_cost.value_of(a.produce);
    agent.cash -= cost;
    cx.ledger.money_out += cost;
}
