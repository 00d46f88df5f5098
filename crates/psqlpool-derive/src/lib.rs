//! Derives for psqlpool, re-exported by `pool-core` under its `derive` feature
//! (`pool_core::{FromRow, ToSql, FromSql}`).
//!
//! | derive | on | maps |
//! |---|---|---|
//! | `ToSql`, `FromSql` | an enum of unit variants | a PostgreSQL enum: each variant is a label |
//! | `ToSql`, `FromSql` | a struct with named fields | a PostgreSQL composite type: fields by name |
//! | `FromRow` | a struct with named fields | a result row: fields by column name |
//!
//! One attribute, `#[psqlpool(...)]`:
//!
//! | where | key | effect |
//! |---|---|---|
//! | type | `rename_all = "snake_case"` | labels / field / column names from the Rust names: `lowercase`, `UPPERCASE`, `snake_case`, `SCREAMING_SNAKE_CASE`, `kebab-case`, `camelCase`, `PascalCase` |
//! | type | `name = "mood"` | (`ToSql`/`FromSql`) only this PostgreSQL type (unqualified or schema-qualified name) |
//! | type | `crate = "pgwire_lite"` | the path to pgwire-lite in generated code (default `::pool_core::pgwire_lite`) |
//! | variant, field | `rename = "..."` | this label / field / column name |
//! | field | `flatten` | (`FromRow`) the field is itself `FromRow`, built from the same row |
//! | field | `default` | (`FromRow`) a missing column gives `Default::default()` |
//!
//! Without `rename`/`rename_all`, names are the Rust names as written. NULL needs an `Option`
//! field; every error names the column (or label) and the Rust field.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr, parse_macro_input};

/// `ToSql` for an enum (sent as its label) or a struct (sent as a composite value).
#[proc_macro_derive(ToSql, attributes(psqlpool))]
pub fn derive_to_sql(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input, to_sql)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// `FromSql` for an enum (read from its label) or a struct (read from a composite value).
#[proc_macro_derive(FromSql, attributes(psqlpool))]
pub fn derive_from_sql(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input, from_sql)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// `FromRow` for a struct with named fields.
#[proc_macro_derive(FromRow, attributes(psqlpool))]
pub fn derive_from_row(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input, from_row)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

fn expand(
    input: &DeriveInput,
    f: fn(&DeriveInput, &Container) -> syn::Result<TokenStream2>,
) -> syn::Result<TokenStream2> {
    let c = Container::parse(input)?;
    f(input, &c)
}

// ---- attributes --------------------------------------------------------------------------

/// The type-level `#[psqlpool(...)]` settings.
struct Container {
    rename_all: Option<Case>,
    name: Option<String>,
    krate: syn::Path,
}

/// A field's or variant's `#[psqlpool(...)]` settings.
#[derive(Default)]
struct Member {
    rename: Option<String>,
    flatten: bool,
    default: bool,
}

impl Container {
    fn parse(input: &DeriveInput) -> syn::Result<Container> {
        let mut c = Container {
            rename_all: None,
            name: None,
            krate: syn::parse_quote!(::pool_core::pgwire_lite),
        };
        for attr in input.attrs.iter().filter(|a| a.path().is_ident("psqlpool")) {
            attr.parse_nested_meta(|m| {
                if m.path.is_ident("rename_all") {
                    let s: LitStr = m.value()?.parse()?;
                    c.rename_all = Some(Case::parse(&s)?);
                } else if m.path.is_ident("name") {
                    let s: LitStr = m.value()?.parse()?;
                    c.name = Some(s.value());
                } else if m.path.is_ident("crate") {
                    let s: LitStr = m.value()?.parse()?;
                    c.krate = s.parse()?;
                } else {
                    return Err(m.error(
                        "unknown psqlpool attribute on a type (expected rename_all, name or crate)",
                    ));
                }
                Ok(())
            })?;
        }
        Ok(c)
    }

