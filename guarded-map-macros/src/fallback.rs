//! Error output: the errors, plus the user's item with the `#[guarded]` attributes removed, so that
//! one mistake in an option does not cascade into "cannot find type" errors wherever the struct is
//! used. The fields keep their `HashMap` types until the attribute is fixed.

use proc_macro2::TokenStream;
use quote::quote;

use crate::expand::strip_field_attrs;

/// The compile errors of `error` followed by `item` as written (minus `#[guarded]` on a struct).
pub(crate) fn fallback(error: syn::Error, item: TokenStream) -> TokenStream {
    let errors = error.to_compile_error();
    let item = match syn::parse2::<syn::ItemStruct>(item.clone()) {
        Ok(mut item) => {
            strip_field_attrs(&mut item);
            quote!(#item)
        }
        Err(_) => item,
    };
    quote! {
        #errors
        #item
    }
}
