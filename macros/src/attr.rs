//! Parsing `#[traced(...)]` options, with the `tracing::instrument` syntax.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token, parenthesized};

pub(crate) const ACCEPTED: &str = "accepted options: `name = \"...\"`, `kind = internal|server|client|producer|consumer`, \
`skip(arg, ...)`, `skip_all`, `fields(key = expr, key.nested = %expr, key = ?expr)`, `ret`, `err`, \
`parent = expr`, `follows_from = expr`, `new_trace`, `capture = json|debug`, `redact(arg, arg.field.path)`, \
`retries = N`, `backoff = fixed|exponential`, `retry_delay = \"100ms\"`, `max_delay = \"10s\"`, `jitter = true|false`, \
`new_trace_after = \"10m\"`, `timeout = \"30s\"`, `cache = key_expr`, `crate = path`";

pub(crate) const KINDS: [&str; 5] = ["internal", "server", "client", "producer", "consumer"];

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(kind);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(skip_all);
    syn::custom_keyword!(fields);
    syn::custom_keyword!(ret);
    syn::custom_keyword!(err);
    syn::custom_keyword!(parent);
    syn::custom_keyword!(follows_from);
    syn::custom_keyword!(new_trace);
    syn::custom_keyword!(capture);
    syn::custom_keyword!(redact);
    syn::custom_keyword!(retries);
    syn::custom_keyword!(backoff);
    syn::custom_keyword!(retry_delay);
    syn::custom_keyword!(max_delay);
    syn::custom_keyword!(jitter);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(new_trace_after);
    syn::custom_keyword!(cache);
}

/// A duration written as `"250ms"`, `"30s"`, `"5m"` or `"1h"`, in milliseconds.
pub(crate) struct Millis {
    pub(crate) millis: u64,
    pub(crate) span: Span,
}

impl Parse for Millis {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lit: LitStr = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "a duration is a string such as \"250ms\", \"30s\", \"5m\" or \"1h\"",
            )
        })?;
        let text = lit.value();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let factor = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => 0,
        };
        match number.parse::<u64>() {
            Ok(n) if factor > 0 && n > 0 => Ok(Self {
                millis: n.saturating_mul(factor),
                span: lit.span(),
            }),
            _ => Err(syn::Error::new(
                lit.span(),
                format!(
                    "`{text}` is not a duration: use a positive whole number with `ms`, `s`, `m` or `h`, such as \"250ms\" or \"30s\""
                ),
            )),
        }
    }
}

/// How a value is formatted: by the default rule, or forced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Default,
    Debug,
    Display,
}

/// `%` (Display), `?` (Debug) or nothing before a field value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sigil {
    None,
    Display,
    Debug,
}

pub(crate) struct Field {
    pub(crate) key: String,
    pub(crate) sigil: Sigil,
    pub(crate) value: Expr,
}

/// A dotted path: `arg` or `arg.field.sub`.
pub(crate) struct DottedPath {
    pub(crate) head: Ident,
    pub(crate) rest: Vec<Ident>,
}

impl DottedPath {
    pub(crate) fn tail(&self) -> String {
        self.rest.iter().map(unraw).collect::<Vec<_>>().join(".")
    }
}

pub(crate) fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").unwrap_or(&s).to_owned()
}

impl Parse for DottedPath {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let head = input.call(Ident::parse_any_ident)?;
        let mut rest = Vec::new();
        while input.peek(Token![.]) {
            input.parse::<Token![.]>()?;
            rest.push(input.call(Ident::parse_any_ident)?);
        }
        Ok(Self { head, rest })
    }
}

trait ParseAnyIdent {
    fn parse_any_ident(input: ParseStream<'_>) -> syn::Result<Ident>;
}

impl ParseAnyIdent for Ident {
    fn parse_any_ident(input: ParseStream<'_>) -> syn::Result<Ident> {
        syn::ext::IdentExt::parse_any(input)
    }
}

impl Parse for Field {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = if input.peek(LitStr) {
            input.parse::<LitStr>()?.value()
        } else {
            let path: DottedPath = input.parse()?;
            std::iter::once(unraw(&path.head))
                .chain(path.rest.iter().map(unraw))
                .collect::<Vec<_>>()
                .join(".")
        };
        if !input.peek(Token![=]) {
            return Err(input.error(format!(
                "field `{key}` needs a value: `{key} = expr`, `{key} = %expr` (Display) or `{key} = ?expr` (Debug)"
            )));
        }
        input.parse::<Token![=]>()?;
        let sigil = if input.peek(Token![%]) {
            input.parse::<Token![%]>()?;
            Sigil::Display
        } else if input.peek(Token![?]) {
            input.parse::<Token![?]>()?;
            Sigil::Debug
        } else {
            Sigil::None
        };
        let value = input.parse()?;
        Ok(Self { key, sigil, value })
    }
}

