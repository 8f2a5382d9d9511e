//! A refiner: keeps a few ticks of ore on hand, bids for ore up to the price its refined
//! forecast can bear, refines what it holds up to capacity, and offers its refined stock.

use crate::action::{AgentActions, Order, Side};
use crate::decide::Context;
use crate::forecast;
use crate::ids::MarketId;
use crate::observation::{AgentObservation, AgentSpec};
use crate::units::{BP_PER_ONE, Price, Quantity};

pub fn decide(spec: &AgentSpec, obs: &AgentObservation, ctx: &Context) -> AgentActions {
    let AgentSpec::Refiner { nation, commodity, unit_cost, yield_bp, ore_target_ticks, hoard_ticks, .. } = spec else {
        unreachable!("refiner::decide is only called for refiners");
    };
    let capacity_per_tick = &obs.capacity;
    let ore = MarketId::ore(*commodity);
    let refined = MarketId::refined(*commodity);
    let mut memory = obs.memory.clone();
    let ore_forecast = forecast::update(&mut memory, ctx.public, ore, *nation);
    let refined_forecast = forecast::update(&mut memory, ctx.public, refined, *nation);
    // Processor stockpiling: when the refined price runs well ahead of its smoothed forecast (a
    // rising market), a refiner expects more of the same, so it hoards — it keeps back half its
    // refined stock (at most a few ticks of output), asks more for the rest, and doubles its ore
    // buffer — until the trend turns.
    let last_refined = ctx.public.market(refined).price_for(*nation);
    // A restriction on its ore supply (in force or announced) is read the same way.
    let rising = *hoard_ticks > 0
        && (last_refined.0 as i128 * 10_000 > refined_forecast.0 as i128 * i128::from(HOARD_TRIGGER_BP)
            || ctx.public.restricted_now(ore, *nation) >= HOARD_SHARE_BP
            || ctx.public.restriction_ahead(ore, *nation, HOARD_AHEAD_TICKS) >= HOARD_SHARE_BP);
    let ore_target_ticks = if rising { ore_target_ticks.saturating_mul(2) } else { *ore_target_ticks };
    let yield_bp = i64::from((*yield_bp).max(1));

    let ore_on_hand = obs.holding(ore);
    let refined_on_hand = obs.holding(refined);
    let max_from_ore = ore_on_hand.scale_floor(yield_bp, BP_PER_ONE);
    // Refining at a loss only at half rate, like a miner below cost.
    let margin_ok = refined_forecast >= unit_cost_with_ore(*unit_cost, ore_forecast, yield_bp);
    // A refinery whose warehouse is nearly empty keeps refining at a thin margin: it sells all it
    // makes, and cutting then would starve its buyers while the price catches up.
    let nearly_empty = refined_on_hand < Quantity(capacity_per_tick.0.saturating_mul(2));
    let rate = if margin_ok || nearly_empty { *capacity_per_tick } else { capacity_per_tick.scale_floor(1, 2) };
    // Like a mine's yard, its warehouse holds at most `STOCK_CAP_TICKS` of output (hoarding
    // aside): beyond that it refines only what it sells.
    let stock_cap = Quantity(capacity_per_tick.0.saturating_mul(STOCK_CAP_TICKS + i64::from(*hoard_ticks)));
    let produce = rate.min(max_from_ore).min((stock_cap - refined_on_hand).max(Quantity::ZERO));

    let mut orders = Vec::new();
    // Ore for a full run next tick plus a buffer of `ore_target_ticks` runs.
    let ore_per_run = capacity_per_tick.scale_floor(BP_PER_ONE, yield_bp);
    let ore_left = ore_on_hand + crate::manufacturer::beyond_pipeline(obs.incoming(ore), ore_per_run)
        - produce.scale_floor(BP_PER_ONE, yield_bp);
    let ore_target = Quantity(ore_per_run.0.saturating_mul(i64::from(ore_target_ticks) + 1));
    let ore_wanted = (ore_target - ore_left).max(Quantity::ZERO);
    if ore_wanted.is_positive() {
        let ore_view = ctx.public.market(ore);
        // The most it can pay for ore and still break even on refining at the forecast price.
        let bearable = (refined_forecast - *unit_cost).scale_floor(yield_bp, BP_PER_ONE);
        let urgent = ore_per_run.min(ore_wanted);
        let urgent_limit = bearable.min(ore_forecast.scale_floor(13_000, 10_000)).max(Price(1));
        let top_up_limit = bearable.min(ore_forecast).max(Price(1));
        orders.push(Order {
            market: ore,
            side: Side::Buy,
            quantity: urgent,
            limit: ctx.jitter(obs, urgent_limit, 30).clamp(ore_view.price_min, ore_view.price_max),
            domestic_only: false,
        });
        if ore_wanted > urgent {
            orders.push(Order {
                market: ore,
                side: Side::Buy,
                quantity: ore_wanted - urgent,
                limit: top_up_limit.clamp(ore_view.price_min, ore_view.price_max),
                domestic_only: false,
            });
        }
    }
    let available = refined_on_hand + produce;
    // A hoarder keeps back half of what it has, up to `hoard_ticks` of output.
    let (available, ask_base) = if rising {
        let kept =
            available.scale_floor(1, 2).min(Quantity(capacity_per_tick.0.saturating_mul(i64::from(*hoard_ticks))));
        (available - kept, refined_forecast.scale_floor(10_000 + HOARD_PREMIUM_BP, 10_000))
    } else {
        (available, refined_forecast)
    };
    if available.is_positive() {
        let view = ctx.public.market(refined);
        let discount = crate::forecast::stock_discount_bp(refined_on_hand, stock_cap);
        let ask = ask_base.scale_floor(10_000 - discount, 10_000).max(*unit_cost);
        orders.push(Order {
            market: refined,
            side: Side::Sell,
            quantity: available,
            limit: ctx.jitter(obs, ask, 30).clamp(view.price_min, view.price_max),
            domestic_only: false,
        });
    }
    AgentActions { agent: obs.agent, memory, orders, produce, consume: Vec::new() }
}

