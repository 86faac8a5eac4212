//! The quickstart, run as its own process against a collector that is not
//! there: its spans and its log records are both counted and reported on
//! stderr at shutdown, within the export timeout — no signal vanishes
//! without a word.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Collector, run_bounded};

/// The quickstart binary of this test run's profile (built by `cargo test`,
/// or here when this test runs alone).
fn quickstart() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf();
    let bin = profile_dir.join("examples").join("quickstart");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--example", "quickstart"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        run_bounded(&mut build, Duration::from_secs(600)).assert_success("building the quickstart");
    }
    bin
}

#[test]
fn a_missing_collector_costs_spans_and_log_records_and_both_are_reported() {
    let collector = Collector::stopped();
    for (protocol, endpoint) in [
        ("grpc", collector.grpc_endpoint()),
        ("http/protobuf", collector.http_endpoint()),
    ] {
        let mut cmd = Command::new(quickstart());
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
