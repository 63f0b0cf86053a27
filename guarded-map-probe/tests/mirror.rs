//! `guarded_map::bpf::Mirror` against the kernel, as root. The mirror programs change the kernel
//! map `MIRRORED` from the kernel side (a uprobe on `guarded_map_mirror_op`, run in the calling
//! thread), `MirrorWriter`s change it from user space, and at each quiescent point the guarded map
//! must equal `bpftool map dump` of the kernel map.
//!
//! Outside CI these tests skip, saying why, when this process is not root; under `CI=true` they
//! must run.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use guarded_map::bpf::{BpfMap, Mirror, MirrorOptions, MirrorTarget, MirrorWriter};
use guarded_map::{GuardedMap, OrderedMap, map_spec};
use guarded_map_probe::mirror_programs::{MirrorPrograms, guarded_map_mirror_op};
use guarded_map_probe_common::change::mirror_op;
use guarded_map_tests::root_or_skip;

map_spec!(Ordered: BTreeMap<u32, u64>, ordered);
map_spec!(Hashed: HashMap<u32, u64>, sharded);

/// The tests share the kernel map of one loaded object each; one at a time, since each loads
/// its own (the uprobe fires for every loaded copy's program).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Whether to run; panics under CI when this process cannot.
fn privileged() -> bool {
    root_or_skip("the mirror tests", "CAP_BPF, CAP_PERFMON")
}

/// The kernel map's entries as `bpftool map dump` prints them.
fn bpftool_dump(id: u32) -> BTreeMap<u32, u64> {
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "id", &id.to_string()])
        .output()
        .expect("running bpftool (Debian package bpftool; ./scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool's JSON");
    let entries = json.as_array().expect("an array of entries");
    entries
        .iter()
        .map(|e| (number(&e["key"]) as u32, number(&e["value"])))
        .collect()
}

/// A key or value of bpftool's JSON: bytes as hex strings (little-endian), or a number where the
/// map has BTF.
fn number(v: &serde_json::Value) -> u64 {
    if let Some(n) = v.as_u64() {
        return n;
    }
    let bytes = v.as_array().expect("a byte array");
    bytes.iter().rev().fold(0u64, |acc, b| {
        let b = b.as_str().expect("a hex byte");
        acc << 8 | u64::from_str_radix(b.trim_start_matches("0x"), 16).expect("hex")
    })
}

fn contents(target: &impl MirrorTarget<u32, u64>) -> BTreeMap<u32, u64> {
    target
        .keys()
        .into_iter()
        .map(|k| (k, target.value(&k).expect("a listed key")))
        .collect()
}

/// Polls until two polls in a row apply nothing and nothing waits.
fn settle<T: MirrorTarget<u32, u64> + ?Sized>(mirror: &mut Mirror<'_, u32, u64, T>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut quiet = 0;
    while quiet < 2 {
        assert!(
            Instant::now() < deadline,
            "the mirror did not settle: {:?}",
            mirror.stats()
        );
        let applied = mirror.poll(Duration::from_millis(5)).expect("poll");
        quiet = if applied == 0 && mirror.stats().pending == 0 {
            quiet + 1
        } else {
            0
        };
    }
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Keys each writer owns: changes to one key come from one thread, kernel or user side.
const KEYS_PER_WRITER: u32 = 1000;

/// One writer's random changes to its own keys, from the kernel and from user space.
fn write_randomly(writer: &MirrorWriter<u32, u64>, first: u32, seed: u64, ops: usize) {
    let mut rng = Rng(seed | 1);
    for _ in 0..ops {
        let key = first + rng.below(u64::from(KEYS_PER_WRITER)) as u32;
        let count = 1 + rng.below(8) as u32;
        let count = count.min(first + KEYS_PER_WRITER - key);
        let value = rng.below(1 << 40);
        match rng.below(5) {
            0 => guarded_map_mirror_op(mirror_op::SET, key, value, count),
            1 => guarded_map_mirror_op(mirror_op::DELETE, key, 0, count),
            2 => guarded_map_mirror_op(mirror_op::ADD, key, 1 + value % 100, count),
            3 => writer.update(key, value).expect("update"),
            _ => {
                writer.delete(key).expect("delete");
            }
        }
    }
}

/// Runs `writers` threads of random changes while `mirror` polls; then settles it.
fn run_phase<T: MirrorTarget<u32, u64> + Sync + ?Sized>(
    mirror: &mut Mirror<'_, u32, u64, T>,
    writers: u32,
    seed: u64,
    ops: usize,
) {
    let handles: Vec<MirrorWriter<u32, u64>> = (0..writers)
        .map(|_| mirror.writer().expect("writer"))
        .collect();
    thread::scope(|s| {
        let running: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let first = i as u32 * KEYS_PER_WRITER;
                s.spawn(move || write_randomly(w, first, seed + i as u64 * 7919, ops))
            })
            .collect();
        while !running.iter().all(|h| h.is_finished()) {
            mirror.poll(Duration::from_millis(2)).expect("poll");
        }
    });
    settle(mirror);
}

