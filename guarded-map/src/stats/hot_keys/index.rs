//! A summary's index: the slot of each monitored key, by fingerprint.
//!
//! Open addressing with linear probing over a power-of-two array kept at most half full, a
//! fingerprint's first cell being its low bits, and removal by moving the rest of the cluster back
//! (no tombstones). Written here rather than using hashbrown's table: the fingerprints are mixed
//! already, the table is small and a cell is a slot number, so a lookup, an insert and a removal
//! take a handful of instructions each, and a summary's work is most of what a sample costs an
//! operation.

/// A cell holding no slot.
const EMPTY: u32 = u32::MAX;

#[derive(Debug)]
pub(super) struct Index {
    cells: Vec<u32>,
    mask: usize,
}

impl Index {
    /// An empty index with room for `keys` keys at most half full.
    pub(super) fn with_room_for(keys: usize) -> Self {
        let cells = (2 * keys).next_power_of_two().max(8);
        Index {
            cells: vec![EMPTY; cells],
            mask: cells - 1,
        }
    }

    /// The cell of the slot under `fingerprint` that `is` accepts, or else the empty cell where
    /// such a slot would go.
    #[inline]
    pub(super) fn find(&self, fingerprint: u64, is: impl Fn(u32) -> bool) -> Result<usize, usize> {
        let mut at = fingerprint as usize & self.mask;
        loop {
            match self.cells[at] {
                EMPTY => return Err(at),
                slot if is(slot) => return Ok(at),
                _ => at = (at + 1) & self.mask,
            }
        }
    }

    /// The slot in `cell`, a cell [`find`](Self::find) found.
    #[inline]
    pub(super) fn slot_at(&self, cell: usize) -> u32 {
        self.cells[cell]
    }

    /// Puts `slot` in `cell`, an empty cell [`find`](Self::find) returned (with no change since).
    #[inline]
    pub(super) fn put(&mut self, cell: usize, slot: u32) {
        self.cells[cell] = slot;
    }

    /// Empties `cell`, moving back each later slot of its cluster that could no longer be found
    /// past the hole (`fingerprint_of` tells where a slot's search starts).
    #[inline]
    pub(super) fn take(&mut self, cell: usize, fingerprint_of: impl Fn(u32) -> u64) {
        let mut hole = cell;
        let mut at = cell;
        loop {
            at = (at + 1) & self.mask;
            let slot = self.cells[at];
            if slot == EMPTY {
                break;
            }
            let first = fingerprint_of(slot) as usize & self.mask;
            // The slot's search passes the hole unless it starts after it (cyclically).
            if at.wrapping_sub(first) & self.mask >= at.wrapping_sub(hole) & self.mask {
                self.cells[hole] = slot;
                hole = at;
            }
        }
        self.cells[hole] = EMPTY;
    }

    /// Puts `slot`, whose key the index does not hold, under `fingerprint`.
    pub(super) fn insert(&mut self, fingerprint: u64, slot: u32) {
        let cell = self
            .find(fingerprint, |_| false)
            .expect_err("a search that accepts nothing ends at an empty cell");
        self.put(cell, slot);
    }

    /// How many slots it holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.cells.iter().filter(|&&c| c != EMPTY).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_keep_every_other_key_findable() {
        // Fingerprints that crowd a few cells, so that clusters wrap and overlap.
        let fingerprints: Vec<u64> = (0..16u64).map(|i| (i * 7) % 5 + 14 + (i << 32)).collect();
        let of = |slot: u32| fingerprints[slot as usize];
        let mut index = Index::with_room_for(16);
        for slot in 0..16u32 {
            let cell = index.find(of(slot), |s| s == slot).unwrap_err();
            index.put(cell, slot);
        }
        let mut removed = Vec::new();
        for gone in [3u32, 0, 15, 7, 8] {
            let cell = index.find(of(gone), |s| s == gone).unwrap();
            index.take(cell, of);
            removed.push(gone);
            for slot in 0..16u32 {
                let found = index.find(of(slot), |s| s == slot).is_ok();
                assert_eq!(
                    found,
                    !removed.contains(&slot),
                    "slot {slot} after {removed:?}"
                );
            }
        }
        assert_eq!(index.len(), 11);
    }
}
