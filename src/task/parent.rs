//! What a `#[traced]` call may name as its parent or its links:
//! [`IntoParent`] and [`IntoLinks`].

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::trace::{Link, SpanContext, TraceContextExt};

use crate::custom_context::CustomContext;

/// What can be an explicit parent (`#[traced(parent = ..)]`): a [`Context`],
/// a [`SpanContext`], a carrier map (its `traceparent`), or `None` for a root.
///
/// ```
/// #[flowtrace::traced(parent = &carrier)]
/// async fn handle(carrier: std::collections::HashMap<String, String>) -> String {
///     flowtrace::ctx().trace_id()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// # flowtrace::set_tracer_provider(provider.clone(), &opentelemetry_sdk::trace::Sampler::AlwaysOn);
/// let carrier = std::collections::HashMap::from([("traceparent".to_owned(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned())]);
/// let trace = handle(carrier).await;
/// assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c");
/// # }
/// ```
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
///
/// ```
/// #[flowtrace::traced(follows_from = triggers.clone())]
/// async fn aggregate(triggers: Vec<opentelemetry::trace::SpanContext>) -> usize {
///     triggers.len()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let trigger = flowtrace::CustomContext::new()
///     .merged([("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
///     .span_context()
///     .cloned()
///     .unwrap();
/// assert_eq!(aggregate(vec![trigger]).await, 1);
/// # }
/// ```
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
