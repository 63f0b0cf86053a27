//! Code generation: the rewritten struct, and per guarded field a spec type with its registered
//! descriptor.
//!
//! For `struct AppState { #[guarded(rcu)] routes: HashMap<String, Route> }` this emits the struct with
//! `routes: ::guarded_map::GuardedMap<String, Route, AppState_routes, RandomState>` and a zero-sized
//! `AppState_routes` implementing `MapSpec`, whose descriptor is a `static` submitted to `inventory`.
//! Spec types are named `{Struct}_{field}`, so two structs in one module never clash, and take the
//! struct's visibility, so a public field never exposes a private type.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Attribute, Type};

use crate::parse::{FIELD_ATTR, Family};
use crate::validate::{BackendChoice, Form, MapField, Model};

/// Emits the rewritten struct followed by the spec items of its guarded fields.
pub(crate) fn expand(model: Model) -> TokenStream {
    let Model { mut item, maps } = model;
    let mut specs = TokenStream::new();
    for map in &maps {
        let spec = format_ident!(
            "{}_{}",
            item.ident.unraw(),
            map.ident.unraw(),
            span = map.ident.span()
        );
        let Some(field) = item.fields.iter_mut().nth(map.index) else {
            continue;
        };
        let cfgs: Vec<Attribute> = field
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"))
            .cloned()
            .collect();
        specs.extend(spec_items(&item.ident, &item.vis, &spec, map, &cfgs));
        field.ty = guarded_type(map, &spec);
        // The rewritten type is longer than the one written; the user's lints judge their own code.
        field
            .attrs
            .push(syn::parse_quote!(#[allow(clippy::type_complexity)]));
    }
    strip_field_attrs(&mut item);
    quote! {
        #item
        #specs
    }
}

/// Removes every `#[guarded]` attribute (they are not real attributes once the macro has run).
pub(crate) fn strip_field_attrs(item: &mut syn::ItemStruct) {
    for field in item.fields.iter_mut() {
        field.attrs.retain(|a| !a.path().is_ident(FIELD_ATTR));
    }
}

/// `::guarded_map::GuardedMap<K, V, Spec, S>`, keeping the hasher the user wrote or implied.
///
/// Unless the path says `hashbrown::HashMap`, the hasher is asked of the type as written
/// (`<HashMap<K, V> as HasherOf>::Hasher`): a bare `HashMap` may be hashbrown's by import, and the
/// projection also keeps the user's `use` of it from becoming unused.
fn guarded_type(map: &MapField, spec: &syn::Ident) -> Type {
    let key = &map.ty.key;
    let value = &map.ty.value;
    let written = &map.ty.written;
    let span = syn::spanned::Spanned::span(written);
    let hasher = match (&map.ty.hasher, map.ty.family) {
        (Some(hasher), Family::Hashbrown) => quote!(#hasher),
        (None, Family::Hashbrown) => quote!(::hashbrown::DefaultHashBuilder),
        (_, Family::Std) => quote!(<#written as ::guarded_map::__private::HasherOf>::Hasher),
        (_, Family::BTree) => {
            return syn::parse_quote_spanned! {span=>
                ::guarded_map::OrderedMap<#key, #value, #spec>
            };
        }
    };
    syn::parse_quote_spanned! {span=>
        ::guarded_map::GuardedMap<#key, #value, #spec, #hasher>
    }
}

/// The spec type, its descriptor, the descriptor's registration and the `MapSpec` impl.
fn spec_items(
    owner: &syn::Ident,
    vis: &syn::Visibility,
    spec: &syn::Ident,
    map: &MapField,
    cfgs: &[Attribute],
) -> TokenStream {
    let opts = &map.spec;
    let label = format!("::{}.{}", owner.unraw(), map.ident.unraw());
    let backend = match opts.backend {
        BackendChoice::Rcu => quote!(::guarded_map::Rcu),
        BackendChoice::Sharded => quote!(::guarded_map::Sharded),
        BackendChoice::Adaptive => quote!(::guarded_map::Adaptive),
        BackendChoice::Ordered => quote!(::guarded_map::Ordered),
    };
    // An ordered spec serves an `OrderedMap`, never a `GuardedMap`: no `SpecFor`.
    let spec_for = (opts.backend != BackendChoice::Ordered)
        .then(|| quote!(::guarded_map::__spec_for!(#spec, #backend);));
    // A `HashMap` field names its written type in the hasher projection; an ordered field's type
    // keeps nothing of it, so it is named here, or the user's `use` of `BTreeMap` goes unused.
    let written = &map.ty.written;
    let keep_import = (map.ty.family == Family::BTree).then(
        || quote!(const _: ::core::marker::PhantomData<#written> = ::core::marker::PhantomData;),
    );
    let key = type_name(&map.ty.key);
    let value = type_name(&map.ty.value);
    let mut options = TokenStream::new();
    if let Some(name) = &opts.name {
        options.extend(quote!(.name(#name)));
    }
    if let Some(shards) = opts.shards {
        let shards = usize_lit(shards);
        options.extend(quote!(.shards(#shards)));
    }
    let form = |form: Form| match form {
        Form::Rcu => quote!(::guarded_map::ActiveBackend::Rcu),
        Form::Sharded => quote!(::guarded_map::ActiveBackend::Sharded),
    };
    if let Some(start) = opts.start {
        let start = form(start);
        options.extend(quote!(.start(#start)));
    }
    if let Some(pin) = opts.pin {
        let pin = form(pin);
        options.extend(quote!(.pin(#pin)));
    }
    if let Some(max_len) = opts.max_len {
        let max_len = usize_lit(max_len);
        options.extend(quote!(.max_len(#max_len)));
    }
    if let Some(stats) = opts.stats {
        options.extend(quote!(.stats(#stats)));
    }
    if let Some(auto) = opts.shrink {
        let policy = if auto {
            quote!(::guarded_map::Shrink::Auto)
        } else {
            quote!(::guarded_map::Shrink::Never)
        };
        options.extend(quote!(.shrink(#policy)));
    }
    if let Some(hot_keys) = opts.hot_keys {
        let hot_keys = usize_lit(hot_keys);
        options.extend(quote!(.hot_keys(#hot_keys)));
    }
    if let Some(bpf_map) = &opts.bpf_map {
        options.extend(quote!(.bpf_map(#bpf_map)));
    }
    if let Some(help) = &opts.help {
        options.extend(quote!(.help(#help)));
    }
    // `line!()` spanned at the field reports the field's line, not the attribute's.
    let line = quote_spanned!(map.ident.span()=> ::core::line!());
    let doc = format!(
        " The map spec of `{}.{}`, generated by `#[guarded_map]`.",
        owner.unraw(),
        map.ident.unraw()
    );
    quote! {
        #(#cfgs)*
        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, Default)]
        #vis struct #spec;

        #(#cfgs)*
        const _: () = {
            static DESCRIPTOR: ::guarded_map::Descriptor = ::guarded_map::Descriptor::new(
                ::core::concat!(::core::module_path!(), #label),
                <#backend as ::guarded_map::Backend>::KIND,
            )
            .types(#key, #value)
            .location(::core::module_path!(), ::core::file!(), #line)
            #options;

            ::guarded_map::__private::inventory::submit! {
                ::guarded_map::registry::Registration(&DESCRIPTOR)
            }

            impl ::guarded_map::MapSpec for #spec {
                type Backend = #backend;
                const DESCRIPTOR: &'static ::guarded_map::Descriptor = &DESCRIPTOR;
            }
            #spec_for
            #keep_import
        };
    }
}

fn usize_lit(n: u64) -> syn::LitInt {
    syn::LitInt::new(&format!("{n}usize"), Span::call_site())
}

/// A type as the user would write it: `Vec<Option<u8>>`, not `Vec < Option < u8 > >`.
fn type_name(ty: &Type) -> String {
    let mut out = quote!(#ty).to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        (" ;", ";"),
    ] {
        out = out.replace(from, to);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::type_name;

    #[test]
    fn type_names_read_like_source() {
        let ty: syn::Type = syn::parse_quote!(Vec<Option<std::string::String>>);
        assert_eq!(type_name(&ty), "Vec<Option<std::string::String>>");
        let ty: syn::Type = syn::parse_quote!(&'static [u8; 4]);
        assert_eq!(type_name(&ty), "&'static [u8; 4]");
        let ty: syn::Type = syn::parse_quote!((u32, String));
        assert_eq!(type_name(&ty), "(u32, String)");
    }
}
