//! HTTP ingress and egress (cargo features `http-server`, `http-client`):
//! W3C Trace Context and Baggage over HTTP headers, with `server` and
//! `client` spans named and attributed by the OpenTelemetry HTTP semantic
//! conventions.
//!
//! - [`ServerLayer`] (`http-server`): a tower `Layer` for axum, hyper or
//!   tonic services. It extracts the caller's carrier from the request
//!   headers (a repeated `traceparent` or an invalid one restarts the
//!   trace), opens a `server` span, and runs the handler with that span
//!   current and in `flowtrace::ctx().custom_context()`. On a
//!   [public endpoint](public) (all requests, or those a predicate picks;
//!   default from `FLOWTRACE_HTTP_PUBLIC_ENDPOINT`) it starts a new trace
//!   linked to the caller's instead, sampled by the local sampler alone,
//!   and keeps only the baggage keys the service allows.
//! - [`RequestBuilderExt::send_traced`] (`http-client`): sends a reqwest
//!   request inside a `client` span whose context goes out in the
//!   `traceparent` / `tracestate` / `baggage` headers.
//! - [`inject_headers`] / [`extract_headers`]: the same carriers for any
//!   other HTTP stack.
//!
//! ```
//! let mut headers = http::HeaderMap::new();
//! headers.append("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
//! headers.append("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
//! let cx = flowtrace::http::extract_headers(&headers);
//! use opentelemetry::trace::TraceContextExt as _;
//! assert!(!cx.has_active_span(), "a repeated traceparent restarts the trace");
//! ```

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, Injector};

#[cfg(feature = "http-client")]
mod client;
#[cfg(feature = "http-server")]
pub mod public;
#[cfg(feature = "http-server")]
mod server;

#[cfg(feature = "http-client")]
pub use client::{RequestBuilderExt, SendTraced};
#[cfg(feature = "http-server")]
pub use public::{
    LINK_REASON_PUBLIC_ENDPOINT, PUBLIC_BAGGAGE_ENV, PUBLIC_ENDPOINT_ENV, RequestHead,
};
#[cfg(feature = "http-server")]
pub use server::{ServerFuture, ServerLayer, ServerService};

use crate::attributes::{HTTP_REQUEST_METHOD, HTTP_REQUEST_METHOD_ORIGINAL};

/// Reads carriers from HTTP headers: names are case-insensitive, and a
/// repeated field is seen as repeated ([`Extractor::get_all`]), which is
/// what lets a duplicated `traceparent` be rejected and several
/// `tracestate` / `baggage` fields be combined. A value that is not visible
/// ASCII is read as empty, so it fails validation instead of vanishing.
///
/// ```
/// use flowtrace::http::HeaderExtractor;
/// use opentelemetry::propagation::Extractor as _;
///
/// let mut headers = http::HeaderMap::new();
/// headers.append("tracestate", "a=1".parse().unwrap());
/// headers.append("tracestate", "b=2".parse().unwrap());
/// let extractor = HeaderExtractor(&headers);
/// assert_eq!(extractor.get_all("TraceState"), Some(vec!["a=1", "b=2"]));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.to_str().unwrap_or_default())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .map(|v| v.to_str().unwrap_or_default())
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes carriers into HTTP headers, replacing any field of the same name.
///
/// ```
/// use flowtrace::http::HeaderInjector;
/// use opentelemetry::propagation::Injector as _;
///
/// let mut headers = http::HeaderMap::new();
/// HeaderInjector(&mut headers).set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned());
/// assert_eq!(headers["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
/// ```
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        match (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                self.0.insert(name, value);
            }
            // The propagators only produce visible ASCII; anything else is
            // a bug worth hearing about rather than a header silently lost.
            _ => tracing::warn!(key, "not a valid HTTP header; not sent"),
        }
    }
}

/// Writes the current task's carrier (its span, or the parent its
/// `custom_context` map carries, and its baggage) into `headers`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
/// let mut headers = http::HeaderMap::new();
/// flowtrace::custom_context([("traceparent", tp)])
///     .scope(async { flowtrace::http::inject_headers(&mut headers) })
///     .await;
/// assert_eq!(headers["traceparent"], tp);
/// # }
/// ```
pub fn inject_headers(headers: &mut HeaderMap) {
    crate::task_view::inject_current(&mut HeaderInjector(headers));
}

/// The context a request's headers carry, on top of the current one.
///
/// ```
/// use opentelemetry::trace::TraceContextExt as _;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
/// let cx = flowtrace::http::extract_headers(&headers);
/// assert_eq!(cx.span().span_context().span_id().to_string(), "b7ad6b7169203331");
/// ```
pub fn extract_headers(headers: &HeaderMap) -> Context {
    crate::propagation::extract(&HeaderExtractor(headers))
}

/// The method as the semantic conventions want it: one of the known
/// methods, or `_OTHER` plus the original.
pub(crate) fn method_attributes(method: &http::Method, attributes: &mut Vec<KeyValue>) -> String {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    let name = method.as_str();
    if KNOWN.contains(&name) {
        attributes.push(KeyValue::new(HTTP_REQUEST_METHOD, name.to_owned()));
        name.to_owned()
    } else {
        attributes.push(KeyValue::new(HTTP_REQUEST_METHOD, "_OTHER"));
        attributes.push(KeyValue::new(HTTP_REQUEST_METHOD_ORIGINAL, name.to_owned()));
        "HTTP".to_owned()
    }
}

pub(crate) fn protocol_version(version: http::Version) -> Option<&'static str> {
    Some(match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => return None,
    })
}
