#![cfg(all(feature = "http-server", feature = "http-client"))]
//! Baggage at a public endpoint, at a real collector (rotel): a `front`
//! service whose `ServerLayer` decides per request (a predicate on the
//! path) which requests are public, and allows one baggage key. Its
//! handler runs a `#[traced]` task that reads its baggage and calls a
//! trusted `sink` service, which answers with the `baggage` header it got.
//! From a public request only the allowed key reaches the task and the
//! outgoing request; on a trusted route everything does, and the request
//! continues the caller's trace.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use flowtrace::attributes::LINK_REASON;
use flowtrace::http::{LINK_REASON_PUBLIC_ENDPOINT, RequestBuilderExt as _, ServerLayer};
use flowtrace::propagation::BaggagePolicy;
use flowtrace::{ctx, traced};
use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt as _;
use support::{Collector, Span, SpanKind, span_named};

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
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The baggage a task sees, as `k=v` joined by `,` in key order.
fn seen_baggage() -> String {
    let view = ctx();
    let entries: BTreeMap<String, String> = view
        .baggage()
        .iter()
        .map(|(k, (v, _))| (k.to_string(), v.to_string()))
        .collect();
    entries
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Records what it saw on its span and returns what the sink got.
#[traced]
async fn place_order(sink: String) -> (String, String) {
    let seen = seen_baggage();
    opentelemetry::Context::current()
        .span()
        .set_attribute(KeyValue::new("test.task_baggage", seen.clone()));
    let sent = client()
        .get(sink)
        .send_traced()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (seen, sent)
}

async fn order(State(sink): State<String>) -> axum::Json<(String, String)> {
    axum::Json(place_order(sink).await)
}

async fn sink(headers: HeaderMap) -> String {
    headers
        .get("baggage")
        .map_or("(none)".to_owned(), |v| v.to_str().unwrap().to_owned())
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

async fn call(front: &Service, path: &str, baggage: &str) -> (String, String) {
    let response = client()
        .get(format!("http://{}{path}", front.addr))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .header("baggage", baggage)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn server_of<'a>(spans: &'a [Span], path: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server && s.attr("url.path") == Some(path))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one server span for {path}: {}",
        support::summary(spans)
    );
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_baggage_reaches_nothing_but_an_allowed_key() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("public-baggage", &[]);

    let sink = Service::start(
        Router::new()
            .route("/sink", get(sink))
            .layer(ServerLayer::new().public_endpoint(false)),
    )
    .await;
    let front = Service::start(
        Router::new()
            .route("/public/order", get(order))
            .route("/internal/order", get(order))
            .with_state(format!("http://{}/sink", sink.addr))
            .layer(
                ServerLayer::new()
                    .public_endpoint_fn(|request| request.path().starts_with("/public/"))
                    .public_baggage(BaggagePolicy::allow(["tenant"])),
            ),
    )
    .await;

    let both = "tenant=acme,user=mallory";
    let (task, sent) = call(&front, "/public/order", both).await;
    assert_eq!(
        task, "tenant=acme",
        "a public request: only the allowed key reaches the task"
    );
    assert_eq!(sent, "tenant=acme", "... and the outgoing request");

    let (task, sent) = call(&front, "/public/order?only=disallowed", "user=mallory").await;
    assert_eq!(task, "", "nothing allowed: the task sees no baggage");
    assert_eq!(sent, "(none)", "and no baggage header goes out");

    let (task, sent) = call(&front, "/internal/order", both).await;
    assert_eq!(task, both, "a trusted route keeps all of it");
    assert_eq!(sent, both);

    telemetry.shutdown().expect("flushed");
    // front server + task + client + sink server, per request.
    let spans = tokio::task::spawn_blocking(move || {
        collector.wait_for("every span of the three requests", support::WAIT, |spans| {
            spans.len() >= 12
        })
    })
    .await
    .unwrap();
    assert_eq!(spans.len(), 12, "{}", support::summary(&spans));

    // The trusted route continues the caller's trace.
    let trusted = spans_of(&spans, CALLER_TRACE);
    assert_eq!(trusted.len(), 4, "{}", support::summary(&trusted));
    let front_server = server_of(&trusted, "/internal/order");
    assert_eq!(front_server.parent_span_id, CALLER_SPAN);
    assert!(front_server.links.is_empty());
    assert_eq!(
        span_named(&trusted, "place_order").attr("test.task_baggage"),
        Some(both)
    );

    // Each public request is a trace of its own, linked to the caller.
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| s.attr("url.path") == Some("/public/order"))
        .collect();
    assert_eq!(servers.len(), 2, "two public requests");
    {
        for server in servers {
            assert!(server.is_root(), "{}", support::summary(&spans));
            assert_ne!(server.trace_id, CALLER_TRACE);
            assert_eq!(server.links.len(), 1);
            assert_eq!(server.links[0].trace_id, CALLER_TRACE);
            assert_eq!(server.links[0].span_id, CALLER_SPAN);
            assert_eq!(
                server.links[0].attributes,
                [(
                    LINK_REASON.to_owned(),
                    LINK_REASON_PUBLIC_ENDPOINT.to_owned()
                )]
            );
            let own = spans_of(&spans, &server.trace_id);
            assert_eq!(own.len(), 4, "task, client and sink in the new trace");
            let task = span_named(&own, "place_order");
            assert_eq!(task.parent_span_id, server.span_id);
            let expected = if server.attr("url.query").is_some() {
                ""
            } else {
                "tenant=acme"
            };
            assert_eq!(task.attr("test.task_baggage"), Some(expected));
        }
    }
}

fn spans_of(spans: &[Span], trace_id: &str) -> Vec<Span> {
    support::spans_of_trace(spans, trace_id)
}
