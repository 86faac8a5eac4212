//! A task whose span the sampler would drop, with a provider flowtrace
//! knows the sampler of: it starts no span at all, and wherever it is first
//! polled it runs under its caller's parent, exactly (the carrier's span),
//! so OpenTelemetry code inside it propagates the caller's parent and its
//! decision not to sample.

use flowtrace::traced;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};

const UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

#[traced(skip_all)]
async fn current_span() -> String {
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        format!("{}-{}-{}", sc.trace_id(), sc.span_id(), sc.is_sampled())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_starts_no_span_runs_under_its_callers_parent_wherever_it_is_polled() {
    let exporter = InMemorySpanExporter::default();
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler.clone())
        .with_simple_exporter(exporter.clone())
        .build();
    flowtrace::set_tracer_provider(provider.clone(), &sampler);

    let run = flowtrace::with_runcontext()
        .custom_context([("traceparent", UNSAMPLED)])
        .run(async {
            let here = current_span().await;
            let spawned = tokio::spawn(current_span()).await.unwrap();
            let called_then_spawned = {
                let child = current_span();
                tokio::spawn(child).await.unwrap()
            };
            (here, spawned, called_then_spawned)
        })
        .await;
    let carrier = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-false".to_owned();
    assert_eq!(
        run.output(),
        &(carrier.clone(), carrier.clone(), carrier),
        "awaited in place, and first polled on another tokio task"
    );
    provider.force_flush().unwrap();
    assert!(
        exporter.get_finished_spans().unwrap().is_empty(),
        "no span was started"
    );
}
