//! An exporter the application brings — here opentelemetry-otlp's, over
//! gRPC and HTTP — runs behind flowtrace's batch processor with the
//! guarantees of the built-in ones, against a real collector (rotel): what
//! was queued during an outage arrives after a restart, within the queue
//! size; what is lost is counted by reason; shutdown keeps one deadline.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use flowtrace_telemetry::Telemetry;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use support::{Collector, WAIT};

/// The export timeout every test configures: shutdown may take this long.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// Scheduling noise on a loaded machine.
const SLACK: Duration = Duration::from_millis(150);

#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    Http,
}

const TRANSPORTS: [Transport; 2] = [Transport::Grpc, Transport::Http];

/// A runtime for tonic's channel task (opentelemetry-otlp builds its channel
/// in the caller's runtime, as applications do in `#[tokio::main]`).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn span_exporter(
    rt: &tokio::runtime::Runtime,
    transport: Transport,
    collector: &Collector,
) -> opentelemetry_otlp::SpanExporter {
    let _entered = rt.enter();
    match transport {
        Transport::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(collector.grpc_endpoint())
            .with_timeout(TIMEOUT)
            .build(),
        Transport::Http => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(collector.http_traces_endpoint())
            .with_timeout(TIMEOUT)
            .build(),
    }
    .expect("opentelemetry-otlp span exporter")
}

fn log_exporter(
    rt: &tokio::runtime::Runtime,
    transport: Transport,
    collector: &Collector,
) -> opentelemetry_otlp::LogExporter {
    let _entered = rt.enter();
    match transport {
        Transport::Grpc => opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(collector.grpc_endpoint())
            .with_timeout(TIMEOUT)
            .build(),
        Transport::Http => opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/logs", collector.http_endpoint()))
            .with_timeout(TIMEOUT)
            .build(),
    }
    .expect("opentelemetry-otlp log exporter")
}

fn vars(queue: usize) -> Vec<(String, String)> {
    [
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ("OTEL_BSP_EXPORT_TIMEOUT", TIMEOUT.as_millis().to_string()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", queue.to_string()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10".to_owned()),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50".to_owned()),
        ("OTEL_BLRP_EXPORT_TIMEOUT", TIMEOUT.as_millis().to_string()),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", queue.to_string()),
        ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "10".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn telemetry(
    rt: &tokio::runtime::Runtime,
    transport: Transport,
    collector: &Collector,
    queue: usize,
) -> Telemetry {
    flowtrace_telemetry::builder()
        .env_vars(vars(queue))
        .span_exporter(span_exporter(rt, transport, collector))
        .log_exporter(log_exporter(rt, transport, collector))
        .service_name("any-exporter")
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry")
}

fn spans(telemetry: &Telemetry, prefix: &str, n: usize) {
    let tracer = telemetry.provider().tracer("faults");
    for i in 0..n {
        tracer.start(format!("{prefix}-{i}")).end();
    }
}

fn logs(telemetry: &Telemetry, prefix: &str, n: usize) {
    let provider = telemetry.logger_provider().expect("a log exporter");
    let logger = provider.logger("faults");
    for i in 0..n {
        let mut record = logger.create_log_record();
        record.set_body(format!("{prefix}-{i}").into());
        logger.emit(record);
    }
}

fn received_spans(collector: &Collector, prefix: &str) -> usize {
    let prefix = format!("{prefix}-");
    collector
        .spans()
        .iter()
        .filter(|s| s.name.starts_with(&prefix))
        .count()
}

fn received_logs(collector: &Collector, prefix: &str) -> usize {
    let prefix = format!("{prefix}-");
    collector
        .logs()
        .iter()
        .filter(|r| r.body.starts_with(&prefix))
        .count()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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

/// One fault test at a time (a killed collector frees its ports).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn opentelemetry_otlp_behind_flowtrace_keeps_the_outage_within_the_queue() {
    let _serial = serial();
    let rt = runtime();
    for transport in TRANSPORTS {
        let mut collector = Collector::start();
        let telemetry = telemetry(&rt, transport, &collector, 25);
        spans(&telemetry, "up", 10);
        logs(&telemetry, "up", 10);
        wait_until("what came before the outage", || {
            received_spans(&collector, "up") == 10
                && received_logs(&collector, "up") == 10
                && telemetry.stats().exported == 10
                && telemetry.log_stats().exported == 10
        });
        collector.kill();
        // 40 of each during the outage, 25 fit in each queue.
        spans(&telemetry, "outage", 40);
        logs(&telemetry, "outage", 40);
        std::thread::sleep(Duration::from_millis(400));
        let (stats, log_stats) = (telemetry.stats(), telemetry.log_stats());
        assert_eq!(stats.queued, 25, "{transport:?}: spans kept: {stats}");
        assert_eq!(
            log_stats.queued, 25,
            "{transport:?}: records kept: {log_stats}"
        );
        collector.restart();
        wait_until("the retained spans and log records", || {
            received_spans(&collector, "outage") == 25 && received_logs(&collector, "outage") == 25
        });
        assert!(!bounded_shutdown(
            &telemetry,
            &format!("{transport:?}: restarted")
        ));
        for (stats, what) in [
            (telemetry.stats(), "spans"),
            (telemetry.log_stats(), "logs"),
        ] {
            assert_eq!(stats.exported, 35, "{transport:?} {what}: {stats}");
            assert_eq!(
                stats.dropped_queue_full, 15,
                "{transport:?} {what}: over the limit: {stats}"
            );
            assert_eq!(stats.dropped(), 15, "{transport:?} {what}: {stats}");
        }
    }
}

#[test]
fn opentelemetry_otlp_behind_flowtrace_never_reaching_a_collector_counts_everything() {
    let _serial = serial();
    let rt = runtime();
    for transport in TRANSPORTS {
        let collector = Collector::stopped();
        let telemetry = telemetry(&rt, transport, &collector, 20);
        spans(&telemetry, "lost", 25);
        logs(&telemetry, "lost", 25);
        assert!(
            bounded_shutdown(&telemetry, &format!("{transport:?}: never running")),
            "{transport:?}: losing spans is an error"
        );
        for (stats, what) in [
            (telemetry.stats(), "spans"),
            (telemetry.log_stats(), "logs"),
        ] {
            assert_eq!(stats.dropped(), 25, "{transport:?} {what}: {stats}");
            assert_eq!(stats.dropped_queue_full, 5, "{transport:?} {what}: {stats}");
            assert_eq!(
                stats.dropped_at_shutdown, 20,
                "{transport:?} {what}: {stats}"
            );
            assert!(
                stats.last_error.is_some(),
                "{transport:?} {what}: the reason is kept: {stats}"
            );
        }
    }
}
