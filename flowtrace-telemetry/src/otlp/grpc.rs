//! OTLP/gRPC: one `TraceService/Export` call per attempt, classified by the
//! specification's rules ([`retry::grpc`]).

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt as _;

use super::connect::Tcp;
use super::tls::ExtraRoots;
use crate::redact;
use crate::retry::{self, Outcome};

/// A lazily connecting gRPC channel to the collector.
#[derive(Debug)]
pub(crate) struct Grpc {
    channel: Channel,
    metadata: MetadataMap,
    /// `grpc-encoding: gzip` requests (`OTEL_EXPORTER_OTLP_COMPRESSION`).
    gzip: bool,
}

impl Grpc {
    /// Must be called inside a tokio runtime: the channel's connection
    /// task is spawned onto it. Connecting happens on the first export.
    pub(crate) fn new(
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
        roots: &ExtraRoots,
    ) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("invalid gRPC endpoint {}: {e}", redact::url(url)))?
            .connect_timeout(timeout)
            // Also sent as `grpc-timeout`, so the collector can give up too.
            .timeout(timeout);
        let endpoint = roots.grpc(endpoint, url)?;
        let mut metadata = MetadataMap::new();
        for (name, value) in headers {
            // Names and values were validated in config.rs; anything tonic
            // still refuses is skipped rather than panicking.
            let (Ok(name), Ok(mut value)) = (
                name.parse::<AsciiMetadataKey>(),
                value.parse::<AsciiMetadataValue>(),
            ) else {
                continue;
            };
            // Left out of `Debug` (and of the HTTP/2 header table).
            value.set_sensitive(true);
            metadata.insert(name, value);
        }
        Ok(Self {
            channel: endpoint.connect_with_connector_lazy(Tcp::new(timeout)),
            metadata,
            gzip: false,
        })
    }

    /// Compresses requests with gzip.
    pub(crate) fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    fn encoding(&self) -> Option<CompressionEncoding> {
        self.gzip.then_some(CompressionEncoding::Gzip)
    }

    fn call<T>(&self, request: T) -> tonic::Request<T> {
        let mut call = tonic::Request::new(request);
        *call.metadata_mut() = self.metadata.clone();
        call
    }

    pub(crate) async fn send(&self, request: ExportTraceServiceRequest) -> Outcome {
        let mut client = TraceServiceClient::new(self.channel.clone());
        if let Some(encoding) = self.encoding() {
            client = client.send_compressed(encoding);
        }
        let sent = client.export(self.call(request)).await;
        classify(sent.map(|response| {
            response
                .into_inner()
                .partial_success
                .map_or(0, |p| p.rejected_spans.max(0) as u64)
        }))
    }

    /// One `LogsService/Export` call on the same channel.
    pub(crate) async fn send_logs(&self, request: ExportLogsServiceRequest) -> Outcome {
        let mut client = LogsServiceClient::new(self.channel.clone());
        if let Some(encoding) = self.encoding() {
            client = client.send_compressed(encoding);
        }
        let sent = client.export(self.call(request)).await;
        classify(sent.map(|response| {
            response
                .into_inner()
                .partial_success
                .map_or(0, |p| p.rejected_log_records.max(0) as u64)
        }))
    }
}

impl Grpc {
    /// One `MetricsService/Export` call on the same channel.
    pub(crate) async fn send_metrics(&self, request: ExportMetricsServiceRequest) -> Outcome {
        let sent = MetricsServiceClient::new(self.channel.clone())
            .export(self.call(request))
            .await;
        classify(sent.map(|response| {
            response
                .into_inner()
                .partial_success
                .map_or(0, |p| p.rejected_data_points.max(0) as u64)
        }))
    }
}

/// An attempt's outcome from the rejected count or the status.
fn classify(sent: Result<u64, tonic::Status>) -> Outcome {
    match sent {
        Ok(rejected) => Outcome::Sent { rejected },
        // A status tonic made from a transport error (the connection
        // broke, was refused, reset) carries that error as its source; a
        // status the collector sent has none. The former is no answer
        // at all — the collector may come back — whatever code tonic
        // chose for it (a broken pipe becomes UNKNOWN).
        Err(status) if std::error::Error::source(&status).is_some() => {
            Outcome::unreachable(format!("gRPC transport: {}", describe(&status)))
        }
        Err(status) => {
            let retry_info = status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay);
            retry::grpc(status.code(), retry_info, local_message(&status))
        }
    }
}

/// The message of a status tonic made itself from a plain HTTP answer (no
/// `grpc-status`: the endpoint is not a gRPC server), which says what went
/// wrong. A message the server sent is never shown: it may echo the
/// credentials it was sent.
fn local_message(status: &tonic::Status) -> Option<&str> {
    let message = status.message();
    message
        .starts_with("grpc-status header missing, mapped from HTTP status code ")
        .then_some(message)
}

/// The status message plus its cause (tonic's message alone is often just
/// "transport error").
fn describe(status: &tonic::Status) -> String {
    flowtrace::with_causes(
        status.message().to_owned(),
        std::error::Error::source(status),
    )
}
