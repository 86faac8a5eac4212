//! W3C Baggage rules (§3.2 header content, §3.3 limits), table-driven with
//! the specification's examples.

use std::collections::HashMap;

use super::*;

fn value<'a>(parsed: &'a ParsedBaggage, key: &str) -> Option<&'a str> {
    parsed.baggage.get(key).map(|v| v.as_str())
}

#[test]
fn the_specifications_examples_parse() {
    for (fields, expected, reason) in [
        (
            vec!["userId=alice,serverNode=DF%2028,isProduction=false"],
            vec![
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false"),
            ],
            "single header",
        ),
        (
            vec!["userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false"],
            vec![("userId", "Amélie"), ("serverNode", "DF 28")],
            "percent-encoded UTF-8",
        ),
        (
            vec!["userId=alice", "serverNode=DF%2028,isProduction=false"],
            vec![
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false"),
            ],
            "split into two headers",
        ),
        (
            vec![
                "userId =   alice",
                "serverNode = DF%2028, isProduction = false",
            ],
            vec![
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false"),
            ],
            "whitespace around keys and values",
        ),
        (
            vec![
                "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue",
            ],
            vec![("key1", "value1"), ("key2", "value2"), ("key3", "value3")],
            "properties",
        ),
        (
            vec!["token=dGVzdA=="],
            vec![("token", "dGVzdA==")],
            "= inside a value",
        ),
        (vec!["empty="], vec![("empty", "")], "an empty value"),
        (
            vec!["bad=%ff%fe"],
            vec![("bad", "\u{fffd}\u{fffd}")],
            "invalid UTF-8 becomes U+FFFD",
        ),
        (
            vec!["pct=100%25"],
            vec![("pct", "100%")],
            "an encoded percent sign",
        ),
    ] {
        let parsed = parse_baggage(&fields);
        assert!(parsed.dropped.is_empty(), "{reason}: {:?}", parsed.dropped);
        for (k, v) in expected {
            assert_eq!(value(&parsed, k), Some(v), "{reason}: {k}");
        }
    }
}

#[test]
fn properties_are_kept_normalized() {
    let parsed = parse_baggage(&["key3=value3; propertyKey = propertyValue ;flag"]);
    let (_, metadata) = parsed.baggage.get_with_metadata("key3").unwrap();
    assert_eq!(metadata.as_str(), "propertyKey=propertyValue;flag");
    assert_eq!(
        format_baggage(&parsed.baggage),
        "key3=value3;propertyKey=propertyValue;flag"
    );
}

#[test]
fn invalid_members_are_dropped_alone_with_a_reason() {
    for (member, expected, reason) in [
        ("novalue", BaggageError::NoEquals("novalue".into()), "no ="),
        (
            "bad key=1",
            BaggageError::InvalidKey("bad key".into()),
            "space in the key",
        ),
        (
            "k@y=1",
            BaggageError::InvalidKey("k@y".into()),
            "separator in the key",
        ),
        ("=1", BaggageError::InvalidKey(String::new()), "empty key"),
        (
            "k=a b",
            BaggageError::InvalidValue {
                key: "k".into(),
                value: "a b".into(),
            },
            "space inside a value",
        ),
        (
            "k=\"q\"",
            BaggageError::InvalidValue {
                key: "k".into(),
                value: "\"q\"".into(),
            },
            "a quote",
        ),
        (
            "k=a\\b",
            BaggageError::InvalidValue {
                key: "k".into(),
                value: "a\\b".into(),
            },
            "a backslash",
        ),
        (
            "k=caf\u{e9}",
            BaggageError::InvalidValue {
                key: "k".into(),
                value: "caf\u{e9}".into(),
            },
            "raw non-ASCII",
        ),
        (
            "k=1;",
            BaggageError::InvalidProperty {
                key: "k".into(),
                property: String::new(),
            },
            "an empty property",
        ),
        (
            "k=1;p=a b",
            BaggageError::InvalidProperty {
                key: "k".into(),
                property: "p=a b".into(),
            },
            "space in a property value",
        ),
    ] {
        let parsed = parse_baggage(&[&format!("good=1,{member},after=2")]);
        assert_eq!(parsed.dropped, vec![expected], "{reason}");
        assert_eq!(
            value(&parsed, "good"),
            Some("1"),
            "{reason}: the rest is kept"
        );
        assert_eq!(
            value(&parsed, "after"),
            Some("2"),
            "{reason}: the rest is kept"
        );
        assert!(!parsed.dropped[0].to_string().is_empty());
    }
}

