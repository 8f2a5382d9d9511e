//! Validation: an action that does not fit the agent's books or the scenario is rejected (in
//! whole or in part) with a reason. A rejection is an outcome, recorded in `rejections.csv`, not
//! an error.

use crate::mechanics::capacity_now;
use crate::record::Rejection;
use crate::scenario::Scenario;
use crate::world::{AgentState, WorldState};
use agents::{AgentActions, AgentSpec, CommodityId, MarketId, Money, Order, Quantity, Side, Stage, Tick};

/// No single order may exceed this (a trillion kilograms): anything larger is a bug or an attack.
pub const MAX_ORDER_KG: i64 = 1_000_000_000_000;

/// Validates every agent's actions in place, returning the rejections in agent order.
pub(crate) fn validate(s: &Scenario, state: &WorldState, tick: Tick, actions: &mut [AgentActions]) -> Vec<Rejection> {
    let mut rejections = Vec::new();
    for a in actions {
        let spec = &s.agents[a.agent.index()].spec;
        let own = &state.agents[a.agent.index()];
        let mut reject = |reason: String| rejections.push(Rejection { tick, agent: a.agent, reason });
        if a.memory.forecasts.len() > s.market_count()
            || a.memory.forecasts.iter().any(|(m, _)| m.commodity.index() >= s.commodities.len())
        {
            reject("memory names markets that do not exist; kept the previous memory".into());
            a.memory = own.memory.clone();
        }
        a.produce = production(spec, own, capacity_now(state, a.agent), a.produce, &mut reject);
        a.consume = consumption(spec, std::mem::take(&mut a.consume), &mut reject);
        a.orders = orders(s, spec, own, a.produce, std::mem::take(&mut a.orders), &mut reject);
    }
    rejections
}

fn production(
    spec: &AgentSpec,
    own: &AgentState,
    capacity: Quantity,
    produce: Quantity,
    reject: &mut impl FnMut(String),
) -> Quantity {
    if produce.0 < 0 {
        reject(format!("negative production ({produce})"));
        return Quantity::ZERO;
    }
    match spec {
        AgentSpec::Miner { .. } if produce > capacity => {
            reject(format!("production {produce} exceeds capacity {capacity}"));
            capacity
        }
        AgentSpec::Miner { .. } => produce,
        AgentSpec::Refiner { commodity, yield_bp, .. } => {
            let by_ore = own.holding(MarketId::ore(*commodity)).scale_floor(i64::from(*yield_bp), 10_000);
            let allowed = capacity.min(by_ore);
            if produce > allowed {
                reject(format!("production {produce} exceeds what capacity and ore on hand allow ({allowed})"));
                return allowed;
            }
            produce
        }
        AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } if produce.is_positive() => {
            reject(format!("a {} cannot produce", spec.kind()));
            Quantity::ZERO
        }
        AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => produce,
    }
}

fn consumption(
    spec: &AgentSpec,
    consume: Vec<(CommodityId, Quantity)>,
    reject: &mut impl FnMut(String),
) -> Vec<(CommodityId, Quantity)> {
    let AgentSpec::Manufacturer { demand_per_tick, .. } = spec else {
        if !consume.is_empty() {
            reject(format!("a {} cannot consume", spec.kind()));
        }
        return Vec::new();
    };
    let mut out: Vec<(CommodityId, Quantity)> = Vec::new();
    for (c, q) in consume {
        let Some((_, base)) = demand_per_tick.iter().find(|(d, _)| *d == c) else {
            reject(format!("consumption of commodity #{} it does not use", c.0));
            continue;
        };
        // A manufacturer may want more than its base demand (growth, cheap prices), but not
        // absurdly more.
        let ceiling = Quantity(base.0.saturating_mul(1_000).max(1_000_000));
        if q.0 < 0 || q > ceiling || out.iter().any(|(d, _)| *d == c) {
            reject(format!("consumption {q} of commodity #{} is negative, duplicated or absurd", c.0));
            continue;
        }
        out.push((c, q));
    }
    out.sort();
    out
}

