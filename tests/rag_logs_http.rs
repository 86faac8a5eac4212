//! Logs over OTLP/HTTP at a real collector: `tracing` events and
//! `flowtrace::emit_log` inside tasks arrive through `POST /v1/logs` with the
//! task's trace and span ids, and feedback's `gen_ai.evaluation.result`
//! event arrives as a log record in the context of the span it judges.

mod support;

use flowtrace::feedback::{self, Evaluation, Target};
use flowtrace::{traced, with_runcontext};
use flowtrace_telemetry::{ExporterKind, Protocol};
use serde_json::json;
use support::{Collector, WAIT, span_named};

#[traced]
async fn retrieve(query: String) -> usize {
    tracing::info!(%query, "retrieving");
    flowtrace::emit_log(json!({"query": query, "hits": 2}));
    2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_and_evaluation_events_arrive_over_http() {
    let collector = Collector::start();
    let telemetry = flowtrace_telemetry::builder()
        .env_vars([
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "50"),
        ])
        .exporter(ExporterKind::Otlp)
        .otlp_protocol(Protocol::HttpProtobuf)
        .otlp_endpoint(collector.http_endpoint())
        .service_name("rag-logs-http")
        .strict(true)
        .init()
        .expect("telemetry over OTLP/HTTP");

    let run = with_runcontext()
        .name("logs")
        .run(async {
            let root = flowtrace::ctx().span_id();
            retrieve("what is rust?".into()).await;
            root
        })
        .await;
    let root = run.output().clone();
    let target = Target::parse(run.trace_id())
        .and_then(|t| t.with_root_hex(&root))
        .expect("target");
    let judged = Evaluation::new("relevance")
        .score(0.5)
        .label("partial")
        .explanation("one of two chunks");
    feedback::evaluation(target, judged).expect("evaluation");
    telemetry.force_flush().expect("flush");

    let spans = collector
        .wait_for_trace_async(run.trace_id(), 3, WAIT)
        .await;
    let retrieve = span_named(&spans, "retrieve");
    let records = collector
        .wait_for_logs_async("3 log records over HTTP", WAIT, |r| r.len() >= 3)
        .await;
    let find = |needle: &str| {
        records
            .iter()
            .find(|r| r.body.contains(needle))
            .unwrap_or_else(|| panic!("a record with {needle:?}: {records:#?}"))
    };
    let event = find("retrieving");
    assert_eq!(event.trace_id, run.trace_id());
    assert_eq!(event.span_id, retrieve.span_id, "the task's span");
    assert_eq!(event.attribute("query"), Some("what is rust?"));
    assert_eq!(event.service_name, "rag-logs-http");
    let logged = find("hits");
    assert_eq!(logged.span_id, retrieve.span_id);
    assert_eq!(logged.attribute("flowtrace.run.id"), Some(run.run_id()));

    let evaluation = records
        .iter()
        .find(|r| r.event_name == "gen_ai.evaluation.result")
        .unwrap_or_else(|| panic!("the evaluation event: {records:#?}"));
    assert_eq!(evaluation.trace_id, run.trace_id());
    assert_eq!(
        evaluation.span_id, root,
        "in the context of the judged root"
    );
    assert_eq!(
        evaluation.attribute("gen_ai.evaluation.name"),
        Some("relevance")
    );
    assert_eq!(
        evaluation.attribute("gen_ai.evaluation.score.value"),
        Some("0.5")
    );
    assert_eq!(
        evaluation.attribute("gen_ai.evaluation.score.label"),
        Some("partial")
    );
    assert_eq!(
        evaluation.attribute("gen_ai.evaluation.explanation"),
        Some("one of two chunks")
    );
    // And as a span event on the feedback span, a child of the root.
    let feedback = span_named(&spans, "feedback");
    assert_eq!(feedback.parent_span_id, root);
    assert_eq!(feedback.attr("openinference.span.kind"), Some("EVALUATOR"));
    assert!(
        feedback.event("gen_ai.evaluation.result").is_some(),
        "{feedback:#?}"
    );
    drop(telemetry);
}
