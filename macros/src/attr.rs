//! Parsing `#[traced(...)]` options.

use proc_macro::TokenStream;
use syn::parse::Parser;
use syn::{LitStr, Path};

const ACCEPTED: &str = "accepted options are `name = \"...\"` and `crate = path`";

/// The parsed options.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
}

pub(crate) fn parse(args: TokenStream) -> syn::Result<Args> {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            if out.name.is_some() {
                return Err(meta.error("duplicate option `name`"));
            }
            let lit: LitStr = meta.value()?.parse().map_err(|e| {
                syn::Error::new(e.span(), "`name` takes a string literal: `name = \"...\"`")
            })?;
            if lit.value().is_empty() {
                return Err(syn::Error::new(lit.span(), "`name` must not be empty"));
            }
            out.name = Some(lit);
            Ok(())
        } else if meta.path.is_ident("crate") {
            if out.krate.is_some() {
                return Err(meta.error("duplicate option `crate`"));
            }
            out.krate = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            let name = meta
                .path
                .get_ident()
                .map_or_else(|| "this option".to_owned(), |i| format!("`{i}`"));
            Err(meta.error(format!("unknown option {name}: {ACCEPTED}")))
        }
    });
    parser.parse(args)?;
    Ok(out)
}
