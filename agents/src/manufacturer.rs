//! A manufacturer: a nation's industry in one sector. Each tick it wants to consume its base
//! demand (grown since tick 0, bent by the forecast price through its elasticity, with a little
//! noise), and bids to cover that plus a refill of its working inventory, as a step demand curve
//! that asks for less the higher the price.
//!
//! Floating point appears only inside this heuristic (growth and elasticity need powers); it
//! uses `libm` so results are the same on every platform, and is quantized to whole kilograms
//! before it becomes an action.

use crate::action::{AgentActions, Order, Side};
use crate::decide::Context;
use crate::forecast;
use crate::ids::{CommodityId, MarketId, NationId, Tick};
use crate::observation::{AgentObservation, AgentSpec};
use crate::rng::Purpose;
use crate::units::{Price, Quantity};
use rand::Rng;

/// The price steps of the demand curve, as multiples of the forecast (basis points), highest first.
const STEPS_BP: [i64; 8] = [40_000, 25_000, 16_000, 12_500, 11_000, 10_000, 9_000, 8_000];
/// How many ticks it takes to refill the working inventory.
const REFILL_TICKS: i64 = 4;
/// Week-to-week demand noise: uniform within ±this many basis points.
const NOISE_BP: i64 = 300;
/// Pre-buying: when an announced export restriction will hit its imports of a commodity (at
/// either stage) within this many ticks, a manufacturer builds its working inventory up to
/// `PREBUY_FACTOR` times the usual; while one is in force, up to `PRECAUTION_FACTOR` times.
/// How far up depends on the share of supply the restrictor holds.
const PREBUY_TICKS: u32 = 10;
const PREBUY_FACTOR: i64 = 3;
const PRECAUTION_FACTOR: i64 = 2;

/// Base demand per tick for `base_per_tick` at tick 0, grown at `growth_bp_per_year`.
pub fn grown_demand(base_per_tick: Quantity, growth_bp_per_year: i32, tick: Tick, ticks_per_year: u32) -> Quantity {
    grow(base_per_tick, growth_factor(growth_bp_per_year, tick, ticks_per_year))
}

/// How much demand has grown by `tick` at `growth_bp_per_year`, compounded.
pub fn growth_factor(growth_bp_per_year: i32, tick: Tick, ticks_per_year: u32) -> f64 {
    let years = f64::from(tick.0) / f64::from(ticks_per_year.max(1));
    libm::pow(1.0 + f64::from(growth_bp_per_year) / 10_000.0, years)
}

/// `base_per_tick` grown by `factor`, floored to whole kilograms.
pub fn grow(base_per_tick: Quantity, factor: f64) -> Quantity {
    quantize(base_per_tick.0 as f64 * factor)
}

/// Demand multiplier at `price` relative to `reference`: (price/reference)^(-elasticity).
fn elastic_factor(price: Price, reference: Price, elasticity_milli: u32) -> f64 {
    if price.0 <= 0 || reference.0 <= 0 {
        return 1.0;
    }
    let ratio = price.0 as f64 / reference.0 as f64;
    libm::pow(ratio, -f64::from(elasticity_milli) / 1000.0)
}

fn quantize(x: f64) -> Quantity {
    if x.is_finite() && x > 0.0 { Quantity(libm::floor(x.min(i64::MAX as f64 / 2.0)) as i64) } else { Quantity::ZERO }
}

