//! flowtrace's propagators against opentelemetry-sdk's stock ones
//! (`TraceContextPropagator`, `BaggagePropagator`), one test per row of the
//! README's "Propagation" table: each runs both on the same carrier and
//! asserts what each does, so a row stops holding the day either changes.

use std::collections::HashMap;

use flowtrace::propagation::{Baggage, TraceContext};
use opentelemetry::Context;
use opentelemetry::baggage::{BaggageExt, KeyValueMetadata};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Header fields as HTTP has them: a name may repeat; `get` gives the first
/// (as `http::HeaderMap::get` does), `get_all` every one.
struct Fields(Vec<(&'static str, String)>);

impl Extractor for Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let all: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .collect();
        (!all.is_empty()).then_some(all)
    }
}

fn fields(pairs: &[(&'static str, &str)]) -> Fields {
    Fields(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
}

/// The parent each propagator extracts, if any.
fn parents(pairs: &[(&'static str, &str)]) -> (Option<SpanContext>, Option<SpanContext>) {
    let carrier = fields(pairs);
    let parent = |cx: Context| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.clone())
    };
    (
        parent(TraceContextPropagator::new().extract(&carrier)),
        parent(TraceContext::new().extract(&carrier)),
    )
}

fn assert_stock_accepts_flowtrace_rejects(traceparent: &str) {
    let (stock, ours) = parents(&[("traceparent", traceparent)]);
    assert!(stock.is_some(), "stock accepts {traceparent:?}");
    assert!(
        ours.is_none(),
        "flowtrace rejects {traceparent:?} and restarts the trace"
    );
}

/// What each propagator sends on for `cx`.
fn injected(cx: &Context) -> (HashMap<String, String>, HashMap<String, String>) {
    let (mut stock, mut ours) = (HashMap::new(), HashMap::new());
    TraceContextPropagator::new().inject_context(cx, &mut stock);
    BaggagePropagator::new().inject_context(cx, &mut stock);
    TraceContext::new().inject_context(cx, &mut ours);
    Baggage::new().inject_context(cx, &mut ours);
    (stock, ours)
}

// --- traceparent -----------------------------------------------------------

#[test]
fn duplicated_traceparent_headers() {
    let other = "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01";
    let (stock, ours) = parents(&[("traceparent", VALID), ("traceparent", other)]);
    assert_eq!(
        stock.map(|sc| sc.trace_id().to_string()).as_deref(),
        Some(TRACE),
        "stock continues the first of two traceparents"
    );
    assert!(
        ours.is_none(),
        "flowtrace restarts (W3C test suite: test_traceparent_duplicated)"
    );
}

#[test]
fn parent_id_too_short() {
    assert_stock_accepts_flowtrace_rejects(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
    );
}

#[test]
fn trace_id_too_short() {
    assert_stock_accepts_flowtrace_rejects(
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    );
}

#[test]
fn flags_of_one_or_three_digits() {
    assert_stock_accepts_flowtrace_rejects(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
    );
    assert_stock_accepts_flowtrace_rejects(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001",
    );
}

#[test]
fn version_of_one_or_three_digits() {
    assert_stock_accepts_flowtrace_rejects(
        "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    assert_stock_accepts_flowtrace_rejects(
        "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
}

#[test]
fn version_00_with_a_trailing_dash() {
    assert_stock_accepts_flowtrace_rejects(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
    );
}

#[test]
fn plus_sign_in_a_field() {
    assert_stock_accepts_flowtrace_rejects(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
    );
    assert_stock_accepts_flowtrace_rejects(
        "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
}

#[test]
fn random_trace_id_flag() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
    let (stock, ours) = parents(&[("traceparent", tp)]);
    assert_eq!(
        stock.unwrap().trace_flags().to_u8(),
        0x01,
        "stock clears the Level 2 flag"
    );
    assert_eq!(
        ours.unwrap().trace_flags().to_u8(),
        0x03,
        "flowtrace keeps it"
    );
    let cx = TraceContext::new().extract(&fields(&[("traceparent", tp)]));
    let (stock, ours) = injected(&cx);
    assert!(stock["traceparent"].ends_with("-01"));
    assert_eq!(
        ours["traceparent"], tp,
        "and passes it on, as Level 2 requires"
    );
}

// --- tracestate ------------------------------------------------------------

/// The `tracestate` each propagator passes on for `VALID` and `states`.
fn tracestates(states: &[&str]) -> (String, String) {
    let mut pairs = vec![("traceparent", VALID)];
    pairs.extend(states.iter().map(|s| ("tracestate", *s)));
    let carrier = fields(&pairs);
    let stock = TraceContextPropagator::new().extract(&carrier);
    let ours = TraceContext::new().extract(&carrier);
    let state = |cx: &Context| cx.span().span_context().trace_state().header();
    (state(&stock), state(&ours))
}

#[test]
fn tracestate_of_33_members() {
    let members: Vec<String> = (1..=33).map(|i| format!("k{i}={i}")).collect();
    let (stock, ours) = tracestates(&[&members.join(",")]);
    assert_eq!(stock.split(',').count(), 32, "stock keeps the first 32");
    assert_eq!(
        ours, "",
        "flowtrace discards the invalid list (W3C test suite)"
    );
}

#[test]
fn tracestate_with_an_empty_value() {
    let (stock, ours) = tracestates(&["foo=,bar=3"]);
    assert_eq!(stock, "foo=,bar=3", "stock keeps it");
    assert_eq!(
        ours, "",
        "flowtrace discards the list (value is 1*256 chars)"
    );
}

#[test]
fn tracestate_with_a_control_or_non_ascii_value() {
    for value in ["a\tb", "caf\u{e9}"] {
        let (stock, ours) = tracestates(&[&format!("foo={value}")]);
        assert_eq!(stock, format!("foo={value}"), "stock keeps {value:?}");
        assert_eq!(ours, "", "flowtrace discards it: printable ASCII only");
    }
}

#[test]
fn tracestate_over_512_characters() {
    let members: Vec<String> = (0..4)
        .map(|i| format!("k{i}={}", "v".repeat(200)))
        .collect();
    let (stock, ours) = tracestates(&[&members.join(",")]);
    assert_eq!(
        stock.len(),
        4 * 203 + 3,
        "stock passes on all 815 characters"
    );
    assert_eq!(
        ours,
        members[..2].join(","),
        "flowtrace truncates whole members to 512"
    );
}

#[test]
fn tracestate_in_several_header_fields() {
    let (stock, ours) = tracestates(&["foo=1", "bar=2"]);
    assert_eq!(stock, "foo=1", "stock reads the first field only");
    assert_eq!(
        ours, "foo=1,bar=2",
        "flowtrace combines them (RFC 9110 §5.3)"
    );
}

#[test]
fn tracestate_with_a_level_2_key_stock_cannot_hold() {
    let mut pairs = vec![("traceparent", VALID)];
    pairs.push(("tracestate", "foo@@bar=1,bar=2"));
    let carrier = fields(&pairs);
    let passed_on = |propagator: &dyn TextMapPropagator| {
        let cx = propagator.extract(&carrier);
        let mut out: std::collections::HashMap<String, String> = Default::default();
        propagator.inject_context(&cx, &mut out);
        out.get("tracestate").cloned().unwrap_or_default()
    };
    assert_eq!(
        passed_on(&TraceContextPropagator::new()),
        "",
        "stock discards the whole list"
    );
    assert_eq!(
        passed_on(&TraceContext::new()),
        "foo@@bar=1,bar=2",
        "flowtrace passes it all on (Level 2 key grammar, W3C test suite)"
    );
}

// --- baggage ---------------------------------------------------------------

fn baggage_values(header: &[&str], key: &str) -> (Option<String>, Option<String>) {
    let pairs: Vec<(&'static str, &str)> = header.iter().map(|h| ("baggage", *h)).collect();
    let carrier = fields(&pairs);
    let value = |cx: Context| cx.baggage().get(key).map(|v| v.to_string());
    (
        value(BaggagePropagator::new().extract(&carrier)),
        value(Baggage::new().extract(&carrier)),
    )
}

#[test]
fn baggage_value_with_an_equals_sign() {
    let (stock, ours) = baggage_values(&["token=dGVzdA=="], "token");
    assert_eq!(
        stock.as_deref(),
        Some("dGVzdA"),
        "stock cuts the value at the second `=`"
    );
    assert_eq!(
        ours.as_deref(),
        Some("dGVzdA=="),
        "flowtrace keeps it whole"
    );
}

#[test]
fn baggage_value_with_a_space() {
    let (stock, ours) = baggage_values(&["k=a b,other=1"], "k");
    assert_eq!(
        stock.as_deref(),
        Some("a b"),
        "stock accepts an unencoded space"
    );
    assert_eq!(ours, None, "flowtrace drops that member (baggage-octet)");
    assert_eq!(
        baggage_values(&["k=a b,other=1"], "other").1.as_deref(),
        Some("1")
    );
}

#[test]
fn baggage_in_several_header_fields() {
    let (stock, ours) = baggage_values(&["a=1", "b=2"], "b");
    assert_eq!(stock, None, "stock reads the first field only");
    assert_eq!(ours.as_deref(), Some("2"), "flowtrace combines them");
}

#[test]
fn baggage_percent_sign_on_inject() {
    let cx = Context::new().with_baggage([KeyValueMetadata::new("ratio", "50%", "")]);
    let (stock, ours) = injected(&cx);
    assert_eq!(stock["baggage"], "ratio=50%", "stock sends `%` raw");
    assert_eq!(
        ours["baggage"], "ratio=50%25",
        "flowtrace encodes it (MUST)"
    );
}

#[test]
fn baggage_property_with_an_encoded_comma() {
    let header = "k=v;p=a%2Cb";
    let carrier = fields(&[("baggage", header)]);
    let stock_cx = BaggagePropagator::new().extract(&carrier);
    let ours_cx = Baggage::new().extract(&carrier);
    let mut stock = HashMap::new();
    BaggagePropagator::new().inject_context(&stock_cx, &mut stock);
    let mut ours = HashMap::new();
    Baggage::new().inject_context(&ours_cx, &mut ours);
    assert_eq!(
        stock["baggage"], "k=v;p=a,b",
        "stock decodes and re-sends a raw comma"
    );
    assert_eq!(
        ours["baggage"], header,
        "flowtrace passes the property on as it came"
    );
}
