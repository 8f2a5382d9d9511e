//! What a tick hands out: the public view every agent shares (the clock, every market's
//! reference and last prices, restrictions announced and in force) and each agent's private
//! observation (its books, memory, capacity, goods in transit, demand intensity, stockpiles).

use crate::mechanics::{announcements, capacity_now};
use crate::scenario::{Event, Scenario};
use crate::world::{Consumption, WorldState};
use agents::observation::{MarketView, StockpileView};
use agents::{AgentId, AgentObservation, AgentSpec, MarketId, PublicView, Quantity, Tick};
use std::collections::BTreeMap;

/// The public view at `tick`; `events` are the run's scheduled events (announcements ahead).
pub(crate) fn public_view(s: &Scenario, state: &WorldState, events: &[Event], tick: Tick) -> PublicView {
    let markets = state
        .markets
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let market = MarketId::from_index(i);
            let spec = s.stage(market);
            MarketView {
                market,
                reference: spec.reference,
                price_min: spec.price_min,
                price_max: spec.price_max,
                last_price: m.last_price,
                domestic_prices: m.domestic_prices.clone(),
                last_volume: m.last_volume,
            }
        })
        .collect();
    PublicView {
        tick,
        ticks_per_year: s.ticks_per_year,
        tick_days: s.tick_days,
        markets,
        announcements: announcements(s, state, events, tick),
    }
}

/// Goods in transit to each agent, by market.
pub(crate) fn incoming(state: &WorldState) -> BTreeMap<AgentId, Vec<(MarketId, Quantity)>> {
    let mut out: BTreeMap<AgentId, Vec<(MarketId, Quantity)>> = BTreeMap::new();
    for s in &state.shipments {
        let list = out.entry(s.buyer).or_default();
        match list.binary_search_by_key(&s.market, |(m, _)| *m) {
            Ok(i) => list[i].1 += s.quantity,
            Err(i) => list.insert(i, (s.market, s.quantity)),
        }
    }
    out
}

/// One agent's observation.
pub(crate) fn observe(
    s: &Scenario,
    state: &WorldState,
    agent: AgentId,
    consumption: &Consumption,
    incoming: &BTreeMap<AgentId, Vec<(MarketId, Quantity)>>,
) -> AgentObservation {
    let own = &state.agents[agent.index()];
    let stockpiles = match &s.agents[agent.index()].spec {
        AgentSpec::Nation { nation } => state.nations[nation.index()]
            .stockpiles
            .iter()
            .map(|p| StockpileView {
                commodity: p.commodity,
                stock: own.holding(MarketId::refined(p.commodity)),
                target_days: p.target_days,
                buy_max_price_bp: p.buy_max_price_bp,
                release_price_bp: p.release_price_bp,
                release_on_shortage: p.release_on_shortage,
                consumption_per_tick: consumption.get(*nation, p.commodity),
                shortage_last_tick: p.shortage_last_tick,
                ordered_release: p.ordered_release,
                price_forecast: p.price_forecast,
                demand_forecast: p.demand_forecast,
            })
            .collect(),
        AgentSpec::Miner { .. } | AgentSpec::Refiner { .. } | AgentSpec::Manufacturer { .. } => Vec::new(),
    };
    let intensity_bp = own.demand.iter().map(|d| (d.commodity, d.combined_bp())).collect();
    AgentObservation {
        agent,
        memory: own.memory.clone(),
        cash: own.cash,
        holdings: own.holdings.clone(),
        stockpiles,
        capacity: capacity_now(state, agent),
        incoming: incoming.get(&agent).cloned().unwrap_or_default(),
        intensity_bp,
    }
}
