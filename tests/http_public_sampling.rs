#![cfg(all(feature = "http-server", feature = "http-client"))]
//! A caller cannot make a public endpoint sample: 1 000 requests that all
//! claim `sampled=1` under a 1 % ratio sampler give about 1 % sampled server
//! spans, each a new root linked to its caller's span context. The same
//! requests on a trusted route continue the caller's trace (and its
//! `sampled` flag), as before. Exported over OTLP to a real collector
//! (rotel). The public layer takes its settings from the environment:
//! `FLOWTRACE_HTTP_PUBLIC_ENDPOINT=true`, `FLOWTRACE_HTTP_PUBLIC_BAGGAGE=tenant`.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use flowtrace::attributes::LINK_REASON;
use flowtrace::http::{
    LINK_REASON_PUBLIC_ENDPOINT, PUBLIC_BAGGAGE_ENV, PUBLIC_ENDPOINT_ENV, ServerLayer,
};
use futures::StreamExt as _;
use support::{Collector, Span, SpanKind};

const REQUESTS: usize = 1000;
const RATIO: f64 = 0.01;
const CALLER_STATE: &str = "caller=forced";

fn caller(i: usize) -> (String, String) {
    (
        format!("{:032x}", 0xca11_0000 + i),
        format!("{:016x}", i + 1),
    )
}

async fn serve(app: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

async fn send_all(client: &reqwest::Client, addr: SocketAddr, path: &str) {
    futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let (trace, span) = caller(i);
            client
                .get(format!("http://{addr}{path}"))
                .header("traceparent", format!("00-{trace}-{span}-01"))
                .header("tracestate", CALLER_STATE)
                .send()
        })
        .buffer_unordered(32)
        .for_each(|response| async {
            assert!(response.unwrap().status().is_success());
        })
        .await;
}

/// The handler's baggage, `k=v` joined by `,` in key order.
fn baggage_seen() -> String {
    let mut seen: Vec<String> = flowtrace::ctx()
        .baggage()
        .iter()
        .map(|(k, (v, _))| format!("{k}={v}"))
        .collect();
    seen.sort_unstable();
    seen.join(",")
}

/// Waits until no new span arrived for a while (bounded): every span the
/// flushed exporter sent has been forwarded by the collector.
fn settled(collector: &Collector, at_least: usize) -> Vec<Span> {
    let mut spans = collector.wait_for("the trusted route's spans", support::WAIT, |spans| {
        spans.len() >= at_least
    });
    let deadline = Instant::now() + support::WAIT;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = collector.spans();
        if now.len() == spans.len() || Instant::now() > deadline {
            return now;
        }
        spans = now;
    }
}

#[test]
fn a_public_endpoint_samples_by_the_local_sampler_and_links_the_caller() {
    // SAFETY: set before this test binary's only test starts any other
    // thread that could read the environment.
    unsafe {
        std::env::set_var(PUBLIC_ENDPOINT_ENV, "true");
        std::env::set_var(PUBLIC_BAGGAGE_ENV, "tenant");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let collector = Collector::start();
    let ratio = RATIO.to_string();
    let telemetry = collector.grpc_telemetry(
        "public-sampling",
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", &ratio),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8192"),
        ],
    );
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let public = Router::new()
            .route("/hit", get(|| async { "ok" }))
            .route("/baggage", get(|| async { baggage_seen() }))
            .layer(ServerLayer::new());
        let trusted = Router::new()
            .route("/hit", get(|| async { "ok" }))
            .layer(ServerLayer::new().public_endpoint(false));
        let (public_addr, public_task) = serve(public).await;
        let (trusted_addr, trusted_task) = serve(trusted).await;
        send_all(&client, public_addr, "/hit").await;
        let seen = client
            .get(format!("http://{public_addr}/baggage"))
            .header("baggage", "tenant=acme,user=mallory")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(seen, "tenant=acme", "the environment's allow-list");
        send_all(&client, trusted_addr, "/hit").await;
        public_task.abort();
        trusted_task.abort();
    });
    telemetry.shutdown().expect("flushed");

    let callers: HashMap<String, String> = (0..REQUESTS).map(caller).collect();
    let spans = settled(&collector, REQUESTS);
    let (trusted, public): (Vec<&Span>, Vec<&Span>) = spans
        .iter()
        .inspect(|s| assert_eq!(s.kind, SpanKind::Server, "{}", s.name))
        .filter(|s| s.attr("url.path") == Some("/hit"))
        .partition(|s| callers.contains_key(&s.trace_id));

    // Trusted: every request continues its caller's trace, sampled because
    // the caller said so (ParentBased), with the caller's tracestate.
    assert_eq!(trusted.len(), REQUESTS, "one span per trusted request");
    for span in &trusted {
        assert_eq!(
            span.parent_span_id, callers[&span.trace_id],
            "child of its caller"
        );
        assert!(span.links.is_empty(), "a child, not a link");
        assert_eq!(span.trace_state, CALLER_STATE);
    }

    // Public: the local 1 % sampler alone decides. Binomial(1000, 0.01):
    // mean 10, standard deviation 3.15; at most 25 (mean + 4.8 sd) holds
    // with probability 1 - 1e-5, and at least 1 with 1 - 4e-5. Without the
    // public mode all 1 000 would be sampled, as the trusted route shows.
    let n = REQUESTS as f64;
    let (mean, sd) = (n * RATIO, (n * RATIO * (1.0 - RATIO)).sqrt());
    let upper = (mean + 4.8 * sd).floor() as usize;
    assert!(
        (1..=upper).contains(&public.len()),
        "{} of {REQUESTS} public server spans sampled; expected about {mean} (1..={upper})",
        public.len()
    );
    for span in &public {
        assert!(span.is_root(), "a new root: {}", span.parent_span_id);
        assert!(
            span.trace_state.is_empty(),
            "the caller's tracestate is not taken"
        );
        assert_eq!(span.links.len(), 1, "one link, to the caller");
        let link = &span.links[0];
        let caller_span = callers
            .get(&link.trace_id)
            .unwrap_or_else(|| panic!("the link names a caller: {link:?}"));
        assert_eq!(&link.span_id, caller_span, "the caller's span");
        assert_ne!(span.trace_id, link.trace_id, "a trace of its own");
        assert_eq!(
            link.attributes,
            [(
                LINK_REASON.to_owned(),
                LINK_REASON_PUBLIC_ENDPOINT.to_owned()
            )],
            "the link says why"
        );
    }
}
