//! Task and run metrics through a real collector (rotel, OTLP/gRPC) to the
//! test's receiver: the instruments arrive with exemplars that name spans
//! of the trace the collector forwarded, as explicit or exponential
//! histograms, and a collector outage loses nothing (cumulative totals).

mod support;

use std::time::Duration;

use flowtrace::{TaskTimeout, traced, with_runcontext};
use support::metrics::{Point, all_exemplars, latest};
use support::{Collector, WAIT};

#[derive(Debug, PartialEq)]
enum Error {
    Failed,
    Timeout,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Failed => "failed",
            Error::Timeout => "timed out",
        })
    }
}

impl From<TaskTimeout> for Error {
    fn from(_: TaskTimeout) -> Self {
        Error::Timeout
    }
}

#[traced]
async fn fetch(n: u64) -> Result<u64, Error> {
    tokio::time::sleep(Duration::from_millis(1 + n % 3)).await;
    if n == 3 { Err(Error::Failed) } else { Ok(n) }
}

#[traced(retries = 1, backoff = fixed, retry_delay = "1ms", timeout = "5ms")]
async fn stuck() -> Result<(), Error> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[traced]
async fn abandoned() {
    tokio::time::sleep(Duration::from_secs(10)).await;
}

/// 6 fetches (1 error), 1 `stuck` with 2 attempts that both time out,
/// 1 `abandoned` cancelled.
async fn workflow() {
    for n in 0..6 {
        let _ = fetch(n).await;
    }
    assert_eq!(stuck().await, Err(Error::Timeout));
    let _ = tokio::time::timeout(Duration::from_millis(2), abandoned()).await;
}

fn count(points: &[Point], task: &str, outcome: &str) -> u64 {
    points
        .iter()
        .filter(|p| {
            p.attr("flowtrace.task.name") == Some(task)
                && p.attr("flowtrace.task.outcome") == Some(outcome)
        })
        .map(|p| p.count)
        .sum()
}

fn sum_of(points: &[Point], task: &str, key: &str, value: &str) -> f64 {
    points
        .iter()
        .filter(|p| p.attr("flowtrace.task.name") == Some(task) && p.attr(key) == Some(value))
        .map(|p| p.value)
        .sum()
}

fn delivered(collector: &Collector, kind: &'static str) {
    let requests = collector.wait_for_metrics("every task's duration", WAIT, |requests| {
        let points = latest(requests, "flowtrace.task.duration");
        count(&points, "fetch", "ok") == 5 && count(&points, "abandoned", "cancelled") == 1
    });
    let points = latest(&requests, "flowtrace.task.duration");
    assert!(points.iter().all(|p| p.kind == kind), "{points:#?}");
    assert_eq!(count(&points, "fetch", "error"), 1);
    assert_eq!(count(&points, "stuck", "timeout"), 1);
    let attempts = latest(&requests, "flowtrace.task.attempts");
    assert_eq!(
        sum_of(&attempts, "stuck", "flowtrace.task.retry", "true"),
        1.0
    );
    assert_eq!(
        sum_of(&attempts, "fetch", "flowtrace.task.retry", "false"),
        6.0
    );
    let runs = latest(&requests, "flowtrace.run.duration");
    assert_eq!(runs.iter().map(|p| p.count).sum::<u64>(), 1, "{runs:#?}");
    assert!(!latest(&requests, "flowtrace.task.active").is_empty());
    assert!(!latest(&requests, "flowtrace.run.active").is_empty());
    let spans_exported = latest(&requests, "otel.sdk.exporter.span.exported");
    assert!(
        !spans_exported.is_empty(),
        "the spans' delivery is observed too"
    );

    let exemplars = all_exemplars(&requests, "flowtrace.task.duration");
    assert!(!exemplars.is_empty(), "sampled tasks carry exemplars");
    let trace_id = &exemplars[0].1.trace_id;
    let spans = collector.wait_for_trace(trace_id, 9, WAIT);
    for (point, exemplar) in &exemplars {
        let span = spans
            .iter()
            .find(|s| s.span_id == exemplar.span_id)
            .unwrap_or_else(|| panic!("exemplar {exemplar:?} names no span of trace {trace_id}"));
        assert_eq!(Some(span.name.as_str()), point.attr("flowtrace.task.name"));
        let seconds = (span.end_unix_nano - span.start_unix_nano) as f64 / 1e9;
        assert!(
            (exemplar.value - seconds).abs() < 1e-6,
            "{exemplar:?} vs {seconds}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instruments_reach_the_collector_with_exemplars() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry(
        "metrics-collector",
        &[("OTEL_METRIC_EXPORT_INTERVAL", "100")],
    );
    with_runcontext().name("collected").run(workflow()).await;
    telemetry.shutdown().expect("shutdown");
    delivered(&collector, "histogram");

    // The same run with exponential histograms.
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry(
        "metrics-collector",
        &[
            ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
                "base2_exponential_bucket_histogram",
            ),
        ],
    );
    with_runcontext().name("collected").run(workflow()).await;
    telemetry.shutdown().expect("shutdown");
    delivered(&collector, "exponential_histogram");

    // An outage: the collector is down while the tasks run and for a few
    // exports; once it is back, the next export carries every total.
    let mut collector = Collector::stopped();
    let telemetry = collector.grpc_telemetry(
        "metrics-collector",
        &[
            ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "300"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
        ],
    );
    with_runcontext().name("collected").run(workflow()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(collector.metric_requests().is_empty());
    collector.restart();
    delivered(&collector, "histogram");
    telemetry.shutdown().expect("shutdown");
}
