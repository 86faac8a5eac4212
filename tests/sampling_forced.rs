//! Per-run sampling decisions at a real collector. The parent samples
//! nothing by ratio (`traceidratio` 0) and the child process everything
//! (`always_on`): a run forced sampled is recorded whole, spawned tasks and
//! its child process included; a run forced not sampled is dropped in the
//! child too; a resumed run keeps the first attempt's decision.

mod support;

use std::process::Stdio;
use std::time::Duration;

use flowtrace::process::CommandExt as _;
use flowtrace::{Checkpoint, traced, with_runcontext};
use support::{Collector, WAIT, span_named};

/// The checkpoint the child resumes (`tests/children/sampling.rs`).
const CHECKPOINT: &str = "FLOWTRACE_TEST_SAMPLING_CHECKPOINT";

#[traced]
async fn spawned_task() {}

#[traced]
async fn inner_task() {}

#[traced]
async fn parent_task(endpoint: String) -> String {
    inner_task().await;
    flowtrace::spawn(spawned_task()).await.expect("spawned");
    run_child(&endpoint, "continue", None).await
}

async fn run_child(endpoint: &str, mode: &str, checkpoint: Option<&Checkpoint>) -> String {
    let mut cmd = tokio::process::Command::new(support::example("child_sampling"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg(mode)
        .env("OTEL_SERVICE_NAME", "sampling-child")
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_TRACES_SAMPLER", "always_on")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    if let Some(checkpoint) = checkpoint {
        cmd.env(CHECKPOINT, serde_json::to_string(checkpoint).unwrap());
    }
    cmd.with_trace_context()
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("child finished in time")
        .expect("child ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("CHILD ").map(|(_, id)| id.trim()))
        .unwrap_or_else(|| {
            panic!(
                "the child's trace id in: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_decision_holds_in_every_task_and_process_of_the_run() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry(
        "sampling",
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    );
    let endpoint = collector.grpc_endpoint();

    let forced = with_runcontext()
        .name("forced_run")
        .sampled(true)
        .run(parent_task(endpoint.clone()))
        .await;
    let child_trace = forced.output().clone();
    assert_eq!(
        child_trace,
        forced.trace_id(),
        "the child continued the run"
    );
    let by_ratio = with_runcontext().name("ratio_run").run(inner_task()).await;
    let dropped = with_runcontext()
        .name("dropped_run")
        .sampled(false)
        .run(async { run_child(&endpoint, "continue", None).await })
        .await;
    // Resumed: the first attempt's decision, whatever the sampler says.
    let resumed = with_runcontext()
        .name("forced_run")
        .resume(forced.checkpoint())
        .run(inner_task())
        .await;
    let child_resumed = run_child(&endpoint, "resume", Some(&dropped.checkpoint())).await;
    telemetry.force_flush().expect("flush");

    let spans = collector
        .wait_for_trace_async(forced.trace_id(), 5, WAIT)
        .await;
    let root = span_named(&spans, "forced_run");
    assert!(root.is_root());
    assert!(
        root.trace_state.contains("flowtrace=s:1"),
        "{}",
        root.trace_state
    );
    for name in ["parent_task", "inner_task", "spawned_task", "child_task"] {
        span_named(&spans, name);
    }
    assert_eq!(
        span_named(&spans, "child_task").service_name,
        "sampling-child"
    );

    let spans = collector
        .wait_for_trace_async(resumed.trace_id(), 2, WAIT)
        .await;
    span_named(&spans, "inner_task");

    // Dropped ones: give them the time the others took, then look.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = collector.spans();
    for (what, trace) in [
        ("the run left to the ratio", by_ratio.trace_id()),
        (
            "the run forced not sampled, and its child",
            dropped.trace_id(),
        ),
        ("the child resuming the dropped run", child_resumed.as_str()),
    ] {
        assert!(
            all.iter().all(|s| s.trace_id != trace),
            "{what}: nothing recorded, got {:#?}",
            all.iter()
                .filter(|s| s.trace_id == trace)
                .collect::<Vec<_>>()
        );
    }
    assert!(
        dropped
            .checkpoint()
            .traceparent
            .as_deref()
            .is_some_and(|tp| tp.ends_with("-00")),
        "the checkpoint keeps the decision"
    );
    drop(telemetry);
}
