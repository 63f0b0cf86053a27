//! [`Compute`] and [`Computed`]: what a [`GuardedMap::compute`](crate::GuardedMap::compute)
//! closure decides for one entry, and what the map then did.

/// What to do with the entry a [`compute`](crate::GuardedMap::compute) closure was shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compute<V> {
    /// Leave the entry as it is (or absent, if it was).
    Keep,
    /// Store this value under the key: insert it, or replace the value there.
    Set(V),
    /// Remove the entry, if there is one.
    Remove,
}

/// What [`compute`](crate::GuardedMap::compute) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Computed<V> {
    /// The key was absent and stays absent.
    Absent,
    /// The entry was there and was kept as it was.
    Kept,
    /// The key was absent; the new value was inserted.
    Inserted,
    /// The value was replaced; here is the old one.
    Replaced(V),
    /// The entry was removed; here is its value.
    Removed(V),
}

/// What a backend's keyed compute did, with the removed key (which `remove_if` gives back).
#[doc(hidden)]
pub enum Outcome<K, V> {
    Absent,
    Kept,
    Inserted,
    Replaced(V),
    Removed(K, V),
}

impl<K, V> Outcome<K, V> {
    /// The public form.
    pub(crate) fn computed(self) -> Computed<V> {
        match self {
            Outcome::Absent => Computed::Absent,
            Outcome::Kept => Computed::Kept,
            Outcome::Inserted => Computed::Inserted,
            Outcome::Replaced(old) => Computed::Replaced(old),
            Outcome::Removed(_, value) => Computed::Removed(value),
        }
    }
}
