//! Collector faults against a real collector process (rotel): not running
//! at start, killed mid-run, restarted, slow, the wrong protocol on the
//! port. In every case shutdown returns within the configured export
//! timeout, nothing panics, and every lost span is counted on the guard.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use flowtrace_telemetry::{ExporterKind, Protocol, Telemetry};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use support::{Collector, Mode, Proxy, WAIT};

/// The export timeout every test configures: shutdown may take this long.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// Scheduling noise on a loaded CI machine (the processor itself answers
/// before the deadline).
const SLACK: Duration = Duration::from_millis(100);

fn telemetry(protocol: Protocol, endpoint: &str, queue: usize) -> Telemetry {
    flowtrace_telemetry::builder()
        .env_vars([
            (
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                TIMEOUT.as_millis().to_string(),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", queue.to_string()),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10".into()),
        ])
        .exporter(ExporterKind::Otlp)
        .otlp_protocol(protocol)
        .otlp_endpoint(endpoint)
        .service_name("faults")
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry")
}

/// `http://` base URL of the collector port `protocol` speaks.
fn endpoint(collector: &Collector, protocol: Protocol) -> String {
    match protocol {
        Protocol::Grpc => collector.grpc_endpoint(),
        _ => collector.http_endpoint(),
    }
}

/// Ends `n` spans named `<prefix>-<i>`.
fn spans(telemetry: &Telemetry, prefix: &str, n: usize) {
    let tracer = telemetry.provider().tracer("faults");
    for i in 0..n {
        tracer.start(format!("{prefix}-{i}")).end();
    }
}

fn received(collector: &Collector, prefix: &str) -> usize {
    collector
        .spans()
        .iter()
        .filter(|s| s.name.starts_with(&format!("{prefix}-")))
        .count()
}

/// Shuts down, asserting the bound; returns whether it reported an error.
fn bounded_shutdown(telemetry: &Telemetry, what: &str) -> bool {
    let started = Instant::now();
    let result = telemetry.shutdown();
    let took = started.elapsed();
    assert!(
        took <= TIMEOUT + SLACK,
        "{what}: shutdown took {took:?}, the export timeout is {TIMEOUT:?}"
    );
    eprintln!("{what}: shutdown took {took:?}: {result:?}");
    result.is_err()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const PROTOCOLS: [Protocol; 2] = [Protocol::Grpc, Protocol::HttpProtobuf];

/// One fault test at a time: a killed collector frees its ports, and a
/// collector another test starts meanwhile could be given one of them — the
/// exporter would then reach the wrong collector.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn collector_never_running_costs_one_timeout_and_counts_every_span() {
    let _serial = serial();
    for protocol in PROTOCOLS {
        let collector = Collector::stopped();
        let telemetry = telemetry(protocol, &endpoint(&collector, protocol), 2048);
        spans(&telemetry, "lost", 25);
        assert!(
            bounded_shutdown(&telemetry, &format!("{protocol}: never running")),
            "{protocol}: losing spans is an error"
        );
        let stats = telemetry.stats();
        assert_eq!(stats.dropped(), 25, "{protocol}: {stats}");
        assert_eq!(stats.dropped_at_shutdown, 25, "{protocol}: {stats}");
        assert!(
            stats
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("refused")
                || stats.last_error.as_deref().unwrap_or("").contains("onnect"),
            "{protocol}: the reason is kept: {stats}"
        );
    }
}

#[test]
fn collector_started_late_receives_what_was_queued() {
    let _serial = serial();
    for protocol in PROTOCOLS {
        let mut collector = Collector::stopped();
        let telemetry = telemetry(protocol, &endpoint(&collector, protocol), 2048);
        spans(&telemetry, "early", 30);
        // A few attempts fail with "connection refused" meanwhile.
        std::thread::sleep(Duration::from_millis(500));
        let stats = telemetry.stats();
        assert_eq!(
            stats.queued, 30,
            "{protocol}: retained, not dropped: {stats}"
        );
        collector.restart();
        wait_until("the queued spans", || received(&collector, "early") == 30);
        assert!(!bounded_shutdown(&telemetry, "late start"));
        let stats = telemetry.stats();
        assert_eq!(stats.dropped(), 0, "{protocol}: {stats}");
        assert_eq!(stats.exported, 30, "{protocol}: {stats}");
    }
}

#[test]
fn collector_killed_mid_run_loses_only_what_came_after() {
    let _serial = serial();
    for protocol in PROTOCOLS {
        let mut collector = Collector::start();
        let telemetry = telemetry(protocol, &endpoint(&collector, protocol), 2048);
        spans(&telemetry, "before", 10);
        // Acknowledged, not just received: a kill between the two would
        // make the exporter send the batch again (at-least-once).
        wait_until("the spans before the kill", || {
            received(&collector, "before") == 10 && telemetry.stats().exported == 10
        });
        collector.kill();
        spans(&telemetry, "after", 10);
        assert!(bounded_shutdown(&telemetry, "killed"));
        let stats = telemetry.stats();
        assert_eq!(stats.exported, 10, "{protocol}: {stats}");
        assert_eq!(stats.dropped(), 10, "{protocol}: {stats}");
    }
}

