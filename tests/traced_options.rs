//! One test per `#[traced]` option, asserting on the exported spans.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use flowtrace::traced;
use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, Value};
use serde::Serialize;
use support::in_memory::{attr, attr_str, named, traced_in_root};

#[traced(name = "renamed")]
async fn option_name() {}

#[tokio::test]
async fn name_sets_span_and_task_name() {
    let (_, spans) = traced_in_root(option_name()).await;
    let span = named(&spans, "renamed");
    assert_eq!(
        attr_str(span, "flowtrace.task.name").as_deref(),
        Some("renamed")
    );
    assert_eq!(
        attr_str(span, "code.function.name").as_deref(),
        Some("traced_options::option_name")
    );
}

#[traced(kind = server)]
async fn as_server() {}
#[traced(kind = client)]
async fn as_client() {}
#[traced(kind = producer)]
async fn as_producer() {}
#[traced(kind = consumer)]
async fn as_consumer() {}
#[traced(kind = internal)]
async fn as_internal() {}

#[tokio::test]
async fn kind_sets_the_span_kind() {
    let (_, spans) = traced_in_root(async {
        as_server().await;
        as_client().await;
        as_producer().await;
        as_consumer().await;
        as_internal().await;
    })
    .await;
    for (name, kind) in [
        ("as_server", SpanKind::Server),
        ("as_client", SpanKind::Client),
        ("as_producer", SpanKind::Producer),
        ("as_consumer", SpanKind::Consumer),
        ("as_internal", SpanKind::Internal),
    ] {
        assert_eq!(named(&spans, name).span_kind, kind, "{name}");
    }
}

#[derive(Serialize, Debug, Clone)]
struct Query {
    text: String,
    top_k: u32,
    auth: Auth,
}

#[derive(Serialize, Debug, Clone)]
struct Auth {
    user: String,
    password: String,
    pin: u32,
}

fn query() -> Query {
    Query {
        text: "rust tracing".into(),
        top_k: 3,
        auth: Auth {
            user: "ana".into(),
            password: "hunter2".into(),
            pin: 1234,
        },
    }
}

struct NotSerialize(#[allow(dead_code)] u8);

impl std::fmt::Debug for NotSerialize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotSerialize!")
    }
}

#[traced]
async fn inputs(
    q: Query,
    n: i64,
    ratio: f64,
    flag: bool,
    s: &str,
    opaque: NotSerialize,
    api_token: String,
) {
    let _ = (q, n, ratio, flag, s, opaque, api_token);
}

#[tokio::test]
async fn inputs_are_captured_as_json_with_secrets_redacted() {
    let (_, spans) = traced_in_root(inputs(
        query(),
        7,
        0.5,
        true,
        "plain",
        NotSerialize(1),
        "t0k".into(),
    ))
    .await;
    let span = named(&spans, "inputs");
    let q: serde_json::Value =
        serde_json::from_str(&attr_str(span, "flowtrace.input.q").unwrap()).unwrap();
    assert_eq!(
        q,
        serde_json::json!({"text": "rust tracing", "top_k": 3, "auth": {"user": "ana", "password": "[REDACTED]", "pin": 1234}}),
        "password redacted at depth by the default key list"
    );
    assert_eq!(attr(span, "flowtrace.input.n"), Some(Value::I64(7)));
    assert_eq!(attr(span, "flowtrace.input.ratio"), Some(Value::F64(0.5)));
    assert_eq!(attr(span, "flowtrace.input.flag"), Some(Value::Bool(true)));
    assert_eq!(
        attr_str(span, "flowtrace.input.s").as_deref(),
        Some("plain")
    );
    assert_eq!(
        attr(span, "flowtrace.input.opaque"),
        None,
        "not Serialize and not capture = debug"
    );
    assert_eq!(
        attr_str(span, "flowtrace.input.api_token").as_deref(),
        Some("[REDACTED]"),
        "argument names are redacted too"
    );
}

