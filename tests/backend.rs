//! Which provider a run's tasks use: looked up once when the run starts, so
//! a provider installed with `opentelemetry::global` is honoured from the
//! next run on, and telling providers apart exports nothing.

use flowtrace::{traced, with_runcontext};
use opentelemetry::trace::noop::NoopTracerProvider;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};

#[traced]
async fn leaf() -> String {
    flowtrace::ctx().span_id()
}

#[traced]
async fn parent() -> (String, String) {
    (flowtrace::ctx().span_id(), leaf().await)
}

fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

fn names(exporter: &InMemorySpanExporter) -> Vec<String> {
    let mut names: Vec<String> = exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|s| s.name.into_owned())
        .collect();
    names.sort();
    names
}

// One test: the global provider is process-wide.
#[tokio::test]
async fn each_run_uses_the_provider_installed_when_it_starts() {
    let (first, first_spans) = provider();
    let (second, second_spans) = provider();

    opentelemetry::global::set_tracer_provider(first.clone());
    let run = with_runcontext().name("one").run(parent()).await;
    assert_eq!(
        names(&first_spans),
        ["leaf", "one", "parent"],
        "a provider set on global directly; nothing else is exported (no probe span)"
    );
    let (parent_id, leaf_id) = run.output();
    assert_ne!(parent_id, leaf_id, "each task has its own span");

    opentelemetry::global::set_tracer_provider(second.clone());
    with_runcontext().name("two").run(parent()).await;
    assert_eq!(
        names(&second_spans),
        ["leaf", "parent", "two"],
        "the next run sees the new provider"
    );
    assert_eq!(
        names(&first_spans).len(),
        3,
        "and the first one gets nothing more"
    );

    opentelemetry::global::set_tracer_provider(NoopTracerProvider::new());
    let run = with_runcontext().run(parent()).await;
    assert_eq!(run.trace_id(), "00000000000000000000000000000000");
    assert_eq!(
        run.output(),
        &(String::new(), String::new()),
        "no provider: no spans"
    );

    // Installed through flowtrace with a parent-based sampler: an unsampled
    // carrier records nothing, a sampled one records every task.
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    flowtrace::set_tracer_provider(first.clone(), &sampler);
    first_spans.reset();
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let run = with_runcontext()
        .custom_context([("traceparent", unsampled)])
        .run(parent())
        .await;
    assert!(
        names(&first_spans).is_empty(),
        "unsampled: nothing recorded"
    );
    assert_eq!(
        run.output(),
        &("00f067aa0ba902b7".to_owned(), "00f067aa0ba902b7".to_owned()),
        "a task that starts no span reports its parent's span id"
    );
    with_runcontext().name("three").run(parent()).await;
    assert_eq!(names(&first_spans), ["leaf", "parent", "three"]);

    let _ = first.shutdown();
    let _ = second.shutdown();
}
