//! Linked traces: a run, a resumed run or a retry that starts a new trace
//! whose root span links to the span it would have continued, so one
//! workflow that runs for days or retries for hours is several traces of a
//! readable size, joined by links, instead of one giant trace.
//!
//! Each link carries `flowtrace.link.reason`: `carrier` (a run started with
//! [`RunBuilder::new_trace`](crate::RunBuilder::new_trace) under a carried
//! parent), `resumed` (a resumed run, to the first attempt's run span),
//! `retry` (an attempt after a long backoff, to the failed attempt) or
//! `continue_as_new` (flowtrace-temporal, to the previous run's `RunWorkflow`).

use opentelemetry::trace::{Link, SpanContext, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

use crate::attributes::LINK_REASON;

/// A link to `sc` for `reason`, or nothing for an invalid span context.
///
/// ```
/// use flowtrace::attributes::LINK_REASON;
/// use flowtrace::link::link_to;
/// use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
///
/// let sc = SpanContext::new(
///     TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
///     SpanId::from_hex("b7ad6b7169203331").unwrap(),
///     TraceFlags::SAMPLED,
///     true,
///     TraceState::NONE,
/// );
/// let link = link_to(&sc, "retry").unwrap();
/// assert_eq!(link.span_context, sc);
/// assert_eq!(link.attributes[0].key.as_str(), LINK_REASON);
/// assert!(link_to(&SpanContext::empty_context(), "retry").is_none());
/// ```
pub fn link_to(sc: &SpanContext, reason: &'static str) -> Option<Link> {
    sc.is_valid()
        .then(|| Link::new(sc.clone(), vec![KeyValue::new(LINK_REASON, reason)], 0))
}

/// The context a new trace's root starts under: no span, `cx`'s baggage.
pub(crate) fn new_root(cx: &Context) -> Context {
    crate::task::keep_baggage(cx, Context::new())
}

/// The span a run continuing `cx` and `map` would have had as its parent.
pub(crate) fn would_be_parent(cx: &Context, map: Option<&SpanContext>) -> Option<SpanContext> {
    map.filter(|sc| sc.is_valid()).cloned().or_else(|| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.clone())
    })
}
