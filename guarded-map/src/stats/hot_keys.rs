//! Hot keys: which keys carry most of a map's traffic, learned from sampled operations.
//!
//! One keyed operation in about [`SAMPLE_EVERY`] per thread (the probe's sampling countdown, see
//! `hooks`) hands its key's fingerprint to the map's [`Sketch`], a Space-Saving summary (Metwally,
//! Agrawal and El Abbadi, 2005): a fixed number of counters, each key monitored counted exactly
//! from when it entered, a new key replacing the least counted one and inheriting its count as
//! its possible overcount. Every key whose share of the samples exceeds `1 / capacity` is
//! monitored, whatever the order of the stream. Counts halve every [`Sketch::HALF_LIFE`] samples,
//! so keys that stopped being hot fade.
//!
//! Written here rather than taken from a crate: the crates that implement Space-Saving keep the
//! keys themselves (a clone per sample) and none halves its counts; here a key is its 64-bit
//! fingerprint, so a sample allocates nothing and the sketch knows no key type.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

mod index;
mod sketch;

pub(crate) use sketch::Sketch;

/// Keyed operations per thread between two samples, on average (the gap is drawn at random around
/// it, so a periodic access pattern cannot hide from or dominate the samples).
pub(crate) const SAMPLE_EVERY: u32 = 256;

/// Counters a summary keeps for a map that ranks `ranks` keys: enough that a key with 1 % of the
/// samples is always monitored (any key above `1 / capacity` is), and eight per rank.
pub(crate) fn capacity_for(ranks: usize) -> usize {
    (8 * ranks).max(128)
}

/// A key's fingerprint: its hash under the map's hasher, mixed with a secret drawn once per
/// process, so a fingerprint matches the same key within one run and tells nothing about the key
/// (even under a fixed hasher). The probe's samples carry the same fingerprints.
#[inline]
pub(crate) fn fingerprint(hash: u64) -> u64 {
    static SECRET: OnceLock<u64> = OnceLock::new();
    let secret = *SECRET.get_or_init(|| RandomState::new().hash_one(0x9e37_79b9_u64));
    let x = (u128::from(hash ^ secret)) * u128::from(0x9e37_79b9_7f4a_7c15u64 | 1);
    (x as u64) ^ ((x >> 64) as u64)
}

/// One of a map's hottest keys, from [`GuardedMap::hot_keys`](crate::GuardedMap::hot_keys).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HotKey {
    /// The key's fingerprint: equal for the same key of the same map within one process, and
    /// telling nothing about the key.
    pub fingerprint: u64,
    /// The key's estimated share of the map's sampled keyed operations, 0 to 1: an upper bound,
    /// the true share being at least `share * (samples - overcount) / samples`.
    pub share: f64,
    /// Sampled operations counted for the key (halved as the samples age).
    pub samples: u64,
    /// How many of `samples` may belong to keys this one replaced in the summary.
    pub overcount: u64,
}

impl HotKey {
    /// The estimated share of a map's keyed operations from which a key is listed as hot
    /// whatever its rank: half a percent, so that a key with 1 % of the operations is listed
    /// despite the noise of sampling.
    pub const HOT_SHARE: f64 = 0.005;
}

/// The hot keys of a `ranked` list (hottest first): the first `ranks`, and any other with at
/// least [`HotKey::HOT_SHARE`].
pub(crate) fn hottest(mut ranked: Vec<HotKey>, ranks: usize) -> Vec<HotKey> {
    let hot = ranked
        .iter()
        .enumerate()
        .take_while(|(rank, h)| *rank < ranks || h.share >= HotKey::HOT_SHARE)
        .count();
    ranked.truncate(hot);
    ranked
}
