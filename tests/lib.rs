//! Cross-crate integration tests of guarded-map: a second crate that declares guarded maps, so the
//! tests can check that descriptors from other crates are registered.

use guarded_map::map_spec;

pub mod scrape;

/// `target/<profile>`, where cargo put the running test's sibling binaries and `examples/`.
pub fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Whether tests that need root can run: `false` (saying why) when this process is not root,
/// outside CI; under CI (`CI` set) a panic instead, so they never pass by skipping. `tests` names
/// them in the messages, `needs` the capabilities they use.
pub fn root_or_skip(tests: &str, needs: &str) -> bool {
    // SAFETY: `geteuid` has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tests} must run in CI, as root"
        );
        eprintln!("skipped: {tests} need root ({needs})");
    }
    root
}

map_spec!(
    /// A map declared in another crate than the tests that look for it.
    pub ForeignSpec: HashMap<u32, String>, sharded, name = "tests::foreign"
);

/// Referenced by the tests so the linker keeps this crate (see the `inventory` linking caveat).
pub fn foreign_label() -> &'static str {
    <ForeignSpec as guarded_map::MapSpec>::DESCRIPTOR.label()
}

/// State annotated with `#[guarded_map]` in a crate other than the tests that look for it.
#[guarded_map::guarded_map]
#[derive(Debug, Default)]
pub struct ForeignState {
    /// Names by id.
    #[guarded(rcu)]
    pub names: std::collections::HashMap<u32, String>,
}
