//! The state digest: BLAKE3 over a canonical encoding of the whole world state. The encoding is
//! postcard's: field order is declaration order, vectors are length-prefixed, and the state
//! holds no hash maps or floats, so equal states encode equally on every platform and every
//! layout.
//!
//! Beside the whole digest, a run that is recorded keeps digests of the state's parts (each
//! market, each nation with the agents located in it, and every other field of `WorldState`),
//! so a replay that diverges can say where. [`fingerprint`] computes both from one encoding of
//! the state; [`parts`] computes the parts alone, the same way, for the replay's side.

use crate::scenario::Scenario;
use crate::world::WorldState;
use serde::Serialize;
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

/// A part's name and the first 16 bytes of its digest.
pub type Part = (String, [u8; 16]);

/// What every digest's input starts with.
const DOMAIN: &[u8] = b"chokepoint/state/v1";

pub fn digest(state: &WorldState) -> Digest {
    digest_with(state, &mut Vec::new())
}

/// How many bytes of the encoding are gathered before they go to the hasher: enough for BLAKE3
/// to hash many chunks at once (streaming postcard's small writes straight into the hasher was
/// several times slower on large worlds), small enough that the state's encoding never has to
/// exist whole.
const DIGEST_BLOCK: usize = 64 * 1024;

/// A hasher fed in blocks gathered in a buffer.
struct Blocks<'a> {
    hasher: blake3::Hasher,
    buffer: &'a mut Vec<u8>,
}

impl<'a> Blocks<'a> {
    fn new(buffer: &'a mut Vec<u8>, prefix: &[u8]) -> Blocks<'a> {
        buffer.clear();
        buffer.reserve(DIGEST_BLOCK);
        buffer.extend_from_slice(prefix);
        Blocks { hasher: blake3::Hasher::new(), buffer }
    }

    fn add(&mut self, bytes: &[u8]) {
        if self.buffer.len() + bytes.len() > DIGEST_BLOCK {
            self.hasher.update(self.buffer);
            self.buffer.clear();
        }
        if bytes.len() >= DIGEST_BLOCK {
            self.hasher.update(bytes);
        } else {
            self.buffer.extend_from_slice(bytes);
        }
    }

    fn finish(mut self) -> blake3::Hash {
        self.hasher.update(self.buffer);
        self.hasher.finalize()
    }
}

impl std::io::Write for Blocks<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.add(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`digest`], gathering the encoding in `buffer` (kept by a caller digesting every tick).
/// The bytes hashed, and so the digest, are the same however they are gathered.
pub fn digest_with(state: &WorldState, buffer: &mut Vec<u8>) -> Digest {
    let mut blocks = Blocks::new(buffer, DOMAIN);
    // Serializing plain data into this writer cannot fail: it never errors.
    postcard::to_io(state, &mut blocks).expect("encoding world state into a hasher never fails");
    Digest(*blocks.finish().as_bytes())
}

/// Appends the postcard encoding of `value` to `out`.
fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Encoding plain data into a vector cannot fail.
    let taken = std::mem::take(out);
    *out = postcard::to_extend(value, taken).expect("encoding plain data into a vector never fails");
}

fn short(hash: blake3::Hash) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash.as_bytes()[..16]);
    out
}

/// Hashes of a state's parts, in a fixed order, as they are fed.
struct PartHashers {
    /// One per nation: its label, then the encoding of every agent located in it, in agent
    /// order, then its own state.
    nations: Vec<blake3::Hasher>,
    names: Vec<String>,
}

/// The part digests of `state` (see the module's description). Every field of `WorldState` is
/// named here, so a field added to the state cannot be left out.
pub fn parts(state: &WorldState, scenario: &Scenario) -> Vec<Part> {
    let mut scratch = Vec::new();
    fingerprint_into(state, scenario, None, &mut scratch).1
}

/// The digest of `state` and the digests of its parts, from one encoding of the state.
pub fn fingerprint(state: &WorldState, scenario: &Scenario, buffer: &mut Vec<u8>) -> (Digest, Vec<Part>) {
    let mut scratch = Vec::new();
    let (digest, parts) = fingerprint_into(state, scenario, Some(buffer), &mut scratch);
    (digest.unwrap_or_default(), parts)
}

