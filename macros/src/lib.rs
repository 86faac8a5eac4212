//! The `#[traced]` attribute of [flowtrace](https://docs.rs/flowtrace).
//!
//! Use it through `flowtrace::traced`; the expansion calls only
//! `flowtrace::__private`.

mod attr;
mod expand;

use proc_macro::TokenStream;

/// Makes an `async fn` a flowtrace task: every call extracts its parent from
/// the current `custom_context` (else the current OpenTelemetry context, else
/// starts a root), starts a span, and polls the body with the span and the
/// child map current.
///
/// Options: `name = "..."` (span and task name; default the function's name),
/// `crate = path` (where flowtrace is, for crates that re-export it).
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.clone().into();
    let args = match syn::parse::<attr::Args>(args) {
        Ok(args) => args,
        Err(err) => return expand::with_error(err, item2).into(),
    };
    match syn::parse::<expand::MaybeItemFn>(item) {
        Ok(function) => expand::expand(args, function)
            .unwrap_or_else(|err| expand::with_error(err, item2))
            .into(),
        Err(err) => expand::with_error(err, item2).into(),
    }
}
