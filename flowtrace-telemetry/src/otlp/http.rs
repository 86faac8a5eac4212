//! OTLP/HTTP (protobuf or JSON bodies): one POST per attempt, classified by
//! the specification's rules ([`retry::http`]). hyper directly rather than
//! reqwest: enabling a TLS feature of reqwest here would change every
//! reqwest client of the application (feature unification).

use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{
    CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::tls::{Connector, ExtraRoots};
use crate::redact;
use crate::retry::{self, Outcome};

/// A response body larger than this is not kept: a success body is a small
/// `ExportTraceServiceResponse`, and a hostile or confused server must not
/// make the exporter buffer megabytes.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// An HTTP client for one traces URL.
#[derive(Debug)]
pub(crate) struct Http {
    client: Client<Connector, Full<Bytes>>,
    uri: Uri,
    json: bool,
    headers: HeaderMap,
    /// `Content-Encoding: gzip` bodies (`OTEL_EXPORTER_OTLP_COMPRESSION`).
    gzip: bool,
}

impl Http {
    pub(crate) fn new(
        url: &str,
        json: bool,
        headers: &[(String, String)],
        timeout: Duration,
        roots: &ExtraRoots,
    ) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid HTTP endpoint {}: {e}", redact::url(url)))?;
        let connector = roots.http(url, timeout)?;
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            // Validated in config.rs; anything still refused is skipped.
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                // Left out of `Debug` (and of the HTTP/2 header table).
                value.set_sensitive(true);
                map.insert(name, value);
            }
        }
        let content_type = if json {
            "application/json"
        } else {
            "application/x-protobuf"
        };
        map.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Ok(Self {
            client,
            uri,
            json,
            headers: map,
            gzip: false,
        })
    }

    /// Compresses bodies with gzip.
    pub(crate) fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        if gzip {
            self.headers
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        self
    }

    pub(crate) async fn send(&self, request: &ExportTraceServiceRequest) -> Outcome {
        self.post(request, |r: ExportTraceServiceResponse| {
            r.partial_success
                .map_or(0, |p| p.rejected_spans.max(0) as u64)
        })
        .await
    }

    /// One POST of log records (to the logs URL this client was built for).
    pub(crate) async fn send_logs(&self, request: &ExportLogsServiceRequest) -> Outcome {
        self.post(request, |r: ExportLogsServiceResponse| {
            r.partial_success
                .map_or(0, |p| p.rejected_log_records.max(0) as u64)
        })
        .await
    }

    /// One POST of data points (to the metrics URL this client was built for).
    pub(crate) async fn send_metrics(&self, request: &ExportMetricsServiceRequest) -> Outcome {
        self.post(request, |r: ExportMetricsServiceResponse| {
            r.partial_success
                .map_or(0, |p| p.rejected_data_points.max(0) as u64)
        })
        .await
    }

    async fn post<Req, Resp>(&self, request: &Req, rejected: fn(Resp) -> u64) -> Outcome
    where
        Req: Message + Serialize,
        Resp: Message + Default + DeserializeOwned,
    {
        let body = if self.json {
            match serde_json::to_vec(request) {
                Ok(body) => body,
                Err(e) => {
                    return Outcome::Failed {
                        reason: format!("encoding OTLP/JSON: {e}"),
                    };
                }
            }
        } else {
            request.encode_to_vec()
        };
        let body = if self.gzip {
            match gzip(&body) {
                Ok(body) => body,
                Err(e) => {
                    return Outcome::Failed {
                        reason: format!("gzip: {e}"),
                    };
                }
            }
        } else {
            body
        };
        let mut post = Request::new(Full::new(Bytes::from(body)));
        *post.method_mut() = Method::POST;
        *post.uri_mut() = self.uri.clone();
        *post.headers_mut() = self.headers.clone();
        let response = match self.client.request(post).await {
            Ok(response) => response,
            Err(e) => {
                // The client's own message says little ("client error
                // (Connect)"); its cause says "connection refused".
                let uri = redact::url(&self.uri.to_string());
                return Outcome::unreachable(format!("POST {uri}: {}", flowtrace::error_chain(&e)));
            }
        };
        let (parts, body) = response.into_parts();
        // Over the cap (or broken): read as empty, the status still counts.
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if parts.status.is_success() {
            return Outcome::Sent {
                rejected: self.rejected(&body, rejected),
            };
        }
        // The body is not part of the reason: a gateway may echo the
        // credentials it was sent.
        let retry_after = parts.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
        retry::http(parts.status.as_u16(), retry_after, SystemTime::now())
    }

    /// The partial success count of a 2xx body (absent or unreadable: 0).
    fn rejected<Resp>(&self, body: &[u8], rejected: fn(Resp) -> u64) -> u64
    where
        Resp: Message + Default + DeserializeOwned,
    {
        let response = if self.json {
            serde_json::from_slice::<Resp>(body).ok()
        } else {
            Resp::decode(body).ok()
        };
        response.map_or(0, rejected)
    }
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(body)?;
    encoder.finish()
}
