//! `init()` end to end: the guard's flush and shutdown on both runtime
//! flavours, their time bound, strict mode, the disabled SDK, and (once) the
//! globals.

use std::time::{Duration, Instant};

use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use serde_json::Value;

use super::test_util::temp_path;
use super::*;

/// Span names found in an OTLP/JSON lines file.
fn names_in(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut names = Vec::new();
    for line in text.lines() {
        let request: Value = serde_json::from_str(line).expect("each line is JSON");
        for rs in request["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for span in ss["spans"].as_array().into_iter().flatten() {
                    names.push(span["name"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    names
}

fn file_telemetry(path: &std::path::Path) -> Telemetry {
    builder()
        .env_vars([
            ("FLOWTRACE_TRACE_FILE", path.to_str().unwrap()),
            // Long enough that only flush/shutdown can export in time.
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ])
        .install_tracing_subscriber(false)
        .without_globals()
        .init()
        .unwrap()
}

/// An OTLP endpoint that accepts connections and never answers, with 300 ms
/// timeouts: every export hangs until the bound.
fn silent_otlp(protocol: &str) -> (Telemetry, std::net::TcpListener) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let telemetry = builder()
        .env_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ])
        .install_tracing_subscriber(false)
        .without_globals()
        .strict(true)
        .init()
        .unwrap();
    (telemetry, listener)
}

#[test]
fn embedded_default_writes_the_file_on_drop() {
    let path = temp_path("guard-default");
    let telemetry = file_telemetry(&path);
    assert_eq!(
        telemetry.trace_file(),
        Some(path.as_path()),
        "the guard names the file"
    );
    assert!(
        telemetry.warnings().is_empty(),
        "{:?}",
        telemetry.warnings()
    );
    telemetry
        .provider()
        .tracer("t")
        .in_span("written-on-drop", |_| {});
    drop(telemetry);
    assert_eq!(
        names_in(&path),
        ["written-on-drop"],
        "drop flushed the queue"
    );
    std::fs::remove_file(&path).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_on_a_multi_thread_runtime() {
    let path = temp_path("guard-multi");
    let telemetry = file_telemetry(&path);
    let tracer = telemetry.provider().tracer("t");
    tokio::spawn(async move { tracer.in_span("from-a-worker", |_| {}) })
        .await
        .unwrap();
    drop(telemetry); // inside the runtime, on a worker thread
    assert_eq!(
        names_in(&path),
        ["from-a-worker"],
        "flushed without deadlock"
    );
    std::fs::remove_file(&path).ok();
}

#[tokio::test(flavor = "current_thread")]
async fn drop_on_the_thread_of_a_current_thread_runtime() {
    let path = temp_path("guard-current");
    let telemetry = file_telemetry(&path);
    telemetry.provider().tracer("t").in_span("on-main", |_| {});
    tokio::task::yield_now().await;
    drop(telemetry); // the only runtime thread blocks here
    assert_eq!(names_in(&path), ["on-main"], "flushed without deadlock");
    std::fs::remove_file(&path).ok();
}

#[tokio::test(flavor = "current_thread")]
async fn silent_otlp_shutdown_is_bounded_on_a_current_thread_runtime() {
    for protocol in ["grpc", "http/protobuf"] {
        let (telemetry, _listener) = silent_otlp(protocol);
        telemetry
            .provider()
            .tracer("t")
            .in_span("never-acknowledged", |_| {});
        let started = Instant::now();
        let result = telemetry.shutdown();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{protocol}: bounded by the 300 ms timeout, took {took:?}"
        );
        assert!(result.is_err(), "{protocol}: the failed export is reported");
        let started = Instant::now();
        drop(telemetry);
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "drop after shutdown does nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_otlp_drop_is_bounded_on_a_multi_thread_runtime() {
    for protocol in ["grpc", "http/json"] {
        let (telemetry, _listener) = silent_otlp(protocol);
        telemetry
            .provider()
            .tracer("t")
            .in_span("never-acknowledged", |_| {});
        let started = Instant::now();
        drop(telemetry);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{protocol}: bounded, took {took:?}"
        );
    }
}

#[test]
fn an_unreachable_endpoint_is_quick_too() {
    // Port 9 (discard) on localhost is normally closed: connection refused.
    let telemetry = builder()
        .env_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ])
        .install_tracing_subscriber(false)
        .without_globals()
        .init()
        .unwrap();
    assert_eq!(
        telemetry.trace_file(),
        None,
        "an endpoint means otlp, not the file"
    );
    telemetry.provider().tracer("t").in_span("lost", |_| {});
    let started = Instant::now();
    let _ = telemetry.force_flush();
    let _ = telemetry.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn shutdown_is_idempotent_and_flush_after_it_errs() {
    let path = temp_path("guard-idempotent");
    let telemetry = file_telemetry(&path);
    telemetry.provider().tracer("t").in_span("once", |_| {});
    telemetry.force_flush().unwrap();
    assert_eq!(names_in(&path), ["once"], "force_flush exports");
    assert!(telemetry.shutdown().is_ok(), "first shutdown");
    assert!(telemetry.shutdown().is_ok(), "second shutdown is a no-op");
    assert!(
        telemetry.force_flush().is_err(),
        "flush after shutdown says so"
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn warnings_are_kept_and_strict_mode_fails() {
    let bad = [
        ("OTEL_TRACES_EXPORTER", "none,kafka"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_PROPAGATORS", "b3"),
    ];
    let telemetry = builder()
        .env_vars(bad)
        .install_tracing_subscriber(false)
        .without_globals()
        .init()
        .expect("default mode warns and goes on");
    let settings: Vec<&str> = telemetry.warnings().iter().map(|w| w.setting()).collect();
    assert_eq!(
        settings,
        [
            "OTEL_TRACES_EXPORTER",
            "OTEL_TRACES_SAMPLER",
            "OTEL_PROPAGATORS"
        ],
        "one warning per bad value, in reading order"
    );
    drop(telemetry);

    let err = builder()
        .env_vars(bad)
        .strict(true)
        .install_tracing_subscriber(false)
        .without_globals()
        .init()
        .unwrap_err();
    assert_eq!(
        err.problems().len(),
        3,
        "strict mode returns all problems: {err}"
    );
}

#[test]
fn strict_mode_fails_on_exporters_that_cannot_be_built() {
    let dir = temp_path("no-dir").join("x.jsonl");
    let result = builder()
        .env_vars([("FLOWTRACE_TRACE_FILE", dir.to_str().unwrap())])
        .strict(true)
        .install_tracing_subscriber(false)
        .without_globals()
        .init();
    let err = result.unwrap_err();
    assert_eq!(err.problems()[0].setting(), "FLOWTRACE_TRACE_FILE", "{err}");

    let telemetry = builder()
        .env_vars([("FLOWTRACE_TRACE_FILE", dir.to_str().unwrap())])
        .install_tracing_subscriber(false)
        .without_globals()
        .init()
        .expect("default mode goes on without the file");
    assert_eq!(telemetry.trace_file(), None, "no file exporter");
    assert!(telemetry.warnings()[0].to_string().contains("cannot open"));
}

#[test]
fn disabled_sdk_is_inert() {
    let path = temp_path("guard-disabled");
    let telemetry = builder()
        .env_vars([
            ("OTEL_SDK_DISABLED", "true"),
            ("FLOWTRACE_TRACE_FILE", path.to_str().unwrap()),
        ])
        .init()
        .unwrap();
    assert_eq!(telemetry.trace_file(), None, "no exporter");
    assert!(!path.exists(), "not even the file is created");
    telemetry.provider().tracer("t").in_span("nowhere", |_| {});
    assert!(
        telemetry.force_flush().is_ok() && telemetry.shutdown().is_ok(),
        "no-ops"
    );
}

#[test]
fn code_settings_win_and_resource_is_written() {
    let path = temp_path("guard-code");
    let telemetry = builder()
        .env_vars([
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])
        .service_name("from-code")
        .resource_attribute(opentelemetry::KeyValue::new("team", "search"))
        .exporter(ExporterKind::File)
        .trace_file(&path)
        .install_tracing_subscriber(false)
        .without_globals()
        .init()
        .unwrap();
    telemetry.provider().tracer("t").in_span("s", |_| {});
    drop(telemetry);
    let line = std::fs::read_to_string(&path).unwrap();
    let request: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let attributes = request["resourceSpans"][0]["resource"]["attributes"]
        .as_array()
        .unwrap()
        .clone();
    let get = |key: &str| {
        attributes
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"]["stringValue"].clone())
    };
    assert_eq!(
        get("service.name"),
        Some("from-code".into()),
        "the builder beats OTEL_SERVICE_NAME"
    );
    assert_eq!(
        get("team"),
        Some("search".into()),
        "resource attribute from code"
    );
    assert_eq!(
        get("telemetry.sdk.language"),
        Some("rust".into()),
        "SDK attributes kept"
    );
    std::fs::remove_file(&path).ok();
}

/// The only test that installs the globals (they are process-wide).
#[test]
fn init_installs_the_globals() {
    let path = temp_path("guard-globals");
    let telemetry = builder()
        .env_vars([("FLOWTRACE_TRACE_FILE", path.to_str().unwrap())])
        .init()
        .unwrap();

    let tracer = opentelemetry::global::tracer("app");
    let span = tracer.start("global-span");
    let cx = opentelemetry::Context::current_with_span(span);
    {
        let _attached = cx.clone().attach();
        tracing::info!(answer = 42, "spanless event");
        tracing::info_span!("tracing-span").in_scope(|| {});
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    assert!(
        carrier.contains_key("traceparent"),
        "the global propagator is W3C trace context"
    );
    cx.span().end();
    drop(cx);

    let subscriber_note = telemetry.warnings().iter().any(|w| w.is_note());
    drop(telemetry);
    let names = names_in(&path);
    assert!(
        names.contains(&"global-span".to_owned()),
        "global provider: {names:?}"
    );
    if !subscriber_note {
        // Only when no other subscriber was installed first.
        assert!(
            names.contains(&"tracing-span".to_owned()),
            "tracing spans: {names:?}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("spanless event"),
            "the spanless event is on the current span"
        );
    }
    std::fs::remove_file(&path).ok();
}