#[test]
fn sixty_four_members_are_kept_the_sixty_fifth_is_dropped() {
    let members = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let parsed = parse_baggage(&[&members(64)]);
    assert_eq!(parsed.baggage.len(), 64);
    assert!(parsed.dropped.is_empty());
    let parsed = parse_baggage(&[&members(65)]);
    assert_eq!(parsed.baggage.len(), 64);
    assert_eq!(
        parsed.dropped,
        vec![BaggageError::TooManyMembers { key: "k64".into() }]
    );
    assert!(parsed.baggage.get("k63").is_some(), "the first 64 are kept");
}

#[test]
fn eight_kilobytes_are_kept_more_is_dropped_by_whole_members() {
    // Two members of 4094 bytes, `c=` and the commas: exactly 8192 bytes.
    let big = |k: &str| format!("{k}={}", "v".repeat(4094 - k.len() - 1));
    let exact = format!("{},{},c=", big("a"), big("b"));
    assert_eq!(exact.len(), BAGGAGE_MAX_BYTES);
    let parsed = parse_baggage(&[&exact]);
    assert_eq!(parsed.baggage.len(), 3, "{:?}", parsed.dropped);
    assert!(parsed.dropped.is_empty());

    for (fields, reason) in [
        (vec![format!("{exact},d=")], "one header"),
        (
            vec![
                format!("{},{}", big("a"), big("b")),
                "c=".into(),
                "d=".into(),
            ],
            "across header fields",
        ),
    ] {
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let parsed = parse_baggage(&fields);
        assert_eq!(parsed.baggage.len(), 3, "{reason}");
        assert_eq!(
            parsed.dropped,
            vec![BaggageError::TooLong {
                key: "d".into(),
                bytes: 2
            }],
            "{reason}"
        );
    }
    // A later member that still fits is kept: only the one over is dropped.
    let parsed = parse_baggage(&[&format!("{},{},{},c=", big("a"), big("b"), big("x"))]);
    assert_eq!(parsed.baggage.len(), 3);
    assert!(parsed.baggage.get("c").is_some());
}

#[test]
fn a_key_given_twice_keeps_the_last_value() {
    let parsed = parse_baggage(&["k=1,k=2", "k=3"]);
    assert_eq!(value(&parsed, "k"), Some("3"));
}

#[test]
fn format_percent_encodes_what_the_grammar_requires() {
    for (v, encoded, reason) in [
        ("plain", "plain", "nothing to encode"),
        ("DF 28", "DF%2028", "space"),
        ("50%", "50%25", "percent MUST be encoded"),
        ("a,b;c", "a%2Cb%3Bc", "list separators"),
        ("q\"\\", "q%22%5C", "quote and backslash"),
        ("Amélie", "Am%C3%A9lie", "UTF-8"),
        (" padded ", "%20padded%20", "surrounding spaces survive"),
        ("a=b", "a=b", "= is a baggage-octet"),
    ] {
        let baggage: Entries = [KeyValueMetadata::new("k", v, "")].into_iter().collect();
        let header = format_baggage(&baggage);
        assert_eq!(header, format!("k={encoded}"), "{reason}");
        let back = parse_baggage(&[&header]);
        assert_eq!(value(&back, "k"), Some(v), "{reason}: round trip");
    }
}

#[test]
fn propagator_round_trips_and_leaves_cx_without_a_header() {
    let carrier = HashMap::from([("baggage".to_string(), "b=2;p=1,a=%E2%9C%93".to_string())]);
    let cx = Baggage::new().extract(&carrier);
    let mut out = HashMap::new();
    Baggage::new().inject_context(&cx, &mut out);
    assert_eq!(out["baggage"], "a=%E2%9C%93,b=2;p=1");

    let none = Baggage::new().extract_with_context(&cx, &HashMap::<String, String>::new());
    assert_eq!(none.baggage().len(), 2, "no header: cx unchanged");
}

#[test]
fn merge_header_is_innermost_wins() {
    let cx = Context::new().with_baggage([
        KeyValueMetadata::new("a", "1", ""),
        KeyValueMetadata::new("b", "1", ""),
    ]);
    let cx = merge_header(&cx, "b=2,c=3");
    let got: HashMap<_, _> = cx
        .baggage()
        .iter()
        .map(|(k, (v, _))| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        got,
        HashMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("c".into(), "3".into())
        ])
    );
}
