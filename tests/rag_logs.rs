//! Logs at a real collector: `tracing` events and `flowtrace::emit_log` inside
//! tasks arrive as OTLP log records carrying the trace and span ids of the
//! task they were emitted in.

mod support;

use flowtrace::{traced, with_runcontext};
use serde_json::json;
use support::{Collector, WAIT, span_named};

#[traced]
async fn retrieve(query: String) -> usize {
    tracing::info!(%query, "retrieving");
    flowtrace::emit_log(json!({"query": query, "hits": 2}));
    2
}

#[traced]
async fn answer() -> usize {
    flowtrace::emit_log_at(tracing::Level::WARN, "reranker skipped");
    retrieve("what is rust?".into()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_carry_the_task_ids() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("rag-logs", &[]);
    let run = with_runcontext().name("logs").run(answer()).await;
    telemetry.force_flush().expect("flush");

    let spans = collector
        .wait_for_trace_async(run.trace_id(), 3, WAIT)
        .await;
    let retrieve = span_named(&spans, "retrieve");
    let answer = span_named(&spans, "answer");
    let records = collector
        .wait_for_logs_async("3 log records", WAIT, |records| records.len() >= 3)
        .await;
    let find = |needle: &str| {
        records
            .iter()
            .find(|r| r.body.contains(needle))
            .unwrap_or_else(|| panic!("a record with {needle:?}: {records:#?}"))
    };

    let event = find("retrieving");
    assert_eq!(
        event.trace_id,
        run.trace_id(),
        "a tracing event: the run's trace"
    );
    assert_eq!(event.span_id, retrieve.span_id, "and the task's span");
    assert_eq!(event.severity_text, "INFO");
    assert_eq!(
        event.attribute("query"),
        Some("what is rust?"),
        "its fields"
    );

    let logged = find("hits");
    assert_eq!(
        logged.body, r#"{"hits":2,"query":"what is rust?"}"#,
        "JSON body"
    );
    assert_eq!(logged.trace_id, run.trace_id());
    assert_eq!(logged.span_id, retrieve.span_id);
    assert_eq!(logged.attribute("flowtrace.run.id"), Some(run.run_id()));
    assert_eq!(logged.attribute("flowtrace.task.name"), Some("retrieve"));

    let warned = find("reranker skipped");
    assert_eq!(warned.severity_text, "WARN");
    assert_eq!(warned.span_id, answer.span_id, "the outer task's span");
    assert_eq!(
        warned.service_name, "rag-logs",
        "the resource is the spans'"
    );

    drop(telemetry);
    let before = collector.logs().len();
    flowtrace::emit_log("after shutdown");
    assert_eq!(
        collector.logs().len(),
        before,
        "nothing is emitted after shutdown"
    );
}
