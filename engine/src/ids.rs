//! Ids of the scenario's structural parts that only the engine knows: alliances, shipping lanes
//! and regions (the agents' ids are in `agents::ids`). Each indexes its table in the scenario.
//! They serialize as the bare number, as the integers they replaced did.

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u16);

        impl $name {
            pub fn index(self) -> usize {
                usize::from(self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}#{}", stringify!($name), self.0)
            }
        }
    };
}

id!(
    /// An alliance: an index into `Scenario::alliances` (and `WorldState::alliances`).
    AllianceId
);
id!(
    /// A shipping lane: an index into `Scenario::lanes`.
    LaneId
);
id!(
    /// A region: an index into `Scenario::regions`.
    RegionId
);
