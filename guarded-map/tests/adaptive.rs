//! The adaptive backend under switches forced while other threads read and write: no lost or
//! doubled update, exact statistics, consistent snapshots, exact `max_len`, and a panic in user
//! code during a switch that leaves the map usable with every entry.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use guarded_map::{ActiveBackend, GuardedMap, map_spec};

map_spec!(Counters: HashMap<u64, u64>, adaptive, shards = 4);
map_spec!(Bounded: HashMap<u64, u64>, adaptive, max_len = 1000);
// The upsert test counts the instances of its spec in each form: no other test may share it.
map_spec!(Snapshotted: HashMap<u64, u64>, adaptive, shards = 4);

const THREADS: u64 = 4;
const KEYS: u64 = 64;

/// Switches `map` back and forth about every 100 µs until `done`; returns how many times. The map
/// is pinned, so that its cost model does not switch it meanwhile.
fn keep_switching<S>(map: &GuardedMap<u64, u64, S>, done: &AtomicBool, switches: &AtomicUsize)
where
    S: guarded_map::SpecFor<u64, u64> + guarded_map::MapSpec<Backend = guarded_map::Adaptive>,
{
    map.pin_backend(map.active_backend()).unwrap();
    while !done.load(Ordering::Acquire) {
        let to = map.active_backend().other();
        assert_eq!(map.switch_backend(to), Ok(true));
        switches.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_micros(100));
    }
}

/// Switches wanted while the workers run.
const SWITCHES: usize = 50;

#[test]
fn upserts_on_overlapping_keys_lose_nothing_across_switches() {
    const ROUNDS: u64 = 5_000;
    let map: GuardedMap<u64, u64, Snapshotted> = GuardedMap::new();
    let done = AtomicBool::new(false);
    let switches = AtomicUsize::new(0);
    // Each worker runs at least `ROUNDS` rounds, and on until the switches were made.
    let rounds: Vec<u64> = thread::scope(|s| {
        s.spawn(|| keep_switching(&map, &done, &switches));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (map, switches) = (&map, &switches);
                s.spawn(move || {
                    let mut i = 0;
                    while i < ROUNDS || switches.load(Ordering::Relaxed) < SWITCHES {
                        let key = (i + t) % KEYS;
                        map.upsert(key, || 0, |v| *v += 1);
                        map.update(&key, |v| *v += 1);
                        assert!(map.get_cloned(&key).is_some());
                        i += 1;
                    }
                    i
                })
            })
            .collect();
        let rounds = workers.into_iter().map(|w| w.join().unwrap()).collect();
        done.store(true, Ordering::Release);
        rounds
    });
    assert!(switches.load(Ordering::Relaxed) >= SWITCHES);
    // Pinned, the map switched only when asked: each switch counted once.
    assert_eq!(
        map.stats().backend_switches,
        switches.load(Ordering::Relaxed) as u64
    );
    let last = map.last_switch().expect("switched");
    assert_eq!(last.reason, guarded_map::SwitchReason::Requested);
    let report = guarded_map::registry::report(map.descriptor().label()).unwrap();
    let seen = report.last_switch.expect("the registry's last switch");
    assert_eq!((seen.from, seen.to), (last.from, last.to));
    let form = [report.forms.rcu, report.forms.sharded];
    assert_eq!(form.iter().sum::<usize>(), 1, "{form:?}");
    let ops: u64 = rounds.iter().sum();
    let total: u64 = map.snapshot().values().sum();
    assert_eq!(total, 2 * ops, "lost or doubled updates");
    for key in 0..KEYS {
        let want: u64 = (0..THREADS)
            .map(|t| {
                (0..rounds[t as usize])
                    .filter(|i| (i + t) % KEYS == key)
                    .count() as u64
            })
            .sum();
        assert_eq!(map.get_cloned(&key), Some(2 * want), "key {key}");
    }
    // Statistics continue exactly across the switches: the old form's counts are folded in.
    let stats = map.stats();
    assert_eq!(stats.inserts, KEYS, "one insert per key");
    assert_eq!(stats.updates, 2 * ops - KEYS);
    assert_eq!(stats.gets, ops + KEYS);
    assert_eq!(stats.misses, 0);
    assert_eq!((stats.entries_added, stats.entries_removed), (KEYS, 0));
    assert_eq!(stats.len, KEYS);
    assert_eq!(map.len() as u64, KEYS);
}