fn orders(
    s: &Scenario,
    spec: &AgentSpec,
    own: &AgentState,
    produce: Quantity,
    orders: Vec<Order>,
    reject: &mut impl FnMut(String),
) -> Vec<Order> {
    let mut kept: Vec<Order> = orders.into_iter().filter(|o| order_fits(s, spec, o, reject)).collect();
    within_holdings(spec, own, produce, &mut kept, reject);
    // A nation's agency may not bid beyond its treasury.
    if let AgentSpec::Nation { .. } = spec {
        let committed: i128 =
            kept.iter().filter(|o| o.side == Side::Buy).map(|o| o.limit.value_of(o.quantity).0 as i128).sum();
        if committed > own.cash.0.max(0) as i128 {
            reject(format!(
                "bids worth {} exceed the treasury of {}; all its bids dropped",
                Money(committed.min(i64::MAX as i128) as i64),
                own.cash
            ));
            kept.retain(|o| o.side != Side::Buy);
        }
    }
    kept
}

/// Whether one order is well formed for this agent and the market's bounds.
fn order_fits(s: &Scenario, spec: &AgentSpec, o: &Order, reject: &mut impl FnMut(String)) -> bool {
    if o.market.commodity.index() >= s.commodities.len() {
        reject(format!("order in unknown commodity #{}", o.market.commodity.0));
        return false;
    }
    let bounds = s.stage(o.market);
    if !o.quantity.is_positive() || o.quantity.0 > MAX_ORDER_KG {
        reject(format!("order quantity {} is not between 1 kg and {MAX_ORDER_KG} kg", o.quantity));
        return false;
    }
    if o.limit < bounds.price_min || o.limit > bounds.price_max {
        reject(format!("limit {} outside the market's bounds {} .. {}", o.limit, bounds.price_min, bounds.price_max));
        return false;
    }
    if !may_trade(spec, o.market, o.side) {
        reject(format!(
            "a {} may not {:?} in {} {}",
            spec.kind(),
            o.side,
            s.commodity_code(o.market.commodity),
            o.market.stage.as_str()
        ));
        return false;
    }
    if o.domestic_only && o.side == Side::Buy {
        reject("domestic_only applies to sell orders only".into());
        return false;
    }
    true
}

/// Sells may not exceed what the agent holds once this tick's production is in: a market where
/// they do loses all the agent's sells.
fn within_holdings(
    spec: &AgentSpec,
    own: &AgentState,
    produce: Quantity,
    kept: &mut Vec<Order>,
    reject: &mut impl FnMut(String),
) {
    let mut sells: agents::SmallMap<MarketId, Quantity> = agents::SmallMap::new();
    for o in kept.iter().filter(|o| o.side == Side::Sell) {
        *sells.entry_or(o.market, Quantity::ZERO) += o.quantity;
    }
    let produced_market = match spec {
        AgentSpec::Miner { commodity, .. } => Some(MarketId::ore(*commodity)),
        AgentSpec::Refiner { commodity, .. } => Some(MarketId::refined(*commodity)),
        AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => None,
    };
    for &(market, total) in &sells {
        let available = own.holding(market) + if produced_market == Some(market) { produce } else { Quantity::ZERO };
        if total > available {
            reject(format!(
                "sell orders for {total} exceed the {available} on hand; all its sells in that market dropped"
            ));
            kept.retain(|o| !(o.side == Side::Sell && o.market == market));
        }
    }
}

/// What each kind of agent may trade: miners sell ore, refiners buy ore and sell refined,
/// manufacturers buy refined, agencies buy and sell refined.
fn may_trade(spec: &AgentSpec, market: MarketId, side: Side) -> bool {
    match spec {
        AgentSpec::Nation { .. } => market.stage == Stage::Refined,
        AgentSpec::Miner { commodity, .. } => market == MarketId::ore(*commodity) && side == Side::Sell,
        AgentSpec::Refiner { commodity, .. } => {
            market.commodity == *commodity && (market.stage == Stage::Ore) == (side == Side::Buy)
        }
        AgentSpec::Manufacturer { demand_per_tick, .. } => {
            market.stage == Stage::Refined
                && side == Side::Buy
                && demand_per_tick.iter().any(|(c, _)| *c == market.commodity)
        }
    }
}
