//! W3C Trace Context Level 2: the `traceparent` header and the propagator
//! that pairs it with `tracestate` (§3.2, §3.3 and the processing model, §4).

use std::fmt;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use super::tracestate::{format_tracestate_of, with_tracestate_fields};

/// The `traceparent` key.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` key.
pub const TRACESTATE: &str = "tracestate";

/// The trace flags Level 2 defines and flowtrace passes on: `sampled`
/// (0x01) and `random-trace-id` (0x02). Other bits are reserved and MUST be
/// sent as zero (§3.2.2.5.3).
pub const KNOWN_FLAGS: u8 = 0x03;
/// The `random-trace-id` flag (§3.2.2.5.2).
pub const RANDOM_TRACE_ID: u8 = 0x02;

/// The length of a version `00` value, and the least any version may have.
const LEN_00: usize = 55;

/// Why a `traceparent` was rejected; the trace then restarts (§4.1.2).
///
/// ```
/// use flowtrace::propagation::{TraceparentError, parse_traceparent};
///
/// assert_eq!(
///     parse_traceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
///     Err(TraceparentError::ForbiddenVersion)
/// );
/// let zeros = "00-00000000000000000000000000000000-b7ad6b7169203331-01";
/// assert_eq!(parse_traceparent(zeros), Err(TraceparentError::AllZero("trace-id")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceparentError {
    /// The value does not start with 2 lowercase hex digits and a `-`.
    Version,
    /// Version `ff` is forbidden.
    ForbiddenVersion,
    /// Version `00` is exactly 55 characters; a higher version at least 55.
    Length {
        /// The version read.
        version: u8,
        /// The value's length in bytes.
        len: usize,
    },
    /// A field is not lowercase hex of its length (names the field).
    NotLowercaseHex(&'static str),
    /// A field is not followed by `-` (names the field).
    Separator(&'static str),
    /// The trace-id or parent-id is all zeros (names the field).
    AllZero(&'static str),
    /// The carrier held this many `traceparent` values; a request has one.
    Duplicated(usize),
}

impl fmt::Display for TraceparentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version => write!(
                f,
                "traceparent version is not 2 lowercase hex digits followed by `-`"
            ),
            Self::ForbiddenVersion => write!(f, "traceparent version `ff` is forbidden"),
            Self::Length { version: 0, len } => write!(
                f,
                "traceparent version 00 is exactly {LEN_00} characters, got {len}: \
                 `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`"
            ),
            Self::Length { version, len } => write!(
                f,
                "traceparent version {version:02x} needs at least {LEN_00} characters, got {len}"
            ),
            Self::NotLowercaseHex(field) => write!(
                f,
                "traceparent {field} is not lowercase hex of its length \
                 (trace-id 32, parent-id 16, flags 2)"
            ),
            Self::Separator(field) => {
                write!(f, "traceparent {field} must be followed by `-`")
            }
            Self::AllZero(field) => write!(f, "traceparent {field} must not be all zeros"),
            Self::Duplicated(n) => write!(
                f,
                "{n} traceparent values in one carrier; exactly one is allowed"
            ),
        }
    }
}

impl std::error::Error for TraceparentError {}

fn lower_hex(b: &[u8]) -> bool {
    b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex_u8(b: &[u8]) -> u8 {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    };
    (nibble(b[0]) << 4) | nibble(b[1])
}

/// Parses a `traceparent` value into a remote [`SpanContext`] (with an
/// empty trace state), by the Level 2 processing model (§3.2.4, §4.1.2):
///
/// - optional whitespace around the value is ignored (HTTP `OWS`);
/// - the version is 2 lowercase hex digits followed by `-`; `ff` is invalid;
/// - version `00` is exactly 55 characters;
/// - a higher version is parsed as `00` if it has at least 55 characters and
///   the flags end the value or are followed by `-`; what follows is ignored;
/// - trace-id (32), parent-id (16) and flags (2) are lowercase hex, the ids
///   not all zeros;
/// - of the flags only `sampled` and `random-trace-id` are kept, the
///   reserved bits are set to zero.
///
/// ```
/// use flowtrace::propagation::{parse_traceparent, TraceparentError};
///
/// let sc = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03").unwrap();
/// assert!(sc.is_sampled());
/// assert_eq!(sc.trace_flags().to_u8(), 0x03, "random-trace-id is kept");
/// assert_eq!(
///     parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01"),
///     Err(TraceparentError::Length { version: 0, len: 54 }),
/// );
/// ```
pub fn parse_traceparent(value: &str) -> Result<SpanContext, TraceparentError> {
    let b = value.trim_matches([' ', '\t']).as_bytes();
    if b.len() < 3 || !lower_hex(&b[..2]) || b[2] != b'-' {
        return Err(TraceparentError::Version);
    }
    let version = hex_u8(&b[..2]);
    if version == 0xff {
        return Err(TraceparentError::ForbiddenVersion);
    }
    if b.len() < LEN_00 || (version == 0 && b.len() != LEN_00) {
        return Err(TraceparentError::Length {
            version,
            len: b.len(),
        });
    }
    let fields = [
        ("trace-id", 3..35, Some(35)),
        ("parent-id", 36..52, Some(52)),
        ("flags", 53..55, (b.len() > LEN_00).then_some(55)),
    ];
    for (name, range, dash) in fields {
        if !lower_hex(&b[range]) {
            return Err(TraceparentError::NotLowercaseHex(name));
        }
        if dash.is_some_and(|i| b[i] != b'-') {
            return Err(TraceparentError::Separator(name));
        }
    }
    // All ASCII hex from here on, so the str slices are on char boundaries.
    let text = std::str::from_utf8(b).map_err(|_| TraceparentError::Version)?;
    let trace_id = TraceId::from_hex(&text[3..35])
        .map_err(|_| TraceparentError::NotLowercaseHex("trace-id"))?;
    let span_id = SpanId::from_hex(&text[36..52])
        .map_err(|_| TraceparentError::NotLowercaseHex("parent-id"))?;
    if trace_id == TraceId::INVALID {
        return Err(TraceparentError::AllZero("trace-id"));
    }
    if span_id == SpanId::INVALID {
        return Err(TraceparentError::AllZero("parent-id"));
    }
    let flags = hex_u8(&b[53..55]) & KNOWN_FLAGS;
    Ok(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::NONE,
    ))
}

