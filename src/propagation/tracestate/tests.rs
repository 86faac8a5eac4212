//! `tracestate` rules of W3C Trace Context Level 2 §3.3, table-driven with
//! the specification's and its test suite's inputs.

use super::*;

fn header(fields: &[&str]) -> String {
    parse_tracestate_fields(fields)
        .unwrap_or_else(|e| panic!("{fields:?}: {e}"))
        .header()
}

fn members(prefix: &str, n: usize) -> String {
    (1..=n)
        .map(|i| format!("{prefix}{i:02}={i:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn keys_follow_the_level_2_grammar() {
    let all_key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    for (key, reason) in [
        ("foo", "lowercase letters"),
        ("1special", "may start with a digit"),
        (all_key_chars, "every key character"),
        ("fw529a3039@dt", "tenant@system"),
        ("special@", "a trailing @"),
        (&*"z".repeat(256), "256 characters"),
        (
            &*format!("{}@{}", "t".repeat(240), "v".repeat(13)),
            "240@13",
        ),
        (&*format!("{}@v", "t".repeat(242)), "tenant longer than 241"),
    ] {
        assert!(valid_key(key), "{reason}: {key}");
        let state = parse_tracestate(&format!("{key}=1,bar=2")).unwrap();
        assert_eq!(state.get(key), Some("1"), "{reason}");
        assert_eq!(state.get("bar"), Some("2"), "{reason}");
    }
}

#[test]
fn an_invalid_key_discards_the_whole_list() {
    for (key, reason) in [
        ("", "empty"),
        ("FOO", "uppercase"),
        ("foo ", "a space inside the member"),
        ("foo.bar", "a dot"),
        ("@foo", "starts with @"),
        ("_foo", "starts with _"),
        ("fo\u{e9}", "non-ASCII"),
        (&*"z".repeat(257), "257 characters"),
    ] {
        assert!(!valid_key(key), "{reason}");
        let input = format!("foo=1,{key}=1");
        assert!(
            matches!(
                parse_tracestate(&input),
                Err(TraceStateError::InvalidKey(_))
            ),
            "{reason}: {input:?}"
        );
    }
}

#[test]
fn values_follow_the_grammar() {
    let every_value_char: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect();
    for (value, reason) in [
        ("1", "one character"),
        (
            &*every_value_char,
            "every allowed character, a leading space kept",
        ),
        (" leading", "leading spaces are part of the value"),
        ("in side", "inner spaces"),
        (&*"v".repeat(256), "256 characters"),
    ] {
        let state = parse_tracestate(&format!("foo={value}")).unwrap();
        assert_eq!(state.get("foo"), Some(value), "{reason}");
    }
    for (value, reason) in [
        ("", "empty"),
        ("bar=baz", "an equals sign"),
        ("a\tb", "a tab"),
        ("caf\u{e9}", "non-ASCII"),
        ("a\u{7f}", "DEL"),
        (&*"v".repeat(257), "257 characters"),
    ] {
        let input = format!("foo={value}");
        assert!(
            matches!(
                parse_tracestate(&input),
                Err(TraceStateError::InvalidValue { .. })
            ),
            "{reason}: {input:?}"
        );
    }
}

#[test]
fn members_without_equals_discard_the_list() {
    assert_eq!(
        parse_tracestate("foo=1,bar"),
        Err(TraceStateError::NoEquals("bar".into()))
    );
}

#[test]
fn optional_whitespace_around_members_is_ignored() {
    for (input, reason) in [
        ("foo=1 \t , \t bar=2, \t baz=3", "around commas"),
        ("foo=1\t \t,\t \tbar=2,\t \tbaz=3", "tabs and spaces"),
    ] {
        assert_eq!(header(&[input]), "foo=1,bar=2,baz=3", "{reason}");
    }
    for (input, reason) in [
        (" foo=1", "leading space"),
        ("\tfoo=1", "leading tab"),
        ("foo=1 ", "trailing space is OWS, not value"),
        ("foo=1\t", "trailing tab"),
        ("\t foo=1 \t", "both"),
    ] {
        assert_eq!(header(&[input]), "foo=1", "{reason}");
    }
}

#[test]
fn empty_members_and_headers_are_accepted() {
    for (fields, expected, reason) in [
        (vec![""], "", "an empty header"),
        (vec!["foo=1", ""], "foo=1", "an empty second field"),
        (vec!["", "foo=1"], "foo=1", "an empty first field"),
        (vec!["foo=1,,bar=2"], "foo=1,bar=2", "an empty member"),
        (vec![" , foo=1 ,\t,"], "foo=1", "whitespace-only members"),
    ] {
        assert_eq!(header(&fields), expected, "{reason}");
    }
}

#[test]
fn multiple_fields_are_combined_in_order() {
    assert_eq!(
        header(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]),
        "foo=1,bar=2,rojo=1,congo=2,baz=3"
    );
}

#[test]
fn thirty_two_members_are_kept_thirty_three_discard_the_list() {
    let fields32 = [
        &*members("bar", 10),
        &*members("baz", 10),
        &*members("qux", 12),
    ];
    let state = parse_tracestate_fields(&fields32).unwrap();
    assert_eq!(state.into_iter().count(), 32);
    let fields33 = [
        &*members("bar", 10),
        &*members("baz", 10),
        &*members("qux", 13),
    ];
    assert_eq!(
        parse_tracestate_fields(&fields33),
        Err(TraceStateError::TooManyMembers(33))
    );
    // Empty members do not count.
    let with_empties = format!("{},,,", members("bar", 32));
    assert!(parse_tracestate(&with_empties).is_ok());
}

#[test]
fn duplicate_keys_keep_the_left_most() {
    for (fields, expected, reason) in [
        (vec!["foo=1,foo=1"], "foo=1", "equal values"),
        (vec!["foo=1,foo=2"], "foo=1", "different values"),
        (vec!["foo=1", "foo=2"], "foo=1", "across fields"),
        (
            vec!["a=1,foo=2,b=3,foo=4"],
            "a=1,foo=2,b=3",
            "in the middle",
        ),
    ] {
        assert_eq!(header(&fields), expected, "{reason}");
    }
}

/// The keys of the W3C test suite's `test_tracestate_key_illegal_vendor_format`
/// and `test_tracestate_key_length_limit` that Level 2 allows and
/// opentelemetry's `TraceState` cannot hold (Level 1's `tenant@vendor`).
fn keys_opentelemetry_cannot_hold() -> Vec<(String, &'static str)> {
    vec![
        ("foo@@bar".to_owned(), "two at signs"),
        ("foo@bar@baz".to_owned(), "three parts"),
        (format!("t@{}", "v".repeat(15)), "15 characters after @"),
        (
            format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            "Level 1's own 241@14 example (opentelemetry allows 13 after @)",
        ),
    ]
}

fn remote(trace_id: u128) -> SpanContext {
    SpanContext::new(
        opentelemetry::trace::TraceId::from(trace_id),
        opentelemetry::trace::SpanId::from(7),
        opentelemetry::trace::TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    )
}

#[test]
fn level_2_keys_opentelemetry_cannot_hold_are_passed_on_in_place() {
    for (i, (key, reason)) in keys_opentelemetry_cannot_hold().into_iter().enumerate() {
        assert!(valid_key(&key), "{reason}: valid by Level 2");
        let input = format!("foo=1,{key}=1,bar=2");
        let state = parse_tracestate(&input).unwrap();
        assert_eq!(
            state.header(),
            "foo=1,bar=2",
            "{reason}: not in opentelemetry's TraceState"
        );
        let sc = with_tracestate_fields(remote(0x5ca1_e000 + i as u128), &[&input]);
        assert_eq!(sc.trace_state(), &state, "{reason}");
        assert_eq!(
            format_tracestate_of(&sc),
            input,
            "{reason}: passed on, in its place"
        );
        // A child span of the trace inherits the state: the same header.
        let child = SpanContext::new(
            sc.trace_id(),
            opentelemetry::trace::SpanId::from(8),
            sc.trace_flags(),
            false,
            sc.trace_state().clone(),
        );
        assert_eq!(format_tracestate_of(&child), input, "{reason}: child");
        // Another trace with the same held members does not get them.
        let other = with_trace_state_of(remote(0xdead_0000 + i as u128), state.clone());
        assert_eq!(
            format_tracestate_of(&other),
            "foo=1,bar=2",
            "{reason}: other trace"
        );
        // A modified state is rendered without them.
        let modified = with_trace_state_of(sc.clone(), state.insert("mine", "1").unwrap());
        assert_eq!(
            format_tracestate_of(&modified),
            "mine=1,foo=1,bar=2",
            "{reason}: modified"
        );
    }
    the_unheld_table_is_bounded();
}

fn with_trace_state_of(sc: SpanContext, state: TraceState) -> SpanContext {
    crate::propagation::with_trace_state(sc, state)
}

/// Part of the test above: the table is global, and filling it must not
/// race the other checks.
fn the_unheld_table_is_bounded() {
    let input = "a@@b=1,c=2";
    for i in 0..(super::unheld::CAPACITY as u128 + 10) {
        with_tracestate_fields(remote(0xb0_0000_0000 + i), &[input]);
    }
    let oldest = with_trace_state_of(remote(0xb0_0000_0000), parse_tracestate(input).unwrap());
    assert_eq!(
        format_tracestate_of(&oldest),
        "c=2",
        "the oldest list is forgotten"
    );
    let newest = with_trace_state_of(
        remote(0xb0_0000_0000 + super::unheld::CAPACITY as u128 + 9),
        parse_tracestate(input).unwrap(),
    );
    assert_eq!(format_tracestate_of(&newest), input, "the newest is kept");
}

#[test]
fn lists_over_512_characters_are_truncated_by_whole_members() {
    // 8 members of 66 characters (key 3, value 62) = 535 with commas.
    let value = "v".repeat(62);
    let input: Vec<String> = (0..8).map(|i| format!("k{i:02}={value}")).collect();
    let state = parse_tracestate(&input.join(",")).unwrap();
    assert_eq!(
        state.header(),
        input[..7].join(","),
        "the right-most member goes first"
    );

    // A long member (over 128) goes before the right-most short one.
    let long = format!("long={}", "l".repeat(200));
    let short: Vec<String> = (0..6).map(|i| format!("s{i}={}", "s".repeat(60))).collect();
    let input = format!("{long},{}", short.join(","));
    assert!(input.len() > TRACESTATE_MAX_LEN);
    let state = parse_tracestate(&input).unwrap();
    assert_eq!(state.header(), short.join(","));

    // 512 exactly is kept whole.
    let exact = format!("k={}", "v".repeat(TRACESTATE_MAX_LEN - 2));
    assert!(
        parse_tracestate(&exact).is_err(),
        "a value over 256 is invalid"
    );
    let two = format!("a={},b={}", "v".repeat(254), "w".repeat(253));
    assert_eq!(two.len(), TRACESTATE_MAX_LEN);
    assert_eq!(parse_tracestate(&two).unwrap().header(), two);
}

#[test]
fn format_truncates_and_skips_invalid_members() {
    let big =
        TraceState::from_key_value((0..8).map(|i| (format!("k{i}"), "v".repeat(70)))).unwrap();
    let out = format_tracestate(&big);
    assert!(out.len() <= TRACESTATE_MAX_LEN, "{}", out.len());
    assert!(out.starts_with("k0="));
    assert_eq!(out.split(',').count(), 6);
    let odd = TraceState::from_key_value([("ok", "1"), ("tab", "a\tb"), ("empty", "")]).unwrap();
    assert_eq!(format_tracestate(&odd), "ok=1");
}

#[test]
fn traceparent_received_4_2_a_modified_key_moves_left_and_the_list_stays_at_32() {
    // Processing model 4.2: updated and added keys go to the left; adding
    // to a full list drops the right-most (§3.3.1.1).
    let state = parse_tracestate("rojo=1,congo=2").unwrap();
    let state = state.insert("congo", "3").unwrap();
    assert_eq!(format_tracestate(&state), "congo=3,rojo=1");
    let full = parse_tracestate(&members("k", 32)).unwrap();
    let added = full.insert("flowtrace", "1").unwrap();
    let out = format_tracestate(&added);
    assert!(out.starts_with("flowtrace=1,k01=01"), "{out}");
    assert!(!out.contains("k32"), "the right-most went: {out}");
    assert_eq!(parse_tracestate(&out).unwrap().into_iter().count(), 32);
}
