//! A panic in user code (closures, `Hash`, `Eq`, `Clone`) unwinds out of the call and leaves the map
//! usable with every other entry intact, for both backends. See "Panics in user code" on `GuardedMap`.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};

use guarded_map::{GuardedMap, SpecFor, map_spec};

thread_local! {
    /// When set, the next `Hash`, `Eq` or `Clone` of a `Touchy` key panics.
    static ARMED: Cell<Option<Trap>> = const { Cell::new(None) };
    /// When set, every `Hash` of this one `Touchy` key panics.
    static POISONED: Cell<Option<u32>> = const { Cell::new(None) };
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Trap {
    Hash,
    Eq,
    Clone,
}

fn spring(trap: Trap) {
    if ARMED.get() == Some(trap) {
        ARMED.set(None);
        panic!("user {trap:?} panicked");
    }
}

/// A key whose `Hash`, `Eq` and `Clone` can be made to panic.
#[derive(Debug)]
struct Touchy(u32);

impl Hash for Touchy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        spring(Trap::Hash);
        assert_ne!(POISONED.get(), Some(self.0), "user Hash panicked");
        self.0.hash(state);
    }
}
impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        spring(Trap::Eq);
        self.0 == other.0
    }
}
impl Eq for Touchy {}
impl Clone for Touchy {
    fn clone(&self) -> Self {
        spring(Trap::Clone);
        Touchy(self.0)
    }
}

map_spec!(RcuSpec: HashMap<Touchy, u32>, rcu);
map_spec!(ShardedSpec: HashMap<Touchy, u32>, sharded, shards = 4);

trait Spec: SpecFor<Touchy, u32> {}
impl<S: SpecFor<Touchy, u32>> Spec for S {}

const N: u32 = 200;

fn filled<S: Spec>() -> GuardedMap<Touchy, u32, S> {
    let map = GuardedMap::new();
    for k in 0..N {
        map.insert(Touchy(k), k);
    }
    map
}

fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

/// Every entry but `except` still holds its original value, and the map still takes writes.
fn intact_and_usable<S: Spec>(map: &GuardedMap<Touchy, u32, S>, except: Option<u32>) {
    for k in (0..N).filter(|k| Some(*k) != except) {
        assert_eq!(
            map.get_cloned(&Touchy(k)),
            Some(k),
            "entry {k} lost or changed"
        );
    }
    map.insert(Touchy(N + 1), 1);
    assert_eq!(map.update(&Touchy(N + 1), |v| *v + 1), Some(2));
    assert_eq!(map.remove(&Touchy(N + 1)), Some(1));
    assert_eq!(map.snapshot().len(), map.len());
    let stats = map.stats();
    assert_eq!(stats.len as usize, map.len());
    // Counted entry changes match the entries: a failed call counts only what it left behind.
    assert_eq!(stats.entries_added - stats.entries_removed, stats.len);
}

