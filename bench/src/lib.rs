//! guarded-map against the concurrent maps users choose between, on the workloads the field
//! already uses, in one run: see `BENCHMARKS.md` at the root of the repository for the method and
//! the latest figures, and `scripts/bench` for the command.
//!
//! The pieces: [`adapter`] (the interface every contender implements, and its bridge to the
//! `bustle` harness), [`clock`] (timing bustle's mixed phase from the workers), [`contenders`] (the maps and which workloads each may run), [`workload`]
//! (the five workloads), [`drive`] (measuring one job), [`run`] (the plan, interleaved rounds),
//! [`results`] (ratios, statistics cost, goals, the JSON file), [`table`] (the terminal table),
//! [`machine`] (what it ran on).
//!
//! A benchmark, not a test: nothing here asserts a timing. The harness does assert results (every
//! lookup, insert, removal and increment is checked), so a contender whose adapter is wrong fails
//! the run instead of posting a figure; `tests/adapters.rs` runs that check on a tiny capacity.

pub mod adapter;
pub mod clock;
pub mod contenders;
pub mod drive;
pub mod machine;
pub mod results;
pub mod run;
pub mod table;
pub mod workload;
