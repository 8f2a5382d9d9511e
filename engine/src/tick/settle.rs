//! Settlement: each trade becomes cash and goods changes (tariffs to the governments, freight
//! out of the economy, goods on a lane or waiting for a licence as a shipment), the export
//! ledger and the flows between nations; after a market settles, its prices are recorded.

use super::Ctx;
use crate::market::{self, Zone};
use crate::mechanics::lane_terms;
use crate::record::{FlowKey, MarketRecord};
use crate::world::{AgentState, Shipment};
use agents::{AgentId, MarketId, Money, NationId, Quantity, Tick};

/// One market's settlement, gathered before it is applied: what each agent's cash and holding
/// in the market change by. Trades reach agents in matching order, which on a large world is
/// random order over a state too large for the caches; adding into these dense arrays and then
/// applying each agent's total in agent order gives the same sums (integer addition commutes,
/// and an agent gets its holding entry exactly when a trade would have created it) with far
/// fewer cache misses.
#[derive(Default)]
pub(crate) struct Deltas {
    cash: Vec<Money>,
    goods: Vec<Quantity>,
    /// Whether a trade moved the agent's goods (so its holding entry exists afterwards).
    moves_goods: Vec<bool>,
    seen: Vec<bool>,
    touched: Vec<u32>,
}

impl Deltas {
    fn touch(&mut self, agent: AgentId) -> usize {
        let i = agent.index();
        if i >= self.seen.len() {
            let n = (i + 1).max(self.seen.len() * 2);
            self.cash.resize(n, Money::ZERO);
            self.goods.resize(n, Quantity::ZERO);
            self.moves_goods.resize(n, false);
            self.seen.resize(n, false);
        }
        if !self.seen[i] {
            self.seen[i] = true;
            self.touched.push(agent.0);
        }
        i
    }

    fn cash(&mut self, agent: AgentId, delta: Money) {
        let i = self.touch(agent);
        self.cash[i] += delta;
    }

    fn goods(&mut self, agent: AgentId, delta: Quantity) {
        let i = self.touch(agent);
        self.goods[i] += delta;
        self.moves_goods[i] = true;
    }

    /// Applies everything gathered to `agents` (holdings in `market`) and starts afresh.
    pub fn apply(&mut self, agents: &mut [AgentState], market: MarketId) {
        self.touched.sort_unstable();
        for &a in &self.touched {
            let i = a as usize;
            let agent = &mut agents[i];
            agent.cash += std::mem::take(&mut self.cash[i]);
            if std::mem::take(&mut self.moves_goods[i]) {
                agent.add(market, std::mem::take(&mut self.goods[i]));
            }
            self.seen[i] = false;
        }
        self.touched.clear();
    }
}

/// Settles one trade of `market` into `deltas` (applied once the market is done).
pub(crate) fn settle(cx: &mut Ctx, deltas: &mut Deltas, market: MarketId, t: &market::Trade) {
    let value = t.price.value_of(t.quantity);
    let export_tariff = value.scale_floor(i64::from(t.route.export_tariff_bp), 10_000);
    let import_tariff = value.scale_floor(i64::from(t.route.import_tariff_bp), 10_000);
    // Goods crossing between regions go by lane: they arrive after its transit time (plus any
    // disruption) and the buyer pays the freight on top of the price.
    let (delay, freight) = lane_terms(cx.scenario, cx.state, t.seller_nation, t.buyer_nation, t.quantity);
    let delay = t.route.delay_ticks + delay;
    deltas.goods(t.seller, -t.quantity);
    deltas.cash(t.seller, value - export_tariff);
    deltas.cash(t.buyer, -(value + import_tariff + freight));
    cx.ledger.money_out += freight;
    cx.record.freight += freight;
    // A nation's treasury is its agency's cash; agencies are agents 0..nations.
    if export_tariff != Money::ZERO {
        deltas.cash(AgentId(u32::from(t.seller_nation.0)), export_tariff);
    }
    if import_tariff != Money::ZERO {
        deltas.cash(AgentId(u32::from(t.buyer_nation.0)), import_tariff);
    }
    if delay > 0 {
        let s = Shipment { arrival: Tick(cx.tick.0 + delay), buyer: t.buyer, market, quantity: t.quantity };
        let at = cx.state.shipments.partition_point(|x| x <= &s);
        cx.state.shipments.insert(at, s);
    } else {
        deltas.goods(t.buyer, t.quantity);
    }
    if t.seller_nation != t.buyer_nation {
        cx.state.exports.record(t.seller_nation, market, cx.tick, t.quantity);
    }
    let flow = cx.record.flows.entry(FlowKey { market, from: t.seller_nation, to: t.buyer_nation }).or_default();
    flow.0 += t.quantity;
    flow.1 += value;
    cx.record.tariffs += export_tariff + import_tariff;
}

/// Records `market`'s prices after its auction: the world price (kept from the last trade when
/// nothing traded) and each restricted exporter's domestic price.
pub(crate) fn record_prices(cx: &mut Ctx, market: MarketId, clearing: &market::Clearing, restricted: &[NationId]) {
    let state = &mut cx.state.markets[market.index()];
    if let Some(p) = clearing.zone_prices.get(&Zone::World) {
        state.last_price = *p;
    }
    let previous = std::mem::take(&mut state.domestic_prices);
    for &n in restricted {
        let price = clearing
            .zone_prices
            .get(&Zone::Domestic(n))
            .copied()
            .or_else(|| previous.iter().find(|(m, _)| *m == n).map(|(_, p)| *p))
            .unwrap_or(state.last_price);
        state.domestic_prices.push((n, price));
    }
    state.last_volume = clearing.volume();
    cx.record.markets.push(MarketRecord {
        market,
        price: state.last_price,
        volume: state.last_volume,
        traded: clearing.zone_prices.contains_key(&Zone::World),
        domestic: state.domestic_prices.clone(),
    });
}
