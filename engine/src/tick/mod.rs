//! One tick's phases, one module each, in the order `Engine::finish_tick` runs them: `validate`
//! (actions against books and bounds), `produce` (mines and refineries), `auctions` (books,
//! joint bids, offtakes, clearing) with `settle` (trades into cash, goods and shipments),
//! `deliver` (shipments due), `consume` (manufacturers' use and shortages), `upkeep` (the
//! agencies' appropriations, holding costs, losses), then the geopolitical mechanics
//! (`crate::mechanics`), `events` (what is due next tick) and `invariants` (conservation).
//! `observe` builds what `begin_tick` hands out.
//!
//! Each phase is a few short functions over a [`Ctx`]: the scenario, the world state, the tick's
//! record and its [`Ledger`] of explicit creations and destructions. No phase reads a clock,
//! touches a host or draws randomness except from the run's named streams.

pub(crate) mod auctions;
pub(crate) mod consume;
pub(crate) mod deliver;
pub(crate) mod events;
pub(crate) mod invariants;
pub(crate) mod observe;
pub(crate) mod produce;
pub(crate) mod settle;
pub(crate) mod upkeep;
pub(crate) mod validate;

use crate::mechanics::Derived;
use crate::record::TickRecord;
use crate::scenario::Scenario;
use crate::world::WorldState;
use agents::rng::Streams;
use agents::{Money, Quantity, Tick};

/// Explicit creations and destructions during a tick, for the conservation invariants.
#[derive(Default)]
pub(crate) struct Ledger {
    /// By market index.
    pub goods_created: Vec<Quantity>,
    pub goods_destroyed: Vec<Quantity>,
    pub money_in: Money,
    pub money_out: Money,
}

impl Ledger {
    pub fn new(markets: usize) -> Ledger {
        Ledger {
            goods_created: vec![Quantity::ZERO; markets],
            goods_destroyed: vec![Quantity::ZERO; markets],
            ..Ledger::default()
        }
    }
}

/// What a phase works on: the run's fixed facts, the world it changes, and what the tick
/// reports and accounts for.
pub(crate) struct Ctx<'a> {
    pub tick: Tick,
    pub scenario: &'a Scenario,
    pub streams: &'a Streams,
    pub derived: &'a Derived,
    pub state: &'a mut WorldState,
    pub record: &'a mut TickRecord,
    pub ledger: &'a mut Ledger,
}

#[cfg(test)]
mod tests;
