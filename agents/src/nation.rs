//! A nation's stockpile agency. For each commodity it has a policy for, it buys toward a target
//! in days of domestic consumption while the price is below its buy ceiling and its treasury
//! allows, and releases to domestic buyers when the price passes its trigger, when domestic
//! industry went short last tick, or when policy orders a release.

use crate::action::{AgentActions, Order, Side};
use crate::decide::Context;
use crate::forecast;
use crate::ids::{MarketId, NationId};
use crate::observation::{AgentObservation, StockpileView};
use crate::units::{Money, Quantity};

/// A reserve fills over this many ticks at most (about half a year of weekly ticks).
const FILL_TICKS: i64 = 26;
/// A forecast this far from last tick's price (basis points) counts as an expected move.
const EXPECT_BP: i64 = 11_000;
/// And releases at most this share of its target per tick, unless shortage demands more.
const RELEASE_TICKS: i64 = 8;

pub fn decide(nation: NationId, obs: &AgentObservation, ctx: &Context) -> AgentActions {
    let mut memory = obs.memory.clone();
    let mut orders = Vec::new();
    // What is left of the treasury after earlier reserves' bids (in commodity order) this tick.
    let mut budget = obs.cash.max(Money::ZERO);
    for pile in &obs.stockpiles {
        let market = MarketId::refined(pile.commodity);
        let forecast = forecast::update(&mut memory, ctx.public, market, nation);
        let view = ctx.public.market(market);
        let last = view.price_for(nation);
        let target = target_kg(pile, ctx.public.tick_days);
        // Goods already bought and on their way count toward the target.
        let position = pile.stock + obs.incoming(market);
        // The nation's own forecast (its skill sets horizon and noise): a rise it expects makes
        // it buy sooner and pay a little more; a fall it expects makes it wait.
        let expects_rise = pile.price_forecast.0 as i128 * 10_000 > last.0 as i128 * i128::from(EXPECT_BP);
        let expects_fall = pile.price_forecast.0 as i128 * i128::from(EXPECT_BP) < last.0 as i128 * 10_000;
        let trigger = view.reference.scale_floor(i64::from(pile.release_price_bp), 10_000);
        let short = pile.release_on_shortage && pile.shortage_last_tick.is_positive();
        if pile.stock.is_positive() && (pile.ordered_release.is_positive() || short || last >= trigger) {
            let quota = target.scale_floor(1, RELEASE_TICKS).max(pile.shortage_last_tick).max(pile.ordered_release);
            let quantity = pile.stock.min(quota);
            // Releases are priced to sell: just under last tick's domestic price.
            let limit = last.scale_floor(9_500, 10_000).clamp(view.price_min, view.price_max);
            orders.push(Order { market, side: Side::Sell, quantity, limit, domestic_only: true });
            continue;
        }
        let ceiling = view.reference.scale_floor(i64::from(pile.buy_max_price_bp), 10_000);
        let (fill_ticks, premium_bp) = if expects_rise { (FILL_TICKS / 2, 10_500) } else { (FILL_TICKS, 10_200) };
        if position < target && forecast <= ceiling && !expects_fall {
            let limit = forecast.scale_floor(premium_bp, 10_000).min(ceiling).clamp(view.price_min, view.price_max);
            let gap = target - position;
            let wanted = gap.scale_floor(1, fill_ticks).max(gap.min(Quantity(1)));
            let quantity = wanted.min(limit.affordable(budget));
            if quantity.is_positive() {
                budget -= limit.value_of(quantity);
                orders.push(Order { market, side: Side::Buy, quantity, limit, domestic_only: false });
            }
        }
    }
    AgentActions { agent: obs.agent, memory, orders, produce: Quantity::ZERO, consume: Vec::new() }
}

/// The stockpile target in kilograms: target days of current domestic consumption.
pub fn target_kg(pile: &StockpileView, tick_days: u32) -> Quantity {
    pile.consumption_per_tick.scale_floor(i64::from(pile.target_days), i64::from(tick_days.max(1)))
}

/// Days of cover a stock gives at a consumption rate, in tenths of a day, rounded down.
pub fn cover_tenths_of_days(stock: Quantity, consumption_per_tick: Quantity, tick_days: u32) -> Option<i64> {
    if consumption_per_tick.0 <= 0 {
        return None;
    }
    Some((stock.0 as i128 * i128::from(tick_days) * 10 / consumption_per_tick.0 as i128) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CommodityId;
    use crate::rng::Streams;
    use crate::testing::{observation, public};
    use crate::units::Price;

    fn pile(stock: i64, shortage: i64) -> StockpileView {
        StockpileView {
            commodity: CommodityId(0),
            stock: Quantity(stock),
            target_days: 70,
            buy_max_price_bp: 11_000,
            release_price_bp: 25_000,
            release_on_shortage: true,
            consumption_per_tick: Quantity(1_000),
            shortage_last_tick: Quantity(shortage),
            ordered_release: Quantity::ZERO,
            price_forecast: Price(3_000),
            demand_forecast: Quantity(1_000),
        }
    }

    fn decide_with(cash: i64, pile: StockpileView, refined_price: i64) -> AgentActions {
        let public = public(2_000, refined_price);
        let mut obs = observation(0, cash, 0);
        obs.stockpiles = vec![pile];
        let spec = crate::observation::AgentSpec::Nation { nation: NationId(0) };
        crate::decide(&spec, &obs, &public, &Streams::new(1))
    }

    #[test]
    fn an_agency_below_target_buys_a_share_of_the_gap_within_its_treasury() {
        // Target: 70 days of 1,000 kg a week = 10,000 kg; it holds 0 and fills over 26 ticks.
        let a = decide_with(1_000_000_000, pile(0, 0), 3_000);
        let [buy] = &a.orders[..] else { panic!("one bid: {:?}", a.orders) };
        assert_eq!((buy.side, buy.quantity), (Side::Buy, Quantity(10_000 / 26)));
        let poor = decide_with(100, pile(0, 0), 3_000);
        assert!(poor.orders.iter().all(|o| o.limit.value_of(o.quantity) <= Money(100)));
    }

    #[test]
    fn an_agency_releases_when_its_industry_went_short_and_not_above_the_ceiling_buys() {
        let a = decide_with(1_000_000_000, pile(5_000, 700), 3_000);
        let [sell] = &a.orders[..] else { panic!("one release: {:?}", a.orders) };
        assert_eq!(sell.side, Side::Sell);
        assert!(sell.domestic_only, "a release goes to its own industry");
        assert!(sell.quantity >= Quantity(700));
        let dear = decide_with(1_000_000_000, pile(0, 0), 3_400);
        assert!(dear.orders.is_empty(), "the price is above 110% of the reference: {:?}", dear.orders);
    }
}
