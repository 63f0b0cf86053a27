//! Errors returned by map operations.

use std::fmt;

/// A new key was refused because the map holds its `max_len` entries already.
///
/// Nothing is lost: [`into_inner`](Self::into_inner) gives back what was being inserted.
///
/// ```
/// use guarded_map::{map_spec, GuardedMap};
/// map_spec!(Small: HashMap<u8, &'static str>, sharded, max_len = 1);
///
/// let map: GuardedMap<u8, &str, Small> = GuardedMap::new();
/// map.try_insert(1, "one").unwrap();
/// let err = map.try_insert(2, "two").unwrap_err();
/// assert_eq!(err.max_len(), 1);
/// assert_eq!(err.into_inner(), (2, "two"));
/// // Replacing an existing key never grows the map, so it is always allowed.
/// assert_eq!(map.try_insert(1, "uno").unwrap(), Some("one"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CapacityError<T> {
    item: T,
    map: &'static str,
    max_len: usize,
}

impl<T> CapacityError<T> {
    pub(crate) fn new(item: T, map: &'static str, max_len: usize) -> Self {
        CapacityError { item, map, max_len }
    }

    /// The refused item: `(key, value)` from `try_insert`, the key from `try_upsert`.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Small: HashMap<u8, u8>, sharded, max_len = 1, name = "small");
    ///
    /// let map: GuardedMap<u8, u8, Small> = [(1, 1)].into_iter().collect();
    /// let err = map.try_insert(2, 2).unwrap_err();
    /// assert_eq!(err.into_inner(), (2, 2));
    /// ```
    pub fn into_inner(self) -> T {
        self.item
    }

    /// The label of the full map.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Small: HashMap<u8, u8>, sharded, max_len = 1, name = "small");
    ///
    /// let map: GuardedMap<u8, u8, Small> = [(1, 1)].into_iter().collect();
    /// let err = map.try_insert(2, 2).unwrap_err();
    /// assert_eq!(err.map(), "small");
    /// ```
    pub fn map(&self) -> &'static str {
        self.map
    }

    /// The map's bound.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Small: HashMap<u8, u8>, sharded, max_len = 1, name = "small");
    ///
    /// let map: GuardedMap<u8, u8, Small> = [(1, 1)].into_iter().collect();
    /// let err = map.try_insert(2, 2).unwrap_err();
    /// assert_eq!(err.max_len(), 1);
    /// ```
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl<T> fmt::Debug for CapacityError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapacityError")
            .field("map", &self.map)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for CapacityError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "map `{}` is full: it holds its max_len of {} entries",
            self.map, self.max_len
        )
    }
}

impl<T> std::error::Error for CapacityError<T> {}

/// Why [`GuardedMap::switch_backend`](crate::GuardedMap::switch_backend) did not switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwitchError {
    /// Called from inside a read or a write of the same map (a closure of it): the switch would
    /// wait for that operation, which waits for the closure.
    Inside,
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Inside => f.write_str(
                "a map's backend cannot be switched from inside one of its own operations",
            ),
        }
    }
}

impl std::error::Error for SwitchError {}
