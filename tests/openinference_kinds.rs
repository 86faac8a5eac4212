//! OpenInference kinds and values at a real collector, as a backend that
//! reads the first value of a key would see them: every span of a run has
//! exactly one `openinference.span.kind` (a typed event's, else `CHAIN`),
//! plain tasks carry `input.value` / `output.value` from their captured
//! arguments and return value, and the session keys of the run's map are on
//! every span — also in a run another process started from the carrier.

mod support;

use std::collections::HashMap;

use flowtrace::event::{self, Agent, Custom, Retrieval, RetrievedChunk};
use flowtrace::{traced, with_runcontext};
use serde_json::json;
use support::{Collector, Span, WAIT, span_named};

#[traced]
async fn retrieve(query: String) -> usize {
    event::span(Retrieval {
        query,
        retrieved: vec![RetrievedChunk::new("doc-1#0", "Rust is fast.", 0.9)],
        ..Default::default()
    });
    1
}

#[traced(ret)]
async fn plain(query: String, top_k: u64) -> Vec<String> {
    vec![format!("{query}/{top_k}")]
}

#[traced]
async fn guard() {
    event::span(Custom {
        name: "guardrail".into(),
        data: json!({"passed": true}),
    });
}

#[traced]
async fn agent() -> HashMap<String, String> {
    event::span(Agent {
        name: "helper".into(),
        description: None,
    });
    retrieve("what is rust?".into()).await;
    plain("rust".into(), 3).await;
    guard().await;
    // What a process boundary carries: the map, as strings.
    flowtrace::ctx().custom_context().into()
}

#[traced]
async fn downstream() {
    plain("elsewhere".into(), 1).await;
}

fn kinds(span: &Span) -> Vec<&str> {
    span.attributes
        .iter()
        .filter(|(k, _)| k == "openinference.span.kind")
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_kind_per_span_and_the_session_on_every_span() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("openinference-kinds", &[]);
    let session = [
        ("session.id", "s-42"),
        ("user.id", "u-7"),
        ("tag.tags", "beta, rag"),
        ("metadata", r#"{"tier":"free"}"#),
    ];
    let run = with_runcontext()
        .name("pipeline")
        .custom_context(session)
        .run(agent())
        .await;
    let carrier = run.output().clone();
    // Another process continues from the carrier: a run of its own there.
    let continued = with_runcontext()
        .name("continued")
        .custom_context(carrier)
        .run(downstream())
        .await;
    assert_eq!(continued.trace_id(), run.trace_id());
    telemetry.force_flush().expect("flush");

    let spans = collector
        .wait_for_trace_async(run.trace_id(), 7, WAIT)
        .await;
    for (name, kind) in [
        ("pipeline", "CHAIN"),
        ("agent", "AGENT"),
        ("retrieve", "RETRIEVER"),
        ("guard", "CHAIN"),
        ("downstream", "CHAIN"),
    ] {
        assert_eq!(
            kinds(span_named(&spans, name)),
            [kind],
            "{name}: one kind, the step's"
        );
    }
    for plain in spans.iter().filter(|s| s.name == "plain") {
        assert_eq!(kinds(plain), ["CHAIN"]);
    }
    for span in &spans {
        let once = |key: &str| span.attributes.iter().filter(|(k, _)| k == key).count();
        for key in ["input.value", "gen_ai.operation.name", "session.id"] {
            assert!(
                once(key) <= 1,
                "{}: {key} once: {:?}",
                span.name,
                span.attributes
            );
        }
        assert_eq!(span.attr("session.id"), Some("s-42"), "{}", span.name);
        assert_eq!(span.attr("gen_ai.conversation.id"), Some("s-42"));
        assert_eq!(span.attr("user.id"), Some("u-7"), "{}", span.name);
        assert_eq!(
            span.attr("tag.tags"),
            Some(r#"["beta","rag"]"#),
            "{}",
            span.name
        );
        assert_eq!(span.attr("metadata"), Some(r#"{"tier":"free"}"#));
    }

    let agent = span_named(&spans, "agent");
    assert_eq!(agent.attr("gen_ai.operation.name"), Some("invoke_agent"));
    assert_eq!(agent.attr("gen_ai.agent.name"), Some("helper"));
    let root = span_named(&spans, "pipeline");
    assert_eq!(root.attr("gen_ai.operation.name"), Some("invoke_workflow"));
    assert_eq!(root.attr("gen_ai.workflow.name"), Some("pipeline"));

    // Captured arguments and return value, as OpenInference values.
    let plain = spans
        .iter()
        .find(|s| s.name == "plain" && s.attr("flowtrace.input.query") == Some("rust"))
        .expect("plain");
    assert_eq!(
        plain.attr("input.value"),
        Some(r#"{"query":"rust","top_k":3}"#)
    );
    assert_eq!(plain.attr("input.mime_type"), Some("application/json"));
    assert_eq!(plain.attr("output.value"), Some(r#"["rust/3"]"#));
    assert_eq!(plain.attr("output.mime_type"), Some("application/json"));
    let retrieve = span_named(&spans, "retrieve");
    assert_eq!(retrieve.attr("input.value"), Some("what is rust?"));
    assert_eq!(retrieve.attr("input.mime_type"), Some("text/plain"));
    assert_eq!(
        retrieve.attr("retrieval.documents.0.document.id"),
        Some("doc-1#0")
    );
}
