//! HTTP ingress: a tower `Layer` that continues the caller's trace.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Poll, ready};

use http::{Request, Response};
use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer,
};
use opentelemetry::{Context, KeyValue};
use tower_layer::Layer;
use tower_service::Service;

use super::public::{self, LINK_REASON_PUBLIC_ENDPOINT, Public, RequestHead};
use super::{HeaderExtractor, method_attributes, protocol_version};
use crate::attributes::{
    ERROR_TYPE, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, LINK_REASON, NETWORK_PROTOCOL_VERSION,
    SERVER_ADDRESS, SERVER_PORT, TRACEPARENT_REJECTED, URL_PATH, URL_QUERY, URL_SCHEME,
    USER_AGENT_ORIGINAL,
};
use crate::frame::{Frame, FrameInner};
use crate::propagation::{self, BAGGAGE, Baggage, BaggagePolicy};
use opentelemetry::propagation::TextMapPropagator as _;

/// A tower [`Layer`] that puts every request in a `server` span continuing
/// the caller's trace (W3C `traceparent` / `tracestate` / `baggage`
/// headers, strictly parsed: a repeated or invalid `traceparent` restarts
/// the trace and the reason is recorded as `flowtrace.traceparent.rejected`).
///
/// The span is named `{method} {route}` and carries `http.request.method`,
/// `url.path`, `url.query`, `url.scheme`, `http.route` (from axum's
/// `MatchedPath`, so add the layer with `Router::layer`), `server.address`,
/// `server.port`, `network.protocol.version`, `user_agent.original` and
/// `http.response.status_code`; a 5xx response or a service error sets
/// status Error and `error.type`. The handler runs with the span current:
/// `#[traced]` tasks it calls are its children, and `flowtrace::ctx()`
/// shows the span in `custom_context()` and the caller's baggage in
/// `baggage()`.
///
/// ```
/// use axum::{Router, routing::get};
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "alice" }))
///     .layer(flowtrace::http::ServerLayer::new());
/// ```
///
/// # Public endpoints
///
/// A caller on the internet must not choose the trace a request lands in,
/// put entries into the baggage every task reads and passes on, or force
/// sampling by setting the `sampled` flag. On a
/// [public endpoint](super::public) the server span starts a new trace
/// instead, linked to the caller's span context, sampled by the local
/// sampler alone, and the caller's baggage is dropped except for an
/// allow-list. Set it for every request, or per request with a predicate
/// (by path, or by a header a trusted proxy sets); the default comes from
/// `FLOWTRACE_HTTP_PUBLIC_ENDPOINT` (`true` / `false`, default `false`).
///
/// ```
/// use axum::{Router, routing::get};
/// use flowtrace::http::ServerLayer;
/// use flowtrace::propagation::BaggagePolicy;
///
/// let app: Router = Router::new()
///     .route("/api/search", get(|| async { "results" }))
///     .route("/internal/reindex", get(|| async { "ok" }))
///     .layer(
///         ServerLayer::new()
///             .public_endpoint_fn(|request| !request.path().starts_with("/internal/"))
///             .public_baggage(BaggagePolicy::allow(["tenant"])),
///     );
/// ```
#[derive(Debug, Clone)]
pub struct ServerLayer {
    public: Public,
    public_baggage: BaggagePolicy,
}

impl Default for ServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerLayer {
    /// The layer. Requests are trusted unless `FLOWTRACE_HTTP_PUBLIC_ENDPOINT`
    /// is `true` (read once per process; any other value than `true`,
    /// `false` or empty is reported with a warning and read as `false`).
    /// A public request keeps the baggage keys `FLOWTRACE_HTTP_PUBLIC_BAGGAGE`
    /// lists (comma-separated; default none).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::{Layer as _, ServiceExt as _};
    ///
    /// let hello = tower::service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new("hello"))
    /// });
    /// let service = flowtrace::http::ServerLayer::new().layer(hello);
    /// let response = service.oneshot(http::Request::get("/").body(()).unwrap()).await.unwrap();
    /// assert_eq!(response.status(), 200);
    /// # }
    /// ```
    pub fn new() -> Self {
        Self {
            public: Public::from_env(),
            public_baggage: public::baggage_from_env(),
        }
    }

