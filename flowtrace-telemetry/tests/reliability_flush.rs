//! Flush guarantees, each in a process of its own (the child program
//! `tests/children/flush.rs`): the guard flushes on drop on multi-thread and
//! current_thread runtimes when `main` returns, an explicit `shutdown()`
//! survives `std::process::exit`, the panic hook flushes before a panic
//! aborts the process, and unwinding from a panic drops (and flushes) the
//! guard. The batch delay is 60 s everywhere, so only a flush can deliver
//! in time; the control cases (no shutdown, no hook) show spans are lost
//! without it, so the tests can fail.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use support::{Collector, Output, Span, WAIT, example_of, run_bounded};

/// Runs `scenario` in a child process exporting to `endpoint` over gRPC.
fn run_child(scenario: &str, endpoint: &str) -> Output {
    let mut cmd = Command::new(example_of("flowtrace-telemetry", "child_flush"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key.starts_with("FLOWTRACE_") || key == "TRACEPARENT" {
            cmd.env_remove(key);
        }
    }
    cmd.arg(scenario)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .env("OTEL_SERVICE_NAME", scenario);
    run_bounded(&mut cmd, Duration::from_secs(60))
}

/// The workflow's spans of `scenario` that reached the collector.
fn delivered(collector: &Collector, scenario: &str, expect: usize) -> Vec<Span> {
    let of = |spans: &[Span]| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| s.service_name == scenario)
            .cloned()
            .collect()
    };
    of(&collector.wait_for(scenario, WAIT, |spans| of(spans).len() >= expect))
}

/// Nothing of `scenario` arrives within a second.
fn nothing_delivered(collector: &Collector, scenario: &str) {
    std::thread::sleep(Duration::from_secs(1));
    let spans: Vec<Span> = collector
        .spans()
        .into_iter()
        .filter(|s| s.service_name == scenario)
        .collect();
    assert!(spans.is_empty(), "{scenario}: {}", support::summary(&spans));
}

fn names(spans: &[Span]) -> Vec<&str> {
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    names
}

const WHOLE_RUN: [&str; 5] = ["flush-run", "step", "step", "step", "workflow"];

#[test]
fn guard_flushes_when_main_returns_on_either_runtime() {
    let collector = Collector::start();
    for scenario in ["multi_thread_return", "current_thread_return"] {
        run_child(scenario, &collector.grpc_endpoint()).assert_success(scenario);
        let spans = delivered(&collector, scenario, 5);
        assert_eq!(names(&spans), WHOLE_RUN, "{scenario}");
    }
}

#[test]
fn explicit_shutdown_survives_process_exit() {
    let collector = Collector::start();
    run_child("exit_after_shutdown", &collector.grpc_endpoint())
        .assert_success("exit after shutdown");
    let spans = delivered(&collector, "exit_after_shutdown", 5);
    assert_eq!(names(&spans), WHOLE_RUN);

    run_child("exit_without_shutdown", &collector.grpc_endpoint())
        .assert_success("exit without shutdown");
    nothing_delivered(&collector, "exit_without_shutdown");
}

#[test]
fn panic_hook_flushes_before_an_abort() {
    let collector = Collector::start();
    let out = run_child("panic_abort_with_hook", &collector.grpc_endpoint());
    assert!(!out.status.success(), "the child aborted: {}", out.stderr);
    let spans = delivered(&collector, "panic_abort_with_hook", 5);
    assert_eq!(
        names(&spans),
        WHOLE_RUN,
        "every span ended before the panic"
    );

    let out = run_child("panic_abort_without_hook", &collector.grpc_endpoint());
    assert!(!out.status.success(), "the child aborted: {}", out.stderr);
    nothing_delivered(&collector, "panic_abort_without_hook");
}

#[test]
fn unwinding_from_a_panic_drops_and_flushes_the_guard() {
    let collector = Collector::start();
    let out = run_child("panic_unwinds_main", &collector.grpc_endpoint());
    assert!(!out.status.success(), "the child panicked");
    assert!(out.stdout.contains("main failed") || out.stderr.contains("main failed"));
    let spans = delivered(&collector, "panic_unwinds_main", 5);
    assert_eq!(names(&spans), WHOLE_RUN);
}

#[test]
fn lost_spans_are_reported_in_one_line_at_shutdown() {
    // Ports chosen, nothing listening.
    let collector = Collector::stopped();
    let out = run_child("report_dropped", &collector.grpc_endpoint());
    out.assert_success("report_dropped");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("flowtrace:"))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {lines:#?}");
    assert!(
        lines[0].starts_with("flowtrace: 5 spans")
            && lines[0]
                .contains(" were not delivered: otlp lost 5 of 5 spans (left at shutdown: 5)"),
        "the number and the reason: {}",
        lines[0]
    );
    assert!(
        lines[0].contains("Connection refused"),
        "the last error: {}",
        lines[0]
    );
}
