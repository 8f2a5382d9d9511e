//! What an agent returns: its orders for this tick's auctions, its production plan, the
//! consumption it wants, and its updated memory. These are requests; the coordinator validates
//! each against the agent's books and the scenario's bounds and rejects what does not fit.

use crate::ids::{AgentId, CommodityId, MarketId};
use crate::observation::AgentMemory;
use crate::units::{Price, Quantity};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

/// A sealed limit order in one market's call auction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Order {
    pub market: MarketId,
    pub side: Side,
    pub quantity: Quantity,
    /// Highest price a buyer pays / lowest a seller accepts, before tariffs.
    pub limit: Price,
    /// Only buyers located in the agent's own nation may take this (a reserve release).
    pub domestic_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentActions {
    pub agent: AgentId,
    pub memory: AgentMemory,
    pub orders: Vec<Order>,
    /// Miners: ore to mine this tick. Refiners: refined output to make from ore on hand.
    pub produce: Quantity,
    /// Manufacturers: what they want to consume this tick, by commodity.
    pub consume: Vec<(CommodityId, Quantity)>,
}
