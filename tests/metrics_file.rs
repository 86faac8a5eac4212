//! Task and run metrics in the embedded default's OTLP/JSON metrics file
//! (`flowtrace-metrics.jsonl` beside the trace file): the counts are the
//! tasks that ran — retries, timeouts, cancellations and cache hits
//! included, sampled or not — the durations are the spans', and every
//! exemplar names a span of the trace file.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flowtrace::{TaskTimeout, traced, with_runcontext};
use flowtrace_telemetry::{self as telemetry, ExporterKind};
use support::metrics::{all_exemplars, latest, read_metrics_file};
use support::read_otlp_json_file;

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

static STEP_RAN: AtomicUsize = AtomicUsize::new(0);
static FLAKY_RAN: AtomicUsize = AtomicUsize::new(0);

#[traced]
async fn step(n: u64) -> Result<u64, Error> {
    STEP_RAN.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2)).await;
    if n % 5 == 4 {
        Err(Error::Failed)
    } else {
        Ok(n)
    }
}

/// Fails twice per call, then succeeds: three attempts, two retries.
#[traced(retries = 2, backoff = fixed, retry_delay = "1ms")]
async fn flaky() -> Result<(), Error> {
    let ran = FLAKY_RAN.fetch_add(1, Ordering::SeqCst);
    if ran % 3 < 2 {
        Err(Error::Failed)
    } else {
        Ok(())
    }
}

#[traced(timeout = "5ms")]
async fn slow() -> Result<(), Error> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[traced]
async fn hangs() {
    tokio::time::sleep(Duration::from_secs(10)).await;
}

#[traced(cache = key)]
async fn lookup(key: String) -> Result<usize, Error> {
    Ok(key.len())
}

#[traced]
async fn solo(n: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(n)).await;
    n
}

#[traced]
async fn item(n: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(3)).await;
    n
}