    /// The SQL name of a member: its `rename`, else the type's `rename_all` of its Rust name.
    fn sql_name(&self, member: &Member, ident: &syn::Ident) -> String {
        if let Some(r) = &member.rename {
            return r.clone();
        }
        let rust = ident.to_string();
        let rust = rust.strip_prefix("r#").unwrap_or(&rust);
        match self.rename_all {
            Some(case) => case.apply(rust),
            None => rust.to_string(),
        }
    }
}

impl Member {
    fn parse(attrs: &[syn::Attribute]) -> syn::Result<Member> {
        let mut m = Member::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("psqlpool")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let s: LitStr = meta.value()?.parse()?;
                    m.rename = Some(s.value());
                } else if meta.path.is_ident("flatten") {
                    m.flatten = true;
                } else if meta.path.is_ident("default") {
                    m.default = true;
                } else {
                    return Err(meta.error(
                        "unknown psqlpool attribute on a field or variant (expected rename, flatten or default)",
                    ));
                }
                Ok(())
            })?;
        }
        Ok(m)
    }
}

/// The `rename_all` styles.
#[derive(Clone, Copy)]
enum Case {
    Lower,
    Upper,
    Snake,
    ScreamingSnake,
    Kebab,
    Camel,
    Pascal,
}

impl Case {
    fn parse(s: &LitStr) -> syn::Result<Case> {
        Ok(match s.value().as_str() {
            "lowercase" => Case::Lower,
            "UPPERCASE" => Case::Upper,
            "snake_case" => Case::Snake,
            "SCREAMING_SNAKE_CASE" => Case::ScreamingSnake,
            "kebab-case" => Case::Kebab,
            "camelCase" => Case::Camel,
            "PascalCase" => Case::Pascal,
            other => {
                return Err(syn::Error::new(
                    s.span(),
                    format!(
                        "unknown rename_all style {other:?} (expected lowercase, UPPERCASE, \
                         snake_case, SCREAMING_SNAKE_CASE, kebab-case, camelCase or PascalCase)"
                    ),
                ));
            }
        })
    }

    fn apply(self, rust: &str) -> String {
        let words = words(rust);
        let cap = |w: &str| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        };
        match self {
            Case::Lower => words.concat(),
            Case::Upper => words.concat().to_uppercase(),
            Case::Snake => words.join("_"),
            Case::ScreamingSnake => words.join("_").to_uppercase(),
            Case::Kebab => words.join("-"),
            Case::Camel => words
                .iter()
                .enumerate()
                .map(|(i, w)| if i == 0 { w.clone() } else { cap(w) })
                .collect(),
            Case::Pascal => words.iter().map(|w| cap(w)).collect(),
        }
    }
}

/// The lowercase words of a Rust name: split at `_` and before an uppercase letter that
/// follows a lowercase letter or digit (`HTTPServer2Go` -> http, server2, go is not attempted:
/// acronyms stay one word until a lowercase letter follows).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).and_then(|p| chars.get(p));
        let next = chars.get(i + 1);
        let boundary = c.is_uppercase()
            && !cur.is_empty()
            && (prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_uppercase())
                    && next.is_some_and(|n| n.is_lowercase())));
        if boundary {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

// ---- shapes ------------------------------------------------------------------------------

/// The labels of an enum of unit variants: (variant ident, label).
fn enum_labels(
    input: &DeriveInput,
    c: &Container,
) -> syn::Result<Option<Vec<(syn::Ident, String)>>> {
    let Data::Enum(e) = &input.data else {
        return Ok(None);
    };
    if e.variants.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "an enum mapped to a PostgreSQL enum needs at least one variant",
        ));
    }
    let mut out = Vec::new();
    for v in &e.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                v,
                "only unit variants map to PostgreSQL enum labels",
            ));
        }
        let m = Member::parse(&v.attrs)?;
        out.push((v.ident.clone(), c.sql_name(&m, &v.ident)));
    }
    Ok(Some(out))
}