/// The parsed options.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    pub(crate) kind: Option<Ident>,
    pub(crate) skip: Vec<Ident>,
    pub(crate) skip_all: Option<Span>,
    pub(crate) fields: Vec<Field>,
    pub(crate) ret: Option<Format>,
    pub(crate) err: Option<Format>,
    pub(crate) parent: Option<Expr>,
    pub(crate) follows_from: Option<Expr>,
    pub(crate) new_trace: Option<Span>,
    pub(crate) capture: Option<Ident>,
    pub(crate) redact: Vec<DottedPath>,
    pub(crate) retries: Option<syn::LitInt>,
    pub(crate) backoff: Option<Ident>,
    pub(crate) retry_delay: Option<Millis>,
    pub(crate) max_delay: Option<Millis>,
    pub(crate) jitter: Option<syn::LitBool>,
    pub(crate) timeout: Option<Millis>,
    pub(crate) new_trace_after: Option<Millis>,
    pub(crate) cache: Option<Expr>,
}

impl Args {
    /// Whether the body runs under the lifecycle executor.
    pub(crate) fn has_lifecycle(&self) -> bool {
        self.retries.is_some() || self.timeout.is_some() || self.cache.is_some()
    }
}

fn duplicate<T>(slot: &Option<T>, span: Span, name: &str) -> syn::Result<()> {
    match slot {
        Some(_) => Err(syn::Error::new(span, format!("duplicate option `{name}`"))),
        None => Ok(()),
    }
}