pub fn decide(spec: &AgentSpec, obs: &AgentObservation, ctx: &Context) -> AgentActions {
    let AgentSpec::Manufacturer {
        nation,
        demand_per_tick,
        growth_bp_per_year,
        elasticity_milli,
        inventory_target_ticks,
        ..
    } = spec
    else {
        unreachable!("manufacturer::decide is only called for manufacturers");
    };
    let mut memory = obs.memory.clone();
    let mut orders = Vec::with_capacity(demand_per_tick.len() * STEPS_BP.len());
    let mut consume = Vec::with_capacity(demand_per_tick.len());
    let mut noise = ctx.streams.stream(obs.agent, ctx.tick(), Purpose::DemandNoise);
    let growth = growth_factor(*growth_bp_per_year, ctx.tick(), ctx.public.ticks_per_year);
    for &(commodity, base) in demand_per_tick {
        let market = MarketId::refined(commodity);
        let view = ctx.public.market(market);
        let forecast = forecast::update(&mut memory, ctx.public, market, *nation);
        // Substitution and thrifting lower the commodity's intensity over time.
        let grown = grow(base, growth).scale_floor(i64::from(obs.intensity(commodity)), 10_000);
        let noise_bp = noise.random_range(-NOISE_BP..=NOISE_BP);
        let wanted = quantize(
            grown.0 as f64
                * elastic_factor(forecast, view.reference, *elasticity_milli)
                * (1.0 + noise_bp as f64 / 10_000.0),
        );
        consume.push((commodity, wanted));

        let inventory = obs.holding(market) + beyond_pipeline(obs.incoming(market), wanted);
        let target_bp = i64::from(*inventory_target_ticks) * precaution_bp(ctx.public, commodity, *nation);
        let target = Quantity(wanted.0.saturating_mul(target_bp) / 10_000);
        let need = wanted + (target - inventory).scale_floor(1, REFILL_TICKS);
        if need.is_positive() {
            push_demand_curve(&mut orders, commodity, need, forecast, *elasticity_milli, ctx, obs);
        }
    }
    AgentActions { agent: obs.agent, memory, orders, produce: Quantity::ZERO, consume }
}

/// How much of its usual working inventory (basis points) a manufacturer in `nation` wants of
/// `commodity`, given the restrictions announced and in force on its ore and refined markets:
/// 1 + (factor - 1) x the restrictor's share of supply.
fn precaution_bp(public: &crate::observation::PublicView, commodity: CommodityId, nation: NationId) -> i64 {
    if public.announcements.is_empty() {
        return 10_000;
    }
    let markets = [MarketId::refined(commodity), MarketId::ore(commodity)];
    let ahead = markets.iter().map(|m| public.restriction_ahead(*m, nation, PREBUY_TICKS)).max().unwrap_or(0);
    let now = markets.iter().map(|m| public.restricted_now(*m, nation)).max().unwrap_or(0);
    let up = ((PREBUY_FACTOR - 1) * i64::from(ahead)).max((PRECAUTION_FACTOR - 1) * i64::from(now));
    10_000 + up
}

/// Goods in transit count toward a buyer's inventory only beyond a normal pipeline of
/// `PIPELINE_TICKS` ticks of use: what is at sea is not on the shelf, and a buyer with a long
/// supply line keeps its working inventory on hand as well.
pub fn beyond_pipeline(incoming: Quantity, per_tick: Quantity) -> Quantity {
    (incoming - Quantity(per_tick.0.saturating_mul(PIPELINE_TICKS))).max(Quantity::ZERO)
}

const PIPELINE_TICKS: i64 = 8;

/// Bids `need` at the forecast price as a step curve: at each step's price the cumulative
/// quantity bid is `need * (step/forecast)^(-elasticity)`.
fn push_demand_curve(
    orders: &mut Vec<Order>,
    commodity: CommodityId,
    need: Quantity,
    forecast: Price,
    elasticity_milli: u32,
    ctx: &Context,
    obs: &AgentObservation,
) {
    let market = MarketId::refined(commodity);
    let view = ctx.public.market(market);
    let mut bid_so_far = Quantity::ZERO;
    for step_bp in STEPS_BP {
        let price = forecast.scale_floor(step_bp, 10_000);
        let price = ctx.jitter(obs, price, 20).clamp(view.price_min, view.price_max);
        let cumulative = quantize(need.0 as f64 * elastic_factor(price, forecast, elasticity_milli));
        let quantity = cumulative - bid_so_far;
        if quantity.is_positive() {
            orders.push(Order { market, side: Side::Buy, quantity, limit: price, domestic_only: false });
            bid_so_far = cumulative;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_grows_and_bends_with_price() {
        let q = grown_demand(Quantity(1_000), 1_000, Tick(52), 52);
        assert_eq!(q, Quantity(1_100));
        assert!(elastic_factor(Price(200), Price(100), 200) < 1.0);
        assert!(elastic_factor(Price(50), Price(100), 200) > 1.0);
    }
}
