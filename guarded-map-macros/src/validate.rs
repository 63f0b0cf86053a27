//! Meaning: every semantic check of the attribute, each error with a precise message at the offending
//! token. All errors are collected, not just the first, so one build shows them all.

use proc_macro2::Span;
use syn::{Ident, ItemStruct, Lit, LitStr};

use crate::attr::{RawOption, RawValue, example, parse_options};
use crate::parse::{Family, MapType, guarded_attrs, map_type};

/// Options of a map field.
const FIELD_OPTIONS: &[&str] = &[
    "rcu", "sharded", "adaptive", "ordered", "name", "max_len", "bpf_map", "help", "stats",
    "hot_keys", "shrink",
];
/// Options that do not apply to an ordered map, with why.
const NOT_ORDERED: &[(&str, &str)] = &[
    ("shards", "an ordered map has no shards"),
    ("hot_keys", "an ordered map samples no hashed keys"),
    ("shrink", "an ordered map's tree holds no unused capacity"),
];
/// Options of `#[guarded_map(...)]`.
const STRUCT_OPTIONS: &[&str] = &["all"];
/// Options inside `sharded(...)`.
const SHARDED_OPTIONS: &[&str] = &["shards"];
/// Options inside `adaptive(...)`.
const ADAPTIVE_OPTIONS: &[&str] = &["shards", "start", "pin"];
/// The most shards the runtime accepts (`Descriptor::MAX_SHARDS`).
const MAX_SHARDS: u64 = 1 << 16;
/// The most hot-key ranks the runtime accepts (`Descriptor::MAX_HOT_KEYS`).
const MAX_HOT_KEYS: u64 = 64;
/// Kernel BPF object names hold at most 15 bytes (`BPF_OBJ_NAME_LEN` is 16 with the NUL).
const MAX_BPF_NAME: usize = 15;

/// The checked input, ready to expand.
pub(crate) struct Model {
    pub(crate) item: ItemStruct,
    pub(crate) maps: Vec<MapField>,
}

/// One field to rewrite.
pub(crate) struct MapField {
    /// Index in the struct's fields.
    pub(crate) index: usize,
    pub(crate) ident: Ident,
    pub(crate) ty: MapType,
    pub(crate) spec: SpecOptions,
}

/// The backend a field uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackendChoice {
    Rcu,
    Sharded,
    Adaptive,
    Ordered,
}

/// A field's checked options.
pub(crate) struct SpecOptions {
    pub(crate) backend: BackendChoice,
    pub(crate) shards: Option<u64>,
    pub(crate) name: Option<LitStr>,
    pub(crate) max_len: Option<u64>,
    pub(crate) bpf_map: Option<LitStr>,
    pub(crate) help: Option<String>,
    pub(crate) stats: Option<bool>,
    pub(crate) hot_keys: Option<u64>,
    /// `shrink = auto | never`: true for `auto`.
    pub(crate) shrink: Option<bool>,
    /// `adaptive(start = rcu | sharded)`.
    pub(crate) start: Option<Form>,
    /// `adaptive(pin = rcu | sharded)`.
    pub(crate) pin: Option<Form>,
}

