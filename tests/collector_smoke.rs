//! Proves the real-collector harness in `tests/support/` with nothing of
//! flowtrace: the plain OpenTelemetry SDK exports through rotel (gRPC and
//! HTTP/protobuf) to the test receiver, a Python SDK process hands its trace to
//! a child through `TRACEPARENT`, and the OTLP/JSON reader agrees with the
//! receiver on the encoding opentelemetry-proto writes.

mod support;

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use support::{Collector, WAIT, parse_otlp_json_line, span_named};

/// The simple processor exports as each span ends, with `futures`'
/// `block_on` on the ending thread: the test runtime needs a second worker
/// to drive the exporter's I/O meanwhile.
fn provider(exporter: SpanExporter, service: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service.to_owned())
                .build(),
        )
        .with_simple_exporter(exporter)
        .build()
}

struct Ids {
    trace: String,
    parent: String,
    child: String,
}

/// A server span `smoke-parent` with a child `smoke-child` that carries
/// attributes, an event and an error status.
fn parent_and_child(provider: &SdkTracerProvider) -> Ids {
    let tracer = provider.tracer("collector-smoke");
    let parent = tracer
        .span_builder("smoke-parent")
        .with_kind(SpanKind::Server)
        .start(&tracer);
    let cx = Context::current_with_span(parent);
    let mut child = tracer
        .span_builder("smoke-child")
        .with_attributes([
            KeyValue::new("smoke.int", 7),
            KeyValue::new("smoke.str", "x"),
            KeyValue::new("smoke.double", 1.5),
        ])
        .start_with_context(&tracer, &cx);
    child.add_event("smoke-event", vec![KeyValue::new("smoke.flag", true)]);
    child.set_status(Status::error("boom"));
    let ids = Ids {
        trace: cx.span().span_context().trace_id().to_string(),
        parent: cx.span().span_context().span_id().to_string(),
        child: child.span_context().span_id().to_string(),
    };
    child.end();
    cx.span().end();
    ids
}

async fn assert_arrived(collector: &Collector, ids: &Ids, service: &str) {
    let spans = collector.wait_for_trace_async(&ids.trace, 2, WAIT).await;
    assert_eq!(spans.len(), 2, "spans: {}", support::summary(&spans));

    let parent = span_named(&spans, "smoke-parent");
    assert_eq!(parent.span_id, ids.parent);
    assert!(
        parent.is_root(),
        "parent has parent {}",
        parent.parent_span_id
    );
    assert_eq!(parent.kind, support::SpanKind::Server);
    assert_eq!(parent.service_name, service);
    assert_eq!(parent.scope, "collector-smoke");

    let child = span_named(&spans, "smoke-child");
    assert_eq!(child.span_id, ids.child);
    assert_eq!(child.parent_span_id, ids.parent);
    assert_eq!(child.kind, support::SpanKind::Internal);
    assert_eq!(child.service_name, service);
    assert_eq!(child.attr("smoke.int"), Some("7"));
    assert_eq!(child.attr("smoke.str"), Some("x"));
    assert_eq!(child.attr("smoke.double"), Some("1.5"));
    assert_eq!(child.status_code, support::StatusCode::Error);
    assert_eq!(child.status_message, "boom");
    let event = child.event("smoke-event").expect("child has smoke-event");
    assert_eq!(event.attr("smoke.flag"), Some("true"));
    assert!(child.start_unix_nano > 0 && child.end_unix_nano >= child.start_unix_nano);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_export_reaches_the_receiver_through_rotel() {
    let collector = Collector::start();
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(collector.grpc_endpoint())
        .build()
        .expect("gRPC exporter");
    let provider = provider(exporter, "smoke-grpc");
    let ids = parent_and_child(&provider);
    provider.shutdown().expect("provider shutdown");
    assert_arrived(&collector, &ids, "smoke-grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_protobuf_export_reaches_the_receiver_through_rotel() {
    let collector = Collector::start();
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(collector.http_traces_endpoint())
        .build()
        .expect("HTTP exporter");
    let provider = provider(exporter, "smoke-http");
    let ids = parent_and_child(&provider);
    provider.shutdown().expect("provider shutdown");
    assert_arrived(&collector, &ids, "smoke-http").await;
}

#[test]
fn python_parent_span_reaches_the_receiver_and_its_child_gets_traceparent() {
    let collector = Collector::start();
    // Prints only the two variables, not the whole environment, into the
    // test's output.
    let child = ["sh", "-c", "echo \"TRACEPARENT=$TRACEPARENT\""];
    let parent = support::run_python_parent(&collector.http_endpoint(), &child, &[]);

    // Flags are 01 (sampled), or 03 from an SDK that also sets the W3C
    // Trace Context level 2 "random trace id" bit, as Python's 1.45 does.
    let traceparent = format!("TRACEPARENT=00-{}-{}-", parent.trace_id, parent.span_id);
    let flags = parent
        .child_stdout
        .lines()
        .find_map(|l| l.strip_prefix(&traceparent))
        .unwrap_or_else(|| panic!("child did not get {traceparent}..: {}", parent.child_stdout));
    let flags = u8::from_str_radix(flags, 16).expect("traceparent flags are 2 hex digits");
    assert_eq!(flags & 1, 1, "sampled flag not set: {flags:02x}");

    let spans = collector.wait_for_trace(&parent.trace_id, 1, WAIT);
    let span = span_named(&spans, "python-parent");
    assert_eq!(span.span_id, parent.span_id);
    assert!(span.is_root());
    assert_eq!(span.service_name, "python-parent");
    assert_eq!(span.attr("process.exit.code"), Some("0"));
    let args: Vec<String> =
        serde_json::from_str(span.attr("process.command_args").unwrap_or("null"))
            .expect("process.command_args is a string array");
    assert_eq!(args, child);
}

/// The OTLP/JSON reader against what opentelemetry-proto's serde writes (the
/// file exporter's encoding), on a request that really crossed the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_reader_agrees_with_the_receiver() {
    let receiver = support::Receiver::start();
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.endpoint())
        .build()
        .expect("gRPC exporter");
    let provider = provider(exporter, "smoke-json");
    let ids = parent_and_child(&provider);
    provider.shutdown().expect("provider shutdown");
    receiver.wait_for_trace_async(&ids.trace, 2, WAIT).await;

    for request in receiver.requests() {
        let line = serde_json::to_string(&request).expect("serialize request");
        let from_json = parse_otlp_json_line(&line).unwrap_or_else(|e| panic!("{e}\n{line}"));
        assert_eq!(
            from_json,
            support::span::from_request(&request),
            "line: {line}"
        );
    }
}

