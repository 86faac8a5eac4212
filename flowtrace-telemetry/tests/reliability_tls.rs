//! `https` endpoints: OTLP over TLS (rustls with ring) through a TLS proxy
//! in front of the real collector, trusting the test CA given by
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`; without that CA the certificate is
//! refused and the spans are counted as lost, within the timeout.
#![cfg(feature = "tls")]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use flowtrace_telemetry::{ExporterKind, Protocol, Telemetry};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use support::tls_proxy::{TlsProxy, fixture};
use support::{Collector, WAIT};

fn telemetry(protocol: Protocol, endpoint: &str, ca: Option<&str>) -> Telemetry {
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
    ];
    if let Some(ca) = ca {
        vars.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.to_owned()));
    }
    flowtrace_telemetry::builder()
        .env_vars(vars)
        .exporter(ExporterKind::Otlp)
        .otlp_protocol(protocol)
        .otlp_endpoint(endpoint)
        .service_name("tls")
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry")
}

fn spans(telemetry: &Telemetry, prefix: &str, n: usize) {
    let tracer = telemetry.provider().tracer("tls");
    for i in 0..n {
        tracer.start(format!("{prefix}-{i}")).end();
    }
}

#[test]
fn spans_arrive_over_tls_with_the_configured_ca() {
    let collector = Collector::start();
    let ca = fixture("ca.pem");
    let cases = [
        (Protocol::Grpc, collector.grpc_addr(), "grpc"),
        (Protocol::HttpProtobuf, collector.http_addr(), "http"),
        (Protocol::HttpJson, collector.http_addr(), "json"),
    ];
    for (protocol, target, prefix) in cases {
        let proxy = TlsProxy::start(target);
        let telemetry = telemetry(protocol, &proxy.endpoint(), ca.to_str());
        spans(&telemetry, prefix, 5);
        telemetry.shutdown().expect("delivered over TLS");
        let stats = telemetry.stats();
        assert_eq!(stats.exported, 5, "{protocol}: {stats}");
        collector.wait_for(prefix, WAIT, |spans| {
            spans.iter().filter(|s| s.name.starts_with(prefix)).count() == 5
        });
    }
}

#[test]
fn an_untrusted_certificate_is_refused_and_counted() {
    let collector = Collector::start();
    for (protocol, target) in [
        (Protocol::Grpc, collector.grpc_addr()),
        (Protocol::HttpProtobuf, collector.http_addr()),
    ] {
        let proxy = TlsProxy::start(target);
        // Only the platform's roots: the test CA is not among them.
        let telemetry = telemetry(protocol, &proxy.endpoint(), None);
        spans(&telemetry, "untrusted", 3);
        let started = Instant::now();
        assert!(telemetry.shutdown().is_err(), "{protocol}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{protocol}: bounded"
        );
        let stats = telemetry.stats();
        assert_eq!(stats.dropped(), 3, "{protocol}: {stats}");
        let error = stats.last_error.unwrap_or_default().to_lowercase();
        assert!(
            error.contains("certificate") || error.contains("unknownissuer"),
            "{protocol}: says why: {error}"
        );
    }
    assert!(collector.spans().is_empty());
}

#[test]
fn a_bad_certificate_file_is_a_configuration_error() {
    let missing = std::env::temp_dir().join("flowtrace-missing-ca.pem");
    let err = flowtrace_telemetry::builder()
        .env_vars([("OTEL_EXPORTER_OTLP_CERTIFICATE", missing.to_str().unwrap())])
        .exporter(ExporterKind::Otlp)
        .otlp_endpoint("https://127.0.0.1:1")
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .unwrap_err();
    assert!(
        err.to_string().contains("flowtrace-missing-ca.pem"),
        "names the file: {err}"
    );
}