/// One of an adaptive map's two forms, as its options name them.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Form {
    Rcu,
    Sharded,
}

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// Checks the struct-level arguments and every field; returns the model or every error found.
pub(crate) fn validate(args: Vec<RawOption>, item: ItemStruct) -> syn::Result<Model> {
    let mut errors = Errors::default();
    let mut all = false;
    for option in args {
        let name = option.name.to_string();
        match name.as_str() {
            "all" => {
                if all {
                    errors.at(option.name.span(), "duplicate option `all`");
                }
                expect_flag(&mut errors, &option);
                all = true;
            }
            _ => errors.push(unknown(&option.name, STRUCT_OPTIONS, struct_hint(&name))),
        }
    }

    let mut maps = Vec::new();
    for (index, field) in item.fields.iter().enumerate() {
        let attrs: Vec<_> = guarded_attrs(field).collect();
        if attrs.is_empty() && !all {
            continue;
        }
        let ty = map_type(&field.ty);
        if let Some(extra) = attrs.get(1) {
            errors.push(syn::Error::new_spanned(
                extra,
                "duplicate #[guarded] attribute: put every option in one",
            ));
        }
        // `all` guards every `HashMap` field; a `BTreeMap` field is guarded when marked.
        let ty = ty.filter(|t| !(attrs.is_empty() && t.family == Family::BTree));
        let Some(ty) = ty else {
            if !attrs.is_empty() {
                errors.at(
                    syn::spanned::Spanned::span(&field.ty),
                    "#[guarded] needs a `HashMap<K, V>` or `HashMap<K, V, S>` field \
                     (from `std::collections` or `hashbrown`), or a `BTreeMap<K, V>` \
                     (from `std::collections`)",
                );
            }
            continue;
        };
        let options = match attrs.first().map(|a| parse_options(a)) {
            Some(Ok(options)) => options,
            Some(Err(e)) => {
                errors.push(e);
                continue;
            }
            None => Vec::new(),
        };
        let Some(ident) = field.ident.clone() else {
            continue; // `parse_struct` admits named fields only
        };
        let ordered = ty.family == Family::BTree;
        let mut spec = spec_options(&mut errors, options, ordered);
        if spec.help.is_none() {
            spec.help = doc_comment(&field.attrs);
        }
        maps.push(MapField {
            index,
            ident,
            ty,
            spec,
        });
    }
    errors.finish(Model { item, maps })
}

fn struct_hint(name: &str) -> Option<String> {
    FIELD_OPTIONS.contains(&name).then(|| {
        format!("`{name}` is a field option: write it on the field, as in `#[guarded({name})]`")
    })
}

/// Checks one field's options; `ordered` for a `BTreeMap` field, whose backend is `ordered`.
fn spec_options(errors: &mut Errors, options: Vec<RawOption>, ordered: bool) -> SpecOptions {
    let mut spec = SpecOptions {
        backend: if ordered {
            BackendChoice::Ordered
        } else {
            BackendChoice::Sharded
        },
        shards: None,
        name: None,
        max_len: None,
        bpf_map: None,
        help: None,
        stats: None,
        hot_keys: None,
        shrink: None,
        start: None,
        pin: None,
    };
    let mut backend: Option<(BackendChoice, Ident)> = None;
    let mut seen: Vec<String> = Vec::new();
    for option in options {
        let name = option.name.to_string();
        let span = option.name.span();
        let duplicate = seen.contains(&name);
        if duplicate {
            errors.at(span, format!("duplicate option `{name}`"));
            continue;
        }
        seen.push(name.clone());
        if ordered && let Some((_, why)) = NOT_ORDERED.iter().find(|(n, _)| *n == name) {
            errors.at(
                span,
                format!("`{name}` does not apply to a `BTreeMap` field: {why}\nhelp: remove it"),
            );
            continue;
        }
        match name.as_str() {
            "ordered" => {
                if !ordered {
                    errors.at(
                        span,
                        "`ordered` applies to `BTreeMap` fields; a `HashMap` field is `rcu`, \
                         `sharded` or `adaptive`\nhelp: declare the field as `BTreeMap<K, V>` for \
                         an ordered map",
                    );
                }
                expect_flag(errors, &option);
            }
            "rcu" | "sharded" | "adaptive" if ordered => errors.at(
                span,
                format!(
                    "`{name}` is a backend of `HashMap` fields; a `BTreeMap` field is ordered\n\
                     help: write `#[guarded(ordered)]`, or declare the field as `HashMap<K, V>`"
                ),
            ),
            "rcu" | "sharded" | "adaptive" => {
                let choice = match name.as_str() {
                    "rcu" => BackendChoice::Rcu,
                    "sharded" => BackendChoice::Sharded,
                    _ => BackendChoice::Adaptive,
                };
                if let Some((_, first)) = &backend {
                    errors.at(
                        span,
                        format!("`{name}` conflicts with `{first}`: choose one backend"),
                    );
                    continue;
                }
                backend = Some((choice, option.name.clone()));
                spec.backend = choice;
                match option.value {
                    RawValue::Flag => {}
                    // An adaptive map's shards are those of its `Sharded` form.
                    RawValue::List(nested, _) if choice == BackendChoice::Adaptive => {
                        adaptive_options(errors, &mut spec, nested);
                    }
                    RawValue::List(nested, _) if choice == BackendChoice::Sharded => {
                        sharded_options(errors, &mut spec, nested);
                    }
                    RawValue::List(nested, list_span) => {
                        let at = nested.first().map_or(list_span, |o| o.name.span());
                        errors.at(at, "`rcu` takes no options (`shards` applies to `sharded`)");
                    }
                    RawValue::Lit(_) | RawValue::Word(_) => errors.at(
                        option.value.span_or(span),
                        format!("`{name}` is a flag: write `{name}`, not `{name} = ...`"),
                    ),
                }
            }
            "name" => spec.name = string(errors, &option, false),
            "bpf_map" => {
                spec.bpf_map = string(errors, &option, false);
                if let Some(lit) = &spec.bpf_map
                    && lit.value().len() > MAX_BPF_NAME
                {
                    errors.at(
                        lit.span(),
                        format!(
                            "`bpf_map` names a kernel BPF map, whose names hold at most \
                             {MAX_BPF_NAME} bytes"
                        ),
                    );
                }
            }
            "help" => spec.help = string(errors, &option, true).map(|s| s.value()),
            "max_len" => {
                spec.max_len = integer(errors, &option);
                if spec.max_len == Some(0) {
                    errors.at(
                        option.value.span_or(span),
                        "`max_len` must be greater than zero",
                    );
                }
            }
            "stats" => spec.stats = boolean(errors, &option),
            "shrink" => spec.shrink = shrink_policy(errors, &option),
            "hot_keys" => {
                spec.hot_keys = integer(errors, &option);
                if spec.hot_keys.is_some_and(|k| k > MAX_HOT_KEYS) {
                    spec.hot_keys = None;
                    errors.at(
                        option.value.span_or(span),
                        format!(
                            "`hot_keys` must be at most {MAX_HOT_KEYS} (each rank is a metric \
                             series); `hot_keys = 0` turns tracking off"
                        ),
                    );
                }
            }
            _ => errors.push(unknown(&option.name, FIELD_OPTIONS, field_hint(&name))),
        }
    }
    spec
}

