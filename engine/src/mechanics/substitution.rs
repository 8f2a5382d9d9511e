//! Substitution and thrifting: once a quarter, manufacturers whose forecast of a commodity
//! stays above its substitution trigger use less of it, down to the floor; research funding by
//! their nation speeds this up.

use crate::tick::Ctx;
use agents::{AgentSpec, MarketId, Money, Stage};

/// Research funding of this much a year doubles the speed of substitution.
const RD_DOUBLES: Money = Money(50_000_000 * 100);

pub(crate) fn substitute(cx: &mut Ctx) {
    let s = cx.scenario;
    for (i, def) in s.agents.iter().enumerate() {
        let AgentSpec::Manufacturer { nation, .. } = &def.spec else { continue };
        let rd = &cx.state.nations[nation.index()].rd_per_year;
        let markets = &cx.state.markets;
        let agent = &mut cx.state.agents[i];
        for d in &mut agent.demand {
            let spec = &s.commodities[d.commodity.index()];
            let market = MarketId::refined(d.commodity);
            let forecast = agent.memory.forecast(market).unwrap_or(markets[market.index()].last_price);
            let reference = spec.stages[Stage::Refined as usize].reference;
            if i128::from(forecast.0) * 10_000 < i128::from(reference.0) * i128::from(spec.substitution_trigger_bp) {
                continue;
            }
            let funding = rd.iter().find(|(c, _)| *c == d.commodity).map_or(Money::ZERO, |(_, m)| *m);
            let speed_bp = 10_000 + (funding.0 as i128 * 10_000 / RD_DOUBLES.0 as i128).min(40_000) as i64;
            let per_quarter = i64::from(spec.substitution_bp_per_year) * speed_bp / 10_000 / 4;
            let cut = i64::from(d.intensity_bp) * per_quarter / 10_000;
            d.intensity_bp = (i64::from(d.intensity_bp) - cut.max(1)).max(i64::from(spec.substitution_floor_bp)) as u32;
        }
    }
}
