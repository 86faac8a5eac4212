//! The W3C Trace Context Level 2 processing model (§4, "Processing Model for
//! Working with Trace Context Request Header"), one test per numbered rule,
//! named `no_traceparent_<n>_…` / `traceparent_received_<n>_…` after the two
//! lists of the specification. Inputs are taken from the specification and
//! from its test suite (w3c/trace-context `test/test.py`).

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    TraceContextExt, TraceFlags, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, trace::Span as _};
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::*;

const TRACE_ID: &str = "12345678901234567890123456789012";
const PARENT_ID: &str = "1234567890123456";
const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";

/// A carrier that, like HTTP, may hold a field more than once; names are
/// matched ASCII case-insensitively.
struct Fields(Vec<(&'static str, String)>);

impl Fields {
    fn new(fields: &[(&'static str, &str)]) -> Self {
        Self(fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }
}

impl Extractor for Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.get_all(key)?.first().copied()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

fn extracted(fields: &[(&'static str, &str)]) -> Context {
    TraceContext::new().extract_with_context(&Context::new(), &Fields::new(fields))
}

fn injected(cx: &Context) -> HashMap<String, String> {
    let mut out = HashMap::new();
    TraceContext::new().inject_context(cx, &mut out);
    out
}

/// Asserts that `input` restarts the trace for `reason`, and that the
/// `tracestate` sent with it is not read (§3.3: "If the vendor failed to
/// parse traceparent, it MUST NOT attempt to parse tracestate").
fn assert_restarts(input: &str, reason: &str) {
    assert!(parse_traceparent(input).is_err(), "{reason}: {input:?}");
    let cx = extracted(&[(TRACEPARENT, input), (TRACESTATE, "foo=1")]);
    assert!(!cx.has_active_span(), "{reason}: no parent from {input:?}");
    assert!(injected(&cx).is_empty(), "{reason}: nothing to pass on");
}

fn assert_continues(input: &str, flags: u8, reason: &str) {
    let sc = parse_traceparent(input).unwrap_or_else(|e| panic!("{reason}: {input:?}: {e}"));
    assert_eq!(sc.trace_id().to_string(), TRACE_ID, "{reason}");
    assert_eq!(sc.span_id().to_string(), PARENT_ID, "{reason}");
    assert_eq!(sc.trace_flags().to_u8(), flags, "{reason}");
    assert!(sc.is_remote(), "{reason}");
}

mod no_traceparent;
mod traceparent_received;

#[test]
fn invalid_span_context_is_not_injected() {
    let cx = Context::new().with_remote_span_context(opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::INVALID,
        opentelemetry::trace::SpanId::INVALID,
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    ));
    assert!(injected(&cx).is_empty());
}

#[test]
fn errors_name_the_problem() {
    for (input, expected) in [
        ("0-1", "not 2 lowercase hex digits"),
        (
            "ff-12345678901234567890123456789012-1234567890123456-01",
            "`ff` is forbidden",
        ),
        (
            "00-12345678901234567890123456789012-1234567890123456-001",
            "exactly 55 characters, got 56",
        ),
        (
            "00-1234567890123456789012345678901g-1234567890123456-01",
            "trace-id is not lowercase hex",
        ),
        (
            "00-12345678901234567890123456789012-0000000000000000-01",
            "parent-id must not be all zeros",
        ),
        (
            "cc-12345678901234567890123456789012-1234567890123456-01x",
            "flags must be followed by `-`",
        ),
    ] {
        let error = parse_traceparent(input).unwrap_err().to_string();
        assert!(error.contains(expected), "{input:?}: {error}");
    }
}
