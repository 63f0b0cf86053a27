//! [`Sequencer`]: the order in which a mirror applies changes. Kernel change records go by their
//! number, each once, and only up to the horizon; a local write goes after the record whose number
//! it read, before any later one.
//!
//! The horizon is what makes local writes safe: a write is in flight from its system call until it
//! reaches the mirror, and a record numbered after its `after` may already be in the ring. The
//! mirror raises the horizon ([`close_horizon`](Sequencer::close_horizon)) only while it holds the
//! writers' lock exclusively, so every write not yet received will read a number at or above it.
//! The loom model `loom_mirror_applies_local_writes_in_order` runs that protocol.

use std::collections::BTreeMap;

use super::record::{Order, Pending};

/// Changes received and not yet applied, in the order they are to be applied.
pub(super) struct Sequencer<K, V> {
    pending: BTreeMap<Order, Pending<K, V>>,
    /// The number of the next kernel record to apply.
    next: u64,
    /// The highest record number received.
    received: u64,
    /// The highest record number that may be applied.
    horizon: u64,
    /// Local writes received so far (their order among the writes after one record).
    locals: u64,
}

impl<K, V> Sequencer<K, V> {
    pub(super) fn new() -> Self {
        Sequencer {
            pending: BTreeMap::new(),
            next: 1,
            received: 0,
            horizon: 0,
            locals: 0,
        }
    }

    /// The number of the next kernel record to apply.
    pub(super) fn next(&self) -> u64 {
        self.next
    }

    /// Changes waiting.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Applies records numbered after `seq` only (those up to it are in a listing, or given up
    /// on).
    pub(super) fn skip_to(&mut self, seq: u64) {
        self.next = self.next.max(seq + 1);
    }

    /// Moves past a missing number: to the oldest waiting change.
    pub(super) fn skip_gap(&mut self) {
        if let Some(&(seq, local)) = self.pending.keys().next() {
            self.next = if local == 0 { seq } else { seq + 1 };
        }
    }

    /// A kernel change record; one numbered before `next` is dropped (applied or listed already).
    pub(super) fn record(&mut self, seq: u64, change: Pending<K, V>) {
        self.received = self.received.max(seq);
        if seq >= self.next {
            self.pending.insert((seq, 0), change);
        }
    }

    /// A local write made after the kernel record numbered `after`.
    pub(super) fn local(&mut self, after: u64, change: Pending<K, V>) {
        self.locals += 1;
        self.pending.insert((after, self.locals), change);
    }

    /// Lets the records received so far be applied. Call only while no local write is in flight.
    pub(super) fn close_horizon(&mut self) {
        self.horizon = self.received;
    }

    /// The next change whose turn has come. `ordered` is false for a full-sync mirror, whose local
    /// writes have no kernel records to wait for.
    pub(super) fn pop_ready(&mut self, ordered: bool) -> Option<Pending<K, V>> {
        loop {
            let entry = self.pending.first_entry()?;
            let (seq, local) = *entry.key();
            if !ordered {
                return Some(entry.remove());
            }
            if local == 0 && seq < self.next {
                // A record that came after its number was given up on: older than what was
                // applied since, so dropped (the reconciliation that follows corrects).
                entry.remove();
                continue;
            }
            let ready = if local == 0 {
                seq == self.next && seq <= self.horizon
            } else {
                seq < self.next
            };
            if !ready {
                return None;
            }
            if local == 0 {
                self.next += 1;
            }
            return Some(entry.remove());
        }
    }
}

/// A change of key 7 to `value` (the tests').
#[cfg(test)]
fn change(value: u64) -> Pending<u32, u64> {
    Pending {
        kind: 1,
        key: 7,
        value,
        time_ns: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(order: &mut Sequencer<u32, u64>) -> Vec<u64> {
        std::iter::from_fn(|| order.pop_ready(true).map(|c| c.value)).collect()
    }

    #[test]
    fn records_wait_for_their_number_and_the_horizon() {
        let mut order = Sequencer::new();
        order.record(2, change(20));
        order.record(1, change(10));
        assert!(
            drain(&mut order).is_empty(),
            "nothing before the horizon closes"
        );
        order.close_horizon();
        assert_eq!(drain(&mut order), [10, 20]);
        order.record(4, change(40));
        order.close_horizon();
        assert!(drain(&mut order).is_empty(), "3 is missing");
        order.skip_gap();
        assert_eq!(drain(&mut order), [40]);
        order.record(3, change(30));
        assert!(drain(&mut order).is_empty(), "a late record is dropped");
        assert_eq!(order.len(), 0);
    }

    #[test]
    fn a_local_write_goes_after_the_record_it_read_and_before_the_next() {
        let mut order = Sequencer::new();
        order.record(1, change(10));
        order.record(2, change(30));
        order.local(1, change(20));
        order.close_horizon();
        assert_eq!(drain(&mut order), [10, 20, 30]);
        order.local(5, change(50));
        assert!(drain(&mut order).is_empty(), "waits for records 3 to 5");
    }
}

#[cfg(all(test, guarded_map_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicU64, Ordering};
    use loom::sync::{Arc, Mutex, RwLock};

    /// One key, changed by one thread: first by the kernel (a record numbered from the counter),
    /// then from user space (a local write that reads the counter after its change), then by the
    /// kernel again. The mirror collects and applies concurrently, taking the writers' lock
    /// exclusively to close the horizon. It must apply the values in the order they were made.
    #[test]
    fn loom_mirror_applies_local_writes_in_order() {
        loom::model(|| {
            let counter = Arc::new(AtomicU64::new(0));
            let ring: Arc<Mutex<Vec<(u64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
            let sent: Arc<Mutex<Vec<(u64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
            let in_flight = Arc::new(RwLock::new(()));
            let kernel_change = |counter: &AtomicU64, ring: &Mutex<Vec<(u64, u64)>>, value| {
                let seq = counter.fetch_add(1, Ordering::SeqCst) + 1;
                ring.lock().unwrap().push((seq, value));
            };
            let writer = {
                let (counter, ring, sent, in_flight) = (
                    counter.clone(),
                    ring.clone(),
                    sent.clone(),
                    in_flight.clone(),
                );
                loom::thread::spawn(move || {
                    kernel_change(&counter, &ring, 1);
                    {
                        let _in_flight = in_flight.read().unwrap();
                        let after = counter.load(Ordering::SeqCst);
                        sent.lock().unwrap().push((after, 2));
                    }
                    kernel_change(&counter, &ring, 3);
                })
            };
            let mut order: Sequencer<u32, u64> = Sequencer::new();
            let mut applied = Vec::new();
            let collect = |order: &mut Sequencer<u32, u64>, applied: &mut Vec<u64>| {
                {
                    let _none_in_flight = in_flight.write().unwrap();
                    for (after, value) in sent.lock().unwrap().drain(..) {
                        order.local(after, change(value));
                    }
                    for (seq, value) in ring.lock().unwrap().drain(..) {
                        order.record(seq, change(value));
                    }
                    order.close_horizon();
                }
                while let Some(c) = order.pop_ready(true) {
                    applied.push(c.value);
                }
            };
            collect(&mut order, &mut applied);
            writer.join().unwrap();
            collect(&mut order, &mut applied);
            assert!(
                applied.windows(2).all(|w| w[0] < w[1]),
                "out of order: {applied:?}"
            );
            assert_eq!(applied.last(), Some(&3), "{applied:?}");
        });
    }
}
