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

/// How many bytes of the encoding are gathered before they go to the hasher: enough for BLAKE3
/// to hash many chunks at once (streaming postcard's small writes straight into the hasher was
/// several times slower on large worlds), small enough that the state's encoding never has to
/// exist whole.
const DIGEST_BLOCK: usize = 64 * 1024;

/// [`digest`], gathering the encoding in `buffer` (kept by a caller digesting every tick).
/// The bytes hashed, and so the digest, are the same however they are gathered.
pub fn digest_with(state: &WorldState, buffer: &mut Vec<u8>) -> Digest {
    struct Blocks<'a> {
        hasher: blake3::Hasher,
        buffer: &'a mut Vec<u8>,
    }
    impl std::io::Write for Blocks<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.buffer.len() + bytes.len() > DIGEST_BLOCK {
                self.hasher.update(self.buffer);
                self.buffer.clear();
            }
            if bytes.len() >= DIGEST_BLOCK {
                self.hasher.update(bytes);
            } else {
                self.buffer.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    buffer.clear();
    buffer.reserve(DIGEST_BLOCK);
    buffer.extend_from_slice(b"chokepoint/state/v1");
    let mut blocks = Blocks { hasher: blake3::Hasher::new(), buffer };
    // Serializing plain data into this writer cannot fail: it never errors.
    postcard::to_io(state, &mut blocks).expect("encoding world state into a hasher never fails");
    let Blocks { mut hasher, buffer } = blocks;
    hasher.update(buffer);
    Digest(*hasher.finalize().as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Gathering the encoding in blocks hashes exactly the bytes of the whole encoding, for a
    /// state large enough to fill many blocks.
    #[test]
    fn the_digest_is_blake3_of_the_whole_encoding() {
        let options = crate::synth::SynthOptions { nations: 40, agents: 6_000, seed: 2, ticks: 3 };
        let text = crate::synth::generate(&options).expect("generate");
        let scenario = crate::scenario::parse(&text, "synth").expect("valid");
        let state = WorldState::initial(&scenario);
        let mut whole = b"chokepoint/state/v1".to_vec();
        whole.extend(postcard::to_stdvec(&state).expect("encode"));
        assert!(whole.len() > 2 * DIGEST_BLOCK, "the state should span several blocks ({} bytes)", whole.len());
        assert_eq!(digest(&state).0, *blake3::hash(&whole).as_bytes());
        let mut buffer = vec![7u8; 10];
        assert_eq!(digest_with(&state, &mut buffer), digest(&state), "a used buffer changes nothing");
    }
}