fn closures_and_traits<S: Spec>(rcu: bool) {
    // update: the closure panics after writing.
    let map = filled::<S>();
    assert!(panics(|| {
        map.update(&Touchy(3), |v| {
            *v = 999;
            panic!("boom");
        });
    }));
    // Rcu publishes nothing of a failed call; Sharded keeps what the closure wrote.
    assert_eq!(map.get_cloned(&Touchy(3)), Some(if rcu { 3 } else { 999 }));
    intact_and_usable(&map, Some(3));

    // upsert: panicking default, then a panicking closure on a new key.
    let map = filled::<S>();
    assert!(panics(|| map.upsert(
        Touchy(N + 5),
        || panic!("no default"),
        |_| ()
    )));
    assert!(!map.contains_key(&Touchy(N + 5)));
    assert!(panics(|| map.upsert(
        Touchy(N + 6),
        || 1,
        |_| panic!("closure")
    )));
    assert_eq!(map.contains_key(&Touchy(N + 6)), !rcu);
    map.remove(&Touchy(N + 6));
    assert_eq!(map.len() as u32, N);
    intact_and_usable(&map, None);

    // retain: panics half-way.
    let map = filled::<S>();
    let mut seen = 0;
    assert!(panics(|| {
        map.retain(|_, _| {
            seen += 1;
            assert!(seen < N / 2, "retain closure gave up");
            true
        })
    }));
    assert_eq!(map.len() as u32, N);
    intact_and_usable(&map, None);

    // Hash, Eq and Clone panicking inside insert, get, remove and snapshot.
    let map = filled::<S>();
    for trap in [Trap::Hash, Trap::Eq, Trap::Clone] {
        ARMED.set(Some(trap));
        let _ = panics(|| {
            map.insert(Touchy(7), 70);
        });
        ARMED.set(Some(trap));
        let _ = panics(|| {
            map.get_cloned(&Touchy(8));
        });
        ARMED.set(Some(trap));
        let _ = panics(|| {
            map.remove(&Touchy(9));
        });
        ARMED.set(Some(trap));
        let _ = panics(|| {
            map.snapshot();
        });
        ARMED.set(None);
    }
    // Key 7 may hold 70 if its insert got past the trap; 9 may be gone; everything else is intact.
    for k in (0..N).filter(|k| ![7, 9].contains(k)) {
        assert_eq!(map.get_cloned(&Touchy(k)), Some(k));
    }
    assert!(matches!(map.get_cloned(&Touchy(7)), Some(7) | Some(70)));
    map.insert(Touchy(7), 7);
    map.insert(Touchy(9), 9);
    intact_and_usable(&map, None);

    // A growing map loses nothing (a `Sharded` table hashes every key before anything moves; an
    // `Rcu` copy that fails is not published), and a panicking `Eq` on a lookup that does reach it (re-inserting present keys)
    // loses nothing either.
    let map = GuardedMap::<Touchy, u32, S>::new();
    for k in 0..2_000 {
        map.insert(Touchy(k), k);
    }
    let mut sprung = 0;
    for k in (0..2_000).step_by(7) {
        ARMED.set(Some(Trap::Eq));
        sprung += u32::from(panics(|| {
            map.insert(Touchy(k), 0);
        }));
        ARMED.set(None);
    }
    assert_eq!(
        sprung,
        2_000u32.div_ceil(7),
        "every re-insert compares keys"
    );
    let snapshot = map.snapshot();
    assert_eq!(snapshot.len(), 2_000);
    for (key, value) in &snapshot {
        assert_eq!(key.0, *value);
    }
}

#[test]
fn rcu_survives_panics_in_user_code() {
    closures_and_traits::<RcuSpec>(true);
}

#[test]
fn sharded_survives_panics_in_user_code() {
    closures_and_traits::<ShardedSpec>(false);
}

/// `Rcu` versions keep no hashes, so a write that re-shards hashes every key again, with the
/// user's `Hash`. When that panics, the half-built copy is dropped and the write goes ahead without
/// re-sharding; a whole-map rebuild (`shrink_to_fit`) that panics publishes nothing.
#[test]
fn rcu_reshard_whose_hash_panics_still_writes() {
    let map = GuardedMap::<Touchy, u32, RcuSpec>::new();
    // 2 048 entries fill 16 shards to their bound (8 * 16^2): the next new key re-shards.
    const FULL: u32 = 2_048;
    for k in 0..FULL {
        map.insert(Touchy(k), k);
    }
    let before = map.stats();
    POISONED.set(Some(7));
    assert!(
        !panics(|| {
            map.insert(Touchy(FULL), FULL);
        }),
        "the insert goes ahead without re-sharding"
    );
    let after_insert = map.stats();
    assert_eq!(after_insert.rcu_publishes, before.rcu_publishes + 1);
    assert!(panics(|| map.shrink_to_fit()), "shrinking hashes every key");
    POISONED.set(None);
    let after = map.stats();
    assert_eq!(after.rcu_publishes, after_insert.rcu_publishes);
    assert_eq!(
        (map.len(), after.len),
        (FULL as usize + 1, u64::from(FULL) + 1)
    );
    for k in 0..=FULL {
        assert_eq!(
            map.get_cloned(&Touchy(k)),
            Some(k),
            "entry {k} lost or changed"
        );
    }
    assert_eq!(map.snapshot().len(), FULL as usize + 1);
}

