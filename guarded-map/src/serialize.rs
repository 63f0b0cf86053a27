//! serde support (feature `serde`): a [`GuardedMap`] and a [`Snapshot`] serialize as a map, like
//! `HashMap`, and deserialize from one.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::map::GuardedMap;
use crate::snapshot::Snapshot;
use crate::spec::SpecFor;

/// Serializes the map's entries as one map, taken from one consistent state: its
/// [`snapshot`](GuardedMap::snapshot), so that the length a format writes first (bincode, for
/// one) always matches the entries that follow, whatever other threads write meanwhile. `Rcu`
/// copies nothing for it; `Sharded` clones every entry.
///
/// ```
/// use guarded_map::{map_spec, GuardedMap};
/// map_spec!(Limits: HashMap<String, u32>, rcu);
///
/// let limits: GuardedMap<String, u32, Limits> = [("cpu".to_string(), 4)].into_iter().collect();
/// assert_eq!(serde_json::to_string(&limits).unwrap(), r#"{"cpu":4}"#);
/// let back: GuardedMap<String, u32, Limits> = serde_json::from_str(r#"{"cpu":8}"#).unwrap();
/// assert_eq!(back.get_cloned("cpu"), Some(8));
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<K, V, S, H> Serialize for GuardedMap<K, V, S, H>
where
    K: Serialize + Clone,
    V: Serialize + Clone,
    S: SpecFor<K, V>,
    H: Clone,
{
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        self.snapshot().serialize(serializer)
    }
}

/// Serializes the snapshot's entries as one map.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<K: Serialize, V: Serialize, H> Serialize for Snapshot<K, V, H> {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Deserializes a map into a snapshot holding its entries (a repeated key keeps its last value),
/// with the default hasher: a fixture, or a state saved from a map and read back.
///
/// ```
/// use guarded_map::Snapshot;
///
/// let saved: Snapshot<String, u32> = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
/// assert_eq!((saved.len(), saved.get("b")), (2, Some(&2)));
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de, K, V, H> Deserialize<'de> for Snapshot<K, V, H>
where
    K: Deserialize<'de> + Eq + Hash,
    V: Deserialize<'de>,
    H: BuildHasher + Clone + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = std::collections::HashMap::<K, V, H>::deserialize(deserializer)?;
        Ok(Snapshot::from_hash_map(map))
    }
}

/// Deserializes a map into a new `GuardedMap` with the default hasher, built in one pass (one
/// publish on `Rcu`); a repeated key keeps its last value. More distinct keys than the spec's
/// `max_len` is an error of the format, not a panic.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de, K, V, S, H> Deserialize<'de> for GuardedMap<K, V, S, H>
where
    K: Deserialize<'de> + Eq + Hash,
    V: Deserialize<'de>,
    S: SpecFor<K, V>,
    H: BuildHasher + Clone + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// What `deserialize` builds, named by its types only.
type Builds<K, V, S, H> = fn() -> (K, V, S, H);

struct MapVisitor<K, V, S, H>(PhantomData<Builds<K, V, S, H>>);

impl<'de, K, V, S, H> Visitor<'de> for MapVisitor<K, V, S, H>
where
    K: Deserialize<'de> + Eq + Hash,
    V: Deserialize<'de>,
    S: SpecFor<K, V>,
    H: BuildHasher + Clone + Default,
{
    type Value = GuardedMap<K, V, S, H>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map for `{}`", S::DESCRIPTOR.label())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let max_len = S::DESCRIPTOR.max_len_limit();
        // The size hint comes from the input: trust it for the allocation only up to a bound.
        let hint = access.size_hint().unwrap_or(0).min(max_len.unwrap_or(4096));
        let mut entries =
            std::collections::HashMap::<K, V, H>::with_capacity_and_hasher(hint, H::default());
        while let Some((key, value)) = access.next_entry()? {
            entries.insert(key, value);
            if let Some(max) = max_len.filter(|&max| entries.len() > max) {
                return Err(A::Error::custom(format_args!(
                    "map `{}` takes at most {max} entries (its max_len); the input has more",
                    S::DESCRIPTOR.label()
                )));
            }
        }
        Ok(GuardedMap::from(entries))
    }
}
