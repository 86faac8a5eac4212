//! What a `#[traced]` call may name as its parent or its links:
//! [`IntoParent`] and [`IntoLinks`].

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::trace::{Link, SpanContext, TraceContextExt};

use crate::custom_context::CustomContext;

/// What can be an explicit parent (`#[traced(parent = ..)]`): a [`Context`],
/// a [`SpanContext`], a carrier map (its `traceparent`), or `None` for a root.
pub trait IntoParent {
    /// The context to parent the span on.
    fn into_parent(self) -> Context;
}

impl IntoParent for Context {
    fn into_parent(self) -> Context {
        self
    }
}

impl IntoParent for &Context {
    fn into_parent(self) -> Context {
        self.clone()
    }
}

impl IntoParent for SpanContext {
    fn into_parent(self) -> Context {
        (&self).into_parent()
    }
}

impl IntoParent for &SpanContext {
    fn into_parent(self) -> Context {
        if self.is_valid() {
            Context::new().with_remote_span_context(self.clone())
        } else {
            Context::new()
        }
    }
}

impl IntoParent for &CustomContext {
    fn into_parent(self) -> Context {
        crate::propagation::extract_with_context(&Context::new(), self)
    }
}

impl IntoParent for CustomContext {
    fn into_parent(self) -> Context {
        (&self).into_parent()
    }
}

impl IntoParent for &HashMap<String, String> {
    fn into_parent(self) -> Context {
        crate::propagation::extract_with_context(&Context::new(), self)
    }
}

impl IntoParent for HashMap<String, String> {
    fn into_parent(self) -> Context {
        (&self).into_parent()
    }
}

impl<T: IntoParent> IntoParent for Option<T> {
    fn into_parent(self) -> Context {
        self.map_or_else(Context::new, IntoParent::into_parent)
    }
}

/// What `#[traced(follows_from = ..)]` links to: one or many span contexts,
/// contexts or carrier maps; invalid ones are skipped.
pub trait IntoLinks {
    /// Appends the links to `links`.
    fn push_links(self, links: &mut Vec<Link>);
}

impl<T: IntoParent> IntoLinks for T {
    fn push_links(self, links: &mut Vec<Link>) {
        let cx = self.into_parent();
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            links.push(Link::with_context(sc));
        }
    }
}

impl<T: IntoParent> IntoLinks for Vec<T> {
    fn push_links(self, links: &mut Vec<Link>) {
        self.into_iter().for_each(|item| item.push_links(links));
    }
}

impl<T: IntoParent, const N: usize> IntoLinks for [T; N] {
    fn push_links(self, links: &mut Vec<Link>) {
        self.into_iter().for_each(|item| item.push_links(links));
    }
}
