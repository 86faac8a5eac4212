//! Carriers, by the standards: W3C Trace Context Level 2 (`traceparent`,
//! `tracestate`) and W3C Baggage over any
//! [`Injector`] /
//! [`Extractor`], and the
//! `TRACEPARENT` / `TRACESTATE` / `BAGGAGE` environment carrier.
//!
//! A rejected `traceparent` restarts the trace and its `tracestate` is not
//! read; an invalid `tracestate` list is discarded whole; an invalid
//! `baggage` member is dropped alone. Every rejection has a reason (the
//! error types here), logged at `debug` by the propagators.
//!
//! ```
//! use flowtrace::propagation::{TraceContext, inject, extract};
//! use std::collections::HashMap;
//!
//! let mut carrier = HashMap::new();
//! carrier.insert(
//!     "traceparent".to_string(),
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
//! );
//! carrier.insert("baggage".to_string(), "team=search".to_string());
//! let cx = extract(&carrier);
//! let mut out: HashMap<String, String> = HashMap::new();
//! inject(&cx, &mut out);
//! assert_eq!(out, carrier);
//! # let _ = TraceContext::new();
//! ```

mod baggage;
mod configured;
mod env;
mod trace_context;
mod tracestate;
mod tracestate_unheld;
mod trust;

pub use baggage::{
    BAGGAGE_MAX_BYTES, BAGGAGE_MAX_MEMBERS, Baggage, BaggageError, BaggageScope, BaggageScoped,
    ParsedBaggage, format_baggage, parse_baggage, with_baggage,
};
pub use configured::{Propagators, propagators, set_propagators};
pub use env::{EnvCarrier, from_env, to_env};
pub use trace_context::{
    KNOWN_FLAGS, RANDOM_TRACE_ID, TRACEPARENT, TRACESTATE, TraceContext, TraceparentError,
    extract_span_context, format_traceparent, parse_traceparent,
};
pub use tracestate::{
    TRACESTATE_LONG_MEMBER, TRACESTATE_MAX_LEN, TRACESTATE_MAX_MEMBERS, TraceStateError,
    format_tracestate, parse_tracestate, parse_tracestate_fields,
};
pub use trust::{BaggagePolicy, env_baggage_policy, set_env_baggage_policy};

#[cfg(feature = "http-server")]
pub(crate) use baggage::is_token;
pub(crate) use baggage::merge_header as merge_baggage_header;
pub(crate) use trace_context::random_flag_fix;
pub(crate) use trace_context::with_trace_state;
pub(crate) use tracestate::{format_tracestate_of, with_tracestate_fields};

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};

/// The header / map key of W3C Baggage.
pub const BAGGAGE: &str = "baggage";

/// Injects `cx`'s span context (W3C Trace Context) and baggage into
/// `injector`: those of the two the configured [`propagators`] name
/// (`OTEL_PROPAGATORS`; both by default).
///
/// ```
/// use std::collections::HashMap;
/// use opentelemetry::Context;
/// use opentelemetry::trace::TraceContextExt as _;
///
/// let headers = HashMap::from([("traceparent".to_owned(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned())]);
/// let cx = flowtrace::propagation::extract_with_context(&Context::new(), &headers);
/// let mut out: HashMap<String, String> = HashMap::new();
/// flowtrace::propagation::inject(&cx, &mut out);
/// assert_eq!(out["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
/// assert!(cx.span().span_context().is_remote());
/// ```
pub fn inject(cx: &Context, injector: &mut dyn Injector) {
    let configured = propagators();
    if configured.trace_context() {
        TraceContext::new().inject_context(cx, injector);
    }
    if configured.baggage() {
        Baggage::new().inject_context(cx, injector);
    }
}

/// Extracts a remote span context and baggage from `extractor` into a new
/// [`Context`] (built on the current one).
///
/// ```
/// use std::collections::HashMap;
/// use opentelemetry::baggage::BaggageExt as _;
/// use opentelemetry::trace::TraceContextExt as _;
///
/// let headers = HashMap::from([
///     ("traceparent".to_owned(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
///     ("baggage".to_owned(), "tenant=acme".to_owned()),
/// ]);
/// let cx = flowtrace::propagation::extract(&headers);
/// assert_eq!(cx.span().span_context().trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
/// assert_eq!(cx.baggage().get("tenant").map(|v| v.as_str()), Some("acme"));
/// ```
pub fn extract(extractor: &dyn Extractor) -> Context {
    extract_with_context(&Context::current(), extractor)
}

/// Extracts a remote span context and baggage from `extractor` on top of `cx`.
///
/// ```
/// use std::collections::HashMap;
/// use opentelemetry::{Context, KeyValue};
/// use opentelemetry::baggage::BaggageExt as _;
///
/// let base = Context::new().with_baggage([KeyValue::new("region", "eu")]);
/// let headers = HashMap::from([("baggage".to_owned(), "tenant=acme".to_owned())]);
/// let cx = flowtrace::propagation::extract_with_context(&base, &headers);
/// // The carrier's baggage replaces the base's.
/// assert_eq!(cx.baggage().get("tenant").map(|v| v.as_str()), Some("acme"));
/// assert_eq!(cx.baggage().get("region"), None);
/// ```
pub fn extract_with_context(cx: &Context, extractor: &dyn Extractor) -> Context {
    let cx = TraceContext::new().extract_with_context(cx, extractor);
    Baggage::new().extract_with_context(&cx, extractor)
}