    /// Treats every request as coming from a public endpoint (`true`), or
    /// every caller as trusted (`false`). Replaces a predicate set with
    /// [`public_endpoint_fn`](Self::public_endpoint_fn) and the
    /// environment's default.
    ///
    /// ```
    /// use flowtrace::http::ServerLayer;
    ///
    /// // An API the internet calls: its traceparent starts a linked trace, its
    /// // baggage is dropped.
    /// let layer = ServerLayer::new().public_endpoint(true);
    /// # let _ = layer;
    /// ```
    pub fn public_endpoint(mut self, public: bool) -> Self {
        self.public = if public {
            Public::Always
        } else {
            Public::Never
        };
        self
    }

    /// Decides per request whether it comes from a public endpoint.
    /// Replaces [`public_endpoint`](Self::public_endpoint) and the
    /// environment's default.
    ///
    /// ```
    /// use flowtrace::http::ServerLayer;
    ///
    /// // Internal callers come through the mesh with this header set.
    /// let layer = ServerLayer::new()
    ///     .public_endpoint_fn(|head| !head.headers().contains_key("x-internal-caller"));
    /// # let _ = layer;
    /// ```
    pub fn public_endpoint_fn<F>(mut self, is_public: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> bool + Send + Sync + 'static,
    {
        self.public = Public::when(is_public);
        self
    }

    /// Which baggage entries of a public request are kept (default: the
    /// keys `FLOWTRACE_HTTP_PUBLIC_BAGGAGE` lists, else none). Trusted
    /// requests keep all of theirs.
    ///
    /// ```
    /// use flowtrace::http::ServerLayer;
    /// use flowtrace::propagation::BaggagePolicy;
    ///
    /// let layer = ServerLayer::new()
    ///     .public_endpoint(true)
    ///     .public_baggage(BaggagePolicy::allow(["tenant"]));
    /// # let _ = layer;
    /// ```
    pub fn public_baggage(mut self, policy: BaggagePolicy) -> Self {
        self.public_baggage = policy;
        self
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ServerLayer`] wraps around `S`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower::{Layer as _, ServiceExt as _};
///
/// let hello = tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new("hello"))
/// });
/// let service: flowtrace::http::ServerService<_> = flowtrace::http::ServerLayer::new().layer(hello);
/// let response = service.oneshot(http::Request::get("/users").body(()).unwrap()).await.unwrap();
/// assert_eq!(response.into_body(), "hello");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ServerService<S> {
    inner: S,
    layer: ServerLayer,
}

impl<S, B, R> Service<Request<B>> for ServerService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let public = self
            .layer
            .public
            .is_public(&request)
            .then_some(&self.layer.public_baggage);
        let cx = start(&request, public);
        // Some services do work in `call` itself: under the span too.
        let future = {
            let _guard = cx.clone().attach();
            self.inner.call(request)
        };
        ServerFuture {
            cx,
            ended: false,
            future,
        }
    }
}

/// The request's attributes, span name and the context its handler runs in;
/// `public` (the baggage policy) when the caller is not trusted.
fn start<B>(request: &Request<B>, public: Option<&BaggagePolicy>) -> Context {
    let headers = request.headers();
    let base = Context::current();
    let extractor = HeaderExtractor(headers);
    let mut rejected = None;
    let mut link = None;
    let parent = match propagation::extract_span_context(&extractor) {
        // A public caller's span context is linked, not continued.
        Ok(Some(sc)) if public.is_some() => {
            link = Some(sc);
            base.clone()
        }
        Ok(Some(sc)) => base.with_remote_span_context(sc),
        Ok(None) => base.clone(),
        Err(reason) => {
            rejected = Some(reason);
            base.clone()
        }
    };
    let parent = match public {
        None => Baggage::new().extract_with_context(&parent, &extractor),
        Some(policy) => public::extract_baggage(&parent, &extractor, policy),
    };

    let mut attributes = Vec::with_capacity(12);
    let method = method_attributes(request.method(), &mut attributes);
    let uri = request.uri();
    attributes.push(KeyValue::new(URL_PATH, uri.path().to_owned()));
    if let Some(query) = uri.query() {
        attributes.push(KeyValue::new(URL_QUERY, query.to_owned()));
    }
    attributes.push(KeyValue::new(
        URL_SCHEME,
        uri.scheme_str().unwrap_or("http").to_owned(),
    ));
    let route = matched_path(request);
    if let Some(route) = &route {
        attributes.push(KeyValue::new(HTTP_ROUTE, route.clone()));
    }
    let authority = uri.authority().cloned().or_else(|| {
        headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
    });
    if let Some(authority) = authority {
        attributes.push(KeyValue::new(SERVER_ADDRESS, authority.host().to_owned()));
        if let Some(port) = authority.port_u16() {
            attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
    }
    if let Some(version) = protocol_version(request.version()) {
        attributes.push(KeyValue::new(NETWORK_PROTOCOL_VERSION, version));
    }
    if let Some(agent) = headers
        .get(http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
    {
        attributes.push(KeyValue::new(USER_AGENT_ORIGINAL, agent.to_owned()));
    }
    if let Some(reason) = rejected {
        attributes.push(KeyValue::new(TRACEPARENT_REJECTED, reason.to_string()));
    }
    let name: Cow<'static, str> = match &route {
        Some(route) => format!("{method} {route}").into(),
        None => method.into(),
    };
    let mut builder = SpanBuilder::from_name(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes);
    if let Some(sc) = link {
        builder = builder.with_links(vec![Link::new(
            sc,
            vec![KeyValue::new(LINK_REASON, LINK_REASON_PUBLIC_ENDPOINT)],
            0,
        )]);
    }
    let span = match public {
        // A new root: no span of this process or the caller's is its parent.
        Some(_) => crate::backend::tracer().build_with_context(builder, &Context::new()),
        None => crate::backend::tracer().build_with_context(builder, &parent),
    };
    let sc = span.span_context().clone();
    let remote = match public {
        Some(_) => opentelemetry::trace::SpanContext::empty_context(),
        None => parent.span().span_context().clone(),
    };
    let cx = match propagation::random_flag_fix(&remote, &sc) {
        Some(fixed) => parent.with_remote_span_context(fixed),
        None => parent.with_span(span),
    };
    // The handler's map: the caller's (if any) with this span as the parent
    // of the tasks it calls, and the baggage that came in.
    let caller = crate::frame::current::cloned();
    let mut map = caller.as_ref().map(|f| f.map().clone()).unwrap_or_default();
    if headers.contains_key(BAGGAGE) {
        let header = propagation::format_baggage(opentelemetry::baggage::BaggageExt::baggage(&cx));
        if !header.is_empty() {
            map = map.merged([(BAGGAGE, header)]);
        }
    }
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        map = map.with_span_context(sc.clone());
    }
    let frame = match caller {
        Some(caller) => Frame {
            inner: std::sync::Arc::new(caller.inner.with_map(map)),
            ..caller
        },
        None => Frame::new(FrameInner::new(map, None)),
    };
    cx.with_value(frame)
}

fn matched_path<B>(request: &Request<B>) -> Option<String> {
    request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
}

pin_project_lite::pin_project! {
    /// The response future of [`ServerService`]: polled with the request's
    /// context current; ends the span with the response.
    ///
    /// ```
    /// use tower::Service as _;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::{Layer as _, ServiceExt as _};
    ///
    /// let hello = tower::service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new("hello"))
    /// });
    /// let mut service = flowtrace::http::ServerLayer::new().layer(hello);
    /// let future: flowtrace::http::ServerFuture<_> = service.call(http::Request::get("/").body(()).unwrap());
    /// assert_eq!(future.await.unwrap().status(), 200);
    /// # }
    /// ```
    pub struct ServerFuture<F> {
        cx: Context,
        ended: bool,
        #[pin]
        future: F,
    }

    impl<F> PinnedDrop for ServerFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.ended {
                // The connection went away before the handler finished.
                let span = this.cx.span();
                span.set_attribute(KeyValue::new(crate::attributes::TASK_CANCELLED, true));
                span.end();
            }
        }
    }
}

impl<F, R, E> Future for ServerFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _frame = this.cx.get::<Frame>().map(crate::frame::current::enter);
            let _guard = this.cx.clone().attach();
            ready!(this.future.poll(task))
        };
        let span = this.cx.span();
        match &result {
            Ok(response) => {
                let code = response.status().as_u16();
                span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
                // Server spans: only 5xx is the server's error; 4xx is the
                // client's (semantic conventions, "Status").
                if code >= 500 {
                    span.set_attribute(KeyValue::new(ERROR_TYPE, code.to_string()));
                    span.set_status(Status::error(""));
                }
            }
            Err(error) => {
                span.set_attribute(KeyValue::new(ERROR_TYPE, std::any::type_name::<E>()));
                span.set_status(Status::error(error.to_string()));
            }
        }
        span.end();
        *this.ended = true;
        Poll::Ready(result)
    }
}
