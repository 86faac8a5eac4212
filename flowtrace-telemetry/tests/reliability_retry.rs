//! The OTLP retry rules, end to end through the exporter, against scripted
//! endpoints: which answers are retried (and after how long), which drop
//! the batch, and how a partial success is counted. Rules: retry only gRPC
//! CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE,
//! DATA_LOSS (RESOURCE_EXHAUSTED only with RetryInfo) and HTTP 429, 502,
//! 503, 504; honour Retry-After / RetryInfo; never retry a partial success.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use flowtrace_telemetry::{ExportStats, ExporterKind, Protocol, Telemetry};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use support::fake_otlp::{FakeGrpc, FakeHttp, Reply, Seen};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt as _};

const SPANS: u64 = 5;

fn telemetry(protocol: Protocol, endpoint: &str) -> Telemetry {
    flowtrace_telemetry::builder()
        .env_vars([
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret%20key"),
            ("OTEL_BSP_SCHEDULE_DELAY", "20"),
            // The scripted endpoint counts span exports only.
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .exporter(ExporterKind::Otlp)
        .otlp_protocol(protocol)
        .otlp_endpoint(endpoint)
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry")
}

/// Ends `SPANS` spans and waits until every one is settled (sent or
/// dropped); returns the stats and the requests the endpoint saw.
fn export(telemetry: &Telemetry, seen: impl Fn() -> Vec<Seen>) -> (ExportStats, Vec<Seen>) {
    let tracer = telemetry.provider().tracer("retry");
    for i in 0..SPANS {
        tracer.start(format!("s{i}")).end();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = telemetry.stats();
        if stats.exported + stats.dropped() == SPANS {
            telemetry.shutdown().ok();
            return (telemetry.stats(), seen());
        }
        assert!(Instant::now() < deadline, "not settled: {stats}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn gap(seen: &[Seen], i: usize) -> Duration {
    seen[i + 1].at - seen[i].at
}

#[test]
fn http_retryable_statuses_are_retried_and_others_are_final() {
    let cases = [
        (vec![Reply::status(429)], true, "429 Too Many Requests"),
        (vec![Reply::status(502)], true, "502 Bad Gateway"),
        (vec![Reply::status(503)], true, "503 Service Unavailable"),
        (vec![Reply::status(504)], true, "504 Gateway Timeout"),
        (vec![Reply::status(400).body("bad proto")], false, "400"),
        (vec![Reply::status(401)], false, "401"),
        (vec![Reply::status(404)], false, "404"),
        (vec![Reply::status(413)], false, "413"),
        (vec![Reply::status(500)], false, "500 is not in the list"),
    ];
    for (script, retried, what) in cases {
        let fake = FakeHttp::start(script);
        let (stats, seen) = export(&telemetry(Protocol::HttpProtobuf, &fake.endpoint()), || {
            fake.seen()
        });
        if retried {
            assert_eq!(seen.len(), 2, "{what}: one retry");
            assert_eq!(stats.exported, SPANS, "{what}: {stats}");
        } else {
            assert_eq!(seen.len(), 1, "{what}: never retried");
            assert_eq!(stats.dropped_export_failed, SPANS, "{what}: {stats}");
            let error = stats.last_error.unwrap_or_default();
            assert!(
                error.contains(&what[..3]),
                "{what}: the status is kept: {error}"
            );
        }
        assert_eq!(seen[0].header("x-api-key"), Some("secret key"), "{what}");
    }
}

#[test]
fn http_retry_after_is_honoured() {
    // Made when the case runs: an HTTP-date has one-second resolution, so
    // it is set 3 s ahead and expected to hold at least 2 s.
    let in_3s = || httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
    let cases: [(&dyn Fn() -> Reply, &str); 2] = [
        (
            &|| Reply::status(503).header("retry-after", "2"),
            "delay-seconds",
        ),
        (
            &|| Reply::status(429).header("retry-after", &in_3s()),
            "an HTTP-date",
        ),
    ];
    for (reply, what) in cases {
        let fake = FakeHttp::start([reply()]);
        let (stats, seen) = export(&telemetry(Protocol::HttpProtobuf, &fake.endpoint()), || {
            fake.seen()
        });
        assert_eq!(stats.exported, SPANS, "{what}: {stats}");
        assert!(
            gap(&seen, 0) >= Duration::from_millis(1900),
            "{what}: waited {:?} before the retry",
            gap(&seen, 0)
        );
    }
}

#[test]
fn a_partial_success_is_counted_and_never_retried() {
    let fake = FakeHttp::start([Reply::partial_success(2)]);
    let (stats, seen) = export(&telemetry(Protocol::HttpProtobuf, &fake.endpoint()), || {
        fake.seen()
    });
    assert_eq!(seen.len(), 1, "not retried");
    assert_eq!(stats.exported, SPANS - 2, "{stats}");
    assert_eq!(stats.rejected_by_collector, 2, "{stats}");

    let fake = FakeGrpc::start([Ok(3)]);
    let (stats, seen) = export(&telemetry(Protocol::Grpc, &fake.endpoint()), || fake.seen());
    assert_eq!(seen.len(), 1, "gRPC: not retried");
    assert_eq!(stats.rejected_by_collector, 3, "gRPC: {stats}");
}

#[test]
fn grpc_codes_follow_the_rules() {
    let retry_info = |code: Code, secs: u64| {
        tonic::Status::with_error_details(
            code,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(secs))),
        )
    };
    let cases = [
        (
            tonic::Status::unavailable("restarting"),
            Some(Duration::ZERO),
            "UNAVAILABLE",
        ),
        (
            tonic::Status::cancelled("c"),
            Some(Duration::ZERO),
            "CANCELLED",
        ),
        (
            tonic::Status::deadline_exceeded("d"),
            Some(Duration::ZERO),
            "DEADLINE_EXCEEDED",
        ),
        (tonic::Status::aborted("a"), Some(Duration::ZERO), "ABORTED"),
        (
            tonic::Status::out_of_range("o"),
            Some(Duration::ZERO),
            "OUT_OF_RANGE",
        ),
        (
            tonic::Status::data_loss("l"),
            Some(Duration::ZERO),
            "DATA_LOSS",
        ),
        (
            tonic::Status::resource_exhausted("full"),
            None,
            "RESOURCE_EXHAUSTED without RetryInfo",
        ),
        (
            retry_info(Code::ResourceExhausted, 2),
            Some(Duration::from_millis(1900)),
            "RESOURCE_EXHAUSTED with RetryInfo",
        ),
        (
            retry_info(Code::Unavailable, 2),
            Some(Duration::from_millis(1900)),
            "UNAVAILABLE with RetryInfo",
        ),
        (
            tonic::Status::invalid_argument("i"),
            None,
            "INVALID_ARGUMENT",
        ),
        (tonic::Status::unauthenticated("u"), None, "UNAUTHENTICATED"),
        (tonic::Status::internal("x"), None, "INTERNAL"),
    ];
    for (status, retry_after, what) in cases {
        let fake = FakeGrpc::start([Err(status)]);
        let (stats, seen) = export(&telemetry(Protocol::Grpc, &fake.endpoint()), || fake.seen());
        assert_eq!(
            seen[0].header("x-api-key"),
            Some("secret key"),
            "{what}: metadata"
        );
        match retry_after {
            Some(at_least) => {
                assert_eq!(seen.len(), 2, "{what}: retried once");
                assert_eq!(stats.exported, SPANS, "{what}: {stats}");
                assert!(gap(&seen, 0) >= at_least, "{what}: {:?}", gap(&seen, 0));
            }
            None => {
                assert_eq!(seen.len(), 1, "{what}: never retried");
                assert_eq!(stats.dropped_export_failed, SPANS, "{what}: {stats}");
            }
        }
    }
}

#[test]
fn backoff_grows_between_retries() {
    let fake = FakeHttp::start([Reply::status(503), Reply::status(503), Reply::status(503)]);
    let (stats, seen) = export(&telemetry(Protocol::HttpProtobuf, &fake.endpoint()), || {
        fake.seen()
    });
    assert_eq!(stats.exported, SPANS);
    assert_eq!(seen.len(), 4);
    // Pauses are drawn from [d/2, d] with d = 200, 400, 800 ms.
    let pauses: Vec<Duration> = (0..3).map(|i| gap(&seen, i)).collect();
    assert!(pauses[0] >= Duration::from_millis(100), "{pauses:?}");
    assert!(pauses[2] >= Duration::from_millis(400), "{pauses:?}");
    assert!(pauses[2] > pauses[0], "exponential: {pauses:?}");
}
