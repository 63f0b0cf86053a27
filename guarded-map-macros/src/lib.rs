//! The `#[guarded_map]` attribute of the guarded-map crate.
//!
//! Depend on `guarded-map` and write `use guarded_map::guarded_map;`; this crate is its proc-macro
//! half and has no API of its own. The crate is laid out in passes: `attr` and `parse` read the
//! syntax, `validate` checks its meaning (every error at the offending token), `expand` generates
//! the code and `fallback` reports errors without hiding the user's struct.

mod attr;
mod expand;
mod fallback;
mod parse;
mod validate;

#[cfg(test)]
mod snapshots;

use proc_macro::TokenStream;

// The text is guarded-map's documentation of the attribute (shown where it re-exports it), whose
// doc tests run there: this crate cannot use itself through guarded-map in its own doc tests.
#[cfg_attr(not(doctest), doc = include_str!("../ATTRIBUTE.md"))]
#[proc_macro_attribute]
pub fn guarded_map(args: TokenStream, item: TokenStream) -> TokenStream {
    run(args.into(), item.into()).into()
}

/// The whole macro on `proc_macro2` tokens, so that unit tests can run it.
fn run(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let parsed = attr::parse_args(args).and_then(|args| {
        let item = parse::parse_struct(item.clone())?;
        validate::validate(args, item)
    });
    match parsed {
        Ok(model) => expand::expand(model),
        Err(error) => fallback::fallback(error, item),
    }
}
