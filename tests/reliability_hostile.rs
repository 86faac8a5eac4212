//! Hostile carriers: maps, headers and environment carriers with 10⁴
//! members, multi-megabyte values, control bytes, invalid UTF-8, nested
//! quoting. Each is rejected or skipped by a documented limit with a reason,
//! with memory bounded (measured with a counting allocator), never a panic;
//! an invalid `traceparent` restarts the trace (W3C), and an invalid one
//! does not replace a parent a map already carries.
//!
//! The tests of this binary run one at a time, so the allocator's counts
//! are their own.

mod support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flowtrace::{CustomContext, ctx};
use support::alloc::{Counting, peak_growth};
use tracing_subscriber::layer::SubscriberExt as _;

#[global_allocator]
static ALLOC: Counting = Counting::HEAP;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const MIB: usize = 1 << 20;

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tracer provider whose spans get real ids (no exporter needed).
fn provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_tracer_provider(
            opentelemetry_sdk::trace::SdkTracerProvider::builder().build(),
        );
    });
}

/// The `tracing` warnings `f` emits.
fn warnings<T>(f: impl FnOnce() -> T) -> (Vec<String>, T) {
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == "message" {
                        *self.0 = format!("{value:?}");
                    }
                }
            }
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    let seen = capture.0.lock().unwrap().clone();
    (seen, out)
}

fn report(what: &str, bytes: usize) {
    eprintln!(
        "hostile input: {what}: peak heap growth {:.1} KiB",
        bytes as f64 / 1024.0
    );
}

#[test]
fn a_map_of_ten_thousand_members_is_cut_to_the_limit() {
    let _serial = serial();
    let input: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("key-{i:05}"), format!("value-{i}")))
        .collect();
    let (grew, (warned, map)) = peak_growth(|| warnings(|| CustomContext::from_iter(input)));
    report("10^4-member map", grew);
    assert_eq!(map.len(), CustomContext::MAX_ENTRIES);
    assert_eq!(
        map.get("key-00000"),
        Some("value-0"),
        "the first ones are kept"
    );
    assert_eq!(map.get("key-09999"), None);
    assert_eq!(warned.len(), 1, "one warning per merge: {warned:?}");
    assert!(
        warned[0].contains("9744 pairs skipped: more than 256 entries"),
        "{warned:?}"
    );
    assert!(grew < MIB, "the map stays small: {grew} bytes");
}

#[test]
fn multi_megabyte_values_and_control_bytes_are_skipped_with_reasons() {
    let _serial = serial();
    let big = "x".repeat(8 * MIB);
    let pairs = vec![
        ("big".to_owned(), big),
        ("new\nline".to_owned(), "v".to_owned()),
        ("".to_owned(), "empty key".to_owned()),
        ("bell\u{7}".to_owned(), "v".to_owned()),
        (
            "quoted".to_owned(),
            r#""{\"a\": \"\\\"b\\\"\"}""#.to_owned(),
        ),
        ("escape".to_owned(), "\u{1b}[31mred\u{0}".to_owned()),
    ];
    let (grew, (warned, map)) = peak_growth(|| warnings(|| CustomContext::from_iter(pairs)));
    report("8 MiB value + control bytes", grew);
    assert_eq!(map.get("big"), None, "an 8 MiB value is skipped, not cut");
    assert_eq!(
        map.get("quoted"),
        Some(r#""{\"a\": \"\\\"b\\\"\"}""#),
        "nested quoting is data"
    );
    assert_eq!(
        map.get("escape"),
        Some("\u{1b}[31mred\u{0}"),
        "values are opaque"
    );
    assert_eq!(map.len(), 2);
    let warning = &warned[0];
    assert!(
        warning.contains("value longer than 8192 bytes"),
        "{warning}"
    );
    assert!(
        warning.contains("empty key or control characters in the key (3"),
        "{warning}"
    );
    assert!(
        !warning.contains('\n'),
        "the hostile key is escaped: {warning}"
    );
    assert!(
        grew < 64 * 1024,
        "nothing of the value is copied: {grew} bytes"
    );

    // A map already at its byte budget takes nothing more.
    let full: Vec<(String, String)> = (0..10)
        .map(|i| (format!("k{i}"), "v".repeat(8000)))
        .collect();
    let map = CustomContext::from_iter(full);
    let total: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(total <= CustomContext::MAX_TOTAL_BYTES, "{total}");
    assert_eq!(map.len(), 8, "64 KiB hold eight 8000-byte values");
}

#[test]
fn serialized_envelopes_are_bounded() {
    let _serial = serial();
    let members: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\":\"v\"")).collect();
    let huge = format!("{{{}}}", members.join(","));
    let (grew, result) = peak_growth(|| serde_json::from_str::<CustomContext>(&huge));
    report("10^4-member JSON envelope", grew);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("more than 258 entries"), "{err}");
    assert!(grew < MIB, "stops early: {grew} bytes");

    let cases: [(&[u8], &str); 4] = [
        (b"{\"k\":\"\xff\xfe\"}", "invalid UTF-8"),
        (b"{\"k\":{\"nested\":1}}", "a nested object"),
        (b"{\"k\":\"v\"", "truncated"),
        (b"[\"k\",\"v\"]", "not a map"),
    ];
    for (input, what) in cases {
        assert!(
            serde_json::from_slice::<CustomContext>(input).is_err(),
            "{what}"
        );
    }
    let deep = format!("{}{}", "{\"k\":".repeat(100_000), "}".repeat(100_000));
    assert!(
        serde_json::from_str::<CustomContext>(&deep).is_err(),
        "deep nesting is an error, not a stack overflow"
    );
}

