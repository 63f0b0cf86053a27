//! Misuse panics where the mistake is: a map method that panics on misuse reports the caller's
//! line (`#[track_caller]`), not a line inside guarded-map.

use std::cell::RefCell;
use std::panic::{self, Location};

use guarded_map::{GuardedMap, map_spec};

map_spec!(Bounded: HashMap<u32, u32>, sharded, max_len = 1);
map_spec!(BoundedRcu: HashMap<u32, u32>, rcu, max_len = 1);

thread_local! {
    static WHERE: RefCell<Option<(String, u32)>> = const { RefCell::new(None) };
}

/// Runs `f`, which must panic, and returns the file and line the panic reported.
fn panic_location(f: impl FnOnce()) -> (String, u32) {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| (l.file().to_owned(), l.line()));
        WHERE.with(|w| *w.borrow_mut() = at);
    }));
    let result = panic::catch_unwind(panic::AssertUnwindSafe(f));
    panic::set_hook(previous);
    assert!(result.is_err(), "expected a panic");
    WHERE
        .with(|w| w.borrow_mut().take())
        .expect("a panic location")
}

/// This file and `line`.
#[track_caller]
fn here(line: u32) -> (String, u32) {
    (Location::caller().file().to_owned(), line)
}

// One test function: the panic hook is process-wide.
#[test]
fn full_map_panics_report_the_callers_line() {
    let map: GuardedMap<u32, u32, Bounded> = GuardedMap::new();
    map.insert(1, 1);
    let rcu: GuardedMap<u32, u32, BoundedRcu> = GuardedMap::new();
    rcu.insert(1, 1);

    type Map = GuardedMap<u32, u32, Bounded>;
    let two = || [(1, 1), (2, 2)];
    let at = panic_location(|| {
        map.insert(2, 2);
    });
    assert_eq!(at, here(line!() - 2), "insert");
    let at = panic_location(|| map.upsert(3, || 0, |_| ()));
    assert_eq!(at, here(line!() - 1), "upsert");
    let at = panic_location(|| {
        rcu.insert(2, 2);
    });
    assert_eq!(at, here(line!() - 2), "rcu insert");
    let at = panic_location(|| (&rcu).extend([(3, 3)]));
    assert_eq!(at, here(line!() - 1), "extend");
    let at = panic_location(|| drop(Map::from_iter(two())));
    assert_eq!(at, here(line!() - 1), "from_iter");
    let at = panic_location(|| drop(Map::from(std::collections::HashMap::from(two()))));
    assert_eq!(at, here(line!() - 1), "from");
}
