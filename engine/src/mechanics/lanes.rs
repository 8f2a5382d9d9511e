//! Shipping lanes: goods crossing between regions take the lane's transit time (plus any
//! disruption in force) and pay its freight.

use crate::scenario::Scenario;
use crate::world::WorldState;
use agents::{Money, NationId, Quantity};

/// Transit ticks and freight for `quantity` going from one nation to another.
pub(crate) fn lane_terms(
    s: &Scenario,
    state: &WorldState,
    from: NationId,
    to: NationId,
    quantity: Quantity,
) -> (u32, Money) {
    let (a, b) = (s.nations[from.index()].region, s.nations[to.index()].region);
    if a == b {
        return (0, Money::ZERO);
    }
    match s.lane_between(a, b) {
        Some((id, lane)) => {
            let extra: u32 = state.disruptions.iter().filter(|d| d.lane == id).map(|d| d.extra_ticks).sum();
            (lane.transit_ticks + extra, lane.cost_per_kg.value_of(quantity))
        }
        None => (0, Money::ZERO),
    }
}