#[traced(capture = debug)]
async fn debug_inputs(opaque: NotSerialize, n: u8) {
    let _ = (opaque, n);
}

#[tokio::test]
async fn capture_debug_records_the_rest_through_debug() {
    let (_, spans) = traced_in_root(debug_inputs(NotSerialize(1), 2)).await;
    let span = named(&spans, "debug_inputs");
    assert_eq!(
        attr_str(span, "flowtrace.input.opaque").as_deref(),
        Some("NotSerialize!")
    );
    assert_eq!(
        attr(span, "flowtrace.input.n"),
        Some(Value::I64(2)),
        "Serialize still wins"
    );
}

#[traced(skip(q))]
async fn skip_one(q: Query, n: u8) {
    let _ = (q, n);
}

#[traced(skip_all)]
async fn skip_everything(q: Query, n: u8) {
    let _ = (q, n);
}

#[tokio::test]
async fn skip_and_skip_all_leave_arguments_out() {
    let (_, spans) = traced_in_root(async {
        skip_one(query(), 1).await;
        skip_everything(query(), 1).await;
    })
    .await;
    let one = named(&spans, "skip_one");
    assert_eq!(attr(one, "flowtrace.input.q"), None);
    assert_eq!(attr(one, "flowtrace.input.n"), Some(Value::I64(1)));
    let all = named(&spans, "skip_everything");
    assert!(
        all.attributes
            .iter()
            .all(|kv| !kv.key.as_str().starts_with("flowtrace.input."))
    );
}

#[traced(redact(q.auth.user, q.text), redact(secret_sauce))]
async fn redacting(q: Query, secret_sauce: String, visible: String) {
    let _ = (q, secret_sauce, visible);
}

#[tokio::test]
async fn redact_hides_paths_and_whole_arguments() {
    let (_, spans) = traced_in_root(redacting(query(), "s".into(), "v".into())).await;
    let span = named(&spans, "redacting");
    let q: serde_json::Value =
        serde_json::from_str(&attr_str(span, "flowtrace.input.q").unwrap()).unwrap();
    assert_eq!(q["auth"]["user"], "[REDACTED]");
    assert_eq!(q["text"], "[REDACTED]");
    assert_eq!(q["top_k"], 3);
    assert_eq!(
        attr_str(span, "flowtrace.input.secret_sauce").as_deref(),
        Some("[REDACTED]")
    );
    assert_eq!(
        attr_str(span, "flowtrace.input.visible").as_deref(),
        Some("v")
    );
}

#[traced]
async fn big(text: String) -> usize {
    text.len()
}

#[tokio::test]
async fn values_are_capped_with_a_marker() {
    let (_, spans) = traced_in_root(big("x".repeat(10_000))).await;
    let value = attr_str(named(&spans, "big"), "flowtrace.input.text").unwrap();
    assert!(value.starts_with(&"x".repeat(4096)));
    assert!(
        value.ends_with("…[truncated 5904 bytes]"),
        "{}",
        &value[4090..]
    );
}

#[traced(skip_all, fields(user.id = q.auth.user.clone(), text = %q.text, auth = ?q.auth.pin, "literal.key" = 5))]
async fn with_fields(q: Query) {
    let _ = q;
}

#[tokio::test]
async fn fields_record_expressions_with_sigils() {
    let (_, spans) = traced_in_root(with_fields(query())).await;
    let span = named(&spans, "with_fields");
    assert_eq!(attr_str(span, "user.id").as_deref(), Some("ana"));
    assert_eq!(attr_str(span, "text").as_deref(), Some("rust tracing"));
    assert_eq!(attr_str(span, "auth").as_deref(), Some("1234"));
    assert_eq!(attr(span, "literal.key"), Some(Value::I64(5)));
}

#[traced(ret)]
async fn returns_json() -> Query {
    query()
}

#[traced(ret)]
async fn returns_debug() -> NotSerialize {
    NotSerialize(0)
}

