//! [`Stats`] and the slots' [`Counter`]s, generated from the one table of statistics
//! (`guarded_map_probe_common::statistics!`): a statistic added there gets its field, its counter
//! and its place in every sum here.

use std::fmt;
use std::ops::AddAssign;

use guarded_map_probe_common::{Stat, statistics};

use super::slots::Counts;

/// The counter rows of the table, in order, as [`Counter`].
macro_rules! define_counters {
    (@acc [$($counter:ident)*]) => {
        /// What a slot counts: the table's counters, in order. The discriminant is the slot index.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Counter {
            $($counter,)*
        }

        /// Counters in a slot.
        pub(crate) const COUNTERS: usize = [$(stringify!($counter)),*].len();
    };
    (@acc [$($counter:ident)*] $(#[doc = $doc:literal])* $field:ident $name:ident : counter $metric:tt ; $($rest:tt)*) => {
        define_counters!(@acc [$($counter)* $name] $($rest)*);
    };
    (@acc [$($counter:ident)*] $(#[doc = $doc:literal])* $field:ident $name:ident : gauge $metric:tt ; $($rest:tt)*) => {
        define_counters!(@acc [$($counter)*] $($rest)*);
    };
    ($($rows:tt)*) => {
        define_counters!(@acc [] $($rows)*);
    };
}

/// Every row of the table as a field of [`Stats`].
macro_rules! define_stats {
    ($( $(#[doc = $doc:literal])* $field:ident $name:ident : $kind:ident $metric:tt ; )*) => {
        /// A plain snapshot of one map's (or one descriptor's) statistics.
        ///
        /// Counters are totals since the map was created; `len`, `capacity` and `memory_bytes` are
        /// gauges. Operation counts are exact once the threads that performed them have been joined;
        /// while they run, a reader may see each thread's count a little late, never a count that
        /// goes backwards.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl Stats {
            /// The value of one statistic.
            pub(crate) fn get(&self, stat: Stat) -> u64 {
                match stat {
                    $( Stat::$name => self.$field, )*
                }
            }

            /// The statistics a probe's [`Summary`](guarded_map_probe_common::Summary) carries:
            /// values indexed by [`Stat`].
            ///
            /// ```
            /// use guarded_map::Stats;
            /// use guarded_map_probe_common::{Stat, STATS};
            ///
            /// let mut values = [0; STATS];
            /// values[Stat::Get as usize] = 7;
            /// assert_eq!(Stats::from_values(&values).gets, 7);
            /// ```
            pub fn from_values(values: &[u64; guarded_map_probe_common::STATS]) -> Stats {
                Stats {
                    $( $field: values[Stat::$name as usize], )*
                }
            }

            /// The counters of `counts`; gauges are zero (their owner sets them).
            pub(crate) fn from_counts(counts: &Counts) -> Stats {
                Stats {
                    $( $field: define_stats!(@value counts $kind $name), )*
                }
            }
        }

        impl Stats {
            /// What happened between `earlier` (a snapshot of the same map's, or label's,
            /// statistics) and this one: counters as differences, gauges as they are now.
            ///
            /// ```
            /// use guarded_map::{map_spec, GuardedMap};
            /// map_spec!(Hits: HashMap<u32, u32>, sharded);
            ///
            /// let map: GuardedMap<u32, u32, Hits> = GuardedMap::new();
            /// map.insert(1, 1);
            /// let before = map.stats();
            /// map.get_cloned(&1);
            /// map.get_cloned(&2);
            /// let window = map.stats().since(&before);
            /// assert_eq!((window.gets, window.misses, window.inserts), (2, 1, 0));
            /// assert_eq!(window.len, 1);
            /// ```
            #[must_use]
            pub fn since(&self, earlier: &Stats) -> Stats {
                Stats {
                    $( $field: define_stats!(@since self earlier $kind $field), )*
                }
            }

            /// Every statistic as (name, value), in the table's order: the names are the
            /// fields'.
            ///
            /// ```
            /// use guarded_map::{map_spec, GuardedMap};
            /// map_spec!(Users: HashMap<u32, u32>, sharded);
            ///
            /// let users: GuardedMap<u32, u32, Users> = GuardedMap::new();
            /// users.insert(1, 1);
            /// let stats = users.stats();
            /// let inserts = stats.fields().find(|(name, _)| *name == "inserts");
            /// assert_eq!(inserts, Some(("inserts", 1)));
            /// ```
            pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( (stringify!($field), self.$field), )*].into_iter()
            }
        }

        impl fmt::Display for Stats {
            /// One `name value` line per statistic that is not zero (all of them with `{:#}`),
            /// names padded to one column.
            ///
            /// ```
            /// use guarded_map::{map_spec, GuardedMap};
            /// map_spec!(Seen: HashMap<u32, u32>, rcu);
            ///
            /// let map: GuardedMap<u32, u32, Seen> = GuardedMap::new();
            /// map.insert(1, 1);
            /// let text = map.stats().to_string();
            /// assert!(text.lines().any(|line| line.split_whitespace().eq(["inserts", "1"])));
            /// assert!(!text.contains("removes"));
            /// ```
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let width = self.fields().map(|(name, _)| name.len()).max().unwrap_or(0);
                for (name, value) in self.fields() {
                    if value != 0 || f.alternate() {
                        writeln!(f, "{name:<width$} {value}")?;
                    }
                }
                Ok(())
            }
        }

        impl AddAssign for Stats {
            /// Sums two maps' statistics (counters and gauges alike).
            fn add_assign(&mut self, other: Stats) {
                $( self.$field = self.$field.wrapping_add(other.$field); )*
            }
        }
    };
    (@since $now:ident $earlier:ident counter $field:ident) => {
        $now.$field.saturating_sub($earlier.$field)
    };
    (@since $now:ident $earlier:ident gauge $field:ident) => { $now.$field };
    (@value $counts:ident counter $name:ident) => { $counts[Counter::$name] };
    (@value $counts:ident gauge $name:ident) => { 0 };
}

statistics!(define_counters);
statistics!(define_stats);
