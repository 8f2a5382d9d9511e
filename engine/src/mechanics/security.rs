//! Stockpile security: the nations' security and research spending, and theft and accidents at
//! stockpiles (the risk falls with security spending; poor storage raises it and what an
//! incident costs).

use crate::record::Occurrence;
use crate::tick::Ctx;
use agents::rng::{Purpose, Rng};
use agents::{AgentId, MarketId, Money, NationId};

/// Yearly probability (basis points) of theft or an accident at a stockpile, good and poor
/// storage, before security spending; and the share of the stock it costs.
const RISK_BP_PER_YEAR: [i64; 2] = [200, 1_000];
const RISK_LOSS_BP: [i64; 2] = [500, 2_000];
/// Security spending of this much a year halves the risk (and twice as much thirds it).
const SECURITY_HALVES: Money = Money(10_000_000 * 100);

pub(crate) fn stockpile_security(cx: &mut Ctx) {
    let tpy = i64::from(cx.scenario.ticks_per_year.max(1));
    for n in 0..cx.scenario.nations.len() {
        let spec = &cx.scenario.nations[n];
        let rd: Money = cx.state.nations[n].rd_per_year.iter().map(|(_, m)| *m).sum();
        let spend = spec.security_per_year.scale_floor(1, tpy) + rd.scale_floor(1, tpy);
        if spend.is_positive() {
            cx.state.agents[n].cash -= spend;
            cx.ledger.money_out += spend;
        }
        if !cx.state.nations[n].stockpiles.is_empty() {
            incidents(cx, NationId(n as u16));
        }
    }
}

/// Draws for theft or an accident at each of `nation`'s stockpiles.
fn incidents(cx: &mut Ctx, nation: NationId) {
    let tpy = i64::from(cx.scenario.ticks_per_year.max(1));
    let spec = &cx.scenario.nations[nation.index()];
    let poor = usize::from(spec.poor_storage);
    // Per-tick probability in parts per billion.
    let ppb = RISK_BP_PER_YEAR[poor] * 100_000 / tpy * SECURITY_HALVES.0
        / (SECURITY_HALVES.0 + spec.security_per_year.0.max(0));
    let agency = nation.index();
    let mut rng = cx.streams.stream(AgentId(agency as u32), cx.tick, Purpose::StockpileRisk);
    for p in 0..cx.state.nations[agency].stockpiles.len() {
        let commodity = cx.state.nations[agency].stockpiles[p].commodity;
        let market = MarketId::refined(commodity);
        let draw: i64 = rng.random_range(0..1_000_000_000);
        let stock = cx.state.agents[agency].holding(market);
        if draw >= ppb || !stock.is_positive() {
            continue;
        }
        let lost = stock.scale_floor(RISK_LOSS_BP[poor], 10_000);
        cx.state.agents[agency].add(market, -lost);
        cx.ledger.goods_destroyed[market.index()] += lost;
        cx.record.events.push((cx.tick, Occurrence::StockpileLoss { nation, commodity, lost }));
    }
}
