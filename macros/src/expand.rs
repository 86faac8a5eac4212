//! Code generation for `#[traced]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{
    Attribute, Block, Expr, ExprAsync, FnArg, Pat, ReturnType, Signature, Stmt, Type, Visibility,
    braced,
};

use crate::attr::{Args, Format, Sigil, unraw};

/// A function whose body is kept as raw tokens, so errors inside the body
/// come from rustc rather than from this macro.
pub(crate) struct MaybeItemFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: TokenStream,
    brace_span: Span,
}

impl Parse for MaybeItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        if input.peek(syn::Token![;]) {
            return Err(syn::Error::new(
                input.span(),
                "`#[traced]` needs a function body: put it on the implementation, not on a declaration",
            ));
        }
        let content;
        let brace = braced!(content in input);
        let body: TokenStream = content.parse()?;
        Ok(Self {
            attrs,
            vis,
            sig,
            body,
            brace_span: brace.span.join(),
        })
    }
}

/// The error plus the item unchanged, so one bad option does not cascade
/// into follow-on errors about the function.
pub(crate) fn with_error(err: syn::Error, item: TokenStream) -> TokenStream {
    let err = err.to_compile_error();
    quote! { #err #item }
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|seg| seg.ident == "Result"),
        Type::Paren(inner) => is_result(&inner.elem),
        Type::Group(inner) => is_result(&inner.elem),
        _ => false,
    }
}

