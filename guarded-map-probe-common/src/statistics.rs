//! The one table of a map's statistics: every quantity a map reports, in one row each. The rows
//! become [`Stat`] and the slots of a [`Summary`](crate::Summary) here; in `guarded-map` the fields
//! of `Stats`, the counters of the per-thread slots and the metrics published for them; in the probe
//! the values it reads. Adding a statistic is one row here plus its counting site.
//!
//! A row is `field Name: kind metric;`:
//! - `field` is the `Stats` field and `Name` the [`Stat`] variant (and the slot counter's);
//! - `kind` is `counter` (counted where it happens, summed by readers) or `gauge` (set by the map);
//! - `metric` is how it is published: `(op Op)` as `guarded_map_operations_total{op}`,
//!   `(counter NAME HELP)`, `(rcu_counter NAME HELP)` (for `rcu` maps only), `(gauge NAME UNIT
//!   HELP)`, or `()` when it is not published on its own (a histogram carries it, or nothing).

/// Calls `$callback!` with every row of the table (see the module documentation).
#[macro_export]
macro_rules! statistics {
    ($callback:ident) => {
        $callback! {
            /// Keyed reads: `get_cloned`, `with`, `contains_key`.
            gets Get: counter (op Get);
            /// Keyed reads that found no entry (a subset of `gets`).
            misses Miss: counter (counter "guarded_map_misses_total" "Keyed reads that found no entry.");
            /// `insert` and `try_insert` calls that stored their entry, and `upsert` calls that created one.
            inserts Insert: counter (op Insert);
            /// `update` calls that found their key, and `upsert` calls that found theirs.
            updates Update: counter (op Update);
            /// `remove` calls.
            removes Remove: counter (op Remove);
            /// `retain` calls.
            retains Retain: counter (op Retain);
            /// `clear` calls.
            clears Clear: counter (op Clear);
            /// `snapshot` calls (including the ones `Debug` and `Clone` make).
            snapshots Snapshot: counter (op Snapshot);
            /// Range scans of an ordered map (`range`, `first`, `last`).
            ranges Range: counter (op Range);
            /// Inserts refused because the map was at its `max_len`.
            rejected Rejected: counter (counter "guarded_map_rejected_total" "New keys refused because the map held its max_len entries.");
            /// New keys added (by any operation).
            entries_added Added: counter ();
            /// Keys removed (by `remove`, `retain` or `clear`).
            entries_removed Removed: counter ();
            /// Entries in the map.
            len Len: gauge (gauge "guarded_map_entries" Count "Entries in the map (all live instances).");
            /// Entries the map can hold without allocating.
            capacity Capacity: gauge (gauge "guarded_map_capacity_entries" Count "Entries the map can hold without allocating (all live instances).");
            /// Estimated bytes of the map's tables: `capacity` times the bytes hashbrown spends per entry
            /// (the key, the value, their stored hash on `Sharded`, a control byte, at a 7/8 load factor).
            /// Memory that keys and values own on the heap (a `String`'s text) is not included.
            memory_bytes Memory: gauge (gauge "guarded_map_memory_bytes" Bytes "Estimated bytes of the map's tables: capacity times the bytes per entry slot; heap memory owned by keys and values is not included.");
            /// Lock acquisitions that had to wait (the uncontended path is not timed).
            lock_contended Contended: counter (counter "guarded_map_lock_contended_total" "Lock acquisitions that had to wait (shard locks; the writer lock of rcu maps).");
            /// Total time spent waiting for contended locks, in nanoseconds.
            lock_wait_nanos WaitNanos: counter ();
            /// New versions published by the `Rcu` backend.
            rcu_publishes Publishes: counter (rcu_counter "guarded_map_rcu_publishes_total" "New versions published by an rcu map (one per write).");
            /// Total time spent building and publishing versions, in nanoseconds.
            rcu_publish_nanos PublishNanos: counter ();
            /// Entries copied into new versions by the `Rcu` backend (its write amplification).
            rcu_copied_entries Copied: counter (rcu_counter "guarded_map_rcu_copied_entries_total" "Entries copied into new versions of an rcu map (its write amplification).");
            /// Tables rebuilt smaller by the shrink policy (`shrink = auto`): a `Sharded` shard, or
            /// an `Rcu` map's tree.
            shrinks Shrinks: counter (counter "guarded_map_shrinks_total" "Tables rebuilt smaller after staying at most 1/8 full (shrink = auto).");
            /// Estimated bytes of table capacity given back by shrinking (as `memory_bytes` counts them).
            shrunk_bytes ShrunkBytes: counter (counter "guarded_map_shrunk_bytes_total" "Estimated bytes of table capacity given back by shrinking.");
            /// Switches of an adaptive map between its forms (`guarded_map_backend_switches_total`
            /// publishes them by direction and reason).
            backend_switches Switches: counter ();
        }
    };
}

macro_rules! define_stat {
    ($( $(#[doc = $doc:literal])* $field:ident $name:ident : $kind:ident $metric:tt ; )*) => {
        /// One statistic of a map: the index of its slot in a [`Summary`](crate::Summary).
        #[repr(usize)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Stat {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Stat {
            /// Every statistic, in slot order.
            pub const ALL: [Stat; STATS] = [$(Stat::$name),*];

            /// Its field name in `guarded_map::Stats` (and in the probe's output).
            pub const fn field(self) -> &'static str {
                match self {
                    $( Stat::$name => stringify!($field), )*
                }
            }
        }

        /// How many statistics there are.
        pub const STATS: usize = [$(stringify!($name)),*].len();
    };
}

statistics!(define_stat);
