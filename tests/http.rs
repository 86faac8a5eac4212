#![cfg(all(feature = "http-server", feature = "http-client"))]
//! HTTP ingress and egress against opentelemetry_sdk's in-memory exporter:
//! axum services on loopback ports, reqwest between them. What a collector
//! receives is tested in `http_collector.rs`, a Python peer in
//! `http_python.rs`.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use support::in_memory::{attr_str as attr, exporter, named, spans_of};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use flowtrace::http::{RequestBuilderExt as _, ServerLayer};
use flowtrace::propagation::{parse_traceparent, with_baggage};
use flowtrace::{ctx, traced, with_runcontext};
use opentelemetry::trace::{SpanId, SpanKind, Status};

/// A reqwest client. flowtrace's reqwest is built without a TLS crypto
/// provider (its OTLP exporter brings ring), so one is installed first.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// An axum app on a free loopback port, stopped when dropped.
struct Service {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    async fn start(app: Router) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Service { addr, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[traced]
async fn lookup(id: String) -> String {
    format!("user {id}")
}

/// What a handler saw: the map's parent, baggage, its task's answer.
async fn user(Path(id): Path<String>, headers: HeaderMap) -> axum::Json<HashMap<String, String>> {
    let view = ctx();
    let mut seen = HashMap::from([
        ("answer".to_owned(), lookup(id).await),
        ("trace_id".to_owned(), view.trace_id()),
        ("span_id".to_owned(), view.span_id()),
    ]);
    for key in ["traceparent", "baggage"] {
        if let Some(v) = view.custom_context().get(key) {
            seen.insert(format!("map.{key}"), v.to_owned());
        }
    }
    if let Some(user) = view.baggage().get("user") {
        seen.insert("baggage.user".to_owned(), user.to_string());
    }
    for (name, value) in &headers {
        if matches!(name.as_str(), "traceparent" | "tracestate" | "baggage") {
            seen.insert(format!("header.{name}"), value.to_str().unwrap().to_owned());
        }
    }
    axum::Json(seen)
}

fn app() -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .layer(ServerLayer::new())
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

async fn get_json(request: reqwest::RequestBuilder) -> HashMap<String, String> {
    let body = request.send().await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn server_span_continues_the_callers_trace() {
    exporter();
    let service = Service::start(app()).await;
    let seen = get_json(
        client()
            .get(service.url("/users/42?verbose=1"))
            .header("traceparent", format!("00-{TRACE}-{PARENT}-03"))
            .header("tracestate", "congo=t61rcWkgMzE")
            .header("baggage", "user=alice")
            .header("user-agent", "flowtrace-test"),
    )
    .await;
    assert_eq!(seen["answer"], "user 42");
    assert_eq!(
        seen["trace_id"], TRACE,
        "the handler is in the caller's trace"
    );
    assert_eq!(seen["baggage.user"], "alice", "baggage visible via ctx()");
    assert_eq!(seen["map.baggage"], "user=alice", "and in the map");

    let spans = spans_of(TRACE);
    let server = named(&spans, "GET /users/{id}");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(server.parent_span_id, SpanId::from_hex(PARENT).unwrap());
    assert!(server.parent_span_is_remote);
    assert_eq!(
        server.span_context.trace_flags().to_u8(),
        0x03,
        "random flag kept"
    );
    assert_eq!(
        server.span_context.trace_state().header(),
        "congo=t61rcWkgMzE"
    );
    assert_eq!(seen["span_id"], server.span_context.span_id().to_string());
    assert_eq!(
        seen["map.traceparent"],
        format!("00-{TRACE}-{}-03", server.span_context.span_id()),
        "the handler's custom_context carries the server span"
    );
    let port = service.addr.port().to_string();
    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/users/42"),
        ("url.query", "verbose=1"),
        ("url.scheme", "http"),
        ("http.route", "/users/{id}"),
        ("server.address", "127.0.0.1"),
        ("server.port", &port),
        ("network.protocol.version", "1.1"),
        ("user_agent.original", "flowtrace-test"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(attr(server, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(server.status, Status::Unset);
    let lookup = named(&spans, "lookup");
    assert_eq!(lookup.parent_span_id, server.span_context.span_id());
}

#[traced]
async fn call(url: String) -> HashMap<String, String> {
    get_json_traced(url).await
}

async fn get_json_traced(url: String) -> HashMap<String, String> {
    let response = client().get(url).send_traced().await.unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn client_span_is_the_servers_parent() {
    exporter();
    let service = Service::start(app()).await;
    let url = service.url("/users/7");
    let run = with_runcontext()
        .name("client_run")
        .run(with_baggage([("user", "bob")]).scope(call(url.clone())))
        .await;
    let seen = run.output();
    let spans = spans_of(run.trace_id());
    let call = named(&spans, "call");
    let client = named(&spans, "GET");
    let server = named(&spans, "GET /users/{id}");
    assert_eq!(client.span_kind, SpanKind::Client);
    assert_eq!(client.parent_span_id, call.span_context.span_id());
    assert_eq!(server.parent_span_id, client.span_context.span_id());
    let sent = parse_traceparent(&seen["header.traceparent"]).unwrap();
    assert_eq!(
        sent.span_id(),
        client.span_context.span_id(),
        "the header names the client span"
    );
    assert_eq!(seen["header.baggage"], "user=bob");
    assert_eq!(seen["baggage.user"], "bob");
    let port = service.addr.port().to_string();
    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.full", url.as_str()),
        ("server.address", "127.0.0.1"),
        ("server.port", &port),
        ("http.response.status_code", "200"),
        ("network.protocol.version", "1.1"),
    ] {
        assert_eq!(attr(client, key).as_deref(), Some(value), "{key}");
    }
}

#[tokio::test]
async fn error_status_follows_the_side() {
    exporter();
    let service = Service::start(app()).await;
    for (path, server_error, reason) in [
        ("/fail", true, "5xx is an error on both sides"),
        ("/missing", false, "4xx is the client's error only"),
    ] {
        let run = with_runcontext()
            .run(client().get(service.url(path)).send_traced())
            .await;
        let code = run.output().as_ref().unwrap().status().as_u16().to_string();
        let spans = spans_of(run.trace_id());
        let client = named(&spans, "GET");
        let server = named(&spans, &format!("GET {path}"));
        assert!(matches!(client.status, Status::Error { .. }), "{reason}");
        assert_eq!(attr(client, "error.type"), Some(code.clone()), "{reason}");
        assert_eq!(
            matches!(server.status, Status::Error { .. }),
            server_error,
            "{reason}"
        );
        assert_eq!(
            attr(server, "error.type").is_some(),
            server_error,
            "{reason}"
        );
        assert_eq!(attr(server, "http.response.status_code"), Some(code));
    }
}

#[tokio::test]
async fn a_rejected_traceparent_restarts_with_the_reason() {
    exporter();
    let service = Service::start(app()).await;
    let valid = format!("00-{TRACE}-{PARENT}-01");
    for (headers, expected, reason) in [
        (
            vec![valid.clone(), valid.clone()],
            "2 traceparent values",
            "repeated header",
        ),
        (
            vec![format!("00-{TRACE}-{}-01", &PARENT[1..])],
            "exactly 55",
            "short parent-id",
        ),
        (
            vec![format!("ff-{TRACE}-{PARENT}-01")],
            "forbidden",
            "version ff",
        ),
        (
            vec![format!("00-{}-{PARENT}-01", "0".repeat(32))],
            "all zeros",
            "zero trace-id",
        ),
    ] {
        let mut request = client()
            .get(service.url("/users/1"))
            .header("tracestate", "congo=t61rcWkgMzE");
        for value in &headers {
            request = request.header("traceparent", value);
        }
        let seen = get_json(request).await;
        assert_ne!(seen["trace_id"], TRACE, "{reason}: a new trace");
        let spans = spans_of(&seen["trace_id"]);
        let server = named(&spans, "GET /users/{id}");
        assert_eq!(server.parent_span_id, SpanId::INVALID, "{reason}: a root");
        assert_eq!(
            server.span_context.trace_state().header(),
            "",
            "{reason}: tracestate not read"
        );
        let why = attr(server, "flowtrace.traceparent.rejected").unwrap_or_default();
        assert!(why.contains(expected), "{reason}: {why}");
    }
}

/// A front service whose handler calls the user service directly.
async fn front(
    axum::extract::State(backend): axum::extract::State<String>,
) -> axum::Json<HashMap<String, String>> {
    axum::Json(get_json_traced(backend).await)
}

#[tokio::test]
async fn random_flag_crosses_an_unsampled_hop() {
    exporter();
    let backend = Service::start(app()).await;
    let front = Service::start(
        Router::new()
            .route("/front", get(front))
            .with_state(backend.url("/users/9"))
            .layer(ServerLayer::new()),
    )
    .await;
    // 02: random, not sampled. The SDK's parent-based sampler drops both
    // hops' spans, and the flag still has to reach the backend.
    // A trace of its own: the other tests run at the same time.
    let trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let seen = get_json(
        client()
            .get(front.url("/front"))
            .header("traceparent", format!("00-{trace}-{PARENT}-02")),
    )
    .await;
    let sent = parse_traceparent(&seen["header.traceparent"]).unwrap();
    assert_eq!(sent.trace_id().to_string(), trace);
    assert_ne!(
        sent.span_id(),
        SpanId::from_hex(PARENT).unwrap(),
        "a new parent-id"
    );
    assert_eq!(
        sent.trace_flags().to_u8(),
        0x02,
        "{}",
        seen["header.traceparent"]
    );
    assert!(
        spans_of(trace).is_empty(),
        "nothing sampled, nothing exported"
    );
}
