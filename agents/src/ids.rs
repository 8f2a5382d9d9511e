//! Identifiers as newtypes. Nations, commodities and agents are numbered densely in the order
//! the scenario lists them, so ids double as indices into the coordinator's vectors; their human
//! codes ("CN", "co") live in the scenario, not here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The world clock. Tick 0 is the first simulated period; the scenario says how long a tick is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tick(pub u32);

impl Tick {
    pub fn next(self) -> Tick {
        Tick(self.0 + 1)
    }
}

impl fmt::Display for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An agent: a nation's stockpile agency, a miner, a refiner or a manufacturer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AgentId(pub u32);

impl AgentId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent#{}", self.0)
    }
}

/// A nation or bloc, by its position in the scenario's `[[nations]]` list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NationId(pub u16);

impl NationId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A commodity, by its position in the scenario's `[[commodities]]` list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommodityId(pub u16);

impl CommodityId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Every commodity trades at two stages: mined ore or concentrate, and refined product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    Ore,
    Refined,
}

impl Stage {
    pub const ALL: [Stage; 2] = [Stage::Ore, Stage::Refined];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ore => "ore",
            Stage::Refined => "refined",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "ore" => Some(Stage::Ore),
            "refined" => Some(Stage::Refined),
            _ => None,
        }
    }
}

/// One call auction: a commodity at a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MarketId {
    pub commodity: CommodityId,
    pub stage: Stage,
}

impl MarketId {
    pub fn new(commodity: CommodityId, stage: Stage) -> MarketId {
        MarketId { commodity, stage }
    }

    pub fn ore(commodity: CommodityId) -> MarketId {
        MarketId::new(commodity, Stage::Ore)
    }

    pub fn refined(commodity: CommodityId) -> MarketId {
        MarketId::new(commodity, Stage::Refined)
    }

    /// A dense index: commodity-major, ore before refined.
    pub fn index(self) -> usize {
        self.commodity.index() * 2 + matches!(self.stage, Stage::Refined) as usize
    }

    pub fn from_index(i: usize) -> MarketId {
        let stage = if i.is_multiple_of(2) { Stage::Ore } else { Stage::Refined };
        MarketId::new(CommodityId((i / 2) as u16), stage)
    }
}

/// The sector a manufacturer serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Sector {
    Batteries,
    Renewables,
    Electronics,
    Defense,
    Industry,
}

impl Sector {
    pub const ALL: [Sector; 5] =
        [Sector::Batteries, Sector::Renewables, Sector::Electronics, Sector::Defense, Sector::Industry];

    pub fn as_str(self) -> &'static str {
        match self {
            Sector::Batteries => "batteries",
            Sector::Renewables => "renewables",
            Sector::Electronics => "electronics",
            Sector::Defense => "defense",
            Sector::Industry => "industry",
        }
    }

    pub fn parse(s: &str) -> Option<Sector> {
        Sector::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_index_round_trips() {
        for i in 0..40 {
            assert_eq!(MarketId::from_index(i).index(), i);
        }
        assert!(MarketId::ore(CommodityId(1)) < MarketId::refined(CommodityId(1)));
        assert!(MarketId::refined(CommodityId(0)) < MarketId::ore(CommodityId(1)));
    }
}
