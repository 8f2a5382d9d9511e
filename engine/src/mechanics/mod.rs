//! The geopolitical and structural mechanics, one module each: forecasts with skill
//! (`forecasts`), announced restrictions (`announcements`), alliances — exemptions, joint
//! procurement and reserve sharing (`alliances`) and the AI's diplomacy (`diplomacy`) — offtake
//! contracts (`offtakes`), shipping lanes (`lanes`), recycling (`recycling`), stockpile security
//! (`security`), investment with lead times (`investment`), local opposition (`opposition`) and
//! substitution (`substitution`); `slow` runs the slow processes in their fixed order.
//!
//! They act on the world's structure (capacity, membership, demand intensity, what is in
//! transit) rather than on one agent's orders, and must hold whatever the placement of agents,
//! so the engine runs them itself, at fixed points of the tick, drawing randomness only from
//! the run's named streams keyed by (seed, agent, tick, purpose). Slow decisions are taken
//! once a quarter, at fixed ticks.

mod alliances;
mod announcements;
mod diplomacy;
mod forecasts;
mod investment;
mod lanes;
mod offtakes;
mod opposition;
mod recycling;
mod security;
mod slow;
mod substitution;

pub(crate) use alliances::{allocate_joint, exempt_pairs, pool_joint_bids, share_reserves};
pub use announcements::announcements;
pub use diplomacy::ADMIT_AFFINITY;
pub(crate) use forecasts::make_forecasts;
pub(crate) use lanes::lane_terms;
pub(crate) use offtakes::offtakes;
pub(crate) use recycling::recycle;
pub(crate) use slow::slow_processes;

use crate::scenario::Scenario;
use crate::world::WorldState;
use agents::{AgentId, AgentSpec, CommodityId, NationId, Quantity};
use std::collections::BTreeMap;

/// Ticks over which the trend price is smoothed; forecasters extrapolate over it.
const TREND_TICKS: i64 = 13;

/// Facts derived once from the scenario.
#[derive(Clone, Debug, Default)]
pub(crate) struct Derived {
    /// Manufacturers using each commodity in each nation, with their base demand:
    /// `[nation * commodities + commodity]`. Recycled material goes to them.
    pub users: Vec<Vec<(AgentId, Quantity)>>,
    /// The nation with the most refining capacity of each commodity at tick 0.
    pub dominant_refiner: Vec<Option<NationId>>,
}

impl Derived {
    pub fn new(scenario: &Scenario) -> Derived {
        let commodities = scenario.commodities.len();
        let mut users = vec![Vec::new(); scenario.nations.len() * commodities];
        let mut refining: BTreeMap<(CommodityId, NationId), Quantity> = BTreeMap::new();
        for (i, a) in scenario.agents.iter().enumerate() {
            match &a.spec {
                AgentSpec::Manufacturer { nation, demand_per_tick, .. } => {
                    for (c, q) in demand_per_tick {
                        users[nation.index() * commodities + c.index()].push((AgentId(i as u32), *q));
                    }
                }
                AgentSpec::Refiner { nation, commodity, capacity_per_tick, .. } => {
                    *refining.entry((*commodity, *nation)).or_default() += *capacity_per_tick;
                }
                AgentSpec::Nation { .. } | AgentSpec::Miner { .. } => {}
            }
        }
        let dominant_refiner = (0..commodities)
            .map(|c| {
                let c = CommodityId(c as u16);
                refining.iter().filter(|((k, _), _)| *k == c).max_by_key(|(_, q)| **q).map(|((_, n), _)| *n)
            })
            .collect();
        Derived { users, dominant_refiner }
    }
}

/// A mine's or refinery's capacity this tick: none while an outage lasts.
pub fn capacity_now(state: &WorldState, agent: AgentId) -> Quantity {
    if state.outages.iter().any(|o| o.site == agent) {
        return Quantity::ZERO;
    }
    state.agents[agent.index()].capacity
}

#[cfg(test)]
mod tests;
