//! [`Stats`] and the slots' [`Counter`]s, generated from the one table of statistics
//! (`guarded_map_probe_common::statistics!`): a statistic added there gets its field, its counter
//! and its place in every sum here.

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

            /// The counters of `counts`; gauges are zero (their owner sets them).
            pub(crate) fn from_counts(counts: &Counts) -> Stats {
                Stats {
                    $( $field: define_stats!(@value counts $kind $name), )*
                }
            }
        }

        impl AddAssign for Stats {
            /// Sums two maps' statistics (counters and gauges alike).
            fn add_assign(&mut self, other: Stats) {
                $( self.$field = self.$field.wrapping_add(other.$field); )*
            }
        }
    };
    (@value $counts:ident counter $name:ident) => { $counts[Counter::$name] };
    (@value $counts:ident gauge $name:ident) => { 0 };
}

statistics!(define_counters);
statistics!(define_stats);
