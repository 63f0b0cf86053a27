//! Ordered maps (`BTreeMap` fields): [`OrderedMap`], its [`OrderedSnapshot`]s, and the persistent
//! B+ tree both read (`tree`).

mod map;
mod snapshot;
pub(crate) mod tree;

pub use map::OrderedMap;
pub use snapshot::OrderedSnapshot;
