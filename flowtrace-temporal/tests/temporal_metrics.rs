//! flowtrace's metrics on a real Temporal deployment, from the worker's
//! side: each activity execution is a task, the workflow run a run, and a
//! worker without a workflow cache, which replays the workflow from its
//! history on every workflow task, records the run once. The client's run
//! is the client's alone: its activities join it and record no run.

#[path = "../../tests/support/mod.rs"]
mod support;
mod temporal_support;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use support::metrics::{Point, all_exemplars, latest};
use support::{WAIT, run_bounded};
use temporal_support::{Deployment, RUN_TIMEOUT};

/// The client's run name (`temporal_workflow start`).
const CLIENT_RUN: &str = "start_fan_out";

fn sum_count(points: &[Point], key: &str, value: &str) -> u64 {
    points
        .iter()
        .filter(|p| p.attr(key) == Some(value))
        .map(|p| p.count)
        .sum()
}

/// The sum of the values of a sum's points with `key` = `value`.
fn sum_value(points: &[Point], key: &str, value: &str) -> f64 {
    points
        .iter()
        .filter(|p| p.attr(key) == Some(value))
        .map(|p| p.value)
        .sum()
}

/// `requests` with only the resources of the process `service` (its
/// `service.name`): the collector may batch several processes' metrics
/// into one request.
fn of_service(
    requests: &[ExportMetricsServiceRequest],
    service: &str,
) -> Vec<ExportMetricsServiceRequest> {
    let is_service = |rm: &&opentelemetry_proto::tonic::metrics::v1::ResourceMetrics| {
        rm.resource.as_ref().is_some_and(|r| {
            r.attributes.iter().any(|kv| {
                kv.key == "service.name"
                    && matches!(
                        kv.value.as_ref().and_then(|v| v.value.as_ref()),
                        Some(any_value::Value::StringValue(s)) if s == service
                    )
            })
        })
    };
    requests
        .iter()
        .map(|request| ExportMetricsServiceRequest {
            resource_metrics: request
                .resource_metrics
                .iter()
                .filter(is_service)
                .cloned()
                .collect(),
        })
        .filter(|request| !request.resource_metrics.is_empty())
        .collect()
}

/// The worker's metrics record no run under the client's run name: its
/// activities joined the client's run, which only the client records.
fn assert_no_client_run(worker: &[ExportMetricsServiceRequest]) {
    for metric in ["flowtrace.run.duration", "flowtrace.run.active"] {
        let points: Vec<Point> = worker
            .iter()
            .flat_map(support::metrics::points)
            .filter(|p| p.metric == metric && p.attr("flowtrace.run.name") == Some(CLIENT_RUN))
            .collect();
        assert!(
            points.is_empty(),
            "the worker records no {metric} for the client's run: {points:#?}"
        );
    }
}