#[test]
fn hostile_headers_restart_the_trace_within_bounded_memory() {
    let _serial = serial();
    provider();
    let mut carrier: HashMap<String, String> = (0..10_000)
        .map(|i| (format!("x-header-{i}"), "v".repeat(100)))
        .collect();
    let garbage_tp = format!(
        "00-{}-00f067aa0ba902b7-01",
        "4bf92f3577b34da6a3ce929d0e0e4736".repeat(1000)
    );
    carrier.insert("traceparent".into(), garbage_tp);
    carrier.insert("tracestate".into(), "a=b,".repeat(MIB / 4));
    let members: Vec<String> = (0..10_000).map(|i| format!("k{i}=v{i}")).collect();
    carrier.insert("baggage".into(), members.join(","));

    let (grew, cx) = peak_growth(|| flowtrace::propagation::extract(&carrier));
    report("10^4 headers, 1 MiB tracestate, 10^4-member baggage", grew);
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::trace::TraceContextExt as _;
    assert!(
        !cx.span().span_context().is_valid(),
        "an invalid traceparent carries no parent"
    );
    assert!(
        cx.baggage().len() <= 180,
        "baggage is bounded: {}",
        cx.baggage().len()
    );
    assert!(grew < 4 * MIB, "{grew} bytes");

    // As a run's carrier: a new trace, and the map within its limits.
    let run = flowtrace::with_runcontext()
        .custom_context(carrier)
        .run(async { (ctx().trace_id(), ctx().custom_context().len()) });
    let (grew, run) = peak_growth(|| futures::executor::block_on(run));
    report("run started from those headers", grew);
    let (trace_id, len) = run.into_output();
    assert_eq!(trace_id.len(), 32, "the trace restarted with a new id");
    assert!(!trace_id.starts_with("4bf92f35"), "not the garbage's id");
    assert!(len <= CustomContext::MAX_ENTRIES + 2);
    assert!(grew < 2 * MIB, "{grew} bytes");
}

#[test]
fn runtime_keys_are_not_overwritten_by_accident() {
    let _serial = serial();
    provider();
    let run = flowtrace::with_runcontext()
        .custom_context([("traceparent", TP)])
        .run(async {
            let scoped = |pairs: Vec<(&'static str, &'static str)>| {
                flowtrace::custom_context(pairs).scope(async { ctx().trace_id() })
            };
            let garbage = scoped(vec![("traceparent", "garbage")]).await;
            let shouting = scoped(vec![("TRACEPARENT", "garbage")]).await;
            let empty = scoped(vec![("traceparent", "")]).await;
            let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let foreign = scoped(vec![("TraceParent", other)]).await;
            let deliberate = flowtrace::custom_context([("TraceParent", other)])
                .override_parent()
                .scope(async { ctx().trace_id() })
                .await;
            (
                garbage,
                shouting,
                empty,
                foreign,
                deliberate,
                ctx().custom_context().len(),
            )
        });
    let run = futures::executor::block_on(run);
    let (garbage, shouting, empty, foreign, deliberate, len) = run.into_output();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    assert_eq!(garbage, trace, "an invalid traceparent keeps the parent");
    assert_eq!(shouting, trace, "TRACEPARENT is the same key");
    assert_eq!(empty, trace, "an empty one too");
    assert_eq!(
        foreign, trace,
        "a valid one of another trace does not cut the task off its trace"
    );
    assert_eq!(
        deliberate, "0af7651916cd43dd8448eb211c80319c",
        "unless asked: with override_parent, in any case, it replaces the parent"
    );
    assert_eq!(len, 1, "no stray plain traceparent entries");
}

#[test]
fn hostile_environment_carriers_never_panic() {
    let _serial = serial();
    // tests/children/hostile_env.rs
    let exe = support::example("child_hostile_env");
    let members: Vec<String> = (0..10_000).map(|i| format!("k{i}=v")).collect();
    let cases: [(&str, &OsStr, &OsStr, &str); 4] = [
        (
            "invalid UTF-8 TRACEPARENT",
            OsStr::new("TRACEPARENT"),
            OsStr::from_bytes(b"00-\xff\xfe-01"),
            "vars=0",
        ),
        (
            // Linux refuses a single variable over 128 KiB at exec.
            "a 100 KB TRACEPARENT",
            OsStr::new("TRACEPARENT"),
            OsStr::new(Box::leak("0".repeat(100_000).into_boxed_str())),
            "vars=1",
        ),
        (
            "a 10^4-member BAGGAGE",
            OsStr::new("BAGGAGE"),
            OsStr::new(Box::leak(members.join(",").into_boxed_str())),
            "vars=1",
        ),
        (
            "control bytes in TRACESTATE",
            OsStr::new("TRACESTATE"),
            OsStr::new("a=\u{1b}[31m\n,b=\"\"\""),
            "vars=1",
        ),
    ];
    for (what, name, value, expected) in cases {
        let mut cmd = Command::new(&exe);
        cmd.env_remove("TRACEPARENT")
            .env_remove("TRACESTATE")
            .env_remove("BAGGAGE")
            .env(name, value);
        let out = support::run_bounded(&mut cmd, Duration::from_secs(60));
        out.assert_success(what);
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("vars="))
            .unwrap_or_else(|| panic!("{what}: {}", out.stdout));
        assert!(line.starts_with(expected), "{what}: {line}");
        let trace = line
            .split("trace=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or("");
        assert_eq!(trace.len(), 32, "{what}: a new trace: {line}");
    }
}