/// Renders a span context as a version `00` `traceparent` value, with the
/// `sampled` and `random-trace-id` flags as the span context has them and
/// the reserved bits zero.
///
/// ```
/// use flowtrace::propagation::{format_traceparent, parse_traceparent};
///
/// let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02";
/// assert_eq!(format_traceparent(&parse_traceparent(value).unwrap()), value);
/// // A higher version is passed on downgraded to 00, unknown fields dropped.
/// let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like";
/// assert_eq!(
///     format_traceparent(&parse_traceparent(future).unwrap()),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// );
/// ```
pub fn format_traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8() & KNOWN_FLAGS
    )
}

/// Reads the parent from a carrier by the processing model: no
/// `traceparent` → `Ok(None)`; more than one, or an invalid one → the reason
/// (the trace restarts and `tracestate` is not read, §3.3); a valid one →
/// the span context with the `tracestate` fields combined and validated (an
/// invalid list is discarded, never the parent, §4.1.3).
///
/// ```
/// use flowtrace::propagation::extract_span_context;
/// use std::collections::HashMap;
///
/// let carrier = HashMap::from([
///     ("traceparent".to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string()),
///     ("tracestate".to_string(), "congo=t61rcWkgMzE".to_string()),
/// ]);
/// let sc = extract_span_context(&carrier).unwrap().unwrap();
/// assert_eq!(sc.trace_state().get("congo"), Some("t61rcWkgMzE"));
/// assert_eq!(extract_span_context(&HashMap::<String, String>::new()), Ok(None));
/// ```
pub fn extract_span_context(
    extractor: &dyn Extractor,
) -> Result<Option<SpanContext>, TraceparentError> {
    let Some(values) = extractor.get_all(TRACEPARENT) else {
        return Ok(None);
    };
    let value = match values.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        many => return Err(TraceparentError::Duplicated(many.len())),
    };
    let sc = parse_traceparent(value)?;
    Ok(Some(match extractor.get_all(TRACESTATE) {
        Some(fields) if !fields.is_empty() => with_tracestate_fields(sc, &fields),
        _ => sc,
    }))
}

/// The span context to make current for a span the sampler dropped, when
/// opentelemetry_sdk lost the parent's `random-trace-id` flag: it gives a
/// dropped span `TraceFlags::default()`, but the flag MUST go on with the
/// same trace-id (§3.2.2.5.2). `None` when nothing needs fixing. The result
/// is non-recording, like the dropped span it stands for.
pub(crate) fn random_flag_fix(parent: &SpanContext, child: &SpanContext) -> Option<SpanContext> {
    let lost = parent.is_valid()
        && child.is_valid()
        && parent.trace_id() == child.trace_id()
        && parent.trace_flags().to_u8() & RANDOM_TRACE_ID != 0
        && child.trace_flags().to_u8() & RANDOM_TRACE_ID == 0;
    lost.then(|| {
        let flags = child.trace_flags().to_u8() | RANDOM_TRACE_ID;
        SpanContext::new(
            child.trace_id(),
            child.span_id(),
            TraceFlags::new(flags),
            false,
            child.trace_state().clone(),
        )
    })
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

/// The W3C Trace Context Level 2 propagator (`traceparent` + `tracestate`),
/// strict where opentelemetry-sdk's `TraceContextPropagator` is lenient:
/// see [`parse_traceparent`], [`extract_span_context`] and
/// [`parse_tracestate_fields`](super::parse_tracestate_fields). It also
/// keeps the Level 2 `random-trace-id` flag, which the stock one clears.
///
/// ```
/// use flowtrace::propagation::TraceContext;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
/// use std::collections::HashMap;
///
/// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
/// let carrier = HashMap::from([("traceparent".to_string(), tp.to_string())]);
/// let cx = TraceContext::new().extract(&carrier);
/// assert!(cx.span().span_context().is_remote());
/// let mut out = HashMap::new();
/// TraceContext::new().inject_context(&cx, &mut out);
/// assert_eq!(out["traceparent"], tp);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct TraceContext {
    _private: (),
}

impl TraceContext {
    /// Creates the propagator.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use opentelemetry::propagation::TextMapPropagator as _;
    /// use opentelemetry::trace::TraceContextExt as _;
    ///
    /// let propagator = flowtrace::propagation::TraceContext::new();
    /// let headers = HashMap::from([("traceparent".to_owned(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned())]);
    /// let cx = propagator.extract(&headers);
    /// assert_eq!(cx.span().span_context().span_id().to_string(), "b7ad6b7169203331");
    /// ```
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
        let state = format_tracestate_of(sc);
        if !state.is_empty() {
            injector.set(TRACESTATE, state);
        }
    }

    /// A valid parent becomes the remote span of the returned context; a
    /// missing or rejected one leaves `cx` as it is, so the next span starts
    /// a new trace (or continues `cx`'s).
    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extract_span_context(extractor) {
            Ok(Some(sc)) => cx.with_remote_span_context(sc),
            Ok(None) => cx.clone(),
            Err(error) => {
                tracing::debug!(%error, "traceparent rejected; the trace restarts");
                cx.clone()
            }
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

#[cfg(test)]
mod tests;
