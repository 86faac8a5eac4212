//! Feedback whose target trace id the provider does not honour (its id
//! generator ignores flowtrace's): refused with `TraceIdNotHonoured`, and
//! nothing lands in the wrong trace — the span is never exported.

use flowtrace::feedback::{self, FeedbackError};
use flowtrace::with_runcontext;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};

// One test: the provider is process-wide.
#[tokio::test]
async fn refused_feedback_exports_nothing() {
    let exporter = InMemorySpanExporter::default();
    // The SDK's random ids: the feedback span's trace id is not the target's.
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    flowtrace::set_tracer_provider(provider.clone(), &Sampler::AlwaysOn);

    let run = with_runcontext()
        .name("answer")
        .run(async { flowtrace::ctx().span_id() })
        .await;
    let trace = run.trace_id().to_owned();
    exporter.reset();

    let err = feedback::binary(trace.as_str(), true).expect_err("the trace id is not honoured");
    assert!(
        matches!(err, FeedbackError::TraceIdNotHonoured { wanted, .. } if wanted.to_string() == trace),
        "{err}"
    );
    provider.force_flush().expect("flush");
    let exported = exporter.get_finished_spans().expect("spans");
    assert!(
        exported.is_empty(),
        "a refused feedback reaches no exporter, in no trace: {exported:#?}"
    );

    // With the root span id the trace is the parent's: accepted, exported.
    let target = format!("00-{trace}-{}-01", run.output());
    let sc = feedback::binary(target.as_str(), true).expect("with the root");
    provider.force_flush().expect("flush");
    let exported = exporter.get_finished_spans().expect("spans");
    assert_eq!(exported.len(), 1, "{exported:#?}");
    assert_eq!(exported[0].span_context.trace_id(), sc.trace_id());
    assert_eq!(sc.trace_id().to_string(), trace);
}
