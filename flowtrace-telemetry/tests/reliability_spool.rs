//! The durable local spool: `OTEL_TRACES_EXPORTER=otlp,file` writes both,
//! and `flowtrace replay` sends a file to a collector later — the same
//! spans, ids and all — reporting bad lines and an unreachable collector.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flowtrace_telemetry::Telemetry;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use support::{Collector, Output, Span, WAIT, read_otlp_json_file, run_bounded};

fn spool_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("spool-{}-{name}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn telemetry(endpoint: &str, file: &Path) -> Telemetry {
    flowtrace_telemetry::builder()
        .env_vars([
            ("OTEL_TRACES_EXPORTER", "otlp,file"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("FLOWTRACE_TRACE_FILE", file.to_str().unwrap()),
            ("OTEL_SERVICE_NAME", "spool"),
        ])
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry")
}

/// A parent with `n` children, each with an attribute.
fn spans(telemetry: &Telemetry, n: usize) {
    let tracer = telemetry.provider().tracer("spool");
    tracer.in_span("spool-parent", |cx| {
        for i in 0..n {
            let mut child = tracer.start_with_context(format!("spool-child-{i}"), &cx);
            child.set_attribute(KeyValue::new("i", i as i64));
            child.end();
        }
    });
}

/// `(trace, span, parent, name)` sorted: what must survive the trip.
fn identity(spans: &[Span]) -> Vec<(String, String, String, String)> {
    let mut ids: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with("spool-"))
        .map(|s| {
            (
                s.trace_id.clone(),
                s.span_id.clone(),
                s.parent_span_id.clone(),
                s.name.clone(),
            )
        })
        .collect();
    ids.sort();
    ids
}

fn replay(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowtrace"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("replay").args(args);
    run_bounded(&mut cmd, Duration::from_secs(60))
}

#[test]
fn otlp_and_file_both_receive_every_span() {
    let collector = Collector::start();
    let file = spool_path("both");
    let telemetry = telemetry(&collector.grpc_endpoint(), &file);
    spans(&telemetry, 4);
    telemetry.shutdown().expect("both exporters delivered");
    assert_eq!(telemetry.stats().exported, 10, "5 spans × 2 exporters");
    let received = collector.wait_for("5 spans", WAIT, |s| identity(s).len() == 5);
    let written = read_otlp_json_file(&file);
    assert_eq!(identity(&written), identity(&received), "the same spans");
    std::fs::remove_file(&file).ok();
}

#[test]
fn a_spool_written_during_an_outage_replays_later() {
    let mut collector = Collector::stopped();
    let file = spool_path("outage");
    let telemetry = telemetry(&collector.grpc_endpoint(), &file);
    spans(&telemetry, 9);
    let _ = telemetry.shutdown();
    let stats = telemetry.stats();
    assert_eq!(stats.exported, 10, "the file has them: {stats}");
    assert_eq!(stats.dropped(), 10, "OTLP lost them: {stats}");
    let written = read_otlp_json_file(&file);
    assert_eq!(identity(&written).len(), 10);

    collector.restart();
    let cases = [
        ("grpc", collector.grpc_endpoint()),
        ("http/protobuf", collector.http_endpoint()),
        ("http/json", collector.http_endpoint()),
    ];
    for (round, (protocol, endpoint)) in cases.iter().enumerate() {
        let out = replay(&[
            file.to_str().unwrap(),
            "--endpoint",
            endpoint,
            "--protocol",
            protocol,
        ]);
        out.assert_success(&format!("replay over {protocol}"));
        assert!(
            out.stdout.contains("10 spans sent to"),
            "{protocol}: {}",
            out.stdout
        );
        let want = 10 * (round + 1);
        let received = collector.wait_for(protocol, WAIT, |s| identity(s).len() >= want);
        let mut once = identity(&received);
        once.dedup();
        assert_eq!(
            once,
            identity(&written),
            "{protocol}: same ids after replay"
        );
        let child = received.iter().find(|s| s.name == "spool-child-3").unwrap();
        assert_eq!(child.attr("i"), Some("3"), "attributes survive");
        assert_eq!(child.service_name, "spool", "the resource survives");
    }
    std::fs::remove_file(&file).ok();
}

#[test]
fn replay_skips_bad_lines_and_gives_up_on_an_unreachable_collector() {
    let collector = Collector::start();
    let good = spool_path("good");
    let telemetry = flowtrace_telemetry::builder()
        .env_vars([
            ("OTEL_TRACES_EXPORTER", "file"),
            ("FLOWTRACE_TRACE_FILE", good.to_str().unwrap()),
            ("OTEL_SERVICE_NAME", "spool"),
        ])
        .install_tracing_subscriber(false)
        .init()
        .unwrap();
    spans(&telemetry, 1);
    telemetry.shutdown().unwrap();
    let line = std::fs::read_to_string(&good).unwrap();
    let mixed = spool_path("mixed");
    std::fs::write(&mixed, format!("{{\"truncated\n\u{0}\u{1b}[31m\n{line}")).unwrap();

    let out = replay(&[
        mixed.to_str().unwrap(),
        "--endpoint",
        &collector.http_endpoint(),
    ]);
    assert_eq!(out.status.code(), Some(1), "lines were skipped: {out:?}");
    assert!(
        out.stderr.contains(":1: skipped: not an OTLP/JSON request"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(":2: skipped"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("\u{1b}"),
        "control bytes are not echoed raw"
    );
    collector.wait_for("the good line", WAIT, |s| identity(s).len() == 2);

    let down = Collector::stopped();
    let started = Instant::now();
    let out = replay(&[
        good.to_str().unwrap(),
        "--endpoint",
        &down.http_endpoint(),
        "--retry-for",
        "700",
    ]);
    assert_eq!(out.status.code(), Some(3), "unreachable: {out:?}");
    assert!(out.stderr.contains("resume from line 1"), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by --retry-for, took {:?}",
        started.elapsed()
    );

    let out = replay(&[good.to_str().unwrap(), "--protocol", "carrier-pigeon"]);
    assert_eq!(out.status.code(), Some(2), "usage error: {out:?}");
    assert!(
        out.stderr.contains("accepted values are grpc"),
        "{}",
        out.stderr
    );
    for file in [good, mixed] {
        std::fs::remove_file(&file).ok();
    }
}
