//! A task that runs for two hours (on a paused tokio clock) is visible at a
//! real collector while it runs: its start record names its trace, span,
//! parent and name before the span exists; when it ends, the span arrives
//! with the same ids and nothing else is written about it.

mod support;

use std::time::{Duration, Instant};

use flowtrace::attributes::{PARENT_SPAN_ID, PARTIAL_EVENT, SPAN_NAME};
use flowtrace::{traced, with_runcontext};
use support::{Collector, LogRecord, WAIT, span_named};

#[traced]
async fn two_hour_job() -> u32 {
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    7
}

#[traced(skip_all)]
async fn sampled_out() {}

/// Polls the collector with the runtime blocked, so the paused clock cannot
/// move on while the test looks.
fn blocking_wait_for_record(collector: &Collector, name: &str) -> LogRecord {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(record) = collector
            .logs()
            .into_iter()
            .find(|r| r.attribute(SPAN_NAME) == Some(name))
        {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "no start record for {name} within {WAIT:?}: {:#?}",
            collector.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_two_hour_task_is_visible_before_it_ends() {
    let collector = Collector::start();
    let telemetry =
        collector.grpc_telemetry("running-paused", &[("OTEL_BLRP_SCHEDULE_DELAY", "50")]);
    let started = tokio::time::Instant::now();

    let run = with_runcontext()
        .name("long_run")
        .run(async {
            let watch = async {
                // `two_hour_job` has started and sleeps: it is running.
                telemetry.force_flush().expect("flush");
                let record = blocking_wait_for_record(&collector, "two_hour_job");
                let spans = collector.spans();
                assert!(
                    spans.iter().all(|s| s.name != "two_hour_job"),
                    "the span is not exported before it ends: {spans:#?}"
                );
                record
            };
            let (out, record) = futures::join!(two_hour_job(), watch);
            (out, record)
        })
        .await;
    let (out, record) = run.output().clone();
    assert_eq!(out, 7);
    assert!(
        started.elapsed() >= Duration::from_secs(2 * 3600),
        "two hours passed on the tokio clock"
    );

    telemetry.force_flush().expect("flush");
    let spans = collector
        .wait_for_trace_async(run.trace_id(), 2, WAIT)
        .await;
    let job = span_named(&spans, "two_hour_job");
    let root = span_named(&spans, "long_run");
    assert_eq!(
        record.trace_id, job.trace_id,
        "the start record names the trace"
    );
    assert_eq!(record.span_id, job.span_id, "and the span");
    assert_eq!(
        record.attribute(PARENT_SPAN_ID),
        Some(root.span_id.as_str()),
        "and its parent"
    );
    assert_eq!(record.attribute(PARTIAL_EVENT), Some("start"));
    assert_eq!(record.attribute("flowtrace.run.id"), Some(run.run_id()));
    assert_eq!(record.body, "two_hour_job");

    let run_record = blocking_wait_for_record(&collector, "long_run");
    assert_eq!(
        run_record.span_id, root.span_id,
        "the run span has its start record too"
    );
    assert_eq!(
        run_record.attribute(PARENT_SPAN_ID),
        None,
        "a root names no parent"
    );

    // A normal end adds nothing: one record for the task, the start record.
    let about_job: Vec<_> = collector
        .logs()
        .into_iter()
        .filter(|r| r.span_id == job.span_id)
        .collect();
    assert_eq!(about_job, [record], "only the start record");

    // A span that does not record writes no start record.
    let unsampled = with_runcontext()
        .sampled(false)
        .name("dropped_run")
        .run(sampled_out())
        .await;
    telemetry.force_flush().expect("flush");
    let logs = collector.logs();
    assert!(
        logs.iter()
            .all(|r| r.trace_id != unsampled.trace_id()
                && r.attribute(SPAN_NAME) != Some("sampled_out")),
        "no record for spans that do not record: {logs:#?}"
    );
    drop(telemetry);
}
