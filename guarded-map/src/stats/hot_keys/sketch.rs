//! The summary behind a map's hot keys: Space-Saving (Metwally, Agrawal and El Abbadi, 2005) over
//! fingerprints, with its stream-summary kept in arrays.

use super::HotKey;
use super::index::Index;

/// A key's slot: the key, what it inherited, and where its count is. Slots never move.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    fingerprint: u64,
    /// How many of the key's count it inherited from the key it replaced.
    overcount: u64,
    /// The slot's position.
    place: u32,
    /// The slot's block: the run of positions of its count.
    block: u32,
}

/// A count, and the slot counted.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    count: u64,
    slot: u32,
}

/// A Space-Saving summary of fingerprints.
///
/// Counts are kept sorted, least first, in `positions`. Positions of equal count form a block,
/// whose last position is kept. Counting a key trades its position with the last of its block and
/// adds one: a few instructions whatever the counts, no sift through a heap and no search.
/// Positions counted 0 are free slots, all at the front; the least counted key is always at
/// position 0, the one a new key replaces.
#[derive(Debug)]
pub(crate) struct Sketch {
    /// One more than the positions: the spare slot, which a new key takes while the key it
    /// replaces still has its index entry.
    slots: Vec<Slot>,
    positions: Vec<Position>,
    /// Each block's last position (a block's first is the one after the previous block's last).
    ends: Vec<u32>,
    /// Blocks not in use.
    free_blocks: Vec<u32>,
    spare: u32,
    /// Every counted key's slot, by fingerprint.
    index: Index,
    capacity: usize,
    /// Samples counted since the counts last halved, and the total the counts stand for.
    since_halving: u64,
    total: u64,
}

impl Sketch {
    /// Samples between two halvings of every count.
    pub(crate) const HALF_LIFE: u64 = 1 << 16;

    /// Positions a summary starts with; it doubles them, up to its capacity, as keys arrive (most
    /// maps of a program with many instances see few keys).
    const FIRST_POSITIONS: usize = 8;

