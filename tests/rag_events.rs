//! Typed pipeline events at a real collector: each kind's attributes on its
//! task span (GenAI semantic conventions where they exist, `flowtrace.rag.*`
//! otherwise), its summary span event, and the trace-level event on the
//! run's root.

mod support;

use flowtrace::event::{
    self, Chunk, Chunking, Custom, Document, Embedding, Query, QueryRewrite, Rerank, Retrieval,
    RetrievedChunk, ToolCall,
};
use flowtrace::{traced, with_runcontext};
use serde_json::json;
use support::{Collector, Span, WAIT, span_named};

#[traced]
async fn chunk() {
    event::span(Chunking {
        document: Document::new("doc-1", "Rust is fast. Rust is safe."),
        chunks: vec![
            Chunk::new("doc-1#0", "Rust is fast."),
            Chunk::new("doc-1#1", "Rust is safe."),
        ],
    });
}

#[traced]
async fn embed() {
    event::span(Embedding {
        model: "stand-in-embedder".into(),
        inputs: vec!["Rust is fast.".into(), "Rust is safe.".into()],
        dimensions: 8,
        ..Default::default()
    });
}

#[traced]
async fn rewrite() {
    event::span(QueryRewrite {
        query: "is rust quick".into(),
        rewritten: "rust performance".into(),
    });
}

fn hits() -> Vec<RetrievedChunk> {
    vec![
        RetrievedChunk::new("doc-1#0", "Rust is fast.", 0.9),
        RetrievedChunk::new("doc-1#1", "Rust is safe.", 0.4),
    ]
}

#[traced]
async fn retrieve() {
    event::span(Retrieval {
        query: "rust performance".into(),
        retrieved: hits(),
        data_source: Some("docs-index".into()),
    });
}

#[traced]
async fn rerank() {
    event::span(Rerank {
        query: "rust performance".into(),
        model: Some("stand-in-reranker".into()),
        input: hits(),
        output: hits()[..1].to_vec(),
        ..Default::default()
    });
}

#[traced]
async fn call_tool() {
    event::span(ToolCall {
        name: "calculator".into(),
        call_id: Some("call-1".into()),
        arguments: json!({"expression": "2+2", "api_key": "k"}),
        result: json!(4),
    });
}

#[traced]
async fn generate() {
    event::span(Query {
        query: "is rust quick".into(),
        response: "Yes: Rust is fast.".into(),
        system_prompt: Some("Answer from the context.".into()),
        model: Some("stand-in-llm".into()),
        ..Default::default()
    });
}

#[traced]
async fn custom() {
    event::span(Custom {
        name: "guardrail".into(),
        data: json!({"passed": true}),
    });
}

#[traced]
async fn pipeline() {
    chunk().await;
    embed().await;
    rewrite().await;
    retrieve().await;
    rerank().await;
    call_tool().await;
    generate().await;
    custom().await;
    event::trace(
        "is rust quick",
        "Yes: Rust is fast.",
        json!({"user": "u-1"}),
    )
    .expect("trace event");
}

fn check(spans: &[Span], task: &str, kind: &str, expected: &[(&str, &str)]) {
    let span = span_named(spans, task);
    assert_eq!(
        span.attr("flowtrace.rag.event"),
        Some(kind),
        "{task}: the kind"
    );
    for (key, value) in expected {
        assert_eq!(span.attr(key), Some(*value), "{task}: {key}");
    }
    assert!(
        span.event(&format!("flowtrace.rag.{kind}")).is_some(),
        "{task}: a summary span event: {:?}",
        span.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_kind_records_its_attributes() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("rag-events", &[]);
    let run = with_runcontext().name("events").run(pipeline()).await;
    telemetry.force_flush().expect("flush");
    let spans = collector
        .wait_for_trace_async(run.trace_id(), 10, WAIT)
        .await;

    check(
        &spans,
        "chunk",
        "chunking",
        &[
            ("flowtrace.rag.document.id", "doc-1"),
            ("flowtrace.rag.chunk.count", "2"),
            (
                "flowtrace.rag.chunks",
                r#"[{"id":"doc-1#0","text":"Rust is fast."},{"id":"doc-1#1","text":"Rust is safe."}]"#,
            ),
        ],
    );
    check(
        &spans,
        "embed",
        "embedding",
        &[
            ("gen_ai.operation.name", "embeddings"),
            ("gen_ai.request.model", "stand-in-embedder"),
            ("gen_ai.embeddings.dimension.count", "8"),
            ("flowtrace.rag.embedding.count", "2"),
        ],
    );
    check(
        &spans,
        "rewrite",
        "query_rewrite",
        &[
            ("flowtrace.rag.query", "is rust quick"),
            ("flowtrace.rag.rewritten_query", "rust performance"),
        ],
    );
    check(
        &spans,
        "retrieve",
        "retrieval",
        &[
            ("gen_ai.operation.name", "retrieval"),
            ("gen_ai.retrieval.query.text", "rust performance"),
            ("gen_ai.data_source.id", "docs-index"),
            ("flowtrace.rag.retrieved.count", "2"),
            (
                "gen_ai.retrieval.documents",
                r#"[{"content":"Rust is fast.","id":"doc-1#0","score":0.9},{"content":"Rust is safe.","id":"doc-1#1","score":0.4}]"#,
            ),
        ],
    );
    check(
        &spans,
        "rerank",
        "rerank",
        &[
            ("flowtrace.rag.rerank.model", "stand-in-reranker"),
            ("flowtrace.rag.rerank.input.count", "2"),
            ("flowtrace.rag.rerank.output.count", "1"),
        ],
    );
    check(
        &spans,
        "call_tool",
        "tool_call",
        &[
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", "calculator"),
            ("gen_ai.tool.call.id", "call-1"),
            (
                "gen_ai.tool.call.arguments",
                r#"{"api_key":"[REDACTED]","expression":"2+2"}"#,
            ),
            ("gen_ai.tool.call.result", "4"),
        ],
    );
    check(
        &spans,
        "generate",
        "query",
        &[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.request.model", "stand-in-llm"),
            (
                "gen_ai.system_instructions",
                r#"[{"content":"Answer from the context.","type":"text"}]"#,
            ),
            (
                "gen_ai.input.messages",
                r#"[{"parts":[{"content":"is rust quick","type":"text"}],"role":"user"}]"#,
            ),
            ("flowtrace.rag.response", "Yes: Rust is fast."),
        ],
    );
    check(
        &spans,
        "custom",
        "custom",
        &[
            ("flowtrace.rag.custom.name", "guardrail"),
            ("flowtrace.rag.custom.data", r#"{"passed":true}"#),
        ],
    );

    let root = span_named(&spans, "events");
    assert!(root.is_root());
    assert_eq!(root.attr("flowtrace.trace.input"), Some("is rust quick"));
    assert_eq!(
        root.attr("flowtrace.trace.output"),
        Some("Yes: Rust is fast.")
    );
    assert_eq!(
        root.attr("flowtrace.trace.metadata"),
        Some(r#"{"user":"u-1"}"#)
    );
}