/// The named fields of a struct: (field ident, SQL name, settings).
fn struct_fields<'a>(
    input: &'a DeriveInput,
    c: &Container,
    what: &str,
) -> syn::Result<Vec<(&'a syn::Field, String, Member)>> {
    let Data::Struct(s) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            format!(
                "{what} can be derived for a struct with named fields or an enum of unit variants"
            ),
        ));
    };
    let Fields::Named(named) = &s.fields else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            format!("{what} needs a struct with named fields"),
        ));
    };
    named
        .named
        .iter()
        .map(|f| {
            let m = Member::parse(&f.attrs)?;
            let ident = f
                .ident
                .as_ref()
                .ok_or_else(|| syn::Error::new_spanned(f, "named field without a name"))?;
            Ok((f, c.sql_name(&m, ident), m))
        })
        .collect()
}

fn no_member_flags(fields: &[(&syn::Field, String, Member)], what: &str) -> syn::Result<()> {
    for (f, _, m) in fields {
        if m.flatten || m.default {
            return Err(syn::Error::new_spanned(
                f,
                format!("flatten and default apply to FromRow, not to {what}"),
            ));
        }
    }
    Ok(())
}

fn opt_name(c: &Container) -> TokenStream2 {
    match &c.name {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    }
}

// ---- ToSql -------------------------------------------------------------------------------

fn to_sql(input: &DeriveInput, c: &Container) -> syn::Result<TokenStream2> {
    let ident = &input.ident;
    let k = &c.krate;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let type_name = opt_name(c);
    if let Some(labels) = enum_labels(input, c)? {
        let arms = labels.iter().map(|(v, l)| quote!(Self::#v => #l));
        let all: Vec<&String> = labels.iter().map(|(_, l)| l).collect();
        return Ok(quote! {
            impl #impl_g #k::types::ToSql for #ident #ty_g #where_g {
                fn to_sql(
                    &self,
                    ty: &#k::types::Type,
                    out: &mut #k::types::BytesMut,
                ) -> ::core::result::Result<#k::types::IsNull, #k::types::BoxError> {
                    let label: &str = match self { #(#arms,)* };
                    #k::types::enums::write_label(
                        ty, #type_name, &[#(#all),*], label,
                        ::core::any::type_name::<Self>(), out,
                    )
                }

                fn accepts(&self, ty: &#k::types::Type) -> bool {
                    #k::types::enums::enum_accepts(ty, #type_name, &[#(#all),*])
                }
            }
        });
    }
    let fields = struct_fields(input, c, "ToSql")?;
    no_member_flags(&fields, "ToSql")?;
    let pairs = fields.iter().map(|(f, name, _)| {
        let fi = &f.ident;
        quote!((#name, &self.#fi as &dyn #k::types::ToSql))
    });
    let names = fields.iter().map(|(_, n, _)| n);
    Ok(quote! {
        impl #impl_g #k::types::ToSql for #ident #ty_g #where_g {
            fn to_sql(
                &self,
                ty: &#k::types::Type,
                out: &mut #k::types::BytesMut,
            ) -> ::core::result::Result<#k::types::IsNull, #k::types::BoxError> {
                #k::types::composite::write_composite(ty, &[#(#pairs),*], out)
            }

            fn accepts(&self, ty: &#k::types::Type) -> bool {
                #k::types::enums::name_matches(ty, #type_name)
                    && #k::types::composite::composite_accepts(ty, &[#(#names),*])
            }
        }
    })
}

// ---- FromSql -----------------------------------------------------------------------------