#[test]
fn a_replaying_worker_records_each_activity_and_the_run_once() {
    let deployment = Deployment::start("metrics");
    let mut worker = deployment.worker("worker-nocache", &["--no-cache"]);
    let started =
        deployment.start_workflow(&["--sequential", "--id", "metrics", "alpha", "beta", "gamma"]);
    assert_eq!(started.report["team_in_workflow"], "search");
    // A clean stop: the worker's telemetry shuts down and exports the
    // final collection.
    worker.stop();

    let all = deployment.collector.wait_for_metrics(
        "the worker's run and task durations, and the client's run",
        WAIT,
        |requests| {
            let worker = of_service(requests, "worker-nocache");
            !latest(&worker, "flowtrace.run.duration").is_empty()
                && !latest(&worker, "flowtrace.task.duration").is_empty()
                && !latest(&of_service(requests, "client"), "flowtrace.run.duration").is_empty()
        },
    );
    let requests = of_service(&all, "worker-nocache");
    let runs = latest(&requests, "flowtrace.run.duration");
    assert_eq!(
        sum_count(&runs, "flowtrace.run.name", "FanOutWorkflow"),
        1,
        "replays record the run once: {runs:#?}"
    );
    let run = runs
        .iter()
        .find(|p| p.attr("flowtrace.run.name") == Some("FanOutWorkflow"))
        .unwrap();
    assert_eq!(run.attr("flowtrace.run.status"), Some("succeeded"));
    let active = latest(&requests, "flowtrace.run.active");
    assert!(
        active.iter().all(|p| p.value == 0.0),
        "no run left in flight: {active:#?}"
    );
    // One client run is one run in the metrics: the client's, recorded by
    // the client, and none by the worker for its three activities.
    assert_no_client_run(&requests);
    let client_runs = latest(&of_service(&all, "client"), "flowtrace.run.duration");
    assert_eq!(
        sum_count(&client_runs, "flowtrace.run.name", CLIENT_RUN),
        1,
        "{client_runs:#?}"
    );
    let tasks = latest(&requests, "flowtrace.task.duration");
    assert_eq!(
        sum_count(&tasks, "flowtrace.task.name", "Activities::process"),
        3,
        "one task per activity: {tasks:#?}"
    );
    // The activities' exemplars lead to their `RunActivity` spans.
    let spans = deployment
        .collector
        .wait_for_trace(&started.trace_id, 15, WAIT);
    let exemplars = all_exemplars(&requests, "flowtrace.task.duration");
    let activity_exemplars: Vec<_> = exemplars
        .iter()
        .filter(|(p, _)| p.attr("flowtrace.task.name") == Some("Activities::process"))
        .collect();
    assert!(!activity_exemplars.is_empty(), "{exemplars:#?}");
    for (_, exemplar) in activity_exemplars {
        let span = spans
            .iter()
            .find(|s| s.span_id == exemplar.span_id)
            .unwrap_or_else(|| panic!("{exemplar:?} names no span of the trace"));
        assert_eq!(span.name, "RunActivity:Activities::process");
    }
}

#[test]
fn a_failing_activity_is_an_error_task_on_every_attempt_and_no_run() {
    let deployment = Deployment::start("metrics-failing");
    let mut worker = deployment.worker("worker-a", &[]);
    let mut client = deployment.client(&["--id", "metrics-failing", "broken"]);
    let out = run_bounded(&mut client, RUN_TIMEOUT);
    assert!(
        !out.status.success(),
        "every attempt fails, and so the workflow: {}",
        out.stdout
    );
    worker.stop();

    let requests = deployment.collector.wait_for_metrics(
        "the worker's run and task durations",
        WAIT,
        |requests| {
            let worker = of_service(requests, "worker-a");
            !latest(&worker, "flowtrace.run.duration").is_empty()
                && !latest(&worker, "flowtrace.task.duration").is_empty()
        },
    );
    let requests = of_service(&requests, "worker-a");
    // The retry policy's five attempts: five failed tasks, four retries.
    let tasks: Vec<Point> = latest(&requests, "flowtrace.task.duration")
        .into_iter()
        .filter(|p| p.attr("flowtrace.task.name") == Some("Activities::process"))
        .collect();
    assert_eq!(
        sum_count(&tasks, "flowtrace.task.outcome", "error"),
        5,
        "{tasks:#?}"
    );
    assert_eq!(
        tasks.iter().map(|p| p.count).sum::<u64>(),
        5,
        "no other outcome: {tasks:#?}"
    );
    let attempts: Vec<Point> = latest(&requests, "flowtrace.task.attempts")
        .into_iter()
        .filter(|p| p.attr("flowtrace.task.name") == Some("Activities::process"))
        .collect();
    assert_eq!(
        sum_value(&attempts, "flowtrace.task.retry", "true"),
        4.0,
        "{attempts:#?}"
    );
    assert_eq!(
        sum_value(&attempts, "flowtrace.task.retry", "false"),
        1.0,
        "{attempts:#?}"
    );
    let runs = latest(&requests, "flowtrace.run.duration");
    let failed: Vec<&Point> = runs
        .iter()
        .filter(|p| p.attr("flowtrace.run.name") == Some("FanOutWorkflow"))
        .collect();
    assert_eq!(failed.len(), 1, "{runs:#?}");
    assert_eq!(failed[0].count, 1);
    assert_eq!(failed[0].attr("flowtrace.run.status"), Some("failed"));
    assert_no_client_run(&requests);
}
