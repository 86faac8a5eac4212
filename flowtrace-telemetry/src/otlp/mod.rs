//! The OTLP exporter, flowtrace's own: spans become one
//! `ExportTraceServiceRequest`, sent over gRPC (tonic) or HTTP (hyper,
//! protobuf or JSON), over TLS for `https` endpoints (feature `tls`).
//!
//! Own rather than opentelemetry-otlp's because the batch processor must
//! know how an attempt failed (retry and keep the batch, or drop it) and how
//! many spans a partial success rejected, and because replaying a file
//! sends requests that are not `SpanData`. Each attempt is one request:
//! retries are the processor's, with the backoff of [`super::retry`].

mod connect;
mod encode;
mod grpc;
mod http;
mod tls;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use super::Protocol;
use super::config::Otlp;
use super::processor::Export;
use super::retry::Outcome;

/// Where and how requests go.
#[derive(Debug)]
// One per exporter, built once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Transport {
    Grpc(grpc::Grpc),
    Http(http::Http),
}

impl Transport {
    /// Must be called inside a tokio runtime (gRPC spawns its connection
    /// task at build time). Fails on a bad URL or an unreadable CA file.
    pub(crate) fn new(otlp: &Otlp) -> Result<Self, String> {
        let roots = tls::ExtraRoots::read(otlp.certificate.as_deref())?
            .with_identity(otlp.client_identity.as_ref())?;
        match otlp.protocol {
            Protocol::Grpc => grpc::Grpc::new(&otlp.endpoint, &otlp.headers, otlp.timeout, &roots)
                .map(|grpc| Transport::Grpc(grpc.gzip(otlp.gzip))),
            Protocol::HttpProtobuf | Protocol::HttpJson => http::Http::new(
                &otlp.endpoint,
                otlp.protocol == Protocol::HttpJson,
                &otlp.headers,
                otlp.timeout,
                &roots,
            )
            .map(|http| Transport::Http(http.gzip(otlp.gzip))),
        }
    }

    /// One attempt.
    pub(crate) async fn send(&self, request: ExportTraceServiceRequest) -> Outcome {
        match self {
            Transport::Grpc(grpc) => grpc.send(request).await,
            Transport::Http(http) => http.send(&request).await,
        }
    }

    /// One attempt at sending log records (a transport built from the logs
    /// settings, so HTTP posts to `/v1/logs`).
    pub(crate) async fn send_logs(&self, request: ExportLogsServiceRequest) -> Outcome {
        match self {
            Transport::Grpc(grpc) => grpc.send_logs(request).await,
            Transport::Http(http) => http.send_logs(&request).await,
        }
    }
}

impl Transport {
    /// One attempt at sending data points (a transport built from the
    /// metrics settings, so HTTP posts to `/v1/metrics`).
    pub(crate) async fn send_metrics(&self, request: ExportMetricsServiceRequest) -> Outcome {
        match self {
            Transport::Grpc(grpc) => grpc.send_metrics(request).await,
            Transport::Http(http) => http.send_metrics(&request).await,
        }
    }
}

/// The span exporter the batch processor drives.
#[derive(Debug)]
pub(crate) struct OtlpExporter {
    transport: Transport,
    resource: ResourceAttributesWithSchema,
}

impl OtlpExporter {
    /// See [`Transport::new`].
    pub(crate) fn new(otlp: &Otlp) -> Result<Self, String> {
        Ok(Self {
            transport: Transport::new(otlp)?,
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl Export for OtlpExporter {
    fn export<'a>(&'a self, batch: &'a [SpanData]) -> Pin<Box<dyn Future<Output = Outcome> + 'a>> {
        // Built per attempt from the borrowed batch: it stays with the
        // processor until an attempt settles it.
        let request = encode::request(batch, &self.resource);
        Box::pin(self.transport.send(request))
    }

    /// tonic multiplexes calls on its HTTP/2 connection, hyper's pool opens
    /// a connection per request in flight: any number, bounded by the
    /// processor's setting.
    fn max_in_flight(&self) -> usize {
        usize::MAX
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// The timeout one export attempt gets: the OTLP timeout, or the batch
/// processor's export timeout when that is shorter.
pub(crate) fn attempt_timeout(otlp: &Otlp, export_timeout: Duration) -> Duration {
    otlp.timeout.min(export_timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::span;
    use std::time::Instant;

    fn otlp(protocol: Protocol, endpoint: &str) -> Otlp {
        Otlp {
            endpoint: endpoint.into(),
            protocol,
            headers: vec![("x-api-key".into(), "secret".into())],
            timeout: Duration::from_millis(300),
            certificate: None,
            client_identity: None,
            gzip: false,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn builds_every_protocol_and_scheme() {
        let rt = runtime();
        let _entered = rt.enter();
        let cases = [
            (Protocol::Grpc, "http://127.0.0.1:4317", "gRPC"),
            (Protocol::Grpc, "https://collector:4317", "gRPC over TLS"),
            (
                Protocol::HttpProtobuf,
                "http://127.0.0.1:4318/v1/traces",
                "HTTP protobuf",
            ),
            (
                Protocol::HttpJson,
                "https://collector:4318/v1/traces",
                "HTTP JSON over TLS",
            ),
        ];
        for (protocol, endpoint, reason) in cases {
            let built = OtlpExporter::new(&otlp(protocol, endpoint));
            let tls = endpoint.starts_with("https");
            assert_eq!(
                built.is_ok(),
                !tls || cfg!(feature = "tls"),
                "{reason}: {:?}",
                built.err()
            );
        }
    }

    #[test]
    fn a_refused_connection_is_retryable_and_quick() {
        let rt = runtime();
        // Bound, then closed: nothing listens there any more.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let cases = [
            (Protocol::Grpc, format!("http://{addr}"), "gRPC"),
            (
                Protocol::HttpProtobuf,
                format!("http://{addr}/v1/traces"),
                "HTTP",
            ),
        ];
        for (protocol, endpoint, reason) in cases {
            let exporter = {
                let _entered = rt.enter();
                OtlpExporter::new(&otlp(protocol, &endpoint)).unwrap()
            };
            let started = Instant::now();
            let batch = [span("s", 1, 0)];
            let outcome = rt.block_on(exporter.export(&batch));
            assert!(
                matches!(outcome, Outcome::Retry { .. }),
                "{reason}: the collector may come back: {outcome:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{reason}: took {:?}",
                started.elapsed()
            );
        }
    }
}
