//! [`SmallMap`]: a sorted map of a few entries kept inside its owner, with no allocation until it
//! outgrows [`INLINE`] entries. Agents' holdings and forecasts are such maps: most agents hold one
//! or two markets, and on large worlds a separate allocation per agent cost both memory and a
//! cache miss on every trade settled.
//!
//! It serializes exactly as the sorted `Vec<(K, V)>` it replaces (a sequence of pairs), so world
//! state encodings, and therefore digests and snapshots, do not change.

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};
use std::fmt;

/// How many entries live inline before the map moves to the heap.
pub const INLINE: usize = 2;

/// A map from `K` to `V`, sorted by key, with at most one entry per key.
#[derive(Clone)]
pub struct SmallMap<K, V> {
    repr: Repr<K, V>,
}

#[derive(Clone)]
enum Repr<K, V> {
    /// `items[..len]` are the entries; the slots beyond are copies of an entry, never read.
    Inline {
        len: u8,
        items: [(K, V); INLINE],
    },
    Heap(Vec<(K, V)>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap { repr: Repr::Heap(Vec::new()) }
    }
}

impl<K: Copy + Ord, V: Copy> SmallMap<K, V> {
    pub fn new() -> Self {
        SmallMap::default()
    }

    /// The entries, sorted by key.
    pub fn as_slice(&self) -> &[(K, V)] {
        match &self.repr {
            Repr::Inline { len, items } => &items[..usize::from(*len)],
            Repr::Heap(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [(K, V)] {
        match &mut self.repr {
            Repr::Inline { len, items } => &mut items[..usize::from(*len)],
            Repr::Heap(v) => v,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, (K, V)> {
        self.as_slice().iter()
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let s = self.as_slice();
        s.binary_search_by(|(k, _)| k.cmp(key)).ok().map(|i| s[i].1)
    }

    /// The value at `key`, inserted as `default` first if missing.
    pub fn entry_or(&mut self, key: K, default: V) -> &mut V {
        let at = match self.as_slice().binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => i,
            Err(i) => {
                self.insert_at(i, (key, default));
                i
            }
        };
        &mut self.as_mut_slice()[at].1
    }

    /// Sets the value at `key`.
    pub fn set(&mut self, key: K, value: V) {
        *self.entry_or(key, value) = value;
    }

    fn insert_at(&mut self, at: usize, entry: (K, V)) {
        match &mut self.repr {
            Repr::Heap(v) if v.is_empty() => {
                self.repr = Repr::Inline { len: 1, items: [entry; INLINE] };
            }
            Repr::Heap(v) => v.insert(at, entry),
            Repr::Inline { len, items } if usize::from(*len) < INLINE => {
                let n = usize::from(*len);
                items.copy_within(at..n, at + 1);
                items[at] = entry;
                *len += 1;
            }
            Repr::Inline { items, .. } => {
                let mut v = Vec::with_capacity(INLINE * 2);
                v.extend_from_slice(&items[..at]);
                v.push(entry);
                v.extend_from_slice(&items[at..]);
                self.repr = Repr::Heap(v);
            }
        }
    }

    /// A map of `entries` (sorted by key here, and for a repeated key the last one kept).
    pub fn from_vec(mut entries: Vec<(K, V)>) -> Self {
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            entries.reverse();
            entries.sort_by_key(|a| a.0);
            entries.dedup_by(|later, earlier| later.0 == earlier.0);
        }
        if entries.is_empty() || entries.len() > INLINE {
            return SmallMap { repr: Repr::Heap(entries) };
        }
        let mut items = [entries[0]; INLINE];
        items[..entries.len()].copy_from_slice(&entries);
        SmallMap { repr: Repr::Inline { len: entries.len() as u8, items } }
    }
}

impl<K: Copy + Ord, V: Copy> From<Vec<(K, V)>> for SmallMap<K, V> {
    fn from(entries: Vec<(K, V)>) -> Self {
        SmallMap::from_vec(entries)
    }
}

impl<K: Copy + Ord, V: Copy> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        SmallMap::from_vec(iter.into_iter().collect())
    }
}

impl<'a, K: Copy + Ord, V: Copy> IntoIterator for &'a SmallMap<K, V> {
    type Item = &'a (K, V);
    type IntoIter = std::slice::Iter<'a, (K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: Copy + Ord, V: Copy + PartialEq> PartialEq for SmallMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<K: Copy + Ord, V: Copy + Eq> Eq for SmallMap<K, V> {}

impl<K: Copy + Ord + fmt::Debug, V: Copy + fmt::Debug> fmt::Debug for SmallMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: Copy + Ord + Serialize, V: Copy + Serialize> Serialize for SmallMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, K: Copy + Ord + Deserialize<'de>, V: Copy + Deserialize<'de>> Deserialize<'de> for SmallMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<(K, V)>::deserialize(deserializer).map(SmallMap::from_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_sorted_inline_and_on_the_heap() {
        let mut m: SmallMap<u16, i64> = SmallMap::new();
        assert!(m.is_empty());
        for (k, d) in [(5, 1), (2, 10), (5, 2), (9, 3), (1, 4), (2, -10)] {
            *m.entry_or(k, 0) += d;
        }
        assert_eq!(m.as_slice(), &[(1, 4), (2, 0), (5, 3), (9, 3)]);
        assert_eq!(m.get(&5), Some(3));
        assert_eq!(m.get(&7), None);
        let mut small: SmallMap<u16, i64> = SmallMap::new();
        small.set(3, 1);
        small.set(1, 2);
        assert!(matches!(small.repr, Repr::Inline { len: 2, .. }));
        assert_eq!(small.as_slice(), &[(1, 2), (3, 1)]);
        small.set(2, 7);
        assert!(matches!(small.repr, Repr::Heap(_)));
        assert_eq!(small.as_slice(), &[(1, 2), (2, 7), (3, 1)]);
    }

    #[test]
    fn encodes_exactly_as_the_sorted_vector() {
        for entries in [vec![], vec![(3u16, 7i64)], vec![(1, -1), (4, 0)], vec![(1, 1), (2, 2), (3, 3)]] {
            let map = SmallMap::from_vec(entries.clone());
            let a = postcard::to_stdvec(&map).expect("encode");
            assert_eq!(a, postcard::to_stdvec(&entries).expect("encode"));
            let back: SmallMap<u16, i64> = postcard::from_bytes(&a).expect("decode");
            assert_eq!(back, map);
            assert_eq!(format!("{map:?}"), format!("{entries:?}"));
        }
    }

    #[test]
    fn from_vec_sorts_and_keeps_the_last_of_a_repeated_key() {
        let m = SmallMap::from_vec(vec![(3u16, 1i64), (1, 2), (3, 9)]);
        assert_eq!(m.as_slice(), &[(1, 2), (3, 9)]);
    }
}
