//! Calling a map from inside one of its own closures: every pair (outer operation × inner
//! operation) on both backends, each under a watchdog, either works or panics at once naming the
//! map and the outer operation; never a hang, and never an outcome that depends on the shards (the
//! hasher's seed), which each round draws afresh.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use guarded_map::{Compute, GuardedMap, MapSpec, map_spec};

map_spec!(RcuSpec: HashMap<u32, u32>, rcu, name = "reentry_rcu");
map_spec!(ShardedSpec: HashMap<u32, u32>, sharded, shards = 64, name = "reentry_sharded");

const OUTER: [&str; 7] = [
    "with",
    "for_each",
    "update",
    "upsert",
    "compute",
    "retain",
    "remove_if",
];
const INNER: [&str; 17] = [
    "get_cloned",
    "with",
    "contains_key",
    "for_each",
    "iter",
    "snapshot",
    "len",
    "get_or_insert_with",
    "insert",
    "remove",
    "update",
    "upsert",
    "compute",
    "remove_if",
    "retain",
    "clear",
    "replace_all",
];

fn is_write(op: &str) -> bool {
    !matches!(
        op,
        "get_cloned"
            | "with"
            | "contains_key"
            | "for_each"
            | "iter"
            | "snapshot"
            | "len"
            | "get_or_insert_with" // of a present key: a read
    )
}

/// Runs `inner` on `map` (key 2 is present, 9 is not).
fn inner_op<S: MapSpec>(map: &GuardedMap<u32, u32, S>, inner: &str)
where
    GuardedMap<u32, u32, S>: Ops,
{
    map.run(inner);
}

/// The operations, over either backend.
trait Ops {
    fn fill(&self);
    fn still_works(&self) -> bool;
    fn run(&self, op: &str);
    fn outer(&self, op: &str, f: &mut dyn FnMut());
}

macro_rules! ops {
    ($spec:ty) => {
        impl Ops for GuardedMap<u32, u32, $spec> {
            fn fill(&self) {
                for k in 0..5 {
                    self.insert(k, k);
                }
            }

            fn still_works(&self) -> bool {
                self.insert(100, 100);
                self.get_cloned(&100) == Some(100)
            }

            fn run(&self, op: &str) {
                match op {
                    "get_cloned" => drop(self.get_cloned(&2)),
                    "with" => drop(self.with(&2, |v| *v)),
                    "contains_key" => drop(self.contains_key(&2)),
                    "for_each" => self.for_each(|_, _| {}),
                    "iter" => drop(self.iter().count()),
                    "snapshot" => drop(self.snapshot()),
                    "len" => drop(self.len()),
                    "get_or_insert_with" => drop(self.get_or_insert_with(&2, || 0)),
                    "insert" => drop(self.insert(9, 9)),
                    "remove" => drop(self.remove(&3)),
                    "update" => drop(self.update(&2, |v| *v += 1)),
                    "upsert" => self.upsert(9, || 0, |v| *v += 1),
                    "compute" => drop(self.compute(&9, |_| Compute::Set(1))),
                    "remove_if" => drop(self.remove_if(&3, |_, _| true)),
                    "retain" => self.retain(|_, _| true),
                    "clear" => self.clear(),
                    "replace_all" => drop(self.replace_all([(1, 1)])),
                    other => unreachable!("{other}"),
                }
            }

            fn outer(&self, op: &str, f: &mut dyn FnMut()) {
                let mut once = Some(f);
                let mut call = || {
                    if let Some(f) = once.take() {
                        f();
                    }
                };
                match op {
                    "with" => drop(self.with(&1, |_| call())),
                    "for_each" => self.for_each(|_, _| call()),
                    "update" => drop(self.update(&1, |_| call())),
                    "upsert" => self.upsert(1, || 0, |_| call()),
                    "compute" => drop(self.compute(&1, |_| {
                        call();
                        Compute::Keep
                    })),
                    "retain" => self.retain(|_, _| {
                        call();
                        true
                    }),
                    "remove_if" => drop(self.remove_if(&1, |_, _| {
                        call();
                        false
                    })),
                    other => unreachable!("{other}"),
                }
            }
        }
    };
}
ops!(RcuSpec);
ops!(ShardedSpec);

