//! A miner: mines ore up to capacity while the price covers its cost and its yard has room, and
//! offers everything it holds at a price near its forecast, lower the fuller its yard.

use crate::action::{AgentActions, Order, Side};
use crate::decide::Context;
use crate::forecast;
use crate::ids::MarketId;
use crate::observation::{AgentObservation, AgentSpec};
use crate::units::Quantity;

pub fn decide(spec: &AgentSpec, obs: &AgentObservation, ctx: &Context) -> AgentActions {
    let AgentSpec::Miner { nation, commodity, unit_cost, inventory_cap_ticks, .. } = spec else {
        unreachable!("miner::decide is only called for miners");
    };
    // Capacity changes with investment and outages: the observation has today's.
    let capacity_per_tick = &obs.capacity;
    let market = MarketId::ore(*commodity);
    let mut memory = obs.memory.clone();
    let forecast = forecast::update(&mut memory, ctx.public, market, *nation);
    let inventory = obs.holding(market);
    let cap = Quantity(capacity_per_tick.0.saturating_mul(i64::from((*inventory_cap_ticks).max(1))));

    // Below cost a mine runs at half rate rather than stopping: closing and reopening a mine is
    // slow and costly, and half rate is the usual first response.
    let rate = if forecast >= *unit_cost { *capacity_per_tick } else { capacity_per_tick.scale_floor(1, 2) };
    let produce = rate.min((cap - inventory).max(Quantity::ZERO));

    let available = inventory + produce;
    let mut orders = Vec::new();
    if available.is_positive() {
        let ask = forecast.scale_floor(10_000 - crate::forecast::stock_discount_bp(inventory, cap), 10_000);
        let view = ctx.public.market(market);
        let ask = ctx.jitter(obs, ask, 30).max(*unit_cost).clamp(view.price_min, view.price_max);
        orders.push(Order { market, side: Side::Sell, quantity: available, limit: ask, domestic_only: false });
    }
    AgentActions { agent: obs.agent, memory, orders, produce, consume: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CommodityId, NationId};
    use crate::rng::Streams;
    use crate::testing::{observation, public};
    use crate::units::Price;

    fn mine(unit_cost: i64) -> AgentSpec {
        AgentSpec::Miner {
            nation: NationId(0),
            commodity: CommodityId(0),
            capacity_per_tick: Quantity(1_000),
            unit_cost: Price(unit_cost),
            inventory_cap_ticks: 4,
        }
    }

    fn decide_at(spec: &AgentSpec, ore_price: i64, stock: i64) -> AgentActions {
        let public = public(ore_price, ore_price * 2);
        let streams = Streams::new(1);
        let mut obs = observation(5, 0, 1_000);
        obs.holdings.set(MarketId::ore(CommodityId(0)), Quantity(stock));
        crate::decide(spec, &obs, &public, &streams)
    }

    #[test]
    fn a_mine_runs_full_above_cost_and_at_half_below() {
        assert_eq!(decide_at(&mine(1_000), 2_000, 0).produce, Quantity(1_000));
        assert_eq!(decide_at(&mine(3_000), 2_000, 0).produce, Quantity(500));
    }

    #[test]
    fn a_full_yard_stops_production_and_everything_held_is_offered_no_lower_than_cost() {
        let a = decide_at(&mine(1_000), 2_000, 4_000);
        assert_eq!(a.produce, Quantity::ZERO, "four ticks of output already in the yard");
        let [sell] = &a.orders[..] else { panic!("one sell order: {:?}", a.orders) };
        assert_eq!((sell.side, sell.quantity), (Side::Sell, Quantity(4_000)));
        let below = decide_at(&mine(5_000), 2_000, 100);
        assert!(below.orders.iter().all(|o| o.limit >= Price(5_000)), "never asks below cost: {:?}", below.orders);
    }
}
