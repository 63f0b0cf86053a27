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

#[test]
fn attribute_fields_of_a_second_crate_are_registered() {
    let state = guarded_map_tests::ForeignState::default();
    state.names.insert(1, "one".into());
    assert_eq!(state.names.get_cloned(&1).as_deref(), Some("one"));
    let label = "guarded_map_tests::ForeignState.names";
    let found: Vec<_> = registry::descriptors()
        .filter(|d| d.label() == label)
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].backend(), guarded_map::BackendKind::Rcu);
    assert_eq!(found[0].help_text(), Some("Names by id."));
    assert!(found[0].file().ends_with("lib.rs"));
}
