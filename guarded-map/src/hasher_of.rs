//! [`HasherOf`]: the hasher of the `HashMap` type a user wrote, so that `#[guarded_map]` keeps it.
//!
//! The attribute sees only tokens: a bare `HashMap<K, V>` may be std's or hashbrown's, depending on
//! the user's imports. Naming the hasher as `<HashMap<K, V> as HasherOf>::Hasher` lets the compiler
//! resolve the type the user meant (and keeps their `use` of it alive).

/// The `BuildHasher` type parameter of a `HashMap` type.
#[diagnostic::on_unimplemented(
    message = "`#[guarded_map]` cannot tell the hasher of `{Self}`",
    note = "write the hasher as the map's third type parameter: `HashMap<K, V, S>`"
)]
pub trait HasherOf {
    /// The hasher.
    type Hasher;
}

impl<K, V, S> HasherOf for std::collections::HashMap<K, V, S> {
    type Hasher = S;
}

impl<K, V, S> HasherOf for hashbrown::HashMap<K, V, S> {
    type Hasher = S;
}
