//! Log records get the spans' guarantees over flowtrace's own OTLP
//! exporter, against a real collector (rotel): kept through an outage
//! within `OTEL_BLRP_MAX_QUEUE_SIZE`, counted by reason, shut down against
//! the spans' deadline, reported at shutdown.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use flowtrace_telemetry::{ExporterKind, Protocol, Telemetry};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use support::{Collector, WAIT};

const TIMEOUT: Duration = Duration::from_millis(1000);
const SLACK: Duration = Duration::from_millis(150);
const PROTOCOLS: [Protocol; 2] = [Protocol::Grpc, Protocol::HttpProtobuf];

fn telemetry(protocol: Protocol, collector: &Collector, queue: usize) -> Telemetry {
    let endpoint = match protocol {
        Protocol::Grpc => collector.grpc_endpoint(),
        _ => collector.http_endpoint(),
    };
    flowtrace_telemetry::builder()
        .env_vars([
            (
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                TIMEOUT.as_millis().to_string(),
            ),
            ("OTEL_BLRP_SCHEDULE_DELAY", "50".into()),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", queue.to_string()),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "10".into()),
        ])
        .exporter(ExporterKind::Otlp)
        .otlp_protocol(protocol)
        .otlp_endpoint(endpoint)
        .service_name("faults-logs")
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry")
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

fn received(collector: &Collector, prefix: &str) -> usize {
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
    result.is_err()
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn log_records_survive_a_collector_restart_within_their_queue() {
    let _serial = serial();
    for protocol in PROTOCOLS {
        let mut collector = Collector::start();
        let telemetry = telemetry(protocol, &collector, 25);
        logs(&telemetry, "up", 10);
        wait_until("the records before the outage", || {
            received(&collector, "up") == 10 && telemetry.log_stats().exported == 10
        });
        collector.kill();
        logs(&telemetry, "outage", 40);
        std::thread::sleep(Duration::from_millis(300));
        let stats = telemetry.log_stats();
        assert_eq!(stats.queued, 25, "{protocol}: retained: {stats}");
        collector.restart();
        wait_until("the retained records", || {
            received(&collector, "outage") == 25
        });
        assert!(!bounded_shutdown(&telemetry, "restarted"));
        let stats = telemetry.log_stats();
        assert_eq!(stats.exported, 35, "{protocol}: {stats}");
        assert_eq!(stats.dropped_queue_full, 15, "{protocol}: {stats}");
        assert_eq!(stats.dropped(), 15, "{protocol}: {stats}");
        let mut outage: Vec<u32> = collector
            .logs()
            .into_iter()
            .filter_map(|r| r.body.strip_prefix("outage-").and_then(|n| n.parse().ok()))
            .collect();
        outage.sort_unstable();
        assert_eq!(outage, (0..25).collect::<Vec<_>>(), "the oldest, once each");
    }
}

#[test]
fn log_records_lost_to_a_missing_collector_are_counted_within_one_deadline() {
    let _serial = serial();
    for protocol in PROTOCOLS {
        let collector = Collector::stopped();
        let telemetry = telemetry(protocol, &collector, 2048);
        logs(&telemetry, "lost", 4);
        assert!(
            bounded_shutdown(&telemetry, "never running"),
            "{protocol}: losing log records is an error"
        );
        let stats = telemetry.log_stats();
        assert_eq!(stats.dropped_at_shutdown, 4, "{protocol}: {stats}");
        assert_eq!(stats.exported, 0, "{protocol}: {stats}");
        assert!(stats.last_error.is_some(), "{protocol}: {stats}");
    }
}
