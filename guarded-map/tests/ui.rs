//! Diagnostics of `#[guarded_map]`: one case per error, each `.stderr` the reviewed spec of what the
//! user sees. Regenerate after an intended change with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn diagnostics() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
