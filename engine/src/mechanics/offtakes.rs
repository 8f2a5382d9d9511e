//! Offtake contracts: before a market clears, each contract takes its share of what its site
//! offers, at its formula price (a share of the price the site faces), if the host's
//! restrictions allow the route (a ban blocks it, a quota counts it, licensing delays it).

use crate::market::{self, BookOrder, Rules, Zone};
use crate::scenario::Offtake;
use crate::tick::Ctx;
use crate::tick::settle::{Deltas, settle};
use agents::{AgentSpec, MarketId, Money, Price, Quantity};

/// Runs `market`'s offtakes: each takes from its site's asks (which shrink by what it took)
/// and settles at once.
pub(crate) fn offtakes(
    cx: &mut Ctx,
    deltas: &mut Deltas,
    market: MarketId,
    rules: &dyn Rules,
    quotas: &mut [Quantity],
    asks: &mut [BookOrder],
) {
    let s = cx.scenario;
    for o in &s.offtakes {
        let product = match &s.agents[o.site.index()].spec {
            AgentSpec::Miner { commodity, .. } => MarketId::ore(*commodity),
            AgentSpec::Refiner { commodity, .. } => MarketId::refined(*commodity),
            AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => continue,
        };
        if product != market {
            continue;
        }
        let Some(trade) = contract_trade(cx, o, market, rules, quotas, asks) else { continue };
        let mut left = trade.quantity;
        for a in asks.iter_mut().rev().filter(|a| a.agent == o.site) {
            let cut = left.min(a.quantity);
            a.quantity -= cut;
            left -= cut;
        }
        settle(cx, deltas, market, &trade);
        deltas.apply(&mut cx.state.agents, market);
    }
}

/// What contract `o` takes this tick, if anything: its share of the site's offer, within the
/// route's quota and (for an agency) its treasury.
fn contract_trade(
    cx: &Ctx,
    o: &Offtake,
    market: MarketId,
    rules: &dyn Rules,
    quotas: &mut [Quantity],
    asks: &[BookOrder],
) -> Option<market::Trade> {
    let s = cx.scenario;
    let offered: Quantity = asks.iter().filter(|a| a.agent == o.site).map(|a| a.quantity).sum();
    let mut quantity = offered.scale_floor(i64::from(o.share_bp), 10_000);
    let (seller_nation, buyer_nation) =
        (s.agents[o.site.index()].spec.nation(), s.agents[o.buyer.index()].spec.nation());
    let route = if seller_nation == buyer_nation {
        market::Route { allowed: true, ..market::Route::default() }
    } else {
        rules.route(seller_nation, buyer_nation)
    };
    if !route.allowed {
        return None;
    }
    if let Some(k) = route.quota {
        quantity = quantity.min(quotas[k]);
    }
    let m = &cx.state.markets[market.index()];
    let faced = m.domestic_prices.iter().find(|(n, _)| *n == seller_nation).map_or(m.last_price, |(_, p)| *p);
    let price = faced.scale_floor(i64::from(o.price_bp), 10_000).max(Price(1));
    if matches!(s.agents[o.buyer.index()].spec, AgentSpec::Nation { .. }) {
        quantity = quantity.min(price.affordable(cx.state.agents[o.buyer.index()].cash.max(Money::ZERO)));
    }
    if !quantity.is_positive() {
        return None;
    }
    if let Some(k) = route.quota {
        quotas[k] -= quantity;
    }
    Some(market::Trade {
        buyer: o.buyer,
        buyer_nation,
        seller: o.site,
        seller_nation,
        quantity,
        price,
        route,
        zone: Zone::World,
    })
}
