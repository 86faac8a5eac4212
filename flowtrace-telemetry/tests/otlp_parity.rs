//! The OTLP exporter settings of opentelemetry-otlp 0.33, each against a
//! real collector (rotel, behind a TCP or TLS proxy where the wire has to be
//! seen or TLS terminated): `…_COMPRESSION=gzip`, `…_INSECURE` for a gRPC
//! endpoint without a scheme, `…_CLIENT_CERTIFICATE` / `…_CLIENT_KEY` for
//! mutual TLS — general and per signal — and the warning for what is not
//! supported.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use flowtrace_telemetry::{ExporterKind, Protocol, Telemetry};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use support::tls_proxy::{TlsProxy, fixture};
use support::{Collector, Mode, Proxy, WAIT};

const PROTOCOLS: [Protocol; 3] = [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson];

fn port(collector: &Collector, protocol: Protocol) -> std::net::SocketAddr {
    match protocol {
        Protocol::Grpc => collector.grpc_addr(),
        _ => collector.http_addr(),
    }
}

fn telemetry(protocol: Protocol, endpoint: &str, env: &[(&str, String)]) -> Telemetry {
    let mut vars: Vec<(String, String)> = vec![
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "20".into()),
        ("OTEL_BLRP_SCHEDULE_DELAY".into(), "20".into()),
        // Only spans and log records reach the counting proxy.
        ("OTEL_METRICS_EXPORTER".into(), "none".into()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT".into(), "2000".into()),
    ];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    flowtrace_telemetry::builder()
        .env_vars(vars)
        .exporter(ExporterKind::Otlp)
        .otlp_protocol(protocol)
        .otlp_endpoint(endpoint)
        .service_name("parity")
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry")
}

/// `n` spans with the same long attribute (compressible), then a flush.
fn spans(telemetry: &Telemetry, prefix: &str, n: usize) {
    let tracer = telemetry.provider().tracer("parity");
    for i in 0..n {
        let mut span = tracer.start(format!("{prefix}-{i}"));
        span.set_attribute(opentelemetry::KeyValue::new(
            "payload",
            "abcdefgh".repeat(32),
        ));
        span.end();
    }
    let _ = telemetry.force_flush();
}

fn log(telemetry: &Telemetry, body: &str) {
    let provider = telemetry.logger_provider().expect("a log exporter");
    let logger = provider.logger("parity");
    let mut record = logger.create_log_record();
    record.set_body(body.to_owned().into());
    logger.emit(record);
}

fn received(collector: &Collector, prefix: &str) -> usize {
    let prefix = format!("{prefix}-");
    collector
        .spans()
        .iter()
        .filter(|s| s.name.starts_with(&prefix))
        .count()
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited {WAIT:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn gzip_compresses_what_the_collector_receives_over_every_protocol() {
    let collector = Collector::start();
    for protocol in PROTOCOLS {
        let mut sent = Vec::new();
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ] {
            let proxy = Proxy::start(port(&collector, protocol), Mode::Forward);
            let telemetry = telemetry(protocol, &proxy.endpoint(), &[(var, value.into())]);
            let prefix = format!("{protocol}-{var}-{value}");
            spans(&telemetry, &prefix, 200);
            wait_for(&prefix, || received(&collector, &prefix) == 200);
            telemetry.shutdown().expect("nothing lost");
            assert_eq!(telemetry.stats().exported, 200);
            sent.push((var, value, proxy.bytes_to_collector()));
        }
        eprintln!("{protocol}: bytes sent {sent:?}");
        let plain = sent[0].2;
        for (var, value, bytes) in &sent[1..] {
            assert!(
                *bytes * 4 < plain,
                "{protocol}: {var}={value} sends {bytes} bytes, uncompressed {plain}"
            );
        }
    }
}

#[test]
fn gzip_compresses_log_records_per_signal() {
    let collector = Collector::start();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let proxy = Proxy::start(port(&collector, protocol), Mode::Forward);
        let telemetry = telemetry(
            protocol,
            &proxy.endpoint(),
            &[("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip".into())],
        );
        let body = format!("{protocol} gzipped log {}", "x".repeat(4000));
        log(&telemetry, &body);
        wait_for("the gzipped log record", || {
            collector.logs().iter().any(|r| r.body == body)
        });
        telemetry.shutdown().expect("nothing lost");
        assert_eq!(telemetry.log_stats().exported, 1);
        assert!(
            proxy.bytes_to_collector() < 2000,
            "{protocol}: a 4 kB record of one letter is sent compressed: {} bytes",
            proxy.bytes_to_collector()
        );
    }
}

