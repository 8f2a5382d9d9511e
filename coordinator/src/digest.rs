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
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"chokepoint/state/v1");
    // Serializing plain data into a hasher cannot fail: the writer never errors.
    postcard::to_io(state, &mut hasher).expect("encoding world state into a hasher never fails");
    Digest(*hasher.finalize().as_bytes())
}
