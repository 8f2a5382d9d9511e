//! Chokepoint's agents: the domain vocabulary every other crate speaks (ids, money, quantities,
//! markets, orders), the observation an agent receives and the actions it returns, and the pure
//! decision functions of nations, miners, refiners and manufacturers.
//!
//! Everything here is a deterministic function of its inputs. This crate never reads a clock,
//! never touches the network or the disk, and draws randomness only from [`rng::Streams`], which
//! is keyed by (seed, agent, tick, purpose). An agent keeps no state between ticks except the
//! [`observation::AgentMemory`] it hands back with its actions, so the coordinator owns all state
//! and any host can run any agent at any tick.

pub mod action;
pub mod decide;
pub mod forecast;
pub mod ids;
pub mod manufacturer;
pub mod miner;
pub mod nation;
pub mod observation;
pub mod refiner;
pub mod rng;
pub mod small_map;
#[cfg(test)]
pub(crate) mod testing;
pub mod units;

pub use action::{AgentActions, Order, Side};
pub use decide::decide;
pub use ids::{AgentId, CommodityId, MarketId, NationId, Sector, Stage, Tick};
pub use observation::{AgentMemory, AgentObservation, AgentSpec, ObservationBatch, PublicView, SpecTable};
pub use small_map::SmallMap;
pub use units::{Money, Price, Quantity};
