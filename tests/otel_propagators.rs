#![cfg(all(feature = "http-server", feature = "http-client"))]
//! `OTEL_PROPAGATORS` decides what flowtrace's own carriers inject, as it
//! does for the global propagator: the environment carrier (`to_env`,
//! `CommandExt::with_trace_context`), `inject_headers` and the reqwest
//! client. `none` injects nothing; `tracecontext` alone no baggage.

use std::collections::BTreeMap;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use flowtrace::http::RequestBuilderExt as _;
use flowtrace::process::{CommandExt as _, carrier_of};
use flowtrace::propagation::{to_env, with_baggage};
use flowtrace::{traced, with_runcontext};

/// The carrier keys one way of injecting wrote, sorted.
type Written = Vec<String>;

/// The headers the echo service received from the client.
async fn echo(headers: HeaderMap) -> String {
    let mut seen: Vec<&str> = ["traceparent", "tracestate", "baggage"]
        .into_iter()
        .filter(|name| headers.contains_key(*name))
        .collect();
    seen.sort_unstable();
    seen.join(",")
}

#[traced]
async fn probe(url: String) -> BTreeMap<&'static str, Written> {
    let keys = |pairs: Vec<(String, String)>| {
        let mut keys: Written = pairs
            .into_iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        keys.sort_unstable();
        keys
    };
    let mut headers = http::HeaderMap::new();
    flowtrace::http::inject_headers(&mut headers);
    let mut cmd = std::process::Command::new("true");
    cmd.with_trace_context();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sent = reqwest::Client::new()
        .get(url)
        .send_traced()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    BTreeMap::from([
        ("to_env", keys(to_env())),
        ("with_trace_context", keys(carrier_of(&cmd).into_vars())),
        (
            "inject_headers",
            keys(
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                    .collect(),
            ),
        ),
        (
            "send_traced",
            sent.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
    ])
}

#[tokio::test]
async fn otel_propagators_decides_what_flowtraces_carriers_inject() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/echo", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/echo", get(echo)))
            .await
            .unwrap();
    });
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("otel-propagators.jsonl");
    for (value, expected, reason) in [
        ("none", &[][..], "none injects nothing"),
        (
            "tracecontext",
            &["traceparent"][..],
            "tracecontext alone: no baggage",
        ),
        ("baggage", &["baggage"][..], "baggage alone: no traceparent"),
        (
            "tracecontext,baggage",
            &["baggage", "traceparent"][..],
            "both, the default",
        ),
    ] {
        let telemetry = flowtrace_telemetry::builder()
            .env_vars([("OTEL_PROPAGATORS", value)])
            .exporter(flowtrace_telemetry::ExporterKind::File)
            .trace_file(&file)
            .install_tracing_subscriber(false)
            .strict(true)
            .init()
            .expect("telemetry");
        let run = with_runcontext()
            .run(with_baggage([("user", "alice")]).scope(probe(url.clone())))
            .await;
        for (carrier, written) in run.output() {
            assert_eq!(
                written, expected,
                "OTEL_PROPAGATORS={value}, {carrier}: {reason}"
            );
        }
        telemetry.shutdown().expect("shut down");
    }
    server.abort();
}
