//! Code generation for `#[traced]`, once the options are valid.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ExprAsync, FnArg, Pat, Signature, Type};

use crate::attr::{Args, Format, Sigil, unraw};
use crate::item::{
    MaybeItemFn, arguments, future_output, has_impl_trait, is_result, returned_async_block,
};

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

pub(crate) struct Expansion<'a> {
    pub(crate) krate: TokenStream,
    pub(crate) args: &'a Args,
    pub(crate) sig: &'a Signature,
    pub(crate) name: String,
}

impl Expansion<'_> {
    /// `TaskStart::new(..).parent(..)...start()` and the recording of fields and
    /// inputs, which runs only when the span records. `from_caller`: the
    /// span starts under `__flowtrace_caller`, captured where the function
    /// was called.
    fn prelude(&self, from_caller: bool) -> TokenStream {
        let krate = &self.krate;
        let args = self.args;
        let parent = args.parent.as_ref().map(|e| quote!(.parent(#e)));
        let follows = args
            .follows_from
            .as_ref()
            .map(|e| quote!(.follows_from(#e)));
        let new_trace = args.new_trace.map(|_| quote!(.new_trace()));
        let start = if from_caller {
            quote!(.start_from(__flowtrace_caller))
        } else {
            quote!(.start())
        };
        let record = self.record_arguments();
        quote! {
            #[allow(unused_mut)]
            let mut __flowtrace_span = #krate::__private::TaskStart::new(&__FLOWTRACE_TASK)
                #parent #follows #new_trace
                #start;
            #record
        }
    }

    /// The recording of `fields` and the arguments on `__flowtrace_span`,
    /// which runs only when the span records.
    fn record_arguments(&self) -> TokenStream {
        let krate = &self.krate;
        let args = self.args;
        let fields: Vec<_> = args
            .fields
            .iter()
            .map(|field| {
                let key = &field.key;
                let value = &field.value;
                let format = match field.sigil {
                    Sigil::None => quote_spanned!(value.span()=> json),
                    Sigil::Display => quote_spanned!(value.span()=> display),
                    Sigil::Debug => quote_spanned!(value.span()=> debug),
                };
                let value =
                    quote_spanned!(value.span()=> #krate::__private::Wrap::#format(&(#value)));
                quote!(__flowtrace_span.field(#key, #value);)
            })
            .collect();
        let debug = args.capture.as_ref().is_some_and(|mode| mode == "debug");
        let inputs: Vec<_> = arguments(self.sig)
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
                        (&&&#krate::__private::Wrap(&#ident)).capture(#debug),
                        &[#(#paths),*],
                    );
                }
            })
            .collect();
        if fields.is_empty() && inputs.is_empty() {
            return TokenStream::new();
        }
        quote! {
            if __flowtrace_span.is_recording() {
                #[allow(unused_imports)]
                use #krate::__private::Capture as _;
                #(#fields)*
                #(#inputs)*
            }
        }
    }

    /// The span kind, set on the task's `TaskMeta`.
    fn kind(&self) -> TokenStream {
        let krate = &self.krate;
        self.args
            .kind
            .as_ref()
            .map(|kind| {
                let variant = format_ident!("{}", {
                    let k = kind.to_string();
                    let mut c = k.chars();
                    c.next()
                        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
                });
                quote!(.kind(#krate::__private::SpanKind::#variant))
            })
            .unwrap_or_default()
    }

    /// Whether an `async fn` can return a `Call`: its start takes no option
    /// but the span kind (`parent` and `follows_from` are expressions
    /// evaluated at the first poll, in the body's scope, and `new_trace`
    /// goes through the same start), it has no lifecycle options, and every
    /// argument is a plain name.
    fn is_plain_call(&self) -> bool {
        let args = self.args;
        args.parent.is_none()
            && args.follows_from.is_none()
            && args.new_trace.is_none()
            && !args.has_lifecycle()
            && self.sig.inputs.iter().all(|arg| match arg {
                FnArg::Receiver(_) => true,
                FnArg::Typed(typed) => matches!(
                    &*typed.pat,
                    Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none()
                ),
            })
    }

    pub(crate) fn is_result(&self, output: &Type) -> bool {
        self.args.err.is_some() || is_result(output)
    }

    /// The function that reads the task's output into a `Read`: an `Err`,
    /// or a value with what `ret` records.
    pub(crate) fn outcome(&self, output: &Type) -> TokenStream {
        let krate = &self.krate;
        let ret = match self.args.ret {
            None => quote!(::core::option::Option::None),
            Some(Format::Default) => {
                quote!((&&&#krate::__private::Wrap(__flowtrace_value)).capture(true))
            }
            Some(Format::Debug) => quote!(::core::option::Option::Some(
                #krate::__private::Wrap(__flowtrace_value).as_debug()
            )),
            Some(Format::Display) => quote!(::core::option::Option::Some(
                #krate::__private::Wrap(__flowtrace_value).as_display()
            )),
        };
        let value = match self.args.ret {
            Some(_) => quote!(__flowtrace_value),
            None => quote!(_),
        };
        if !self.is_result(output) {
            return quote! {
                |#value| {
                    #[allow(unused_imports)]
                    use #krate::__private::Capture as _;
                    #krate::__private::Read::Ok(#ret)
                }
            };
        }
        let err = match self.args.err.unwrap_or(Format::Default) {
            Format::Default => quote!((&&&&#krate::__private::Wrap(__flowtrace_err)).describe()),
            Format::Debug => quote!(#krate::__private::Describe::describe(
                &&#krate::__private::Wrap(__flowtrace_err)
            )),
            Format::Display => quote!(#krate::__private::Describe::describe(
                &&&#krate::__private::Wrap(__flowtrace_err)
            )),
        };
        quote! {
            |__flowtrace_out| {
                #[allow(unused_imports)]
                use #krate::__private::{Capture as _, Describe as _};
                match __flowtrace_out {
                    ::core::result::Result::Ok(#value) => #krate::__private::Read::Ok(#ret),
                    ::core::result::Result::Err(__flowtrace_err) => {
                        #krate::__private::Read::Err(#err)
                    }
                }
            }
        }
    }

    /// The body run under the span (awaited by the caller), under the
    /// lifecycle executor when `retries`, `timeout` or `cache` are set.
    fn task_call(
        &self,
        output: &Type,
        body: TokenStream,
        brace_span: Span,
        capture: TokenStream,
    ) -> TokenStream {
        let inner = self.async_body(output, body, brace_span, capture);
        if self.args.has_lifecycle() {
            return self.lifecycle(output, inner);
        }
        let outcome = self.outcome(output);
        quote!(__flowtrace_span.run(#inner, #outcome))
    }

    /// Wraps an async body: `async move { let __ret: T = { body }; .. }`
    /// pins inference (`?`, early `return`) and points mismatches at the
    /// signature.
    fn async_body(
        &self,
        output: &Type,
        body: TokenStream,
        brace_span: Span,
        capture: TokenStream,
    ) -> TokenStream {
        if has_impl_trait(output) {
            return quote_spanned!(brace_span=> #capture { #body });
        }
        let ret = quote_spanned!(output.span()=> let __flowtrace_ret: #output);
        quote_spanned!(brace_span=> #capture {
            #ret = { #body };
            #[allow(unreachable_code)]
            return __flowtrace_ret;
        })
    }
}

pub(crate) fn expand(args: Args, function: MaybeItemFn) -> syn::Result<TokenStream> {
    let declared = function.declared();
    let block = function.block();
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
    let kind = expansion.kind();
    let meta = quote! {
        fn __flowtrace_function() -> &'static str {
            #krate::__private::TaskMeta::function_name(
                ::core::any::type_name_of_val(&__flowtrace_function),
            )
        }
        static __FLOWTRACE_TASK: #krate::__private::TaskMeta =
            #krate::__private::TaskMeta::new(#name, __flowtrace_function) #kind;
    };
    let capture_caller = quote! {
        let __flowtrace_caller = #krate::__private::Caller::capture();
    };

    // An `async fn` becomes a `fn` returning its future, so the call itself
    // captures the caller (the span still starts at the first poll). The
    // common case returns a `Call`, which holds the capture and then the
    // running task in one place.
    if sig.asyncness.is_some() && expansion.is_plain_call() {
        let record = expansion.record_arguments();
        let outcome = expansion.outcome(&declared);
        let (sig, bind) = returning_future(&sig, &declared);
        let body = expansion.async_body(
            &declared,
            quote!(#bind #body),
            brace_span,
            quote!(async move),
        );
        return Ok(quote! {
            #(#attrs)*
            #[allow(clippy::manual_async_fn)]
            #vis #sig {
                #meta
                #krate::__private::Call::new(
                    &__FLOWTRACE_TASK,
                    #krate::__private::Caller::capture(),
                    move |__flowtrace_span| {
                        #record
                        #body
                    },
                    #outcome,
                )
            }
        });
    }
    if sig.asyncness.is_some() {
        let prelude = expansion.prelude(true);
        let call = expansion.task_call(&declared, body, brace_span, quote!(async move));
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
    if let Some(mut block) = block {
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
            );
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
    let prelude = expansion.prelude(false);
    let outcome = expansion.outcome(&declared);
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
            __flowtrace_span.call(#closure, #outcome)
        }
    })
}
