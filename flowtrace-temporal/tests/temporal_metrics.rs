//! flowtrace's metrics on a real Temporal deployment, from the worker's
//! side: each activity execution is a task, the workflow run a run, and a
//! worker without a workflow cache, which replays the workflow from its
//! history on every workflow task, records the run once.

#[path = "../../tests/support/mod.rs"]
mod support;
mod temporal_support;

use support::WAIT;
use support::metrics::{Point, all_exemplars, latest};
use temporal_support::Deployment;

fn sum_count(points: &[Point], key: &str, value: &str) -> u64 {
    points
        .iter()
        .filter(|p| p.attr(key) == Some(value))
        .map(|p| p.count)
        .sum()
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

    let requests = deployment.collector.wait_for_metrics(
        "the worker's run and task durations",
        WAIT,
        |requests| {
            !latest(requests, "flowtrace.run.duration").is_empty()
                && !latest(requests, "flowtrace.task.duration").is_empty()
        },
    );
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