fn field_hint(name: &str) -> Option<String> {
    match name {
        "shards" => Some("write the shard count inside the backend: `sharded(shards = 64)`".into()),
        "all" => Some("`all` is a struct option: `#[guarded_map(all)]`".into()),
        _ => None,
    }
}

/// `adaptive(shards = N, start = rcu | sharded, pin = rcu | sharded)`.
fn adaptive_options(errors: &mut Errors, spec: &mut SpecOptions, nested: Vec<RawOption>) {
    let mut shards = Vec::new();
    let mut forms: [(&str, Option<(Form, Span)>); 2] = [("start", None), ("pin", None)];
    for option in nested {
        let Some((name, form)) = forms.iter_mut().find(|(name, _)| option.name == name) else {
            if option.name == "shards" {
                shards.push(option);
            } else {
                errors.push(unknown(&option.name, ADAPTIVE_OPTIONS, None));
            }
            continue;
        };
        if form.is_some() {
            errors.at(option.name.span(), format!("duplicate option `{name}`"));
            continue;
        }
        let at = option.value.span_or(option.name.span());
        match &option.value {
            RawValue::Word(word) if word == "rcu" => *form = Some((Form::Rcu, at)),
            RawValue::Word(word) if word == "sharded" => *form = Some((Form::Sharded, at)),
            _ => errors.at(
                at,
                format!("`{name}` takes `rcu` or `sharded`, as in `adaptive({name} = rcu)`"),
            ),
        }
    }
    let [(_, start), (_, pin)] = forms;
    if let (Some((start, _)), Some((pin, at))) = (start, pin)
        && start != pin
    {
        errors.at(
            at,
            "a pinned map starts in the form it is pinned to: drop `start`, or make them agree",
        );
    }
    spec.start = start.map(|(form, _)| form);
    spec.pin = pin.map(|(form, _)| form);
    sharded_options(errors, spec, shards);
}

