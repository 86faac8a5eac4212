//! W3C Trace Context: the `traceparent` and `tracestate` headers.

use std::fmt;
use std::str::FromStr;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

/// The `traceparent` key.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` key.
pub const TRACESTATE: &str = "tracestate";

/// The trace flags this implementation understands and passes on: `sampled`
/// (0x01) and the Level 2 `random-trace-id` flag (0x02).
const KNOWN_FLAGS: u8 = 0x03;

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceparentError {
    /// Not `version-traceid-parentid-flags`, or a field has the wrong length.
    Format(&'static str),
    /// A field holds characters other than lowercase hex.
    NotLowercaseHex(&'static str),
    /// Version `ff` is forbidden.
    ForbiddenVersion,
    /// The trace id or parent id is all zeros.
    AllZero(&'static str),
}

impl fmt::Display for TraceparentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format(what) => write!(
                f,
                "malformed traceparent ({what}): expected `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`"
            ),
            Self::NotLowercaseHex(field) => {
                write!(f, "traceparent {field} must be lowercase hex")
            }
            Self::ForbiddenVersion => write!(f, "traceparent version `ff` is forbidden"),
            Self::AllZero(field) => write!(f, "traceparent {field} must not be all zeros"),
        }
    }
}

impl std::error::Error for TraceparentError {}

fn lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses a `traceparent` value into a remote [`SpanContext`] (with an empty
/// trace state), following the W3C Trace Context processing model: version
/// `00` must be exactly 55 characters; a higher version is parsed by its
/// `00` prefix and may carry more fields after a `-`; `ff` is rejected.
pub fn parse_traceparent(value: &str) -> Result<SpanContext, TraceparentError> {
    let value = value.trim_matches([' ', '\t']);
    if value.len() < 55 || !value.is_char_boundary(55) {
        return Err(TraceparentError::Format("too short"));
    }
    let version = &value[0..2];
    if !lower_hex(version) {
        return Err(TraceparentError::NotLowercaseHex("version"));
    }
    if version == "ff" {
        return Err(TraceparentError::ForbiddenVersion);
    }
    if version == "00" && value.len() != 55 {
        return Err(TraceparentError::Format(
            "version 00 is exactly 55 characters",
        ));
    }
    if value.len() > 55 && value.as_bytes()[55] != b'-' {
        return Err(TraceparentError::Format(
            "fields after the flags must follow a `-`",
        ));
    }
    let b = value.as_bytes();
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return Err(TraceparentError::Format("fields are separated by `-`"));
    }
    let (trace, parent, flags) = (&value[3..35], &value[36..52], &value[53..55]);
    for (field, name) in [(trace, "trace-id"), (parent, "parent-id"), (flags, "flags")] {
        if !lower_hex(field) {
            return Err(TraceparentError::NotLowercaseHex(name));
        }
    }
    let trace_id =
        TraceId::from_hex(trace).map_err(|_| TraceparentError::NotLowercaseHex("trace-id"))?;
    let span_id =
        SpanId::from_hex(parent).map_err(|_| TraceparentError::NotLowercaseHex("parent-id"))?;
    if trace_id == TraceId::INVALID {
        return Err(TraceparentError::AllZero("trace-id"));
    }
    if span_id == SpanId::INVALID {
        return Err(TraceparentError::AllZero("parent-id"));
    }
    let flags =
        u8::from_str_radix(flags, 16).map_err(|_| TraceparentError::NotLowercaseHex("flags"))?;
    Ok(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & KNOWN_FLAGS),
        true,
        TraceState::NONE,
    ))
}

/// Renders a span context as a version `00` `traceparent` value.
pub fn format_traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8() & KNOWN_FLAGS
    )
}

/// Parses a `tracestate` value; an invalid list is discarded whole, as the
/// specification requires.
pub(crate) fn parse_tracestate(value: &str) -> TraceState {
    TraceState::from_str(value.trim()).unwrap_or(TraceState::NONE)
}

/// Extracts a remote span context (with its trace state) from a carrier.
pub(crate) fn extract_span_context(extractor: &dyn Extractor) -> Option<SpanContext> {
    let sc = parse_traceparent(extractor.get(TRACEPARENT)?).ok()?;
    let state = extractor
        .get(TRACESTATE)
        .map(parse_tracestate)
        .unwrap_or(TraceState::NONE);
    Some(with_trace_state(sc, state))
}

pub(crate) fn with_trace_state(sc: SpanContext, state: TraceState) -> SpanContext {
    SpanContext::new(
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags(),
        sc.is_remote(),
        state,
    )
}

/// The W3C Trace Context propagator (`traceparent` + `tracestate`).
#[derive(Debug, Default, Clone, Copy)]
pub struct TraceContext {
    _private: (),
}

impl TraceContext {
    /// Creates the propagator.
    pub fn new() -> Self {
        Self::default()
    }
}

static FIELDS: std::sync::LazyLock<[String; 2]> =
    std::sync::LazyLock::new(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]);

impl TextMapPropagator for TraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        injector.set(TRACEPARENT, format_traceparent(sc));
        let state = sc.trace_state().header();
        if !state.is_empty() {
            injector.set(TRACESTATE, state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extract_span_context(extractor) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn accepts_valid_and_future_versions() {
        for (input, reason) in [
            (VALID, "the specification's example"),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                "a future version may append fields after a dash",
            ),
            (
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                "a future version of exactly 55 characters",
            ),
        ] {
            let sc = parse_traceparent(input).unwrap_or_else(|e| panic!("{reason}: {e}"));
            assert!(sc.is_remote(), "{reason}");
            assert_eq!(
                sc.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{reason}"
            );
        }
    }

    #[test]
    fn rejects_invalid() {
        for (input, reason) in [
            ("", "empty"),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
                "short flags",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
                "version 00 has no more fields",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version ff is forbidden",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "uppercase trace-id",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "all-zero trace-id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "all-zero parent-id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
                "non-hex flags",
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "wrong separator",
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
                "future version without dash",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
                "non-ascii",
            ),
        ] {
            assert!(parse_traceparent(input).is_err(), "{reason}: {input}");
        }
    }

    #[test]
    fn round_trips_with_tracestate() {
        let mut carrier = std::collections::HashMap::new();
        carrier.insert(TRACEPARENT.to_string(), VALID.to_string());
        carrier.insert(
            TRACESTATE.to_string(),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".to_string(),
        );
        let cx = TraceContext::new().extract(&carrier);
        let mut out = std::collections::HashMap::new();
        TraceContext::new().inject_context(&cx, &mut out);
        assert_eq!(out, carrier);
    }
}