thread_local! {
    /// Every this many `Hash` calls of a `Rare` key, one panics (0: never).
    static RARE_EVERY: Cell<u32> = const { Cell::new(0) };
    static RARE_CALLS: Cell<u32> = const { Cell::new(0) };
}

/// A key whose `Hash` panics once in `RARE_EVERY` calls.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Rare(u32);

impl Hash for Rare {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let calls = RARE_CALLS.get() + 1;
        RARE_CALLS.set(calls);
        let every = RARE_EVERY.get();
        assert!(
            every == 0 || !calls.is_multiple_of(every),
            "user Hash panicked"
        );
        self.0.hash(state);
    }
}

map_spec!(RareRcu: HashMap<Rare, u32>, rcu);
map_spec!(RareSharded: HashMap<Rare, u32>, sharded, shards = 4);

/// A `Hash` that panics once in 1 001 calls fails about one insert in a thousand (its own hash),
/// and never stops a map growing, although growing hashes every key of a shard (`Sharded`) or of
/// the whole map (`Rcu`'s re-sharding) again.
fn growth_survives_a_rarely_panicking_hash<S: SpecFor<Rare, u32>>() {
    let map = GuardedMap::<Rare, u32, S>::default();
    RARE_EVERY.set(1_001);
    let mut failed = 0u32;
    for k in 0..20_000 {
        failed += u32::from(panics(|| {
            map.insert(Rare(k), k);
        }));
    }
    RARE_EVERY.set(0);
    assert!(failed < 200, "{failed} of 20 000 inserts panicked");
    assert_eq!(map.len(), 20_000 - failed as usize);
    let stats = map.stats();
    assert_eq!(
        stats.entries_added - stats.entries_removed,
        map.len() as u64
    );
}

#[test]
fn rcu_growth_survives_a_rarely_panicking_hash() {
    growth_survives_a_rarely_panicking_hash::<RareRcu>();
}

#[test]
fn sharded_growth_survives_a_rarely_panicking_hash() {
    growth_survives_a_rarely_panicking_hash::<RareSharded>();
}

/// A hasher that sends every key to the same slot: a shard's entries then sit in one run of full
/// slots, and removing some leaves deleted slots (not empty ones) among them, as heavy churn does.
#[derive(Default)]
struct Colliding;

impl Hasher for Colliding {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, _: &[u8]) {}
}

/// `Sharded` tables keep no hashes either: a shard that must grow hashes its keys again, all of them
/// before any entry moves. On a shard full of entries and deleted slots, hashbrown itself would
/// rehash in place, and a panicking `Hash` there drops every entry not yet rehashed. Here the
/// insert fails and the shard is as it was.
#[test]
fn sharded_growth_whose_hash_panics_loses_nothing() {
    map_spec!(OneShard: HashMap<Touchy, u32>, sharded, shards = 1);
    type Map = GuardedMap<Touchy, u32, OneShard, std::hash::BuildHasherDefault<Colliding>>;
    let map = Map::default();
    // Fill the shard to its capacity, then remove all but 100.
    let mut next = 0;
    while next < 200 || map.len() < map.capacity() {
        map.insert(Touchy(next), next);
        next += 1;
    }
    let kept = next - 100..next;
    for k in 0..kept.start {
        map.remove(&Touchy(k));
    }
    POISONED.set(Some(kept.start + 50));
    let first_new = next;
    let mut failed = false;
    for _ in 0..1_000 {
        if panics(|| {
            map.insert(Touchy(next), next);
        }) {
            failed = true;
            break;
        }
        next += 1;
    }
    POISONED.set(None);
    assert!(
        failed,
        "an insert grew the shard and hashed the poisoned key"
    );
    assert_eq!(
        map.get_cloned(&Touchy(next)),
        None,
        "the failed insert left nothing"
    );
    let present: Vec<u32> = kept.chain(first_new..next).collect();
    assert_eq!(map.len(), present.len());
    for &k in &present {
        assert_eq!(map.get_cloned(&Touchy(k)), Some(k), "entry {k} lost");
    }
    let stats = map.stats();
    assert_eq!(stats.entries_added - stats.entries_removed, stats.len);
    // Once the key hashes again, the shard grows and takes the insert.
    map.insert(Touchy(next), next);
    assert_eq!(map.len(), present.len() + 1);
}

