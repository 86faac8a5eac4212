//! The rules for a request without a `traceparent` (§4, "No traceparent received").

use super::*;

#[test]
fn no_traceparent_1_both_headers_are_checked() {
    for (fields, reason) in [
        (vec![], "no header at all"),
        (vec![("trace-parent", VALID)], "wrong name: trace-parent"),
        (vec![("trace.parent", VALID)], "wrong name: trace.parent"),
        (vec![("traceparent-", VALID)], "wrong name: traceparent-"),
    ] {
        assert_eq!(
            extract_span_context(&Fields::new(&fields)),
            Ok(None),
            "{reason}"
        );
    }
    for (name, reason) in [
        ("TraceParent", "mixed case"),
        ("TrAcEpArEnT", "alternating case"),
        ("TRACEPARENT", "upper case"),
    ] {
        let sc = extract_span_context(&Fields::new(&[(name, VALID)]));
        assert!(
            matches!(sc, Ok(Some(_))),
            "{reason}: the name is case-insensitive"
        );
    }
}

#[test]
fn no_traceparent_2_a_new_trace_id_and_parent_id_are_created() {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("test");
    let cx = extracted(&[]);
    let span = tracer.start_with_context("root", &cx);
    let sc = span.span_context().clone();
    assert!(sc.is_valid(), "a new trace-id and parent-id");
    assert!(!sc.is_remote());
    let out = injected(&cx.with_span(span));
    assert_eq!(out[TRACEPARENT], format_traceparent(&sc));
}

#[test]
fn no_traceparent_3_tracestate_alone_is_discarded() {
    for (value, reason) in [("foo=1", "one member"), ("foo=1,bar=2", "two members")] {
        let cx = extracted(&[(TRACESTATE, value)]);
        assert!(!cx.has_active_span(), "{reason}");
        assert!(injected(&cx).is_empty(), "{reason}: nothing to pass on");
    }
}

#[test]
fn no_traceparent_4_flowtrace_adds_no_tracestate_entry_of_its_own() {
    // A SHOULD: flowtrace has no vendor state to carry, so a new trace goes
    // out with `traceparent` alone rather than an entry with nothing in it.
    let provider = SdkTracerProvider::builder().build();
    let span = provider
        .tracer("test")
        .start_with_context("root", &extracted(&[]));
    let out = injected(&Context::new().with_span(span));
    assert!(out.contains_key(TRACEPARENT));
    assert!(!out.contains_key(TRACESTATE), "{out:?}");
}

#[test]
fn no_traceparent_5_both_headers_are_set_for_the_outgoing_request() {
    let sc = parse_traceparent(VALID).unwrap();
    let state = TraceState::from_key_value([("flowtrace", "x")]).unwrap();
    let cx = Context::new().with_remote_span_context(with_trace_state(sc, state));
    let out = injected(&cx);
    assert_eq!(out[TRACEPARENT], VALID);
    assert_eq!(out[TRACESTATE], "flowtrace=x");
}
