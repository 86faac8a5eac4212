#![allow(dead_code)] // each fuzz target uses one of these
//! The properties the fuzz targets check, shared with `cargo test`
//! (`tests/reliability_props.rs` runs them under proptest on stable Rust):
//! outside input never panics, every documented limit holds, and what is
//! accepted survives a write/read trip unchanged. Only the public API.

use std::collections::HashMap;

use flowtrace::CustomContext;
use flowtrace::propagation::{Baggage, TraceContext, format_traceparent, parse_traceparent};
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A `traceparent` value: whatever is accepted is a valid span context
/// that renders and parses back to itself.
pub fn traceparent(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sc) = parse_traceparent(value) {
        assert!(sc.is_valid(), "accepted an invalid span context: {value:?}");
        let again =
            parse_traceparent(&format_traceparent(&sc)).expect("a rendered traceparent parses");
        assert_eq!(again.trace_id(), sc.trace_id(), "{value:?}");
        assert_eq!(again.span_id(), sc.span_id(), "{value:?}");
        assert_eq!(again.trace_flags(), sc.trace_flags(), "{value:?}");
    }
}

/// A `tracestate` value next to a valid `traceparent`, through the public
/// propagator: what is kept injects and extracts back to the same state.
pub fn tracestate(data: &[u8]) {
    let carrier = HashMap::from([
        ("traceparent".to_owned(), PARENT.to_owned()),
        (
            "tracestate".to_owned(),
            String::from_utf8_lossy(data).into_owned(),
        ),
    ]);
    let propagator = TraceContext::new();
    let cx = propagator.extract(&carrier);
    let state = cx.span().span_context().trace_state().header();
    let mut out: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&cx, &mut out);
    let again = propagator.extract(&out);
    assert_eq!(
        again.span().span_context().trace_state().header(),
        state,
        "re-extracting what was injected changed the state"
    );
}

fn baggage_entries(cx: &opentelemetry::Context) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = cx
        .baggage()
        .iter()
        .map(|(k, (v, _))| (k.to_string(), v.to_string()))
        .collect();
    entries.sort();
    entries
}

/// A `baggage` header through the public propagator: the header it
/// injects stays within the W3C limit of 8192 bytes, and extracting that
/// header gives back the same entries — or fewer, when an entry had to be
/// left out to respect the limit (percent-encoding can make a value up to
/// nine times longer than it was read).
pub fn baggage(data: &[u8]) {
    let carrier = HashMap::from([(
        "baggage".to_owned(),
        String::from_utf8_lossy(data).into_owned(),
    )]);
    let propagator = Baggage::new();
    let cx = propagator.extract(&carrier);
    let mut out: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&cx, &mut out);
    let header = out.get("baggage").map_or(0, String::len);
    assert!(
        header <= 8192,
        "injected a baggage header of {header} bytes"
    );
    let again = baggage_entries(&propagator.extract(&out));
    let first = baggage_entries(&cx);
    for entry in &again {
        assert!(first.contains(entry), "inject/extract changed {entry:?}");
    }
}

fn check_limits(map: &CustomContext) {
    assert!(
        map.len() <= CustomContext::MAX_ENTRIES + 2,
        "{} entries",
        map.len()
    );
    let mut total = 0;
    for (k, v) in map.iter() {
        if map.span_context().is_some() && (k == "traceparent" || k == "tracestate") {
            continue;
        }
        assert!(
            !k.is_empty() && !k.chars().any(char::is_control),
            "key {k:?}"
        );
        assert!(
            k.len() <= CustomContext::MAX_KEY_BYTES,
            "key of {} bytes",
            k.len()
        );
        assert!(
            v.len() <= CustomContext::MAX_VALUE_BYTES,
            "value of {} bytes",
            v.len()
        );
        total += k.len() + v.len();
    }
    assert!(total <= CustomContext::MAX_TOTAL_BYTES, "{total} bytes");
}

fn round_trip(map: &CustomContext) {
    let json = serde_json::to_string(map).expect("a map serializes");
    let back: CustomContext = serde_json::from_str(&json).expect("what was written reads back");
    assert_eq!(&back, map, "{json}");
    assert_eq!(back.span_context(), map.span_context(), "{json}");
}

/// The serialized `custom_context` envelope (JSON), and the same bytes as
/// raw pairs (NUL-separated key, value, key, …) merged into a map.
pub fn custom_context(data: &[u8]) {
    if let Ok(map) = serde_json::from_slice::<CustomContext>(data) {
        check_limits(&map);
        round_trip(&map);
    }
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let mut pairs = Vec::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        pairs.push((k.to_owned(), v.to_owned()));
    }
    let map = CustomContext::from_iter([("team", "search")]).merged(pairs);
    check_limits(&map);
    round_trip(&map);
}