#[test]
fn collector_restarted_gets_the_outage_within_the_queue_limit() {
    let _serial = serial();
    for protocol in PROTOCOLS {
        let mut collector = Collector::start();
        let telemetry = telemetry(protocol, &endpoint(&collector, protocol), 25);
        spans(&telemetry, "up", 10);
        // Acknowledged, not just received: a kill between the two would
        // make the exporter send the batch again (at-least-once).
        wait_until("the spans before the outage", || {
            received(&collector, "up") == 10 && telemetry.stats().exported == 10
        });
        collector.kill();
        // 40 spans during the outage, 25 fit in the queue.
        spans(&telemetry, "outage", 40);
        std::thread::sleep(Duration::from_millis(300));
        collector.restart();
        wait_until("the retained spans", || {
            received(&collector, "outage") == 25
        });
        assert!(!bounded_shutdown(&telemetry, "restarted"));
        let stats = telemetry.stats();
        assert_eq!(stats.exported, 35, "{protocol}: {stats}");
        assert_eq!(
            stats.dropped_queue_full, 15,
            "{protocol}: over the limit: {stats}"
        );
        assert_eq!(stats.dropped(), 15, "{protocol}: {stats}");
        let outage: Vec<String> = collector
            .spans()
            .into_iter()
            .filter(|s| s.name.starts_with("outage-"))
            .map(|s| s.name)
            .collect();
        let expected: Vec<String> = (0..25).map(|i| format!("outage-{i}")).collect();
        let mut sorted = outage.clone();
        sorted.sort_by_key(|n| n[7..].parse::<u32>().unwrap_or(0));
        assert_eq!(sorted, expected, "the oldest spans are kept, once each");
    }
}

#[test]
fn slow_collector_bounds_exports_and_leaves_the_application_alone() {
    let _serial = serial();
    for protocol in PROTOCOLS {
        let collector = Collector::start();
        let target = match protocol {
            Protocol::Grpc => collector.grpc_addr(),
            _ => collector.http_addr(),
        };
        // Slow but within the timeout: everything arrives.
        let proxy = Proxy::start(target, Mode::Delay(Duration::from_millis(200)));
        let telemetry = telemetry(protocol, &proxy.endpoint(), 2048);
        spans(&telemetry, "slow", 10);
        wait_until("the slow spans", || received(&collector, "slow") == 10);

        // Then it stops answering: exports time out, the application does not wait.
        proxy.set_mode(Mode::Stall);
        let tracer = telemetry.provider().tracer("faults");
        let mut worst = Duration::ZERO;
        let started = Instant::now();
        for i in 0..2000 {
            let span_started = Instant::now();
            tracer.start(format!("stalled-{i}")).end();
            worst = worst.max(span_started.elapsed());
        }
        let total = started.elapsed();
        assert!(
            worst < Duration::from_millis(50) && total < Duration::from_secs(2),
            "{protocol}: ending a span never waits for the exporter: worst {worst:?}, 2000 in {total:?}"
        );
        eprintln!(
            "{protocol}: stalled collector: worst span end {worst:?}, 2000 spans in {total:?}"
        );
        assert!(bounded_shutdown(&telemetry, "stalled"));
        let stats = telemetry.stats();
        assert_eq!(stats.exported, 10, "{protocol}: {stats}");
        assert_eq!(stats.dropped(), 2000, "{protocol}: {stats}");
        drop(proxy);
    }
}

#[test]
fn wrong_protocol_on_the_port_is_counted_not_fatal() {
    let _serial = serial();
    let collector = Collector::start();
    let cases = [
        (
            Protocol::Grpc,
            collector.http_endpoint(),
            "gRPC to the HTTP port",
        ),
        (
            Protocol::HttpProtobuf,
            collector.grpc_endpoint(),
            "HTTP to the gRPC port",
        ),
        (
            Protocol::HttpJson,
            collector.grpc_endpoint(),
            "HTTP/JSON to the gRPC port",
        ),
    ];
    for (protocol, endpoint, what) in cases {
        let telemetry = telemetry(protocol, &endpoint, 2048);
        spans(&telemetry, "wrong", 12);
        bounded_shutdown(&telemetry, what);
        let stats = telemetry.stats();
        assert_eq!(stats.exported, 0, "{what}: {stats}");
        assert_eq!(stats.dropped(), 12, "{what}: {stats}");
        assert!(stats.last_error.is_some(), "{what}: a reason is kept");
        eprintln!("{what}: {stats}");
    }
    assert_eq!(received(&collector, "wrong"), 0);
}