/// Feeds every field's encoding to the part hashers and, when given a buffer, to the whole
/// digest, in postcard's order (a struct is its fields' encodings one after another; a vector is
/// its length, then its elements).
fn fingerprint_into(
    state: &WorldState,
    scenario: &Scenario,
    buffer: Option<&mut Vec<u8>>,
    scratch: &mut Vec<u8>,
) -> (Option<Digest>, Vec<Part>) {
    let WorldState {
        tick,
        agents,
        nations,
        markets,
        policies,
        shipments,
        exports,
        projects,
        outages,
        alliances,
        disruptions,
        recycling,
    } = state;
    let mut own = Vec::new();
    let whole = buffer.is_some();
    let mut main = Blocks::new(buffer.unwrap_or(&mut own), DOMAIN);
    let mut out: Vec<Part> = Vec::new();
    let field = |name: &str, bytes: &[u8], main: &mut Blocks, out: &mut Vec<Part>| {
        if whole {
            main.add(bytes);
        }
        let mut h = blake3::Hasher::new();
        h.update(name.as_bytes());
        h.update(bytes);
        out.push((name.to_string(), short(h.finalize())));
    };
    let mut hashers = PartHashers {
        nations: (0..nations.len()).map(|_| blake3::Hasher::new()).collect(),
        names: (0..nations.len()).map(|n| format!("nation {}", scenario.nations[n].code)).collect(),
    };
    for (h, name) in hashers.nations.iter_mut().zip(&hashers.names) {
        h.update(name.as_bytes());
    }
    scratch.clear();
    encode(tick, scratch);
    let clock = scratch.clone();
    if whole {
        main.add(&clock);
    }
    // Agents: each encoded once, into the whole digest and its nation's part.
    scratch.clear();
    encode(&agents.len(), scratch);
    if whole {
        main.add(scratch);
    }
    for (a, def) in agents.iter().zip(&scenario.agents) {
        scratch.clear();
        encode(a, scratch);
        if whole {
            main.add(scratch);
        }
        hashers.nations[def.spec.nation().index()].update(scratch);
    }
    scratch.clear();
    encode(&nations.len(), scratch);
    if whole {
        main.add(scratch);
    }
    let mut nation_parts = Vec::with_capacity(nations.len());
    for (n, nation) in nations.iter().enumerate() {
        scratch.clear();
        encode(nation, scratch);
        if whole {
            main.add(scratch);
        }
        hashers.nations[n].update(scratch);
        nation_parts.push((hashers.names[n].clone(), short(hashers.nations[n].finalize())));
    }
    scratch.clear();
    encode(&markets.len(), scratch);
    if whole {
        main.add(scratch);
    }
    for (i, m) in markets.iter().enumerate() {
        let id = agents::MarketId::from_index(i);
        let name = format!("market {} {}", scenario.commodity_code(id.commodity), id.stage.as_str());
        scratch.clear();
        encode(m, scratch);
        field(&name, scratch, &mut main, &mut out);
    }
    out.extend(nation_parts);
    let mut rest = |name: &str, value: &dyn erased::Encode, main: &mut Blocks, out: &mut Vec<Part>| {
        scratch.clear();
        value.encode_into(scratch);
        field(name, scratch, main, out);
    };
    rest("restrictions", policies, &mut main, &mut out);
    rest("shipments", shipments, &mut main, &mut out);
    rest("export ledger", exports, &mut main, &mut out);
    rest("projects", projects, &mut main, &mut out);
    rest("outages", outages, &mut main, &mut out);
    rest("alliances", alliances, &mut main, &mut out);
    rest("disruptions", disruptions, &mut main, &mut out);
    rest("recycling", recycling, &mut main, &mut out);
    let mut h = blake3::Hasher::new();
    h.update(b"clock");
    h.update(&clock);
    out.push(("clock".into(), short(h.finalize())));
    let digest = whole.then(|| Digest(*main.finish().as_bytes()));
    (digest, out)
}

/// Encoding through a trait object, so the remaining fields go through one closure.
mod erased {
    pub trait Encode {
        fn encode_into(&self, out: &mut Vec<u8>);
    }

    impl<T: serde::Serialize> Encode for T {
        fn encode_into(&self, out: &mut Vec<u8>) {
            super::encode(self, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> (Scenario, WorldState) {
        let options = crate::synth::SynthOptions { nations: 40, agents: 6_000, seed: 2, ticks: 3 };
        let text = crate::synth::generate(&options).expect("generate");
        let scenario = crate::scenario::parse(&text, "synth").expect("valid");
        let state = WorldState::initial(&scenario);
        (scenario, state)
    }

    /// Gathering the encoding in blocks hashes exactly the bytes of the whole encoding, for a
    /// state large enough to fill many blocks.
    #[test]
    fn the_digest_is_blake3_of_the_whole_encoding() {
        let (_, state) = world();
        let mut whole = DOMAIN.to_vec();
        whole.extend(postcard::to_stdvec(&state).expect("encode"));
        assert!(whole.len() > 2 * DIGEST_BLOCK, "the state should span several blocks ({} bytes)", whole.len());
        assert_eq!(digest(&state).0, *blake3::hash(&whole).as_bytes());
        let mut buffer = vec![7u8; 10];
        assert_eq!(digest_with(&state, &mut buffer), digest(&state), "a used buffer changes nothing");
    }

    /// The one-pass fingerprint gives the whole digest and the same parts as `parts`.
    #[test]
    fn the_fingerprint_is_the_digest_and_the_parts() {
        let (scenario, state) = world();
        let (d, p) = fingerprint(&state, &scenario, &mut Vec::new());
        assert_eq!(d, digest(&state));
        assert_eq!(p, parts(&state, &scenario));
        assert_eq!(p.len(), scenario.market_count() + scenario.nations.len() + 9);
    }

    /// A change in any part changes that part's digest and no other.
    #[test]
    fn a_change_shows_in_its_part_only() {
        let (scenario, state) = world();
        let before = parts(&state, &scenario);
        let mut changed = state.clone();
        changed.projects.push(crate::world::Project {
            site: agents::AgentId(50),
            start: agents::Tick(0),
            online: agents::Tick(9),
            capacity: agents::Quantity(5),
            delivered: agents::Quantity::ZERO,
        });
        let agent = scenario.nations.len() + 3;
        changed.agents[agent].cash += agents::Money(1);
        let after = parts(&changed, &scenario);
        let differ: Vec<&str> =
            before.iter().zip(&after).filter(|(a, b)| a.1 != b.1).map(|(a, _)| a.0.as_str()).collect();
        let owner = scenario.nation_code(scenario.agents[agent].spec.nation());
        assert_eq!(differ, vec![format!("nation {owner}").as_str(), "projects"]);
    }
}
