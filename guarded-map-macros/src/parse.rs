//! Syntax: the annotated item as a struct with named fields, the `#[guarded]` attributes on its fields,
//! and the `HashMap` types they guard.

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Attribute, Field, GenericArgument, ItemStruct, PathArguments, Type};

/// The name of the field attribute.
pub(crate) const FIELD_ATTR: &str = "guarded";

/// Parses the annotated item; anything but a struct with named fields is an error at its keyword.
pub(crate) fn parse_struct(item: TokenStream) -> syn::Result<ItemStruct> {
    let item: syn::Item = syn::parse2(item)?;
    let (span, what) = match &item {
        syn::Item::Struct(s) => match &s.fields {
            syn::Fields::Named(_) => return Ok(s.clone()),
            syn::Fields::Unnamed(f) => (f.paren_token.span.join(), "a tuple struct"),
            syn::Fields::Unit => (s.ident.span(), "a unit struct"),
        },
        syn::Item::Enum(e) => (e.enum_token.span, "an enum"),
        syn::Item::Union(u) => (u.union_token.span, "a union"),
        syn::Item::Fn(f) => (f.sig.fn_token.span, "a function"),
        other => (other.span(), "this item"),
    };
    Err(syn::Error::new(
        span,
        format!(
            "#[guarded_map] applies to structs with named fields, not to {what}\n\
             help: put it on a struct like `struct State {{ #[guarded(rcu)] routes: HashMap<K, V> }}`"
        ),
    ))
}

/// The `#[guarded]` attributes of a field.
pub(crate) fn guarded_attrs(field: &Field) -> impl Iterator<Item = &Attribute> {
    field.attrs.iter().filter(|a| a.path().is_ident(FIELD_ATTR))
}

/// Which map a field's type names: `Std` for std's paths and a bare `HashMap` (whose hasher is
/// then resolved by the compiler), `Hashbrown` for an explicit `hashbrown::HashMap`, `BTree` for
/// std's `BTreeMap` (an ordered map).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Std,
    Hashbrown,
    BTree,
}

/// A recognized `HashMap<K, V>` or `HashMap<K, V, S>` type.
pub(crate) struct MapType {
    pub(crate) family: Family,
    pub(crate) key: Type,
    pub(crate) value: Type,
    pub(crate) hasher: Option<Type>,
    /// The type as written.
    pub(crate) written: Type,
}

/// The module paths a `HashMap` is accepted from (after an optional leading `::`).
const STD_PATHS: &[&[&str]] = &[
    &[],
    &["std", "collections"],
    &["collections"],
    &["std", "collections", "hash_map"],
    &["hash_map"],
];

/// The module paths a `BTreeMap` is accepted from (after an optional leading `::`).
const BTREE_PATHS: &[&[&str]] = &[
    &[],
    &["std", "collections"],
    &["collections"],
    &["std", "collections", "btree_map"],
    &["btree_map"],
];

/// Recognizes `HashMap<K, V>`, `HashMap<K, V, S>` and `BTreeMap<K, V>` written with one of the
/// accepted paths.
pub(crate) fn map_type(ty: &Type) -> Option<MapType> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<_> = path.path.segments.iter().collect();
    let (last, prefix) = segments.split_last()?;
    let btree = last.ident == "BTreeMap";
    if !(btree || last.ident == "HashMap") || prefix.iter().any(|s| !s.arguments.is_none()) {
        return None;
    }
    let prefix: Vec<String> = prefix.iter().map(|s| s.ident.to_string()).collect();
    let family = if btree {
        if !BTREE_PATHS.iter().any(|p| prefix == *p) {
            return None;
        }
        Family::BTree
    } else if prefix == ["hashbrown"] {
        Family::Hashbrown
    } else if STD_PATHS.iter().any(|p| prefix == *p) {
        Family::Std
    } else {
        return None;
    };
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let (key, value, hasher) = match types.as_slice() {
        [k, v] => ((*k).clone(), (*v).clone(), None),
        [k, v, s] if family != Family::BTree => ((*k).clone(), (*v).clone(), Some((*s).clone())),
        _ => return None,
    };
    Some(MapType {
        family,
        key,
        value,
        hasher,
        written: ty.clone(),
    })
}