/// An incremental mirror of `MIRRORED` into `target`.
fn watch<'t, T: MirrorTarget<u32, u64> + ?Sized>(
    programs: &MirrorPrograms,
    target: &'t T,
    options: MirrorOptions,
    what: &str,
) -> Mirror<'t, u32, u64, T> {
    let kernel = programs.mirrored().expect("MIRRORED");
    Mirror::incremental_with(kernel.map, kernel.changes, kernel.counters, target, options)
        .expect(what)
}

fn load() -> (MirrorPrograms, u32) {
    let mut programs = MirrorPrograms::load().expect("loading the mirror programs");
    programs.attach_mirror_op().expect("attaching mirror_op");
    let id = programs.mirrored().expect("MIRRORED").map.info().id;
    (programs, id)
}

#[test]
fn incremental_mirror_equals_the_kernel_map_at_every_quiescent_point() {
    if !privileged() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (programs, id) = load();
    // Before the mirror starts: entries enough that some hash buckets hold two or more, which a
    // listing of one entry per batch must grow for (ENOSPC).
    for first in (100_000..120_000).step_by(64) {
        guarded_map_mirror_op(mirror_op::SET, first, u64::from(first), 64);
    }
    let ordered: OrderedMap<u32, u64, Ordered> = OrderedMap::new();
    let options = MirrorOptions::default()
        .chunk(1)
        .reconcile_every(Duration::ZERO);
    let mut mirror = watch(&programs, &ordered, options, "the first listing");
    let first = mirror.stats();
    assert!(
        first.grown > 0,
        "a one-entry batch never met a two-entry bucket: {first:?}"
    );
    assert_eq!(
        contents(&ordered),
        bpftool_dump(id),
        "after the first listing"
    );

    for phase in 0..3u64 {
        run_phase(&mut mirror, 2, 1 + phase * 1000, 3000);
        assert_eq!(contents(&ordered), bpftool_dump(id), "after phase {phase}");
    }
    // Exact all along: a reconciliation finds nothing to correct.
    mirror.sync().expect("reconcile");
    let stats = mirror.stats();
    assert_eq!(
        (stats.drift, stats.lost, stats.gaps, stats.refused),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.reconciliations, 1);
    assert!(stats.changes > 10_000 && stats.lag.count > 0, "{stats:?}");

    // A write from outside the protocol (no change record) is drift, found and corrected.
    let outside: BpfMap<u32, u64> = BpfMap::open_by_id(id).expect("open by id");
    outside.update(5, 555).expect("update");
    outside.delete(100_000).expect("delete");
    mirror.sync().expect("reconcile");
    assert_eq!(mirror.stats().drift, 2);
    assert_eq!(
        contents(&ordered),
        bpftool_dump(id),
        "after reconciling drift"
    );
}

