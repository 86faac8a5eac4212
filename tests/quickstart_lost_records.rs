//! The quickstart, run as its own process against a collector that is not
//! there: its spans and its log records are both counted and reported on
//! stderr at shutdown, within the export timeout — no signal vanishes
//! without a word.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{Collector, example, run_bounded};

#[test]
fn a_missing_collector_costs_spans_and_log_records_and_both_are_reported() {
    let collector = Collector::stopped();
    for (protocol, endpoint) in [
        ("grpc", collector.grpc_endpoint()),
        ("http/protobuf", collector.http_endpoint()),
    ] {
        let mut cmd = Command::new(example("quickstart"));
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") || key.starts_with("FLOWTRACE_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
            .env("OTEL_BSP_SCHEDULE_DELAY", "50");
        let started = Instant::now();
        let output = run_bounded(&mut cmd, Duration::from_secs(60));
        let took = started.elapsed();
        let stderr = &output.stderr;
        assert!(
            stderr.contains("7 spans"),
            "{protocol}: the lost spans are reported:\n{stderr}"
        );
        assert!(
            // The quickstart's 4 and the start records of its 7 spans.
            stderr.contains("11 log records"),
            "{protocol}: the lost log records are reported too:\n{stderr}"
        );
        // Start-up and the run take well under a second; shutdown waits at
        // most the 1 s export timeout for both signals together.
        assert!(
            took < Duration::from_secs(4),
            "{protocol}: the whole run, shutdown included: {took:?}"
        );
    }
}
