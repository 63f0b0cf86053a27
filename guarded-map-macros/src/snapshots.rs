//! Expansion snapshots: the macro's output, pretty-printed, reviewed like code (`cargo insta review`
//! after a change; CI fails on any difference).

use quote::quote;

use crate::run;

/// The expansion of `item` under `#[guarded_map(args)]`, as `cargo expand` would show it.
fn expand(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
    let out = run(args, item);
    let file: syn::File = syn::parse2(out).expect("the expansion parses as a file");
    prettyplease::unparse(&file)
}

#[test]
fn rcu_and_sharded_fields() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            /// Shared state.
            #[derive(Debug, Default)]
            pub struct AppState {
                /// Upstream by path prefix.
                #[guarded(rcu)]
                pub routes: HashMap<String, u16>,
                #[guarded(sharded(shards = 64), name = "sessions", max_len = 100_000, help = "Live sessions.")]
                pub(crate) sessions: std::collections::HashMap<u64, Vec<Option<u8>>>,
                name: String,
            }
        }
    ));
}

#[test]
fn hashers_generics_and_all() {
    insta::assert_snapshot!(expand(
        quote!(all),
        quote! {
            struct Cache<K: Eq + std::hash::Hash, V> where V: Clone {
                by_key: HashMap<K, V, foldhash::fast::RandomState>,
                #[guarded(bpf_map = "flows", stats = false)]
                flows: hashbrown::HashMap<u32, u64>,
                #[cfg(feature = "extra")]
                extra: HashMap<u8, u8>,
                plain: Vec<u8>,
            }
        }
    ));
}

#[test]
fn errors_keep_the_struct() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            struct Broken {
                #[guarded(sharded(shards = 3))]
                a: HashMap<u8, u8>,
            }
        }
    ));
}