/// Runs every pair on a fresh map (a fresh hasher seed) and checks each outcome.
fn every_pair<S: MapSpec>(reads_in_writes: bool)
where
    GuardedMap<u32, u32, S>: Ops + Default + Send + Sync + 'static,
{
    let label = S::DESCRIPTOR.label();
    for outer in OUTER {
        for inner in INNER {
            let (done, finished) = mpsc::channel();
            let worker = thread::spawn(move || {
                let map = GuardedMap::<u32, u32, S>::default();
                map.fill();
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    map.outer(outer, &mut || inner_op(&map, inner));
                }));
                let message = caught.err().map(|payload| {
                    payload
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_default()
                });
                // The map still works after the refusal.
                assert!(map.still_works());
                done.send(message).unwrap();
            });
            let message = finished
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("{label}: `{inner}` inside `{outer}` hangs"));
            worker.join().unwrap();
            let outer_writes = !matches!(outer, "with" | "for_each");
            let refused = is_write(inner) || (outer_writes && !reads_in_writes && inner != "len");
            match message {
                None => assert!(
                    !refused,
                    "{label}: `{inner}` inside `{outer}` was not refused"
                ),
                Some(message) => {
                    assert!(
                        refused,
                        "{label}: `{inner}` inside `{outer}` panicked: {message}"
                    );
                    assert!(
                        message.contains(label) && message.contains("on the same map"),
                        "{label}: `{inner}` inside `{outer}`: {message}"
                    );
                    let names_outer = message.contains(&format!("inside `{outer}`"))
                        || (outer == "with" && message.contains("inside `with`"));
                    assert!(
                        names_outer,
                        "{label}: `{inner}` inside `{outer}`: {message}"
                    );
                }
            }
        }
    }
}

#[test]
fn rcu_refuses_nested_writes_and_serves_nested_reads() {
    for _seed in 0..3 {
        every_pair::<RcuSpec>(true);
    }
}

#[test]
fn sharded_refuses_every_nested_write_whatever_the_shards() {
    // 64 shards and a fresh seed per map: the outer and inner keys share a shard in some rounds
    // and not in others; the outcome must not change.
    for _seed in 0..20 {
        every_pair::<ShardedSpec>(false);
    }
}

/// A read nested in a read of the same shard while another thread waits to write it: the waiting
/// writer turns new readers away, but not this one, which its own outer read holds the writer
/// back for.
#[test]
fn sharded_nested_read_passes_a_waiting_writer() {
    nested_read_passes_a_waiting_writer::<ShardedSpec>();
}

map_spec!(AdaptiveSharded: HashMap<u32, u32>, adaptive, pin = guarded_map::ActiveBackend::Sharded);

/// The same in an adaptive map's `Sharded` form: the nested read must find the outer read's frame
/// under the address its shard lock looks it up by.
#[test]
fn adaptive_nested_read_passes_a_waiting_writer() {
    nested_read_passes_a_waiting_writer::<AdaptiveSharded>();
}

fn nested_read_passes_a_waiting_writer<S: guarded_map::SpecFor<u32, u32> + 'static>()
where
    GuardedMap<u32, u32, S>: Default + Send + Sync,
{
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let map = GuardedMap::<u32, u32, S>::default();
        map.insert(1, 1);
        let seen = thread::scope(|s| {
            map.with(&1, |outer| {
                let writer = s.spawn(|| map.insert(1, 2));
                // Long enough for the writer to spin out and queue with its waiting bit set.
                thread::sleep(Duration::from_millis(200));
                let inner = map.get_cloned(&1);
                let snapshot = map.snapshot().len();
                // The writer still waits for the outer read.
                assert!(!writer.is_finished());
                (*outer, inner, snapshot)
            })
        });
        assert_eq!(map.get_cloned(&1), Some(2));
        done.send(seen).unwrap();
    });
    // The scope above only ends once the writer is in, after the outer read: if the nested read
    // had queued behind the writer, nothing would ever finish.
    let seen = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("a nested read behind a waiting writer hangs");
    assert_eq!(seen, Some((1, Some(1), 1)));
}

/// Values alive now (made and cloned minus dropped).
static LIVE: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

/// A value that counts its live copies.
struct Counted;

impl Counted {
    fn new() -> Self {
        LIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Counted
    }
}
impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new()
    }
}
impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

map_spec!(CountedRcu: HashMap<u32, Counted>, rcu);

/// 20 000 publishes by another thread while this one stays inside one read and reads the map
/// again and again: what the reads hold back stays bounded. Each publish retires a leaf of two
/// values; they are freed a batch of retired nodes at a time (128), and neither the outer read
/// (whose tree does not hold them) nor the nested reads (each holds back only the batch whose
/// grace period began while it ran) keep them longer: a few batches at most. Without that, the
/// 20 000 leaves would all live until the outer read ends.
#[test]
fn rcu_nested_reads_keep_a_bounded_number_of_versions() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let map = GuardedMap::<u32, Counted, CountedRcu>::new();
    map.insert(0, Counted::new());
    map.insert(1, Counted::new());
    let writing = AtomicBool::new(true);
    let most = map
        .with(&0, |_| {
            thread::scope(|s| {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        map.insert(1, Counted::new());
                    }
                    writing.store(false, Relaxed);
                });
                let mut most = 0;
                while writing.load(Relaxed) {
                    assert!(map.contains_key(&1));
                    most = most.max(LIVE.load(Relaxed));
                }
                assert!(map.contains_key(&1));
                most.max(LIVE.load(Relaxed))
            })
        })
        .unwrap();
    assert!(most <= 2_000, "{most} values alive during one read");
    drop(map);
    assert_eq!(LIVE.load(Relaxed), 0);
}