fn sharded_options(errors: &mut Errors, spec: &mut SpecOptions, nested: Vec<RawOption>) {
    for option in nested {
        let span = option.name.span();
        if option.name != "shards" {
            errors.push(unknown(&option.name, SHARDED_OPTIONS, None));
            continue;
        }
        if spec.shards.is_some() {
            errors.at(span, "duplicate option `shards`");
            continue;
        }
        let Some(shards) = integer(errors, &option) else {
            continue;
        };
        let at = option.value.span_or(span);
        if shards == 0 || !shards.is_power_of_two() {
            errors.at(
                at,
                format!(
                    "`shards` must be a power of two greater than zero, not {shards}{}",
                    nearest_power(shards)
                ),
            );
        } else if shards > MAX_SHARDS {
            errors.at(at, format!("`shards` must be at most {MAX_SHARDS}"));
        } else {
            spec.shards = Some(shards);
        }
    }
}

fn nearest_power(n: u64) -> String {
    if n == 0 {
        return String::new();
    }
    let up = n.checked_next_power_of_two().unwrap_or(MAX_SHARDS);
    format!("\nhelp: the nearest powers of two are {} and {up}", up / 2)
}

fn expect_flag(errors: &mut Errors, option: &RawOption) {
    if !matches!(option.value, RawValue::Flag) {
        let name = &option.name;
        errors.at(
            option.value.span_or(name.span()),
            format!("`{name}` is a flag: write `{name}` alone"),
        );
    }
}

fn wrong_type(errors: &mut Errors, option: &RawOption, what: &str) {
    let name = &option.name;
    errors.at(
        option.value.span_or(name.span()),
        format!("`{name}` takes {what}, as in `{name} = {}`", example(name)),
    );
}

fn string(errors: &mut Errors, option: &RawOption, allow_empty: bool) -> Option<LitStr> {
    match &option.value {
        RawValue::Lit(Lit::Str(s)) => {
            if !allow_empty && s.value().trim().is_empty() {
                errors.at(s.span(), format!("`{}` must not be empty", option.name));
                return None;
            }
            Some(s.clone())
        }
        _ => {
            wrong_type(errors, option, "a string literal");
            None
        }
    }
}

fn integer(errors: &mut Errors, option: &RawOption) -> Option<u64> {
    match &option.value {
        RawValue::Lit(Lit::Int(i)) => match i.base10_parse::<u64>() {
            Ok(n) => Some(n),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        _ => {
            wrong_type(errors, option, "an integer literal");
            None
        }
    }
}

/// `shrink = auto` (true) or `shrink = never` (false).
fn shrink_policy(errors: &mut Errors, option: &RawOption) -> Option<bool> {
    match &option.value {
        RawValue::Word(word) if word == "auto" => Some(true),
        RawValue::Word(word) if word == "never" => Some(false),
        _ => {
            errors.at(
                option.value.span_or(option.name.span()),
                "`shrink` takes `auto` or `never`, as in `shrink = never`",
            );
            None
        }
    }
}

fn boolean(errors: &mut Errors, option: &RawOption) -> Option<bool> {
    match &option.value {
        RawValue::Lit(Lit::Bool(b)) => Some(b.value),
        _ => {
            wrong_type(errors, option, "`true` or `false`");
            None
        }
    }
}

/// "unknown option" with the closest known name, or a specific hint.
fn unknown(name: &Ident, known: &[&str], hint: Option<String>) -> syn::Error {
    let written = name.to_string();
    let help = hint.or_else(|| {
        known
            .iter()
            .map(|k| (edit_distance(&written, k), *k))
            .filter(|(d, k)| *d <= (k.len() / 3).max(1))
            .min()
            .map(|(_, k)| format!("did you mean `{k}`?"))
    });
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut message = format!("unknown option `{written}`; expected one of {list}");
    if let Some(help) = help {
        message.push_str("\nhelp: ");
        message.push_str(&help);
    }
    syn::Error::new(name.span(), message)
}

/// Levenshtein distance; the names compared are a few bytes long.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A field's doc comment as one line, the default `help` text.
fn doc_comment(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("shard", "shards"), 1);
        assert_eq!(edit_distance("maxlen", "max_len"), 1);
        assert_eq!(edit_distance("rcu", "rcu"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