#[traced(ret(Display))]
async fn returns_display() -> u16 {
    404
}

#[traced(ret)]
async fn returns_result(ok: bool) -> Result<u8, String> {
    if ok { Ok(1) } else { Err("bad".into()) }
}

#[tokio::test]
async fn ret_records_the_output() {
    let (_, spans) = traced_in_root(async {
        returns_json().await;
        returns_debug().await;
        returns_display().await;
        let _ = returns_result(true).await;
    })
    .await;
    let json: serde_json::Value =
        serde_json::from_str(&attr_str(named(&spans, "returns_json"), "flowtrace.output").unwrap())
            .unwrap();
    assert_eq!(json["auth"]["password"], "[REDACTED]");
    assert_eq!(
        attr_str(named(&spans, "returns_debug"), "flowtrace.output").as_deref(),
        Some("NotSerialize!")
    );
    assert_eq!(
        attr_str(named(&spans, "returns_display"), "flowtrace.output").as_deref(),
        Some("404")
    );
    assert_eq!(
        attr(named(&spans, "returns_result"), "flowtrace.output"),
        Some(Value::I64(1)),
        "the Ok value"
    );
}

type MyResult<T> = std::result::Result<T, std::io::Error>;

#[traced(err)]
async fn alias_result() -> MyResult<u8> {
    Err(std::io::Error::other("disk full"))
}

#[derive(Debug)]
struct DebugOnly;

#[traced(err(Debug))]
async fn debug_err() -> Result<(), DebugOnly> {
    Err(DebugOnly)
}

#[tokio::test]
async fn err_records_status_and_exception() {
    let (_, spans) = traced_in_root(async {
        let _ = alias_result().await;
        let _ = debug_err().await;
        let _ = returns_result(false).await;
    })
    .await;
    for (name, message, ty) in [
        ("alias_result", "disk full", "std::io::error::Error"),
        ("debug_err", "DebugOnly", "traced_options::DebugOnly"),
        ("returns_result", "bad", "alloc::string::String"),
    ] {
        let span = named(&spans, name);
        assert!(
            matches!(&span.status, Status::Error { description } if description == message),
            "{name}: {:?}",
            span.status
        );
        let event = span
            .events
            .iter()
            .find(|e| e.name == "exception")
            .expect(name);
        let get = |k: &str| {
            event
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(get("exception.message").as_deref(), Some(message), "{name}");
        assert_eq!(get("exception.type").as_deref(), Some(ty), "{name}");
    }
}

const REMOTE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[traced(parent = &carrier)]
async fn with_carrier_parent(carrier: HashMap<String, String>) -> String {
    flowtrace::ctx().trace_id()
}

#[traced(parent = sc.clone())]
async fn with_span_context_parent(sc: SpanContext) -> String {
    flowtrace::ctx().trace_id()
}

#[traced(parent = None::<Context>)]
async fn explicit_root() -> String {
    flowtrace::ctx().trace_id()
}

#[tokio::test]
async fn parent_overrides_the_map() {
    support::in_memory::exporter();
    let carrier = HashMap::from([("traceparent".to_owned(), REMOTE.to_owned())]);
    let (trace, _) = traced_in_root(with_carrier_parent(carrier.clone())).await;
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    let spans = support::in_memory::spans_of(&trace);
    let span = named(&spans, "with_carrier_parent");
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(
        attr_str(span, "flowtrace.input.carrier")
            .unwrap()
            .contains(REMOTE),
        "still captured"
    );

    let sc = flowtrace::propagation::parse_traceparent(REMOTE).unwrap();
    let (trace, _) = traced_in_root(with_span_context_parent(sc)).await;
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");

    let (trace, root_spans) = traced_in_root(explicit_root()).await;
    let run_trace = root_spans
        .iter()
        .find(|s| s.name == "test-root")
        .unwrap()
        .span_context
        .trace_id()
        .to_string();
    assert_ne!(trace, run_trace, "parent = None starts a new trace");
}

#[traced(follows_from = [a.clone(), b.clone()])]
async fn linked(a: SpanContext, b: SpanContext) {}

#[traced(new_trace)]
async fn fresh() -> String {
    flowtrace::ctx().trace_id()
}

#[tokio::test]
async fn follows_from_and_new_trace_make_links() {
    let a = flowtrace::propagation::parse_traceparent(REMOTE).unwrap();
    let b = flowtrace::propagation::parse_traceparent(
        "00-11111111111111111111111111111111-2222222222222222-01",
    )
    .unwrap();
    let (_, spans) = traced_in_root(linked(a.clone(), b.clone())).await;
    let span = named(&spans, "linked");
    let links: Vec<_> = span
        .links
        .iter()
        .map(|l| l.span_context.span_id())
        .collect();
    assert_eq!(links, vec![a.span_id(), b.span_id()]);
    assert_ne!(span.parent_span_id, a.span_id(), "links do not parent");

    let (fresh_trace, spans) = traced_in_root(fresh()).await;
    let root = named(&spans, "test-root");
    assert_ne!(
        fresh_trace,
        root.span_context.trace_id().to_string(),
        "a new trace"
    );
    let fresh_spans = support::in_memory::spans_of(&fresh_trace);
    let span = named(&fresh_spans, "fresh");
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    assert_eq!(
        span.links.links[0].span_context.span_id(),
        root.span_context.span_id(),
        "linked to its would-be parent"
    );
    assert_eq!(
        attr_str(span, "flowtrace.run.id"),
        attr_str(root, "flowtrace.run.id"),
        "still part of the run"
    );
}

static FORMATTED: AtomicUsize = AtomicUsize::new(0);

struct Counting;

impl Serialize for Counting {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FORMATTED.fetch_add(1, Ordering::SeqCst);
        serializer.serialize_str("counted")
    }
}

