//! Descriptors declared in another crate of the workspace are registered too.

use guarded_map::registry;

#[test]
fn descriptor_from_a_second_crate_is_registered() {
    // Referencing the crate keeps it linked (see the inventory caveat in the crate docs).
    let label = guarded_map_tests::foreign_label();
    assert_eq!(label, "tests::foreign");
    let found = registry::descriptors()
        .find(|d| d.label() == label)
        .expect("registered");
    assert_eq!(found.key_type(), "u32");
    assert!(found.file().ends_with("lib.rs"));
}
