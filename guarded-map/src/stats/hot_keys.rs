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

use foldhash::fast::FixedState;
use hashbrown::HashMap;

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

/// A monitored key: its fingerprint and the count it inherited (its count is in the heap).
#[derive(Clone, Copy, Debug)]
struct Counted {
    fingerprint: u64,
    overcount: u64,
}

/// A Space-Saving summary of fingerprints: keys in slots that never move, a binary min-heap of
/// (count, slot) (so moving a count up or down the heap hashes nothing and reads no slot), and an
/// index from fingerprint to slot.
#[derive(Debug)]
pub(crate) struct Sketch {
    slots: Vec<Counted>,
    /// Each slot's count and number, least counted first (a binary heap); the slot's own
    /// `count` is kept in here only.
    heap: Vec<(u64, u32)>,
    /// Each slot's place in `heap`.
    place: Vec<u32>,
    /// Every monitored fingerprint's slot (fingerprints are mixed already: a fixed, cheap hasher
    /// is enough).
    index: HashMap<u64, u32, FixedState>,
    capacity: usize,
    /// Samples counted since the counts last halved, and the total the counts stand for.
    since_halving: u64,
    total: u64,
}

impl Sketch {
    /// Samples between two halvings of every count.
    pub(crate) const HALF_LIFE: u64 = 1 << 16;

    /// An empty summary with `capacity` counters (allocated as keys arrive).
    pub(crate) fn new(capacity: usize) -> Self {
        Sketch {
            slots: Vec::new(),
            heap: Vec::new(),
            place: Vec::new(),
            index: HashMap::with_hasher(FixedState::default()),
            capacity: capacity.max(1),
            since_halving: 0,
            total: 0,
        }
    }

    /// Counts one sampled operation on the key of `fingerprint`.
    pub(crate) fn observe(&mut self, fingerprint: u64) {
        self.total += 1;
        self.since_halving += 1;
        if let Some(&slot) = self.index.get(&fingerprint) {
            let at = self.place[slot as usize] as usize;
            self.heap[at].0 += 1;
            self.sift_down(at);
        } else if self.slots.len() < self.capacity {
            let slot = self.slots.len() as u32;
            self.slots.push(Counted {
                fingerprint,
                overcount: 0,
            });
            self.heap.push((1, slot));
            self.place.push(slot);
            self.index.insert(fingerprint, slot);
            self.sift_up(slot as usize);
        } else {
            // The least counted key makes room; the newcomer may have been seen that often.
            let (count, slot) = self.heap[0];
            let least = &mut self.slots[slot as usize];
            self.index.remove(&least.fingerprint);
            *least = Counted {
                fingerprint,
                overcount: count,
            };
            self.index.insert(fingerprint, slot);
            self.heap[0].0 = count + 1;
            self.sift_down(0);
        }
        if self.since_halving >= Self::HALF_LIFE {
            self.halve();
        }
    }

    /// Halves every count (the heap order holds: halving keeps `a <= b`), forgetting keys that
    /// reach zero.
    fn halve(&mut self) {
        self.since_halving = 0;
        self.total /= 2;
        for (count, slot) in &mut self.heap {
            *count /= 2;
            self.slots[*slot as usize].overcount /= 2;
        }
        if self.heap.iter().any(|(count, _)| *count == 0) {
            // Rebuilt from the keys still counted, least first (sorted by count is a heap).
            let mut kept: Vec<(u64, Counted)> = self
                .heap
                .iter()
                .filter(|(count, _)| *count > 0)
                .map(|&(count, slot)| (count, self.slots[slot as usize]))
                .collect();
            kept.sort_unstable_by_key(|(count, _)| *count);
            self.slots = kept.iter().map(|(_, c)| *c).collect();
            self.heap = kept
                .iter()
                .zip(0..)
                .map(|((count, _), slot)| (*count, slot))
                .collect();
            self.place = (0..kept.len() as u32).collect();
            self.index.clear();
            for (slot, c) in self.slots.iter().enumerate() {
                self.index.insert(c.fingerprint, slot as u32);
            }
        }
    }

    fn count_at(&self, at: usize) -> u64 {
        self.heap[at].0
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.place[self.heap[a].1 as usize] = a as u32;
        self.place[self.heap[b].1 as usize] = b as u32;
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.count_at(parent) <= self.count_at(at) {
                return;
            }
            self.swap(parent, at);
            at = parent;
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let mut least = at;
            for child in [2 * at + 1, 2 * at + 2] {
                if child < self.heap.len() && self.count_at(child) < self.count_at(least) {
                    least = child;
                }
            }
            if least == at {
                return;
            }
            self.swap(at, least);
            at = least;
        }
    }

    /// Every monitored key, hottest first.
    pub(crate) fn ranked(&self) -> Vec<HotKey> {
        let total = self.total.max(1) as f64;
        let mut all: Vec<HotKey> = self
            .heap
            .iter()
            .map(|&(count, slot)| {
                let c = &self.slots[slot as usize];
                HotKey {
                    fingerprint: c.fingerprint,
                    share: count as f64 / total,
                    samples: count,
                    overcount: c.overcount,
                }
            })
            .collect();
        all.sort_unstable_by(|a, b| {
            b.samples
                .cmp(&a.samples)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        all
    }

    /// The samples the counts stand for.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_while_every_key_fits() {
        let mut s = Sketch::new(8);
        for (key, times) in [(1u64, 5), (2, 3), (3, 9)] {
            for _ in 0..times {
                s.observe(key);
            }
        }
        let ranked = s.ranked();
        let got: Vec<(u64, u64)> = ranked.iter().map(|h| (h.fingerprint, h.samples)).collect();
        assert_eq!(got, [(3, 9), (1, 5), (2, 3)]);
        assert!(ranked.iter().all(|h| h.overcount == 0));
        assert_eq!(s.total(), 17);
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe code, and too long for Miri")]
    fn a_frequent_key_is_kept_among_many_rare_ones() {
        let mut s = Sketch::new(16);
        let mut rare = 1_000u64;
        for i in 0..100_000u64 {
            if i % 10 == 0 {
                s.observe(7); // 10 % of the stream
            } else {
                rare += 1;
                s.observe(rare); // each seen once
            }
        }
        let top = s.ranked()[0];
        assert_eq!(top.fingerprint, 7);
        let floor = top.share * (top.samples - top.overcount) as f64 / top.samples as f64;
        // Halving rounds counts down by at most one each.
        assert!(top.share > 0.099 && floor <= 0.1, "{top:?}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe code, and too long for Miri")]
    fn heap_and_index_agree_after_replacements_and_halvings() {
        let mut s = Sketch::new(32);
        let mut x = 1u64;
        for _ in 0..(3 * Sketch::HALF_LIFE) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.observe(x % 200);
        }
        assert!(s.slots.len() <= 32);
        assert_eq!(
            (s.heap.len(), s.place.len(), s.index.len()),
            (s.slots.len(), s.slots.len(), s.slots.len())
        );
        for (slot, c) in s.slots.iter().enumerate() {
            assert_eq!(s.index[&c.fingerprint] as usize, slot);
            assert_eq!(s.heap[s.place[slot] as usize].1 as usize, slot);
        }
        for at in 0..s.heap.len() {
            for child in [2 * at + 1, 2 * at + 2] {
                if child < s.heap.len() {
                    assert!(s.count_at(at) <= s.count_at(child));
                }
            }
        }
        assert!(s.total() < 2 * Sketch::HALF_LIFE);
    }
}