#[test]
fn a_mirror_killed_mid_run_and_restarted_heals() {
    if !privileged() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (programs, id) = load();
    let hashed: GuardedMap<u32, u64, Hashed> = GuardedMap::new();
    let mut mirror = watch(
        &programs,
        &hashed,
        MirrorOptions::default(),
        "the first listing",
    );
    let writer = mirror.writer().expect("writer");
    // Killed mid-run: writers go on while no consumer reads the ring.
    thread::scope(|s| {
        let writing = s.spawn(|| write_randomly(&writer, 0, 42, 6000));
        for _ in 0..50 {
            mirror.poll(Duration::from_millis(1)).expect("poll");
        }
        drop(mirror);
        writing.join().expect("writer");
    });
    assert_ne!(
        contents(&hashed),
        bpftool_dump(id),
        "the stopped mirror missed changes"
    );

    // Restarted over the same guarded map: its listing heals it, and it follows from there.
    let mut mirror = watch(
        &programs,
        &hashed,
        MirrorOptions::default(),
        "the restart's listing",
    );
    assert!(mirror.stats().changes > 0);
    assert_eq!(
        contents(&hashed),
        bpftool_dump(id),
        "healed by the restart's listing"
    );
    run_phase(&mut mirror, 2, 99, 3000);
    assert_eq!(contents(&hashed), bpftool_dump(id), "after the restart");
    mirror.sync().expect("reconcile");
    assert_eq!(mirror.stats().drift, 0, "{:?}", mirror.stats());
}

#[test]
fn full_sync_mirror_follows_inserts_updates_and_deletes() {
    if !privileged() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_programs, id) = load();
    guarded_map_mirror_op(mirror_op::SET, 1, 10, 64);
    let hashed: GuardedMap<u32, u64, Hashed> = GuardedMap::new();
    let kernel: BpfMap<u32, u64> = BpfMap::open_by_id(id).expect("open by id");
    let options = MirrorOptions::default().every(Duration::from_millis(20));
    let mut mirror = Mirror::full_with(kernel, &hashed, options).expect("the first listing");
    assert_eq!(hashed.len(), 64);
    guarded_map_mirror_op(mirror_op::DELETE, 1, 0, 10);
    guarded_map_mirror_op(mirror_op::ADD, 60, 5, 10);
    let writer = mirror.writer().expect("writer");
    writer.update(1000, 7).expect("update");
    let before = mirror.stats().syncs;
    while mirror.stats().syncs == before {
        mirror.poll(Duration::from_millis(50)).expect("poll");
    }
    assert_eq!(contents(&hashed), bpftool_dump(id));
    assert_eq!(hashed.get_cloned(&60), Some(15));
    assert_eq!(hashed.get_cloned(&5), None);
}

#[test]
fn a_mirror_publishes_its_metrics() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    if !privileged() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (programs, id) = load();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let ordered: OrderedMap<u32, u64, Ordered> = OrderedMap::new();
    metrics::with_local_recorder(&recorder, || {
        let options = MirrorOptions::default().label("mirrored_test");
        let mut mirror = watch(&programs, &ordered, options, "the first listing");
        guarded_map_mirror_op(mirror_op::SET, 0, 1, 40);
        settle(&mut mirror);
        let outside: BpfMap<u32, u64> = BpfMap::open_by_id(id).expect("open by id");
        outside.update(1000, 1).expect("update");
        mirror.sync().expect("reconcile");
    });
    let mut seen = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        assert!(
            labels.contains(&"bpf_map=mirrored_test".to_string()),
            "{labels:?}"
        );
        let name = format!("{} {}", key.key().name(), labels.join(","));
        let amount = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Histogram(samples) => samples.len() as f64,
            DebugValue::Gauge(g) => g.into_inner(),
        };
        seen.insert(name, amount);
    }
    let get = |name: &str| {
        seen.get(name)
            .copied()
            .unwrap_or_else(|| panic!("{name} missing: {seen:?}"))
    };
    assert_eq!(
        get("guarded_map_mirror_changes_total bpf_map=mirrored_test"),
        41.0
    );
    assert_eq!(
        get("guarded_map_mirror_drift_total bpf_map=mirrored_test"),
        1.0
    );
    assert!(get("guarded_map_mirror_lag_seconds bpf_map=mirrored_test") >= 1.0);
    assert_eq!(
        get("guarded_map_mirror_sync_seconds bpf_map=mirrored_test,kind=full"),
        1.0
    );
    assert_eq!(
        get("guarded_map_mirror_sync_seconds bpf_map=mirrored_test,kind=reconcile"),
        1.0
    );
}
