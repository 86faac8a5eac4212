//! Child processes continue the task's trace through `TRACEPARENT` /
//! `TRACESTATE` / `BAGGAGE` (`flowtrace::process::CommandExt`): one child is
//! a flowtrace program (`tests/children/env_carrier.rs`), one a
//! Python OpenTelemetry SDK program (`tests/python/env_child.py`). Both
//! export to a real collector (rotel), where the trace must be one.

mod support;

use std::process::Stdio;
use std::time::Duration;

use flowtrace::process::CommandExt as _;
use flowtrace::propagation::with_baggage;
use flowtrace::{traced, with_runcontext};
use opentelemetry::trace::TraceContextExt as _;
use support::{Collector, WAIT};

/// The run the parent starts under: Level 2 flags 03, a tracestate.
const TRACE: &str = "7bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// A command without this process's `OTEL_*` settings.
fn command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `cmd` (with the current task's carrier) and returns its stdout.
async fn run_child(mut cmd: tokio::process::Command) -> String {
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
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[traced]
async fn spawn_children(endpoint: String) -> (String, String) {
    let mut rust = command(support::example("child_env_carrier"));
    rust.env("OTEL_SERVICE_NAME", "flowtrace-child")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    let mut python = command(support::tools::python());
    python
        .arg(support::tools::root().join("tests/python/env_child.py"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    // A stale carrier in this process's own environment must not leak.
    python.env("TRACESTATE", "stale=1");
    let rust = run_child(rust).await;
    let python = run_child(python).await;
    (rust, python)
}

/// `flowtrace_telemetry::init()` installs flowtrace's propagators globally, so any
/// library using `global::get_text_map_propagator` gets the strict ones.
fn assert_global_propagator_is_strict() {
    let short = format!("00-{TRACE}-{}-01", &PARENT[1..]);
    let level2 = format!("00-{TRACE}-{PARENT}-03");
    opentelemetry::global::get_text_map_propagator(|propagator| {
        let mut fields: Vec<&str> = propagator.fields().collect();
        fields.sort_unstable();
        assert_eq!(fields, ["baggage", "traceparent", "tracestate"]);
        let carrier = std::collections::HashMap::from([("traceparent".to_owned(), short.clone())]);
        let cx = propagator.extract(&carrier);
        assert!(!cx.has_active_span(), "a 15-digit parent-id is rejected");
        let carrier = std::collections::HashMap::from([
            ("traceparent".to_owned(), level2.clone()),
            ("baggage".to_owned(), "token=dGVzdA==".to_owned()),
        ]);
        let mut out = std::collections::HashMap::new();
        propagator.inject_context(&propagator.extract(&carrier), &mut out);
        assert_eq!(out["traceparent"], level2, "flags 03 passed on");
        assert_eq!(out["baggage"], "token=dGVzdA==");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_continue_the_trace_through_the_environment() {
    support::tools::python();
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("flowtrace-parent", &[]);
    assert_global_propagator_is_strict();
    let run = with_runcontext()
        .custom_context([
            ("traceparent", format!("00-{TRACE}-{PARENT}-03")),
            ("tracestate", "congo=t61rcWkgMzE".to_owned()),
        ])
        .run(with_baggage([("customer", "dave")]).scope(spawn_children(collector.http_endpoint())))
        .await;
    telemetry.shutdown().expect("flushed");
    assert_eq!(run.trace_id(), TRACE);
    let (rust_out, python_out) = run.output();

    let line = rust_out
        .lines()
        .find_map(|l| l.split_once("CHILD ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no CHILD line in:\n{rust_out}"));
    let rust: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        rust["trace_id"], TRACE,
        "the flowtrace child continues the trace"
    );
    assert_eq!(rust["customer"], "dave", "and sees the baggage");

    let last = python_out.trim_end().lines().last().unwrap_or_default();
    let python: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(python["trace_id"], TRACE);
    assert_eq!(python["customer"], "dave");
    let env = &python["env"];
    assert!(
        env["TRACEPARENT"].as_str().unwrap().ends_with("-03"),
        "the random flag goes on: {env}"
    );
    assert_eq!(
        env["TRACESTATE"], "congo=t61rcWkgMzE",
        "the stale one replaced"
    );
    assert_eq!(env["BAGGAGE"], "customer=dave");

    // spawn_children (parent), child_task (flowtrace child), python-child
    let spans = tokio::task::spawn_blocking(move || collector.wait_for_trace(TRACE, 3, WAIT))
        .await
        .unwrap();
    let summary = support::summary(&spans);
    let parent = support::span_named(&spans, "spawn_children");
    assert_eq!(parent.parent_span_id, PARENT, "{summary}");
    let rust_child = support::span_named(&spans, "child_task");
    assert_eq!(rust_child.service_name, "flowtrace-child");
    assert_eq!(rust_child.parent_span_id, parent.span_id, "{summary}");
    assert_eq!(rust_child.attr("shop.customer"), Some("dave"));
    assert_eq!(rust_child.trace_state, "congo=t61rcWkgMzE");
    assert!(
        spans.iter().all(|s| s.name != "child_run"),
        "a carried parent replaces the child's run span: {summary}"
    );
    let python_child = support::span_named(&spans, "python-child");
    assert_eq!(python_child.service_name, "python-child");
    assert_eq!(python_child.parent_span_id, parent.span_id, "{summary}");
    assert_eq!(python["parent_span_id"], parent.span_id);
    assert_eq!(python_child.attr("shop.customer"), Some("dave"));
}
