//! Test worlds for the decision functions: a public view of one commodity at its reference
//! prices and an observation to fill in.

use crate::ids::{AgentId, CommodityId, MarketId, Tick};
use crate::observation::{AgentMemory, AgentObservation, MarketView, PublicView};
use crate::small_map::SmallMap;
use crate::units::{Money, Price, Quantity};

/// Commodity 0, traded as ore at `ore` and refined at `refined` (cents per kilogram).
pub fn public(ore: i64, refined: i64) -> PublicView {
    let view = |market: MarketId, p: i64| MarketView {
        market,
        reference: Price(p),
        price_min: Price(1),
        price_max: Price(p * 100),
        last_price: Price(p),
        domestic_prices: Vec::new(),
        last_volume: Quantity::ZERO,
    };
    let c = CommodityId(0);
    PublicView {
        tick: Tick(10),
        ticks_per_year: 52,
        tick_days: 7,
        markets: vec![view(MarketId::ore(c), ore), view(MarketId::refined(c), refined)],
        announcements: Vec::new(),
    }
}

/// An agent's observation with nothing in it but `cash` and `capacity`.
pub fn observation(agent: u32, cash: i64, capacity: i64) -> AgentObservation {
    AgentObservation {
        agent: AgentId(agent),
        memory: AgentMemory::default(),
        cash: Money(cash),
        holdings: SmallMap::new(),
        stockpiles: Vec::new(),
        capacity: Quantity(capacity),
        incoming: Vec::new(),
        intensity_bp: Vec::new(),
    }
}
