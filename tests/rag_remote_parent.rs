//! Pipeline telemetry in a run that continues a remote parent (a carrier
//! brought a `traceparent`, so the run opens no root span of its own): the
//! trace-level event lands on the calling task's span, and a parameter
//! registered mid-task reaches every task started after it, and no task
//! started before it.

use flowtrace::{event, params, traced, with_runcontext};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};
use serde_json::json;

const PARENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[traced]
async fn step(i: u64) -> u64 {
    tokio::task::yield_now().await;
    i
}

#[traced]
async fn answer(question: String) -> String {
    let response = format!("answer to {question}");
    event::trace(&question, &response, json!({"user": "u-1"})).expect("trace event");
    response
}

#[traced]
async fn register_then_fan_out() -> u64 {
    let before = step(1).await;
    tokio::task::yield_now().await;
    // Mid-task, after an await and after a child already ran.
    params::top_k(7).expect("top_k");
    let (a, b) = tokio::join!(step(2), flowtrace::spawn(step(3)));
    before + a + b.expect("spawned")
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

// One test: the provider is process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_event_and_mid_task_parameters_under_a_remote_parent() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    flowtrace::set_tracer_provider(provider.clone(), &Sampler::AlwaysOn);
    let traceparent = format!("00-{PARENT_TRACE}-00f067aa0ba902b7-01");

    let run = with_runcontext()
        .name("continued")
        .custom_context([("traceparent", traceparent.as_str())])
        .run(async {
            let response = answer("what is rust?".into()).await;
            let sum = register_then_fan_out().await;
            let after = step(4).await;
            (response, sum + after)
        })
        .await;
    assert_eq!(run.trace_id(), PARENT_TRACE, "the run continues the parent");
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    assert!(
        spans.iter().all(|s| s.name != "continued"),
        "no root span of its own"
    );

    let answer = spans.iter().find(|s| s.name == "answer").expect("answer");
    assert_eq!(
        attr(answer, "flowtrace.trace.input"),
        Some(Value::from("what is rust?")),
        "the trace event lands on the calling task's span"
    );
    assert_eq!(
        attr(answer, "flowtrace.trace.output"),
        Some(Value::from("answer to what is rust?"))
    );
    assert_eq!(
        attr(answer, "input.value"),
        Some(Value::from("what is rust?"))
    );
    assert_eq!(
        attr(answer, "flowtrace.trace.metadata"),
        Some(Value::from(r#"{"user":"u-1"}"#))
    );

    let top_k = |i: i64| {
        let span = spans
            .iter()
            .find(|s| s.name == "step" && attr(s, "flowtrace.input.i") == Some(Value::I64(i)))
            .unwrap_or_else(|| panic!("step {i}: {spans:#?}"));
        attr(span, "flowtrace.param.top_k")
    };
    assert_eq!(top_k(1), None, "a task started before the registration");
    for i in [2, 3, 4] {
        assert_eq!(
            top_k(i),
            Some(Value::I64(7)),
            "step {i}, started after the registration (a child, a spawned child, a later sibling)"
        );
    }
    let registering = spans
        .iter()
        .find(|s| s.name == "register_then_fan_out")
        .expect("the registering task");
    assert_eq!(
        attr(registering, "flowtrace.param.top_k"),
        Some(Value::I64(7)),
        "and the registering task's own span"
    );
}