/// Whether `ty` mentions `impl Trait`, which cannot annotate a `let`.
fn has_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// The `Output = T` of a `impl Future<Output = T>` or
/// `Pin<Box<dyn Future<Output = T> + ..>>` return type.
fn future_output(ty: &Type) -> Option<Type> {
    struct Finder(Option<Type>);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_assoc_type(&mut self, assoc: &'ast syn::AssocType) {
            if self.0.is_none() && assoc.ident == "Output" {
                self.0 = Some(assoc.ty.clone());
            }
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}

/// The typed, plain-identifier arguments (those that can be captured).
fn arguments(sig: &Signature) -> Vec<syn::Ident> {
    sig.inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(pat) => Some(pat.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// The async block a non-`async` function returns (`async move { .. }` or
/// `Box::pin(async move { .. })` as `#[async_trait]` writes), if any.
fn returned_async_block(block: &mut Block) -> Option<&mut ExprAsync> {
    match block.stmts.last_mut()? {
        Stmt::Expr(Expr::Async(expr), None) => Some(expr),
        Stmt::Expr(Expr::Call(call), None) => {
            let is_pin = matches!(&*call.func, Expr::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "pin"));
            match (is_pin, call.args.len(), call.args.first_mut()) {
                (true, 1, Some(Expr::Async(expr))) => Some(expr),
                _ => None,
            }
        }
        _ => None,
    }
}

/// An `async fn`'s signature as a plain `fn` returning
/// `impl Future<Output = T>`, and the statements that move every argument
/// into the returned `async move` block (as an `async fn` does: an argument
/// lives until the future ends, `_` patterns included).
fn returning_future(sig: &Signature, output: &Type) -> (Signature, TokenStream) {
    let mut sig = sig.clone();
    sig.asyncness = None;
    // `impl` spanned by the macro: Rust 2024 capture rules (every lifetime
    // of the arguments) whatever edition the calling crate is on.
    let future = quote!(impl ::core::future::Future<Output = #output>);
    sig.output = syn::parse_quote!(-> #future);
    let mut bind = TokenStream::new();
    for (index, arg) in sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(typed) = arg else { continue };
        match &mut *typed.pat {
            // Mentioned, so the `async move` block owns it even when the
            // body does not use it.
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                let ident = &pat.ident;
                bind.extend(quote!(let _ = &#ident;));
            }
            pat => {
                let renamed = format_ident!("__flowtrace_arg{index}");
                let original = std::mem::replace(pat, syn::parse_quote!(#renamed));
                bind.extend(quote! {
                    let _ = &#renamed;
                    let #original = #renamed;
                });
            }
        }
    }
    (sig, bind)
}

struct Expansion<'a> {
    krate: TokenStream,
    args: &'a Args,
    sig: &'a Signature,
    name: String,
}

impl Expansion<'_> {
    fn validate(&self) -> syn::Result<()> {
        let params = arguments(self.sig);
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
        for ident in &self.args.skip {
            if !known(ident) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("`skip({ident})`: no argument `{ident}`; {accepted}"),
                ));
            }
        }
        for path in &self.args.redact {
            if !known(&path.head) {
                let head = &path.head;
                return Err(syn::Error::new(
                    head.span(),
                    format!("`redact({head})`: no argument `{head}`; {accepted}"),
                ));
            }
            if self.args.skip.iter().any(|s| unraw(s) == unraw(&path.head))
                || self.args.skip_all.is_some()
            {
                let head = &path.head;
                return Err(syn::Error::new(
                    head.span(),
                    format!("`redact({head})`: `{head}` is skipped, so it is never captured"),
                ));
            }
        }
        Ok(())
    }

    /// `TaskStart::new(..).kind(..)...start()` and the recording of fields and
    /// inputs, which runs only when the span records. `from_caller`: the
    /// span starts under `__flowtrace_caller`, captured where the function
    /// was called.
    fn prelude(&self, from_caller: bool) -> TokenStream {
        let krate = &self.krate;
        let args = self.args;
        let kind = args.kind.as_ref().map(|kind| {
            let variant = format_ident!("{}", {
                let k = kind.to_string();
                let mut c = k.chars();
                c.next()
                    .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
            });
            quote!(.kind(#krate::__private::SpanKind::#variant))
        });
        let parent = args.parent.as_ref().map(|e| quote!(.parent(#e)));
        let follows = args
            .follows_from
            .as_ref()
            .map(|e| quote!(.follows_from(#e)));
        let new_trace = args.new_trace.map(|_| quote!(.new_trace()));
        let fields = args.fields.iter().map(|field| {
            let key = &field.key;
            let value = &field.value;
            let value = match field.sigil {
                Sigil::None => quote_spanned!(value.span()=> #krate::__private::field(&(#value))),
                Sigil::Display => {
                    quote_spanned!(value.span()=> #krate::__private::display(&(#value)))
                }
                Sigil::Debug => quote_spanned!(value.span()=> #krate::__private::debug(&(#value))),
            };
            quote!(__flowtrace_span.field(#key, #value);)
        });
        let mode = match &args.capture {
            Some(mode) if mode == "debug" => quote!(#krate::__private::Mode::Debug),
            _ => quote!(#krate::__private::Mode::Json),
        };
        let inputs = arguments(self.sig)
            .into_iter()
            .filter(|ident| {
                args.skip_all.is_none() && !args.skip.iter().any(|s| unraw(s) == unraw(ident))
            })
            .map(|ident| {
                let name = unraw(&ident);
                let paths = args
                    .redact
                    .iter()
                    .filter(|p| unraw(&p.head) == name)
                    .map(|p| p.tail());
                quote! {
                    __flowtrace_span.input(
                        #name,
                        (&&&#krate::__private::Wrap(&#ident)).capture(#mode),
                        &[#(#paths),*],
                    );
                }
            });
        let start = if from_caller {
            quote!(.start_from(__flowtrace_caller))
        } else {
            quote!(.start())
        };
        quote! {
            #[allow(unused_mut)]
            let mut __flowtrace_span = #krate::__private::TaskStart::new(&__FLOWTRACE_TASK)
                #kind #parent #follows #new_trace
                #start;
            if __flowtrace_span.is_recording() {
                #[allow(unused_imports)]
                use #krate::__private::{CaptureDebug as _, CaptureNothing as _, CaptureSerialize as _};
                #(#fields)*
                #(#inputs)*
            }
        }
    }

    /// The closure that records the outcome (`Err`, `ret`) on the span.
    fn record(&self, output: Option<&Type>) -> TokenStream {
        let krate = &self.krate;
        let is_result = self.args.err.is_some() || output.is_some_and(is_result);
        let capture = |value: TokenStream, format: Format| match format {
            Format::Default => {
                quote!((&&&#krate::__private::Wrap(#value)).capture(#krate::__private::Mode::Debug))
            }
            Format::Debug => quote!(::core::option::Option::Some(#krate::__private::debug(#value))),
            Format::Display => {
                quote!(::core::option::Option::Some(#krate::__private::display(#value)))
            }
        };
        let ret = self.args.ret.map(|format| {
            let value = capture(quote!(__flowtrace_value), format);
            quote!(#krate::__private::record_output(__flowtrace_span, #value);)
        });
        let err = match self.args.err.unwrap_or(Format::Default) {
            Format::Default => quote!((&&&&#krate::__private::Wrap(__flowtrace_err)).describe()),
            Format::Debug => {
                quote!(#krate::__private::ViaDebug::describe(&&#krate::__private::Wrap(__flowtrace_err)))
            }
            Format::Display => {
                quote!(#krate::__private::ViaDisplay::describe(&&&#krate::__private::Wrap(__flowtrace_err)))
            }
        };
        let uses = quote! {
            #[allow(unused_imports)]
            use #krate::__private::{
                CaptureDebug as _, CaptureNothing as _, CaptureSerialize as _,
                ViaDebug as _, ViaDisplay as _, ViaError as _, ViaTypeName as _,
            };
        };
        match (is_result, ret) {
            (true, ret) => quote! {
                |__flowtrace_out, __flowtrace_span| {
                    #uses
                    match __flowtrace_out {
                        ::core::result::Result::Ok(__flowtrace_value) => {
                            let _ = __flowtrace_value;
                            if __flowtrace_span.is_recording() { #ret }
                            false
                        }
                        ::core::result::Result::Err(__flowtrace_err) => {
                            if __flowtrace_span.is_recording() {
                                #krate::__private::record_error(__flowtrace_span, #err)
                            } else {
                                true
                            }
                        }
                    }
                }
            },
            (false, Some(ret)) => quote! {
                |__flowtrace_value, __flowtrace_span| {
                    #uses
                    if __flowtrace_span.is_recording() { #ret }
                    false
                }
            },
            (false, None) => quote!(#krate::__private::no_outcome),
        }
    }

    fn is_result(&self, output: &Type) -> bool {
        self.args.err.is_some() || is_result(output)
    }

    /// The plain arguments a lifecycle body re-binds on each attempt.
    fn plain_params(&self) -> syn::Result<Vec<(syn::Ident, Option<syn::Token![mut]>)>> {
        let mut params = Vec::new();
        for arg in &self.sig.inputs {
            if let FnArg::Typed(typed) = arg {
                match &*typed.pat {
                    Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                        params.push((pat.ident.clone(), pat.mutability));
                    }
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "`retries`, `timeout` and `cache` need plain `name: Type` arguments (bind this pattern inside the body)",
                        ));
                    }
                }
            }
        }
        Ok(params)
    }

    /// `__flowtrace_span.task(body, record)` (awaited by the caller), with the body under the
    /// lifecycle executor when `retries`, `timeout` or `cache` are set.
    fn task_call(
        &self,
        output: &Type,
        body: TokenStream,
        brace_span: Span,
        capture: TokenStream,
    ) -> syn::Result<TokenStream> {
        let record = self.record(Some(output));
        let inner = self.async_body(Some(output), body, brace_span, capture);
        if !self.args.has_lifecycle() {
            return Ok(quote!(__flowtrace_span.task(#inner, #record)));
        }
        let krate = &self.krate;
        let args = self.args;
        let is_result = self.is_result(output);
        if !is_result {
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
        let params = self.plain_params()?;
        let retries = args.retries.as_ref().map(|n| quote!(.retries(#n)));
        let backoff = args.retries.as_ref().map(|_| {
            let delay = args.retry_delay.as_ref().map_or(100, |d| d.millis);
            let base = match &args.backoff {
                Some(kind) if kind == "fixed" => quote!(#krate::__private::Backoff::fixed(
                    ::core::time::Duration::from_millis(#delay)
                )),
                _ => quote!(#krate::__private::Backoff::exponential(
                    ::core::time::Duration::from_millis(#delay)
                )),
            };
            let max = args.max_delay.as_ref().map(|d| {
                let ms = d.millis;
                quote!(.max_delay(::core::time::Duration::from_millis(#ms)))
            });
            let jitter = args.jitter.as_ref().map(|j| quote!(.jitter(#j)));
            let relink = args.new_trace_after.as_ref().map(|d| {
                let ms = d.millis;
                quote!(.new_trace_after(::core::time::Duration::from_millis(#ms)))
            });
            quote!(.backoff(#base #max #jitter) #relink)
        });
        let timeout = args.timeout.as_ref().map(|t| {
            let ms = t.millis;
            quote!(.timeout(::core::time::Duration::from_millis(#ms)))
        });
        let key = match &args.cache {
            Some(expr) => quote!(::core::option::Option::Some(
                ::std::format!("{}:{}", __flowtrace_function(), #expr)
            )),
            None => quote!(::core::option::Option::None),
        };
        let idents: Vec<_> = params.iter().map(|(i, _)| i).collect();
        let muts: Vec<_> = params.iter().map(|(_, m)| m).collect();
        let make = if args.retries.is_some() {
            quote! {
                move |_| {
                    #(let #muts #idents = #krate::__private::retry_arg(&#idents);)*
                    #inner
                }
            }
        } else {
            quote! {
                {
                    let mut __flowtrace_args = ::core::option::Option::Some((#(#idents,)*));
                    move |_| {
                        let (#(#muts #idents,)*) = match __flowtrace_args.take() {
                            ::core::option::Option::Some(args) => args,
                            ::core::option::Option::None => {
                                ::core::unreachable!("a task body without retries runs once")
                            }
                        };
                        #inner
                    }
                }
            }
        };
        let no_timeout =
            quote!(::core::option::Option::None::<fn(#krate::__private::TaskTimeout) -> #output>);
        // The failure hook's argument is annotated: autoref dispatch on the
        // error type needs the type known where the closure is checked.
        let out_ty = if has_impl_trait(output) {
            quote!(_)
        } else {
            quote!(#output)
        };
        let (failure, timeout_hook, store, load) = if is_result {
            (
                quote! {
                    |__flowtrace_out: &#out_ty| {
                        #[allow(unused_imports)]
                        use #krate::__private::{ViaDebug as _, ViaDisplay as _, ViaError as _, ViaTypeName as _};
                        match __flowtrace_out {
                            ::core::result::Result::Err(__flowtrace_err) => ::core::option::Option::Some(
                                #krate::__private::failure((&&&&#krate::__private::Wrap(__flowtrace_err)).describe()),
                            ),
                            ::core::result::Result::Ok(_) => ::core::option::Option::None,
                        }
                    }
                },
                if args.timeout.is_some() {
                    quote!(::core::option::Option::Some(#krate::__private::timeout_output))
                } else {
                    no_timeout
                },
                quote!(#krate::__private::store_ok),
                quote!(#krate::__private::load_ok),
            )
        } else {
            (
                quote!(#krate::__private::never_fails),
                no_timeout,
                quote!(#krate::__private::store_value),
                quote!(#krate::__private::load_value),
            )
        };
        let (store, load) = if args.cache.is_some() {
            (store, load)
        } else {
            (
                quote!(#krate::__private::no_store),
                quote!(#krate::__private::no_load),
            )
        };
        let name = &self.name;
        Ok(quote! {
            {
                let __flowtrace_key: ::core::option::Option<::std::string::String> = #key;
                let __flowtrace_policy = #krate::__private::Policy::new() #retries #backoff #timeout;
                let __flowtrace_make = #make;
                __flowtrace_span.task(
                    #krate::__private::execute(
                        #name,
                        __flowtrace_policy,
                        __flowtrace_key,
                        __flowtrace_make,
                        #krate::__private::Hooks {
                            failure: #failure,
                            timeout: #timeout_hook,
                            store: #store,
                            load: #load,
                        },
                    ),
                    #record,
                )
            }
        })
    }

    /// Wraps an async body: `async move { let __ret: T = { body }; .. }`
    /// pins inference (`?`, early `return`) and points mismatches at the
    /// signature.
    fn async_body(
        &self,
        output: Option<&Type>,
        body: TokenStream,
        brace_span: Span,
        capture: TokenStream,
    ) -> TokenStream {
        match output {
            Some(ty) if !has_impl_trait(ty) => {
                let ret = quote_spanned!(ty.span()=> let __flowtrace_ret: #ty);
                quote_spanned!(brace_span=> #capture {
                    #ret = { #body };
                    #[allow(unreachable_code)]
                    return __flowtrace_ret;
                })
            }
            _ => quote_spanned!(brace_span=> #capture { #body }),
        }
    }
}

pub(crate) fn expand(args: Args, function: MaybeItemFn) -> syn::Result<TokenStream> {
    let MaybeItemFn {
        attrs,
        vis,
        sig,
        body,
        brace_span,
    } = function;
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote!(::flowtrace), |path| path.into_token_stream());
    let name = args
        .name
        .as_ref()
        .map_or_else(|| unraw(&sig.ident), |lit| lit.value());
    let expansion = Expansion {
        krate: krate.clone(),
        args: &args,
        sig: &sig,
        name: name.clone(),
    };
    expansion.validate()?;
    let declared = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let meta = quote! {
        fn __flowtrace_function() -> &'static str {
            #krate::__private::function_name(::core::any::type_name_of_val(&__flowtrace_function))
        }
        static __FLOWTRACE_TASK: #krate::__private::TaskMeta =
            #krate::__private::TaskMeta::new(#name, __flowtrace_function);
    };
    let capture_caller = quote! {
        let __flowtrace_caller = #krate::__private::Caller::capture();
    };

    // An `async fn` becomes a `fn` returning its future, so the call itself
    // captures the caller (the span still starts at the first poll).
    if sig.asyncness.is_some() {
        let prelude = expansion.prelude(true);
        let call = expansion.task_call(&declared, body, brace_span, quote!(async move))?;
        let (sig, bind) = returning_future(&sig, &declared);
        return Ok(quote! {
            #(#attrs)*
            #[allow(clippy::manual_async_fn)]
            #vis #sig {
                #meta
                #capture_caller
                async move {
                    #bind
                    // The start handle ends with this block: it is not kept
                    // in the future across the await.
                    { #prelude #call }.await
                }
            }
        });
    }

    // A plain `fn` returning a future it builds as an async block: trace the
    // future (it starts when first polled), not the call.
    if let Ok(mut block) = syn::parse2::<Block>(quote!({ #body })) {
        let output = future_output(&declared);
        if let (Some(output), Some(async_block)) = (output, returned_async_block(&mut block)) {
            let capture = match async_block.capture {
                Some(_) => quote!(async move),
                None => quote!(async),
            };
            let original = &async_block.block;
            let call = expansion.task_call(
                &output,
                original
                    .stmts
                    .iter()
                    .map(ToTokens::to_token_stream)
                    .collect(),
                original.span(),
                capture.clone(),
            )?;
            let prelude = expansion.prelude(true);
            let traced: ExprAsync = syn::parse2(quote! {
                #capture {
                    { #prelude #call }.await
                }
            })?;
            *async_block = traced;
            let last = block.stmts.len() - 1;
            block.stmts.insert(last, syn::parse2(capture_caller)?);
            let stmts = &block.stmts;
            return Ok(quote! {
                #(#attrs)*
                #vis #sig {
                    #meta
                    #(#stmts)*
                }
            });
        }
    }

    // A synchronous function: a span around the call.
    if args.has_lifecycle() {
        let span = args
            .retries
            .as_ref()
            .map(|r| r.span())
            .or(args.timeout.as_ref().map(|t| t.span))
            .or(args.cache.as_ref().map(|c| c.span()))
            .unwrap_or_else(|| sig.fn_token.span());
        return Err(syn::Error::new(
            span,
            "`retries`, `timeout` and `cache` need an `async fn` (or a `fn` returning an `async` block)",
        ));
    }
    let prelude = expansion.prelude(false);
    let record = expansion.record(Some(&declared));
    let closure = if has_impl_trait(&declared) {
        quote_spanned!(brace_span=> || { #body })
    } else {
        quote_spanned!(brace_span=> || -> #declared { #body })
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #meta
            #prelude
            __flowtrace_span.run_sync(#closure, #record)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str, item: &str) -> String {
        let args: Args = syn::parse_str(args).expect("args");
        let item: MaybeItemFn = syn::parse_str(item).expect("item");
        expand(args, item).expect("expands").to_string()
    }

    #[test]
    fn each_option_reaches_the_start_chain() {
        for (args, expected, reason) in [
            (
                "kind = server",
                ". kind (:: flowtrace :: __private :: SpanKind :: Server)",
                "kind",
            ),
            ("parent = cx", ". parent (cx)", "parent"),
            (
                "follows_from = [a, b]",
                ". follows_from ([a , b])",
                "follows_from",
            ),
            ("new_trace", ". new_trace ()", "new_trace"),
            ("name = \"n\"", "TaskMeta :: new (\"n\"", "name"),
            (
                "crate = ::my::ft",
                ":: my :: ft :: __private :: TaskStart",
                "crate",
            ),
            (
                "fields(a.b = %x)",
                "field (\"a.b\" , :: flowtrace :: __private :: display (& (x)))",
                "fields",
            ),
            ("capture = debug", "Mode :: Debug", "capture"),
            ("redact(x.secret.pin)", "& [\"secret.pin\"]", "redact path"),
            ("ret", "record_output", "ret"),
        ] {
            let out = expand_str(args, "async fn f(x: u32) -> u32 { x }");
            assert!(out.contains(expected), "{reason}: {out}");
        }
    }

    #[test]
    fn skip_and_skip_all_drop_inputs() {
        let out = expand_str("", "async fn f(a: u32, b: u32) {}");
        assert!(
            out.contains("input (\"a\"") && out.contains("input (\"b\""),
            "{out}"
        );
        let out = expand_str("skip(a)", "async fn f(a: u32, b: u32) {}");
        assert!(
            !out.contains("input (\"a\"") && out.contains("input (\"b\""),
            "{out}"
        );
        let out = expand_str("skip_all", "async fn f(a: u32, b: u32) {}");
        assert!(!out.contains(". input ("), "{out}");
    }

    #[test]
    fn err_is_recorded_for_result_and_on_request() {
        let out = expand_str("", "async fn f() -> Result<u8, E> { Ok(1) }");
        assert!(out.contains("record_error"), "{out}");
        let out = expand_str("", "async fn f() -> u8 { 1 }");
        assert!(!out.contains("record_error"), "{out}");
        let out = expand_str("err", "async fn f() -> MyResult<u8> { Ok(1) }");
        assert!(out.contains("record_error"), "{out}");
    }

    #[test]
    fn shapes_choose_their_wrapping() {
        let out = expand_str("", "fn f() -> u8 { 1 }");
        assert!(
            out.contains("run_sync"),
            "a plain fn gets a synchronous span: {out}"
        );
        let out = expand_str(
            "",
            "fn f() -> impl Future<Output = u8> { async move { 1 } }",
        );
        assert!(
            out.contains(". task (") && !out.contains("run_sync"),
            "{out}"
        );
        let out = expand_str(
            "",
            "fn f<'a>(&'a self) -> Pin<Box<dyn Future<Output = Result<u8, E>> + Send + 'a>> { Box::pin(async move { Ok(1) }) }",
        );
        assert!(
            out.contains("Box :: pin (async move") && out.contains("record_error"),
            "{out}"
        );
    }
}
