//! The SDK's in-memory exporter installed as the global provider, for the
//! behaviour tests that assert on exported spans without a collector, and
//! readers of the spans it holds.

use std::sync::OnceLock;

use opentelemetry::trace::{SpanId, TraceContextExt};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

pub fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(flowtrace::RunIdGenerator::default())
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_tracer_provider(provider);
        exporter
    })
}

/// Runs `body` inside a new root span and returns the spans of its trace.
pub async fn traced_in_root<F: std::future::Future>(body: F) -> (F::Output, Vec<SpanData>) {
    exporter();
    let run = flowtrace::with_runcontext()
        .name("test-root")
        .run(body)
        .await;
    let spans = spans_of(run.trace_id());
    (run.into_output(), spans)
}

pub fn spans_of(trace_id: &str) -> Vec<SpanData> {
    exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect()
}

pub fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one span `{name}` in {:#?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

pub fn attr(span: &SpanData, key: &str) -> Option<opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

pub fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.to_string())
}

pub fn parent_of<'a>(spans: &'a [SpanData], span: &SpanData) -> Option<&'a SpanData> {
    if span.parent_span_id == SpanId::INVALID {
        return None;
    }
    spans
        .iter()
        .find(|s| s.span_context.span_id() == span.parent_span_id)
}

pub fn current_trace_id() -> String {
    opentelemetry::Context::current()
        .span()
        .span_context()
        .trace_id()
        .to_string()
}
