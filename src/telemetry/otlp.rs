//! Builds the OTLP span exporter (gRPC via tonic, HTTP protobuf/JSON via
//! reqwest) from the resolved settings, inside its own runtime.
//!
//! Every setting is passed programmatically, which opentelemetry-otlp ranks
//! above the process environment, so a map given to `env_vars()` is what
//! counts. (It still adds `OTEL_EXPORTER_OTLP_*HEADERS` from the process
//! environment on top, and reads `…_COMPRESSION` / `…_INSECURE`, which
//! flowtrace does not parse.)

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};

use super::Protocol;
use super::config::Otlp;
use super::own_runtime::OwnRuntime;

/// The exporter, each export bounded by the OTLP timeout or, if shorter,
/// the batch processor's export timeout.
pub(crate) fn exporter(
    otlp: &Otlp,
    export_timeout: Duration,
) -> Result<OwnRuntime<SpanExporter>, String> {
    OwnRuntime::build(otlp.timeout.min(export_timeout), || build(otlp))
}

fn build(otlp: &Otlp) -> Result<SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    match otlp.protocol {
        Protocol::Grpc => {
            let mut metadata = MetadataMap::new();
            for (name, value) in &otlp.headers {
                // Names and values were validated in config.rs (tonic panics
                // on a bad static key); a value tonic still refuses is skipped.
                let Ok(value) = value.parse() else { continue };
                // tonic takes string keys only as `&'static str` (its own key
                // type is not re-exported): leaking a few header names once
                // per `init()` is the price of not adding a dependency.
                let name: &'static str = Box::leak(name.clone().into_boxed_str());
                metadata.insert(name, value);
            }
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(otlp.endpoint.clone())
                .with_timeout(otlp.timeout)
                .with_metadata(metadata)
                .build()
        }
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let protocol = if otlp.protocol == Protocol::HttpJson {
                opentelemetry_otlp::Protocol::HttpJson
            } else {
                opentelemetry_otlp::Protocol::HttpBinary
            };
            let headers: HashMap<String, String> = otlp.headers.iter().cloned().collect();
            SpanExporter::builder()
                .with_http()
                .with_endpoint(otlp.endpoint.clone())
                .with_protocol(protocol)
                .with_timeout(otlp.timeout)
                .with_headers(headers)
                .build()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::test_util::span;
    use opentelemetry_sdk::trace::SpanExporter as _;
    use std::time::Instant;

    fn otlp(protocol: Protocol, endpoint: &str) -> Otlp {
        Otlp {
            endpoint: endpoint.into(),
            protocol,
            headers: vec![("x-api-key".into(), "secret".into())],
            timeout: Duration::from_millis(300),
        }
    }

    #[test]
    fn builds_every_protocol_outside_any_runtime() {
        let cases = [
            (Protocol::Grpc, "http://127.0.0.1:4317", "gRPC"),
            (
                Protocol::HttpProtobuf,
                "http://127.0.0.1:4318/v1/traces",
                "HTTP protobuf",
            ),
            (
                Protocol::HttpJson,
                "http://127.0.0.1:4318/v1/traces",
                "HTTP JSON",
            ),
        ];
        for (protocol, endpoint, reason) in cases {
            let built = exporter(&otlp(protocol, endpoint), Duration::from_secs(1));
            assert!(built.is_ok(), "{reason}: {:?}", built.err());
        }
    }

    #[test]
    fn https_without_tls_is_a_build_error_not_a_panic() {
        let built = exporter(
            &otlp(Protocol::Grpc, "https://c:4317"),
            Duration::from_secs(1),
        );
        assert!(built.is_err(), "no TLS feature is enabled for tonic");
    }

    #[test]
    fn a_silent_endpoint_costs_at_most_the_timeout() {
        // Accepts connections (the kernel does) but never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cases = [
            (Protocol::Grpc, format!("http://{addr}"), "gRPC"),
            (
                Protocol::HttpProtobuf,
                format!("http://{addr}/v1/traces"),
                "HTTP",
            ),
        ];
        for (protocol, endpoint, reason) in cases {
            let exporter = exporter(&otlp(protocol, &endpoint), Duration::from_secs(30)).unwrap();
            let started = Instant::now();
            let result = futures::executor::block_on(exporter.export(vec![span("s", 1, 0)]));
            assert!(result.is_err(), "{reason}: nothing answered");
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{reason}: bounded by the 300 ms OTLP timeout, took {:?}",
                started.elapsed()
            );
            exporter.shutdown().ok();
        }
        drop(listener);
    }
}