/// One workflow: 10 steps (2 fail), 2 flaky calls (4 retries), 1 timeout,
/// 1 cancelled, 3 lookups (2 cache hits), a map of 4 items one at a time.
async fn workflow() {
    for n in 0..10 {
        let _ = step(n).await;
    }
    flaky().await.unwrap();
    flaky().await.unwrap();
    assert_eq!(slow().await, Err(Error::Timeout));
    assert!(
        tokio::time::timeout(Duration::from_millis(5), hangs())
            .await
            .is_err()
    );
    for _ in 0..3 {
        lookup("same".into()).await.unwrap();
    }
    flowtrace::map(0..4, item, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_counts_every_task_and_its_exemplars_name_spans_of_the_trace() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("metrics-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trace_file = dir.join("wf-traces.jsonl");
    let telemetry = telemetry::builder()
        .env_vars([
            ("OTEL_SERVICE_NAME", "metrics-file"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ])
        .exporter(ExporterKind::File)
        .trace_file(&trace_file)
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry");
    let metrics_file = telemetry.metrics_file().expect("a metrics file").to_owned();
    assert_eq!(
        metrics_file,
        dir.join("wf-metrics.jsonl"),
        "beside the trace file"
    );
    flowtrace::cache::clear();

    // Sampled: a run of its own trace.
    let sampled = with_runcontext().name("sampled").run(workflow()).await;
    // Not sampled: the run continues an unsampled remote parent, so the
    // parent-based sampler drops every span of it.
    flowtrace::cache::clear();
    let unsampled = with_runcontext()
        .name("unsampled")
        .custom_context([(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        )])
        .run(workflow())
        .await;
    with_runcontext()
        .name("solo")
        .run(async {
            for n in 1..=3 {
                solo(n).await;
            }
        })
        .await;
    // A step the run called directly failed: both runs failed.
    assert_eq!(sampled.status(), flowtrace::RunStatus::Failed);
    assert_eq!(unsampled.status(), flowtrace::RunStatus::Failed);
    telemetry.shutdown().expect("shutdown");

    let requests = read_metrics_file(&metrics_file);
    assert!(
        !requests.is_empty(),
        "no line in {}",
        metrics_file.display()
    );

    // Counts: twice the workflow.
    let durations = latest(&requests, "flowtrace.task.duration");
    let count = |task: &str, outcome: &str| -> u64 {
        durations
            .iter()
            .filter(|p| {
                p.attr("flowtrace.task.name") == Some(task)
                    && p.attr("flowtrace.task.outcome") == Some(outcome)
            })
            .map(|p| p.count)
            .sum()
    };
    assert_eq!(STEP_RAN.load(Ordering::SeqCst), 20);
    assert_eq!(count("step", "ok"), 16, "{durations:#?}");
    assert_eq!(count("step", "error"), 4);
    assert_eq!(count("flaky", "ok"), 4);
    assert_eq!(count("flaky", "error"), 0);
    assert_eq!(count("slow", "timeout"), 2);
    assert_eq!(count("hangs", "cancelled"), 2);
    assert_eq!(count("lookup", "ok"), 2, "the first call of each run");
    assert_eq!(count("lookup", "cached"), 4);
    assert_eq!(count("item", "ok"), 8);
    for p in &durations {
        assert_eq!(p.kind, "histogram");
        assert_eq!(p.attributes.len(), 2, "task name and outcome only: {p:?}");
    }

    let attempts = latest(&requests, "flowtrace.task.attempts");
    let attempts_of = |task: &str, retry: &str| -> f64 {
        attempts
            .iter()
            .filter(|p| {
                p.attr("flowtrace.task.name") == Some(task)
                    && p.attr("flowtrace.task.retry") == Some(retry)
            })
            .map(|p| p.value)
            .sum()
    };
    assert!(attempts.iter().all(|p| p.monotonic));
    assert_eq!(FLAKY_RAN.load(Ordering::SeqCst), 12);
    assert_eq!(attempts_of("flaky", "false"), 4.0, "{attempts:#?}");
    assert_eq!(attempts_of("flaky", "true"), 8.0, "two retries per call");
    assert_eq!(attempts_of("step", "false"), 20.0);
    assert_eq!(attempts_of("step", "true"), 0.0);
    assert_eq!(
        attempts_of("lookup", "false"),
        2.0,
        "a cache hit runs nothing"
    );
    assert_eq!(attempts_of("hangs", "false"), 2.0);

    let active = latest(&requests, "flowtrace.task.active");
    assert!(!active.is_empty());
    assert!(
        active.iter().all(|p| p.value == 0.0),
        "nothing in flight at the end: {active:?}"
    );
    let runs_active = latest(&requests, "flowtrace.run.active");
    assert!(
        runs_active.iter().all(|p| p.value == 0.0),
        "{runs_active:?}"
    );

    let waits = latest(&requests, "flowtrace.task.queue_wait");
    let item_waits: u64 = waits
        .iter()
        .filter(|p| p.attr("flowtrace.task.name") == Some("item"))
        .map(|p| p.count)
        .sum();
    assert_eq!(item_waits, 8, "{waits:#?}");
    let item_wait_max = waits.iter().filter_map(|p| p.max).fold(0.0, f64::max);
    assert!(
        item_wait_max >= 0.006,
        "the 4th item waited for 3 before it: {item_wait_max}"
    );

    let runs = latest(&requests, "flowtrace.run.duration");
    for name in ["sampled", "unsampled"] {
        let point = runs
            .iter()
            .find(|p| p.attr("flowtrace.run.name") == Some(name))
            .unwrap_or_else(|| panic!("no run point for {name}: {runs:#?}"));
        assert_eq!(point.count, 1);
        assert_eq!(point.attr("flowtrace.run.status"), Some("failed"));
    }
    let solo_run = runs
        .iter()
        .find(|p| p.attr("flowtrace.run.name") == Some("solo"))
        .expect("the solo run");
    assert_eq!(solo_run.attr("flowtrace.run.status"), Some("succeeded"));

    // Durations: the sampled run's spans, per task, against the histogram
    // sums of both runs minus nothing: only the sampled run has spans, so
    // compare min/max-free totals of the sampled half, taken from the
    // exemplars and the spans one by one, and the run's own duration.
    let spans = read_otlp_json_file(&trace_file);
    let run_span = spans
        .iter()
        .find(|s| s.name == "sampled")
        .expect("the sampled run's span");
    let run_point = runs
        .iter()
        .find(|p| p.attr("flowtrace.run.name") == Some("sampled"))
        .unwrap();
    let span_seconds = (run_span.end_unix_nano - run_span.start_unix_nano) as f64 / 1e9;
    assert!(
        (run_point.value - span_seconds).abs() < 1e-6,
        "run duration {} vs span {span_seconds}",
        run_point.value
    );
    assert!(
        spans
            .iter()
            .all(|s| s.trace_id != "0af7651916cd43dd8448eb211c80319c"),
        "the unsampled run exported no span"
    );

    // Every sampled task span's duration is a measurement of the histogram:
    // the task's spans sum to at most its histogram sum (which also holds
    // the unsampled run's), and the largest span is the histogram's max or
    // below it.
    let mut span_sums: BTreeMap<(String, &str), (f64, f64)> = BTreeMap::new();
    for span in spans
        .iter()
        .filter(|s| s.attr("flowtrace.task.name").is_some())
    {
        let outcome = if span.attr("flowtrace.task.cached") == Some("true") {
            "cached"
        } else if span.attr("flowtrace.task.timeout") == Some("true") {
            "timeout"
        } else if span.attr("flowtrace.task.cancelled") == Some("true") {
            "cancelled"
        } else if span.status_code == support::StatusCode::Error {
            "error"
        } else {
            "ok"
        };
        let seconds = (span.end_unix_nano - span.start_unix_nano) as f64 / 1e9;
        let entry = span_sums.entry((span.name.clone(), outcome)).or_default();
        entry.0 += seconds;
        entry.1 = entry.1.max(seconds);
    }
    for ((task, outcome), (sum, max)) in &span_sums {
        let point = durations
            .iter()
            .find(|p| {
                p.attr("flowtrace.task.name") == Some(task)
                    && p.attr("flowtrace.task.outcome") == Some(outcome)
            })
            .unwrap_or_else(|| panic!("no point for {task} {outcome}"));
        assert!(
            *sum <= point.value + 1e-6,
            "{task} {outcome}: spans sum to {sum}s, the histogram to {}s",
            point.value
        );
        assert!(*max <= point.max.unwrap() + 1e-9, "{task} {outcome}");
    }

    // A task only the sampled runs called: its histogram is its spans'.
    let solo_spans: Vec<_> = spans
        .iter()
        .filter(|s| s.attr("flowtrace.task.name") == Some("solo"))
        .collect();
    assert_eq!(solo_spans.len(), 3);
    let solo_point = durations
        .iter()
        .find(|p| p.attr("flowtrace.task.name") == Some("solo"))
        .expect("solo's point");
    assert_eq!(solo_point.count, 3);
    let seconds: Vec<f64> = solo_spans
        .iter()
        .map(|s| (s.end_unix_nano - s.start_unix_nano) as f64 / 1e9)
        .collect();
    let sum: f64 = seconds.iter().sum();
    assert!(
        (solo_point.value - sum).abs() < 1e-6,
        "{} vs {sum}",
        solo_point.value
    );
    let min = seconds.iter().copied().fold(f64::MAX, f64::min);
    let max = seconds.iter().copied().fold(0.0, f64::max);
    assert!((solo_point.min.unwrap() - min).abs() < 1e-9);
    assert!((solo_point.max.unwrap() - max).abs() < 1e-9);

    // Exemplars: each names a span of the trace file with its duration.
    let exemplars = all_exemplars(&requests, "flowtrace.task.duration");
    assert!(!exemplars.is_empty(), "sampled tasks leave exemplars");
    for (point, exemplar) in &exemplars {
        let span = spans
            .iter()
            .find(|s| s.span_id == exemplar.span_id && s.trace_id == exemplar.trace_id)
            .unwrap_or_else(|| panic!("exemplar {exemplar:?} names no span of the trace file"));
        assert_eq!(Some(span.name.as_str()), point.attr("flowtrace.task.name"));
        assert_ne!(span.trace_id, "0af7651916cd43dd8448eb211c80319c");
        let seconds = (span.end_unix_nano - span.start_unix_nano) as f64 / 1e9;
        assert!(
            (exemplar.value - seconds).abs() < 1e-6,
            "exemplar {} vs span {seconds}: the same two clock readings",
            exemplar.value
        );
        assert_eq!(exemplar.time_unix_nano, span.end_unix_nano);
    }
    for task in ["step", "flaky", "slow", "hangs", "lookup", "item"] {
        assert!(
            exemplars
                .iter()
                .any(|(p, _)| p.attr("flowtrace.task.name") == Some(task)),
            "no exemplar for {task}"
        );
    }
}