#[test]
fn otlp_json_reader_rejects_what_otlp_json_forbids() {
    let span = |fields: &str| {
        format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{fields}}}]}}]}}]}}"#)
    };
    let ids = r#""traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331""#;
    let good = span(&format!(
        r#"{ids},"name":"n","kind":2,"startTimeUnixNano":"1","attributes":[{{"key":"k","value":{{"intValue":"5"}}}}]"#
    ));
    let parsed = parse_otlp_json_line(&good).expect("valid line");
    assert_eq!(parsed[0].kind, support::SpanKind::Server);
    assert_eq!(parsed[0].attr("k"), Some("5"));

    for (fields, reason, field) in [
        (
            r#""traceId":"CvdlGRbWQ92ESOshHIAxnA==","spanId":"b7ad6b7169203331""#,
            "trace id in base64 instead of hex",
            ".traceId:",
        ),
        (
            r#""traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b71""#,
            "span id too short",
            ".spanId:",
        ),
        (
            &format!(r#"{ids},"kind":"SPAN_KIND_SERVER""#),
            "kind as the enum's name",
            ".kind:",
        ),
        (
            &format!(r#"{ids},"startTimeUnixNano":1"#),
            "a 64-bit time as a number",
            ".startTimeUnixNano:",
        ),
        (
            &format!(r#"{ids},"attributes":[{{"key":"k","value":{{"intValue":5}}}}]"#),
            "intValue as a number",
            ".intValue:",
        ),
        (
            &format!(r#"{ids},"status":{{"code":"STATUS_CODE_ERROR"}}"#),
            "status code as a name",
            ".status.code:",
        ),
    ] {
        let line = span(fields);
        match parse_otlp_json_line(&line) {
            Ok(spans) => panic!("accepted {reason}: {line} -> {spans:?}"),
            Err(e) => assert!(
                e.contains(field),
                "{reason}: error {e:?} does not name {field}"
            ),
        }
    }
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, want) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(
            support::span::base64(input.as_bytes()),
            want,
            "base64 of {input:?}"
        );
    }
}