/// A hoarder asks this much above its forecast for what it does sell (basis points).
const HOARD_PREMIUM_BP: i64 = 1_000;
/// An ore restriction announced this close ahead sets a hoarder hoarding.
const HOARD_AHEAD_TICKS: u32 = 10;
/// ... when the restrictor holds at least this share of the ore trade (basis points).
const HOARD_SHARE_BP: u32 = 5_000;
/// A refinery keeps at most this many ticks of output unsold.
const STOCK_CAP_TICKS: i64 = 8;

/// A refined price this far above the forecast (basis points of it) reads as a rising market.
const HOARD_TRIGGER_BP: i64 = 11_500;

/// Full cost of a kilogram of refined product: processing plus the ore it takes.
fn unit_cost_with_ore(processing: Price, ore: Price, yield_bp: i64) -> Price {
    processing + ore.scale_floor(BP_PER_ONE, yield_bp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CommodityId, NationId};
    use crate::rng::Streams;
    use crate::testing::{observation, public};

    fn refinery() -> AgentSpec {
        AgentSpec::Refiner {
            nation: NationId(0),
            commodity: CommodityId(0),
            capacity_per_tick: Quantity(1_000),
            unit_cost: Price(500),
            yield_bp: 10_000,
            ore_target_ticks: 2,
            hoard_ticks: 0,
        }
    }

    fn decide_with(ore: i64, refined_stock: i64) -> AgentActions {
        let public = public(2_000, 3_000);
        let streams = Streams::new(1);
        let mut obs = observation(8, 0, 1_000);
        obs.holdings.set(MarketId::ore(CommodityId(0)), Quantity(ore));
        obs.holdings.set(MarketId::refined(CommodityId(0)), Quantity(refined_stock));
        crate::decide(&refinery(), &obs, &public, &streams)
    }

    #[test]
    fn a_refinery_refines_what_its_ore_allows_and_buys_ore_to_its_target() {
        let a = decide_with(600, 0);
        assert_eq!(a.produce, Quantity(600), "ore on hand limits the run");
        let bought: Quantity = a.orders.iter().filter(|o| o.side == Side::Buy).map(|o| o.quantity).sum();
        // A run next tick plus two ticks' buffer: 3,000 kg of ore, none of it left.
        assert_eq!(bought, Quantity(3_000));
        let bearable = Price(3_000 - 500);
        assert!(
            a.orders.iter().filter(|o| o.side == Side::Buy).all(|o| o.limit <= bearable.scale_floor(10_030, 10_000))
        );
    }

    #[test]
    fn a_full_warehouse_refines_nothing_more_and_offers_its_stock() {
        let a = decide_with(5_000, 8_000);
        assert_eq!(a.produce, Quantity::ZERO, "eight ticks of output unsold");
        let sold: Quantity = a.orders.iter().filter(|o| o.side == Side::Sell).map(|o| o.quantity).sum();
        assert_eq!(sold, Quantity(8_000));
    }
}