fn parse_format(input: ParseStream<'_>, option: &str) -> syn::Result<Format> {
    if !input.peek(syn::token::Paren) {
        return Ok(Format::Default);
    }
    let content;
    parenthesized!(content in input);
    let ident: Ident = content.parse()?;
    match ident.to_string().as_str() {
        "Debug" => Ok(Format::Debug),
        "Display" => Ok(Format::Display),
        other => Err(syn::Error::new(
            ident.span(),
            format!(
                "`{option}({other})` is not a format: use `{option}`, `{option}(Debug)` or `{option}(Display)`"
            ),
        )),
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            let span = input.span();
            if lookahead.peek(kw::name) {
                input.parse::<kw::name>()?;
                duplicate(&args.name, span, "name")?;
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`name` takes a string literal: `name = \"...\"`")
                })?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "`name` must not be empty"));
                }
                args.name = Some(lit);
            } else if lookahead.peek(Token![crate]) {
                input.parse::<Token![crate]>()?;
                duplicate(&args.krate, span, "crate")?;
                input.parse::<Token![=]>()?;
                args.krate = Some(input.parse()?);
            } else if lookahead.peek(kw::kind) {
                input.parse::<kw::kind>()?;
                duplicate(&args.kind, span, "kind")?;
                input.parse::<Token![=]>()?;
                let kind: Ident = input.parse()?;
                if !KINDS.contains(&kind.to_string().as_str()) {
                    return Err(syn::Error::new(
                        kind.span(),
                        format!(
                            "unknown span kind `{kind}`: accepted kinds are {}",
                            KINDS.join(", ")
                        ),
                    ));
                }
                args.kind = Some(kind);
            } else if lookahead.peek(kw::skip_all) {
                input.parse::<kw::skip_all>()?;
                duplicate(&args.skip_all, span, "skip_all")?;
                args.skip_all = Some(span);
            } else if lookahead.peek(kw::skip) {
                input.parse::<kw::skip>()?;
                if !args.skip.is_empty() {
                    return Err(syn::Error::new(
                        span,
                        "duplicate option `skip`: list all arguments in one `skip(a, b)`",
                    ));
                }
                let content;
                parenthesized!(content in input);
                let list = Punctuated::<Ident, Token![,]>::parse_terminated_with(
                    &content,
                    Ident::parse_any_ident,
                )?;
                if list.is_empty() {
                    return Err(syn::Error::new(
                        span,
                        "`skip()` needs at least one argument name",
                    ));
                }
                args.skip = list.into_iter().collect();
            } else if lookahead.peek(kw::fields) {
                input.parse::<kw::fields>()?;
                if !args.fields.is_empty() {
                    return Err(syn::Error::new(
                        span,
                        "duplicate option `fields`: list all fields in one `fields(..)`",
                    ));
                }
                let content;
                parenthesized!(content in input);
                let list = Punctuated::<Field, Token![,]>::parse_terminated(&content)?;
                args.fields = list.into_iter().collect();
            } else if lookahead.peek(kw::ret) {
                input.parse::<kw::ret>()?;
                duplicate(&args.ret, span, "ret")?;
                args.ret = Some(parse_format(input, "ret")?);
            } else if lookahead.peek(kw::err) {
                input.parse::<kw::err>()?;
                duplicate(&args.err, span, "err")?;
                args.err = Some(parse_format(input, "err")?);
            } else if lookahead.peek(kw::parent) {
                input.parse::<kw::parent>()?;
                duplicate(&args.parent, span, "parent")?;
                input.parse::<Token![=]>()?;
                args.parent = Some(input.parse()?);
            } else if lookahead.peek(kw::follows_from) {
                input.parse::<kw::follows_from>()?;
                duplicate(&args.follows_from, span, "follows_from")?;
                input.parse::<Token![=]>()?;
                args.follows_from = Some(input.parse()?);
            } else if lookahead.peek(kw::new_trace) {
                input.parse::<kw::new_trace>()?;
                duplicate(&args.new_trace, span, "new_trace")?;
                args.new_trace = Some(span);
            } else if lookahead.peek(kw::capture) {
                input.parse::<kw::capture>()?;
                duplicate(&args.capture, span, "capture")?;
                input.parse::<Token![=]>()?;
                let mode: Ident = input.parse()?;
                if mode != "json" && mode != "debug" {
                    return Err(syn::Error::new(
                        mode.span(),
                        format!(
                            "unknown capture mode `{mode}`: accepted are `capture = json` (Serialize only, the default) and `capture = debug` (Debug for the rest)"
                        ),
                    ));
                }
                args.capture = Some(mode);
            } else if lookahead.peek(kw::redact) {
                input.parse::<kw::redact>()?;
                let content;
                parenthesized!(content in input);
                let list = Punctuated::<DottedPath, Token![,]>::parse_terminated(&content)?;
                args.redact.extend(list);
            } else if lookahead.peek(kw::retries) {
                input.parse::<kw::retries>()?;
                duplicate(&args.retries, span, "retries")?;
                input.parse::<Token![=]>()?;
                let n: syn::LitInt = input.parse()?;
                n.base10_parse::<u32>().map_err(|_| {
                    syn::Error::new(n.span(), "`retries` takes a whole number: `retries = 3`")
                })?;
                args.retries = Some(n);
            } else if lookahead.peek(kw::backoff) {
                input.parse::<kw::backoff>()?;
                duplicate(&args.backoff, span, "backoff")?;
                input.parse::<Token![=]>()?;
                let kind: Ident = input.parse()?;
                if kind != "fixed" && kind != "exponential" {
                    return Err(syn::Error::new(
                        kind.span(),
                        format!(
                            "unknown backoff `{kind}`: accepted are `backoff = fixed` and `backoff = exponential`"
                        ),
                    ));
                }
                args.backoff = Some(kind);
            } else if lookahead.peek(kw::retry_delay) {
                input.parse::<kw::retry_delay>()?;
                duplicate(&args.retry_delay, span, "retry_delay")?;
                input.parse::<Token![=]>()?;
                args.retry_delay = Some(input.parse()?);
            } else if lookahead.peek(kw::max_delay) {
                input.parse::<kw::max_delay>()?;
                duplicate(&args.max_delay, span, "max_delay")?;
                input.parse::<Token![=]>()?;
                args.max_delay = Some(input.parse()?);
            } else if lookahead.peek(kw::jitter) {
                input.parse::<kw::jitter>()?;
                duplicate(&args.jitter, span, "jitter")?;
                input.parse::<Token![=]>()?;
                args.jitter = Some(input.parse()?);
            } else if lookahead.peek(kw::new_trace_after) {
                input.parse::<kw::new_trace_after>()?;
                duplicate(&args.new_trace_after, span, "new_trace_after")?;
                input.parse::<Token![=]>()?;
                args.new_trace_after = Some(input.parse()?);
            } else if lookahead.peek(kw::timeout) {
                input.parse::<kw::timeout>()?;
                duplicate(&args.timeout, span, "timeout")?;
                input.parse::<Token![=]>()?;
                args.timeout = Some(input.parse()?);
            } else if lookahead.peek(kw::cache) {
                input.parse::<kw::cache>()?;
                duplicate(&args.cache, span, "cache")?;
                input.parse::<Token![=]>()?;
                args.cache = Some(input.parse()?);
            } else if input.peek(syn::Ident) || input.peek(Token![crate]) {
                let ident = input.call(Ident::parse_any_ident)?;
                return Err(syn::Error::new(
                    ident.span(),
                    format!("unknown option `{ident}`: {ACCEPTED}"),
                ));
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}
