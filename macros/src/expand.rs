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

struct Expansion<'a> {
    krate: TokenStream,
    args: &'a Args,
    sig: &'a Signature,
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
    /// inputs, which runs only when the span records.
    fn prelude(&self) -> TokenStream {
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
        quote! {
            #[allow(unused_mut)]
            let mut __flowtrace_span = #krate::__private::TaskStart::new(&__FLOWTRACE_TASK)
                #kind #parent #follows #new_trace
                .start();
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
                        ::core::result::Result::Ok(__flowtrace_value) => { let _ = __flowtrace_value; #ret }
                        ::core::result::Result::Err(__flowtrace_err) => {
                            #krate::__private::record_error(__flowtrace_span, #err);
                        }
                    }
                }
            },
            (false, Some(ret)) => quote! {
                |__flowtrace_value, __flowtrace_span| {
                    #uses
                    #ret
                }
            },
            (false, None) => quote!(#krate::__private::no_outcome),
        }
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
    let prelude = expansion.prelude();

    if sig.asyncness.is_some() {
        let record = expansion.record(Some(&declared));
        let inner = expansion.async_body(Some(&declared), body, brace_span, quote!(async move));
        return Ok(quote! {
            #(#attrs)*
            #vis #sig {
                #meta
                #prelude
                __flowtrace_span.task(#inner, #record).await
            }
        });
    }

    // A plain `fn` returning a future it builds as an async block: trace the
    // future (it starts when first polled), not the call.
    if let Ok(mut block) = syn::parse2::<Block>(quote!({ #body })) {
        let output = future_output(&declared);
        if let (Some(output), Some(async_block)) = (output, returned_async_block(&mut block)) {
            let record = expansion.record(Some(&output));
            let capture = match async_block.capture {
                Some(_) => quote!(async move),
                None => quote!(async),
            };
            let original = &async_block.block;
            let inner = expansion.async_body(
                Some(&output),
                original
                    .stmts
                    .iter()
                    .map(ToTokens::to_token_stream)
                    .collect(),
                original.span(),
                capture.clone(),
            );
            let traced: ExprAsync = syn::parse2(quote! {
                #capture {
                    #prelude
                    __flowtrace_span.task(#inner, #record).await
                }
            })?;
            *async_block = traced;
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
