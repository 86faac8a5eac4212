//! Code generation for `#[traced]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Attribute, ReturnType, Signature, Type, Visibility, braced};

use crate::attr::Args;

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

pub(crate) fn expand(args: Args, function: MaybeItemFn) -> syn::Result<TokenStream> {
    let MaybeItemFn {
        attrs,
        vis,
        sig,
        body,
        brace_span,
    } = function;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "`#[traced]` goes on an `async fn`: make this function `async`",
        ));
    }
    let krate = args
        .krate
        .map_or_else(|| quote!(::flowtrace), |path| path.into_token_stream());
    let name = args.name.map_or_else(
        || {
            let ident = sig.ident.to_string();
            ident.strip_prefix("r#").unwrap_or(&ident).to_owned()
        },
        |lit| lit.value(),
    );

    // The body becomes an `async move` block. Annotating its value with the
    // declared return type pins inference (`?`, early `return`) and points
    // mismatches at the signature.
    let (ret_ty, is_result) = match &sig.output {
        ReturnType::Default => (Some(quote!(())), false),
        ReturnType::Type(_, ty) if has_impl_trait(ty) => (None, is_result(ty)),
        ReturnType::Type(_, ty) => (Some(ty.to_token_stream()), is_result(ty)),
    };
    let inner = match ret_ty {
        Some(ty) => {
            let ty_span = match &sig.output {
                ReturnType::Type(_, ty) => ty.span(),
                ReturnType::Default => sig.ident.span(),
            };
            let ret = quote_spanned!(ty_span=> let __flowtrace_ret: #ty);
            quote_spanned!(brace_span=> async move {
                #ret = { #body };
                #[allow(unreachable_code)]
                return __flowtrace_ret;
            })
        }
        None => quote_spanned!(brace_span=> async move { #body }),
    };
    let record = if is_result {
        quote! {
            |__flowtrace_out, __flowtrace_span| {
                #[allow(unused_imports)]
                use #krate::__private::{ViaDebug as _, ViaDisplay as _, ViaError as _, ViaTypeName as _};
                if let ::core::result::Result::Err(__flowtrace_err) = __flowtrace_out {
                    #krate::__private::record_error(
                        __flowtrace_span,
                        (&&&&#krate::__private::Wrap(__flowtrace_err)).describe(),
                    );
                }
            }
        }
    } else {
        quote!(#krate::__private::no_outcome)
    };

    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            fn __flowtrace_function() -> &'static str {
                #krate::__private::function_name(::core::any::type_name_of_val(&__flowtrace_function))
            }
            static __FLOWTRACE_TASK: #krate::__private::TaskMeta =
                #krate::__private::TaskMeta::new(#name, __flowtrace_function);
            #krate::__private::task(&__FLOWTRACE_TASK, #inner, #record).await
        }
    })
}
