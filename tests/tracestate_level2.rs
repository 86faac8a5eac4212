#![cfg(all(feature = "http-server", feature = "http-client"))]
//! The W3C test suite's tracestate key cases
//! (`test_tracestate_key_illegal_vendor_format`,
//! `test_tracestate_key_length_limit`, Trace Context Level 2's one key
//! form) end to end: a request into an axum service behind `ServerLayer`
//! whose `#[traced]` task calls an echo service with `send_traced`; the
//! `tracestate` it passes on is what the suite expects, including keys
//! opentelemetry's `TraceState` cannot hold.

mod support;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use flowtrace::http::{RequestBuilderExt as _, ServerLayer};
use flowtrace::traced;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

async fn echo(headers: HeaderMap) -> String {
    headers
        .get("tracestate")
        .map_or(String::new(), |v| v.to_str().unwrap().to_owned())
}

#[traced]
async fn forward(url: String) -> String {
    client()
        .get(url)
        .send_traced()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn handler(State(echo): State<String>) -> String {
    forward(format!("{echo}/echo")).await
}

#[tokio::test]
async fn tracestate_keys_follow_the_level_2_grammar_end_to_end() {
    support::in_memory::exporter();
    let echo_url = serve(Router::new().route("/echo", get(echo))).await;
    let service = serve(
        Router::new()
            .route("/forward", get(handler))
            .with_state(echo_url)
            .layer(ServerLayer::new().public_endpoint(false)),
    )
    .await;
    let z256 = "z".repeat(256);
    let z257 = "z".repeat(257);
    let t241_v14 = format!("{}@{}", "t".repeat(241), "v".repeat(14));
    let t242_v = format!("{}@v", "t".repeat(242));
    let t_v15 = format!("t@{}", "v".repeat(15));
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (
            vec!["foo@=1,bar=2".into()],
            "foo@=1,bar=2".into(),
            "a trailing @",
        ),
        (
            vec!["@foo=1,bar=2".into()],
            String::new(),
            "a key starting with @ discards the list",
        ),
        (
            vec!["foo@@bar=1,bar=2".into()],
            "foo@@bar=1,bar=2".into(),
            "two at signs",
        ),
        (
            vec!["foo@bar@baz=1,bar=2".into()],
            "foo@bar@baz=1,bar=2".into(),
            "three parts",
        ),
        (
            vec!["foo=1".into(), format!("{z256}=1")],
            format!("foo=1,{z256}=1"),
            "256 characters",
        ),
        (
            vec!["foo=1".into(), format!("{z257}=1")],
            String::new(),
            "257 characters discard the list",
        ),
        (
            vec!["foo=1".into(), format!("{t241_v14}=1")],
            format!("foo=1,{t241_v14}=1"),
            "241@14",
        ),
        (
            vec!["foo=1".into(), format!("{t242_v}=1")],
            format!("foo=1,{t242_v}=1"),
            "242 before @v",
        ),
        (
            vec!["foo=1".into(), format!("{t_v15}=1")],
            format!("foo=1,{t_v15}=1"),
            "15 after @",
        ),
    ];
    for (i, (fields, expected, reason)) in cases.into_iter().enumerate() {
        let mut request = client().get(format!("{service}/forward")).header(
            "traceparent",
            format!(
                "00-{:032x}-1234567890123456-01",
                0x1234_5678_9012_3456_7890_u128 + i as u128
            ),
        );
        for field in &fields {
            request = request.header("tracestate", field);
        }
        let passed_on = request.send().await.unwrap().text().await.unwrap();
        assert_eq!(passed_on, expected, "{reason}");
    }
}