fn from_sql(input: &DeriveInput, c: &Container) -> syn::Result<TokenStream2> {
    let ident = &input.ident;
    let k = &c.krate;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "FromSql cannot be derived for a generic type",
        ));
    }
    let type_name = opt_name(c);
    if let Some(labels) = enum_labels(input, c)? {
        let arms = labels.iter().map(|(v, l)| quote!(#l => Self::#v));
        let all: Vec<&String> = labels.iter().map(|(_, l)| l).collect();
        return Ok(quote! {
            impl<'a> #k::types::FromSql<'a> for #ident {
                fn from_sql(
                    ty: &#k::types::Type,
                    raw: &'a [u8],
                ) -> ::core::result::Result<Self, #k::types::BoxError> {
                    let label = #k::types::enums::read_label(ty, raw)?;
                    ::core::result::Result::Ok(match label {
                        #(#arms,)*
                        other => return ::core::result::Result::Err(
                            #k::types::enums::unknown_label(
                                ty, other, ::core::any::type_name::<Self>(),
                            ),
                        ),
                    })
                }

                fn from_sql_text(
                    ty: &#k::types::Type,
                    raw: &'a [u8],
                ) -> ::core::result::Result<Self, #k::types::BoxError> {
                    <Self as #k::types::FromSql<'a>>::from_sql(ty, raw)
                }

                fn accepts(ty: &#k::types::Type) -> bool {
                    #k::types::enums::enum_accepts(ty, #type_name, &[#(#all),*])
                }
            }
        });
    }
    let fields = struct_fields(input, c, "FromSql")?;
    no_member_flags(&fields, "FromSql")?;
    let inits = fields.iter().map(|(f, name, _)| {
        let fi = &f.ident;
        quote!(#fi: c.get(#name)?)
    });
    let inits2 = inits.clone();
    let names = fields.iter().map(|(_, n, _)| n);
    Ok(quote! {
        impl<'a> #k::types::FromSql<'a> for #ident {
            fn from_sql(
                ty: &#k::types::Type,
                raw: &'a [u8],
            ) -> ::core::result::Result<Self, #k::types::BoxError> {
                let c = #k::types::composite::Composite::parse(ty, raw, #k::types::Format::Binary)?;
                ::core::result::Result::Ok(Self { #(#inits,)* })
            }

            fn from_sql_text(
                ty: &#k::types::Type,
                raw: &'a [u8],
            ) -> ::core::result::Result<Self, #k::types::BoxError> {
                let c = #k::types::composite::Composite::parse(ty, raw, #k::types::Format::Text)?;
                ::core::result::Result::Ok(Self { #(#inits2,)* })
            }

            fn accepts(ty: &#k::types::Type) -> bool {
                #k::types::enums::name_matches(ty, #type_name)
                    && #k::types::composite::composite_accepts(ty, &[#(#names),*])
            }
        }
    })
}

// ---- FromRow -----------------------------------------------------------------------------

fn from_row(input: &DeriveInput, c: &Container) -> syn::Result<TokenStream2> {
    let ident = &input.ident;
    let k = &c.krate;
    if matches!(input.data, Data::Enum(_)) {
        return Err(syn::Error::new_spanned(
            ident,
            "FromRow needs a struct with named fields",
        ));
    }
    let fields = struct_fields(input, c, "FromRow")?;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let struct_name = LitStr::new(&ident.to_string(), Span::call_site());
    let mut inits = Vec::new();
    for (position, (f, column, m)) in fields.iter().enumerate() {
        let fi = &f.ident;
        let fname = fi.as_ref().map(ToString::to_string).unwrap_or_default();
        let fname = fname.strip_prefix("r#").unwrap_or(&fname).to_string();
        if m.flatten && (m.default || m.rename.is_some()) {
            return Err(syn::Error::new_spanned(
                f,
                "a flatten field takes its columns from its own type: no rename or default",
            ));
        }
        inits.push(if m.flatten {
            quote!(#fi: #k::from_row::flattened(row, #fname, #struct_name)?)
        } else if m.default {
            quote!(#fi: #k::from_row::field_or_default(row, #column, #fname, #struct_name)?)
        } else {
            // The field's position is a hint: a SELECT in struct order reads by index.
            quote!(#fi: #k::from_row::field_at(row, #position, #column, #fname, #struct_name)?)
        });
    }
    Ok(quote! {
        impl #impl_g #k::FromRow for #ident #ty_g #where_g {
            fn from_row(row: &#k::Row) -> ::core::result::Result<Self, #k::Error> {
                ::core::result::Result::Ok(Self { #(#inits,)* })
            }
        }
    })
}