/// A value that counts its drops.
#[derive(Clone)]
struct Counted(u32);

thread_local! {
    static DROPPED: Cell<u32> = const { Cell::new(0) };
}

impl Drop for Counted {
    fn drop(&mut self) {
        DROPPED.set(DROPPED.get() + 1);
    }
}

map_spec!(RcuCounted: HashMap<u32, Counted>, rcu);

/// An `Rcu` read whose closure panics ends like any other: it is counted once, and it clears the
/// reader's running mark. With the mark left set, the writer's grace periods would wait for that
/// read forever and never free what later writes replace.
#[test]
fn rcu_read_whose_closure_panics_is_counted_and_unmarked() {
    let map: GuardedMap<u32, Counted, RcuCounted> = GuardedMap::new();
    map.insert(1, Counted(1));
    assert!(panics(|| {
        map.with(&1, |_| panic!("reader gave up"));
    }));
    assert_eq!(map.stats().gets, 1);
    // Each insert drops the value it returns at once; the leaf it replaced (holding the value
    // again) is freed once no read can see it, a batch at a time.
    let before = DROPPED.get();
    let writes = 2_000;
    for i in 0..writes {
        drop(map.insert(1, Counted(i)));
    }
    let freed = DROPPED.get() - before - writes;
    assert!(
        freed > writes / 2,
        "only {freed} of {writes} replaced leaves were freed: the panicked read still counts as running"
    );
    assert_eq!(map.with(&1, |v| v.0), Some(writes - 1));
    assert_eq!(map.stats().gets, 2);
}

map_spec!(PlainRcu: HashMap<u32, u32>, rcu);
map_spec!(PlainSharded: HashMap<u32, u32>, sharded, shards = 8);

/// A `retain` whose closure panics after removing 499 entries: `Sharded` keeps (and counts) the
/// removals made before the panic, `Rcu` publishes none; either way the retain is counted and
/// `entries_added - entries_removed == len`.
fn retain_that_panics_keeps_the_statistics_exact<S: SpecFor<u32, u32>>() {
    let map = GuardedMap::<u32, u32, S>::new();
    for k in 0..1_000 {
        map.insert(k, k);
    }
    let mut removed = 0;
    assert!(panics(|| map.retain(|_, _| {
        assert!(removed < 499, "user closure panicked");
        removed += 1;
        false
    })));
    let stats = map.stats();
    assert_eq!(stats.retains, 1);
    assert_eq!(
        stats.entries_added - stats.entries_removed,
        map.len() as u64
    );
    assert_eq!(stats.len, map.len() as u64);
    assert!(map.len() == 1_000 || map.len() == 501, "len {}", map.len());
}

#[test]
fn rcu_retain_that_panics_keeps_the_statistics_exact() {
    retain_that_panics_keeps_the_statistics_exact::<PlainRcu>();
}

#[test]
fn sharded_retain_that_panics_keeps_the_statistics_exact() {
    retain_that_panics_keeps_the_statistics_exact::<PlainSharded>();
}
