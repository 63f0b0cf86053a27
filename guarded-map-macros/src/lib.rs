//! The `#[guarded_map]` attribute of the guarded-map crate.
//!
//! This crate is not used directly: depend on `guarded-map`, which re-exports what is ready here.
//! The attribute itself is being built; until it lands, write a spec by hand with
//! `guarded_map::map_spec!`.
