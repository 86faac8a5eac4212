//! The checks between parsing and expansion: options that conflict, names
//! that are not arguments, lifecycle options on a function that cannot
//! have them. Each error points at the offending token.

use syn::spanned::Spanned;
use syn::{FnArg, Pat};

use crate::attr::{Args, unraw};
use crate::item::{MaybeItemFn, Shape, arguments, is_result};

pub(crate) fn validate(args: &Args, function: &MaybeItemFn) -> syn::Result<()> {
    conflicts(args)?;
    names(args, function)?;
    lifecycle(args, function)
}

fn conflicts(args: &Args) -> syn::Result<()> {
    if let (Some(skip_all), false) = (args.skip_all, args.skip.is_empty()) {
        return Err(syn::Error::new(
            skip_all,
            "`skip_all` and `skip(..)` conflict: use one of them",
        ));
    }
    if let (Some(new_trace), Some(_)) = (args.new_trace, &args.parent) {
        return Err(syn::Error::new(
            new_trace,
            "`new_trace` and `parent` conflict: a new trace has no parent (its would-be parent becomes a link)",
        ));
    }
    if args.retries.is_none() {
        let needs = [
            ("backoff", args.backoff.as_ref().map(|b| b.span())),
            ("retry_delay", args.retry_delay.as_ref().map(|d| d.span)),
            ("max_delay", args.max_delay.as_ref().map(|d| d.span)),
            ("jitter", args.jitter.as_ref().map(|j| j.span)),
            (
                "new_trace_after",
                args.new_trace_after.as_ref().map(|d| d.span),
            ),
        ];
        if let Some((name, Some(span))) = needs.into_iter().find(|(_, s)| s.is_some()) {
            return Err(syn::Error::new(
                span,
                format!("`{name}` only applies with `retries = N`"),
            ));
        }
    }
    Ok(())
}

/// `skip` and `redact` name arguments that exist and are captured.
fn names(args: &Args, function: &MaybeItemFn) -> syn::Result<()> {
    let params = arguments(&function.sig);
    let known = |ident: &syn::Ident| params.iter().any(|p| unraw(p) == unraw(ident));
    let names = params
        .iter()
        .map(|p| format!("`{}`", unraw(p)))
        .collect::<Vec<_>>();
    let accepted = if names.is_empty() {
        "this function has no named arguments".to_owned()
    } else {
        format!("its arguments are {}", names.join(", "))
    };
    for ident in &args.skip {
        if !known(ident) {
            return Err(syn::Error::new(
                ident.span(),
                format!("`skip({ident})`: no argument `{ident}`; {accepted}"),
            ));
        }
    }
    for path in &args.redact {
        let head = &path.head;
        if !known(head) {
            return Err(syn::Error::new(
                head.span(),
                format!("`redact({head})`: no argument `{head}`; {accepted}"),
            ));
        }
        if args.skip.iter().any(|s| unraw(s) == unraw(head)) || args.skip_all.is_some() {
            return Err(syn::Error::new(
                head.span(),
                format!("`redact({head})`: `{head}` is skipped, so it is never captured"),
            ));
        }
    }
    Ok(())
}

/// `retries`, `timeout` and `cache` need an async body; `retries` and
/// `timeout` a `Result`; all three plain `name: Type` arguments, which each
/// attempt re-binds.
fn lifecycle(args: &Args, function: &MaybeItemFn) -> syn::Result<()> {
    if !args.has_lifecycle() {
        return Ok(());
    }
    let output = match function.shape() {
        Shape::Async => function.declared(),
        Shape::ReturnsAsync(output) => *output,
        Shape::Sync => {
            let span = args
                .retries
                .as_ref()
                .map(|r| r.span())
                .or(args.timeout.as_ref().map(|t| t.span))
                .or(args.cache.as_ref().map(|c| c.span()))
                .unwrap_or_else(|| function.sig.fn_token.span());
            return Err(syn::Error::new(
                span,
                "`retries`, `timeout` and `cache` need an `async fn` (or a `fn` returning an `async` block)",
            ));
        }
    };
    if args.err.is_none() && !is_result(&output) {
        let span = args
            .retries
            .as_ref()
            .map(|r| r.span())
            .or(args.timeout.as_ref().map(|t| t.span));
        if let Some(span) = span {
            return Err(syn::Error::new(
                span,
                "`retries` and `timeout` need a function returning `Result<T, E>` (with `E: From<flowtrace::TaskTimeout>` for `timeout`); add `err` if the return type is an alias of `Result`",
            ));
        }
    }
    for arg in &function.sig.inputs {
        if let FnArg::Typed(typed) = arg {
            match &*typed.pat {
                Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {}
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "`retries`, `timeout` and `cache` need plain `name: Type` arguments (bind this pattern inside the body)",
                    ));
                }
            }
        }
    }
    Ok(())
}
