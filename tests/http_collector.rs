#![cfg(all(feature = "http-server", feature = "http-client"))]
//! End to end over HTTP: `examples/http_service.rs` — a run calling the
//! `shop` service over HTTP, which calls the `pricing` service twice, each
//! an axum app on its own loopback port with reqwest between them — run as
//! its own process, exporting over OTLP/HTTP to a real collector (rotel).
//! One trace arrives, client and server spans paired across every hop.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{Collector, Span, SpanKind, StatusCode, WAIT, run_bounded, span_named};

/// Builds the example with the features it needs (the ones this test was
/// built with, so nothing is rebuilt) and returns its path.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", "http_service"])
        .args(["--features", "http-server,http-client"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    run_bounded(&mut build, Duration::from_secs(600)).assert_success("building http_service");
    profile_dir.join("examples").join("http_service")
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

fn only_child<'a>(spans: &'a [Span], parent: &Span, name: &str) -> &'a Span {
    let found: Vec<_> = children(spans, parent)
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name:?} under {:?}: {}",
        parent.name,
        support::summary(spans)
    );
    found[0]
}

#[test]
fn one_trace_across_two_http_services_at_a_real_collector() {
    let collector = Collector::start();
    let mut cmd = Command::new(example());
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_")
            || key.starts_with("FLOWTRACE_")
            || matches!(key.as_str(), "TRACEPARENT" | "TRACESTATE" | "BAGGAGE")
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.http_endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_SERVICE_NAME", "http-example");
    let output = run_bounded(&mut cmd, Duration::from_secs(60));
    output.assert_success("http_service example");
    let line = output
        .stdout
        .lines()
        .find(|l| l.starts_with("run "))
        .unwrap_or_else(|| panic!("no run line in:\n{}", output.stdout));
    assert!(line.contains("total 1449 cents"), "{line}");
    let trace_id = line.rsplit(' ').next().unwrap();

    // run, checkout, client+server+quote, 2 × (client+server+price)
    let spans = collector.wait_for_trace(trace_id, 11, WAIT);
    let summary = support::summary(&spans);
    assert_eq!(spans.len(), 11, "{summary}");
    assert!(
        spans.iter().all(|s| s.service_name == "http-example"),
        "{summary}"
    );

    let run = span_named(&spans, "checkout_run");
    assert!(run.is_root(), "{summary}");
    let checkout = only_child(&spans, run, "checkout");
    let to_shop = only_child(&spans, checkout, "GET");
    assert_eq!(to_shop.kind, SpanKind::Client);
    assert!(
        to_shop
            .attr("url.full")
            .unwrap()
            .ends_with("/quote?items=book,pen")
    );
    let shop = only_child(&spans, to_shop, "GET /quote");
    assert_eq!(shop.kind, SpanKind::Server);
    assert_eq!(shop.attr("http.route"), Some("/quote"));
    assert_eq!(shop.attr("http.response.status_code"), Some("200"));
    let quote = only_child(&spans, shop, "quote");
    let to_pricing: Vec<_> = children(&spans, quote);
    assert_eq!(to_pricing.len(), 2, "{summary}");
    for client in to_pricing {
        assert_eq!(client.kind, SpanKind::Client);
        assert_eq!(client.status_code, StatusCode::Unset);
        let server = only_child(&spans, client, "GET /price/{item}");
        assert_eq!(server.kind, SpanKind::Server);
        assert_eq!(server.attr("server.address"), Some("127.0.0.1"));
        assert_eq!(server.attr("server.port"), client.attr("server.port"));
        let price = only_child(&spans, server, "price");
        assert_eq!(
            price.attr("shop.customer"),
            Some("alice"),
            "baggage crossed two HTTP hops"
        );
    }
}
