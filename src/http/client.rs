//! HTTP egress: reqwest requests in a `client` span, the span's context sent
//! in the W3C headers.

use std::future::Future;
use std::pin::Pin;

use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::{HeaderInjector, method_attributes, protocol_version};
use crate::attributes::{
    ERROR_TYPE, HTTP_RESPONSE_STATUS_CODE, NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS, SERVER_PORT,
    URL_FULL,
};
use crate::custom_context::parent_context;
use crate::propagation;

/// The future of [`RequestBuilderExt::send_traced`].
///
/// ```
/// use flowtrace::http::{RequestBuilderExt as _, SendTraced};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // A request that cannot be built fails without a span or a connection.
/// let pending: SendTraced = reqwest::Client::new().get("not a url").send_traced();
/// assert!(pending.await.is_err());
/// # }
/// ```
pub type SendTraced = Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send>>;

/// Adds [`send_traced`](RequestBuilderExt::send_traced) to
/// [`reqwest::RequestBuilder`].
///
/// ```no_run
/// use flowtrace::http::RequestBuilderExt as _;
///
/// #[flowtrace::traced]
/// async fn fetch(client: reqwest::Client, url: String) -> reqwest::Result<String> {
///     // A `client` span under `fetch`; the callee continues the trace.
///     client.get(url).send_traced().await?.text().await
/// }
/// ```
pub trait RequestBuilderExt {
    /// Sends the request in a `client` span, child of the current task (or
    /// of the parent its `custom_context` map carries), with the span's
    /// context in `traceparent` / `tracestate` and the task's baggage in
    /// `baggage` (replacing such headers set by hand).
    ///
    /// The span is named after the method and carries
    /// `http.request.method`, `url.full` (credentials and signature query
    /// values redacted), `server.address`, `server.port`,
    /// `network.protocol.version` and `http.response.status_code`; a 4xx or
    /// 5xx response or a transport error sets status Error and `error.type`.
    fn send_traced(self) -> SendTraced;
}

impl RequestBuilderExt for reqwest::RequestBuilder {
    fn send_traced(self) -> SendTraced {
        // Everything happens on first poll, so the span's parent is the task
        // that awaits the request, not the one that built it.
        Box::pin(async move {
            let (client, request) = self.build_split();
            // A request that cannot be built is not sent: no span.
            let mut request = request?;
            let cx = start(&request);
            propagation::inject(&cx, &mut HeaderInjector(request.headers_mut()));
            let result = client.execute(request).with_context(cx.clone()).await;
            finish(&cx, &result);
            result
        })
    }
}

fn finish(cx: &Context, result: &reqwest::Result<reqwest::Response>) {
    let span = cx.span();
    match result {
        Ok(response) => {
            let code = response.status().as_u16();
            span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
            if let Some(version) = protocol_version(response.version()) {
                span.set_attribute(KeyValue::new(NETWORK_PROTOCOL_VERSION, version));
            }
            // Client spans: any 4xx or 5xx is an error (semantic
            // conventions, "Status").
            if code >= 400 {
                span.set_attribute(KeyValue::new(ERROR_TYPE, code.to_string()));
                span.set_status(Status::error(""));
            }
        }
        Err(error) => {
            span.set_attribute(KeyValue::new(ERROR_TYPE, error_type(error)));
            span.set_status(Status::error(error.to_string()));
        }
    }
    span.end();
}

fn error_type(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_redirect() {
        "redirect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "reqwest::Error"
    }
}

/// Query keys whose values the semantic conventions ask to redact.
const SENSITIVE_QUERY_KEYS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// `url.full` without credentials or signature values.
fn redacted(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    if !url.username().is_empty() {
        let _ = url.set_username("REDACTED");
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("REDACTED"));
    }
    let sensitive = url
        .query_pairs()
        .any(|(k, _)| SENSITIVE_QUERY_KEYS.contains(&k.as_ref()));
    if sensitive {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if SENSITIVE_QUERY_KEYS.contains(&k.as_ref()) {
                    "REDACTED".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// The `client` span's context, child of the current task.
fn start(request: &reqwest::Request) -> Context {
    let current = Context::current();
    let parent =
        crate::frame::current::with(|frame| frame.and_then(|f| parent_context(&current, f.map())))
            .unwrap_or_else(|| current.clone());
    let mut attributes = Vec::with_capacity(6);
    let name = method_attributes(request.method(), &mut attributes);
    let url = request.url();
    attributes.push(KeyValue::new(URL_FULL, redacted(url)));
    if let Some(host) = url.host_str() {
        attributes.push(KeyValue::new(SERVER_ADDRESS, host.to_owned()));
    }
    if let Some(port) = url.port_or_known_default() {
        attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    let builder = SpanBuilder::from_name(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attributes);
    let span = crate::backend::tracer().build_with_context(builder, &parent);
    let remote = parent.span().span_context().clone();
    match propagation::random_flag_fix(&remote, span.span_context()) {
        Some(fixed) => parent.with_remote_span_context(fixed),
        None => parent.with_span(span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_full_is_redacted() {
        for (url, expected, reason) in [
            (
                "http://127.0.0.1:8080/a?b=1",
                "http://127.0.0.1:8080/a?b=1",
                "nothing to hide",
            ),
            (
                "https://user:pw@example.com/x",
                "https://REDACTED:REDACTED@example.com/x",
                "credentials",
            ),
            (
                "https://example.com/x?sig=abc&keep=1",
                "https://example.com/x?sig=REDACTED&keep=1",
                "a signature",
            ),
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert_eq!(redacted(&url), expected, "{reason}");
        }
    }
}
