//! The function `#[traced]` goes on, and what its signature says.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::visit::Visit;
use syn::{
    Attribute, Block, Expr, ExprAsync, FnArg, Pat, ReturnType, Signature, Stmt, Type, Visibility,
    braced,
};

/// A function whose body is kept as raw tokens, so errors inside the body
/// come from rustc rather than from this macro.
pub(crate) struct MaybeItemFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: TokenStream,
    pub(crate) brace_span: Span,
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

/// What the function is, which decides how it is traced.
pub(crate) enum Shape {
    /// An `async fn`.
    Async,
    /// A plain `fn` returning the `async` block it builds, whose output is
    /// this type.
    ReturnsAsync(Box<Type>),
    /// A synchronous function.
    Sync,
}

impl MaybeItemFn {
    /// The declared return type (`()` when there is none).
    pub(crate) fn declared(&self) -> Type {
        match &self.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        }
    }

    /// The body as a block, when it parses as one.
    pub(crate) fn block(&self) -> Option<Block> {
        let body = &self.body;
        syn::parse2::<Block>(quote!({ #body })).ok()
    }

    pub(crate) fn shape(&self) -> Shape {
        if self.sig.asyncness.is_some() {
            return Shape::Async;
        }
        if let (Some(output), Some(mut block)) = (future_output(&self.declared()), self.block()) {
            if returned_async_block(&mut block).is_some() {
                return Shape::ReturnsAsync(Box::new(output));
            }
        }
        Shape::Sync
    }
}

pub(crate) fn is_result(ty: &Type) -> bool {
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
pub(crate) fn has_impl_trait(ty: &Type) -> bool {
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
pub(crate) fn future_output(ty: &Type) -> Option<Type> {
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
pub(crate) fn arguments(sig: &Signature) -> Vec<syn::Ident> {
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
pub(crate) fn returned_async_block(block: &mut Block) -> Option<&mut ExprAsync> {
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
