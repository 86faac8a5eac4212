//! Run parameters at a real collector: every span of a run records the run's
//! parameters (`flowtrace.param.<key>`), the root span the final set, and a
//! concurrent run never sees another run's parameters.

mod support;

use flowtrace::{params, traced, with_runcontext};
use serde_json::json;
use support::{Collector, WAIT, span_named};

#[traced]
async fn leaf(i: u64) -> u64 {
    tokio::task::yield_now().await;
    i
}

#[traced]
async fn pipeline(run: u64) -> u64 {
    // Registered inside the first task: this span, later tasks and the root
    // record it.
    params::top_k(run).expect("top_k");
    params::register("api_key", "sk-secret").expect("api_key");
    let (a, b) = tokio::join!(leaf(1), flowtrace::spawn(leaf(2)));
    a + b.expect("spawned leaf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parameters_are_on_every_span_of_their_run_only() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("rag-params", &[]);

    let runs = (1..=2u64).map(|run| {
        tokio::spawn(
            with_runcontext()
                .name(format!("run-{run}"))
                .initial_params([("model", json!(format!("model-{run}")))])
                .run(pipeline(run)),
        )
    });
    let mut traces = Vec::new();
    for run in futures::future::join_all(runs).await {
        let run = run.expect("run task");
        traces.push((run.name().to_owned(), run.trace_id().to_owned()));
    }
    assert!(
        params::get().is_empty(),
        "no run's parameters leak out of it"
    );
    telemetry.force_flush().expect("flush");

    for (i, (name, trace)) in traces.iter().enumerate() {
        let run = i as u64 + 1;
        let spans = collector.wait_for_trace_async(trace, 4, WAIT).await;
        let model = format!("model-{run}");
        for span in &spans {
            assert_eq!(
                span.attr("flowtrace.param.model"),
                Some(model.as_str()),
                "{name}: span {} records the run's initial parameter, not the other run's",
                span.name
            );
            assert_eq!(
                span.attr("flowtrace.param.top_k"),
                Some(run.to_string().as_str()),
                "{name}: span {} records the parameter registered in the run",
                span.name
            );
            assert_eq!(
                span.attr("flowtrace.param.api_key"),
                Some("[REDACTED]"),
                "{name}: a secret-looking key is redacted on {}",
                span.name
            );
        }
        assert!(
            span_named(&spans, name).is_root(),
            "{name}: the root is there"
        );
        assert_eq!(
            spans.iter().filter(|s| s.name == "leaf").count(),
            2,
            "{name}: both leaves"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_and_get_are_scoped_to_the_run() {
    let run = with_runcontext()
        .initial_params([("chunk_size", json!(256))])
        .run(async {
            let before = params::get();
            params::clear();
            let after = params::get();
            (before, after)
        })
        .await;
    let (before, after) = run.into_output();
    assert_eq!(
        before["chunk_size"], 256,
        "get() sees the initial parameter"
    );
    assert!(after.is_empty(), "clear() empties the run's parameters");
}
