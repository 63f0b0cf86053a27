//! The syntax of option lists, `#[guarded(rcu, max_len = 10)]` and `#[guarded_map(all)]`, as written:
//! names with a flag, a literal or a nested list. Meaning is checked in `validate`.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::{Ident, Lit, Token};

/// One option as written.
pub(crate) struct RawOption {
    pub(crate) name: Ident,
    pub(crate) value: RawValue,
}

/// What follows an option's name.
pub(crate) enum RawValue {
    /// `name`
    Flag,
    /// `name = literal`
    Lit(Lit),
    /// `name = word` (a choice among names, as in `shrink = never`)
    Word(Ident),
    /// `name(option, ...)`
    List(Vec<RawOption>, Span),
}

impl RawValue {
    /// The span of the value, or `fallback` for a flag.
    pub(crate) fn span_or(&self, fallback: Span) -> Span {
        match self {
            RawValue::Flag => fallback,
            RawValue::Lit(lit) => lit.span(),
            RawValue::Word(word) => word.span(),
            RawValue::List(_, span) => *span,
        }
    }
}

/// Parses the options inside one attribute's parentheses (empty input: no options).
pub(crate) fn parse_options(attr: &syn::Attribute) -> syn::Result<Vec<RawOption>> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(Vec::new()),
        syn::Meta::NameValue(nv) => Err(syn::Error::new(
            nv.eq_token.span,
            "write options in parentheses: `#[guarded(rcu, max_len = 100)]`",
        )),
        syn::Meta::List(_) => {
            let mut options = Vec::new();
            attr.parse_nested_meta(|meta| {
                options.push(parse_one(&meta)?);
                Ok(())
            })?;
            Ok(options)
        }
    }
}

/// Parses the arguments of `#[guarded_map(...)]`.
pub(crate) fn parse_args(args: proc_macro2::TokenStream) -> syn::Result<Vec<RawOption>> {
    let mut options = Vec::new();
    let parser = syn::meta::parser(|meta| {
        options.push(parse_one(&meta)?);
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(options)
}

fn parse_one(meta: &ParseNestedMeta<'_>) -> syn::Result<RawOption> {
    let name = meta.path.get_ident().cloned().ok_or_else(|| {
        meta.error("expected an option name such as `rcu`, `sharded` or `max_len`")
    })?;
    let value = if meta.input.peek(Token![=]) {
        let eq: Token![=] = meta.input.parse()?;
        if meta.input.peek(Ident) {
            return Ok(RawOption {
                name,
                value: RawValue::Word(meta.input.parse()?),
            });
        }
        let lit: Lit = meta.input.parse().map_err(|_| {
            syn::Error::new(
                eq.span,
                format!(
                    "`{name}` takes a literal value, as in `{name} = {}`",
                    example(&name)
                ),
            )
        })?;
        RawValue::Lit(lit)
    } else if meta.input.peek(syn::token::Paren) {
        let span = meta.input.span();
        let mut nested = Vec::new();
        meta.parse_nested_meta(|inner| {
            nested.push(parse_one(&inner)?);
            Ok(())
        })?;
        RawValue::List(nested, span)
    } else {
        RawValue::Flag
    };
    Ok(RawOption { name, value })
}

/// An example value for an option's error message.
pub(crate) fn example(name: &Ident) -> &'static str {
    match name.to_string().as_str() {
        "name" => "\"sessions\"",
        "help" => "\"Sessions by id.\"",
        "bpf_map" => "\"flows\"",
        "stats" => "false",
        "shards" => "64",
        "hot_keys" => "10",
        "shrink" => "never",
        _ => "100",
    }
}
