//! Round-trip properties of the carriers (proptest): what flowtrace sends it
//! reads back unchanged, and whatever it reads — any string at all — it
//! either rejects or re-sends in a form that reads back the same.

use std::collections::BTreeMap;

use flowtrace::propagation::{
    format_baggage, format_traceparent, format_tracestate, parse_baggage, parse_traceparent,
    parse_tracestate, parse_tracestate_fields,
};
use opentelemetry::baggage::KeyValueMetadata;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use proptest::prelude::*;

fn span_context() -> impl Strategy<Value = SpanContext> {
    (1..=u128::MAX, 1..=u64::MAX, any::<u8>()).prop_map(|(t, s, f)| {
        SpanContext::new(
            TraceId::from(t),
            SpanId::from(s),
            TraceFlags::new(f),
            true,
            TraceState::NONE,
        )
    })
}

/// Keys opentelemetry's `TraceState` can hold too (no `@`).
fn tracestate_key() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_*/-]{0,15}"
}

/// `value = 0*255(chr) nblk-chr`, kept short so 32 of them may fit in 512.
fn tracestate_value() -> impl Strategy<Value = String> {
    "[ !-+--<>-~]{0,8}[!-+--<>-~]"
}

fn tracestate_members() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(tracestate_key(), tracestate_value(), 0..=32).prop_map(|m| {
        let mut members: Vec<(String, String)> = m.into_iter().collect();
        // Within the propagated length, so nothing is truncated.
        while members
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
            > 512
        {
            members.pop();
        }
        members
    })
}

fn baggage_key() -> impl Strategy<Value = String> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn traceparent_round_trips(sc in span_context()) {
        let text = format_traceparent(&sc);
        prop_assert_eq!(text.len(), 55);
        let back = parse_traceparent(&text).unwrap();
        prop_assert_eq!(back.trace_id(), sc.trace_id());
        prop_assert_eq!(back.span_id(), sc.span_id());
        prop_assert_eq!(back.trace_flags().to_u8(), sc.trace_flags().to_u8() & 0x03);
        prop_assert_eq!(format_traceparent(&back), text);
    }

    #[test]
    fn any_traceparent_is_rejected_or_canonical(input in ".{0,80}") {
        if let Ok(sc) = parse_traceparent(&input) {
            let text = format_traceparent(&sc);
            prop_assert_eq!(parse_traceparent(&text).unwrap(), sc);
            let trimmed = input.trim_matches([' ', '\t']);
            if trimmed.starts_with("00-") {
                prop_assert_eq!(&trimmed[..53], &text[..53], "version 00 is taken as it is");
            }
        }
    }

    #[test]
    fn near_miss_traceparents_are_rejected(sc in span_context(), at in 0usize..55, c in any::<char>()) {
        let text = format_traceparent(&sc);
        let mut bytes: Vec<char> = text.chars().collect();
        bytes[at] = c;
        let mutated: String = bytes.into_iter().collect();
        if mutated != text {
            let ok = parse_traceparent(&mutated);
            // Only a still-valid hex digit (or a flag bit) may keep it valid.
            if let Ok(parsed) = ok {
                prop_assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{mutated}");
                prop_assert_eq!(format_traceparent(&parsed).len(), 55);
            }
        }
    }

    #[test]
    fn tracestate_round_trips(members in tracestate_members()) {
        let text = members.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let state = parse_tracestate(&text).unwrap();
        let parsed: Vec<(String, String)> =
            (&state).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        prop_assert_eq!(&parsed, &members);
        prop_assert_eq!(format_tracestate(&state), text);
    }

    #[test]
    fn tracestate_split_across_fields_reads_the_same(members in tracestate_members(), cut in any::<prop::sample::Index>()) {
        let texts: Vec<String> = members.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let at = if texts.is_empty() { 0 } else { cut.index(texts.len() + 1) };
        let (a, b) = (texts[..at].join(","), texts[at..].join(" , "));
        let split = parse_tracestate_fields(&[&a, &b]).unwrap();
        prop_assert_eq!(split, parse_tracestate(&texts.join(",")).unwrap());
    }

    #[test]
    fn any_tracestate_is_rejected_or_stable(input in "[a-z0-9=, \t@*/_-]{0,60}|.{0,60}") {
        if let Ok(state) = parse_tracestate(&input) {
            let text = format_tracestate(&state);
            prop_assert!(text.len() <= 512);
            prop_assert_eq!(parse_tracestate(&text).unwrap(), state);
        }
    }

    #[test]
    fn baggage_round_trips(entries in prop::collection::btree_map(baggage_key(), ".{0,24}", 0..20)) {
        let baggage: opentelemetry::baggage::Baggage = entries
            .iter()
            .map(|(k, v)| KeyValueMetadata::new(k.clone(), v.clone(), ""))
            .collect();
        let header = format_baggage(&baggage);
        prop_assert!(header.is_ascii());
        let parsed = parse_baggage(&[&header]);
        prop_assert!(parsed.dropped.is_empty(), "{:?}", parsed.dropped);
        let back: BTreeMap<String, String> = parsed
            .baggage
            .iter()
            .map(|(k, (v, _))| (k.to_string(), v.to_string()))
            .collect();
        prop_assert_eq!(back, entries);
    }

    #[test]
    fn any_baggage_reads_back_the_same_after_one_pass(input in ".{0,80}") {
        let first = parse_baggage(&[&input]);
        let header = format_baggage(&first.baggage);
        let second = parse_baggage(&[&header]);
        prop_assert!(second.dropped.is_empty(), "{header:?}: {:?}", second.dropped);
        prop_assert_eq!(format_baggage(&second.baggage), header);
    }
}