#[traced(ret, fields(f = Counting))]
async fn counted(c: Counting) -> Counting {
    c
}

#[tokio::test]
async fn nothing_is_formatted_when_the_span_does_not_record() {
    support::in_memory::exporter();
    // A parent-based sampler with an unsampled parent: the task does not record.
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let run = flowtrace::with_runcontext()
        .custom_context([("traceparent", unsampled)])
        .run(async {
            (
                counted(Counting).await,
                flowtrace::current_span().is_recording(),
            )
        })
        .await;
    assert!(!run.output().1);
    assert_eq!(
        FORMATTED.load(Ordering::SeqCst),
        0,
        "no Serialize call for inputs, fields or ret"
    );
    let (_, spans) = traced_in_root(counted(Counting)).await;
    assert_eq!(
        attr_str(named(&spans, "counted"), "f").as_deref(),
        Some("counted")
    );
    assert_eq!(
        FORMATTED.load(Ordering::SeqCst),
        3,
        "sampled: input, field and output formatted once each"
    );
}

#[traced]
async fn uses_current_span() {
    let span = flowtrace::current_span();
    span.set_attribute(opentelemetry::KeyValue::new("k", "v"));
    span.add_event("e", vec![]);
    span.update_name("renamed_inside");
    span.record_exception(&std::io::Error::other("oops"));
    assert!(span.is_recording());
    assert_eq!(
        span.span_context().trace_id().to_string(),
        support::in_memory::current_trace_id()
    );
}

#[tokio::test]
async fn current_span_is_the_task_span() {
    let (_, spans) = traced_in_root(uses_current_span()).await;
    let span = named(&spans, "renamed_inside");
    assert_eq!(attr_str(span, "k").as_deref(), Some("v"));
    assert!(span.events.iter().any(|e| e.name == "e"));
    assert!(matches!(&span.status, Status::Error { description } if description == "oops"));
    let _ = Context::current().span().span_context().is_valid();
}
