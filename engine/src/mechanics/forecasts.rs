//! Forecasting skill: each nation forecasts the domestic price and consumption of every
//! commodity it stockpiles at its horizon, blurred by its noise. The forecasts are in its
//! agency's observation (and shown to players).

use super::TREND_TICKS;
use crate::scenario::Scenario;
use crate::world::{Consumption, WorldState, domestic_consumption};
use agents::rng::{Purpose, Rng, Streams};
use agents::{AgentId, MarketId, NationId, Tick};

pub(crate) fn make_forecasts(
    s: &Scenario,
    state: &mut WorldState,
    streams: &Streams,
    tick: Tick,
    consumption: &Consumption,
) {
    // Consumption at each horizon in use, computed once.
    let mut ahead: Vec<(u32, Consumption)> = Vec::new();
    for n in 0..s.nations.len() {
        if state.nations[n].stockpiles.is_empty() {
            continue;
        }
        let horizon = s.nations[n].forecast_horizon_ticks;
        if !ahead.iter().any(|(h, _)| *h == horizon) {
            let later = if horizon == 0 {
                consumption.clone()
            } else {
                domestic_consumption(s, state, Tick(tick.0.saturating_add(horizon)))
            };
            ahead.push((horizon, later));
        }
        let Some((_, later)) = ahead.iter().find(|(h, _)| *h == horizon) else { continue };
        forecast_nation(s, state, streams, tick, NationId(n as u16), later);
    }
}

/// One nation's forecasts: the domestic price extrapolated along the world trend, and
/// consumption at its horizon, each moved by a draw within its noise.
fn forecast_nation(
    s: &Scenario,
    state: &mut WorldState,
    streams: &Streams,
    tick: Tick,
    nation: NationId,
    later: &Consumption,
) {
    let spec = &s.nations[nation.index()];
    let horizon = spec.forecast_horizon_ticks;
    let noise = i64::from(spec.forecast_noise_bp);
    let mut rng = streams.stream(AgentId(u32::from(nation.0)), tick, Purpose::Forecast);
    let markets = &state.markets;
    for pile in &mut state.nations[nation.index()].stockpiles {
        let market = MarketId::refined(pile.commodity);
        let m = &markets[market.index()];
        let last = m.domestic_prices.iter().find(|(d, _)| *d == nation).map_or(m.last_price, |(_, p)| *p);
        // The trend is the world price's: for a restricted exporter the gap between its
        // domestic price and the world trend is the zone's spread, not a movement.
        let slope = (m.last_price - m.trend_price).scale_floor(i64::from(horizon), TREND_TICKS);
        let bounds = s.stage(market);
        let (price_noise, demand_noise) =
            if noise > 0 { (rng.random_range(-noise..=noise), rng.random_range(-noise..=noise)) } else { (0, 0) };
        pile.price_forecast =
            (last + slope).scale_floor(10_000 + price_noise, 10_000).clamp(bounds.price_min, bounds.price_max);
        pile.demand_forecast = later.get(nation, pile.commodity).scale_floor(10_000 + demand_noise, 10_000);
    }
}