#[test]
fn a_grpc_endpoint_without_a_scheme_follows_insecure() {
    let collector = Collector::start();
    let plain = collector.grpc_addr().to_string();
    // INSECURE=true: plain text to rotel's own port.
    for var in [
        "OTEL_EXPORTER_OTLP_INSECURE",
        "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    ] {
        let telemetry = flowtrace_telemetry::builder()
            .env_vars([
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", plain.clone()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
                (var, "true".into()),
                ("OTEL_TRACES_EXPORTER", "otlp".into()),
                ("OTEL_LOGS_EXPORTER", "none".into()),
                ("OTEL_METRICS_EXPORTER", "none".into()),
                ("OTEL_METRICS_EXPORTER", "none".into()),
                ("OTEL_BSP_SCHEDULE_DELAY", "20".into()),
            ])
            .install_tracing_subscriber(false)
            .strict(true)
            .init()
            .expect("telemetry");
        let prefix = format!("insecure-{var}");
        spans(&telemetry, &prefix, 3);
        wait_for(&prefix, || received(&collector, &prefix) == 3);
        telemetry.shutdown().expect("nothing lost");
    }
    // Not insecure (the default): TLS, here to the TLS proxy in front of rotel.
    let tls = TlsProxy::start(collector.grpc_addr());
    let schemeless = tls.endpoint().trim_start_matches("https://").to_owned();
    let telemetry = flowtrace_telemetry::builder()
        .env_vars([
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", schemeless),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            (
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                fixture("ca.pem").display().to_string(),
            ),
            ("OTEL_TRACES_EXPORTER", "otlp".into()),
            ("OTEL_LOGS_EXPORTER", "none".into()),
            ("OTEL_METRICS_EXPORTER", "none".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "20".into()),
        ])
        .install_tracing_subscriber(false)
        .strict(true)
        .init()
        .expect("telemetry");
    spans(&telemetry, "secure", 3);
    wait_for("spans over TLS", || received(&collector, "secure") == 3);
    telemetry.shutdown().expect("nothing lost");
}

#[test]
fn mutual_tls_presents_the_client_certificate_general_and_per_signal() {
    let collector = Collector::start();
    let (cert, key, ca) = (
        fixture("client.pem").display().to_string(),
        fixture("client.key").display().to_string(),
        fixture("ca.pem").display().to_string(),
    );
    for protocol in PROTOCOLS {
        let proxy = TlsProxy::start_requiring_client_certificate(port(&collector, protocol));
        // Without a client certificate the handshake fails: counted, not fatal.
        let refused = telemetry(
            protocol,
            &proxy.endpoint(),
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.clone())],
        );
        spans(&refused, &format!("{protocol}-anonymous"), 2);
        assert!(
            refused.shutdown().is_err(),
            "{protocol}: lost spans are an error"
        );
        let stats = refused.stats();
        assert_eq!(
            (stats.exported, stats.dropped()),
            (0, 2),
            "{protocol}: {stats}"
        );

        for (cert_var, key_var) in [
            (
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            ),
        ] {
            let telemetry = telemetry(
                protocol,
                &proxy.endpoint(),
                &[
                    ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.clone()),
                    (cert_var, cert.clone()),
                    (key_var, key.clone()),
                    ("OTEL_LOGS_EXPORTER", "none".into()),
                    ("OTEL_METRICS_EXPORTER", "none".into()),
                    ("OTEL_METRICS_EXPORTER", "none".into()),
                    ("OTEL_METRICS_EXPORTER", "none".into()),
                ],
            );
            let prefix = format!("{protocol}-{cert_var}");
            spans(&telemetry, &prefix, 3);
            wait_for(&prefix, || received(&collector, &prefix) == 3);
            telemetry.shutdown().expect("nothing lost");
        }

        // Per signal: the log records' own pair.
        let telemetry = telemetry(
            protocol,
            &proxy.endpoint(),
            &[
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.clone()),
                ("OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE", cert.clone()),
                ("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", key.clone()),
                ("OTEL_TRACES_EXPORTER", "none".into()),
                ("OTEL_LOGS_EXPORTER", "otlp".into()),
                ("OTEL_METRICS_EXPORTER", "none".into()),
            ],
        );
        let body = format!("{protocol} over mutual TLS");
        log(&telemetry, &body);
        wait_for(&body, || collector.logs().iter().any(|r| r.body == body));
        telemetry.shutdown().expect("nothing lost");
    }
}

#[test]
fn unsupported_and_incomplete_settings_are_warned_about() {
    let key = fixture("client.key").display().to_string();
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case<'_>; 4] = [
        (
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")],
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "not supported",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli")],
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "gzip, none",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_INSECURE", "yes")],
            "OTEL_EXPORTER_OTLP_INSECURE",
            "true, false",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_CLIENT_KEY", key.as_str())],
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "without OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        ),
    ];
    for (env, var, says) in cases {
        let mut vars: Vec<(&str, &str)> = vec![("OTEL_TRACES_EXPORTER", "otlp")];
        vars.extend_from_slice(env);
        let telemetry = flowtrace_telemetry::builder()
            .env_vars(vars)
            .install_tracing_subscriber(false)
            .init()
            .expect("a bad value is a warning, not an error");
        let warnings: Vec<String> = telemetry.warnings().iter().map(|w| w.to_string()).collect();
        assert!(
            warnings.iter().any(|w| w.contains(var) && w.contains(says)),
            "{env:?}: a warning naming {var} and saying {says:?}: {warnings:?}"
        );
        let strict = flowtrace_telemetry::builder()
            .env_vars(env.iter().copied())
            .install_tracing_subscriber(false)
            .strict(true)
            .init();
        assert!(strict.is_err(), "{env:?}: an error under strict");
    }
}