    /// An empty summary with `capacity` counters (allocated as keys arrive).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let mut sketch = Sketch {
            slots: vec![Slot::default()],
            positions: Vec::new(),
            ends: Vec::new(),
            free_blocks: Vec::new(),
            spare: 0,
            index: Index::with_room_for(0),
            capacity,
            since_halving: 0,
            total: 0,
        };
        sketch.grow(Self::FIRST_POSITIONS.min(capacity));
        sketch
    }

    /// Counts one sampled operation on the key of `fingerprint`.
    #[inline]
    pub(crate) fn observe(&mut self, fingerprint: u64) {
        self.total += 1;
        self.since_halving += 1;
        let slots = &self.slots;
        match self.index.find(fingerprint, |slot| {
            slots[slot as usize].fingerprint == fingerprint
        }) {
            Ok(cell) => {
                let at = self.slots[self.index.slot_at(cell) as usize].place;
                self.count_up(at as usize);
            }
            Err(cell) => {
                self.admit(fingerprint, cell);
                self.count_up(0);
                if self.positions[0].count > 0 && self.positions.len() < self.capacity {
                    // No free slot left: room for more keys before any is replaced.
                    self.grow((2 * self.positions.len()).min(self.capacity));
                }
            }
        }
        if self.since_halving >= Self::HALF_LIFE {
            self.halve();
        }
    }

    /// Puts a key not counted at position 0, in index cell `cell`, counted as the key it replaces.
    #[inline(always)]
    fn admit(&mut self, fingerprint: u64, cell: usize) {
        let least = self.positions[0];
        if least.count == 0 {
            // A free slot: the key is counted exactly from now.
            self.index.put(cell, least.slot);
            let slot = &mut self.slots[least.slot as usize];
            slot.fingerprint = fingerprint;
            slot.overcount = 0;
            return;
        }
        // The least counted key makes room; the newcomer may have been seen that often. It takes
        // the spare slot, so the index entry removed next is the only one naming the old slot.
        let spare = self.spare;
        let replaced = least.slot;
        let block = self.slots[replaced as usize].block;
        self.slots[spare as usize] = Slot {
            fingerprint,
            overcount: least.count,
            place: 0,
            block,
        };
        self.index.put(cell, spare);
        let slots = &self.slots;
        let gone = slots[replaced as usize].fingerprint;
        if let Ok(old) = self.index.find(gone, |slot| slot == replaced) {
            self.index
                .take(old, |slot| slots[slot as usize].fingerprint);
        }
        self.positions[0].slot = spare;
        self.spare = replaced;
    }

    /// Adds one to the count at position `at`: its key trades places with the last key of its
    /// block, so the counts stay sorted, and joins the block of the next count.
    #[inline(always)]
    fn count_up(&mut self, at: usize) {
        let Position { count, slot } = self.positions[at];
        let block = self.slots[slot as usize].block;
        let last = self.ends[block as usize] as usize;
        if last != at {
            let other = self.positions[last].slot;
            self.positions[at].slot = other;
            self.slots[other as usize].place = at as u32;
            self.slots[slot as usize].place = last as u32;
        }
        self.positions[last] = Position {
            count: count + 1,
            slot,
        };
        // The block loses its last position, and is gone if that was its only one.
        if last > 0 && self.positions[last - 1].count == count {
            self.ends[block as usize] = last as u32 - 1;
        } else {
            self.free_blocks.push(block);
        }
        // The key now starts the block of the next count, or is a block of its own.
        let joined = match self.positions.get(last + 1) {
            Some(next) if next.count == count + 1 => self.slots[next.slot as usize].block,
            _ => {
                let fresh = self
                    .free_blocks
                    .pop()
                    .expect("a summary has at most one block per position");
                self.ends[fresh as usize] = last as u32;
                fresh
            }
        };
        self.slots[slot as usize].block = joined;
    }

    /// Grows the summary to `positions`, the new ones free (counted 0, so at the front).
    fn grow(&mut self, positions: usize) {
        let added = positions - self.positions.len();
        let first_new = self.slots.len() as u32;
        self.slots.resize(self.slots.len() + added, Slot::default());
        let free = (first_new..)
            .take(added)
            .map(|slot| Position { count: 0, slot });
        self.positions.splice(0..0, free);
        self.reindex();
    }

    /// Halves every count (the order holds: halving keeps `a <= b`), freeing the slots of keys
    /// that reach zero (at the front).
    fn halve(&mut self) {
        self.since_halving = 0;
        self.total /= 2;
        for position in &mut self.positions {
            position.count /= 2;
            self.slots[position.slot as usize].overcount /= 2;
        }
        self.reindex();
    }

    /// Remakes the index, the places and the blocks from the positions.
    fn reindex(&mut self) {
        let count = self.positions.len();
        // Room for one more key than the positions: a new key's entry is made before the entry
        // of the key it replaces goes.
        self.index = Index::with_room_for(count + 1);
        self.ends.clear();
        for (at, position) in self.positions.iter().enumerate() {
            if at > 0 && position.count != self.positions[at - 1].count {
                self.ends.push(at as u32 - 1);
            }
            let slot = &mut self.slots[position.slot as usize];
            slot.place = at as u32;
            slot.block = self.ends.len() as u32;
            if position.count > 0 {
                self.index.insert(slot.fingerprint, position.slot);
            }
        }
        self.ends.push(count as u32 - 1);
        let used = self.ends.len() as u32;
        self.ends.resize(count, 0);
        self.free_blocks.clear();
        self.free_blocks.extend(used..count as u32);
    }

    /// Every counted key, hottest first (ties by fingerprint).
    pub(crate) fn ranked(&self) -> Vec<HotKey> {
        let total = self.total.max(1) as f64;
        let mut all: Vec<HotKey> = self
            .positions
            .iter()
            .rev()
            .take_while(|position| position.count > 0)
            .map(|&Position { count, slot }| {
                let slot = &self.slots[slot as usize];
                HotKey {
                    fingerprint: slot.fingerprint,
                    share: count as f64 / total,
                    samples: count,
                    overcount: slot.overcount,
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

    /// Checks every invariant of `s`: counts sorted, positions and places each other's inverse,
    /// one block per run of equal counts, and the index naming exactly the counted keys.
    fn assert_consistent(s: &Sketch) {
        let counts: Vec<u64> = s.positions.iter().map(|p| p.count).collect();
        assert!(counts.len() <= s.capacity);
        assert!(counts.is_sorted(), "{counts:?}");
        assert_eq!(s.slots.len(), counts.len() + 1);
        for (at, position) in s.positions.iter().enumerate() {
            let slot = &s.slots[position.slot as usize];
            assert_ne!(position.slot, s.spare);
            assert_eq!(slot.place as usize, at);
            let end = s.ends[slot.block as usize] as usize;
            assert!(
                end >= at && counts[end] == counts[at],
                "position {at}'s block"
            );
            assert!(end + 1 == counts.len() || counts[end + 1] > counts[at]);
            let found = s.index.find(slot.fingerprint, |x| x == position.slot);
            assert_eq!(
                found.is_ok(),
                position.count > 0,
                "position {at}: {position:?}"
            );
        }
        let in_use = s.ends.len() - s.free_blocks.len();
        let runs = 1 + counts.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(in_use, runs, "one block per run of equal counts");
        assert_eq!(s.index.len(), counts.iter().filter(|&&c| c > 0).count());
    }

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
        assert_consistent(&s);
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
    fn any_key_above_one_in_capacity_is_kept_whatever_the_order() {
        // Space-Saving's promise: a key with more than 1/capacity of the samples is counted, here
        // with its samples all at the end, after a stream that fills every counter many times.
        let mut s = Sketch::new(16);
        for key in 0..40_000u64 {
            s.observe(1_000 + key % 4_000);
        }
        for _ in 0..2_700 {
            s.observe(7); // 2 700 of 42 700: above 1/16
        }
        assert_consistent(&s);
        let hot = s
            .ranked()
            .into_iter()
            .find(|h| h.fingerprint == 7)
            .expect("key 7 is kept");
        assert!(hot.samples >= 2_700, "{hot:?}: a count is an upper bound");
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe code, and too long for Miri")]
    fn space_saving_bounds_hold_on_mixed_streams() {
        // Against exact counts: every count bounds its key's from above and, less its
        // overcount, from below; the counts add up to the samples; and every key above
        // 1/capacity of them is counted.
        for capacity in [1usize, 2, 7, 16, 128] {
            for seed in 1..=4u64 {
                let mut s = Sketch::new(capacity);
                let mut exact = std::collections::HashMap::new();
                let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let samples = 20_000u64; // below a half-life: no halving
                for _ in 0..samples {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // A few heavy keys, a skewed middle and a long tail.
                    let key = match x % 10 {
                        0..=3 => x % 4,
                        4..=6 => 100 + (x >> 8) % (x % 50 + 1),
                        _ => 1_000 + (x >> 16) % 5_000,
                    };
                    s.observe(key);
                    *exact.entry(key).or_insert(0u64) += 1;
                }
                assert_consistent(&s);
                let ranked = s.ranked();
                assert_eq!(ranked.iter().map(|h| h.samples).sum::<u64>(), samples);
                for h in &ranked {
                    let truth = exact[&h.fingerprint];
                    assert!(h.samples >= truth, "{h:?} against {truth}");
                    assert!(h.samples - h.overcount <= truth, "{h:?} against {truth}");
                }
                for (&key, &truth) in &exact {
                    if truth * capacity as u64 > samples {
                        assert!(
                            ranked.iter().any(|h| h.fingerprint == key),
                            "key {key} ({truth} of {samples}) at capacity {capacity}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe code, and too long for Miri")]
    fn invariants_hold_through_growth_replacements_and_halvings() {
        let mut s = Sketch::new(32);
        let mut x = 1u64;
        for i in 0..(3 * Sketch::HALF_LIFE) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Hot keys, and a long tail.
            let key = if i % 3 == 0 { x % 8 } else { x % 200 };
            s.observe(key);
            if i % 4099 == 0 {
                assert_consistent(&s);
            }
        }
        assert_consistent(&s);
        assert_eq!(s.positions.len(), 32);
        assert!(s.total() < 2 * Sketch::HALF_LIFE);
    }

    #[test]
    fn a_summary_grows_with_its_keys() {
        let mut s = Sketch::new(128);
        for key in 0..3u64 {
            s.observe(key);
        }
        assert_eq!(s.positions.len(), Sketch::FIRST_POSITIONS);
        for key in 0..100u64 {
            s.observe(key);
        }
        assert_eq!(s.positions.len(), 128);
        assert_consistent(&s);
        let ranked = s.ranked();
        assert_eq!(ranked.len(), 100);
        assert!(
            ranked.iter().all(|h| h.overcount == 0),
            "nothing was replaced"
        );
        let top: Vec<u64> = ranked[..3].iter().map(|h| h.samples).collect();
        assert_eq!(top, [2, 2, 2]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe code, and too long for Miri")]
    fn keys_counted_down_to_zero_free_their_slots() {
        let mut s = Sketch::new(4);
        s.observe(1);
        for _ in 1..Sketch::HALF_LIFE {
            s.observe(2);
        }
        // The halving took key 1 from one sample to none.
        assert_consistent(&s);
        let ranked = s.ranked();
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].fingerprint, 2);
        s.observe(3);
        let three = s.ranked().into_iter().find(|h| h.fingerprint == 3).unwrap();
        assert_eq!(three.overcount, 0, "a free slot, not a replacement");
        assert_consistent(&s);
    }
}
