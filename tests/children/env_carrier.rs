//! The flowtrace child process of `tests/propagation_process.rs`: continues
//! the trace its parent passed through `TRACEPARENT` / `TRACESTATE` /
//! `BAGGAGE`, and prints its run's trace id and the baggage it saw.

use flowtrace::{ctx, traced, with_runcontext};
use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt as _;

#[traced]
async fn child_task() -> String {
    let customer = ctx()
        .baggage()
        .get("customer")
        .map(|v| v.to_string())
        .unwrap_or_default();
    opentelemetry::Context::current()
        .span()
        .set_attribute(KeyValue::new("shop.customer", customer.clone()));
    customer
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let telemetry = flowtrace_telemetry::init().expect("child telemetry");
    let run = with_runcontext().name("child_run").run(child_task()).await;
    println!(
        "CHILD {}",
        serde_json::json!({"trace_id": run.trace_id(), "customer": run.output()})
    );
    telemetry.shutdown().expect("child flushed");
}
