#![cfg(all(feature = "http-server", feature = "http-client"))]
//! Interop over HTTP with the Python OpenTelemetry SDK on both sides
//! (`tests/python/http_peer.py`): a Python client calls a flowtrace service
//! (axum + `ServerLayer`), whose task calls a Python server back with
//! reqwest `send_traced`. Python sends flags `03` (Level 2 random-trace-id),
//! a `tracestate` and baggage; all three must come back out of flowtrace,
//! and the collector must see one trace: python-client → flowtrace server
//! → relay → flowtrace client → python-server.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use flowtrace::http::{RequestBuilderExt as _, ServerLayer};
use flowtrace::{ctx, traced};
use support::{Collector, Span, SpanKind, WAIT, run_bounded, span_named};

/// A reqwest client. flowtrace's reqwest is built without a TLS crypto
/// provider (its OTLP exporter brings ring), so one is installed first.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Calls the Python server back; returns its JSON plus what this task saw.
#[traced]
async fn relay(callback: String) -> serde_json::Value {
    let response = client()
        .get(callback)
        .send_traced()
        .await
        .expect("python server answers");
    let mut seen: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let customer = ctx().baggage().get("customer").map(|v| v.to_string());
    seen["flowtrace.baggage.customer"] = customer.into();
    seen
}

async fn relay_handler(Query(q): Query<HashMap<String, String>>) -> axum::Json<serde_json::Value> {
    axum::Json(relay(q["callback"].clone()).await)
}

fn child_of<'a>(spans: &'a [Span], parent: &Span, name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name && s.parent_span_id == parent.span_id)
        .unwrap_or_else(|| {
            panic!(
                "no {name:?} under {:?}: {}",
                parent.name,
                support::summary(spans)
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_and_server_around_a_flowtrace_service() {
    let python = support::tools::python();
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("flowtrace-service", &[]);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/relay", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/relay", get(relay_handler))
        .layer(ServerLayer::new());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let script = support::tools::root().join("tests/python/http_peer.py");
    let endpoint = collector.http_endpoint();
    let output = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg(&url);
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_")
                || matches!(key.as_str(), "TRACEPARENT" | "TRACESTATE" | "BAGGAGE")
            {
                cmd.env_remove(key);
            }
        }
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
        run_bounded(&mut cmd, Duration::from_secs(60))
    })
    .await
    .unwrap();
    output.assert_success("http_peer.py");
    server.abort();
    telemetry.shutdown().expect("flushed");

    let last = output.stdout.trim_end().lines().last().unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}\n{}", output.stderr));
    let trace_id = report["trace_id"].as_str().unwrap().to_owned();
    let sent = &report["sent"];
    let got = &report["response"];
    let sent_tp = sent["traceparent"].as_str().unwrap();
    assert!(sent_tp.ends_with("-03"), "Python sends flags 03: {sent_tp}");
    let got_tp = got["traceparent"].as_str().unwrap();
    assert!(got_tp.starts_with(&format!("00-{trace_id}-")), "{got_tp}");
    assert!(
        got_tp.ends_with("-03"),
        "flowtrace passes the random flag on: {got_tp}"
    );
    assert_eq!(
        got["tracestate"], "python=t61rcWkgMzE",
        "tracestate passed on"
    );
    assert_eq!(got["baggage"], "customer=carol");
    assert_eq!(
        got["baggage.customer"], "carol",
        "Python reads flowtrace's baggage"
    );
    assert_eq!(
        got["flowtrace.baggage.customer"], "carol",
        "flowtrace reads Python's"
    );

    // python-client, GET /relay, relay, GET, python-server
    let spans = tokio::task::spawn_blocking(move || collector.wait_for_trace(&trace_id, 5, WAIT))
        .await
        .unwrap();
    let summary = support::summary(&spans);
    assert_eq!(spans.len(), 5, "{summary}");
    let client = span_named(&spans, "python-client");
    assert_eq!(client.span_id, report["client_span_id"]);
    assert_eq!(client.service_name, "python-peer");
    let server = child_of(&spans, client, "GET /relay");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.service_name, "flowtrace-service");
    assert_eq!(server.trace_state, "python=t61rcWkgMzE");
    let relay = child_of(&spans, server, "relay");
    let out = child_of(&spans, relay, "GET");
    assert_eq!(out.kind, SpanKind::Client);
    assert!(
        got_tp.contains(&out.span_id),
        "the header names the client span"
    );
    let back = child_of(&spans, out, "python-server");
    assert_eq!(back.service_name, "python-peer");
}
