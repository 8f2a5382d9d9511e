//! The state digest: BLAKE3 over a canonical encoding of the whole world state. The encoding is
//! postcard's, streamed straight into the hasher: field order is declaration order, vectors are
//! length-prefixed, and the state holds no hash maps or floats, so equal states encode equally
//! on every platform and every layout.

use crate::world::WorldState;
use std::fmt;

#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

pub fn digest(state: &WorldState) -> Digest {
    digest_with(state, &mut Vec::new())
}

/// [`digest`], encoding into `buffer` (cleared first), so a caller digesting every tick reuses
/// one allocation. The encoding is built whole and hashed in one call, which lets BLAKE3 hash
/// many chunks at once; streaming postcard's many small writes into the hasher was several times
/// slower on large worlds. The bytes hashed, and so the digest, are the same either way.
pub fn digest_with(state: &WorldState, buffer: &mut Vec<u8>) -> Digest {
    buffer.clear();
    buffer.extend_from_slice(b"chokepoint/state/v1");
    // Serializing plain data into a vector cannot fail: the writer never errors.
    postcard::to_io(state, &mut *buffer).expect("encoding world state into a vector never fails");
    Digest(*blake3::hash(buffer).as_bytes())
}

/// Digests of the parts of a state, for telling where two runs diverge: one per market, one per
/// nation (its stockpile policies and every agent located in it), and one each for the
/// restrictions in force, shipments in transit and the export ledger. Each is the first 16 bytes
/// of a BLAKE3 hash, in a fixed order.
pub fn parts(state: &WorldState, scenario: &crate::scenario::Scenario) -> Vec<(String, [u8; 16])> {
    fn short<T: serde::Serialize + ?Sized>(label: &str, value: &T) -> [u8; 16] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(label.as_bytes());
        postcard::to_io(value, &mut hasher).expect("encoding into a hasher never fails");
        let mut out = [0u8; 16];
        out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        out
    }
    let mut out = Vec::new();
    for (i, m) in state.markets.iter().enumerate() {
        let id = agents::MarketId::from_index(i);
        let name = format!("market {} {}", scenario.commodity_code(id.commodity), id.stage.as_str());
        out.push((name.clone(), short(&name, m)));
    }
    for (n, nation) in state.nations.iter().enumerate() {
        let name = format!("nation {}", scenario.nation_code(agents::NationId(n as u16)));
        let located: Vec<&crate::world::AgentState> = state
            .agents
            .iter()
            .zip(&scenario.agents)
            .filter(|(_, def)| def.spec.nation().index() == n)
            .map(|(a, _)| a)
            .collect();
        out.push((name.clone(), short(&name, &(nation, located))));
    }
    out.push(("restrictions".into(), short("restrictions", &state.policies)));
    out.push(("shipments".into(), short("shipments", &state.shipments)));
    out.push(("export ledger".into(), short("export ledger", &state.exports)));
    out.push(("clock".into(), short("clock", &state.tick)));
    out
}
