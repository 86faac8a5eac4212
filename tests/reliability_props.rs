//! The fuzz targets' properties (`fuzz/properties.rs`) under proptest, so
//! plain `cargo test` on stable checks the same parsers: `traceparent`,
//! `tracestate`, `baggage` and the serialized `custom_context` envelope.
//! The inputs mix arbitrary text with near-valid structure, where parsers
//! break. The long libFuzzer runs are `scripts/fuzz` (RELIABILITY.md).

#[path = "../fuzz/properties.rs"]
mod properties;

use proptest::prelude::*;

fn traceparent_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(00|01|cc|fe|ff|0g|[0-9a-fA-F]{2})-[0-9a-f]{30,34}-[0-9a-f]{14,18}-[0-9a-f]{1,3}(-[ -~]{0,12})?",
        "[ \t]{0,2}00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3][ \t]{0,2}",
    ]
}

fn list_of(member: &'static str, max: usize) -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(member, 0..max),
        "[ \t]{0,2},[ \t]{0,2}",
    )
        .prop_map(|(members, sep)| members.join(&sep))
}

fn tracestate_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        list_of("[a-z0-9_*/@-]{0,24}=[ -~]{0,24}", 40),
        list_of("[a-z][a-z0-9]{0,3}@[a-z]{1,3}=[!-+--~]{1,8}", 40),
    ]
}

fn baggage_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        list_of("[!-~]{0,10}=[ -~]{0,15}(;[a-z]{1,5}(=[a-z0-9]{0,5})?)?", 80),
        list_of("[a-z]{1,8}=(%[0-9A-Fa-f]{0,2}|[a-z]){0,12}", 80),
    ]
}

/// Envelopes: well-formed JSON maps (some with trace keys and oversized
/// values), and arbitrary bytes (also read as NUL-separated pairs).
fn envelope_like() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        "[a-z]{1,12}",
        Just("traceparent".to_owned()),
        Just("TraceParent".to_owned()),
        Just("tracestate".to_owned()),
        Just("baggage".to_owned()),
        any::<String>(),
    ];
    // Mostly small, some near and over the 8 KiB value limit, so that the
    // 64 KiB map budget is crossed now and then.
    let value = prop_oneof![
        8 => "[ -~]{0,20}",
        2 => any::<String>(),
        1 => Just("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        2 => (8000usize..8400).prop_map(|n| "v".repeat(n)),
    ];
    prop_oneof![
        proptest::collection::vec((key, value), 0..280).prop_map(|pairs| {
            let map: serde_json::Map<String, serde_json::Value> = pairs
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            serde_json::to_vec(&map).unwrap()
        }),
        proptest::collection::vec(any::<u8>(), 0..4000),
    ]
}

proptest! {
    // Sized to take seconds in a debug build; the fuzzers run for hours.
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn traceparent(value in traceparent_like()) {
        properties::traceparent(value.as_bytes());
    }

    #[test]
    fn tracestate(value in tracestate_like()) {
        properties::tracestate(value.as_bytes());
    }

    #[test]
    fn baggage(value in baggage_like()) {
        properties::baggage(value.as_bytes());
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn custom_context(data in envelope_like()) {
        properties::custom_context(&data);
    }
}

/// Inputs a fuzzer once failed on (`fuzz/regressions/<target>/`), checked
/// on every `cargo test`.
#[test]
fn fuzz_regressions_still_hold() {
    type Check = fn(&[u8]);
    let checks: [(&str, Check); 4] = [
        ("traceparent", properties::traceparent),
        ("tracestate", properties::tracestate),
        ("baggage", properties::baggage),
        ("custom_context", properties::custom_context),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut checked = 0;
    for (target, check) in checks {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            check(&std::fs::read(entry.path()).expect("a regression input"));
            checked += 1;
        }
    }
    assert!(checked > 0, "no regression inputs under {}", root.display());
}
