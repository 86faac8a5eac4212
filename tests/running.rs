//! Running tasks at a real collector, on the real clock: a 30 s task sends
//! heartbeats carrying its attributes so far while it runs, and a process
//! killed mid-task leaves its task's start record behind.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use flowtrace::attributes::{PARTIAL_EVENT, PARTIAL_FREQUENCY, SPAN_NAME};
use flowtrace::{traced, with_runcontext};
use opentelemetry::KeyValue;
use support::{Collector, LogRecord, WAIT, span_named};

#[traced(skip_all, fields(job.kind = "reindex"))]
async fn thirty_second_job(progress: tokio::sync::mpsc::Sender<()>) -> u32 {
    tokio::time::sleep(Duration::from_secs(8)).await;
    flowtrace::current_span().set_attribute(KeyValue::new("job.rows_done", 1200));
    let _ = progress.send(()).await;
    tokio::time::sleep(Duration::from_secs(22)).await;
    3
}

fn heartbeats(records: &[LogRecord], span_id: &str) -> Vec<LogRecord> {
    records
        .iter()
        .filter(|r| r.span_id == span_id && r.attribute(PARTIAL_EVENT) == Some("heartbeat"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_task_heartbeats_while_it_runs_and_a_killed_one_leaves_its_start() {
    let collector = Collector::start();

    // The child is killed mid-task; its own collector sees what survives.
    let doomed = Collector::start();
    // tests/children/killed_run.rs
    let mut child = tokio::process::Command::new(support::example("child_killed_run"))
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", doomed.grpc_endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_BLRP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "doomed")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("child process");

    let telemetry = collector.grpc_telemetry(
        "running-heartbeat",
        &[
            ("FLOWTRACE_HEARTBEAT_INTERVAL", "5000"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ],
    );
    let (progress, mut progressed) = tokio::sync::mpsc::channel(1);
    let started = Instant::now();
    let job = tokio::spawn(
        with_runcontext()
            .name("nightly")
            .run(thirty_second_job(progress)),
    );

    // Before the attribute is set: heartbeats with what the span started with.
    let early = collector
        .wait_for_logs_async("a heartbeat of the job", WAIT, |records| {
            records.iter().any(|r| {
                r.attribute(SPAN_NAME) == Some("thirty_second_job")
                    && r.attribute(PARTIAL_EVENT) == Some("heartbeat")
            })
        })
        .await;
    let start = early
        .iter()
        .find(|r| {
            r.attribute(SPAN_NAME) == Some("thirty_second_job")
                && r.attribute(PARTIAL_EVENT) == Some("start")
        })
        .expect("the start record came first")
        .clone();
    let first = &heartbeats(&early, &start.span_id)[0];
    assert_eq!(first.attribute(PARTIAL_FREQUENCY), Some("5000ms"));
    assert_eq!(first.trace_id, start.trace_id);
    let body: serde_json::Value = serde_json::from_str(&first.body).expect("OTLP/JSON body");
    let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["spanId"], start.span_id.as_str());
    assert_eq!(span["name"], "thirty_second_job");
    assert!(
        span.get("endTimeUnixNano").is_none(),
        "still running: no end"
    );
    let attributes = span["attributes"].to_string();
    assert!(
        attributes.contains("job.kind") && attributes.contains("reindex"),
        "{attributes}"
    );
    assert!(attributes.contains("flowtrace.run.id"), "{attributes}");

    // After it: the heartbeats carry it.
    progressed.recv().await.expect("the job progressed");
    let later = collector
        .wait_for_logs_async("a heartbeat with the new attribute", WAIT, |records| {
            heartbeats(records, &start.span_id)
                .iter()
                .any(|r| r.body.contains("job.rows_done"))
        })
        .await;
    assert!(
        collector.spans().iter().all(|s| s.span_id != start.span_id),
        "all of this before the span is exported"
    );

    // The killed child: its start record survives it.
    let record = doomed
        .wait_for_logs_async("the child's start record", WAIT, |records| {
            records
                .iter()
                .any(|r| r.attribute(SPAN_NAME) == Some("killed_job"))
        })
        .await
        .into_iter()
        .find(|r| r.attribute(SPAN_NAME) == Some("killed_job"))
        .unwrap();
    child.kill().await.expect("kill the child");
    assert_eq!(record.attribute(PARTIAL_EVENT), Some("start"));
    assert_eq!(record.service_name, "doomed");
    assert_eq!(record.trace_id.len(), 32);
    assert!(
        doomed.spans().iter().all(|s| s.name != "killed_job"),
        "the killed task's span never arrives; its start record is what is left"
    );

    let run = job.await.expect("the job");
    assert_eq!(*run.output(), 3);
    assert!(started.elapsed() >= Duration::from_secs(30));
    telemetry.force_flush().expect("flush");
    let spans = collector
        .wait_for_trace_async(run.trace_id(), 2, WAIT)
        .await;
    let job = span_named(&spans, "thirty_second_job");
    assert_eq!(job.span_id, start.span_id);
    assert_eq!(job.attr("job.rows_done"), Some("1200"));

    // No heartbeat after the end, and no other record.
    let ended = collector.logs();
    let count = heartbeats(&ended, &start.span_id).len();
    assert!(
        (5..=6).contains(&count),
        "one heartbeat per 5 s of a 30 s task, not {count}"
    );
    assert!(later.len() <= ended.len());
    tokio::time::sleep(Duration::from_secs(6)).await;
    telemetry.force_flush().expect("flush");
    let after = collector.logs();
    assert_eq!(
        heartbeats(&after, &start.span_id).len(),
        count,
        "nothing about the span once it ended"
    );
    assert_eq!(
        after.iter().filter(|r| r.span_id == start.span_id).count(),
        count + 1,
        "its start record and its heartbeats, nothing else"
    );
    drop(telemetry);
}
