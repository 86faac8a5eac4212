//! The quickstart as a user runs it: with nothing configured it writes
//! `flowtrace-metrics.jsonl` beside the trace file and prints the per-task
//! table; pointed at a collector (rotel), the same run delivers the
//! instruments with exemplars naming its spans.

mod support;

use std::process::Command;
use std::time::Duration;

use support::metrics::{all_exemplars, latest, read_metrics_file};
use support::{Collector, WAIT, read_otlp_json_file, run_bounded};

/// The quickstart example, with none of this process's settings.
fn quickstart() -> Command {
    let mut cmd = Command::new(support::example("quickstart"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key.starts_with("FLOWTRACE_") || key == "TRACEPARENT" {
            cmd.env_remove(key);
        }
    }
    cmd.env("OTEL_BSP_SCHEDULE_DELAY", "50");
    cmd
}

#[test]
fn quickstart_writes_the_metrics_file_and_prints_the_table() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("metrics-quickstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cmd = quickstart();
    cmd.current_dir(&dir);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    out.assert_success("quickstart");
    let stdout = &out.stdout;

    // The table: a header and one row per task.
    let header = stdout
        .lines()
        .position(|l| l.starts_with("task ") && l.contains("count") && l.contains("p95"))
        .unwrap_or_else(|| panic!("no per-task table in:\n{stdout}"));
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(header + 1)
        .take(3)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..5], ["fetch", "3", "1", "0", "0"], "{stdout}");
    assert_eq!(rows[1][..5], ["main", "1", "0", "0", "0"], "{stdout}");
    assert_eq!(rows[2][..5], ["parse", "2", "0", "0", "0"], "{stdout}");

    let metrics = dir.join("flowtrace-metrics.jsonl");
    let requests = read_metrics_file(&metrics);
    let durations = latest(&requests, "flowtrace.task.duration");
    let fetches: u64 = durations
        .iter()
        .filter(|p| p.attr("flowtrace.task.name") == Some("fetch"))
        .map(|p| p.count)
        .sum();
    assert_eq!(fetches, 3);
    for metric in [
        "otel.sdk.exporter.span.exported",
        "otel.sdk.processor.span.processed",
        "otel.sdk.exporter.log.exported",
    ] {
        assert!(!latest(&requests, metric).is_empty(), "no {metric}");
    }
    let spans = read_otlp_json_file(&dir.join("flowtrace-traces.jsonl"));
    // One exemplar per bucket a point's tasks fell in: how many buckets
    // that is depends on how long each task took.
    let bucket = |seconds: f64| {
        let boundaries = flowtrace::metrics::DURATION_BOUNDARIES;
        boundaries
            .iter()
            .position(|upper| seconds <= *upper)
            .unwrap_or(boundaries.len())
    };
    for point in &durations {
        let mut buckets: Vec<usize> = point.exemplars.iter().map(|e| bucket(e.value)).collect();
        buckets.sort_unstable();
        buckets.dedup();
        assert!(!buckets.is_empty(), "an exemplar on {point:#?}");
        assert_eq!(
            buckets.len(),
            point.exemplars.len(),
            "one exemplar per bucket: {point:#?}"
        );
    }
    let exemplars = all_exemplars(&requests, "flowtrace.task.duration");
    assert_eq!(
        exemplars.len(),
        durations.iter().map(|p| p.exemplars.len()).sum::<usize>(),
        "the file's last export holds every exemplar: {exemplars:#?}"
    );
    for (_, exemplar) in exemplars {
        assert!(
            spans.iter().any(|s| s.span_id == exemplar.span_id),
            "{exemplar:?} names a span of the trace file"
        );
    }
}

#[test]
fn quickstart_sent_to_a_collector_delivers_the_instruments_with_exemplars() {
    let collector = Collector::start();
    let endpoint = collector.grpc_endpoint();
    let mut cmd = quickstart();
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    out.assert_success("quickstart to the collector");
    let requests = collector.wait_for_metrics("the quickstart's task durations", WAIT, |r| {
        latest(r, "flowtrace.task.duration")
            .iter()
            .map(|p| p.count)
            .sum::<u64>()
            == 6
    });
    for metric in [
        "flowtrace.task.attempts",
        "flowtrace.task.active",
        "flowtrace.run.duration",
        "flowtrace.run.active",
        "otel.sdk.exporter.span.exported",
    ] {
        assert!(!latest(&requests, metric).is_empty(), "no {metric}");
    }
    let exemplars = all_exemplars(&requests, "flowtrace.task.duration");
    assert!(!exemplars.is_empty());
    let trace_id = exemplars[0].1.trace_id.clone();
    let spans = collector.wait_for_trace(&trace_id, 7, WAIT);
    for (_, exemplar) in &exemplars {
        assert!(
            spans.iter().any(|s| s.span_id == exemplar.span_id),
            "{exemplar:?}"
        );
    }
}
