//! flowtrace inside the test process, exporting over OTLP gRPC to a real
//! collector (rotel): `#[instrument]` spans and `tracing` events nest under
//! task spans, and a thousand concurrent runs arrive as a thousand separate
//! traces with no map entry crossing between them.

mod support;

use std::collections::{HashMap, HashSet};

use flowtrace::{ctx, traced, with_runcontext};
use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt;
use support::{Collector, Span, span_named};

const RUNS: usize = 1000;

/// Records the map entry this task sees on its own span.
fn record_seen() -> String {
    let seen = ctx().custom_context().get("i").unwrap_or("none").to_owned();
    opentelemetry::Context::current()
        .span()
        .set_attribute(KeyValue::new("test.seen", seen.clone()));
    seen
}

#[tracing::instrument]
async fn helper(i: usize) {
    tracing::info!(i, "inside instrument");
}

#[traced]
async fn leaf() -> String {
    tokio::task::yield_now().await;
    record_seen()
}

#[traced]
async fn branch(i: usize) -> Vec<String> {
    record_seen();
    tracing::info!(i, "branching");
    helper(i).await;
    let spawned = flowtrace::spawn(leaf());
    let (a, b) = tokio::join!(leaf(), spawned);
    vec![a, b.expect("spawned leaf")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_runs_arrive_as_separate_connected_traces() {
    let collector = Collector::start();
    let telemetry =
        collector.grpc_telemetry("collector-test", &[("OTEL_BSP_MAX_QUEUE_SIZE", "32768")]);

    let runs = (0..RUNS).map(|i| {
        tokio::spawn(
            with_runcontext()
                .name("isolation")
                .custom_context([("i", i.to_string())])
                .run(branch(i)),
        )
    });
    let runs = futures::future::try_join_all(runs).await.unwrap();
    telemetry.shutdown().expect("flushed");

    // Per run: run span, branch, helper (#[instrument]), 2 × leaf.
    let spans = tokio::task::spawn_blocking(move || {
        collector.wait_for("every span of every run", support::WAIT, |spans| {
            spans.len() >= RUNS * 5
        })
    })
    .await
    .unwrap();
    assert_eq!(spans.len(), RUNS * 5, "no span lost or duplicated");

    let mut by_trace: HashMap<&str, Vec<Span>> = HashMap::new();
    for span in &spans {
        by_trace
            .entry(&span.trace_id)
            .or_default()
            .push(span.clone());
    }
    assert_eq!(by_trace.len(), RUNS, "one trace per run");
    let mut run_ids = HashSet::new();
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run.output(), &vec![i.to_string(), i.to_string()]);
        let trace = &by_trace[run.trace_id()];
        let root = span_named(trace, "isolation");
        let branch = span_named(trace, "branch");
        let helper = span_named(trace, "helper");
        assert!(root.is_root());
        assert_eq!(branch.parent_span_id, root.span_id);
        assert_eq!(
            helper.parent_span_id, branch.span_id,
            "#[instrument] nests under the task"
        );
        assert!(helper.event("inside instrument").is_some());
        assert!(
            branch.event("branching").is_some(),
            "span-less tracing event on the task span"
        );
        for span in trace {
            assert_eq!(
                span.attr("flowtrace.run.id"),
                Some(run.run_id()),
                "{}",
                span.name
            );
            if span.name == "leaf" || span.name == "branch" {
                assert_eq!(
                    span.attr("test.seen"),
                    Some(i.to_string().as_str()),
                    "no cross-talk"
                );
            }
            if span.name == "leaf" {
                assert_eq!(span.parent_span_id, branch.span_id);
            }
        }
        run_ids.insert(run.run_id().to_owned());
    }
    assert_eq!(run_ids.len(), RUNS, "run ids are unique");
}
