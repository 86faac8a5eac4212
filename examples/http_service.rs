//! Two HTTP services and a workflow run that calls them: one trace across
//! the run, the `shop` service and the `pricing` service it calls.
//!
//! ```sh
//! cargo run --example http_service --features http-server,http-client
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 cargo run --example http_service --features http-server,http-client
//! ```
//!
//! ```text
//! checkout_run                      (run span)
//! └─ checkout                       #[traced], in the run
//!    └─ GET                         client span, reqwest send_traced()
//!       └─ GET /quote               server span, ServerLayer on `shop`
//!          └─ quote                 #[traced], in the handler
//!             ├─ GET ─ GET /price/{item} ─ price     (`pricing`, twice)
//!             └─ GET ─ GET /price/{item} ─ price
//! ```
//!
//! The run's baggage (`customer=alice`) crosses both hops: `price` records
//! what it sees as `shop.customer`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use flowtrace::http::{RequestBuilderExt as _, ServerLayer};
use flowtrace::propagation::with_baggage;
use flowtrace::{ctx, traced, with_runcontext};
use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt as _;

/// The `pricing` service's task: a price per item, in cents.
#[traced]
async fn price(item: String) -> Result<u32, String> {
    let customer = ctx()
        .baggage()
        .get("customer")
        .map(|v| v.to_string())
        .unwrap_or_default();
    opentelemetry::Context::current()
        .span()
        .set_attribute(KeyValue::new("shop.customer", customer));
    match item.as_str() {
        "book" => Ok(1250),
        "pen" => Ok(199),
        other => Err(format!("no price for {other}")),
    }
}

async fn price_handler(Path(item): Path<String>) -> Result<String, (StatusCode, String)> {
    price(item)
        .await
        .map(|cents| cents.to_string())
        .map_err(|e| (StatusCode::NOT_FOUND, e))
}

#[derive(Clone)]
struct Shop {
    client: reqwest::Client,
    pricing: String,
}

#[derive(serde::Deserialize)]
struct QuoteQuery {
    items: String,
}

/// The `shop` service's task: asks `pricing` for every item.
#[traced]
async fn quote(shop: Shop, items: Vec<String>) -> Result<u32, reqwest::Error> {
    let mut total = 0;
    for item in items {
        let url = format!("{}/price/{item}", shop.pricing);
        let body = shop
            .client
            .get(url)
            .send_traced()
            .await?
            .error_for_status()?
            .text()
            .await?;
        total += body.parse::<u32>().unwrap_or_default();
    }
    Ok(total)
}

async fn quote_handler(
    State(shop): State<Shop>,
    Query(query): Query<QuoteQuery>,
) -> Result<String, (StatusCode, String)> {
    let items = query.items.split(',').map(str::to_owned).collect();
    quote(shop, items)
        .await
        .map(|cents| cents.to_string())
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))
}

/// The workflow's task: one HTTP call to `shop`.
#[traced]
async fn checkout(client: reqwest::Client, shop: String) -> Result<String, reqwest::Error> {
    let url = format!("{shop}/quote?items=book,pen");
    client
        .get(url)
        .send_traced()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// Serves `app` on a free loopback port until `stop` fires.
async fn serve(
    app: Router,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut stop = stop;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await
    });
    Ok((addr, task))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = flowtrace_telemetry::init()?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    // flowtrace's reqwest leaves the TLS crypto provider to the application
    // (its OTLP exporter uses ring); with reqwest's default features this
    // line is not needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    let pricing = Router::new()
        .route("/price/{item}", get(price_handler))
        .layer(ServerLayer::new());
    let (pricing_addr, pricing_task) = serve(pricing, stop.clone()).await?;
    let shop = Router::new()
        .route("/quote", get(quote_handler))
        .with_state(Shop {
            client: client.clone(),
            pricing: format!("http://{pricing_addr}"),
        })
        .layer(ServerLayer::new());
    let (shop_addr, shop_task) = serve(shop, stop).await?;

    let run = with_runcontext()
        .name("checkout_run")
        .custom_context([("team", "shop")])
        .run(
            with_baggage([("customer", "alice")])
                .scope(checkout(client, format!("http://{shop_addr}"))),
        )
        .await;
    let total = run.output().as_ref().map_err(|e| e.to_string())?.clone();
    println!(
        "run {} finished: total {total} cents, trace {}",
        run.run_id(),
        run.trace_id()
    );

    let _ = stop_tx.send(true);
    pricing_task.await??;
    shop_task.await??;
    drop(telemetry); // flushes
    Ok(())
}