#[test]
fn snapshots_and_reads_are_consistent_across_switches() {
    const COUNT: u64 = 20_000;
    let map: GuardedMap<u64, u64, Counters> = GuardedMap::new();
    let done = AtomicBool::new(false);
    let checked = AtomicUsize::new(0);
    let switches = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| keep_switching(&map, &done, &switches));
        s.spawn(|| {
            // Keys go in in order: every consistent state holds a prefix of them.
            for k in 0..COUNT {
                map.insert(k, k * 10);
            }
            while checked.load(Ordering::Relaxed) < 20
                || switches.load(Ordering::Relaxed) < SWITCHES
            {
                thread::yield_now();
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let snapshot = map.snapshot();
                let n = snapshot.len() as u64;
                assert_eq!(snapshot.iter().count() as u64, n);
                for k in (0..n).step_by(97).chain(n.checked_sub(1)) {
                    assert_eq!(
                        snapshot.get(&k),
                        Some(&(k * 10)),
                        "snapshot of {n} lacks {k}"
                    );
                }
                assert_eq!(snapshot.get(&n), None);
                // A live read never sees a key that is gone or a state between two forms.
                let seen_len = map.len() as u64;
                assert!(seen_len >= n, "the map shrank from {n} to {seen_len}");
                if n > 0 {
                    assert_eq!(map.get_cloned(&(n - 1)), Some((n - 1) * 10));
                }
                checked.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    assert_eq!(map.len() as u64, COUNT);
    assert_eq!(map.iter().count() as u64, COUNT);
}

#[test]
fn max_len_is_exact_across_switches() {
    let map: GuardedMap<u64, u64, Bounded> = GuardedMap::new();
    let done = AtomicBool::new(false);
    let accepted = AtomicUsize::new(0);
    let switches = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| keep_switching(&map, &done, &switches));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (map, accepted) = (&map, &accepted);
                s.spawn(move || {
                    for k in 0..1_000 {
                        if map.try_insert(t * 1_000 + k, k).is_ok() {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    assert_eq!(map.len(), 1_000);
    assert_eq!(accepted.load(Ordering::Relaxed), 1_000);
    assert_eq!(map.stats().rejected, 3_000);
}

thread_local! {
    /// While set, hashing the key with this number panics.
    static POISONED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// A key whose `Hash` panics on demand.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Touchy(u64);

impl Hash for Touchy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        assert_ne!(POISONED.get(), Some(self.0), "user Hash panicked");
        self.0.hash(state);
    }
}

map_spec!(TouchySpec: HashMap<Touchy, u64>, adaptive);

#[test]
fn a_panicking_hash_during_a_switch_leaves_every_entry() {
    let map: GuardedMap<Touchy, u64, TouchySpec> = (0..2_000).map(|k| (Touchy(k), k)).collect();
    for to in [ActiveBackend::Rcu, ActiveBackend::Sharded] {
        let from = map.active_backend();
        assert_eq!(from, to.other());
        POISONED.set(Some(1_234));
        let failed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| map.switch_backend(to)));
        POISONED.set(None);
        assert!(
            failed.is_err(),
            "the switch should have hashed the poisoned key"
        );
        // Nothing changed: the same form, every entry, and the map takes writes.
        assert_eq!(map.active_backend(), from);
        assert_eq!(map.len(), 2_000);
        assert!((0..2_000).all(|k| map.get_cloned(&Touchy(k)) == Some(k)));
        map.insert(Touchy(5_000), 1);
        map.remove(&Touchy(5_000));
        // The next switch goes through.
        assert_eq!(map.switch_backend(to), Ok(true));
        assert_eq!(map.len(), 2_000);
        assert!((0..2_000).all(|k| map.get_cloned(&Touchy(k)) == Some(k)));
    }
}

map_spec!(Auto: HashMap<u64, u64>, adaptive, start = ActiveBackend::Rcu);

/// Runs `op` in rounds until the map's form is `form`; panics after ten seconds.
fn until_form(map: &GuardedMap<u64, u64, Auto>, form: ActiveBackend, op: impl Fn(u64)) {
    let start = std::time::Instant::now();
    while map.active_backend() != form {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {:?} after 10 s; estimate {:?}",
            map.active_backend(),
            map.backend_estimate()
        );
        for k in 0..1_000 {
            op(k);
        }
    }
}

#[test]
fn the_cost_model_follows_the_workload_and_a_pin_holds() {
    use guarded_map::SwitchReason;
    let map: GuardedMap<u64, u64, Auto> = (0..100_000).map(|k| (k, k)).collect();
    assert_eq!(map.active_backend(), ActiveBackend::Rcu);
    // Writes only: each `Rcu` write copies a leaf, a `Sharded` one does not.
    until_form(&map, ActiveBackend::Sharded, |k| {
        map.update(&k, |v| *v += 1);
    });
    let last = map.last_switch().expect("a switch");
    assert_eq!(
        (last.from, last.reason),
        (ActiveBackend::Rcu, SwitchReason::CostModel)
    );
    let estimate = last.estimate.expect("the estimate it followed");
    assert!(
        estimate.sharded_nanos * 1.25 < estimate.rcu_nanos,
        "{estimate:?}"
    );
    // Reads only: back to `Rcu`, after the dwell.
    until_form(&map, ActiveBackend::Rcu, |k| {
        assert!(map.get_cloned(&k).is_some());
    });
    assert!(map.last_switch().unwrap().at.duration_since(last.at) >= Duration::from_secs(1));
    // Pinned, writes do not move it.
    assert_eq!(map.pin_backend(ActiveBackend::Rcu), Ok(false));
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(600) {
        for k in 0..1_000 {
            map.update(&k, |v| *v += 1);
        }
    }
    assert_eq!(map.active_backend(), ActiveBackend::Rcu);
    // Unpinned, they do.
    map.unpin_backend();
    until_form(&map, ActiveBackend::Sharded, |k| {
        map.update(&k, |v| *v += 1);
    });
    assert_eq!(map.len(), 100_000);
}

map_spec!(ReadMostly: HashMap<u64, u64>, adaptive, shards = 4);

/// Keyed reads check the form inside the form's own protection, not on the gate: while switches
/// come every ~100 µs, every read finds its entry, and each read counts once.
#[test]
fn reads_across_switches_find_every_entry_and_count_once() {
    const KEYS: u64 = 5_000;
    const READERS: u64 = 2;
    let map: GuardedMap<u64, u64, ReadMostly> = (0..KEYS).map(|k| (k, k + 1)).collect();
    let done = AtomicBool::new(false);
    let switches = AtomicUsize::new(0);
    let before = map.stats();
    let reads: u64 = thread::scope(|s| {
        s.spawn(|| keep_switching(&map, &done, &switches));
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (map, switches, done) = (&map, &switches, &done);
                s.spawn(move || {
                    // Ends the switching when this reader ends, also by a failed assertion.
                    let _stop = StopOnDrop(done);
                    let mut reads = 0u64;
                    while reads < 50_000 || switches.load(Ordering::Relaxed) < SWITCHES {
                        let key = (reads * 7 + r) % KEYS;
                        assert_eq!(map.get_cloned(&key), Some(key + 1), "key {key}");
                        assert!(map.contains_key(&key));
                        reads += 2;
                    }
                    reads
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    let window = map.stats().since(&before);
    assert_eq!((window.gets, window.misses), (reads, 0));
    assert!(switches.load(Ordering::Relaxed) >= SWITCHES);
}

/// Sets its flag when dropped (on unwind too).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A switch from inside a keyed read's closure would wait for that read: it is refused, in both
/// forms.
#[test]
fn a_switch_inside_a_read_closure_is_refused() {
    let map: GuardedMap<u64, u64, ReadMostly> = (0..10).map(|k| (k, k)).collect();
    for form in [ActiveBackend::Rcu, ActiveBackend::Sharded] {
        map.switch_backend(form).unwrap();
        let inside = map.with(&1, |_| map.switch_backend(form.other()));
        assert_eq!(inside, Some(Err(guarded_map::SwitchError::Inside)));
        // A nested read is still fine.
        assert_eq!(map.with(&1, |_| map.get_cloned(&2)), Some(Some(2)));
        assert_eq!(map.active_backend(), form);
    }
}
